#pragma once

#include "actors/node.hpp"
#include "gateway/access.hpp"
#include "gateway/server.hpp"
#include "messages/quality.hpp"
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
  std::string gateway_tls_cert;               ///< PEM chain; with tls-key: HTTPS/WSS only
  std::string gateway_tls_key;
  std::string gateway_tls_min_version = "1.2";
  std::string console_dir = "console"; ///< the admin console's files (gateway.console-dir)
  // [storage]
  std::string durability = "sync";
  caf::timespan sync_interval = std::chrono::seconds{1};
  size_t initial_map_bytes = size_t{1} << 30;
  size_t max_map_bytes = size_t{64} << 30;
  size_t max_log_bytes = size_t{2} << 30;
  size_t max_pending_events = 262144;
  size_t checkpoint_entries_per_commit = 512;
  size_t trim_records_per_commit = 64;
  // [actors]
  size_t device_shards = 2;
  size_t profile_shards = 2;
  caf::timespan idle_timeout = std::chrono::minutes{5};
  caf::timespan checkpoint_interval = std::chrono::milliseconds{500};
  size_t consumer_window_events = 131072;
  size_t catch_up_events = 0;
  // [profiles]
  double completion_ratio = 0.95;
  size_t max_titles = 500;
  caf::timespan heartbeat_timeout = std::chrono::seconds{90};
  caf::timespan seek_tolerance = std::chrono::seconds{10};
  caf::timespan reorder_horizon = std::chrono::minutes{30};
  size_t watch_time_days = 400;
  // [trending], [genres], [cowatch]
  caf::timespan trending_window = std::chrono::hours{1};
  caf::timespan trending_bucket = std::chrono::minutes{1};
  caf::timespan trending_allowed_lateness = std::chrono::minutes{5};
  size_t genres_retention_days = 31;
  size_t cowatch_top_n = 20;
  size_t cowatch_max_completions = 200;
  size_t cowatch_max_neighbors = 1000;
  // [catalog]
  std::string titles_file = "conf/titles.csv";

  // [schemas] (the per-type sections are read by `load_schemas`)
  std::string schemas_unknown_types = "accept";
  std::string schemas_version_attribute = "schema_version";
  // [enrich]
  bool enrich_enabled = false;
  std::vector<std::string> enrich_device_rules = device_classifier::default_rules();
  std::string enrich_geoip_file = "conf/geoip.csv";
  bool enrich_trust_forwarded_for = false;
  caf::timespan enrich_max_clock_skew = std::chrono::minutes{5};
  std::string enrich_device_model_attribute = "device_model";
  std::string enrich_device_type_attribute = "device_type";
  std::string enrich_country_attribute = "country";
  std::string enrich_clock_skew_attribute = "clock_skew_ms";
  std::string enrich_unknown_country = "ZZ";
  // [cluster]
  uint16_t cluster_port = 0;
  std::string cluster_host = "127.0.0.1";
  std::vector<std::string> cluster_seeds;
  caf::timespan cluster_heartbeat_interval = std::chrono::milliseconds{250};
  caf::timespan cluster_failure_timeout = std::chrono::seconds{3};
  size_t cluster_vnodes = 1024;
  size_t cluster_forward_window_events = 65536;
  // [sessions]
  bool sessions_enabled = false;
  caf::timespan sessions_gap = std::chrono::minutes{30};
  size_t sessions_cache_devices = 100000;
  std::string sessions_attribute = "session_id";
  // [pii] and sluice.routes-file (see docs/routes.md)
  std::string routes_file;
  std::vector<std::string> pii_kinds = pii_options{}.kinds;
  std::vector<std::string> pii_fields;
  std::string pii_secret;
  std::string pii_hash_encoding = "hex";
  // [auth], [limits] and [tokens.<name>] (docs/access.md)
  std::vector<std::string> auth_anonymous;
  caf::timespan auth_session_ttl = std::chrono::hours{12};
  size_t auth_max_sessions = 10000;
  double auth_max_verifications_per_s = 4;
  double auth_audited_failures_per_s = 20;
  bool auth_bootstrap_token = true;
  size_t limits_token_events_per_s = 0;
  size_t limits_token_burst = 0;
  size_t limits_device_events_per_s = 100;
  size_t limits_device_burst = 10000;
  size_t limits_max_devices = 262144;

  /// After `parse`: rejects unknown keys (naming them), checks values, and compiles sinks and
  /// routes into `node`. Returns an error text, empty on success.
  std::string finish();
  /// Loads `catalog.titles-file` into `node.catalog` (part of `finish`).
  std::string load_catalog();
  /// Reads `sluice.routes-file` into `routes` and its text into `source` (or the config file's
  /// text when routes are in it, for error positions); part of `finish`.
  std::string read_routes_file(caf::settings& routes, std::string& source);
  /// Builds `node.pii` from `[pii]` and checks the secret of hashing routes (part of `finish`).
  std::string load_pii();

  /// `--help` text: every option with its type, default and description.
  std::string help() const;

  node_options node;
  persistence::env_options storage;
  gateway::config gateway;
  /// Schemas and enrichment (`[schemas]`, `[enrich]`), shared with the gateway; set by `finish`.
  std::shared_ptr<const ingest_quality> quality;
  /// Builds `quality` and the session options (part of `finish`).
  std::string load_quality();
  /// Access control (`[auth]`, `[limits]`, `[tokens.<name>]`), set by `finish`; the bootstrap
  /// admin token is added by `serve` (it writes under the data dir).
  gateway::access_options access;
  /// Builds `access` (part of `finish`).
  std::string load_access();
};

} // namespace sluice
