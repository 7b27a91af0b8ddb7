#pragma once

#include "actors/catalog.hpp"
#include "actors/entity.hpp"
#include "actors/profile_model.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace sluice {

/// One profile hosted by its profile shard: playback position, watch time and continue watching
/// (`profile_model`), checkpointed by the shard together with the log offset (exactly-once
/// state).
///
/// Queries (`what`): `continue-watching`, and `watch-time <from> <to>` with days as `YYYY-MM-DD`
/// or `-` for the default (validated by the gateway). Both read the current title catalog at
/// query time.
class profile_entity : public entity {
public:
  /// `stored` is the state read from LMDB (empty for a new profile; an unreadable state is logged
  /// and the profile starts empty); `opts.catalog` may be null (no names, event durations only).
  profile_entity(std::string_view profile_id, std::string_view stored, profile_options opts);
  bool apply(const event& e) override;
  void end_batch() override;
  std::string encode() const override;
  std::string query(const std::string& what) const override;

private:
  std::string profile_id_;
  std::shared_ptr<const catalog_holder> catalog_;
  profile_model model_;
};

/// Builds the `what` of a watch-time query; `from`/`to` are `YYYY-MM-DD` or empty for the default.
std::string watch_time_query(const std::string& from, const std::string& to);

} // namespace sluice
