#include "actors/profile_actor.hpp"
#include "actors/log.hpp"

#include <caf/all.hpp>

namespace sluice {

entity_actor::behavior_type profile_actor(entity_actor::stateful_pointer<profile_actor_state> self,
                                          std::string profile_id, std::string stored,
                                          profile_options opts) {
  auto& st = self->state;
  st.profile_id = std::move(profile_id);
  st.model = profile_model{opts};
  if (!stored.empty() && !st.model.decode(stored))
    log_json("error", "stored profile state unreadable, starting empty",
             {{"profile_id", st.profile_id}});
  return {
    [self](done_atom) { self->quit(); },
    [self](apply_atom, log_offset upto, const event_batch& events) {
      self->state.model.apply(events);
      auto shard = caf::actor_cast<shard_actor>(self->current_sender());
      self->send(shard, applied_atom_v, self->state.profile_id, upto, self->state.model.encode());
    },
    [self](query_atom, const std::string& what) -> std::string {
      (void) what; // one view so far: continue watching
      return self->state.model.continue_watching_json(self->state.profile_id);
    },
  };
}

} // namespace sluice
