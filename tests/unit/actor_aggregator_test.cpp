// The aggregator actor on CAF's test coordinator with a real ingest log and LMDB: queries,
// late events in /metrics, checkpoints of state with the offset, restart from stored state.

#include "actor_fixture.hpp"

#include "actors/aggregator.hpp"
#include "actors/catalog.hpp"
#include "actors/ingest_log.hpp"

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t minute = 60'000;
constexpr int64_t t0 = 1'732'233'600'000; // 2024-11-22T00:00:00Z

struct aggregator_test : actor_test {
  ingest_log_actor log;
  aggregator_actor agg;
  std::shared_ptr<catalog_holder> titles = std::make_shared<catalog_holder>();
  aggregate_options opts;
  std::vector<std::string> answers;

  aggregator_test() {
    std::string err;
    titles->set(catalog::parse("id,name,genres,duration\n"
                               "t1,One,Drama|Crime,100s\n"
                               "t2,Two,Drama,100s\n"
                               "t3,Three,Comedy,100s\n",
                               err));
    opts.window_ms = 60 * minute;
    opts.bucket_ms = minute;
    opts.allowed_lateness_ms = 5 * minute;
  }

  void spawn_log() {
    ingest_log_deps ldeps;
    ldeps.env = env_.get();
    ldeps.metrics = &metrics_;
    ldeps.consumers = {{aggregator_consumer, consumer_spec::slice::all, 0, 1}};
    log = spawn(ingest_log, std::move(ldeps));
    run();
  }

  void spawn_aggregator() {
    aggregator_deps deps;
    deps.log = log;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.catalog = titles;
    deps.options = opts;
    deps.checkpoint_interval = 100ms;
    agg = spawn(aggregator, std::move(deps));
    run();
  }

  /// Kills the aggregator and the log without a drain (what kill -9 leaves: the last
  /// checkpoint only) and reopens the environment on the same files.
  void crash() {
    caf::anon_send_exit(agg, caf::exit_reason::kill);
    caf::anon_send_exit(log, caf::exit_reason::kill);
    run();
    open_env();
  }

  bool drain() {
    auto drained = std::make_shared<bool>(false);
    auto target = agg;
    auto asker = sys_.spawn([target, drained](caf::event_based_actor* self) {
      self->request(target, caf::infinite, drain_atom_v).then([drained](caf::ok_atom) {
        *drained = true;
      });
    });
    tracked_.push_back(asker);
    run();
    return *drained;
  }

  std::string query(aggregate_query q) {
    query_reply reply;
    reply.fn = [this](query_reply::status, std::string json) { answers.push_back(json); };
    caf::anon_send(agg, query_atom_v, std::move(q), reply);
    run();
    return answers.empty() ? std::string{} : answers.back();
  }

  std::string trending(int64_t window_ms, uint32_t k = 10) {
    aggregate_query q;
    q.window_ms = window_ms;
    q.k = k;
    return query(q);
  }

  std::string also_watched(const std::string& title) {
    aggregate_query q;
    q.what = aggregate_query::kind::also_watched;
    q.title_id = title;
    q.k = 5;
    return query(q);
  }

  event ev(log_offset offset, const std::string& profile, const std::string& title, int64_t ts,
           int64_t position = 0) {
    auto e = make_event("e" + std::to_string(offset), "heartbeat", "dev", profile, ts);
    e.offset = offset;
    e.attrs = playback_attrs(title, position);
    return e;
  }

  void dispatch(event_batch events) {
    auto upto = events.back().offset;
    caf::anon_send(agg, dispatch_atom_v, committed_batch{std::move(events), upto});
    run();
  }

  log_offset stored_offset() {
    persistence::read_txn txn{*env_};
    auto v = txn.get(persistence::db::offsets, aggregator_consumer);
    return v ? persistence::decode_be64(*v) : 0;
  }

  double metric(const char* name) {
    return metrics_.value(name, {});
  }
};

TEST_F(aggregator_test, answers_trending_with_names_counts_and_the_watermark) {
  spawn_log();
  spawn_aggregator();
  dispatch({ev(1, "p1", "t2", t0 + 10 * minute), ev(2, "p2", "t2", t0 + 11 * minute),
            ev(3, "p1", "t1", t0 + 12 * minute)});
  EXPECT_EQ(trending(60 * minute),
            "{\"window_ms\":3600000,\"as_of\":" + std::to_string(t0 + 12 * minute)
              + ",\"watermark\":" + std::to_string(t0 + 7 * minute)
              + ",\"items\":[{\"title_id\":\"t2\",\"name\":\"Two\",\"profiles\":2},"
                "{\"title_id\":\"t1\",\"name\":\"One\",\"profiles\":1}]}");
  EXPECT_EQ(metric("sluice_aggregate_watermark_seconds"), 0.0) << "gauges update at the tick";
  advance(100ms);
  EXPECT_EQ(metric("sluice_aggregate_watermark_seconds"), double((t0 + 7 * minute) / 1000));
}

TEST_F(aggregator_test, late_events_are_counted_in_metrics_and_excluded_from_trending) {
  spawn_log();
  spawn_aggregator();
  dispatch({ev(1, "p1", "t1", t0 + 30 * minute)});
  dispatch({ev(2, "p2", "t2", t0 + 20 * minute), ev(3, "p3", "t2", t0 + 26 * minute)});
  EXPECT_EQ(metric("sluice_aggregate_late_events_total"), 1.0);
  EXPECT_EQ(metric("sluice_aggregate_events_total"), 3.0);
  auto json = trending(60 * minute);
  EXPECT_NE(json.find("{\"title_id\":\"t1\",\"name\":\"One\",\"profiles\":1}"), std::string::npos)
    << json;
  EXPECT_NE(json.find("{\"title_id\":\"t2\",\"name\":\"Two\",\"profiles\":1}"), std::string::npos)
    << json;
}

TEST_F(aggregator_test, the_window_is_evicted_as_event_time_advances) {
  spawn_log();
  spawn_aggregator();
  dispatch({ev(1, "p1", "t1", t0)});
  dispatch({ev(2, "p2", "t2", t0 + 90 * minute)});
  auto json = trending(60 * minute);
  EXPECT_EQ(json.find("\"t1\""), std::string::npos) << json;
  advance(100ms);
  EXPECT_EQ(metric("sluice_aggregate_trending_entries"), 1.0);
}

TEST_F(aggregator_test, also_watched_falls_back_to_trending_without_co_watch_data) {
  spawn_log();
  spawn_aggregator();
  dispatch({ev(1, "p1", "t1", t0, 100'000), ev(2, "p1", "t2", t0, 100'000),
            ev(3, "p2", "t3", t0, 10), ev(4, "p3", "t3", t0, 10)});
  EXPECT_EQ(also_watched("t1"),
            "{\"title_id\":\"t1\",\"source\":\"cowatch\",\"items\":[{\"title_id\":\"t2\","
            "\"name\":\"Two\",\"score\":1}]}");
  EXPECT_EQ(also_watched("t3"),
            "{\"title_id\":\"t3\",\"source\":\"trending\",\"reason\":\"no co-watch data for this "
            "title yet\",\"items\":[{\"title_id\":\"t1\",\"name\":\"One\",\"score\":1},"
            "{\"title_id\":\"t2\",\"name\":\"Two\",\"score\":1}]}");
}

TEST_F(aggregator_test, also_watched_falls_back_to_trending_when_the_stored_co_watch_state_fails) {
  {
    persistence::write_txn txn{*env_};
    txn.put(persistence::db::aggregates, "c\xa2t1\xa2t2", "\xc1"); // 0xc1: never valid msgpack
    txn.commit();
  }
  spawn_log();
  spawn_aggregator();
  EXPECT_EQ(metric("sluice_aggregate_restore_errors_total"), 1.0);
  dispatch({ev(1, "p1", "t1", t0, 100'000), ev(2, "p1", "t2", t0, 100'000)});
  auto json = also_watched("t1");
  EXPECT_NE(json.find("\"source\":\"trending\",\"reason\":\"the stored co-watch state could not "
                      "be read\""),
            std::string::npos)
    << json;
}

TEST_F(aggregator_test, a_checkpoint_commits_state_with_the_offset_and_drain_waits_for_it) {
  spawn_log();
  spawn_aggregator();
  dispatch({ev(1, "p1", "t1", t0), ev(2, "p2", "t1", t0)});
  EXPECT_EQ(stored_offset(), 0u);
  advance(100ms);
  EXPECT_EQ(stored_offset(), 2u);
  EXPECT_EQ(metric("sluice_aggregate_checkpoints_total"), 1.0);
  dispatch({ev(3, "p3", "t1", t0)});
  EXPECT_TRUE(drain());
  EXPECT_EQ(stored_offset(), 3u);
}

TEST_F(aggregator_test, restarts_from_its_stored_state_and_counts_replayed_events_once) {
  std::vector<event_batch> batches;
  log_offset off = 1;
  for (int b = 0; b < 6; ++b) {
    event_batch batch;
    for (int i = 0; i < 5; ++i, ++off)
      batch.push_back(ev(off, "p" + std::to_string((off * 7) % 11), "t" + std::to_string(1 + off % 3),
                         t0 + static_cast<int64_t>(off) * minute / 2, (off % 4 == 0) ? 100'000 : 0));
    batches.push_back(std::move(batch));
  }
  spawn_log();
  spawn_aggregator();
  for (auto& b : batches)
    dispatch(b);
  auto expected_trending = trending(60 * minute);
  auto expected_also = also_watched("t1");
  crash(); // nothing was checkpointed

  // A second life: the first three batches checkpointed, the rest lost with the crash.
  spawn_log();
  spawn_aggregator();
  for (int i = 0; i < 3; ++i)
    dispatch(batches[i]);
  advance(100ms);
  EXPECT_EQ(stored_offset(), 15u);
  dispatch(batches[3]);
  crash();

  // Third life: restored at offset 15; the log replays everything after its offset, and a
  // client resends a batch it got no ack for (the same events at new offsets).
  spawn_log();
  spawn_aggregator();
  for (auto& b : batches) // events at or below 15 are skipped
    dispatch(b);
  auto resent = batches[4];
  for (auto& e : resent)
    e.offset = off++;
  dispatch(resent);
  EXPECT_EQ(metric("sluice_aggregate_events_total"), 30.0 + 20.0 + (15.0 + 5.0))
    << "the third life skips the 15 events at or below its offset";
  EXPECT_EQ(trending(60 * minute), expected_trending);
  EXPECT_EQ(also_watched("t1"), expected_also);
}

} // namespace
