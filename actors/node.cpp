#include "actors/node.hpp"

#include "actors/aggregator.hpp"
#include "actors/device_entity.hpp"
#include "actors/ingest_log.hpp"
#include "actors/metrics.hpp"
#include "actors/placement.hpp"
#include "actors/profile_entity.hpp"
#include "actors/shard.hpp"
#include "actors/sink_runner.hpp"
#include "actors/sinks/dead_letter/dead_letter_sink.hpp"
#include "persistence/lmdb.hpp"

#include <caf/all.hpp>

#include <filesystem>
#include <functional>

namespace sluice {

const shard_actor& node_handles::owner(const std::vector<shard_actor>& shards,
                                       std::string_view key) {
  return shards[shard_index(key, shards.size())];
}

void node_handles::ask(state_space space, const std::string& key, std::string what,
                       query_reply reply) const {
  if (cluster) {
    caf::anon_send(cluster, query_atom_v, static_cast<uint8_t>(space), key, std::move(what),
                   std::move(reply));
    return;
  }
  auto& shards = space == state_space::devices ? device_shards : profile_shards;
  caf::anon_send(owner(shards, key), query_atom_v, key, std::move(what), std::move(reply));
}

namespace {

log_offset stored_offset(persistence::environment& env, const std::string& consumer) {
  persistence::read_txn txn{env};
  if (auto v = txn.get(persistence::db::offsets, consumer))
    return persistence::decode_be64(*v);
  return 0;
}

template <class F, class... Ts>
auto spawn_io(caf::actor_system& sys, bool detached, F fn, Ts&&... xs) {
  if (detached)
    return sys.spawn<caf::detached>(fn, std::forward<Ts>(xs)...);
  return sys.spawn(fn, std::forward<Ts>(xs)...);
}

} // namespace

node_handles spawn_node(caf::actor_system& sys, persistence::environment& env,
                        metrics_registry& metrics, const node_options& opts) {
  node_handles h;
  h.gate = std::make_shared<admission>();
  h.catalog = opts.catalog ? opts.catalog : std::make_shared<catalog_holder>();
  ingest_log_deps log_deps;
  log_deps.env = &env;
  log_deps.metrics = &metrics;
  log_deps.sync_interval = opts.sync_interval;
  log_deps.window_events = opts.consumer_window_events;
  log_deps.catch_up_events = opts.catch_up_events;
  log_deps.max_log_bytes = opts.max_log_bytes;
  log_deps.max_pending_events = opts.max_pending_events;
  log_deps.checkpoint_entries_per_commit = opts.checkpoint_entries_per_commit;
  log_deps.trim_records_per_commit = opts.trim_records_per_commit;
  log_deps.gate = h.gate;
  log_deps.detached_reader = opts.detached_io;
  log_deps.sessions = opts.sessions;
  for (auto& s : opts.sinks)
    log_deps.consumers.push_back({"sink." + s.name, consumer_spec::slice::all, 0, 1});
  for (size_t i = 0; i < opts.device_shards; ++i)
    log_deps.consumers.push_back(
      {"devices." + std::to_string(i), consumer_spec::slice::device, i, opts.device_shards});
  for (size_t i = 0; i < opts.profile_shards; ++i)
    log_deps.consumers.push_back(
      {"profiles." + std::to_string(i), consumer_spec::slice::profile, i, opts.profile_shards});
  log_deps.consumers.push_back({aggregator_consumer, consumer_spec::slice::all, 0, 1});
  if (opts.cluster.enabled) {
    log_deps.consumers.push_back({cluster::cluster_consumer, consumer_spec::slice::all, 0, 1});
    h.views = std::make_shared<cluster::view_holder>();
  }
  if (opts.versioned_routes) {
    std::vector<std::string> sink_names;
    for (auto& s : opts.sinks)
      sink_names.push_back(s.name);
    h.routes = std::make_shared<route_registry>(&env, std::move(sink_names), &metrics,
                                                opts.pii_secret_set);
    log_deps.routes = h.routes;
    log_deps.config_routes_text = opts.routes_text;
  }
  h.log = spawn_io(sys, opts.detached_io, ingest_log, std::move(log_deps));

  auto dl_path = (std::filesystem::path{opts.data_dir} / "dead-letters" / "dead-letters.ndjson")
                   .string();
  auto pii = opts.pii;
  if (!pii) {
    std::string pii_error;
    pii = pii_detector::make(pii_options{}, pii_error);
  }
  h.dead_letters = spawn_io(sys, opts.detached_io, dead_letter_sink, dl_path, opts.node_name,
                            &metrics, pii);
  caf::anon_send(h.dead_letters, connect_atom_v, h.log);
  auto routes = std::make_shared<const route_table>(opts.routes);
  for (size_t i = 0; i < opts.sinks.size(); ++i) {
    auto& spec = opts.sinks[i];
    sink_runner_deps deps;
    deps.name = spec.name;
    deps.cfg = spec.runner;
    deps.target = spec.make();
    deps.log = h.log;
    deps.dead_letters = h.dead_letters;
    deps.metrics = &metrics;
    deps.routes = routes;
    deps.registry = h.routes;
    deps.sink_index = i;
    deps.pii = pii;
    deps.count_unrouted = i == 0;
    deps.done_upto = stored_offset(env, "sink." + spec.name);
    h.sinks.push_back(spawn_io(sys, opts.detached_io, sink_runner, std::move(deps)));
  }

  // Checkpoints of ten thousands of dirty entities are MBs each: their commits are spread over
  // the interval (one phase per shard and the aggregator), not all in one group commit.
  const size_t checkpointers = opts.device_shards + opts.profile_shards + 1;
  size_t next_phase = 0;
  auto checkpoint_phase = [&] {
    return opts.checkpoint_interval * static_cast<int64_t>(next_phase++)
           / static_cast<int64_t>(checkpointers);
  };
  auto make_shards = [&](const entity_kind& kind, size_t n, std::vector<shard_actor>& out) {
    for (size_t i = 0; i < n; ++i) {
      shard_deps deps;
      deps.kind = kind;
      deps.index = i;
      deps.count = n;
      deps.log = h.log;
      deps.env = &env;
      deps.metrics = &metrics;
      deps.idle_timeout = opts.idle_timeout;
      deps.checkpoint_interval = opts.checkpoint_interval;
      deps.checkpoint_phase = checkpoint_phase();
      deps.done_upto = stored_offset(env, kind.name + "s." + std::to_string(i));
      deps.views = h.views;
      out.push_back(sys.spawn(shard, std::move(deps)));
    }
  };
  entity_kind devices;
  devices.name = "device";
  devices.space = state_space::devices;
  devices.key = placement_key::device;
  devices.make = [](std::string_view key, std::string_view stored) -> std::unique_ptr<entity> {
    return std::make_unique<device_entity>(key, stored);
  };
  entity_kind profiles;
  profiles.name = "profile";
  profiles.space = state_space::profiles;
  profiles.key = placement_key::profile;
  auto popts = opts.profiles;
  popts.late_events = &metrics.get_counter(
    "sluice_profile_late_events_total",
    "playback events older than their profile's newest minus profiles.reorder-horizon: not in "
    "watch time");
  popts.invalid_playback = &metrics.get_counter(
    "sluice_profile_invalid_playback_events_total",
    "play/pause/stop/heartbeat events without a string title_id or a numeric position_ms: not in "
    "profile state");
  popts.catalog = h.catalog;
  profiles.make = [popts](std::string_view key,
                          std::string_view stored) -> std::unique_ptr<entity> {
    return std::make_unique<profile_entity>(key, stored, popts);
  };
  make_shards(devices, opts.device_shards, h.device_shards);
  make_shards(profiles, opts.profile_shards, h.profile_shards);

  // In the order of log_deps.consumers.
  std::vector<consumer_actor> consumers(h.sinks.begin(), h.sinks.end());
  consumers.insert(consumers.end(), h.device_shards.begin(), h.device_shards.end());
  consumers.insert(consumers.end(), h.profile_shards.begin(), h.profile_shards.end());
  {
    aggregator_deps deps;
    deps.log = h.log;
    deps.env = &env;
    deps.metrics = &metrics;
    deps.catalog = h.catalog;
    deps.options = opts.aggregates;
    deps.options.completion_ratio = opts.profiles.completion_ratio;
    deps.checkpoint_interval = opts.checkpoint_interval;
    deps.checkpoint_phase = checkpoint_phase();
    h.aggregates = deps.options;
    h.aggregator = sys.spawn(aggregator, std::move(deps));
  }
  consumers.push_back(h.aggregator);
  if (opts.cluster.enabled) {
    cluster::cluster_deps deps;
    deps.self = opts.node_name;
    deps.http = opts.http_url;
    deps.opts = opts.cluster;
    deps.log = h.log;
    deps.env = &env;
    deps.metrics = &metrics;
    deps.views = h.views;
    deps.board = std::make_shared<cluster::status_board>();
    deps.device_shards = h.device_shards;
    deps.profile_shards = h.profile_shards;
    deps.done_upto = stored_offset(env, cluster::cluster_consumer);
    h.cluster_status = [board = deps.board] { return board->get(); };
    h.cluster = sys.spawn(cluster::cluster_actor, std::move(deps));
    consumers.push_back(caf::actor_cast<consumer_actor>(h.cluster));
  } else {
    h.cluster_status = [status = cluster::single_node_status(opts.node_name, opts.http_url)] {
      return status;
    };
  }
  caf::anon_send(h.log, connect_atom_v, std::move(consumers));
  return h;
}

} // namespace sluice
