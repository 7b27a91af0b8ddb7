#include "profile_shard_fixture.hpp"

#include "actors/node.hpp"
#include "actors/placement.hpp"

#include <msgpack.hpp>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

struct shard_test : profile_shard_test {
  std::vector<std::pair<bool, std::string>> answers;

  void spawn_shard(decltype(entity_kind::make) make_entity = {}, size_t index = 0,
                   size_t count = 1) {
    spawn_profile_shard(std::move(make_entity), {}, index, count);
  }

  void query(const std::string& profile) {
    query_reply reply;
    reply.fn = [this](query_reply::status st, std::string json) {
      answers.emplace_back(st == query_reply::status::found, json);
    };
    caf::anon_send(profiles, query_atom_v, profile, std::string{"continue-watching"}, reply);
    run();
  }

  event playback(log_offset offset, std::string profile, std::string type, int64_t ts,
                 std::string title, int64_t position, int64_t duration = 0) {
    auto e = make_event("e" + std::to_string(offset), std::move(type), "dev", std::move(profile), ts);
    e.offset = offset;
    e.attrs = playback_attrs(title, position, duration);
    return e;
  }

  double labelled(const char* name) {
    return metrics_.value(name, {{"kind", "profile"}, {"shard", shard_label}});
  }
};

TEST_F(shard_test, a_batch_is_applied_per_profile_and_the_state_is_queryable) {
  spawn_shard();
  event_batch batch{playback(1, "p1", "play", 1000, "t1", 0),
                    playback(2, "p1", "heartbeat", 2000, "t1", 60000),
                    playback(3, "p2", "pause", 1500, "t9", 5000)};
  caf::anon_send(profiles, dispatch_atom_v, committed_batch{batch, 3});
  run();
  EXPECT_EQ(labelled("sluice_actors_spawned_total"), 2.0);
  query("p1");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].first);
  EXPECT_NE(answers[0].second.find("\"title_id\":\"t1\",\"position_ms\":60000"), std::string::npos)
    << answers[0].second;
}

TEST_F(shard_test, the_first_checkpoint_comes_one_interval_plus_the_shards_phase_after_the_start) {
  checkpoint_phase = 60ms;
  spawn_shard();
  caf::anon_send(profiles, dispatch_atom_v,
                 committed_batch{{playback(1, "p1", "pause", 1000, "t1", 42000)}, 1});
  run();
  auto stored_offset = [this] {
    persistence::read_txn txn{*env_};
    return txn.get(persistence::db::offsets, "profiles.0").has_value();
  };
  advance(100ms); // one interval: a shard without a phase would have checkpointed now
  EXPECT_FALSE(stored_offset());
  advance(60ms); // and its phase
  EXPECT_TRUE(stored_offset());
}

TEST_F(shard_test, an_idle_profile_is_passivated_after_its_checkpoint_and_restored_on_query) {
  spawn_shard();
  caf::anon_send(profiles, dispatch_atom_v,
                 committed_batch{{playback(1, "p1", "pause", 1000, "t1", 42000)}, 1});
  run();
  query("p1");
  auto before = answers.at(0).second;
  // The checkpoint commits state and offset; after the idle timeout the profile leaves memory.
  advance(100ms);
  advance(11s);
  EXPECT_EQ(labelled("sluice_actors_passivated_total"), 1.0);
  EXPECT_EQ(labelled("sluice_actors_active"), 0.0);
  {
    persistence::read_txn txn{*env_};
    auto off = txn.get(persistence::db::offsets, "profiles.0");
    ASSERT_TRUE(off.has_value());
    EXPECT_EQ(persistence::decode_be64(*off), 1u);
  }
  query("p1");
  EXPECT_EQ(labelled("sluice_actors_restored_total"), 1.0);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].second, before);
}

/// An entity that throws on its first event.
struct failing_entity : entity {
  bool apply(const event&) override {
    throw std::runtime_error("broken entity");
  }
  std::string encode() const override {
    return {};
  }
  std::string query(const std::string&) const override {
    return {};
  }
};

TEST_F(shard_test, many_profiles_in_one_batch_are_checkpointed_once_each_then_passivated_and_restored) {
  spawn_shard();
  event_batch batch;
  for (log_offset i = 1; i <= 50; ++i)
    batch.push_back(playback(i, "p" + std::to_string(i), "pause", 1000, "t1", 42000));
  caf::anon_send(profiles, dispatch_atom_v, committed_batch{batch, 50});
  run();
  EXPECT_EQ(labelled("sluice_actors_spawned_total"), 50.0);
  EXPECT_EQ(labelled("sluice_actors_active"), 50.0);
  // A second batch for some of them before the checkpoint: still one stored state per profile.
  event_batch again;
  for (log_offset i = 51; i <= 60; ++i)
    again.push_back(playback(i, "p" + std::to_string(i - 50), "pause", 2000, "t1", 43000));
  caf::anon_send(profiles, dispatch_atom_v, committed_batch{again, 60});
  run();
  advance(100ms); // checkpoint
  {
    persistence::read_txn txn{*env_};
    auto off = txn.get(persistence::db::offsets, "profiles.0");
    ASSERT_TRUE(off.has_value());
    EXPECT_EQ(persistence::decode_be64(*off), 60u);
    for (int i = 1; i <= 50; ++i)
      EXPECT_TRUE(txn.get(persistence::db::profiles, "p" + std::to_string(i)).has_value()) << i;
  }
  advance(11s); // idle: passivated
  EXPECT_EQ(labelled("sluice_actors_passivated_total"), 50.0);
  EXPECT_EQ(labelled("sluice_actors_active"), 0.0);
  // The shard still serves: a passivated profile is restored from LMDB with its newest state.
  query("p7");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].first);
  EXPECT_NE(answers[0].second.find("\"position_ms\":43000"), std::string::npos) << answers[0].second;
  EXPECT_EQ(labelled("sluice_actors_restored_total"), 1.0);
}

TEST_F(shard_test, a_checkpoint_larger_than_a_commit_lands_over_several_with_the_offset_after_every_state) {
  checkpoint_entries_per_commit = 8;
  spawn_shard();
  event_batch batch;
  for (log_offset i = 1; i <= 50; ++i)
    batch.push_back(playback(i, "p" + std::to_string(100 + i), "pause", 1000, "t1", 42000));
  caf::anon_send(profiles, dispatch_atom_v, committed_batch{batch, 50});
  run();
  auto stored = [this] {
    persistence::read_txn txn{*env_};
    std::vector<std::string> keys;
    txn.scan(persistence::db::profiles, "", [&](std::string_view k, std::string_view) {
      keys.emplace_back(k);
      return true;
    });
    auto off = txn.get(persistence::db::offsets, "profiles.0");
    return std::make_pair(keys, off ? persistence::decode_be64(*off) : log_offset{0});
  };
  // Step through the checkpoint one message at a time: after every commit at most 8 more states
  // are stored, in key order, and the offset appears only once all 50 are.
  sched_.advance_time(100ms);
  size_t before = 0;
  size_t commits = 0;
  bool saw_part = false;
  while (sched_.try_run_once()) {
    auto now = metrics_.value("sluice_log_commits_total");
    if (now == static_cast<double>(commits))
      continue;
    commits = static_cast<size_t>(now);
    auto [keys, offset] = stored();
    EXPECT_LE(keys.size(), before + 8) << "commit " << commits;
    if (offset == 0) {
      saw_part = saw_part || !keys.empty();
    } else {
      EXPECT_EQ(offset, 50u);
      EXPECT_EQ(keys.size(), 50u) << "the offset landed before every state it covers";
    }
    if (!keys.empty()) { // sorted keys: the stored ones are the smallest of the fifty
      EXPECT_EQ(keys.back(), "p" + std::to_string(100 + keys.size()));
    }
    before = keys.size();
  }
  EXPECT_TRUE(saw_part) << "the checkpoint landed in one commit";
  EXPECT_EQ(commits, 7u) << "50 states, 8 per commit";
  auto [keys, offset] = stored();
  EXPECT_EQ(keys.size(), 50u);
  EXPECT_EQ(offset, 50u);
  // Once the offset is durable the shard may passivate them: every state is in LMDB.
  advance(11s);
  EXPECT_EQ(labelled("sluice_actors_passivated_total"), 50.0);
  query("p137");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].first);
}

TEST_F(shard_test, an_entity_that_throws_stops_its_shard_without_checkpointing_past_it) {
  spawn_shard([](std::string_view, std::string_view) -> std::unique_ptr<entity> {
    return std::make_unique<failing_entity>();
  });
  auto down = std::make_shared<caf::error>();
  auto watcher = sys_.spawn([this, down](caf::event_based_actor* self) {
    self->monitor(profiles);
    self->set_down_handler([down](caf::down_msg& msg) { *down = msg.reason; });
    return caf::behavior{[](int) {}}; // without a behavior it would exit at once
  });
  run();
  caf::anon_send(profiles, dispatch_atom_v,
                 committed_batch{{playback(1, "p1", "pause", 1000, "t1", 42000)}, 1});
  run();
  EXPECT_TRUE(static_cast<bool>(*down)) << to_string(*down);
  persistence::read_txn txn{*env_};
  EXPECT_FALSE(txn.get(persistence::db::offsets, "profiles.0").has_value());
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
}

TEST_F(shard_test, a_shard_applies_only_its_own_keys_from_the_batch_every_shard_shares) {
  spawn_shard({}, 1, 3);
  event_batch batch;
  size_t mine = 0;
  for (log_offset i = 1; i <= 60; ++i) {
    auto key = "p" + std::to_string(i);
    mine += shard_index(key, 3) == 1 ? 1 : 0;
    batch.push_back(playback(i, key, "pause", 1000, "t1", 42000));
  }
  ASSERT_GT(mine, 0u);
  ASSERT_LT(mine, 60u);
  caf::anon_send(profiles, dispatch_atom_v, committed_batch{batch, 60});
  run();
  EXPECT_EQ(labelled("sluice_actors_spawned_total"), static_cast<double>(mine));
  for (log_offset i = 1; i <= 60; ++i) {
    auto key = "p" + std::to_string(i);
    query(key);
    EXPECT_EQ(answers.back().first, shard_index(key, 3) == 1) << key;
  }
}

TEST_F(shard_test, an_unknown_profile_is_not_found_and_not_created) {
  spawn_shard();
  query("nobody");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_FALSE(answers[0].first);
  EXPECT_EQ(labelled("sluice_actors_active"), 0.0);
}

} // namespace
