#include "actors/profile_entity.hpp"
#include "actors/log.hpp"

#include <sstream>

namespace sluice {

std::string watch_time_query(const std::string& from, const std::string& to) {
  return "watch-time " + (from.empty() ? std::string{"-"} : from) + " "
         + (to.empty() ? std::string{"-"} : to);
}

profile_entity::profile_entity(std::string_view profile_id, std::string_view stored,
                               profile_options opts)
  : profile_id_(profile_id), catalog_(opts.catalog), model_(std::move(opts)) {
  if (!stored.empty() && !model_.decode(stored))
    log_json("error", "stored profile state unreadable, starting empty",
             {{"profile_id", profile_id_}});
}

bool profile_entity::apply(const event& e) {
  return model_.apply_one(e);
}

void profile_entity::end_batch() {
  model_.end_batch();
}

std::string profile_entity::encode() const {
  return model_.encode();
}

std::string profile_entity::query(const std::string& what) const {
  auto cat = catalog_ ? catalog_->get() : nullptr;
  if (what.rfind("watch-time", 0) == 0) {
    std::istringstream in{what.substr(10)};
    std::string from;
    std::string to;
    in >> from >> to;
    auto day = [](const std::string& s) -> std::optional<int32_t> {
      return s.empty() || s == "-" ? std::nullopt : parse_utc_day(s);
    };
    return model_.watch_time_json(profile_id_, day(from), day(to), cat.get());
  }
  return model_.continue_watching_json(profile_id_, cat.get());
}

} // namespace sluice
