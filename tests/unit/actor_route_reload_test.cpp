// Hot reload of routes: version selection by log offset, swaps in the ingest log, persistence of
// versions across restarts.

#include "actor_fixture.hpp"
#include "keeping_sink.hpp"

#include "actors/ingest_log.hpp"
#include "actors/route_history.hpp"
#include "actors/sink_runner.hpp"
#include "persistence/route_store.hpp"

#include <sstream>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {


dead_letter_actor::behavior_type no_dead_letters(dead_letter_actor::pointer) {
  return {
    [](dead_atom, std::vector<dead_letter>&) { return caf::ok_atom_v; },
    [](drain_atom) { return caf::ok_atom_v; },
  };
}

/// Errors go to `sink` (route `name`), everything else to "other".
std::string errors_to(const std::string& sink, const std::string& name = "errors") {
  return "[routes." + name + "]\nwhen = \"type == \\\"error\\\"\"\nsinks = [\"" + sink
         + "\"]\n\n[routes._unmatched]\nsinks = [\"other\"]\n";
}

const std::vector<std::string> sink_names{"a", "b", "other"};

struct swap_outcome {
  bool answered = false;
  std::string error;
  bool invalid = false;
  uint64_t version = 0;
  log_offset effective_from = 0;
};

struct reload_test : actor_test {
  ingest_log_actor log;
  std::shared_ptr<route_registry> registry;
  std::vector<std::shared_ptr<keeping_sink>> targets;

  /// A node in small: the log (with the registry) and one runner per sink in `sink_names`.
  void start(const std::string& config_text) {
    registry = std::make_shared<route_registry>(env_.get(), sink_names, &metrics_);
    ingest_log_deps ldeps;
    ldeps.env = env_.get();
    ldeps.metrics = &metrics_;
    for (auto& s : sink_names)
      ldeps.consumers.push_back({"sink." + s, consumer_spec::slice::all, 0, 1});
    ldeps.routes = registry;
    ldeps.config_routes_text = config_text;
    log = spawn(ingest_log, std::move(ldeps));
    auto dlq = spawn(no_dead_letters);
    targets.clear();
    std::vector<consumer_actor> runners;
    for (size_t i = 0; i < sink_names.size(); ++i) {
      targets.push_back(std::make_shared<keeping_sink>());
      sink_runner_deps deps;
      deps.name = sink_names[i];
      deps.cfg.flush_interval = 50ms;
      deps.target = targets.back();
      deps.log = log;
      deps.dead_letters = dlq;
      deps.metrics = &metrics_;
      deps.registry = registry;
      deps.sink_index = i;
      deps.count_unrouted = i == 0;
      runners.push_back(spawn(sink_runner, std::move(deps)));
    }
    caf::anon_send(log, connect_atom_v, std::move(runners));
    caf::anon_send(log, replay_atom_v);
    run();
  }

  /// Appends one event per type, ids `prefix0`, `prefix1`, ...
  void append(const std::string& prefix, const std::vector<std::string>& types) {
    ingest_request req;
    for (size_t i = 0; i < types.size(); ++i)
      req.events.push_back(make_event(prefix + std::to_string(i), types[i], "d", "", 1));
    req.reply = [](ingest_outcome out) { ASSERT_TRUE(out.error.empty()) << out.error; };
    caf::anon_send(log, append_atom_v, std::move(req));
  }

  std::shared_ptr<swap_outcome> swap(const std::string& text) {
    auto out = std::make_shared<swap_outcome>();
    route_swap_request req;
    req.text = text;
    req.comment = "test";
    req.reply = [out](std::string error, bool invalid, uint64_t version, log_offset from) {
      *out = swap_outcome{true, std::move(error), invalid, version, from};
    };
    caf::anon_send(log, route_atom_v, std::move(req));
    return out;
  }

  std::vector<persistence::route_version> stored() {
    persistence::read_txn txn{*env_};
    return persistence::route_store::list(txn);
  }

  /// Stops the log and runners (a restart keeps the environment).
  void stop_all() {
    for (auto& a : tracked_)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
    tracked_.clear();
  }
};

} // namespace

TEST(route_history, an_offset_is_routed_by_the_latest_version_effective_at_or_below_it) {
  route_history h;
  for (auto [version, from] : {std::pair{1, 0}, std::pair{2, 10}, std::pair{3, 20}})
    h.entries.push_back({static_cast<uint64_t>(version), static_cast<log_offset>(from), 0, {}, {},
                         std::make_shared<route_table>()});
  EXPECT_EQ(h.at(0).version, 1u);
  EXPECT_EQ(h.at(9).version, 1u);
  EXPECT_EQ(h.at(10).version, 2u);
  EXPECT_EQ(h.at(19).version, 2u);
  EXPECT_EQ(h.at(20).version, 3u);
  EXPECT_EQ(h.at(1'000'000).version, 3u);
  h.entries.erase(h.entries.begin()); // pruned: the oldest kept version covers older offsets
  EXPECT_EQ(h.at(3).version, 2u);
}

TEST(route_history, config_routes_render_as_text_that_compiles_to_the_same_routes) {
  caf::settings routes, r1, r2;
  r1["when"] = std::string{"type == \"error\" and attrs.msg matches \"a\\\\d\""};
  r1["sinks"] = caf::config_value::list{caf::config_value{std::string{"a"}},
                                        caf::config_value{std::string{"b"}}};
  r1["rename"] = caf::config_value::list{caf::config_value{std::string{"cc:country"}}};
  r1["pii"] = std::string{"off"};
  r2["sinks"] = caf::config_value::list{caf::config_value{std::string{"other"}}};
  r2["drop"] = caf::config_value::list{caf::config_value{std::string{"attrs.secret"}}};
  routes["errors"] = r1;
  routes["_unmatched"] = r2;
  auto text = render_routes_ini(routes);
  route_table table;
  ASSERT_EQ(compile_route_text(text, sink_names, table), "") << text;
  ASSERT_EQ(table.routes.size(), 1u);
  EXPECT_EQ(table.routes[0].name, "errors");
  EXPECT_EQ(table.routes[0].when, "type == \"error\" and attrs.msg matches \"a\\\\d\"");
  EXPECT_EQ(table.routes[0].sinks, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(table.unmatched_sinks, std::vector<size_t>{2});
  // The actions survive the round trip too: rendered again, the text is the same.
  std::istringstream in{text};
  auto reparsed = caf::actor_system_config::parse_config(in);
  ASSERT_TRUE(reparsed) << text;
  EXPECT_EQ(render_routes_ini(caf::get<caf::settings>(reparsed->find("routes")->second)), text);
  EXPECT_NE(text.find("rename = [\"cc:country\"]"), std::string::npos) << text;
  EXPECT_NE(text.find("drop = [\"attrs.secret\"]"), std::string::npos) << text;
}

TEST_F(reload_test, the_config_routes_become_version_1_on_the_first_start) {
  start(errors_to("a"));
  auto versions = stored();
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions[0].version, 1u);
  EXPECT_EQ(versions[0].effective_from, 0u);
  EXPECT_EQ(versions[0].text, errors_to("a"));
  EXPECT_EQ(registry->current()->latest().version, 1u);
  EXPECT_EQ(metrics_.value("sluice_routes_version"), 1.0);
}

TEST_F(reload_test, events_before_the_swap_offset_use_the_old_routes_and_events_after_it_the_new) {
  start(errors_to("a"));
  append("x", {"error", "play", "error"}); // offsets 1..3
  run();
  auto res = swap(errors_to("b", "errors_v2"));
  // Appended before the swap is handled but committed after it: routed by the new version.
  append("y", {"error", "play"});
  run();
  ASSERT_TRUE(res->answered);
  ASSERT_EQ(res->error, "");
  EXPECT_EQ(res->version, 2u);
  EXPECT_EQ(res->effective_from, 4u);
  append("z", {"error"});
  run();
  advance(50ms);
  EXPECT_EQ(targets[0]->ids(), (std::vector<std::string>{"x0", "x2"}));
  EXPECT_EQ(targets[1]->ids(), (std::vector<std::string>{"y0", "z0"}));
  EXPECT_EQ(targets[2]->ids(), (std::vector<std::string>{"x1", "y1"}));
  for (auto& e : targets[1]->written)
    EXPECT_GE(e.offset, res->effective_from);
  for (auto& e : targets[0]->written)
    EXPECT_LT(e.offset, res->effective_from);
  // The new route's name has its counter.
  EXPECT_EQ(metrics_.value("sluice_events_routed_total", {{"route", "errors_v2"}}), 2.0);
  EXPECT_EQ(metrics_.value("sluice_events_routed_total", {{"route", "errors"}}), 2.0);
  EXPECT_EQ(metrics_.value("sluice_routes_version"), 2.0);
  EXPECT_EQ(metrics_.value("sluice_routes_reloads_total", {{"result", "ok"}}), 1.0);
  auto versions = stored();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[1].effective_from, 4u);
  EXPECT_EQ(versions[1].comment, "test");
}

TEST_F(reload_test, an_invalid_swap_changes_nothing_and_names_the_unknown_sink) {
  start(errors_to("a"));
  auto res = swap(errors_to("nowhere"));
  run();
  ASSERT_TRUE(res->answered);
  EXPECT_TRUE(res->invalid);
  EXPECT_NE(res->error.find("nowhere"), std::string::npos) << res->error;
  EXPECT_EQ(stored().size(), 1u);
  EXPECT_EQ(registry->current()->latest().version, 1u);
  EXPECT_EQ(metrics_.value("sluice_routes_reloads_total", {{"result", "invalid"}}), 1.0);
  append("x", {"error"});
  run();
  advance(50ms);
  EXPECT_EQ(targets[0]->ids(), std::vector<std::string>{"x0"});
}

TEST_F(reload_test, after_a_restart_the_latest_stored_version_stays_and_old_events_replay_by_theirs) {
  start(errors_to("a"));
  append("x", {"error"}); // offset 1, version 1 → a
  run();
  swap(errors_to("b"));
  run();
  append("y", {"error"}); // offset 2, version 2 → b
  run();
  // Stop before any sink made its offset durable: every event is replayed after the restart.
  stop_all();
  {
    persistence::write_txn txn{*env_};
    for (auto& s : sink_names)
      txn.del(persistence::db::offsets, "sink." + s);
    txn.commit();
  }
  start(errors_to("a")); // the config file did not change
  advance(50ms);
  EXPECT_EQ(stored().size(), 2u) << "an unchanged config file makes no new version";
  EXPECT_EQ(registry->current()->latest().version, 2u);
  EXPECT_EQ(registry->current()->entries.size(), 2u) << "version 1 is still needed for replay";
  EXPECT_EQ(targets[0]->ids(), std::vector<std::string>{"x0"});
  EXPECT_EQ(targets[1]->ids(), std::vector<std::string>{"y0"});
}

TEST_F(reload_test, an_edited_config_file_becomes_a_new_version_at_the_next_offset) {
  start(errors_to("a"));
  append("x", {"error"}); // offset 1
  run();
  advance(50ms);
  stop_all();
  start(errors_to("b")); // the operator edited the file
  auto versions = stored();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[1].text, errors_to("b"));
  EXPECT_EQ(versions[1].effective_from, 2u);
  EXPECT_EQ(versions[1].comment, "config file changed");
  append("y", {"error"});
  run();
  advance(50ms);
  EXPECT_EQ(targets[1]->ids(), std::vector<std::string>{"y0"});
}

TEST_F(reload_test, versions_no_consumer_needs_are_dropped_from_the_history_at_the_next_swap) {
  start(errors_to("a"));
  append("x", {"error"});
  run();
  swap(errors_to("b"));
  run();
  append("y", {"error"});
  run();
  advance(50ms); // every sink made offset 2 durable
  run();
  auto res = swap(errors_to("a"));
  run();
  ASSERT_EQ(res->error, "");
  auto h = registry->current();
  ASSERT_EQ(h->entries.size(), 2u) << "version 1 routes nothing any consumer still needs";
  EXPECT_EQ(h->entries[0].version, 2u);
  EXPECT_EQ(h->entries[1].version, 3u);
}

TEST_F(reload_test, stored_routes_that_no_longer_compile_are_replaced_by_the_config_routes) {
  start(errors_to("a"));
  auto res = swap(errors_to("b"));
  run();
  ASSERT_EQ(res->error, "");
  stop_all();
  // Restart with sink "b" removed from the config: version 2 names a sink that is gone.
  route_registry fewer{env_.get(), {"a", "other"}, &metrics_};
  open_route_history(fewer, errors_to("a"), 10, 0);
  auto h = fewer.current();
  ASSERT_TRUE(h);
  EXPECT_EQ(h->latest().version, 3u);
  EXPECT_EQ(h->latest().effective_from, 10u);
  EXPECT_EQ(h->latest().text, errors_to("a"));
  ASSERT_EQ(h->latest().table->routes.size(), 1u);
  EXPECT_EQ(h->latest().table->routes[0].sinks, std::vector<size_t>{0});
  EXPECT_EQ(stored().size(), 3u);
}
