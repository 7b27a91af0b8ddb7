#pragma once

#include "actors/metrics.hpp"
#include "actors/option_table.hpp"
#include "messages/event.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

/// What a sink reports for one operation. The engine (the sink runner), not the sink, owns
/// retries, backoff and dead-lettering.
enum class sink_status {
  ok,    ///< done; for `write`, the batch is durable at the target
  retry, ///< transient failure; the engine retries the same batch with backoff
  error, ///< permanent failure for this batch; the engine sends it to the dead-letter sink
};

/// What a sink says about one `write` besides its status.
struct write_report {
  /// Why, when the status is `retry` or `error`.
  std::string error;
  /// Events this sink refuses for good while it accepts the rest of the batch: (index into the
  /// batch, reason naming the field). The engine sends them to the dead-letter sink and counts
  /// them; only meaningful with status `ok`.
  std::vector<std::pair<size_t, std::string>> rejected;
};

/// A batch by pointer, in offset order: how the sink runner hands over the events it holds
/// without copying them (they live in the committed batches it keeps, or in its copies of the
/// events a route changed).
using event_refs = std::vector<const event*>;

/// One delivery target. Implementations are plain C++ and may block (the runner is a detached
/// actor with its own thread); they are never called concurrently.
///
/// Offsets: after a `write` returns `ok`, the engine records `durable_upto(upto)` as the sink's
/// consumer offset (`sink.<name>`), where `upto` is the last log offset the batch covers. A
/// write-through sink is durable on `ok` (the default). A buffering sink (the lake) answers the
/// highest offset below which everything it accepted is durable, and makes the rest durable in
/// `flush`.
class sink {
public:
  virtual ~sink() = default;
  /// Opens files or connections. `retry` makes the runner try again with backoff.
  virtual sink_status start(std::string& error) = 0;
  /// Registers the sink kind's own `/metrics` (labels: the runner's, `sink="<name>"`); called
  /// once by the runner before `start`. Default: none.
  virtual void attach_metrics(metrics_registry& metrics, const metric_labels& labels) {
    (void) metrics;
    (void) labels;
  }
  /// Delivers `events` (in offset order). On `retry` the same batch comes again (a buffering
  /// sink must not take it twice).
  virtual sink_status write(const event_batch& events, write_report& report) = 0;
  /// `write` for events given by pointer: what the runner calls. Same contract (indexes in
  /// `report.rejected` are positions in `events`). Default: copies the events into an
  /// `event_batch` and calls `write`; a sink that only reads them overrides it to skip the copy.
  virtual sink_status write_refs(const event_refs& events, write_report& report) {
    event_batch copy;
    copy.reserve(events.size());
    for (auto* e : events)
      copy.push_back(*e);
    return write(copy, report);
  }
  /// See the class comment; `accepted_upto` is the `upto` of the last batch written with `ok`.
  virtual log_offset durable_upto(log_offset accepted_upto) const { return accepted_upto; }
  /// Called every `flush-interval` (`final` = false) and when the node drains (`final` = true:
  /// make everything accepted durable). Buffering sinks flush by age here.
  virtual sink_status flush(bool final, std::string& error) {
    (void) final;
    (void) error;
    return sink_status::ok;
  }
  /// Cheap health check for `/readyz` and the console (the state of the last operation).
  virtual bool healthy() const = 0;
  /// Active health check: can the target take writes now? The engine asks it when writes keep
  /// failing: `false` opens the sink's circuit (no attempts count against `max-attempts` while the
  /// target is down; the engine probes again with backoff); `true` means the batch itself is at
  /// fault, so its attempts count. Default: `start` (re-open the target).
  virtual bool check(std::string& error) {
    return start(error) == sink_status::ok;
  }
  /// Closes (after a final `flush`).
  virtual void stop() = 0;
  /// The delivery guarantee this sink gives, in one sentence, for docs and `--help`.
  virtual std::string_view guarantee() const = 0;
};

/// Options every sink has, owned by the engine that runs it.
struct sink_runner_config {
  size_t max_batch_bytes = 1 << 20;
  size_t max_batch_events = 10000;
  size_t max_queued_events = 20000;
  caf::timespan flush_interval = std::chrono::milliseconds{250};
  uint32_t max_attempts = 5;
  caf::timespan backoff_initial = std::chrono::milliseconds{100};
  caf::timespan backoff_max = std::chrono::seconds{10};

  /// Option table: `max-batch-bytes`, `max-batch-events`, `max-queued-events`, `flush-interval`,
  /// `max-attempts`, `backoff-initial`, `backoff-max`.
  static const option_table<sink_runner_config>& options();
  /// Empty when valid; otherwise what is wrong.
  std::string validate() const;
};

} // namespace sluice
