#include "actor_fixture.hpp"

#include "actors/ingest_log.hpp"
#include "actors/node.hpp"
#include "actors/profile_actor.hpp"
#include "actors/shard.hpp"

#include <msgpack.hpp>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

struct shard_test : actor_test {
  ingest_log_actor log;
  shard_actor profiles;
  std::vector<std::pair<bool, std::string>> answers;

  /// Spawns the log and a profile shard; `spawn_entity` (default: a real profile actor) is how the
  /// shard spawns an entity.
  void spawn_shard(decltype(entity_kind::spawn) spawn_entity = {}) {
    ingest_log_deps ldeps;
    ldeps.env = env_.get();
    ldeps.metrics = &metrics_;
    ldeps.consumers = {{"profiles.0", consumer_spec::slice::profile, 0, 1}};
    log = spawn(ingest_log, std::move(ldeps));
    entity_kind kind;
    kind.name = "profile";
    kind.space = state_space::profiles;
    kind.key_of = [](const event& e) -> std::string_view { return e.profile_id; };
    kind.spawn = spawn_entity ? std::move(spawn_entity)
                              : [](caf::actor_system& sys, const std::string& key,
                                   std::string stored) {
                                  return sys.spawn(profile_actor, key, std::move(stored),
                                                   profile_options{});
                                };
    shard_deps deps;
    deps.kind = kind;
    deps.log = log;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.idle_timeout = 10s;
    deps.checkpoint_interval = 100ms;
    profiles = spawn(shard, std::move(deps));
    run();
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
    return metrics_.value(name, {{"kind", "profile"}, {"shard", "0"}});
  }
};

TEST_F(shard_test, one_apply_per_profile_per_batch_and_state_is_queryable) {
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

TEST_F(shard_test, an_idle_profile_is_passivated_after_its_checkpoint_and_restored_on_query) {
  spawn_shard();
  caf::anon_send(profiles, dispatch_atom_v,
                 committed_batch{{playback(1, "p1", "pause", 1000, "t1", 42000)}, 1});
  run();
  query("p1");
  auto before = answers.at(0).second;
  // The checkpoint commits state and offset; after the idle timeout the actor is stopped.
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

/// An entity that fails on its first apply.
entity_actor::behavior_type failing_entity(entity_actor::pointer self) {
  return {
    [self](apply_atom, log_offset, const event_batch&) { self->quit(caf::sec::runtime_error); },
    [](query_atom, const std::string&) { return std::string{}; },
    [](done_atom) {},
  };
}

TEST_F(shard_test, passivated_entity_actors_terminate_and_the_shard_keeps_no_reference_to_them) {
  // Every spawned entity is remembered by address only (a weak reference).
  auto spawned = std::make_shared<std::vector<caf::actor_addr>>();
  spawn_shard([spawned](caf::actor_system& sys, const std::string& key, std::string stored) {
    auto a = sys.spawn(profile_actor, key, std::move(stored), profile_options{});
    spawned->push_back(a.address());
    return a;
  });
  event_batch batch;
  for (log_offset i = 1; i <= 50; ++i)
    batch.push_back(playback(i, "p" + std::to_string(i), "pause", 1000, "t1", 42000));
  caf::anon_send(profiles, dispatch_atom_v, committed_batch{batch, 50});
  run();
  ASSERT_EQ(spawned->size(), 50u);
  EXPECT_EQ(labelled("sluice_actors_active"), 50.0);
  advance(100ms); // checkpoint
  advance(11s);   // idle: passivated
  EXPECT_EQ(labelled("sluice_actors_passivated_total"), 50.0);
  EXPECT_EQ(labelled("sluice_actors_active"), 0.0);
  for (auto& addr : *spawned) // gone: nothing (no link, no monitor, no handle) keeps them alive
    EXPECT_EQ(caf::actor_cast<caf::strong_actor_ptr>(addr), nullptr);
  // The shard still serves: a passivated profile is restored from LMDB.
  query("p7");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].first);
  EXPECT_EQ(labelled("sluice_actors_restored_total"), 1.0);
}

TEST_F(shard_test, an_entity_actor_that_fails_stops_its_shard) {
  spawn_shard([](caf::actor_system& sys, const std::string&, std::string) {
    return sys.spawn(failing_entity);
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
  EXPECT_EQ(*down, caf::make_error(caf::sec::runtime_error));
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
}

TEST_F(shard_test, an_unknown_profile_is_not_found_and_not_created) {
  spawn_shard();
  query("nobody");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_FALSE(answers[0].first);
  EXPECT_EQ(labelled("sluice_actors_active"), 0.0);
}

} // namespace
