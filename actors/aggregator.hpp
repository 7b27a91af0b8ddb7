#pragma once

#include "actors/aggregate_model.hpp"
#include "actors/interfaces.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sluice::persistence {
class environment;
}

namespace sluice {

class catalog_holder;
class metrics_registry;
class counter;
class gauge;

/// The aggregator's consumer name: its offset key in LMDB and its label in `/metrics`.
inline constexpr const char* aggregator_consumer = "aggregates";

/// Everything the aggregator needs at spawn.
struct aggregator_deps {
  ingest_log_actor log;
  /// Read at spawn: the stored state and offset (one read transaction, so they match).
  persistence::environment* env = nullptr;
  metrics_registry* metrics = nullptr;
  /// Titles (genres, durations, names); the current catalog is read per batch and per query.
  std::shared_ptr<catalog_holder> catalog;
  aggregate_options options;
  /// Changed state and the offset are committed at least this often.
  caf::timespan checkpoint_interval = std::chrono::milliseconds{200};
  /// Extra delay of the first checkpoint, as `shard_deps::checkpoint_phase`.
  caf::timespan checkpoint_phase{0};
};

/// State of the aggregator: the one consumer of every committed event that keeps the live
/// aggregates (trending titles, popular genres, "others also watched"; see `aggregate_model` and
/// docs/aggregates.md) and answers queries about them.
///
/// Lifecycle: at spawn it restores the model from the `aggregates` database and its offset
/// (consumer `aggregates`) in one read transaction; committed events at or below that offset are
/// skipped when the log replays them. Each batch is applied in offset order and reported
/// `processed` at once (flow control). Every `checkpoint-interval` the changed entries and the
/// offset they reflect go to the ingest log's single writer in one transaction (exactly-once
/// state: a crash loses the uncommitted changes and the offset together, and the replay redoes
/// both); a failed checkpoint marks its keys changed again. `drain` answers once the state and
/// offset are durable. Concurrency: one actor; queries are answered from memory between batches.
/// Limits: see `aggregate_model`; one checkpoint in flight at a time.
struct aggregator_state {
  static inline const char* name = "aggregator";
  aggregator_deps deps;
  aggregate_model model;
  /// Highest offset applied in memory / known durable.
  log_offset applied_upto = 0;
  log_offset committed_upto = 0;
  bool checkpointing = false;
  /// Why the co-watch state is unusable (restore failed), empty when it is fine.
  std::string cowatch_problem;
  std::vector<caf::typed_response_promise<caf::ok_atom>> drains;
  counter* applied = nullptr;
  counter* late = nullptr;
  counter* unknown_title = nullptr;
  counter* checkpoints = nullptr;
  counter* failures = nullptr;
  counter* restore_errors = nullptr;
  gauge* watermark = nullptr;
  gauge* trending_entries = nullptr;
  gauge* pairs = nullptr;
};

aggregator_actor::behavior_type
aggregator(aggregator_actor::stateful_pointer<aggregator_state> self, aggregator_deps deps);

/// Renders an answer of the aggregator (also used by tests): `q` against `model`, names from
/// `cat`; `cowatch_problem` non-empty makes also-watched fall back to trending with that reason.
std::string render_aggregate(const aggregate_model& model, const catalog& cat,
                             const aggregate_query& q, const std::string& cowatch_problem);

} // namespace sluice
