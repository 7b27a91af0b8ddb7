#pragma once

#include "actors/device_model.hpp"
#include "actors/entity.hpp"

#include <string>
#include <string_view>

namespace sluice {

/// One device hosted by its device shard: order and duplicate tracking (`device_model`). Answers
/// every query with the device document (`device_model::json`).
class device_entity : public entity {
public:
  /// `stored` is the state read from LMDB (empty for a new device); an unreadable state is logged
  /// and the device starts empty.
  device_entity(std::string_view device_id, std::string_view stored);
  bool apply(const event& e) override;
  std::string encode() const override;
  std::string query(const std::string& what) const override;

private:
  std::string device_id_;
  device_model model_;
};

} // namespace sluice
