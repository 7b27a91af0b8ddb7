#pragma once

#include "actors/node.hpp"
#include "gateway/server.hpp"
#include "persistence/lmdb.hpp"

#include <caf/actor_system_config.hpp>

#include <string>

namespace sluice {

/// Every option of a node, declared once with its default and description (CAF's option groups),
/// read from `--config-file=PATH` (CAF's INI format) and `--section.key=value` on the command line.
/// Sinks (`[sinks.<name>]`) and routes (`[routes.<name>]`) are sections with names of the user's
/// choosing, validated by their own option tables.
class node_config : public caf::actor_system_config {
public:
  node_config();

  // [sluice]
  std::string node_name = "node-1";
  std::string data_dir = "data";
  // [gateway]
  std::string gateway_host = "127.0.0.1";
  uint16_t gateway_port = 8080;
  size_t gateway_io_threads = 1;
  size_t max_body_bytes = 8 << 20;
  size_t max_frame_bytes = 8 << 20;
  size_t max_inflight_frames = 64;
  size_t max_batch_events = 100000;
  caf::timespan gateway_idle_timeout = std::chrono::seconds{60};
  // [storage]
  std::string durability = "sync";
  caf::timespan sync_interval = std::chrono::seconds{1};
  size_t initial_map_bytes = size_t{1} << 30;
  size_t max_map_bytes = size_t{64} << 30;
  size_t max_log_bytes = size_t{2} << 30;
  size_t max_pending_events = 262144;
  // [actors]
  size_t device_shards = 2;
  size_t profile_shards = 2;
  caf::timespan idle_timeout = std::chrono::minutes{5};
  caf::timespan checkpoint_interval = std::chrono::milliseconds{200};
  size_t consumer_window_events = 32768;
  // [profiles]
  double completion_ratio = 0.95;
  size_t max_titles = 500;

  /// After `parse`: rejects unknown keys (naming them), checks values, and compiles sinks and
  /// routes into `node`. Returns an error text, empty on success.
  std::string finish();

  /// `--help` text: every option with its type, default and description.
  std::string help() const;

  node_options node;
  persistence::env_options storage;
  gateway::config gateway;
};

} // namespace sluice
