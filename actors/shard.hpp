#pragma once

#include "actors/cluster/view.hpp"
#include "actors/entity.hpp"
#include "actors/entity_table.hpp"
#include "actors/interfaces.hpp"
#include "actors/placement.hpp"

#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
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
  /// The key this kind is placed and found by (`key_of`: `device_id` or `profile_id`); an event
  /// with an empty key is skipped. The same key the ingest log hashes for this kind's shards.
  placement_key key = placement_key::device;
  /// Makes the entity of `key` from its stored state (empty when new).
  std::function<std::unique_ptr<entity>(std::string_view key, std::string_view stored)> make;
};

/// Everything a shard needs at spawn.
struct shard_deps {
  entity_kind kind;
  /// This shard is `index` of `count` shards of its kind: it keeps the events whose key hashes
  /// to it (`shard_index`) and skips the others of the batches it receives.
  size_t index = 0;
  size_t count = 1;
  ingest_log_actor log;
  /// Read-only use: restoring passivated entities.
  persistence::environment* env = nullptr;
  metrics_registry* metrics = nullptr;
  /// Entities idle this long (with their state committed) are passivated.
  caf::timespan idle_timeout = std::chrono::minutes{5};
  /// Dirty state and the shard's offset are committed at least this often.
  caf::timespan checkpoint_interval = std::chrono::milliseconds{200};
  /// Extra delay of the first checkpoint (then one every interval): the node spreads its shards'
  /// and the aggregator's checkpoints over the interval (`checkpoint_phase`), so that their
  /// commits do not all land in one group commit and hold up the acks waiting in it.
  caf::timespan checkpoint_phase{0};
  /// The shard's durable offset at start: committed events at or below it are skipped.
  log_offset done_upto = 0;
  /// Cluster: only keys this node owns or replicates are applied (null: every key).
  std::shared_ptr<cluster::view_holder> views;
};

/// State of a shard: the owner of the virtual entities (devices or profiles) whose keys hash to it.
///
/// Lifecycle: receives every committed batch in offset order (the message every consumer shares)
/// and applies each event of its keys to its key's entity right away (made on the key's first event, or restored from LMDB if
/// it was passivated); then calls `end_batch` once per entity the batch touched and tells the log
/// the batch is processed. An entity changed since the last checkpoint is dirty: every
/// `checkpoint-interval` the dirty entities are encoded (once each, however many batches changed
/// them) and written with the shard's offset to the ingest log's single writer in one transaction
/// (exactly-once state). Entities idle for `idle-timeout` whose latest state is committed are
/// dropped from memory (passivated); after every few thousand passivations (over all shards) the
/// next tick returns the freed heap to the OS (`release_free_heap`: glibc would keep it). An entity
/// that throws stops its shard (nothing past the failing batch is checkpointed).
///
/// Each event's key is hashed once per batch, by the ingest log for every shard of its kind (the
/// batch's `device_hashes` / `profile_hashes`; a batch without them is hashed here by the same
/// helper, `compute_key_hashes`): the same hash picks the shard and finds the entity in
/// `entities`. A batch is applied in three passes (`apply_batch`): pick this shard's events by
/// their hashes alone (an event of another shard is never touched; the table entries of its own,
/// their keys' bytes and the rest of each event are prefetched, then the slots those entries point
/// to), find or make their entities (prefetching them and the id and attrs bytes they read), apply;
/// so the cache misses of the lookups overlap instead of stalling each event in turn.
///
/// Concurrency: one actor; the entities live inside it (no message, no mailbox, no actor per key:
/// the shards of a node run in parallel with each other). Limits: memory is bounded by active keys
/// (measured: bench/README.md); an entity is never restored from LMDB while a newer state of it
/// is uncommitted (passivation waits for the commit).
struct shard_state {
  static inline const char* name = "shard";
  /// One entity in memory. Its key's bytes are kept inside the slot up to `inline_key` bytes
  /// (a lookup compares them in the slot's first cache line, with the entity pointer, instead of
  /// loading a string's heap bytes: device ids of 16 to 40 bytes do not fit a `std::string`'s 15),
  /// on the heap beyond. Two cache lines (120 bytes): the first holds what a lookup and an apply
  /// read, the second what the apply and the checkpoint update.
  struct slot {
    static constexpr size_t inline_key = 40;
    uint32_t key_size = 0; ///< of the inline key; above `inline_key`: the key is `key_heap`
    bool dirty = false; ///< listed in `dirty`
    char key_inline[inline_key];
    std::unique_ptr<entity> ent;
    uint64_t batch = 0;     ///< the last batch (`batches`) that touched it
    uint64_t version = 0;   ///< bumped by a change that makes it dirty
    uint64_t committed = 0; ///< newest version known durable
    caf::actor_clock::time_point last_active;
    std::string key_heap; ///< the key when longer than `inline_key`

    std::string_view key() const noexcept {
      return key_size <= inline_key ? std::string_view{key_inline, key_size}
                                    : std::string_view{key_heap};
    }
    void set_key(std::string_view k) {
      if (k.size() <= inline_key) {
        key_size = static_cast<uint32_t>(k.size());
        std::copy(k.begin(), k.end(), key_inline);
      } else {
        key_size = inline_key + 1;
        key_heap.assign(k.data(), k.size());
      }
    }
  };
  /// The key of a slot, for `entities`.
  struct slot_key {
    std::string_view operator()(const slot& s) const noexcept {
      return s.key();
    }
  };
  /// One event of the batch being applied that belongs to this shard (scratch).
  struct pending_event {
    const event* ev;
    std::string_view key;
    size_t hash;
    slot* target;
  };

  shard_deps deps;
  std::string consumer;
  /// Entities by key, found by the key's `key_hash`.
  entity_table<slot, slot_key> entities;
  /// Entities changed since they were last sent to a checkpoint.
  std::vector<slot*> dirty;
  /// Entities touched by the batch being applied (scratch).
  std::vector<slot*> touched;
  /// This shard's events of the batch being applied (scratch).
  std::vector<pending_event> pending;
  /// The placement hashes of a batch that came without them (scratch).
  std::vector<size_t> hashes;
  /// Batches applied (tags `slot::batch`).
  uint64_t batches = 0;
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

/// The shard's `dispatch` handler without the messages around it: applies this shard's events of
/// `batch` to their entities (made or restored as needed, `now` being their last activity) and
/// calls `end_batch` on each entity it touched. `view`: the cluster's, or null (every key). Needs
/// `st.deps`, `st.active`, `st.spawned` and `st.restored` set (the benchmark calls it directly).
void apply_batch(shard_state& st, const committed_batch& batch, caf::actor_clock::time_point now,
                 const cluster::view* view);

} // namespace sluice
