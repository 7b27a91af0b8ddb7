#pragma once

#include "messages/type_ids.hpp"
#include "persistence/lmdb.hpp"

#include <cstddef>
#include <functional>
#include <string_view>

namespace sluice {

/// The shard (of `n`) owning `key`: the same placement for dispatch and for queries.
inline size_t shard_index(std::string_view key, size_t n) {
  return std::hash<std::string_view>{}(key) % n;
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
