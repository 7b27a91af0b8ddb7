#include "app/config.hpp"

#include "actors/route_table.hpp"
#include "actors/sinks/registry.hpp"

#include <caf/all.hpp>

#include <fmt/format.h>

namespace sluice {

node_config::node_config() {
  // Sharing scales to many runnable actors (work stealing stalls walking its lists, see STACK.md);
  // two workers leave the io threads a core on small machines. Both can be overridden.
  set("scheduler.policy", caf::atom("sharing"));
  set("scheduler.max-threads", 2);
  // CAF 0.17 lets an actor drain its whole mailbox per turn; under load a shard flooded with
  // entity answers would hold a worker indefinitely. A bounded turn keeps actors fair.
  set("scheduler.max-throughput", 64);
  opt_group{custom_options_, "sluice"}
    .add(node_name, "node", "name of this node, written into every event as `node`")
    .add(data_dir, "data-dir", "directory holding LMDB, sink files, dead letters, gateway.port");
  opt_group{custom_options_, "gateway"}
    .add(gateway_host, "host", "address the HTTP/WebSocket gateway binds to")
    .add(gateway_port, "port", "TCP port of the gateway; 0 picks a free port")
    .add(gateway_io_threads, "io-threads", "threads running the gateway's sockets")
    .add(max_body_bytes, "max-body-bytes", "largest accepted HTTP body in bytes (larger: 413)")
    .add(max_frame_bytes, "max-frame-bytes",
         "largest accepted WebSocket message in bytes (larger: close code 1009)")
    .add(max_inflight_frames, "max-inflight-frames",
         "WebSocket frames awaiting their ack before the gateway stops reading that socket")
    .add(max_batch_events, "max-batch-events", "most events in one batch (more: 413)")
    .add(gateway_idle_timeout, "idle-timeout", "close idle HTTP keep-alive connections after this");
  opt_group{custom_options_, "storage"}
    .add(durability, "durability",
         "when commits reach the disk: sync (fsync per group commit, before any ack), periodic "
         "(fsync every sync-interval; a power loss loses up to that much acked data), none (no "
         "fsync; survives a process crash, not a power loss)")
    .add(sync_interval, "sync-interval", "fsync period with durability = periodic")
    .add(initial_map_bytes, "initial-map-bytes", "initial LMDB map size in bytes")
    .add(max_map_bytes, "max-map-bytes",
         "upper bound of the LMDB map in bytes; the map doubles on demand up to this")
    .add(max_log_bytes, "max-log-bytes",
         "while the stored log (what some consumer has not made durable yet) exceeds this, the "
         "gateway refuses batches with 503 and Retry-After, and /readyz names the lagging "
         "consumers; 0 disables the limit")
    .add(max_pending_events, "max-pending-events",
         "events waiting for the next group commit before the gateway refuses more (503)");
  opt_group{custom_options_, "actors"}
    .add(device_shards, "device-shards", "shards owning device actors (hash of device_id)")
    .add(profile_shards, "profile-shards", "shards owning profile actors (hash of profile_id)")
    .add(idle_timeout, "idle-timeout", "device and profile actors idle this long are passivated")
    .add(checkpoint_interval, "checkpoint-interval",
         "device and profile state is committed with its log offset at least this often")
    .add(consumer_window_events, "consumer-window-events",
         "dispatched events a consumer (sink, shard) may have unprocessed; one further behind "
         "catches up from the stored log, so memory stays bounded");
  opt_group{custom_options_, "profiles"}
    .add(completion_ratio, "completion-ratio",
         "a title watched to this fraction of its duration_ms leaves continue-watching")
    .add(max_titles, "max-titles", "titles remembered per profile; least recent go first");
}

namespace {

// Collects the dotted names of every leaf in `s`.
void leaves(const caf::settings& s, const std::string& prefix, std::vector<std::string>& out) {
  for (auto& [key, value] : s) {
    auto name = prefix.empty() ? key : prefix + "." + key;
    if (auto sub = caf::get_if<caf::settings>(&value))
      leaves(*sub, name, out);
    else
      out.push_back(name);
  }
}

} // namespace

std::string node_config::finish() {
  // CAF 0.17 silently ignores unknown keys in the config file: reject them here.
  std::vector<std::string> keys;
  for (auto& [section, value] : content) {
    if (section == "sinks" || section == "routes")
      continue; // validated by their own option tables below
    if (auto sub = caf::get_if<caf::settings>(&value))
      leaves(*sub, section, keys);
    else
      keys.push_back(section);
  }
  for (auto& key : keys) {
    if (key == "config-file" || key.rfind("global.", 0) == 0)
      continue;
    if (custom_options_.qualified_name_lookup(key) == nullptr)
      return fmt::format("unknown option '{}' (see sluice --help for every option)", key);
  }
  auto mode = persistence::parse_durability(durability);
  if (!mode)
    return fmt::format("storage.durability is \"{}\"; use sync, periodic or none", durability);
  if (device_shards == 0 || profile_shards == 0)
    return "actors.device-shards and actors.profile-shards must be at least 1";
  if (completion_ratio <= 0 || completion_ratio > 1)
    return "profiles.completion-ratio must be in (0, 1]";
  if (consumer_window_events < 2 || max_pending_events == 0)
    return "actors.consumer-window-events must be at least 2 and storage.max-pending-events "
           "positive";
  if (max_log_bytes > max_map_bytes)
    return "storage.max-log-bytes must not exceed storage.max-map-bytes";
  if (initial_map_bytes == 0 || max_map_bytes < initial_map_bytes)
    return "storage.initial-map-bytes must be positive and not above storage.max-map-bytes";
  if (max_body_bytes == 0 || max_frame_bytes == 0 || max_inflight_frames == 0
      || max_batch_events == 0)
    return "gateway limits (max-body-bytes, max-frame-bytes, max-inflight-frames, "
           "max-batch-events) must be positive";

  storage.path = data_dir + "/lmdb";
  storage.mode = *mode;
  storage.initial_map_bytes = initial_map_bytes;
  storage.max_map_bytes = max_map_bytes;

  gateway.host = gateway_host;
  gateway.port = gateway_port;
  gateway.io_threads = std::max<size_t>(1, gateway_io_threads);
  gateway.max_body_bytes = max_body_bytes;
  gateway.max_frame_bytes = max_frame_bytes;
  gateway.max_inflight_frames = max_inflight_frames;
  gateway.max_batch_events = max_batch_events;
  gateway.idle_timeout_s = static_cast<uint32_t>(
    std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(gateway_idle_timeout)
                           .count()));

  node.node_name = node_name;
  node.data_dir = data_dir;
  node.device_shards = device_shards;
  node.profile_shards = profile_shards;
  node.idle_timeout = idle_timeout;
  node.checkpoint_interval = checkpoint_interval;
  node.sync_interval = sync_interval;
  node.consumer_window_events = consumer_window_events;
  node.max_log_bytes = max_log_bytes;
  node.max_pending_events = max_pending_events;
  node.profiles.completion_ratio = completion_ratio;
  node.profiles.max_titles = max_titles;
  node.sinks.clear();
  caf::settings empty;
  auto sinks_it = content.find("sinks");
  auto& sinks = sinks_it != content.end() && caf::holds_alternative<caf::settings>(sinks_it->second)
                  ? caf::get<caf::settings>(sinks_it->second)
                  : empty;
  if (auto err = load_sinks(sinks, data_dir, node_name, node.sinks); !err.empty())
    return err;
  std::vector<std::string> sink_names;
  for (auto& s : node.sinks)
    sink_names.push_back(s.name);
  auto routes_it = content.find("routes");
  auto& routes = routes_it != content.end()
                     && caf::holds_alternative<caf::settings>(routes_it->second)
                   ? caf::get<caf::settings>(routes_it->second)
                   : empty;
  if (auto err = load_routes(routes, sink_names, node.routes); !err.empty())
    return err;
  return {};
}

std::string node_config::help() const {
  std::string out = "Usage:\n"
                    "  sluice serve [--config-file=PATH] [--section.key=value ...]\n"
                    "  sluice check --config-file=PATH   validate a config file and exit\n"
                    "  sluice lake snapshots|files|compact|expire --config-file=PATH --table=T ...\n"
                    "                                    the lake's history, files, compaction\n"
                    "  sluice dlq list|replay [--url=URL | --config-file=PATH] ...\n"
                    "                                    dead letters of a running node\n"
                    "  sluice --help\n\n"
                    "Options (config file section [section], key; or --section.key=value):\n";
  std::string current;
  for (auto& opt : custom_options_) {
    auto category = std::string{opt.category().begin(), opt.category().end()};
    bool ours = category == "sluice" || category == "gateway" || category == "storage"
                || category == "actors" || category == "profiles";
    if (!ours)
      continue;
    if (category != current) {
      out += "\n [" + category + "]\n";
      current = category;
    }
    auto value = opt.get();
    out += fmt::format("  --{}=<{}> (default: {})\n      {}\n",
                       std::string{opt.full_name().begin(), opt.full_name().end()},
                       std::string{opt.type_name().begin(), opt.type_name().end()},
                       value ? caf::to_string(*value) : std::string{"none"},
                       std::string{opt.description().begin(), opt.description().end()});
  }
  out += "\n" + sinks_help();
  out += "\nRoutes ([routes.<name>] sections; [routes._unmatched] takes what no route matched):\n";
  out += route_config::options().help("routes.<name>");
  out += "\nCAF runtime options (scheduler.*, logger.*, middleman.*, ...): sluice serve "
         "--long-help\n";
  return out;
}

} // namespace sluice
