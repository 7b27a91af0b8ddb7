#pragma once

#include "actors/option_table.hpp"
#include "messages/event.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sluice {

/// What a sink reports for one operation. The engine (the sink runner), not the sink, owns
/// retries, backoff and dead-lettering.
enum class sink_status {
  ok,    ///< done; for `write`, the batch is durable at the target
  retry, ///< transient failure; the engine retries the same batch with backoff
  error, ///< permanent failure for this batch; the engine sends it to the dead-letter sink
};

/// One delivery target. Implementations are plain C++ and may block (the runner is a detached
/// actor with its own thread); they are never called concurrently.
class sink {
public:
  virtual ~sink() = default;
  /// Opens files or connections. `retry` makes the runner try again with backoff.
  virtual sink_status start(std::string& error) = 0;
  /// Delivers `events` (in offset order). On `retry` the same batch comes again.
  virtual sink_status write(const event_batch& events, std::string& error) = 0;
  /// Cheap health check for `/readyz` and the console.
  virtual bool healthy() const = 0;
  /// Flushes and closes.
  virtual void stop() = 0;
  /// The delivery guarantee this sink gives, in one sentence, for docs and `--help`.
  virtual std::string_view guarantee() const = 0;
};

/// Options every sink has, owned by the engine that runs it.
struct sink_runner_config {
  size_t max_batch_bytes = 1 << 20;
  size_t max_batch_events = 10000;
  caf::timespan flush_interval = std::chrono::milliseconds{250};
  uint32_t max_attempts = 5;
  caf::timespan backoff_initial = std::chrono::milliseconds{100};
  caf::timespan backoff_max = std::chrono::seconds{10};

  /// Option table: `max-batch-bytes`, `max-batch-events`, `flush-interval`, `max-attempts`,
  /// `backoff-initial`, `backoff-max`.
  static const option_table<sink_runner_config>& options();
  /// Empty when valid; otherwise what is wrong.
  std::string validate() const;
};

} // namespace sluice
