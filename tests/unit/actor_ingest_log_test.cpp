#include "actor_fixture.hpp"

#include "actors/admission.hpp"
#include "actors/ingest_log.hpp"
#include "persistence/log_store.hpp"

#include <functional>

using namespace sluice;
using namespace sluice::testing;

namespace {

struct ingest_log_test : actor_test {
  std::shared_ptr<captured> router = std::make_shared<captured>();
  std::shared_ptr<captured> devices = std::make_shared<captured>();
  std::shared_ptr<captured> profiles = std::make_shared<captured>();
  std::vector<consumer_actor> consumers;
  /// What the all-events consumers after the first got (one per extra name in `sinks`).
  std::vector<std::shared_ptr<captured>> others;
  std::shared_ptr<admission> gate = std::make_shared<admission>();
  /// `ingest_log_deps` bounds of the next spawned log.
  size_t checkpoint_entries_per_commit = 512;
  size_t checkpoint_max_commits = 16;
  size_t trim_records_per_commit = 64;

  /// A log with one all-events consumer per name in `sinks` (the first one is `router`), a device
  /// shard and a profile shard; dispatching starts at once unless `start` is false.
  ingest_log_actor spawn_log(std::vector<std::string> sinks = {"sink.a"}, bool start = true,
                             size_t window = 32768, uint64_t max_log_bytes = 0,
                             size_t catch_up = 0) {
    ingest_log_deps deps;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.window_events = window;
    deps.catch_up_events = catch_up;
    deps.max_log_bytes = max_log_bytes;
    deps.gate = gate;
    deps.checkpoint_entries_per_commit = checkpoint_entries_per_commit;
    deps.checkpoint_max_commits = checkpoint_max_commits;
    deps.trim_records_per_commit = trim_records_per_commit;
    for (auto& name : sinks)
      deps.consumers.push_back({name, consumer_spec::slice::all, 0, 1});
    deps.consumers.push_back({"devices.0", consumer_spec::slice::device, 0, 1});
    deps.consumers.push_back({"profiles.0", consumer_spec::slice::profile, 0, 1});
    auto log = spawn(ingest_log, std::move(deps));
    consumers.clear();
    consumers.push_back(spawn(capture_consumer, router));
    others.clear();
    for (size_t i = 1; i < sinks.size(); ++i) {
      others.push_back(std::make_shared<captured>());
      consumers.push_back(spawn(capture_consumer, others.back()));
    }
    consumers.push_back(spawn(capture_consumer, devices));
    consumers.push_back(spawn(capture_consumer, profiles));
    caf::anon_send(log, connect_atom_v, consumers);
    if (start)
      caf::anon_send(log, replay_atom_v);
    run();
    return log;
  }

  /// Every consumer of a one-sink log records that it is done with `upto` (the log trims).
  void all_consumers_done(const ingest_log_actor& log, log_offset upto) {
    for (auto name : {"sink.a", "devices.0", "profiles.0"}) {
      checkpoint cp;
      cp.consumer = name;
      cp.done_upto = upto;
      spawn([log, cp](caf::event_based_actor* self) {
        self->request(log, caf::infinite, commit_atom_v, cp).then([](caf::ok_atom) {});
      });
    }
    run();
  }

  void append_one(const ingest_log_actor& log, const std::string& id,
                  std::vector<ingest_outcome>& acks) {
    caf::anon_send(log, append_atom_v, request({make_event(id, "play", "d", "p", 1)}, acks));
    run();
  }

  /// Runs one message at a time until nothing is left, calling `fn(n)` after the log's commit
  /// number `n` (counted from here), with its effects in LMDB.
  void step_commits(const std::function<void(size_t)>& fn) {
    auto commits = metrics_.value("sluice_log_commits_total");
    size_t n = 0;
    while (sched_.try_run_once()) {
      if (metrics_.value("sluice_log_commits_total") == commits)
        continue;
      commits = metrics_.value("sluice_log_commits_total");
      fn(++n);
    }
  }

  /// A checkpoint of `consumer` up to `done_upto` with `n` entries `<prefix><i>` → `<value><i>`.
  static checkpoint make_checkpoint(state_space space, int n, const std::string& prefix,
                                    const std::string& value, const std::string& consumer,
                                    log_offset done_upto, bool divisible) {
    checkpoint cp;
    cp.space = space;
    for (int i = 0; i < n; ++i)
      cp.entries.emplace_back(prefix + std::to_string(i), value + std::to_string(i));
    cp.consumer = consumer;
    cp.done_upto = done_upto;
    cp.divisible = divisible;
    return cp;
  }

  /// After each commit from here on (`step_commits`): how many keys `which` holds, and whether
  /// it or `db::offsets` (`in_offsets`) holds `key`.
  std::vector<std::pair<size_t, bool>> keys_after_each_commit(persistence::db which,
                                                              const std::string& key,
                                                              bool in_offsets) {
    std::vector<std::pair<size_t, bool>> out;
    step_commits([&](size_t) {
      persistence::read_txn txn{*env_};
      size_t keys = 0;
      txn.scan(which, "", [&](std::string_view, std::string_view) {
        ++keys;
        return true;
      });
      out.emplace_back(keys,
                       txn.get(in_offsets ? persistence::db::offsets : which, key).has_value());
    });
    return out;
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
  // The shards get the whole batch too (one shared message; they pick their keys' events).
  EXPECT_EQ(devices->events(), 6u);
  EXPECT_EQ(profiles->events(), 6u);
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
  auto log = spawn_log();
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

TEST_F(ingest_log_test, a_divisible_checkpoint_shares_commits_with_appends_a_slice_at_a_time) {
  checkpoint_entries_per_commit = 4;
  auto log = spawn_log();
  auto cp = make_checkpoint(state_space::devices, 10, "d", "state-", "devices.0", 7, true);
  bool answered = false;
  spawn([&answered, log, cp](caf::event_based_actor* self) {
    self->request(log, caf::infinite, commit_atom_v, cp).then([&answered](caf::ok_atom) {
      answered = true;
    });
  });
  // A batch arriving with the checkpoint is acked by the first commit, which carries 4 states.
  std::vector<double> acked_at;
  ingest_request req;
  req.events = {make_event("x", "play", "d", "p", 1)};
  req.reply = [&acked_at, this](ingest_outcome o) {
    EXPECT_TRUE(o.error.empty());
    acked_at.push_back(metrics_.value("sluice_log_commits_total"));
  };
  caf::anon_send(log, append_atom_v, std::move(req));
  // states stored, offset stored
  auto per_commit = keys_after_each_commit(persistence::db::devices, "devices.0", true);
  ASSERT_EQ(acked_at.size(), 1u);
  EXPECT_EQ(acked_at[0], 1.0) << "the batch rode on the first commit, with the first 4 states";
  EXPECT_EQ(per_commit, (std::vector<std::pair<size_t, bool>>{{4, false}, {8, false}, {10, true}}))
    << "10 states at 4 per commit, the offset with the last of them";
  EXPECT_TRUE(answered);
  EXPECT_EQ(metrics_.value("sluice_log_checkpoint_entries_waiting"), 0.0);
  persistence::read_txn txn{*env_};
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(txn.get(persistence::db::devices, "d" + std::to_string(i)).value_or(""),
              "state-" + std::to_string(i));
  auto offset = txn.get(persistence::db::offsets, "devices.0");
  ASSERT_TRUE(offset.has_value());
  EXPECT_EQ(persistence::decode_be64(*offset), 7u);
}

TEST_F(ingest_log_test, a_large_divisible_checkpoint_takes_bigger_slices_to_land_within_its_commit_limit) {
  checkpoint_entries_per_commit = 4;
  checkpoint_max_commits = 2;
  auto log = spawn_log();
  auto cp = make_checkpoint(state_space::devices, 10, "d", "s", "devices.0", 9, true);
  spawn([log, cp](caf::event_based_actor* self) {
    self->request(log, caf::infinite, commit_atom_v, cp).then([](caf::ok_atom) {});
  });
  // states stored, offset stored
  auto per_commit = keys_after_each_commit(persistence::db::devices, "devices.0", true);
  EXPECT_EQ(per_commit, (std::vector<std::pair<size_t, bool>>{{5, false}, {10, true}}))
    << "10 states in at most 2 commits: 5 per commit, more than the 4 of the bound";
}

TEST_F(ingest_log_test, an_indivisible_checkpoint_lands_whole_in_one_commit_even_past_the_bound) {
  checkpoint_entries_per_commit = 4;
  auto log = spawn_log();
  // One entry ("z0"), queued behind the large one.
  auto small = make_checkpoint(state_space::aggregates, 1, "z", "v", "sink.a", 3, false);
  auto large = make_checkpoint(state_space::aggregates, 10, "k", "v", "profiles.0", 5, false);
  size_t answers = 0;
  spawn([&answers, log, large, small](caf::event_based_actor* self) { // in this order
    for (auto& cp : {large, small})
      self->request(log, caf::infinite, commit_atom_v, cp).then([&answers](caf::ok_atom) {
        ++answers;
      });
  });
  // aggregate keys stored, "z0" among them
  auto per_commit = keys_after_each_commit(persistence::db::aggregates, "z0", false);
  EXPECT_EQ(per_commit, (std::vector<std::pair<size_t, bool>>{{10, false}, {11, true}}))
    << "the large one came first and went whole; the bound was spent, so the next waited";
  EXPECT_EQ(answers, 2u);
}

TEST_F(ingest_log_test, a_large_trim_is_spread_over_commits_and_finishes_without_new_batches) {
  trim_records_per_commit = 2;
  auto log = spawn_log();
  std::vector<ingest_outcome> acks;
  for (int i = 0; i < 5; ++i)
    append_one(log, "t" + std::to_string(i), acks);
  ASSERT_EQ(metrics_.value("sluice_log_stored_records"), 5.0);
  for (auto name : {"sink.a", "devices.0", "profiles.0"}) {
    checkpoint cp;
    cp.consumer = name;
    cp.done_upto = 5;
    spawn([log, cp](caf::event_based_actor* self) {
      self->request(log, caf::infinite, commit_atom_v, cp).then([](caf::ok_atom) {});
    });
  }
  // Step through: each commit trims at most 2 records, and the log keeps committing (with no
  // batch arriving) until all 5 are gone.
  std::vector<double> trims;
  double trimmed = 0;
  step_commits([&](size_t) {
    auto now = metrics_.value("sluice_log_trimmed_records_total");
    if (now > trimmed)
      trims.push_back(now - trimmed);
    trimmed = now;
  });
  EXPECT_EQ(trims, (std::vector<double>{2, 2, 1}));
  EXPECT_EQ(metrics_.value("sluice_log_stored_records"), 0.0);
  persistence::log_store store{*env_};
  store.open();
  EXPECT_EQ(store.stats().records, 0u);
  EXPECT_EQ(store.stats().next_offset, 6u);
}

TEST_F(ingest_log_test, replay_sends_each_consumer_the_events_above_its_own_offset) {
  {
    auto log = spawn_log({"sink.a", "sink.b"});
    std::vector<ingest_outcome> acks;
    for (int i = 0; i < 4; ++i) {
      caf::anon_send(log, append_atom_v,
                     request({make_event(std::to_string(i), "play", "d", "p", i)}, acks));
      run();
    }
    ASSERT_EQ(acks.size(), 4u);
    // sink.a is done with 3 events, sink.b with 2.
    persistence::write_txn txn{*env_};
    txn.put(persistence::db::offsets, "sink.a", persistence::encode_be64(3));
    txn.put(persistence::db::offsets, "sink.b", persistence::encode_be64(2));
    txn.commit();
    caf::anon_send_exit(log, caf::exit_reason::user_shutdown);
    run();
  }
  router->batches.clear();
  auto log = spawn_log({"sink.a", "sink.b"});
  ASSERT_EQ(router->events(), 1u);
  EXPECT_EQ(router->batches[0].events[0].offset, 4u);
  EXPECT_EQ(router->batches.back().upto, 4u);
  ASSERT_EQ(others.size(), 1u);
  ASSERT_EQ(others[0]->events(), 2u);
  EXPECT_EQ(others[0]->batches[0].events[0].offset, 3u);
  EXPECT_EQ(others[0]->batches.back().upto, 4u);
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

TEST_F(ingest_log_test, a_consumer_past_its_window_stops_getting_live_batches_and_catches_up_from_lmdb) {
  router->auto_process = false;
  auto log = spawn_log({"sink.a"}, true, /*window*/ 4, 0, /*catch_up*/ 2);
  std::vector<ingest_outcome> acks;
  for (int i = 0; i < 10; ++i)
    caf::anon_send(log, append_atom_v,
                   request({make_event("e" + std::to_string(i), "play", "d", "p", i)}, acks));
  run(); // one group commit of 10 single-event batches: larger than the window, sent as one
  ASSERT_EQ(router->events(), 10u);
  for (int i = 10; i < 16; ++i)
    append_one(log, "e" + std::to_string(i), acks);
  ASSERT_EQ(acks.size(), 16u);
  // The consumer has not processed anything: it got nothing more, but the shards did.
  EXPECT_EQ(router->events(), 10u);
  EXPECT_EQ(devices->events(), 16u);
  // Once it reports progress, the rest comes from the stored log in chunks (here 2 events), in
  // order, one chunk ahead: it gets the next chunk while it still has max(window/2, one chunk)
  // unprocessed events, no more.
  caf::send_as(consumers[0], log, processed_atom_v, log_offset{10});
  run();
  ASSERT_EQ(router->events(), 14u);
  auto& first_chunk = router->batches[router->batches.size() - 2];
  EXPECT_EQ(first_chunk.events.front().offset, 11u);
  EXPECT_EQ(first_chunk.upto, 12u);
  EXPECT_EQ(router->batches.back().events.front().offset, 13u);
  EXPECT_EQ(router->batches.back().upto, 14u);
  caf::send_as(consumers[0], log, processed_atom_v, log_offset{12});
  run();
  EXPECT_EQ(router->events(), 16u);
  EXPECT_EQ(router->batches.back().upto, 16u);
  EXPECT_GT(metrics_.value("sluice_log_catch_up_events_total"), 0.0);
  // Caught up: the next commit arrives live again.
  for (log_offset upto : {log_offset{14}, log_offset{16}}) {
    caf::send_as(consumers[0], log, processed_atom_v, upto);
    run();
  }
  append_one(log, "live", acks);
  EXPECT_EQ(router->events(), 17u);
  EXPECT_EQ(router->batches.back().events.back().id, "live");
}

TEST_F(ingest_log_test, after_a_restart_one_read_per_chunk_serves_every_consumer_at_that_position) {
  {
    auto log = spawn_log({"sink.a", "sink.b"});
    std::vector<ingest_outcome> acks;
    for (int i = 0; i < 8; ++i)
      append_one(log, "e" + std::to_string(i), acks);
    ASSERT_EQ(acks.size(), 8u);
    caf::anon_send_exit(log, caf::exit_reason::user_shutdown);
    run();
  }
  router->batches.clear();
  devices->batches.clear();
  profiles->batches.clear();
  // No consumer recorded an offset: all four start at offset 1 and catch up in chunks of 4.
  auto log = spawn_log({"sink.a", "sink.b"}, true, 32768, 0, /*catch_up*/ 4);
  EXPECT_EQ(metrics_.value("sluice_log_catch_up_reads_total"), 2.0)
    << "two chunks read once each, not once per consumer";
  for (auto* got : {router.get(), others.at(0).get(), devices.get(), profiles.get()}) {
    ASSERT_EQ(got->events(), 8u);
    log_offset expected = 1;
    for (auto& b : got->batches)
      for (auto& e : b.events)
        EXPECT_EQ(e.offset, expected++) << "every event once, in offset order";
    EXPECT_EQ(got->batches.back().upto, 8u);
  }
  // Every consumer reached the head: the next commit is dispatched live.
  std::vector<ingest_outcome> acks;
  append_one(log, "live", acks);
  EXPECT_EQ(router->events(), 9u);
  EXPECT_EQ(devices->events(), 9u);
  EXPECT_EQ(metrics_.value("sluice_log_catch_up_reads_total"), 2.0);
}

TEST_F(ingest_log_test, a_lagging_consumer_gets_the_next_chunk_before_it_reports_the_previous_one) {
  {
    auto log = spawn_log();
    std::vector<ingest_outcome> acks;
    for (int i = 0; i < 8; ++i)
      append_one(log, "e" + std::to_string(i), acks);
    caf::anon_send_exit(log, caf::exit_reason::user_shutdown);
    run();
  }
  router->batches.clear();
  devices->batches.clear();
  router->auto_process = false;
  auto log = spawn_log({"sink.a"}, true, /*window*/ 4, 0, /*catch_up*/ 2);
  // Two chunks (one to apply, one waiting in its mailbox), nothing more until it reports.
  ASSERT_EQ(router->batches.size(), 2u);
  EXPECT_EQ(router->batches[0].upto, 2u);
  EXPECT_EQ(router->batches[1].upto, 4u);
  EXPECT_EQ(devices->events(), 8u) << "the other consumers are not held back";
  caf::send_as(consumers[0], log, processed_atom_v, log_offset{2});
  run();
  ASSERT_EQ(router->batches.size(), 3u);
  EXPECT_EQ(router->batches[2].events.front().offset, 5u);
  EXPECT_EQ(router->batches[2].upto, 6u);
}

TEST_F(ingest_log_test, nothing_is_dispatched_before_replay_starts_and_replay_covers_it) {
  auto log = spawn_log({"sink.a"}, /*start*/ false);
  std::vector<ingest_outcome> acks;
  append_one(log, "early", acks);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(router->events(), 0u);
  caf::anon_send(log, replay_atom_v);
  run();
  ASSERT_EQ(router->events(), 1u);
  EXPECT_EQ(router->batches[0].events[0].id, "early");
}

TEST_F(ingest_log_test, the_gate_closes_while_the_stored_log_exceeds_max_log_bytes_and_reopens_after_trim) {
  auto log = spawn_log({"sink.a"}, true, 32768, /*max_log_bytes*/ 100);
  std::vector<ingest_outcome> acks;
  for (int i = 0; i < 8 && gate->open.load(); ++i)
    append_one(log, "fill-" + std::to_string(i), acks);
  ASSERT_FALSE(gate->open.load()) << "the log never exceeded 100 bytes: "
                                   << metrics_.value("sluice_log_stored_bytes");
  EXPECT_NE(std::string{gate->reason.load()}.find("max-log-bytes"), std::string::npos);
  EXPECT_EQ(metrics_.value("sluice_ingest_open"), 0.0);
  // The limit is the gateway's: a batch it admitted before the gate closed is still stored (a
  // WebSocket frame already read is never refused for it).
  append_one(log, "admitted-before", acks);
  EXPECT_TRUE(acks.back().error.empty());
  EXPECT_EQ(metrics_.value("sluice_log_refused_events_total"), 0.0);
  auto stored = acks.size();
  // Every consumer records it is done: the log is trimmed and the gate opens.
  all_consumers_done(log, stored);
  EXPECT_TRUE(gate->open.load());
  append_one(log, "after", acks);
  EXPECT_TRUE(acks.back().error.empty());
}

TEST_F(ingest_log_test, the_log_refuses_batches_near_the_map_limit_and_takes_them_again_after_a_trim) {
  open_env(size_t{256} << 10); // the log may fill 3/4 of it; the rest is kept for checkpoints
  auto log = spawn_log({"sink.a"});
  std::vector<ingest_outcome> acks;
  size_t stored = 0;
  for (int i = 0; i < 200; ++i) {
    append_one(log, "fill-" + std::to_string(i), acks);
    if (!acks.back().error.empty())
      break;
    stored = acks.size();
  }
  ASSERT_FALSE(acks.back().error.empty()) << "the log never filled the map";
  EXPECT_NE(acks.back().error.find("storage space"), std::string::npos) << acks.back().error;
  EXPECT_GT(acks.back().retry_after_s, 0u);
  EXPECT_FALSE(gate->open.load());
  EXPECT_EQ(metrics_.value("sluice_log_refused_events_total"), 1.0);
  // The consumers' progress still commits in the room kept for it; the trim frees the log.
  all_consumers_done(log, stored);
  EXPECT_TRUE(gate->open.load());
  append_one(log, "after", acks);
  EXPECT_TRUE(acks.back().error.empty()) << acks.back().error;
}

} // namespace
