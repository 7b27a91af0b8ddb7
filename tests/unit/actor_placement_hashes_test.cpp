// The placement hashes a committed batch carries: computed once by the ingest log (live dispatch,
// catch-up chunks, a batch from inside a chunk), read by the shards instead of hashing every key,
// and recomputed by a shard given a batch without them.

#include "actor_fixture.hpp"

#include "actors/entity.hpp"
#include "actors/ingest_log.hpp"
#include "actors/placement.hpp"
#include "actors/shard.hpp"
#include "persistence/lmdb.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::testing;

namespace {

/// An entity that records every event applied to it as "key:id".
class recording_entity : public entity {
public:
  recording_entity(std::string key, std::shared_ptr<std::vector<std::string>> out)
    : key_(std::move(key)), out_(std::move(out)) {
  }
  bool apply(const event& e) override {
    out_->push_back(key_ + ":" + e.id);
    return true;
  }
  std::string encode() const override {
    return "state";
  }
  std::string query(const std::string&) const override {
    return "{}";
  }

private:
  std::string key_;
  std::shared_ptr<std::vector<std::string>> out_;
};

struct placement_hashes_test : actor_test {
  /// What each consumer got, in `consumer_names` order.
  std::vector<std::shared_ptr<captured>> got;
  std::vector<consumer_actor> consumers;
  /// A sink (every event), two device shards and two profile shards.
  const std::vector<consumer_spec> specs{{"sink.a", consumer_spec::slice::all, 0, 1},
                                         {"devices.0", consumer_spec::slice::device, 0, 2},
                                         {"devices.1", consumer_spec::slice::device, 1, 2},
                                         {"profiles.0", consumer_spec::slice::profile, 0, 2},
                                         {"profiles.1", consumer_spec::slice::profile, 1, 2}};

  ingest_log_actor spawn_log(bool start = true, size_t window = 32768, size_t catch_up = 0) {
    ingest_log_deps deps;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.window_events = window;
    deps.catch_up_events = catch_up;
    deps.consumers = specs;
    auto log = spawn(ingest_log, std::move(deps));
    got.clear();
    consumers.clear();
    for (size_t i = 0; i < specs.size(); ++i) {
      got.push_back(std::make_shared<captured>());
      consumers.push_back(spawn(capture_consumer, got.back()));
    }
    caf::anon_send(log, connect_atom_v, consumers);
    if (start)
      caf::anon_send(log, replay_atom_v);
    run();
    return log;
  }

  /// Event `i`: its own device, profile `p<i>` except every third event (no profile).
  static event numbered(int i) {
    return make_event("e" + std::to_string(i), "play", "dev-" + std::to_string(i * 7919),
                      i % 3 == 0 ? "" : "p" + std::to_string(i), 1000 + i);
  }

  void append(const ingest_log_actor& log, event_batch events) {
    ingest_request req;
    req.events = std::move(events);
    req.reply = [this](ingest_outcome o) { acks.push_back(std::move(o)); };
    caf::anon_send(log, append_atom_v, std::move(req));
    run();
  }

  /// Expects `b`'s hashes of `k` to be `key_hash` of each of its events' keys.
  static void expect_hashes_match(const committed_batch& b, placement_key k) {
    auto& hashes = key_hashes(b, k);
    ASSERT_EQ(hashes.size(), b.events.size());
    for (size_t i = 0; i < b.events.size(); ++i)
      EXPECT_EQ(hashes[i], key_hash(key_of(k, b.events[i]))) << "event " << b.events[i].id;
  }

  std::vector<ingest_outcome> acks;
};

TEST_F(placement_hashes_test, a_dispatched_batch_carries_the_key_hash_of_each_events_device_and_profile) {
  auto log = spawn_log();
  event_batch events;
  for (int i = 1; i <= 20; ++i)
    events.push_back(numbered(i));
  append(log, events);
  ASSERT_EQ(acks.size(), 1u);
  for (auto& c : got) {
    ASSERT_EQ(c->batches.size(), 1u);
    ASSERT_EQ(c->batches[0].events.size(), 20u) << "every consumer gets the one shared batch";
    expect_hashes_match(c->batches[0], placement_key::device);
    expect_hashes_match(c->batches[0], placement_key::profile);
  }
}

TEST_F(placement_hashes_test, each_shards_window_counts_the_events_whose_key_hashes_to_it) {
  // Consumers do not report progress here: what the log keeps sending shows what it counted.
  auto log = spawn_log(true, /*window*/ 6);
  for (auto& c : got)
    c->auto_process = false;
  // Commits of 5 events each; every consumer's count of its own events per commit (empty
  // profiles count for no profile shard) decides when its window of 6 is full.
  std::vector<size_t> sent_commits(specs.size(), 0);
  std::vector<size_t> inflight(specs.size(), 0);
  std::vector<bool> live(specs.size(), true);
  int next = 1;
  for (int commit = 0; commit < 8; ++commit) {
    event_batch events;
    for (int j = 0; j < 5; ++j)
      events.push_back(numbered(next++));
    for (size_t c = 0; c < specs.size(); ++c) {
      auto& spec = specs[c];
      size_t n = 0;
      for (auto& e : events) {
        if (spec.filter == consumer_spec::slice::all) {
          ++n;
          continue;
        }
        auto key = spec.filter == consumer_spec::slice::device ? e.device_id : e.profile_id;
        if (!key.empty() && shard_index(key, spec.count) == spec.index)
          ++n;
      }
      // The log's rule: sent while nothing is in flight or it fits the window.
      if (live[c] && (inflight[c] == 0 || inflight[c] + n <= 6)) {
        inflight[c] += n;
        ++sent_commits[c];
      } else {
        live[c] = false;
      }
    }
    append(log, std::move(events));
  }
  size_t stopped = 0;
  for (size_t c = 0; c < specs.size(); ++c) {
    EXPECT_EQ(got[c]->batches.size(), sent_commits[c]) << specs[c].name;
    stopped += live[c] ? 0 : 1;
  }
  EXPECT_EQ(stopped, specs.size()) << "every window filled: the counts were tested";
}

TEST_F(placement_hashes_test, catch_up_chunks_and_a_batch_from_inside_a_chunk_carry_their_events_hashes) {
  {
    auto log = spawn_log(/*start*/ false);
    for (int i = 1; i <= 12; ++i)
      append(log, {numbered(i)});
    ASSERT_EQ(acks.size(), 12u);
    caf::anon_send_exit(log, caf::exit_reason::user_shutdown);
    run();
  }
  // devices.1 is done with offset 5: it starts inside the first chunk (offsets 1..8).
  {
    persistence::write_txn txn{*env_};
    txn.put(persistence::db::offsets, "devices.1", persistence::encode_be64(5));
    txn.commit();
  }
  auto log = spawn_log(true, 32768, /*catch_up*/ 8);
  EXPECT_EQ(metrics_.value("sluice_log_catch_up_reads_total"), 2.0);
  for (size_t c = 0; c < specs.size(); ++c) {
    ASSERT_FALSE(got[c]->batches.empty()) << specs[c].name;
    for (auto& b : got[c]->batches) {
      if (c == 2)
        continue; // below
      ASSERT_EQ(b.events.size(), b.upto == 8u ? 8u : 4u) << "the chunk shared by every consumer";
      expect_hashes_match(b, placement_key::device);
      expect_hashes_match(b, placement_key::profile);
    }
  }
  // Its first batch is its own: events after 5 whose device hashes to shard 1, with those hashes.
  auto& mine = got[2]->batches.at(0);
  EXPECT_EQ(mine.upto, 8u);
  size_t expected = 0;
  for (int i = 6; i <= 8; ++i)
    expected += shard_index(numbered(i).device_id, 2) == 1 ? 1 : 0;
  ASSERT_EQ(mine.events.size(), expected);
  for (auto& e : mine.events) {
    EXPECT_GT(e.offset, 5u);
    EXPECT_EQ(shard_index(e.device_id, 2), 1u);
  }
  expect_hashes_match(mine, placement_key::device);
  // Then the shared second chunk.
  ASSERT_EQ(got[2]->batches.size(), 2u);
  EXPECT_EQ(got[2]->batches[1].events.size(), 4u);
  expect_hashes_match(got[2]->batches[1], placement_key::device);
}

TEST(placement, the_shard_of_a_hash_is_its_remainder_by_the_shard_count_for_any_count) {
  for (auto key : {"", "dev-0000000000000001", "prof-0000000042", "a", "tv-livingroom"}) {
    auto hash = key_hash(key);
    for (size_t n = 1; n <= 9; ++n)
      EXPECT_EQ(shard_of(hash, n), hash % n) << key << " of " << n;
  }
  EXPECT_EQ(shard_of(~size_t{0}, 4), 3u);
  EXPECT_EQ(shard_of(~size_t{0}, 3), ~size_t{0} % 3);
}

struct shard_hashes_test : actor_test {
  ingest_log_actor log;

  /// A shard of profiles (index 1 of 2, done with offset 2) whose entities record what they
  /// apply into `out`.
  shard_actor spawn_recording_shard(std::shared_ptr<std::vector<std::string>> out) {
    if (!log) {
      ingest_log_deps ldeps;
      ldeps.env = env_.get();
      ldeps.metrics = &metrics_;
      log = spawn(ingest_log, std::move(ldeps));
    }
    shard_deps deps;
    deps.kind.name = "profile";
    deps.kind.space = state_space::profiles;
    deps.kind.key = placement_key::profile;
    deps.kind.make = [out](std::string_view key, std::string_view) -> std::unique_ptr<entity> {
      return std::make_unique<recording_entity>(std::string{key}, out);
    };
    deps.index = 1;
    deps.count = 2;
    deps.log = log;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.done_upto = 2;
    return spawn(shard, std::move(deps));
  }
};

TEST_F(shard_hashes_test, a_shard_applies_the_same_events_from_a_batch_with_hashes_as_without) {
  event_batch events;
  for (int i = 1; i <= 60; ++i) {
    auto e = placement_hashes_test::numbered(i % 20); // keys repeat: entities get several events
    e.id = "e" + std::to_string(i);
    e.offset = static_cast<log_offset>(i);
    events.push_back(std::move(e));
  }
  committed_batch with{events, 60};
  add_key_hashes(with, placement_key::device);
  add_key_hashes(with, placement_key::profile);
  committed_batch without{events, 60};
  committed_batch wrong_kind{events, 60}; // only the other kind's hashes: recomputed
  add_key_hashes(wrong_kind, placement_key::device);
  auto a = std::make_shared<std::vector<std::string>>();
  auto b = std::make_shared<std::vector<std::string>>();
  auto c = std::make_shared<std::vector<std::string>>();
  caf::anon_send(spawn_recording_shard(a), dispatch_atom_v, with);
  caf::anon_send(spawn_recording_shard(b), dispatch_atom_v, without);
  caf::anon_send(spawn_recording_shard(c), dispatch_atom_v, wrong_kind);
  run();
  // What shard 1 of 2 must apply: offsets past 2, with a profile that hashes to it, in order.
  std::vector<std::string> expected;
  for (auto& e : events)
    if (e.offset > 2 && !e.profile_id.empty() && shard_index(e.profile_id, 2) == 1)
      expected.push_back(e.profile_id + ":" + e.id);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(*a, expected);
  EXPECT_EQ(*b, expected);
  EXPECT_EQ(*c, expected);
}

} // namespace
