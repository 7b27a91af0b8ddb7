#pragma once

#include "actors/source_offsets.hpp"
#include "messages/event.hpp"

#include <msgpack.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class catalog;
class catalog_holder;
class counter;

/// Options of profile state (`[profiles]`; semantics in docs/profiles.md).
struct profile_options {
  /// A title whose position reaches this fraction of its duration counts as completed and leaves
  /// "continue watching".
  double completion_ratio = 0.95;
  /// At most this many titles are remembered per profile; the least recently watched go first.
  size_t max_titles = 500;
  /// An interval between two events of a title longer than this is a gap (a missing stop), not
  /// watching.
  int64_t heartbeat_timeout_ms = 90'000;
  /// An interval whose position advanced differently from its event time by more than this is a
  /// seek, not watching.
  int64_t seek_tolerance_ms = 10'000;
  /// Events older than the profile's newest playback event time minus this do not change watch
  /// time (counted in `late_events`).
  int64_t reorder_horizon_ms = 30 * 60'000;
  /// Days of watch time kept per profile, counted back from the day of its newest event.
  int64_t watch_time_days = 400;
  /// Counts events too late for watch time; may be null. Shared by every profile.
  counter* late_events = nullptr;
  /// Counts play/pause/stop/heartbeat events without a string `title_id` or a numeric
  /// `position_ms` (ignored by profile state); may be null.
  counter* invalid_playback = nullptr;
  /// The title catalog profiles read at query time (names, durations); may be null.
  std::shared_ptr<const catalog_holder> catalog;
};

/// Day number (days since 1970-01-01, UTC) of an epoch-ms time.
int32_t utc_day(int64_t ts_ms) noexcept;
/// `YYYY-MM-DD` of a day number.
std::string format_utc_day(int32_t day);
/// Parses `YYYY-MM-DD` (a real calendar date) into a day number.
std::optional<int32_t> parse_utc_day(std::string_view text);

/// One playback event as watch time remembers it; ordered by (ts, rank, position).
struct playback_point {
  int64_t ts = 0;
  int64_t pos = 0;
  /// play 0, heartbeat 1, pause 2, stop 3.
  uint8_t rank = 0;
  MSGPACK_DEFINE(ts, pos, rank)
};

/// What a profile knows about one title.
struct title_progress {
  /// Resume position: of the newest event by order key.
  int64_t position_ms = 0;
  /// Event time of that newest event.
  int64_t updated_ts = 0;
  /// Its rank (play 0, heartbeat 1, pause 2, stop 3).
  uint8_t last_rank = 0;
  /// Newest positive `duration_ms` an event carried (by event time); 0 while unknown.
  int64_t duration_ms = 0;
  int64_t duration_ts = 0;
  /// The events watch time still needs (inside the reorder horizon, plus the newest one before
  /// it), in order-key order.
  std::vector<playback_point> recent;
  MSGPACK_DEFINE(position_ms, updated_ts, last_rank, duration_ms, duration_ts, recent)

  /// "play", "heartbeat", "pause" or "stop".
  std::string_view last_event() const noexcept;
};

/// The state of one profile: per title the resume position and the recent playback events, and
/// watch time per title per UTC day, from `play`, `pause`, `stop` and `heartbeat` events carrying
/// `title_id` and `position_ms` (rules: docs/profiles.md).
///
/// Lifecycle: created empty or decoded from LMDB; `apply` is idempotent across replays and resends
/// (an event at or below the highest offset applied from its source log is skipped; see
/// `source_offsets`: this node's log, or the origin node's for an event forwarded here). Watch
/// time is independent of arrival order for events within the reorder horizon (insertions adjust
/// the credits of their neighbours); continue watching is independent of arrival order.
/// Concurrency: owned by its profile shard. Limits: `max_titles` titles, `watch_time_days` days,
/// recent events bounded by the reorder horizon.
class profile_model {
public:
  explicit profile_model(profile_options opts = {}) : opts_(opts) {
  }
  /// Applies events of this profile, each source's in offset order, then `end_batch`; returns
  /// true if anything changed.
  bool apply(const event_batch& events);
  /// Applies one event; false when it was applied already (its source offset is not new). Call
  /// `end_batch` after the events of a batch.
  bool apply_one(const event& e);
  /// Enforces the limits after a batch of events: at most `max_titles` titles (the least recently
  /// updated go), days and recent events outside their windows pruned.
  void end_batch();
  std::string encode() const;
  /// False (and state unchanged) when `bytes` is not a valid encoding.
  bool decode(std::string_view bytes);

  /// `{"profile_id":…,"items":[{"title_id":…,["name":…,]"position_ms":…,"duration_ms":…,
  /// "updated_ts":…,"last_event":…}]}`: titles in progress, most recent first. Durations and names
  /// from `cat` when it knows the title.
  std::string continue_watching_json(std::string_view profile_id,
                                     const catalog* cat = nullptr) const;
  /// Watch time per title per day over [from, to] (day numbers; defaults in docs/profiles.md).
  std::string watch_time_json(std::string_view profile_id, std::optional<int32_t> from,
                              std::optional<int32_t> to, const catalog* cat = nullptr) const;

  /// Watch time of `title` on `day` (0 if none).
  int64_t watch_ms(const std::string& title, int32_t day) const;
  /// Watch time of `title` over every kept day.
  int64_t watch_ms(const std::string& title) const;
  /// Events that arrived too late for watch time.
  uint64_t late_events() const noexcept {
    return late_;
  }
  /// Newest playback event time seen (0 if none).
  int64_t newest_ts() const noexcept {
    return newest_ts_;
  }
  /// The highest offset of this node's own log applied.
  log_offset applied_upto() const noexcept {
    return applied_.upto({});
  }
  /// The highest offset applied per source log.
  const source_offsets& applied() const noexcept {
    return applied_;
  }
  const std::map<std::string, title_progress>& titles() const noexcept {
    return titles_;
  }
  /// day → title → watched ms.
  const std::map<int32_t, std::map<std::string, int64_t>>& watch_days() const noexcept {
    return watch_;
  }

private:
  void apply_playback(const std::string& title, const playback_point& p, int64_t duration);
  int64_t credit(const playback_point& a, const playback_point& b) const noexcept;
  void add_watch(int32_t day, const std::string& title, int64_t ms);
  void prune();

  profile_options opts_;
  source_offsets applied_;
  uint64_t events_ = 0;
  uint64_t late_ = 0;
  int64_t newest_ts_ = 0;
  bool has_newest_ = false;
  std::map<std::string, title_progress> titles_;
  std::map<int32_t, std::map<std::string, int64_t>> watch_;
};

} // namespace sluice
