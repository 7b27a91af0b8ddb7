#pragma once

#include "actors/admission.hpp"
#include "actors/aggregate_model.hpp"
#include "actors/catalog.hpp"
#include "actors/cluster/cluster_actor.hpp"
#include "actors/interfaces.hpp"
#include "actors/profile_model.hpp"
#include "actors/route_history.hpp"
#include "actors/route_table.hpp"
#include "actors/sinks/registry.hpp"
#include "persistence/session_store.hpp"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <string>
#include <vector>

namespace sluice::persistence {
class environment;
}

namespace sluice {

class metrics_registry;

/// How to assemble the actors of one node.
struct node_options {
  std::string node_name = "node-1";
  std::string data_dir = "data";
  std::vector<sink_spec> sinks;
  route_table routes;
  /// Routes are versioned in LMDB and hot-reloadable (see `route_registry`); `routes_text` (the
  /// config file's routes as INI text, `render_routes_ini`) is their first version. False:
  /// `routes` are fixed (tests).
  bool versioned_routes = false;
  std::string routes_text;
  /// A PII secret is configured: swapped routes may hash (`check_route_secret`).
  bool pii_secret_set = false;
  /// PII detector of the route actions (`[pii]`, built by the config); spawn_node makes one with
  /// the defaults (every kind, every string, no secret) when null.
  std::shared_ptr<const pii_detector> pii;
  size_t device_shards = 2;
  size_t profile_shards = 2;
  caf::timespan idle_timeout = std::chrono::minutes{5};
  caf::timespan checkpoint_interval = std::chrono::milliseconds{200};
  caf::timespan sync_interval = std::chrono::seconds{1};
  profile_options profiles;
  /// Trending, genres and co-watch (`completion_ratio` is taken from `profiles`).
  aggregate_options aggregates;
  /// The title catalog, shared with the actors and the gateway; swapped on reload. spawn_node
  /// makes an empty one when null.
  std::shared_ptr<catalog_holder> catalog;
  /// Session ids assigned by the ingest log at append (`[sessions]`); off unless enabled.
  persistence::session_options sessions{false};
  /// Flow control and backpressure (see `ingest_log_state`).
  size_t consumer_window_events = 131072;
  /// Events per shared catch-up read (0: the ingest log's default; see `ingest_log_deps`).
  size_t catch_up_events = 0;
  uint64_t max_log_bytes = 0;
  size_t max_pending_events = 262144;
  /// Bounds of the background work in one group commit (see `ingest_log_deps`).
  size_t checkpoint_entries_per_commit = 512;
  size_t trim_records_per_commit = 64;
  /// `[cluster]`: off for a single node.
  cluster::cluster_options cluster;
  /// This node's gateway base URL, advertised to the cluster (status, console).
  std::string http_url;
  /// Run the ingest log, sinks and dead letters on their own threads (blocking I/O). Tests on
  /// CAF's deterministic test coordinator set this to false.
  bool detached_io = true;
};

/// Handles of a running node's actors.
struct node_handles {
  ingest_log_actor log;
  /// Whether the log takes batches (shared with the gateway).
  std::shared_ptr<admission> gate;
  std::vector<shard_actor> device_shards;
  std::vector<shard_actor> profile_shards;
  std::vector<sink_actor> sinks;
  dead_letter_admin_actor dead_letters;
  /// Trending titles, popular genres, also-watched; and its options (query validation).
  aggregator_actor aggregator;
  aggregate_options aggregates;
  /// Route versions (hot reload); null unless `node_options::versioned_routes`.
  std::shared_ptr<route_registry> routes;
  /// The title catalog (never null): `catalog->get()` for the current one, `reload` on SIGHUP.
  std::shared_ptr<catalog_holder> catalog;

  /// Cluster: the node's cluster actor (null for a single node), publish it on `cluster.port`
  /// and wait for `settle_atom` before sending `replay_atom` to `log`.
  caf::actor cluster;
  /// Cluster: ownership (null for a single node).
  std::shared_ptr<cluster::view_holder> views;
  /// The cluster status document (`GET /v1/cluster`), single node or cluster.
  std::function<std::string()> cluster_status;

  /// The shard owning `key` among `shards`.
  static const shard_actor& owner(const std::vector<shard_actor>& shards, std::string_view key);

  /// Asks the state of a device or profile (`space`) `key` the query `what`: its shard here, or in
  /// a cluster its owner's; answers through `reply`.
  void ask(state_space space, const std::string& key, std::string what, query_reply reply) const;
};

/// Spawns every actor of a node over an open environment and wires them together: the ingest
/// log, the dead-letter sink, one runner per sink, and the device and profile shards, all of them
/// consumers of the log. Does not start dispatching: send `replay_atom` to `log` once the caller is
/// ready.
node_handles spawn_node(caf::actor_system& sys, persistence::environment& env,
                        metrics_registry& metrics, const node_options& opts);

} // namespace sluice
