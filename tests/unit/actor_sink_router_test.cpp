#include "actor_fixture.hpp"

#include "actors/ingest_log.hpp"
#include "actors/sink_runner.hpp"

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

/// A sink whose answers the test scripts: each write pops the next status (ok when exhausted).
struct scripted_sink : sink {
  std::vector<sink_status> script;
  std::vector<event_batch> written;
  size_t calls = 0;
  sink_status start(std::string&) override {
    return sink_status::ok;
  }
  sink_status write(const event_batch& events, write_report& report) override {
    auto st = calls < script.size() ? script[calls] : sink_status::ok;
    ++calls;
    if (st == sink_status::ok) {
      written.push_back(events);
      if (reject_index < events.size())
        report.rejected.emplace_back(reject_index, "scripted rejection of field 'x'");
    } else {
      report.error = "scripted failure";
    }
    return st;
  }
  bool check(std::string& error) override {
    if (down_checks == 0)
      return true;
    --down_checks;
    error = "scripted outage";
    return false;
  }
  /// Active health checks that fail before the target is back.
  size_t down_checks = 0;
  /// Index of an event `write` rejects (none by default).
  size_t reject_index = SIZE_MAX;
  bool healthy() const override {
    return true;
  }
  void stop() override {
  }
  std::string_view guarantee() const override {
    return "test";
  }
};

dead_letter_actor::behavior_type capture_dead_letters(dead_letter_actor::pointer,
                                                      std::shared_ptr<std::vector<dead_letter>> out) {
  return {
    [out](dead_atom, std::vector<dead_letter>& xs) {
      for (auto& x : xs)
        out->push_back(std::move(x));
      return caf::ok_atom_v;
    },
    [](drain_atom) { return caf::ok_atom_v; },
  };
}

struct sink_test : actor_test {
  ingest_log_actor log;
  std::shared_ptr<std::vector<dead_letter>> letters = std::make_shared<std::vector<dead_letter>>();
  dead_letter_actor dlq;

  sink_actor spawn_sink(std::shared_ptr<scripted_sink> target, uint32_t max_attempts = 3) {
    ingest_log_deps ldeps;
    ldeps.env = env_.get();
    ldeps.metrics = &metrics_;
    ldeps.consumers = {{"sink.s", consumer_spec::slice::all, 0, 1}};
    log = spawn(ingest_log, std::move(ldeps));
    dlq = spawn(capture_dead_letters, letters);
    sink_runner_deps deps;
    deps.name = "s";
    deps.cfg.max_attempts = max_attempts;
    deps.cfg.flush_interval = 50ms;
    deps.cfg.max_batch_events = 2;
    deps.target = std::move(target);
    deps.log = log;
    deps.dead_letters = dlq;
    deps.metrics = &metrics_;
    auto everything = std::make_shared<route_table>();
    everything->unmatched_sinks = {0}; // no routes: every event is unmatched and goes to "s"
    deps.routes = everything;
    auto s = spawn(sink_runner, std::move(deps));
    run();
    return s;
  }

  committed_batch batch(log_offset first, size_t n) {
    committed_batch b;
    for (size_t i = 0; i < n; ++i) {
      auto e = make_event("id" + std::to_string(first + i), "play", "d", "p", 1);
      e.offset = first + i;
      b.events.push_back(e);
    }
    b.upto = first + n - 1;
    return b;
  }

  log_offset stored_offset() {
    persistence::read_txn txn{*env_};
    auto v = txn.get(persistence::db::offsets, "sink.s");
    return v ? persistence::decode_be64(*v) : 0;
  }

  double sink_metric(const char* name) {
    return metrics_.value(name, {{"sink", "s"}});
  }
};

TEST_F(sink_test, a_full_batch_is_written_and_the_offset_recorded_after_delivery) {
  auto target = std::make_shared<scripted_sink>();
  auto s = spawn_sink(target);
  caf::anon_send(s, dispatch_atom_v, batch(1, 2));
  run();
  ASSERT_EQ(target->written.size(), 1u);
  EXPECT_EQ(target->written[0].size(), 2u);
  EXPECT_EQ(stored_offset(), 2u);
  EXPECT_EQ(sink_metric("sluice_sink_delivered_total"), 2.0);
}

TEST_F(sink_test, a_partial_batch_is_flushed_by_the_flush_interval) {
  auto target = std::make_shared<scripted_sink>();
  auto s = spawn_sink(target);
  caf::anon_send(s, dispatch_atom_v, batch(1, 1));
  run();
  EXPECT_TRUE(target->written.empty());
  advance(50ms);
  ASSERT_EQ(target->written.size(), 1u);
  EXPECT_EQ(stored_offset(), 1u);
}

TEST_F(sink_test, a_transient_failure_is_retried_with_backoff_and_then_delivered) {
  auto target = std::make_shared<scripted_sink>();
  target->script = {sink_status::retry, sink_status::retry};
  auto s = spawn_sink(target, 5);
  caf::anon_send(s, dispatch_atom_v, batch(1, 2));
  run();
  EXPECT_TRUE(target->written.empty());
  EXPECT_EQ(stored_offset(), 0u) << "the offset must not move before delivery";
  advance(1s);
  advance(1s);
  ASSERT_EQ(target->written.size(), 1u);
  EXPECT_EQ(sink_metric("sluice_sink_retries_total"), 2.0);
  EXPECT_EQ(stored_offset(), 2u);
  EXPECT_TRUE(letters->empty());
}

TEST_F(sink_test, a_batch_goes_to_dead_letters_after_max_attempts_with_the_reason) {
  auto target = std::make_shared<scripted_sink>();
  target->script = {sink_status::retry, sink_status::retry, sink_status::retry};
  auto s = spawn_sink(target, 3);
  caf::anon_send(s, dispatch_atom_v, batch(1, 2));
  run();
  for (int i = 0; i < 5; ++i)
    advance(1s);
  ASSERT_EQ(letters->size(), 2u);
  EXPECT_NE((*letters)[0].reason.find("gave up after 3 attempts"), std::string::npos);
  EXPECT_EQ((*letters)[0].origin, "sink.s");
  EXPECT_EQ(sink_metric("sluice_sink_dropped_total"), 2.0);
  EXPECT_EQ(stored_offset(), 2u) << "dead-lettered events are done for this sink";
}

TEST_F(sink_test, a_permanent_failure_goes_to_dead_letters_at_once) {
  auto target = std::make_shared<scripted_sink>();
  target->script = {sink_status::error};
  auto s = spawn_sink(target);
  caf::anon_send(s, dispatch_atom_v, batch(1, 2));
  run();
  EXPECT_EQ(letters->size(), 2u);
  EXPECT_EQ(sink_metric("sluice_sink_errors_total"), 1.0);
}

TEST_F(sink_test, events_at_or_below_the_recorded_offset_are_not_written_again) {
  auto target = std::make_shared<scripted_sink>();
  auto s = spawn_sink(target);
  caf::anon_send(s, dispatch_atom_v, batch(1, 2));
  run();
  // A replay after a restart resends offsets 1..2 and a new one, 3: only 3 is new.
  auto b = batch(1, 3);
  caf::anon_send(s, dispatch_atom_v, b);
  run();
  advance(50ms);
  size_t written = 0;
  for (auto& w : target->written)
    written += w.size();
  EXPECT_EQ(written, 3u);
}

struct routing_test : sink_test {
  std::vector<std::shared_ptr<scripted_sink>> targets;
  std::vector<sink_actor> runners;

  /// Spawns the log, the dead-letter capture and one runner per sink in `names` (sink index = its
  /// position; the first counts unrouted events), each with a scripted target in `targets`.
  void spawn_runners(const std::vector<std::string>& names, std::shared_ptr<route_table> table,
                     size_t max_batch_events = 0) {
    ingest_log_deps ldeps;
    ldeps.env = env_.get();
    ldeps.metrics = &metrics_;
    log = spawn(ingest_log, std::move(ldeps));
    dlq = spawn(capture_dead_letters, letters);
    for (size_t i = 0; i < names.size(); ++i) {
      targets.push_back(std::make_shared<scripted_sink>());
      sink_runner_deps deps;
      deps.name = names[i];
      deps.cfg.flush_interval = 50ms;
      if (max_batch_events > 0)
        deps.cfg.max_batch_events = max_batch_events;
      deps.target = targets.back();
      deps.log = log;
      deps.dead_letters = dlq;
      deps.metrics = &metrics_;
      deps.routes = table;
      deps.sink_index = i;
      deps.count_unrouted = i == 0;
      runners.push_back(spawn(sink_runner, std::move(deps)));
    }
  }
};

TEST_F(routing_test, each_runner_keeps_the_events_its_routes_send_it_and_unmatched_ones_go_to_unmatched) {
  caf::settings routes;
  caf::settings r1, r2, r3, r4;
  r1["when"] = std::string{"type == \"error\""};
  r1["sinks"] = caf::config_value::list{caf::config_value{std::string{"errors"}}};
  r2["when"] = std::string{"type == \"billing\""};
  r2["sinks"] = caf::config_value::list{caf::config_value{std::string{"billing"}}};
  r3["when"] = std::string{"type in [\"error\", \"billing\"] and attrs.amount > 10"};
  r3["sinks"] = caf::config_value::list{caf::config_value{std::string{"all"}}};
  r4["sinks"] = caf::config_value::list{caf::config_value{std::string{"all"}}};
  routes["errors"] = r1;
  routes["billing"] = r2;
  routes["big"] = r3;
  routes["_unmatched"] = r4;
  auto table = std::make_shared<route_table>();
  ASSERT_EQ(load_routes(routes, {"errors", "billing", "all"}, *table), "");
  spawn_runners({"errors", "billing", "all"}, table);
  committed_batch b;
  b.events = {make_event("1", "error", "d", "", 1), make_event("2", "billing", "d", "", 1),
              make_event("3", "play", "d", "", 1)};
  for (size_t i = 0; i < 3; ++i)
    b.events[i].offset = i + 1;
  b.upto = 3;
  for (auto& r : runners)
    caf::anon_send(r, dispatch_atom_v, b);
  run();
  advance(50ms);
  auto ids = [](const scripted_sink& s) {
    std::vector<std::string> out;
    for (auto& w : s.written)
      for (auto& e : w)
        out.push_back(e.id);
    return out;
  };
  EXPECT_EQ(ids(*targets[0]), std::vector<std::string>{"1"});
  EXPECT_EQ(ids(*targets[1]), std::vector<std::string>{"2"});
  EXPECT_EQ(ids(*targets[2]), std::vector<std::string>{"3"});
  // Each route is counted once (by its first sink's runner), not once per runner.
  EXPECT_EQ(metrics_.value("sluice_events_routed_total", {{"route", "errors"}}), 1.0);
  EXPECT_EQ(metrics_.value("sluice_events_routed_total", {{"route", "_unmatched"}}), 1.0);
  EXPECT_EQ(metrics_.value("sluice_sink_received_total", {{"sink", "all"}}), 1.0);
}

TEST_F(routing_test, runners_sharing_one_batch_message_mask_their_own_copies_and_keep_the_batch_for_a_retry) {
  // The log sends every runner the same message. A runner that takes most of it keeps the message
  // and its events by pointer (copying only what a route changes) until the sink has the batch,
  // also across a retry; a runner that takes little copies what it takes. Neither changes the
  // batch itself.
  caf::settings routes, errors, rest;
  errors["when"] = std::string{"type == \"error\""};
  errors["sinks"] = caf::config_value::list{caf::config_value{std::string{"errors"}}};
  errors["mask"] = caf::config_value::list{caf::config_value{std::string{"card"}}};
  errors["pii"] = std::string{"off"};
  rest["sinks"] = caf::config_value::list{caf::config_value{std::string{"events"}}};
  rest["mask"] = caf::config_value::list{caf::config_value{std::string{"card"}}};
  rest["pii"] = std::string{"off"};
  routes["errors"] = errors;
  routes["_unmatched"] = rest;
  auto table = std::make_shared<route_table>();
  ASSERT_EQ(load_routes(routes, {"errors", "events"}, *table), "");
  spawn_runners({"errors", "events"}, table, 2); // flushed by the batch itself
  targets[1]->script = {sink_status::retry}; // the events sink's first write fails
  auto card = [](std::string value) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk{buf};
    pk.pack_map(2);
    pk.pack(std::string{"title_id"});
    pk.pack(std::string{"card game"}); // the key's bytes in a value: not the key
    pk.pack(std::string{"card"});
    pk.pack(value);
    return std::string{buf.data(), buf.size()};
  };
  committed_batch b;
  b.events = {make_event("1", "error", "d", "", 1), make_event("2", "play", "d", "", 1),
              make_event("3", "play", "d", "", 1), make_event("4", "play", "d", "", 1)};
  b.events[0].attrs = card("4111 1111 1111 1111");
  b.events[1].attrs = card("4111 1111 1111 1111");
  b.events[2].attrs = playback_attrs("card game", 10);
  for (size_t i = 0; i < b.events.size(); ++i)
    b.events[i].offset = i + 1;
  b.upto = 4;
  const auto original = b.events;
  auto msg = caf::make_message(dispatch_atom_v, std::move(b));
  for (auto& r : runners)
    caf::anon_send(caf::actor_cast<caf::actor>(r), msg);
  run();
  EXPECT_EQ(msg.get_as<committed_batch>(1).events, original) << "the shared batch changed";
  msg = caf::message{}; // the runner that kept the batch now holds the only reference
  EXPECT_TRUE(targets[1]->written.empty());
  advance(1s); // the retry
  ASSERT_EQ(targets[0]->written.size(), 1u);
  ASSERT_EQ(targets[1]->written.size(), 1u);
  auto& err = targets[0]->written[0];
  auto& rest_written = targets[1]->written[0];
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0].id, "1");
  EXPECT_EQ(find_attr(err[0].attrs, "card")->s, "[masked]");
  ASSERT_EQ(rest_written.size(), 3u);
  EXPECT_EQ(rest_written[0].id, "2");
  EXPECT_EQ(find_attr(rest_written[0].attrs, "card")->s, "[masked]");
  EXPECT_EQ(find_attr(rest_written[0].attrs, "title_id")->s, "card game");
  EXPECT_EQ(rest_written[1], original[2]) << "an event without the key is delivered as it is";
  EXPECT_EQ(rest_written[2], original[3]);
  EXPECT_EQ(metrics_.value("sluice_sink_delivered_total", {{"sink", "events"}}), 3.0);
  EXPECT_EQ(metrics_.value("sluice_events_routed_total", {{"route", "_unmatched"}}), 3.0);
  EXPECT_EQ(metrics_.value("sluice_events_routed_total", {{"route", "errors"}}), 1.0);
}

TEST_F(sink_test, a_sink_whose_target_is_down_opens_its_circuit_and_counts_no_attempts) {
  auto target = std::make_shared<scripted_sink>();
  // The first write fails while the target is down (its check fails four times); after the
  // target is back, one more transient failure counts as the batch's first attempt.
  target->script = {sink_status::retry, sink_status::retry};
  target->down_checks = 4;
  auto s = spawn_sink(target, /*max_attempts*/ 2);
  caf::anon_send(s, dispatch_atom_v, batch(1, 2));
  run();
  for (int i = 0; i < 12 && target->written.empty(); ++i)
    advance(10s);
  EXPECT_TRUE(letters->empty()) << "an outage must not send batches to the dead letters";
  EXPECT_EQ(sink_metric("sluice_sink_circuit_opened_total"), 1.0);
  // Probes passed, the write was retried until the script ran out: delivered once.
  ASSERT_EQ(target->written.size(), 1u);
  EXPECT_EQ(sink_metric("sluice_sink_circuit_open"), 0.0);
}

TEST_F(sink_test, events_a_sink_rejects_go_to_dead_letters_and_the_rest_is_delivered) {
  auto target = std::make_shared<scripted_sink>();
  target->reject_index = 1;
  auto s = spawn_sink(target);
  caf::anon_send(s, dispatch_atom_v, batch(1, 2));
  run();
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].ev.id, "id2");
  EXPECT_NE((*letters)[0].reason.find("scripted rejection"), std::string::npos);
  EXPECT_EQ(sink_metric("sluice_sink_delivered_total"), 1.0);
  EXPECT_EQ(sink_metric("sluice_sink_dropped_total"), 1.0);
  EXPECT_EQ(stored_offset(), 2u);
}

} // namespace
