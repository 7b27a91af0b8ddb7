// The per-peer forwarder of the cluster (actors/cluster/forwarder.hpp) on CAF's test coordinator,
// over a real ingest log and log reader in a temporary LMDB environment. The peer is a test actor
// that records what it receives and answers like a node would (ok, or an error).

#include "actors/cluster/forwarder.hpp"
#include "actors/ingest_log.hpp"
#include "actors/log_reader.hpp"
#include "tests/unit/actor_fixture.hpp"

#include <set>

namespace sluice::testing {
namespace {

struct peer_record {
  std::vector<forward_batch> got;
  bool refuse = false;
  std::set<std::string> ids() const {
    std::set<std::string> out;
    for (auto& b : got)
      for (auto& e : b.events)
        out.insert(e.id);
    return out;
  }
};

caf::behavior fake_peer(caf::event_based_actor*, std::shared_ptr<peer_record> rec) {
  return {
    [rec](forward_atom, forward_batch& b) -> caf::result<caf::ok_atom> {
      rec->got.push_back(b);
      if (rec->refuse)
        return caf::make_error(caf::sec::runtime_error, "log full");
      return caf::ok_atom_v;
    },
  };
}

struct parent_record {
  bool up = false;
  log_offset acked = 0;
  uint64_t resent = 0;
  size_t reports = 0;
};

caf::behavior fake_parent(caf::event_based_actor*, std::shared_ptr<parent_record> rec) {
  return {
    [rec](acked_atom, const std::string&, bool up, log_offset acked, log_offset, log_offset,
          uint64_t, uint64_t resent) {
      rec->up = up;
      rec->acked = acked;
      rec->resent = resent;
      ++rec->reports;
    },
  };
}

struct forwarder_test : actor_test {
  std::shared_ptr<captured> sink = std::make_shared<captured>();
  std::shared_ptr<peer_record> peer_rec = std::make_shared<peer_record>();
  std::shared_ptr<parent_record> parent_rec = std::make_shared<parent_record>();
  std::shared_ptr<cluster::view_holder> views = std::make_shared<cluster::view_holder>();
  ingest_log_actor log;
  caf::actor peer;
  caf::actor fwd;
  log_reader_actor fwd_reader;

  /// A log holding `events` (committed), this node "a" in a ring of `members`, and a forwarder
  /// to "b" (not yet told that b is up).
  void start(event_batch events, std::vector<std::string> members = {"a", "b", "c"},
             log_offset acked = 0) {
    log = spawn_capturing_log(sink);
    append(std::move(events));
    views->set(std::make_shared<cluster::view>("a", cluster::hash_ring{members, 64}, 1));
    peer = spawn(fake_peer, peer_rec);
    cluster::forwarder_deps fd;
    fd.self = "a";
    fd.peer = "b";
    fd.reader = fwd_reader = spawn(log_reader, env_.get(), &metrics_);
    fd.parent = spawn(fake_parent, parent_rec);
    fd.views = views;
    fd.metrics = &metrics_;
    fd.acked_upto = acked;
    fd.read_events = 8;
    fwd = spawn(cluster::forwarder, std::move(fd));
    run();
  }

  void append(event_batch events) {
    ingest_request req;
    req.events = std::move(events);
    req.reply = [](ingest_outcome) {};
    caf::anon_send(log, append_atom_v, std::move(req));
    run();
  }

  /// Whether "b" keeps the state of `key` in the current view (owner or replica).
  bool b_keeps(const std::string& key) {
    auto v = views->get();
    auto owners = v->ring.owners(key, cluster::replicas);
    return std::find(owners.begin(), owners.end(), "b") != owners.end();
  }
};

event_batch events_for(size_t n, const std::string& prefix = "e") {
  event_batch out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(make_event(prefix + std::to_string(i), "play", "dev-" + std::to_string(i),
                             "prof-" + std::to_string(i * 7), 1000 + int64_t(i)));
  return out;
}

TEST_F(forwarder_test, sends_the_peer_exactly_the_events_whose_device_or_profile_it_keeps_stamped_with_their_origin) {
  auto events = events_for(40);
  start(events);
  caf::anon_send(fwd, peer_atom_v, peer);
  run();
  std::set<std::string> expected;
  for (auto& e : events)
    if (b_keeps(e.device_id) || b_keeps(e.profile_id))
      expected.insert(e.id);
  ASSERT_FALSE(expected.empty());
  ASSERT_LT(expected.size(), events.size()); // with three members some events are not b's
  EXPECT_EQ(peer_rec->ids(), expected);
  for (auto& b : peer_rec->got) {
    EXPECT_EQ(b.origin, "a");
    for (auto& e : b.events) {
      EXPECT_EQ(e.origin, "a");
      EXPECT_GT(e.origin_offset, 0u);
    }
  }
  EXPECT_EQ(parent_rec->acked, 40u); // every offset is acknowledged or was not b's
}

TEST_F(forwarder_test, events_another_node_forwarded_here_are_never_forwarded_again) {
  auto events = events_for(10);
  for (auto& e : events) {
    e.origin = "c";
    e.origin_offset = 99;
  }
  start(events, {"a", "b"}); // with two members b keeps every key
  caf::anon_send(fwd, peer_atom_v, peer);
  run();
  EXPECT_TRUE(peer_rec->ids().empty());
  EXPECT_EQ(parent_rec->acked, 10u);
}

TEST_F(forwarder_test, a_refused_forward_keeps_the_acknowledged_offset_and_is_resent_after_the_backoff) {
  start(events_for(5), {"a", "b"});
  peer_rec->refuse = true;
  caf::anon_send(fwd, peer_atom_v, peer);
  run();
  EXPECT_EQ(parent_rec->acked, 0u);
  auto attempts = peer_rec->got.size();
  ASSERT_GE(attempts, 1u);
  peer_rec->refuse = false;
  advance(std::chrono::milliseconds{600});
  EXPECT_GT(peer_rec->got.size(), attempts);
  EXPECT_EQ(parent_rec->acked, 5u);
  EXPECT_GE(parent_rec->resent, 5u);
  EXPECT_EQ(peer_rec->ids().size(), 5u);
}

TEST_F(forwarder_test, a_peer_that_was_down_gets_what_it_missed_from_its_acknowledged_offset) {
  start(events_for(6), {"a", "b"});
  caf::anon_send(fwd, peer_atom_v, peer);
  run();
  EXPECT_EQ(parent_rec->acked, 6u);
  caf::anon_send(fwd, peer_atom_v, caf::actor{}); // down
  run();
  append(events_for(4, "late"));
  caf::anon_send(fwd, head_atom_v, log_offset{10});
  run();
  EXPECT_EQ(parent_rec->acked, 6u) << "nothing is acknowledged while the peer is down";
  EXPECT_FALSE(parent_rec->up);
  auto before = peer_rec->got.size();
  caf::anon_send(fwd, peer_atom_v, peer); // back (e.g. restarted)
  run();
  EXPECT_EQ(parent_rec->acked, 10u);
  std::set<std::string> late;
  for (size_t i = before; i < peer_rec->got.size(); ++i)
    for (auto& e : peer_rec->got[i].events)
      late.insert(e.id);
  EXPECT_EQ(late, (std::set<std::string>{"late0", "late1", "late2", "late3"}));
}

TEST_F(forwarder_test, a_restarted_forwarder_resumes_from_its_stored_acknowledgement) {
  start(events_for(8), {"a", "b"}, /*acked=*/5);
  caf::anon_send(fwd, peer_atom_v, peer);
  run();
  EXPECT_EQ(peer_rec->ids(), (std::set<std::string>{"e5", "e6", "e7"}));
  EXPECT_EQ(parent_rec->acked, 8u);
}

TEST_F(forwarder_test, nothing_counts_as_acknowledged_while_the_ring_lacks_the_peer) {
  // A rejoining peer: its handle can reach the forwarder before the ring has it again. Chunks
  // read meanwhile must not be acknowledged as "nothing for this peer".
  start(events_for(6), {"a", "c"});
  caf::anon_send(fwd, peer_atom_v, peer);
  run();
  EXPECT_EQ(parent_rec->acked, 0u);
  EXPECT_TRUE(peer_rec->got.empty());
  views->set(std::make_shared<cluster::view>("a", cluster::hash_ring{{"a", "b", "c"}, 64}, 2));
  caf::anon_send(fwd, head_atom_v, log_offset{6});
  run();
  EXPECT_EQ(parent_rec->acked, 6u);
  std::set<std::string> expected;
  for (auto& e : events_for(6))
    if (b_keeps(e.device_id) || b_keeps(e.profile_id))
      expected.insert(e.id);
  EXPECT_EQ(peer_rec->ids(), expected);
}

TEST_F(forwarder_test, a_caught_up_forwarder_sends_a_dispatched_batch_without_reading_the_log) {
  start({}, {"a", "b"});
  caf::anon_send(fwd, peer_atom_v, peer);
  run(); // reads once: the log is empty
  caf::anon_send_exit(caf::actor_cast<caf::actor>(fwd_reader), caf::exit_reason::kill);
  run();
  auto events = events_for(3);
  for (size_t i = 0; i < events.size(); ++i)
    events[i].offset = i + 1;
  caf::anon_send(fwd, head_atom_v, log_offset{3},
                 caf::make_message(dispatch_atom_v, committed_batch{events, 3}));
  run();
  EXPECT_EQ(peer_rec->ids(), (std::set<std::string>{"e0", "e1", "e2"}));
  EXPECT_EQ(parent_rec->acked, 3u);
}

TEST(cluster_view, a_node_holds_the_keys_it_owns_or_replicates_and_owns_only_its_own) {
  cluster::hash_ring ring{{"a", "b", "c"}, 64};
  size_t held = 0;
  size_t owned = 0;
  for (int i = 0; i < 3000; ++i) {
    auto key = "k" + std::to_string(i);
    cluster::view va{"a", ring, 1};
    auto owners = ring.owners(key, 2);
    bool in = std::find(owners.begin(), owners.end(), "a") != owners.end();
    EXPECT_EQ(va.holds(key), in);
    EXPECT_EQ(va.owns(key), owners[0] == "a");
    held += va.holds(key);
    owned += va.owns(key);
  }
  // a owns about a third of the keys and keeps about two thirds (owner or replica).
  EXPECT_GT(owned, 600u);
  EXPECT_LT(owned, 1400u);
  EXPECT_GT(held, 1500u);
  EXPECT_LT(held, 2500u);
}

} // namespace
} // namespace sluice::testing
