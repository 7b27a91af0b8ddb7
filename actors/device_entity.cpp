#include "actors/device_entity.hpp"
#include "actors/log.hpp"

namespace sluice {

device_entity::device_entity(std::string_view device_id, std::string_view stored)
  : device_id_(device_id) {
  if (!stored.empty() && !model_.decode(stored))
    log_json("error", "stored device state unreadable, starting empty",
             {{"device_id", device_id_}});
}

bool device_entity::apply(const event& e) {
  return model_.apply_one(e);
}

std::string device_entity::encode() const {
  return model_.encode();
}

std::string device_entity::query(const std::string&) const {
  return model_.json(device_id_);
}

} // namespace sluice
