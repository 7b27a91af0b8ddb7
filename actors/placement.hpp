#pragma once

#include "messages/type_ids.hpp"
#include "persistence/lmdb.hpp"

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

namespace sluice {

/// The hash a device or profile key is placed by (`shard_of`) and found by in its shard's
/// `entity_table`: libstdc++'s `std::hash`, stable across runs (shard offsets rely on keys staying
/// in their shard after a restart), computed once per event key.
inline size_t key_hash(std::string_view key) noexcept {
  return std::hash<std::string_view>{}(key);
}

/// The shard (of `n`, at least 1) owning the key whose `key_hash` is `hash`: `hash % n`, taken
/// with a mask when `n` is a power of two (the same shard, without a 64-bit division per event
/// per shard).
inline size_t shard_of(size_t hash, size_t n) noexcept {
  return (n & (n - 1)) == 0 ? hash & (n - 1) : hash % n;
}

/// The shard (of `n`) owning `key`: the same placement for dispatch and for queries.
inline size_t shard_index(std::string_view key, size_t n) {
  return shard_of(key_hash(key), n);
}

/// The key an entity kind is placed by: the device shards by `device_id`, the profile shards by
/// `profile_id` (the ingest log's `consumer_spec::slice` names the same two).
enum class placement_key : uint8_t { device, profile };

/// The key that `k` places by, of an event with these ids; empty when the event has none.
inline std::string_view key_of(placement_key k, std::string_view device_id,
                               std::string_view profile_id) noexcept {
  return k == placement_key::device ? device_id : profile_id;
}

/// The key of `e` that `k` places by; empty when the event has none.
inline std::string_view key_of(placement_key k, const event& e) noexcept {
  return key_of(k, e.device_id, e.profile_id);
}

/// `key_hash` of the `k` key of every event of `events`, in order, into `out` (resized). The one
/// loop that computes a batch's placement hashes: the ingest log fills a `committed_batch` with it
/// once for every shard, and a shard given a batch without them computes its own with it. An
/// event without the key gets the hash of the empty key (its consumers check the key itself).
inline void compute_key_hashes(const event_batch& events, placement_key k,
                               std::vector<size_t>& out) {
  out.resize(events.size());
  for (size_t i = 0; i < events.size(); ++i)
    out[i] = key_hash(key_of(k, events[i]));
}

/// The placement hashes of `k` a batch carries (`committed_batch::device_hashes` or
/// `profile_hashes`): parallel to its events, or empty when the sender did not compute them.
inline const std::vector<size_t>& key_hashes(const committed_batch& b, placement_key k) noexcept {
  return k == placement_key::device ? b.device_hashes : b.profile_hashes;
}

/// The placement hashes of `k` for `b`'s events: the ones it carries, or (when it came without
/// them) computed into `scratch` by `compute_key_hashes`. Either way `key_hash` of each event's
/// key, parallel to `b.events`.
inline const std::vector<size_t>& key_hashes(const committed_batch& b, placement_key k,
                                             std::vector<size_t>& scratch) {
  auto& carried = key_hashes(b, k);
  if (carried.size() == b.events.size())
    return carried;
  compute_key_hashes(b.events, k, scratch);
  return scratch;
}

/// Fills `b`'s placement hashes of `k` (`compute_key_hashes`).
inline void add_key_hashes(committed_batch& b, placement_key k) {
  compute_key_hashes(b.events, k,
                     k == placement_key::device ? b.device_hashes : b.profile_hashes);
}

/// The LMDB database holding a state space.
inline persistence::db db_of(state_space space) {
  switch (space) {
    case state_space::devices: return persistence::db::devices;
    case state_space::profiles: return persistence::db::profiles;
    case state_space::aggregates: return persistence::db::aggregates;
    case state_space::routes: return persistence::db::routes;
    default: return persistence::db::meta;
  }
}

} // namespace sluice
