#pragma once

#include "actors/interfaces.hpp"
#include "actors/route_history.hpp"
#include "actors/route_table.hpp"
#include "actors/sinks/sink.hpp"

#include <caf/message.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace sluice {

class metrics_registry;
class counter;
class gauge;

/// Everything a sink runner needs at spawn.
struct sink_runner_deps {
  std::string name;
  sink_runner_config cfg;
  std::shared_ptr<sink> target;
  ingest_log_actor log;
  dead_letter_actor dead_letters;
  metrics_registry* metrics = nullptr;
  /// The node's routes and this sink's index in their sink list: the runner keeps the events
  /// whose routes name it.
  std::shared_ptr<const route_table> routes;
  /// Hot reload: when set, each event is routed by the version of the routes in effect at its
  /// offset (`route_history::at`), and `routes` is unused.
  std::shared_ptr<route_registry> registry;
  size_t sink_index = 0;
  /// The node's PII detector (route actions `pii = mask|hash`); null: no detection.
  std::shared_ptr<const pii_detector> pii;
  /// Whether this runner counts events no route matched (exactly one runner of a node does).
  bool count_unrouted = false;
  /// The sink's durable offset at start; committed events at or below it are skipped.
  log_offset done_upto = 0;
};

/// The events a sink runner holds for its sink (buffered, or in flight), mostly without copying
/// them: pointers into the committed batches it keeps alive by their messages (the log sends
/// every runner the same message, so keeping it costs a reference count), and into its own
/// copies, made only of events a route's actions change and of the events taken from a batch of
/// which the sink takes less than half (so a sink taking 5% of the events keeps 5%, not the whole
/// batch). Copies reuse the buffers of earlier ones. Not thread-safe (one runner).
struct held_events {
  /// The events, in offset order (what `sink::write_refs` gets).
  event_refs refs;
  /// The committed batches `refs` points into.
  std::vector<caf::message> batches;
  /// Copies `refs` points into: the first `copies_used` are in use, the rest are kept for reuse.
  std::deque<event> copies;
  size_t copies_used = 0;

  size_t size() const noexcept {
    return refs.size();
  }
  bool empty() const noexcept {
    return refs.empty();
  }
  /// A slot for the next copy; `take_copy` puts it in use.
  event& spare_copy() {
    if (copies_used == copies.size())
      copies.emplace_back();
    return copies[copies_used];
  }
  const event* take_copy() {
    return &copies[copies_used++];
  }
  /// Drops every event (and the batches it kept); trims the copies kept for reuse to what was in
  /// use when far fewer were.
  void clear();
  void swap(held_events& other) noexcept {
    refs.swap(other.refs);
    batches.swap(other.batches);
    copies.swap(other.copies);
    std::swap(copies_used, other.copies_used);
  }
};

/// State of the engine that drives one sink: a consumer of the ingest log.
///
/// Lifecycle: spawned at start with the sink's recorded offset; receives every committed batch,
/// keeps the events its routes send to this sink, buffers them and flushes by size
/// (`max-batch-bytes`, `max-batch-events`) and time (`flush-interval`, which also lets buffering
/// sinks flush by age). A write that returns `retry` is retried with exponential backoff and
/// jitter; after `max-attempts`, or at once on `error`, the batch goes to the dead-letter sink with
/// the reason, as do single events the sink rejects. Circuit breaker: when a write fails and the
/// sink's active `check` fails too, the circuit opens: the target is down, not the batch, so the
/// engine only probes `check` with backoff and counts no attempts until it passes. The sink's
/// offset (consumer `sink.<name>`) is committed through the ingest log only after the batch is
/// durable (`sink::durable_upto`) or durably dead-lettered (the dead-letter sink answers after its
/// fdatasync), so an undelivered batch is replayed after a restart.
///
/// Flow control: the runner reports `processed` to the log for what it took while it holds fewer
/// than `max-queued-events`; beyond that (target slow or down) it stops, and the log keeps the
/// rest on disk, so memory stays bounded and other sinks go on. Concurrency: runs detached (the
/// sink may block).
///
/// Cost per event: the routes are evaluated once per event (the route counters are added once per
/// batch); an event the sink takes is held by pointer (`held_events`) and copied only when a
/// route's actions change it; the sink gets the pointers (`sink::write_refs`).
struct sink_runner_state {
  static inline const char* name = "sink-runner";
  sink_runner_deps deps;
  held_events buffer;
  size_t buffer_bytes = 0;
  /// `upto` of the latest committed batch received.
  log_offset seen_upto = 0;
  /// `upto` of the latest batch taken but not yet reported `processed` to the log.
  log_offset unreported_upto = 0;
  /// Everything at or below this was written with `ok` (or dead-lettered).
  log_offset accepted_upto = 0;
  held_events inflight;
  log_offset inflight_upto = 0;
  uint32_t attempts = 0;
  bool started = false;
  bool circuit_open = false;
  uint32_t probes = 0;
  bool checkpointing = false;
  log_offset checkpoint_again = 0;
  /// Dead-letter batches not yet durable: the offset does not advance past them meanwhile.
  size_t dead_letters_pending = 0;
  /// Dead letters could not be recorded: the offset stays where it is until a restart.
  bool offset_frozen = false;
  std::vector<caf::typed_response_promise<caf::ok_atom>> drains;
  std::minstd_rand rng{std::random_device{}()};
  /// One version of the routes as this runner sees it.
  struct route_view {
    std::shared_ptr<const route_table> table;
    /// Routes naming this sink, and routes whose match this runner counts (it is their first
    /// sink).
    std::vector<char> here;
    std::vector<counter*> matched;
    bool unmatched_here = false;
    counter* unmatched = nullptr;
    counter* unrouted = nullptr;
    /// Counts of the batch being routed, added to the counters once per batch.
    std::vector<uint64_t> matched_n;
    uint64_t unmatched_n = 0;
    uint64_t unrouted_n = 0;
  };
  /// Scratch of the batch being routed: the events this sink takes and their deciding routes.
  struct taken_event {
    const event* e;
    std::string_view route;
    const route_actions* actions;
  };
  std::vector<taken_event> taken;
  /// The route versions last seen (from `deps.registry`, or one made of `deps.routes`) and a
  /// view per entry; rebuilt when a swap publishes a new history (counters of new route names
  /// are registered then).
  std::shared_ptr<const route_history> history;
  std::vector<route_view> views;
  /// Applies the deciding route's actions to each copy this sink receives.
  std::unique_ptr<route_transformer> transform;
  counter* received = nullptr;
  counter* delivered = nullptr;
  counter* dead_lettered = nullptr;
  counter* retries = nullptr;
  counter* errors = nullptr;
  counter* circuit_opened = nullptr;
  gauge* queued = nullptr;
  gauge* healthy = nullptr;
  gauge* circuit = nullptr;
  /// Stops the sink (CAF 0.17 runs attached functors after the state is gone, so cleanup lives
  /// here).
  ~sink_runner_state();
};

sink_actor::behavior_type sink_runner(sink_actor::stateful_pointer<sink_runner_state> self,
                                      sink_runner_deps deps);

} // namespace sluice
