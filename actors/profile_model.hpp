#pragma once

#include "messages/event.hpp"

#include <msgpack.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace sluice {

/// Options of profile state.
struct profile_options {
  /// A title whose position reaches this fraction of its duration counts as completed and leaves
  /// "continue watching".
  double completion_ratio = 0.95;
  /// At most this many titles are remembered per profile; the least recently watched go first.
  size_t max_titles = 500;
};

/// Last known playback of one title by one profile.
struct title_progress {
  std::string title_id;
  int64_t position_ms = 0;
  /// Duration from the event's `duration_ms` attribute; 0 while unknown.
  int64_t duration_ms = 0;
  /// Event time of the newest event applied for this title.
  int64_t updated_ts = 0;
  std::string last_event;
  bool completed = false;
  MSGPACK_DEFINE(title_id, position_ms, duration_ms, updated_ts, last_event, completed)
};

/// The state of one profile: playback position per title, from `play`, `pause`, `stop` and
/// `heartbeat` events that carry `title_id` and `position_ms`.
///
/// Lifecycle: created empty or decoded from LMDB; `apply` is idempotent across replays (events at or
/// below `applied_upto` are skipped) and order-insensitive per title (the newest event time wins).
/// Concurrency: owned by one profile actor. Limits: `max_titles` per profile.
class profile_model {
public:
  explicit profile_model(profile_options opts = {}) : opts_(opts) {
  }
  /// Applies events of this profile in offset order; returns true if anything changed.
  bool apply(const event_batch& events);
  std::string encode() const;
  /// False (and state unchanged) when `bytes` is not a valid encoding.
  bool decode(std::string_view bytes);
  /// `{"profile_id":…,"items":[{"title_id":…,"position_ms":…,"duration_ms":…,"updated_ts":…,
  /// "last_event":…}]}`: titles in progress, most recent first.
  std::string continue_watching_json(std::string_view profile_id) const;
  log_offset applied_upto() const noexcept {
    return applied_upto_;
  }
  const std::map<std::string, title_progress>& titles() const noexcept {
    return titles_;
  }

private:
  profile_options opts_;
  log_offset applied_upto_ = 0;
  uint64_t events_ = 0;
  std::map<std::string, title_progress> titles_;
};

} // namespace sluice
