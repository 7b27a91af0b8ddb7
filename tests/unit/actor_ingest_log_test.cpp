#include "actor_fixture.hpp"

#include "actors/ingest_log.hpp"
#include "persistence/log_store.hpp"

using namespace sluice;
using namespace sluice::testing;

namespace {

struct ingest_log_test : actor_test {
  std::shared_ptr<captured> router = std::make_shared<captured>();
  std::shared_ptr<captured> devices = std::make_shared<captured>();
  std::shared_ptr<captured> profiles = std::make_shared<captured>();

  ingest_log_actor spawn_log(std::vector<std::string> consumers = {"sink.a"}) {
    ingest_log_deps deps;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.consumers = std::move(consumers);
    auto log = spawn(ingest_log, std::move(deps));
    auto r = spawn(capture_consumer, router);
    auto d = spawn(capture_consumer, devices);
    auto p = spawn(capture_consumer, profiles);
    caf::anon_send(log, connect_atom_v, consumer_actor{r}, std::vector<consumer_actor>{d},
                   std::vector<consumer_actor>{p});
    run();
    return log;
  }

  ingest_request request(event_batch events, std::vector<ingest_outcome>& outcomes) {
    ingest_request req;
    req.events = std::move(events);
    req.reply = [&outcomes](ingest_outcome o) { outcomes.push_back(std::move(o)); };
    return req;
  }
};

TEST_F(ingest_log_test, batches_arriving_during_a_commit_share_one_group_commit_and_are_acked_in_order) {
  auto log = spawn_log();
  std::vector<ingest_outcome> acks;
  for (int i = 0; i < 3; ++i)
    caf::anon_send(log, append_atom_v,
                   request({make_event("a" + std::to_string(i), "play", "d1", "p1", 10 + i),
                            make_event("b" + std::to_string(i), "play", "d2", "", 20 + i)},
                           acks));
  EXPECT_TRUE(acks.empty()) << "nothing may be acked before the commit";
  run();
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(metrics_.value("sluice_log_commits_total"), 1.0);
  for (size_t i = 0; i < acks.size(); ++i) {
    EXPECT_TRUE(acks[i].error.empty());
    EXPECT_EQ(acks[i].first, 1 + 2 * i);
    EXPECT_EQ(acks[i].last, 2 + 2 * i);
  }
  // The router got all six committed events once, in offset order.
  ASSERT_EQ(router->batches.size(), 1u);
  ASSERT_EQ(router->batches[0].events.size(), 6u);
  for (size_t i = 0; i < 6; ++i)
    EXPECT_EQ(router->batches[0].events[i].offset, i + 1);
  EXPECT_EQ(router->batches[0].upto, 6u);
  // Profile shards get only events with a profile.
  EXPECT_EQ(devices->events(), 6u);
  EXPECT_EQ(profiles->events(), 3u);
}

TEST_F(ingest_log_test, committed_batches_are_durable_in_lmdb_before_the_ack) {
  auto log = spawn_log();
  std::vector<ingest_outcome> acks;
  caf::anon_send(log, append_atom_v, request({make_event("x", "click", "d", "p", 5)}, acks));
  run();
  ASSERT_EQ(acks.size(), 1u);
  persistence::log_store store{*env_};
  store.open();
  EXPECT_EQ(store.stats().next_offset, 2u);
  EXPECT_EQ(store.stats().records, 1u);
}

TEST_F(ingest_log_test, a_checkpoint_records_the_consumer_offset_and_its_state_in_one_commit) {
  auto log = spawn_log({"profiles.0"});
  checkpoint cp;
  cp.space = state_space::profiles;
  cp.entries = {{"p1", "state-bytes"}};
  cp.consumer = "profiles.0";
  cp.done_upto = 42;
  bool ok = false;
  spawn([&ok, log, cp](caf::event_based_actor* self) {
    self->request(log, caf::infinite, commit_atom_v, cp).then([&ok](caf::ok_atom) { ok = true; });
  });
  run();
  EXPECT_TRUE(ok) << "the checkpoint is answered after its commit";
  persistence::read_txn txn{*env_};
  auto state = txn.get(persistence::db::profiles, "p1");
  auto offset = txn.get(persistence::db::offsets, "profiles.0");
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(*state, "state-bytes");
  ASSERT_TRUE(offset.has_value());
  EXPECT_EQ(persistence::decode_be64(*offset), 42u);
}

TEST_F(ingest_log_test, replay_sends_only_events_above_the_lowest_consumer_offset) {
  {
    auto log = spawn_log({"sink.a", "sink.b"});
    std::vector<ingest_outcome> acks;
    for (int i = 0; i < 4; ++i) {
      caf::anon_send(log, append_atom_v,
                     request({make_event(std::to_string(i), "play", "d", "p", i)}, acks));
      run();
    }
    ASSERT_EQ(acks.size(), 4u);
    // sink.a is done with 3 events, sink.b with 2: replay must restart at offset 3.
    persistence::write_txn txn{*env_};
    txn.put(persistence::db::offsets, "sink.a", persistence::encode_be64(3));
    txn.put(persistence::db::offsets, "sink.b", persistence::encode_be64(2));
    txn.commit();
    caf::anon_send_exit(log, caf::exit_reason::user_shutdown);
    run();
  }
  router->batches.clear();
  auto log = spawn_log({"sink.a", "sink.b"});
  caf::anon_send(log, replay_atom_v);
  run();
  ASSERT_EQ(router->events(), 2u);
  EXPECT_EQ(router->batches[0].events[0].offset, 3u);
  EXPECT_EQ(router->batches.back().events.back().offset, 4u);
  EXPECT_EQ(router->batches.back().upto, 4u);
}

TEST_F(ingest_log_test, drain_commits_pending_batches_and_drains_every_consumer) {
  auto log = spawn_log();
  std::vector<ingest_outcome> acks;
  caf::anon_send(log, append_atom_v, request({make_event("z", "play", "d", "p", 1)}, acks));
  caf::anon_send(log, drain_atom_v);
  run();
  EXPECT_EQ(acks.size(), 1u);
  EXPECT_EQ(router->drains, 1u);
  EXPECT_EQ(devices->drains, 1u);
  EXPECT_EQ(profiles->drains, 1u);
}

} // namespace
