#pragma once

#include "messages/event.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// A compiled route predicate (`when` clause).
///
/// Language: comparisons `path == literal` (`!=`, `<`, `<=`, `>`, `>=`), `path in [lit, ...]`,
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
  /// True when `e` satisfies the predicate. An empty predicate matches everything.
  bool eval(const event& e) const;
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

  enum class op : uint8_t { eq, ne, lt, le, gt, ge, in, exists, and_, or_, not_, always };

  struct node {
    op kind = op::always;
    field source = field::attr;
    std::string path;         ///< attribute path (for field::attr)
    std::vector<literal> values; ///< one literal for comparisons, several for `in`
    int32_t lhs = -1;         ///< child index (and/or/not)
    int32_t rhs = -1;         ///< child index (and/or)
  };

private:
  bool eval_node(int32_t index, const event& e) const;
  std::vector<node> nodes_;
  int32_t root_ = -1;
  friend class predicate_parser;
};

} // namespace sluice
