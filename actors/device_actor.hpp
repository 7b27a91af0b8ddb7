#pragma once

#include "actors/device_model.hpp"
#include "actors/interfaces.hpp"

#include <caf/stateful_actor.hpp>

#include <string>

namespace sluice {

/// State of one device actor (a virtual actor: spawned by its shard on the device's first event,
/// restored from LMDB, passivated when idle). It tracks order and duplicates per device and
/// answers `apply` with its new encoded state for the shard to checkpoint.
struct device_actor_state {
  static inline const char* name = "device";
  std::string device_id;
  device_model model;
};

entity_actor::behavior_type device_actor(entity_actor::stateful_pointer<device_actor_state> self,
                                         std::string device_id, std::string stored);

} // namespace sluice
