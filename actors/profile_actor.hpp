#pragma once

#include "actors/interfaces.hpp"
#include "actors/profile_model.hpp"

#include <caf/stateful_actor.hpp>

#include <string>

namespace sluice {

/// State of one profile actor (a virtual actor: spawned by its shard on the profile's first event
/// or query, restored from LMDB, passivated when idle). It answers `apply` with its new encoded
/// state, which the shard checkpoints together with the log offset.
struct profile_actor_state {
  static inline const char* name = "profile";
  std::string profile_id;
  profile_model model;
};

/// Spawn with the profile id, the stored state (empty for a new profile) and the options.
entity_actor::behavior_type profile_actor(entity_actor::stateful_pointer<profile_actor_state> self,
                                          std::string profile_id, std::string stored,
                                          profile_options opts);

} // namespace sluice
