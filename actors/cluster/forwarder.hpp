#pragma once

#include "actors/cluster/view.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>

#include <deque>
#include <memory>
#include <string>

namespace sluice {
class counter;
class gauge;
class metrics_registry;
} // namespace sluice

namespace sluice::cluster {

/// What a forwarder reports to its cluster actor after every change (status page, checkpoints),
/// sent as `(acked_atom, peer, up, acked_upto, sent_upto, head, in_flight_events, resent_events)`.
struct forwarder_stats {
  std::string peer;
  bool up = false;
  log_offset acked_upto = 0;
  log_offset sent_upto = 0;
  log_offset head = 0;
  uint64_t in_flight_events = 0;
  uint64_t resent_events = 0;
};

/// Everything a forwarder needs at spawn.
struct forwarder_deps {
  /// This node's name (the `origin` of what it sends) and the peer's.
  std::string self;
  std::string peer;
  /// Reads the stored log (its own reader, off the writer's thread).
  log_reader_actor reader;
  /// The cluster actor: receives the `forwarder_stats` fields after every change.
  caf::actor parent;
  std::shared_ptr<view_holder> views;
  metrics_registry* metrics = nullptr;
  /// The peer has every event it should get up to here (durable; from the last checkpoint).
  log_offset acked_upto = 0;
  /// At most this many events sent and not yet acknowledged.
  size_t window_events = 65536;
  /// Stored events per read of the log.
  size_t read_events = 4096;
  /// A forward unanswered this long is sent again.
  caf::timespan timeout = std::chrono::seconds{10};
};

/// One per peer: sends the peer, in log order, every event this node accepted whose device or
/// profile key the peer keeps (owner or replica in the current `view`), and tracks what the peer
/// acknowledged.
///
/// Lifecycle: spawned by the cluster actor for every peer it knows (from the stored acks or when
/// the peer first says hello) and lives as long as the node. `(peer_atom, handle)` says the peer
/// is up (a default handle: down). While up it reads the stored log after `sent_upto` in chunks,
/// keeps the events for the peer and sends them as `(forward_atom, forward_batch)` requests; the
/// peer answers once they are durable in its log. `acked_upto` advances over the prefix of
/// answered chunks (chunks without events for the peer count as answered), and the cluster actor
/// records it: the node's log is never trimmed past the lowest `acked_upto` of all its forwarders.
/// When the peer goes down, restarts or a forward fails or times out, everything unacknowledged
/// is sent again from `acked_upto` (the peer's models skip what they already applied: per-source
/// offsets). A peer that stays down keeps its `acked_upto`, so it catches up when it returns.
///
/// Concurrency: one actor per peer; reads go to the reader actor. Limits: at most
/// `window_events` unacknowledged events and one read in flight; forwarded events are never
/// forwarded again (only events with an empty `origin` are).
struct forwarder_state {
  static inline const char* name = "forwarder";
  struct chunk {
    log_offset upto = 0;
    size_t events = 0;
    bool acked = false;
  };
  forwarder_deps deps;
  caf::actor peer;
  log_offset sent_upto = 0;
  log_offset head = 0;
  /// False until a read found the end of the stored log or the log dispatched a batch.
  bool head_known = false;
  bool reading = false;
  bool retry_scheduled = false;
  /// Bumped on every rewind: answers to older requests are ignored.
  uint64_t epoch = 0;
  std::deque<chunk> inflight;
  size_t inflight_events = 0;
  uint64_t resent = 0;
  /// When the peer last had everything up to the head (lag is measured from there).
  caf::actor_clock::time_point caught_up_at;
  bool behind = false;
  counter* forwarded = nullptr;
  counter* replicated = nullptr;
  gauge* lag_ms = nullptr;
  counter* resent_events = nullptr;
  counter* failures = nullptr;
  gauge* backlog = nullptr;
  gauge* inflight_gauge = nullptr;
};

caf::behavior forwarder(caf::stateful_actor<forwarder_state>* self, forwarder_deps deps);

} // namespace sluice::cluster
