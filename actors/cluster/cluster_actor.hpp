#pragma once

#include "actors/cluster/view.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace sluice::persistence {
class environment;
}

namespace sluice {
class counter;
class gauge;
class histogram;
class metrics_registry;
} // namespace sluice

namespace sluice::cluster {

/// `[cluster]`: how a node finds and watches its peers.
struct cluster_options {
  /// Off: a single node (no middleman port, no forwarding, every key is local).
  bool enabled = false;
  /// Address peers reach this node at (bound and advertised).
  std::string host = "127.0.0.1";
  /// Port this node publishes its cluster actor on.
  uint16_t port = 0;
  /// host:port of cluster ports to contact; may include this node's own.
  std::vector<std::string> seeds;
  caf::timespan heartbeat_interval = std::chrono::milliseconds{250};
  /// A peer not heard from for this long is down.
  caf::timespan failure_timeout = std::chrono::seconds{3};
  size_t vnodes = hash_ring::default_vnodes;
  /// Unacknowledged events per peer.
  size_t forward_window_events = 65536;
  /// How often forwarders' acknowledgements are checkpointed (lets the log trim).
  caf::timespan checkpoint_interval = std::chrono::milliseconds{500};
};

/// The cluster's status document (`GET /v1/cluster`, the console's live feed), rendered by the
/// cluster actor after every change and read from io threads. Concurrency: a mutex around one
/// string.
class status_board {
public:
  std::string get() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return json_;
  }
  void set(std::string json) {
    std::lock_guard<std::mutex> guard{mtx_};
    json_ = std::move(json);
  }

private:
  mutable std::mutex mtx_;
  std::string json_;
};

/// The single-node status document (`"enabled":false`).
std::string single_node_status(const std::string& self, const std::string& http);

/// Everything the cluster actor needs at spawn.
struct cluster_deps {
  std::string self;
  /// This node's gateway base URL (advertised to peers for `cluster status` and the console).
  std::string http;
  cluster_options opts;
  ingest_log_actor log;
  persistence::environment* env = nullptr;
  metrics_registry* metrics = nullptr;
  std::shared_ptr<view_holder> views;
  std::shared_ptr<status_board> board;
  std::vector<shard_actor> device_shards;
  std::vector<shard_actor> profile_shards;
  /// Offset of the `cluster` log consumer from the last checkpoint.
  log_offset done_upto = 0;
  /// Contact peers through the middleman and run the log reader on its own thread. Tests on
  /// CAF's deterministic test coordinator set this to false and introduce peers themselves.
  bool use_network = true;
};

/// The log consumer name whose offset is the lowest acknowledgement of every forwarder.
inline constexpr const char* cluster_consumer = "cluster";

/// A node's member of the cluster: membership, ownership, forwarding and remote queries.
///
/// Lifecycle: spawned with the node and published through CAF's middleman on `cluster.port` by
/// the caller. It contacts every seed (and every member a peer tells it of) through the
/// middleman's `connect`, says `hello`, and every `heartbeat-interval` sends each connected peer
/// a heartbeat with the members it knows (gossip). A peer is up once it was heard; it is down when
/// its connection drops (CAF down message) or nothing was heard from it for `failure-timeout`;
/// down peers are contacted again at every heartbeat, so a restarted node rejoins. Every change of
/// the up set publishes a new `view` (the ring over the up members, same on every node for the
/// same set). `settle` answers once every seed answered or `failure-timeout` passed since start,
/// so the node starts dispatching its log with the cluster's ownership, not its own alone.
///
/// Forwarding: one `forwarder` per peer (stored acknowledgements survive restarts). The actor is a
/// log consumer (`cluster`): it acknowledges each dispatched batch at once and tells the
/// forwarders the new head; every `checkpoint-interval` it commits each forwarder's acknowledged
/// offset and, as its consumer offset, the lowest of them, so the log keeps what any peer lacks.
/// Receiving: `(forward_atom, forward_batch)` from a peer is appended to the local log (the events
/// keep their `origin`, so only the shards apply them) and answered once durable.
/// Queries: a device or profile query goes to the key's owner (this node's shard, or the owner's
/// cluster actor, which asks its shard).
/// Forgetting: a peer that is down can be forgotten (`DELETE /v1/admin/cluster/members/{name}`,
/// passed on to every peer): its forwarder stops and its stored acknowledgement is deleted, so it
/// no longer holds the log; if it ever says hello again it joins as a new node.
///
/// Concurrency: one actor; forwarders and the middleman run in parallel. Limits: see
/// `forwarder_state`; the ring keeps `vnodes` points per member.
struct cluster_state {
  static inline const char* name = "cluster";
  enum class member_state { joining, up, down };
  struct member {
    member_info info;
    caf::actor handle;
    member_state state = member_state::joining;
    caf::actor_clock::time_point last_heard;
    caf::actor forwarder;
    gauge* up = nullptr;
    /// Latest forwarder report.
    bool fwd_up = false;
    log_offset acked_upto = 0, sent_upto = 0, head = 0;
    uint64_t in_flight = 0, resent = 0;
  };
  cluster_deps deps;
  member_info me;
  std::map<std::string, member> members; ///< by name, without this node
  std::set<std::string> connecting;      ///< addresses with a connect under way
  std::set<std::string> self_addresses;  ///< addresses that turned out to be this node
  /// Forgotten peers whose stored acknowledgement the next checkpoint deletes.
  std::set<std::string> forgotten;
  log_offset head = 0;
  log_offset checkpointed = 0;
  bool checkpointing = false;
  bool settled = false;
  caf::actor_clock::time_point started;
  /// When the last heartbeat tick ran (a late tick suspends the silence check once).
  caf::actor_clock::time_point last_tick;
  std::vector<caf::response_promise> settle_waiters;
  std::vector<caf::response_promise> drains;
  /// Forwards being appended and remote queries being answered, by ticket.
  std::map<uint64_t, caf::response_promise> promises;
  uint64_t next_ticket = 0;
  uint64_t version = 0;
  log_reader_actor reader;
  size_t pending_forwards = 0;
  double last_forward_ms = 0;
  counter* moves = nullptr;
  gauge* ring_version = nullptr;
  gauge* members_up = nullptr;
  gauge* members_down = nullptr;
  histogram* receive_latency = nullptr;
  metrics_registry* metrics = nullptr;
};

caf::behavior cluster_actor(caf::stateful_actor<cluster_state>* self, cluster_deps deps);

} // namespace sluice::cluster
