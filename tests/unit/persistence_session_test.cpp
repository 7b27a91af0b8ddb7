// Session assignment at append: gap by event time, out-of-order events, deterministic ids, the
// LRU cache, and state that survives a restart only when its transaction committed.

#include "persistence_temp_dir.hpp"

#include "messages/codec.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/session_store.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace sluice::persistence {
namespace {

using testing::temp_dir;

constexpr int64_t minute = 60 * 1000;
constexpr int64_t t0 = 1732233600000;

env_options options_for(const temp_dir& dir) {
  env_options opts;
  opts.path = dir.sub("lmdb");
  opts.initial_map_bytes = size_t{16} << 20;
  opts.mode = durability::none;
  return opts;
}

event make(const std::string& device, int64_t ts) {
  event e;
  e.type = "play";
  e.device_id = device;
  e.ts = ts;
  return e;
}

std::string session_of(const event& e) {
  auto v = find_attr(e.attrs, "session_id");
  return v ? std::string{v->s} : std::string{};
}

/// One group commit the way the ingest log runs it.
void commit(environment& env, session_tracker& t, event_batch& events) {
  t.begin();
  t.assign(events);
  write_txn txn{env};
  t.write(txn);
  txn.commit();
  t.commit();
}

session_options with_gap(int64_t gap_ms, size_t cache = 100) {
  session_options o;
  o.gap_ms = gap_ms;
  o.cache_devices = cache;
  return o;
}

TEST(session_tracker, a_gap_longer_than_the_option_starts_a_new_session) {
  temp_dir dir;
  environment env{options_for(dir)};
  session_tracker t{env, with_gap(30 * minute)};
  event_batch b{make("tv-1", t0), make("tv-1", t0 + 10 * minute), make("tv-1", t0 + 39 * minute),
                make("tv-1", t0 + 70 * minute), make("phone-2", t0 + 10 * minute)};
  commit(env, t, b);
  EXPECT_EQ(session_of(b[0]), session_tracker::session_id("tv-1", t0));
  EXPECT_EQ(session_of(b[1]), session_of(b[0]));
  EXPECT_EQ(session_of(b[2]), session_of(b[0])); // 29 min after the previous event
  EXPECT_EQ(session_of(b[3]), session_tracker::session_id("tv-1", t0 + 70 * minute)); // 31 min
  EXPECT_NE(session_of(b[3]), session_of(b[0]));
  EXPECT_EQ(session_of(b[4]), session_tracker::session_id("phone-2", t0 + 10 * minute));
  EXPECT_EQ(session_of(b[0]).size(), 32u);
  EXPECT_EQ(t.started(), 3u);
}

TEST(session_tracker, late_events_join_the_current_session) {
  temp_dir dir;
  environment env{options_for(dir)};
  session_tracker t{env, with_gap(30 * minute)};
  event_batch b{make("tv-1", t0), make("tv-1", t0 + 20 * minute), make("tv-1", t0 - 5 * minute),
                make("tv-1", t0 - 600 * minute), make("tv-1", t0 + 45 * minute)};
  commit(env, t, b);
  for (auto& e : b)
    EXPECT_EQ(session_of(e), session_tracker::session_id("tv-1", t0)) << e.ts;
}

TEST(session_tracker, events_that_carry_a_session_keep_it) {
  temp_dir dir;
  environment env{options_for(dir)};
  session_tracker t{env, with_gap(30 * minute)};
  event_batch b{make("tv-1", t0)};
  commit(env, t, b);
  auto first = session_of(b[0]);
  event_batch again{b[0]}; // a dead letter replayed
  commit(env, t, again);
  EXPECT_EQ(again[0].attrs, b[0].attrs);
  EXPECT_EQ(session_of(again[0]), first);
}

TEST(session_tracker, sessions_survive_a_restart_and_an_evicted_device_is_read_back) {
  temp_dir dir;
  std::string first;
  {
    environment env{options_for(dir)};
    session_tracker t{env, with_gap(30 * minute, 1)}; // cache of one device: evictions
    event_batch b{make("tv-1", t0), make("tv-2", t0), make("tv-3", t0)};
    commit(env, t, b);
    first = session_of(b[0]);
    event_batch c{make("tv-1", t0 + 5 * minute)}; // tv-1 was evicted: read back from LMDB
    commit(env, t, c);
    EXPECT_EQ(session_of(c[0]), first);
  }
  environment env{options_for(dir)};
  session_tracker t{env, with_gap(30 * minute)};
  event_batch d{make("tv-1", t0 + 30 * minute), make("tv-1", t0 + 61 * minute)};
  commit(env, t, d);
  EXPECT_EQ(session_of(d[0]), first);                                             // 25 min gap
  EXPECT_EQ(session_of(d[1]), session_tracker::session_id("tv-1", t0 + 61 * minute)); // 31 min
  EXPECT_EQ(t.started(), 1u);
}

TEST(session_tracker, state_of_a_commit_that_failed_is_dropped) {
  temp_dir dir;
  environment env{options_for(dir)};
  session_tracker t{env, with_gap(30 * minute)};
  event_batch b{make("tv-1", t0)};
  commit(env, t, b);
  {
    t.begin();
    event_batch lost{make("tv-1", t0 + 100 * minute)}; // would start a session...
    t.assign(lost);
    write_txn txn{env};
    t.write(txn);
  } // ...but its transaction aborts
  event_batch c{make("tv-1", t0 + 20 * minute)};
  commit(env, t, c);
  EXPECT_EQ(session_of(c[0]), session_of(b[0]));
  session_tracker fresh{env, with_gap(30 * minute)};
  event_batch d{make("tv-1", t0 + 40 * minute)};
  commit(env, fresh, d);
  EXPECT_EQ(session_of(d[0]), session_of(b[0]));
}

TEST(session_tracker, the_stored_state_round_trips) {
  device_session s{t0, t0 + 5, "abc"};
  device_session back;
  ASSERT_TRUE(session_tracker::decode(session_tracker::encode(s), back));
  EXPECT_EQ(back.start_ts, s.start_ts);
  EXPECT_EQ(back.last_ts, s.last_ts);
  EXPECT_EQ(back.id, s.id);
  EXPECT_FALSE(session_tracker::decode("short", back));
}

} // namespace
} // namespace sluice::persistence
