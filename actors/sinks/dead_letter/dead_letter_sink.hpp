#pragma once

#include "actors/interfaces.hpp"

#include <caf/stateful_actor.hpp>

#include <string>

namespace sluice {

class metrics_registry;
class counter;

/// State of the dead-letter sink.
///
/// Lifecycle: opens `<data-dir>/dead-letters/dead-letters.ndjson` (append) at spawn; every message
/// is one batch of dead letters written as NDJSON lines
/// `{"reason":…,"origin":…,"dead_at":…,"event":{…}}` and fsynced before the handler returns, so a
/// dead letter is durable once the sink that gave up on it commits its offset. Concurrency: runs
/// detached (blocking file I/O). Limits: one file, no rotation yet; a failed write is counted in
/// `sluice_dead_letter_write_failures_total` and logged.
struct dead_letter_state {
  static inline const char* name = "dead-letters";
  std::string path;
  std::string node;
  int fd = -1;
  std::string buffer;
  metrics_registry* metrics = nullptr;
  counter* failures = nullptr;
  ~dead_letter_state();
};

dead_letter_actor::behavior_type
dead_letter_sink(dead_letter_actor::stateful_pointer<dead_letter_state> self, std::string path,
                 std::string node, metrics_registry* metrics);

} // namespace sluice
