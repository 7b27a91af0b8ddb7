// Events another node accepted and forwarded here (cluster, non-empty `event::origin`) are in this
// node's log only for device and profile state: its sinks and its aggregator pass over them
// (the accepting node delivers and aggregates them), without counting them anywhere, and their
// offsets still advance. Sink runner and aggregator on CAF's test coordinator with a real ingest
// log and LMDB.

#include "actor_fixture.hpp"
#include "keeping_sink.hpp"

#include "actors/aggregator.hpp"
#include "actors/catalog.hpp"
#include "actors/ingest_log.hpp"
#include "actors/sink_runner.hpp"
#include "tests/unit/keeping_sink.hpp"

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t minute = 60'000;
constexpr int64_t t0 = 1'732'233'600'000; // 2024-11-22T00:00:00Z


dead_letter_actor::behavior_type no_dead_letters(dead_letter_actor::pointer,
                                                 std::shared_ptr<size_t> letters) {
  return {
    [letters](dead_atom, std::vector<dead_letter>& xs) {
      *letters += xs.size();
      return caf::ok_atom_v;
    },
    [](drain_atom) { return caf::ok_atom_v; },
  };
}

/// A heartbeat of `profile` watching `title` at `offset`; forwarded from `origin` when not empty.
event heartbeat(log_offset offset, const std::string& profile, const std::string& title,
                int64_t ts, const std::string& origin = {}) {
  auto e = make_event("e" + std::to_string(offset), "heartbeat", "dev", profile, ts);
  e.offset = offset;
  e.attrs = playback_attrs(title, 0);
  if (!origin.empty()) {
    e.origin = origin;
    e.origin_offset = 1000 + offset;
  }
  return e;
}

committed_batch batch_of(event_batch events) {
  auto upto = events.back().offset;
  return committed_batch{std::move(events), upto};
}

struct forwarded_test : actor_test {
  ingest_log_actor log;

  void spawn_log(const char* consumer) {
    ingest_log_deps ldeps;
    ldeps.env = env_.get();
    ldeps.metrics = &metrics_;
    ldeps.consumers = {{consumer, consumer_spec::slice::all, 0, 1}};
    log = spawn(ingest_log, std::move(ldeps));
    run();
  }

  log_offset stored_offset(const std::string& consumer) {
    persistence::read_txn txn{*env_};
    auto v = txn.get(persistence::db::offsets, consumer);
    return v ? persistence::decode_be64(*v) : 0;
  }
};

struct forwarded_sink_test : forwarded_test {
  std::shared_ptr<keeping_sink> target = std::make_shared<keeping_sink>();
  std::shared_ptr<size_t> letters = std::make_shared<size_t>(0);
  sink_actor runner;

  forwarded_sink_test() {
    spawn_log("sink.s");
    sink_runner_deps deps;
    deps.name = "s";
    deps.cfg.flush_interval = 50ms;
    deps.cfg.max_batch_events = 2;
    deps.target = target;
    deps.log = log;
    deps.dead_letters = spawn(no_dead_letters, letters);
    deps.metrics = &metrics_;
    auto everything = std::make_shared<route_table>();
    everything->unmatched_sinks = {0}; // no routes: every local event is unmatched and goes to "s"
    deps.routes = everything;
    runner = spawn(sink_runner, std::move(deps));
    run();
  }

  double sink_metric(const char* name) {
    return metrics_.value(name, {{"sink", "s"}});
  }
};

struct forwarded_aggregator_test : forwarded_test {
  aggregator_actor agg;
  std::shared_ptr<catalog_holder> titles = std::make_shared<catalog_holder>();
  std::string answer;

  forwarded_aggregator_test() {
    std::string err;
    titles->set(catalog::parse("id,name,genres,duration\n"
                               "t1,One,Drama,100s\n"
                               "t2,Two,Comedy,100s\n",
                               err));
    spawn_log(aggregator_consumer);
    aggregator_deps deps;
    deps.log = log;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.catalog = titles;
    deps.options.window_ms = 60 * minute;
    deps.options.bucket_ms = minute;
    deps.options.allowed_lateness_ms = 5 * minute;
    deps.checkpoint_interval = 100ms;
    agg = spawn(aggregator, std::move(deps));
    run();
  }

  std::string trending() {
    aggregate_query q;
    q.window_ms = 60 * minute;
    q.k = 10;
    query_reply reply;
    reply.fn = [this](query_reply::status, std::string json) { answer = std::move(json); };
    caf::anon_send(agg, query_atom_v, std::move(q), reply);
    run();
    return answer;
  }
};

} // namespace

TEST_F(forwarded_sink_test, a_sink_delivers_only_local_events_and_counts_no_forwarded_one) {
  caf::anon_send(runner, dispatch_atom_v,
                 batch_of({heartbeat(1, "p1", "t1", t0), heartbeat(2, "p2", "t1", t0, "node-2"),
                           heartbeat(3, "p3", "t1", t0), heartbeat(4, "p4", "t1", t0, "node-3")}));
  run();
  advance(50ms);
  ASSERT_EQ(target->written.size(), 2u);
  EXPECT_EQ(target->written[0].offset, 1u);
  EXPECT_EQ(target->written[1].offset, 3u);
  EXPECT_EQ(sink_metric("sluice_sink_received_total"), 2.0);
  EXPECT_EQ(sink_metric("sluice_sink_delivered_total"), 2.0);
  EXPECT_EQ(sink_metric("sluice_sink_dropped_total"), 0.0);
  EXPECT_EQ(*letters, 0u);
  EXPECT_EQ(metrics_.value("sluice_events_routed_total", {{"route", unmatched_route}}), 2.0)
    << "forwarded events are not routed here";
  EXPECT_EQ(stored_offset("sink.s"), 4u) << "the offset passes the forwarded events";
}

TEST_F(forwarded_sink_test, a_batch_of_only_forwarded_events_writes_nothing_and_moves_the_offset) {
  caf::anon_send(runner, dispatch_atom_v,
                 batch_of({heartbeat(1, "p1", "t1", t0, "node-2"),
                           heartbeat(2, "p2", "t1", t0, "node-2")}));
  run();
  advance(50ms);
  EXPECT_TRUE(target->written.empty());
  EXPECT_EQ(sink_metric("sluice_sink_received_total"), 0.0);
  EXPECT_EQ(stored_offset("sink.s"), 2u);
  // A local event after them is delivered as usual.
  caf::anon_send(runner, dispatch_atom_v, batch_of({heartbeat(3, "p3", "t1", t0)}));
  run();
  advance(50ms);
  ASSERT_EQ(target->written.size(), 1u);
  EXPECT_EQ(target->written[0].offset, 3u);
  EXPECT_EQ(stored_offset("sink.s"), 3u);
}

TEST_F(forwarded_aggregator_test, the_aggregates_count_only_local_events_and_the_offset_passes_forwarded_ones) {
  caf::anon_send(agg, dispatch_atom_v,
                 batch_of({heartbeat(1, "p1", "t1", t0 + minute),
                           heartbeat(2, "p2", "t2", t0 + minute, "node-2"),
                           heartbeat(3, "p3", "t2", t0 + minute, "node-2"),
                           heartbeat(4, "p4", "unknown", t0 + minute, "node-3"),
                           heartbeat(5, "p5", "t1", t0 + 2 * minute)}));
  run();
  EXPECT_EQ(trending(), "{\"window_ms\":3600000,\"as_of\":" + std::to_string(t0 + 2 * minute)
                          + ",\"watermark\":" + std::to_string(t0 - 3 * minute)
                          + ",\"items\":[{\"title_id\":\"t1\",\"name\":\"One\",\"profiles\":2}]}");
  EXPECT_EQ(metrics_.value("sluice_aggregate_events_total", {}), 2.0);
  EXPECT_EQ(metrics_.value("sluice_aggregate_unknown_title_events_total", {}), 0.0)
    << "a forwarded event is not this node's to judge";
  advance(100ms);
  EXPECT_EQ(stored_offset(aggregator_consumer), 5u);
}
