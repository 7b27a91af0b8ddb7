#pragma once

// Several attribute paths looked up in one pass over an event's msgpack `attrs` (route
// predicates read each path they name from here).

#include "messages/codec.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice {

/// One attribute looked up by `find_attrs`: whether the path exists and its value.
struct attr_slot {
  bool found = false;
  attr_value value;
};

/// Room for `N` slots left uninitialized, for `read_attrs` / `find_attrs` (which set every slot
/// they are given): hot callers skip zeroing them per event. Nothing to destroy: a slot holds
/// views only.
template <size_t N>
struct attr_slot_buffer {
  static_assert(std::is_trivially_destructible_v<attr_slot>);
  alignas(attr_slot) unsigned char bytes[N * sizeof(attr_slot)];
  attr_slot* get() noexcept {
    return reinterpret_cast<attr_slot*>(bytes);
  }
};

/// Looks up every path of `paths` (attribute paths, dotted) in the msgpack map `attrs` in one
/// pass, the way `find_attr` finds one (first in map order, keys may contain dots, no paths into
/// arrays; containers and integers beyond int64 are `other`, with an empty `s`), into
/// `slots[0, paths.size())`. Maps below 32 levels and maps no path reaches into are skipped
/// without looking at their keys. False when `attrs` is not msgpack (`slots` then unusable). A
/// root that is not a map holds no attribute. Allocation-free after the first call on a thread.
/// When no path has a dot only the root's keys are compared (nested maps are skipped whole).
bool find_attrs(std::string_view attrs, const std::vector<std::string>& paths, attr_slot* slots);

/// What `find_attr` answers for each path of `paths`, into `slots[0, paths.size())` (`found`
/// false where it answers nullopt): read in one pass over `attrs` (`find_attrs`) instead of one
/// scan per path, falling back to one `find_attr` per path when `attrs` is not well-formed msgpack
/// (which may still hold some of them before the damage). Containers come back as `other` with an
/// empty `s` when read in one pass. `slots` need not be initialized (every one is set); for hot
/// callers: no `std::optional` to zero and copy per path.
void read_attrs(std::string_view attrs, const std::vector<std::string>& paths, attr_slot* slots);

/// `read_attrs` into optionals: what `find_attr` answers for each path of `paths`, into
/// `out[0, paths.size())`: read in one
/// pass over `attrs` (`find_attrs`) instead of one scan per path, falling back to one `find_attr`
/// per path when `attrs` is not well-formed msgpack (which may still hold some of them before the
/// damage). Containers come back as `other` with an empty `s` when read in one pass.
void find_attrs(std::string_view attrs, const std::vector<std::string>& paths,
                std::optional<attr_value>* out);

} // namespace sluice
