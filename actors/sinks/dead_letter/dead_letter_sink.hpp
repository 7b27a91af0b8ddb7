#pragma once

#include "actors/interfaces.hpp"
#include "actors/route_actions.hpp"
#include "actors/sinks/dead_letter/dead_letter_store.hpp"

#include <caf/stateful_actor.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sluice {

class metrics_registry;
class counter;

/// Events per ingest request when a replay sends dead letters back to the log: well under the
/// gateway's `max-batch-events` default, so a replay looks to the log like ordinary client batches
/// and one huge replay does not hold the log's group commit in one oversized transaction.
inline constexpr size_t dead_letter_replay_chunk_events = 1000;

/// State of the dead-letter sink.
///
/// Lifecycle: opens its `dead_letter_store` under `<data-dir>/dead-letters/` at spawn (an open
/// failure is logged and counted; every later write fails and is counted too). `dead` batches are
/// appended and fdatasynced before the handler returns, so a dead letter is durable once the sink
/// that gave up on it commits its offset. `query` renders a page; `replay` resolves a selection,
/// sends the events back to the ingest log (received with `connect`) in chunks, and answers once
/// every chunk is committed, recording the replayed ids durably; a refused chunk makes its ids
/// selectable again and the reply an error. Concurrency: runs detached (blocking file I/O); the
/// log's commit callbacks come back as `replayed` messages. Limits: see `dead_letter_store`; one
/// reply per replay, held until the log answers.
struct dead_letter_state {
  static inline const char* name = "dead-letters";
  /// One replay awaiting the log.
  struct ticket {
    std::vector<std::vector<uint64_t>> chunks;
    size_t pending = 0;
    size_t replayed = 0;
    size_t skipped = 0;
    std::string error;
    query_reply reply;
  };
  std::unique_ptr<dead_letter_store> store;
  std::string open_error;
  std::string node;
  ingest_log_actor log;
  uint64_t next_ticket = 1;
  std::map<uint64_t, ticket> tickets;
  metrics_registry* metrics = nullptr;
  counter* failures = nullptr;
  counter* replayed = nullptr;
  /// Masks PII in every dead letter before it is stored (null: no detector configured).
  std::unique_ptr<route_transformer> mask;
  route_actions mask_actions;
};

/// Spawns the dead-letter sink over the NDJSON file `path`
/// (`<data-dir>/dead-letters/dead-letters.ndjson`); `node` is written into each rendered event.
/// With a `pii` detector every stored dead letter has its detected PII masked first (secure by
/// default: schema rejections reach the dead letters before any route could mask them).
dead_letter_admin_actor::behavior_type
dead_letter_sink(dead_letter_admin_actor::stateful_pointer<dead_letter_state> self,
                 std::string path, std::string node, metrics_registry* metrics,
                 std::shared_ptr<const pii_detector> pii = nullptr);

} // namespace sluice
