// Membership, ownership and query routing of the cluster actor (actors/cluster/cluster_actor.hpp)
// on CAF's deterministic test coordinator: peers are test actors (or a second cluster actor) that
// speak the cluster's messages directly, so no sockets are involved (the middleman path is
// covered by tests/integration/cluster_failover.test.mjs).

#include "actors/cluster/cluster_actor.hpp"
#include "actors/ingest_log.hpp"
#include "tests/unit/actor_fixture.hpp"

#include <simdjson.h>

namespace sluice::testing {
namespace {

struct membership_test : actor_test {
  std::shared_ptr<cluster::view_holder> views = std::make_shared<cluster::view_holder>();
  std::shared_ptr<cluster::status_board> board = std::make_shared<cluster::status_board>();
  std::shared_ptr<captured> sink = std::make_shared<captured>();
  ingest_log_actor log;
  caf::actor node;

  /// Node "a" with a log and the given (fake) profile shards.
  void start(std::vector<shard_actor> profile_shards = {}) {
    log = spawn_capturing_log(sink);
    cluster::cluster_deps deps;
    deps.self = "a";
    deps.http = "http://127.0.0.1:1";
    deps.opts.enabled = true;
    deps.opts.port = 7101;
    deps.opts.heartbeat_interval = std::chrono::milliseconds{100};
    deps.opts.failure_timeout = std::chrono::seconds{1};
    deps.opts.vnodes = 64;
    deps.log = log;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.views = views;
    deps.board = board;
    deps.profile_shards = std::move(profile_shards);
    deps.use_network = false;
    node = spawn(cluster::cluster_actor, std::move(deps));
    run();
  }

  std::vector<std::string> ring() {
    return views->get()->ring.nodes();
  }

  /// The state of `name` in the status document.
  std::string state_of(const std::string& name) {
    simdjson::dom::parser parser;
    auto doc = parser.parse(board->get());
    for (auto m : doc["members"].get_array())
      if (std::string_view{m["name"].get_string()} == name)
        return std::string{std::string_view{m["state"].get_string()}};
    return "absent";
  }
};

/// A peer that says hello and then never speaks again; answers queries with its name.
caf::behavior quiet_peer(caf::event_based_actor*) {
  return {
    [](query_atom, uint8_t, const std::string& key, const std::string& what) {
      return caf::make_message(uint8_t{0}, "{\"from\":\"b\",\"key\":\"" + key + "\",\"what\":\""
                                             + what + "\"}");
    },
    [](heartbeat_atom, const member_info&, const std::vector<member_info>&) {},
    [](forward_atom, const forward_batch&) { return caf::ok_atom_v; },
    [](const member_info&, const std::vector<member_info>&) {}, // the answer to its hello
  };
}

TEST_F(membership_test, a_peer_that_says_hello_joins_the_ring_and_the_status_lists_it_up) {
  start();
  EXPECT_EQ(ring(), (std::vector<std::string>{"a"}));
  auto b = spawn(quiet_peer);
  caf::send_as(b, node, hello_atom_v, member_info{"b", "127.0.0.1:7102", "http://b"},
               std::vector<member_info>{});
  run();
  EXPECT_EQ(ring(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(state_of("b"), "up");
  EXPECT_EQ(metrics_.value("sluice_cluster_peer_up", {{"peer", "b"}}), 1);
}

TEST_F(membership_test, a_silent_peer_is_marked_down_after_the_failure_timeout_and_its_keys_move) {
  start();
  auto b = spawn(quiet_peer);
  caf::send_as(b, node, hello_atom_v, member_info{"b", "127.0.0.1:7102", "http://b"},
               std::vector<member_info>{});
  run();
  auto moves = metrics_.value("sluice_cluster_ownership_moves_total");
  advance(std::chrono::milliseconds{500});
  EXPECT_EQ(state_of("b"), "up") << "half the failure timeout is not enough";
  for (int i = 0; i < 8; ++i) // 800 ms more: past the 1 s timeout, one heartbeat tick at a time
    advance(std::chrono::milliseconds{100});
  EXPECT_EQ(state_of("b"), "down");
  EXPECT_EQ(ring(), (std::vector<std::string>{"a"}));
  EXPECT_EQ(metrics_.value("sluice_cluster_node_transitions_total", {{"peer", "b"}, {"to", "down"}}),
            1);
  EXPECT_EQ(metrics_.value("sluice_cluster_ownership_moves_total"), moves + 1);
}

TEST_F(membership_test, a_starved_node_does_not_take_its_own_lateness_for_a_silent_peer) {
  start();
  auto b = spawn(quiet_peer);
  auto hello = [&](auto atom) {
    caf::send_as(b, node, atom, member_info{"b", "127.0.0.1:7102", "http://b"},
                 std::vector<member_info>{});
  };
  hello(hello_atom_v);
  run();
  // The heartbeat tick runs 1.5 s late (a busy machine): b's heartbeats could be queued behind it.
  advance(std::chrono::milliseconds{1500});
  EXPECT_EQ(state_of("b"), "up");
  hello(heartbeat_atom_v); // the queued heartbeat
  run();
  advance(std::chrono::milliseconds{100});
  EXPECT_EQ(state_of("b"), "up");
  // Without another word from b, the timeout applies again.
  for (int i = 0; i < 11; ++i)
    advance(std::chrono::milliseconds{100});
  EXPECT_EQ(state_of("b"), "down");
}

TEST_F(membership_test, a_peer_whose_actor_goes_down_is_marked_down_at_once) {
  start();
  auto b = spawn(quiet_peer);
  caf::send_as(b, node, hello_atom_v, member_info{"b", "127.0.0.1:7102", "http://b"},
               std::vector<member_info>{});
  run();
  caf::anon_send_exit(b, caf::exit_reason::kill);
  run();
  EXPECT_EQ(state_of("b"), "down");
  EXPECT_EQ(ring(), (std::vector<std::string>{"a"}));
}

TEST_F(membership_test, a_restarted_peer_with_a_new_actor_is_up_again_and_owns_its_keys_again) {
  start();
  auto b1 = spawn(quiet_peer);
  caf::send_as(b1, node, hello_atom_v, member_info{"b", "127.0.0.1:7102", "http://b"},
               std::vector<member_info>{});
  run();
  auto owners_before = views->get()->ring.owner("profile-42");
  caf::anon_send_exit(b1, caf::exit_reason::kill);
  run();
  ASSERT_EQ(state_of("b"), "down");
  auto b2 = spawn(quiet_peer);
  caf::send_as(b2, node, heartbeat_atom_v, member_info{"b", "127.0.0.1:7102", "http://b"},
               std::vector<member_info>{});
  run();
  EXPECT_EQ(state_of("b"), "up");
  EXPECT_EQ(views->get()->ring.owner("profile-42"), owners_before);
}

TEST_F(membership_test, only_a_down_peer_can_be_forgotten_and_then_it_no_longer_holds_the_log) {
  start();
  auto b = spawn(quiet_peer);
  caf::send_as(b, node, hello_atom_v, member_info{"b", "127.0.0.1:7102", "http://b"},
               std::vector<member_info>{});
  run();
  advance(std::chrono::milliseconds{600}); // a checkpoint records b's acknowledgement
  auto stored = [this] {
    persistence::read_txn txn{*env_};
    return txn.get(persistence::db::meta, "cluster.acked.b").has_value();
  };
  ASSERT_TRUE(stored());
  std::vector<std::pair<query_reply::status, std::string>> answers;
  auto ask = [&](const std::string& name) {
    query_reply reply;
    reply.fn = [&answers](query_reply::status st, std::string text) {
      answers.emplace_back(st, std::move(text));
    };
    caf::anon_send(node, forget_atom_v, name, std::move(reply));
    run();
  };
  ask("b");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].first, query_reply::status::failed) << "b is up";
  EXPECT_NE(answers[0].second.find("is up"), std::string::npos);
  ask("nobody");
  EXPECT_EQ(answers[1].first, query_reply::status::not_found);
  caf::anon_send_exit(b, caf::exit_reason::kill);
  run();
  ASSERT_EQ(state_of("b"), "down");
  ask("b");
  EXPECT_EQ(answers[2].first, query_reply::status::found);
  EXPECT_EQ(state_of("b"), "absent");
  advance(std::chrono::milliseconds{600}); // the next checkpoint deletes the acknowledgement
  EXPECT_FALSE(stored());
}

caf::behavior local_shard(caf::event_based_actor*, std::shared_ptr<std::vector<std::string>> asked) {
  return {
    [asked](query_atom, std::string& key, std::string&, query_reply& reply) {
      asked->push_back(key);
      reply.fn(query_reply::status::found, "{\"from\":\"a\"}");
    },
  };
}

TEST_F(membership_test, a_query_goes_to_the_owner_of_its_key_here_or_on_the_peer) {
  auto asked = std::make_shared<std::vector<std::string>>();
  auto shard = caf::actor_cast<shard_actor>(spawn(local_shard, asked));
  start({shard});
  auto b = spawn(quiet_peer);
  caf::send_as(b, node, hello_atom_v, member_info{"b", "127.0.0.1:7102", "http://b"},
               std::vector<member_info>{});
  run();
  auto v = views->get();
  std::string mine;
  std::string theirs;
  for (int i = 0; mine.empty() || theirs.empty(); ++i) {
    auto key = "p" + std::to_string(i);
    (v->owns(key) ? mine : theirs) = key;
  }
  std::vector<std::string> answers;
  for (auto& key : {mine, theirs}) {
    query_reply reply;
    reply.fn = [&answers](query_reply::status st, std::string json) {
      answers.push_back(std::to_string(static_cast<int>(st)) + json);
    };
    caf::anon_send(node, query_atom_v, static_cast<uint8_t>(state_space::profiles), key,
                   std::string{"continue-watching"}, std::move(reply));
    run();
  }
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0], "0{\"from\":\"a\"}");
  EXPECT_EQ(answers[1], "0{\"from\":\"b\",\"key\":\"" + theirs + "\",\"what\":\"continue-watching\"}");
  EXPECT_EQ(*asked, std::vector<std::string>{mine});
  EXPECT_EQ(metrics_.value("sluice_cluster_queries_proxied_total", {{"peer", "b"}}), 1);
}

TEST_F(membership_test, events_a_peer_forwards_are_appended_with_their_origin_and_acknowledged_once_durable) {
  start();
  auto b = spawn(quiet_peer);
  forward_batch batch;
  batch.origin = "b";
  auto e = make_event("x1", "play", "d1", "p1", 10);
  e.origin = "b";
  e.origin_offset = 7;
  batch.events.push_back(e);
  bool acked = false;
  auto asker = spawn([&acked, this](caf::event_based_actor* self, forward_batch fb) {
    self->request(node, caf::infinite, forward_atom_v, std::move(fb))
      .then([&acked](caf::ok_atom) { acked = true; });
  }, batch);
  run();
  EXPECT_TRUE(acked);
  ASSERT_EQ(sink->events(), 1u) << "the log dispatched the appended event";
  auto& got = sink->batches.back().events.back();
  EXPECT_EQ(got.origin, "b");
  EXPECT_EQ(got.origin_offset, 7u);
  EXPECT_EQ(got.id, "x1");
  EXPECT_EQ(metrics_.value("sluice_cluster_received_events_total", {{"origin", "b"}}), 1);
}

} // namespace
} // namespace sluice::testing
