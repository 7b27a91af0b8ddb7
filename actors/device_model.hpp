#pragma once

#include "actors/source_offsets.hpp"
#include "messages/event.hpp"

#include <msgpack.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// The state of one device: what it sent, in which order, and whether it repeated itself.
///
/// Lifecycle: created empty or decoded from LMDB; `apply` skips events it already applied, by
/// their offset in their source log (`source_offsets`: this node's log, or the origin node's for
/// an event forwarded here), so it is idempotent across replays and resends. Concurrency: owned by
/// its device shard. Limits: remembers the last `recent_id_window` event ids for duplicate
/// detection, as 64-bit hashes (8 bytes each instead of a string of ~36 bytes plus its
/// allocation: ~0.5 KB per device in memory and in LMDB instead of ~5 KB and ~2.4 KB); two
/// different ids in one window collide with probability ~2^-58. States stored with the ids as
/// strings (before the hashes), or with a single local `applied_upto` (before the cluster), are
/// read and converted.
class device_model {
public:
  /// Ids remembered for duplicate detection: a client retrying a batch resends it within a few
  /// batches, so a short window catches retries without growing per device.
  static constexpr size_t recent_id_window = 64;

  /// The hash the duplicate window keeps of an event id (libstdc++'s `std::hash`, stable across
  /// runs of the same library; a different hash after an upgrade only forgets one window).
  static uint64_t id_hash(std::string_view id) noexcept;

  /// Applies `events` in order; true if anything changed.
  bool apply(const event_batch& events);
  /// Applies one event; false when it was applied already (its source offset is not new).
  bool apply_one(const event& e);
  std::string encode() const;
  bool decode(std::string_view bytes);
  /// `{"device_id":…,"events":…,"first_ts":…,"last_ts":…,"out_of_order":…,"duplicates":…,
  /// "last_type":…}`.
  std::string json(std::string_view device_id) const;
  uint64_t events() const noexcept {
    return events_;
  }
  uint64_t duplicates() const noexcept {
    return duplicates_;
  }
  uint64_t out_of_order() const noexcept {
    return out_of_order_;
  }
  /// The highest offset of this node's own log applied.
  log_offset applied_upto() const noexcept {
    return applied_.upto({});
  }
  /// The highest offset applied per source log.
  const source_offsets& applied() const noexcept {
    return applied_;
  }

private:
  source_offsets applied_;
  uint64_t events_ = 0;
  int64_t first_ts_ = 0;
  int64_t last_ts_ = 0;
  uint64_t out_of_order_ = 0;
  uint64_t duplicates_ = 0;
  std::string last_type_;
  std::vector<uint64_t> recent_ids_; ///< `id_hash` of the last ids, a ring of recent_id_window
  size_t recent_next_ = 0;
};

} // namespace sluice
