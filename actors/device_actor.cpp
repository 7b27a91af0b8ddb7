#include "actors/device_actor.hpp"
#include "actors/log.hpp"

#include <caf/all.hpp>

namespace sluice {

entity_actor::behavior_type device_actor(entity_actor::stateful_pointer<device_actor_state> self,
                                         std::string device_id, std::string stored) {
  auto& st = self->state;
  st.device_id = std::move(device_id);
  if (!stored.empty() && !st.model.decode(stored))
    log_json("error", "stored device state unreadable, starting empty",
             {{"device_id", st.device_id}});
  return {
    [self](done_atom) { self->quit(); },
    [self](apply_atom, log_offset upto, const event_batch& events) {
      self->state.model.apply(events);
      auto shard = caf::actor_cast<shard_actor>(self->current_sender());
      self->send(shard, applied_atom_v, self->state.device_id, upto, self->state.model.encode());
    },
    [self](query_atom, const std::string&) -> std::string {
      return self->state.model.json(self->state.device_id);
    },
  };
}

} // namespace sluice
