// Profile entities in their shard on CAF's test coordinator: watch time and continue watching
// queries, the catalog read at query time, exactly-once state across passivation and replays.

#include "profile_shard_fixture.hpp"

#include "actors/catalog.hpp"

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t sec = 1000;
constexpr int64_t day0 = 1732233600000; // 2024-11-22T00:00:00Z

struct profile_entity_test : profile_shard_test {
  std::shared_ptr<catalog_holder> catalog = std::make_shared<catalog_holder>();
  std::vector<std::pair<query_reply::status, std::string>> answers;

  void spawn_shard(log_offset done_upto = 0) {
    profile_options opts;
    opts.catalog = catalog;
    spawn_profile_shard({}, opts, 0, 1, done_upto);
  }

  std::pair<query_reply::status, std::string> query(const std::string& profile, std::string what) {
    query_reply reply;
    reply.fn = [this](query_reply::status st, std::string json) {
      answers.emplace_back(st, std::move(json));
    };
    auto before = answers.size();
    caf::anon_send(profiles, query_atom_v, profile, std::move(what), reply);
    run();
    EXPECT_EQ(answers.size(), before + 1);
    return answers.back();
  }

  event playback(log_offset offset, std::string type, int64_t ts, std::string title,
                 int64_t position) {
    auto e = make_event("e" + std::to_string(offset), std::move(type), "dev", "p1", ts);
    e.offset = offset;
    e.attrs = playback_attrs(title, position);
    return e;
  }

  void dispatch(event_batch events) {
    auto upto = events.back().offset;
    caf::anon_send(profiles, dispatch_atom_v, committed_batch{std::move(events), upto});
    run();
  }
};

} // namespace

TEST_F(profile_entity_test, watch_time_and_continue_watching_are_answered_with_catalog_names) {
  std::string err;
  catalog->set(catalog::parse("id,name,genres,duration\nt-1,The One,Drama,100\n", err));
  spawn_shard();
  dispatch({playback(1, "play", day0, "t-1", 0), playback(2, "heartbeat", day0 + 30 * sec, "t-1", 30 * sec),
            playback(3, "pause", day0 + 40 * sec, "t-1", 40 * sec)});
  auto wt = query("p1", watch_time_query("2024-11-22", "2024-11-22"));
  EXPECT_EQ(wt.first, query_reply::status::found);
  EXPECT_EQ(wt.second, "{\"profile_id\":\"p1\",\"from\":\"2024-11-22\",\"to\":\"2024-11-22\","
                       "\"total_ms\":40000,\"titles\":[{\"title_id\":\"t-1\",\"name\":\"The One\","
                       "\"watch_ms\":40000}],\"days\":[{\"date\":\"2024-11-22\",\"total_ms\":40000,"
                       "\"titles\":[{\"title_id\":\"t-1\",\"name\":\"The One\",\"watch_ms\":40000}]}]}");
  auto defaults = query("p1", watch_time_query("", ""));
  EXPECT_NE(defaults.second.find("\"from\":\"2024-10-24\",\"to\":\"2024-11-22\""), std::string::npos)
    << defaults.second;
  auto cw = query("p1", "continue-watching");
  EXPECT_NE(cw.second.find("\"name\":\"The One\""), std::string::npos) << cw.second;
  // A reload that makes the title 40 s long completes it at once (read at query time).
  catalog->set(catalog::parse("id,name,genres,duration\nt-1,The One,Drama,40\n", err));
  cw = query("p1", "continue-watching");
  EXPECT_EQ(cw.second, "{\"profile_id\":\"p1\",\"items\":[]}");
  EXPECT_EQ(query("nobody", "continue-watching").first, query_reply::status::not_found);
}

TEST_F(profile_entity_test, state_survives_passivation_and_a_replayed_batch_is_not_counted_twice) {
  spawn_shard();
  dispatch({playback(1, "play", day0, "t", 0), playback(2, "heartbeat", day0 + 30 * sec, "t", 30 * sec)});
  advance(100ms); // checkpoint: state and offset 2 in one transaction
  advance(11s);   // idle: passivated
  EXPECT_EQ(metrics_.value("sluice_actors_passivated_total", {{"kind", "profile"}, {"shard", "0"}}),
            1.0);
  // The same events again (a replay from an older offset) and one new event.
  dispatch({playback(1, "play", day0, "t", 0), playback(2, "heartbeat", day0 + 30 * sec, "t", 30 * sec),
            playback(3, "heartbeat", day0 + 60 * sec, "t", 60 * sec)});
  auto wt = query("p1", watch_time_query("2024-11-22", "2024-11-22"));
  EXPECT_NE(wt.second.find("\"total_ms\":60000,"), std::string::npos) << wt.second;
  EXPECT_EQ(metrics_.value("sluice_actors_restored_total", {{"kind", "profile"}, {"shard", "0"}}),
            1.0);
}

TEST_F(profile_entity_test, a_restarted_shard_resumes_from_the_committed_state) {
  spawn_shard();
  dispatch({playback(1, "play", day0, "t", 0), playback(2, "heartbeat", day0 + 30 * sec, "t", 30 * sec)});
  advance(100ms);
  // "Crash": a new shard over the same LMDB, resuming at the committed offset; the log replays
  // from there (here: the batch after it plus, as a stale delivery, the committed one).
  caf::anon_send_exit(profiles, caf::exit_reason::kill);
  run();
  log_offset done = 0;
  {
    persistence::read_txn txn{*env_};
    auto off = txn.get(persistence::db::offsets, "profiles.0");
    ASSERT_TRUE(off.has_value());
    done = persistence::decode_be64(*off);
  }
  EXPECT_EQ(done, 2u);
  spawn_shard(done);
  dispatch({playback(2, "heartbeat", day0 + 30 * sec, "t", 30 * sec),
            playback(3, "pause", day0 + 45 * sec, "t", 45 * sec)});
  auto wt = query("p1", watch_time_query("2024-11-22", "2024-11-22"));
  EXPECT_NE(wt.second.find("\"total_ms\":45000,"), std::string::npos) << wt.second;
}
