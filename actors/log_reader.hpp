#pragma once

#include "actors/interfaces.hpp"

#include <caf/stateful_actor.hpp>

#include <memory>

namespace sluice::persistence {
class environment;
class log_store;
} // namespace sluice::persistence

namespace sluice {

class counter;
class metrics_registry;

/// State of the log reader: serves the catch-up reads of lagging consumers.
///
/// Lifecycle: spawned with the ingest log, which sends it one `read` at a time: a chunk of every
/// event from a position (shared by every lagging consumer there, see `ingest_log_state`), or the
/// events of one consumer's slice. Concurrency: runs detached; reads use their own
/// LMDB read transactions, so they never block the single writer, and what they read is committed
/// and above the reader's consumer's durable offset, so trimming never removes it. Limits: one
/// answer holds at most `max_events` events and scans at most four times that many.
struct log_reader_state {
  static inline const char* name = "log-reader";
  persistence::environment* env = nullptr;
  std::unique_ptr<persistence::log_store> log;
  counter* unreadable = nullptr;
};

log_reader_actor::behavior_type
log_reader(log_reader_actor::stateful_pointer<log_reader_state> self,
           persistence::environment* env, metrics_registry* metrics);

} // namespace sluice
