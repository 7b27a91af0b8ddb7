#pragma once

#include "messages/event.hpp"

#include <msgpack.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

/// Which events an entity's state (a device, a profile) already reflects: the highest offset it
/// applied from each source log. The source of an event is the node that accepted it: this node's
/// own ingest log (source `""`, offset `event::offset`) or, for an event another node forwarded
/// here, that node (`event::origin`, offset `event::origin_offset`). An event is applied at most
/// once however often it arrives: replayed from the local log after a restart, or resent by its
/// origin after a lost ack or an ownership move (per source, events arrive in offset order, so
/// "at or below the highest applied" means "applied already").
///
/// Lifecycle: part of the entity's state; stored inside its encoding (`msgpack_pack` /
/// `msgpack_unpack`, so it can also be a member of a `MSGPACK_DEFINE` struct): a bare uint while
/// only the local source is known (byte for byte the scalar `applied_upto` stored before the
/// cluster, which therefore reads back as source `""`), else a map source → offset. In memory the
/// local source's offset is a member of its own (`local_`), so admitting a local event (nearly
/// all of them) reads and writes the entity's object only, not a vector on the heap; other
/// sources are in a sorted vector (empty, without an allocation, on a single node). Concurrency:
/// none (owned by the entity's actor). Limits: one entry per source ever seen, i.e. per node of
/// the cluster; entries of nodes that left are kept, as their resends must still be recognized.
class source_offsets {
public:
  using entry = std::pair<std::string, log_offset>;

  /// The source log of `e`: its origin node, `""` for this node's own log.
  static std::string_view source_of(const event& e) noexcept {
    return e.origin;
  }
  /// The offset of `e` in its source log.
  static log_offset offset_of(const event& e) noexcept {
    return e.origin.empty() ? e.offset : e.origin_offset;
  }

  /// True, and `e` recorded as applied, unless its offset is at or below the highest already
  /// applied from its source. An event at offset 0 (not from a log) is always admitted and
  /// changes nothing.
  bool admit(const event& e) {
    if (!e.origin.empty())
      return admit_remote(e);
    if (e.offset == 0)
      return true;
    if (e.offset <= local_)
      return false;
    local_ = e.offset;
    return true;
  }
  /// Whether `admit(e)` would refuse `e` (without recording anything).
  bool applied(const event& e) const noexcept;
  /// The highest offset applied from `source` (0 if none).
  log_offset upto(std::string_view source) const noexcept;
  /// (source, highest applied offset), sorted by source; sources with offset 0 are not kept.
  std::vector<entry> entries() const;
  /// How many sources `entries` holds.
  size_t size() const noexcept {
    return remote_.size() + (local_ > 0 ? 1 : 0);
  }

  template <class Packer>
  void msgpack_pack(Packer& pk) const {
    if (remote_.empty()) {
      pk.pack_uint64(local_);
      return;
    }
    pk.pack_map(static_cast<uint32_t>(size()));
    if (local_ > 0) { // "" sorts first
      pk.pack_str(0);
      pk.pack_str_body("", 0);
      pk.pack_uint64(local_);
    }
    for (auto& [source, offset] : remote_) {
      pk.pack_str(static_cast<uint32_t>(source.size()));
      pk.pack_str_body(source.data(), static_cast<uint32_t>(source.size()));
      pk.pack_uint64(offset);
    }
  }
  /// Reads either stored form; throws `msgpack::type_error` on anything else.
  void msgpack_unpack(const msgpack::object& o);

  friend bool operator==(const source_offsets& a, const source_offsets& b) {
    return a.local_ == b.local_ && a.remote_ == b.remote_;
  }

private:
  /// `admit` of an event another node accepted (`origin` not empty).
  bool admit_remote(const event& e);

  log_offset local_ = 0;       ///< the highest offset applied from this node's own log
  std::vector<entry> remote_; ///< other sources (never ""), sorted by source, offsets > 0
};

} // namespace sluice
