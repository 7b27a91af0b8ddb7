#pragma once

#include "messages/type_ids.hpp"
#include "persistence/lmdb.hpp"

#include <cstddef>
#include <functional>
#include <string_view>

namespace sluice {

/// The hash a device or profile key is placed by (`shard_of`) and found by in its shard's
/// `entity_table`: libstdc++'s `std::hash`, stable across runs (shard offsets rely on keys staying
/// in their shard after a restart), computed once per event key.
inline size_t key_hash(std::string_view key) noexcept {
  return std::hash<std::string_view>{}(key);
}

/// The shard (of `n`) owning the key whose `key_hash` is `hash`.
inline size_t shard_of(size_t hash, size_t n) noexcept {
  return hash % n;
}

/// The shard (of `n`) owning `key`: the same placement for dispatch and for queries.
inline size_t shard_index(std::string_view key, size_t n) {
  return shard_of(key_hash(key), n);
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
