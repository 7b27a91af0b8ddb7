#pragma once

#include "actors/interfaces.hpp"
#include "persistence/log_store.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

class metrics_registry;
class counter;
class gauge;
class histogram;

/// Everything the ingest log needs at spawn.
struct ingest_log_deps {
  persistence::environment* env = nullptr;
  metrics_registry* metrics = nullptr;
  /// Receives every committed event (routes them to sinks).
  consumer_actor router;
  /// Receive the committed events whose `device_id` / `profile_id` hash to them.
  std::vector<consumer_actor> device_shards;
  std::vector<consumer_actor> profile_shards;
  /// Consumers whose recorded offsets bound replay and trimming (`sink.<name>`, `devices.<i>`, ...).
  std::vector<std::string> consumers;
  /// With durability = periodic: fsync this often.
  caf::timespan sync_interval = std::chrono::seconds{1};
  /// Replay dispatches at most this many events per message.
  size_t replay_chunk_events = 8192;
};

/// State of the ingest log: the node's single LMDB writer.
///
/// Lifecycle: spawned after the environment is open and every consumer is running; `replay` sends
/// every stored event above the lowest consumer offset to the consumers (each skips what it already
/// has); from then on, `append` requests and consumer `commit` checkpoints are gathered while a
/// commit runs and committed together in the next one (natural group commit: one transaction, one
/// fsync with durability = sync). After the commit each request's callback is answered in order,
/// then the committed events go to the router and the shards. `drain` commits what is pending and
/// waits until every consumer made its offset durable. Concurrency: runs detached (fsync blocks);
/// the only writer of the environment. Limits: one log record per client batch; the map grows by
/// doubling on MDB_MAP_FULL up to `storage.max-map-bytes`, beyond which requests fail with an
/// error the gateway answers with 503.
struct ingest_log_state {
  static inline const char* name = "ingest-log";
  ingest_log_deps deps;
  std::unique_ptr<persistence::log_store> log;
  std::vector<ingest_request> pending;
  std::vector<std::pair<checkpoint, caf::typed_response_promise<caf::ok_atom>>> pending_checkpoints;
  bool commit_scheduled = false;
  std::string encode_buffer;
  std::map<std::string, log_offset> offsets;
  std::vector<event_batch> device_parts;
  std::vector<event_batch> profile_parts;
  counter* appended_events = nullptr;
  counter* appended_bytes = nullptr;
  counter* commits = nullptr;
  counter* commit_failures = nullptr;
  counter* trimmed = nullptr;
  gauge* stored_bytes = nullptr;
  gauge* stored_records = nullptr;
  gauge* next_offset = nullptr;
  histogram* commit_latency = nullptr;
  histogram* group_size = nullptr;
};

ingest_log_actor::behavior_type ingest_log(ingest_log_actor::stateful_pointer<ingest_log_state> self,
                                           ingest_log_deps deps);

} // namespace sluice
