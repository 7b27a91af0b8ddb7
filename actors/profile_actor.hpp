#pragma once

#include "actors/catalog.hpp"
#include "actors/interfaces.hpp"
#include "actors/profile_model.hpp"

#include <caf/stateful_actor.hpp>

#include <memory>
#include <string>

namespace sluice {

/// State of one profile actor (a virtual actor: spawned by its shard on the profile's first event
/// or query, restored from LMDB, passivated when idle). It answers `apply` with its new encoded
/// state, which the shard checkpoints together with the log offset (exactly-once state).
///
/// Queries (`query_atom`, what): `continue-watching`, and `watch-time <from> <to>` with days as
/// `YYYY-MM-DD` or `-` for the default (validated by the gateway). Both read the current title
/// catalog at query time.
struct profile_actor_state {
  static inline const char* name = "profile";
  std::string profile_id;
  profile_model model;
  std::shared_ptr<const catalog_holder> catalog;
};

/// Spawn with the profile id, the stored state (empty for a new profile) and the options (whose
/// `catalog` may be null: no names, event durations only).
entity_actor::behavior_type profile_actor(entity_actor::stateful_pointer<profile_actor_state> self,
                                          std::string profile_id, std::string stored,
                                          profile_options opts);

/// Builds the `what` of a watch-time query; `from`/`to` are `YYYY-MM-DD` or empty for the default.
std::string watch_time_query(const std::string& from, const std::string& to);

} // namespace sluice
