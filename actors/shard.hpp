#pragma once

#include "actors/cluster/view.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <map>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::persistence {
class environment;
}

namespace sluice {

class metrics_registry;
class counter;
class gauge;

/// What kind of entity a shard hosts (devices or profiles) and how to make one.
struct entity_kind {
  /// "device" or "profile": names metrics, the consumer (`<name>s.<index>`) and log lines.
  std::string name;
  /// Where the entities' state lives in LMDB.
  state_space space = state_space::devices;
  /// The key of an event for this kind; empty means the event has none (skipped).
  std::function<std::string_view(const event&)> key_of;
  /// Spawns the entity actor for `key` with its stored state (empty when new).
  std::function<entity_actor(caf::actor_system&, const std::string& key, std::string stored)> spawn;
};

/// Everything a shard needs at spawn.
struct shard_deps {
  entity_kind kind;
  size_t index = 0;
  ingest_log_actor log;
  /// Read-only use: restoring passivated entities.
  persistence::environment* env = nullptr;
  metrics_registry* metrics = nullptr;
  /// Entities idle this long (with their state committed) are passivated.
  caf::timespan idle_timeout = std::chrono::minutes{5};
  /// Dirty state and the shard's offset are committed at least this often.
  caf::timespan checkpoint_interval = std::chrono::milliseconds{200};
  /// The shard's durable offset at start: committed events at or below it are skipped.
  log_offset done_upto = 0;
  /// Cluster: only keys this node owns or replicates are applied (null: every key).
  std::shared_ptr<cluster::view_holder> views;
};

/// State of a shard: the owner of the virtual entity actors whose keys hash to it.
///
/// Lifecycle: receives every committed batch's events of its keys in offset order; groups them
/// per key and sends each entity actor one `apply` per batch (never per event), spawning it on its
/// key's first event or restoring it from LMDB if it was passivated. Each entity answers with its
/// new state; once all entities of a batch answered, the batch's offset is complete. Every
/// `checkpoint-interval` the dirty states and the completed offset go to the ingest log's single
/// writer in one transaction (exactly-once state). Entities idle for `idle-timeout` whose latest
/// state is committed are stopped (passivated); after every few thousand passivations (over all
/// shards) the next tick returns the freed heap to the OS (`malloc_trim`), or glibc would keep it.
/// Entities are monitored, not linked (CAF's link bookkeeping made passivation quadratic); a
/// failing entity stops its shard, and entities stop with their shard (it holds their only
/// reference). Concurrency: one actor; entity actors run in parallel. Limits: memory is bounded
/// by active keys (measured: bench/README.md); an entity is never restored from LMDB while a
/// newer state of it is uncommitted (passivation waits for the commit).
struct shard_state {
  static inline const char* name = "shard";
  struct entry {
    entity_actor actor;
    caf::actor_clock::time_point last_active;
    uint64_t version = 0;   ///< bumped for every state the entity answered
    uint64_t committed = 0; ///< newest version known durable
    uint32_t inflight = 0;  ///< applies awaiting an answer
  };

  shard_deps deps;
  std::string consumer;
  std::unordered_map<std::string, entry> entities;
  /// key → (version, encoded state) not yet committed.
  std::unordered_map<std::string, std::pair<uint64_t, std::string>> dirty;
  /// Dispatched batches by their `upto` (every commit ends at a distinct offset) → entities that
  /// have not answered yet. Completed in offset order from the front.
  std::map<log_offset, size_t> pendings;
  log_offset completed_upto = 0;
  bool checkpointing = false;
  std::vector<caf::typed_response_promise<caf::ok_atom>> drains;
  gauge* active = nullptr;
  counter* passivated = nullptr;
  counter* restored = nullptr;
  counter* spawned = nullptr;
  counter* failures = nullptr;
};

shard_actor::behavior_type shard(shard_actor::stateful_pointer<shard_state> self, shard_deps deps);

} // namespace sluice
