#pragma once

#include "messages/attr_paths.hpp"
#include "messages/codec.hpp"
#include "messages/event.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace sluice {

/// Most attribute paths a route table resolves in one pass per event; a table reading more
/// looks each up separately.
inline constexpr size_t max_attr_slots = 32;

/// Looks up every path of `paths` (attribute paths, dotted) in the msgpack map `attrs` in one
/// pass (`find_attrs`: the way `find_attr` finds one; first in map order, keys may contain dots,
/// no paths into arrays; containers and integers beyond int64 are `other`), into `slots`. False
/// when `attrs` is not msgpack or `paths` has more than `max_attr_slots` entries (`slots` then
/// unusable). Allocation-free after the first call on a thread.
bool resolve_attr_slots(std::string_view attrs, const std::vector<std::string>& paths,
                        attr_slot* slots);

/// A compiled route predicate (`when` clause).
///
/// Language: comparisons `path == literal` (`!=`, `<`, `<=`, `>`, `>=`), `path in [lit, ...]`,
/// `path matches "regex"` (RE2 syntax, unanchored search, linear time; true only for strings),
/// `exists path` or `path exists`, combined with `and`, `or`, `not` and parentheses; literals are
/// strings (double or single quotes), integers, reals, `true`, `false`, `null`. Paths name envelope
/// fields (`id`, `type`, `device_id`, `profile_id`, `ts`, `ingest_ts`, `offset`) or attributes,
/// with or without the `attrs.` prefix, nested with dots (`attrs.player.codec`).
///
/// Lifecycle: built once by `compile`, then immutable; `eval` is const, allocation-free and safe
/// to call from many threads.
class predicate {
public:
  /// Compiles `text`; on failure returns false and sets `error` to
  /// `line L, column C: <what was wrong and what was expected>`.
  bool compile(std::string_view text, std::string& error);
  /// As above; also sets `error_offset` to the byte offset in `text` the error points at.
  bool compile(std::string_view text, std::string& error, size_t& error_offset);
  /// True when `e` satisfies the predicate. An empty predicate matches everything.
  bool eval(const event& e) const;
  /// As above, with the attributes the predicate reads already looked up (`slots`, indexed by
  /// the slot numbers `assign_slots` gave; see `resolve_attr_slots`).
  bool eval(const event& e, const attr_slot* slots) const;
  /// Gives every attribute this predicate reads a slot: its index in `paths` (appended when new).
  void assign_slots(std::vector<std::string>& paths);
  bool empty() const noexcept {
    return nodes_.empty();
  }

  /// A literal value in a compiled predicate.
  struct literal {
    enum class kind { null, boolean, integer, real, string } type = kind::null;
    bool b = false;
    int64_t i = 0;
    double d = 0;
    std::string s;
  };

  /// Envelope field or attribute a comparison reads.
  enum class field : uint8_t { id, type, device_id, profile_id, ts, ingest_ts, offset, attr };

  enum class op : uint8_t { eq, ne, lt, le, gt, ge, in, matches, exists, and_, or_, not_, always };

  struct node {
    op kind = op::always;
    field source = field::attr;
    std::string path;         ///< attribute path (for field::attr)
    std::vector<literal> values; ///< one literal for comparisons, several for `in`
    std::shared_ptr<const re2::RE2> regex; ///< for `matches` (compiled once, shared by copies)
    /// For `matches` with a regex of the form `^literal` or `^literal$` (ASCII, no
    /// metacharacters): the literal, compared without RE2 (a prefix test, or equality with `$`).
    std::string literal_prefix;
    bool literal_regex = false;
    bool literal_exact = false;
    int32_t lhs = -1;         ///< child index (and/or/not)
    int32_t rhs = -1;         ///< child index (and/or)
    int32_t slot = -1;        ///< attribute slot (see `assign_slots`); -1: none
  };

private:
  bool eval_node(int32_t index, const event& e, const attr_slot* slots) const;
  std::vector<node> nodes_;
  int32_t root_ = -1;
  friend class predicate_parser;
};

} // namespace sluice
