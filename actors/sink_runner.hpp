#pragma once

#include "actors/interfaces.hpp"
#include "actors/sinks/sink.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

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
  /// The sink's durable offset at start; committed events at or below it are skipped.
  log_offset done_upto = 0;
};

/// State of the engine that drives one sink.
///
/// Lifecycle: spawned at start with the sink's recorded offset; starts the sink, then buffers
/// committed events and flushes by size (`max-batch-bytes`, `max-batch-events`) and time
/// (`flush-interval`). A flush that returns `retry` is retried with exponential backoff and jitter;
/// after `max-attempts`, or at once on `error`, the batch goes to the dead-letter sink with the
/// reason. The sink's offset (consumer `sink.<name>`) is committed through the ingest log only
/// after the batch is delivered or dead-lettered, so an undelivered batch is replayed after a
/// restart. Concurrency: runs detached (the sink may block). Limits: while a batch awaits retry,
/// new events keep buffering (bounded queues come with the backpressure work).
struct sink_runner_state {
  static inline const char* name = "sink-runner";
  sink_runner_deps deps;
  event_batch buffer;
  size_t buffer_bytes = 0;
  /// `upto` of the latest committed batch received.
  log_offset seen_upto = 0;
  event_batch inflight;
  log_offset inflight_upto = 0;
  uint32_t attempts = 0;
  bool started = false;
  bool checkpointing = false;
  log_offset checkpoint_again = 0;
  std::vector<caf::typed_response_promise<caf::ok_atom>> drains;
  std::minstd_rand rng{std::random_device{}()};
  counter* delivered = nullptr;
  counter* dead_lettered = nullptr;
  counter* retries = nullptr;
  counter* errors = nullptr;
  gauge* queued = nullptr;
  gauge* healthy = nullptr;
  /// Stops the sink (CAF 0.17 runs attached functors after the state is gone, so cleanup lives
  /// here).
  ~sink_runner_state();
};

sink_actor::behavior_type sink_runner(sink_actor::stateful_pointer<sink_runner_state> self,
                                      sink_runner_deps deps);

} // namespace sluice
