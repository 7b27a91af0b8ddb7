// Session ids assigned by the ingest log at append: in the events every consumer receives, and in
// the LMDB `sessions` database of the same commit, so a restarted log continues the sessions.

#include "actor_fixture.hpp"

#include "actors/ingest_log.hpp"
#include "messages/codec.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/session_store.hpp"

using namespace sluice;
using namespace sluice::testing;

namespace {

constexpr int64_t minute = 60 * 1000;
constexpr int64_t t0 = 1732233600000;

struct ingest_sessions_test : actor_test {
  std::shared_ptr<captured> sink = std::make_shared<captured>();

  ingest_log_actor spawn_log() {
    ingest_log_deps deps;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.consumers.push_back({"sink.a", consumer_spec::slice::all, 0, 1});
    deps.sessions.enabled = true;
    deps.sessions.gap_ms = 30 * minute;
    auto log = spawn(ingest_log, std::move(deps));
    std::vector<consumer_actor> consumers{spawn(capture_consumer, sink)};
    caf::anon_send(log, connect_atom_v, std::move(consumers));
    caf::anon_send(log, replay_atom_v);
    run();
    return log;
  }

  void append(const ingest_log_actor& log, event_batch events, std::vector<ingest_outcome>& acks) {
    ingest_request req;
    req.events = std::move(events);
    req.reply = [&acks](ingest_outcome o) { acks.push_back(std::move(o)); };
    caf::anon_send(log, append_atom_v, std::move(req));
  }

  std::string session_of(const event& e) {
    auto v = find_attr(e.attrs, "session_id");
    return v ? std::string{v->s} : std::string{};
  }

  std::vector<event> received() {
    std::vector<event> out;
    for (auto& b : sink->batches)
      out.insert(out.end(), b.events.begin(), b.events.end());
    return out;
  }
};

TEST_F(ingest_sessions_test, appended_events_carry_their_session_and_the_state_commits_with_them) {
  auto log = spawn_log();
  std::vector<ingest_outcome> acks;
  append(log,
         {make_event("a", "play", "tv-1", "", t0), make_event("b", "play", "tv-1", "", t0 + minute)},
         acks);
  append(log, {make_event("c", "play", "tv-1", "", t0 + 45 * minute),
               make_event("d", "play", "tv-2", "", t0)},
         acks);
  run();
  ASSERT_EQ(acks.size(), 2u);
  auto got = received();
  ASSERT_EQ(got.size(), 4u);
  using persistence::session_tracker;
  EXPECT_EQ(session_of(got[0]), session_tracker::session_id("tv-1", t0));
  EXPECT_EQ(session_of(got[1]), session_of(got[0]));
  EXPECT_EQ(session_of(got[2]), session_tracker::session_id("tv-1", t0 + 45 * minute));
  EXPECT_EQ(session_of(got[3]), session_tracker::session_id("tv-2", t0));
  persistence::read_txn txn{*env_};
  auto stored = txn.get(persistence::db::sessions, "tv-1");
  ASSERT_TRUE(stored);
  persistence::device_session s;
  ASSERT_TRUE(session_tracker::decode(*stored, s));
  EXPECT_EQ(s.start_ts, t0 + 45 * minute);
  EXPECT_EQ(s.id, session_of(got[2]));
}

TEST_F(ingest_sessions_test, a_restarted_log_continues_the_sessions_it_committed) {
  std::string before;
  {
    auto log = spawn_log();
    std::vector<ingest_outcome> acks;
    append(log, {make_event("a", "play", "tv-1", "", t0)}, acks);
    run();
    ASSERT_EQ(acks.size(), 1u);
    before = session_of(received().at(0));
    caf::anon_send_exit(log, caf::exit_reason::user_shutdown);
    run();
  }
  sink->batches.clear();
  auto log = spawn_log();
  std::vector<ingest_outcome> acks;
  append(log, {make_event("b", "play", "tv-1", "", t0 + 20 * minute)}, acks);
  run();
  ASSERT_EQ(acks.size(), 1u);
  auto got = received();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(session_of(got.back()), before);
}

} // namespace
