#include "actors/profile_actor.hpp"
#include "actors/log.hpp"

#include <caf/all.hpp>

#include <sstream>

namespace sluice {

std::string watch_time_query(const std::string& from, const std::string& to) {
  return "watch-time " + (from.empty() ? std::string{"-"} : from) + " "
         + (to.empty() ? std::string{"-"} : to);
}

namespace {

std::string answer(profile_actor_state& st, const std::string& what) {
  auto cat = st.catalog ? st.catalog->get() : nullptr;
  if (what.rfind("watch-time", 0) == 0) {
    std::istringstream in{what.substr(10)};
    std::string from;
    std::string to;
    in >> from >> to;
    auto day = [](const std::string& s) -> std::optional<int32_t> {
      return s.empty() || s == "-" ? std::nullopt : parse_utc_day(s);
    };
    return st.model.watch_time_json(st.profile_id, day(from), day(to), cat.get());
  }
  return st.model.continue_watching_json(st.profile_id, cat.get());
}

} // namespace

entity_actor::behavior_type profile_actor(entity_actor::stateful_pointer<profile_actor_state> self,
                                          std::string profile_id, std::string stored,
                                          profile_options opts) {
  auto& st = self->state;
  st.profile_id = std::move(profile_id);
  st.catalog = opts.catalog;
  st.model = profile_model{std::move(opts)};
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
      return answer(self->state, what);
    },
  };
}

} // namespace sluice
