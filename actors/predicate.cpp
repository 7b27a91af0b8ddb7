#include "actors/predicate.hpp"

#include "messages/codec.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fmt/format.h>
#include <re2/re2.h>

namespace sluice {

/// Deepest predicate accepted: parentheses and `not` (parser recursion) and and/or chains (the
/// tree `eval_node` recurses through). Deeper texts would overflow a thread's stack (fuzz_routes).
constexpr size_t max_predicate_depth = 256;

// Recursive-descent parser over the predicate text, tracking line and column for errors.
class predicate_parser {
public:
  predicate_parser(std::string_view text, predicate& out) : text_(text), out_(out) {
  }

  bool run(std::string& error) {
    skip_ws();
    if (at_end()) {
      out_.root_ = -1;
      return true;
    }
    auto root = parse_or();
    if (root < 0) {
      error = error_;
      return false;
    }
    skip_ws();
    if (!at_end()) {
      fail(fmt::format("unexpected '{}' after a complete expression; join conditions with 'and' "
                       "or 'or'",
                       peek_token()));
      error = error_;
      return false;
    }
    out_.root_ = root;
    return true;
  }

private:
  using node = predicate::node;
  using op = predicate::op;
  using literal = predicate::literal;

  bool at_end() const {
    return pos_ >= text_.size();
  }

  void skip_ws() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }

  std::string peek_token() const {
    size_t end = pos_;
    while (end < text_.size() && !std::isspace(static_cast<unsigned char>(text_[end]))
           && end - pos_ < 20)
      ++end;
    return std::string{text_.substr(pos_, end - pos_)};
  }

  int32_t fail(std::string what) {
    if (error_.empty()) {
      error_offset_ = std::min(pos_, text_.size());
      size_t line = 1, col = 1;
      for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
        if (text_[i] == '\n') {
          ++line;
          col = 1;
        } else {
          ++col;
        }
      }
      error_ = fmt::format("line {}, column {}: {}", line, col, what);
    }
    return -1;
  }

  int32_t push(node n) {
    size_t depth = 1;
    for (auto child : {n.lhs, n.rhs})
      if (child >= 0)
        depth = std::max(depth, depths_[static_cast<size_t>(child)] + 1);
    if (depth > max_predicate_depth)
      return too_deep();
    out_.nodes_.push_back(std::move(n));
    depths_.push_back(depth);
    return static_cast<int32_t>(out_.nodes_.size() - 1);
  }

  int32_t too_deep() {
    return fail(fmt::format("the condition nests deeper than {} levels (parentheses, 'not', "
                            "'and'/'or' chains); use 'in [...]' or split it into routes",
                            max_predicate_depth));
  }

  static bool ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
  }
  static bool ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  }

  // Reads a keyword if the next word equals `kw` exactly.
  bool keyword(std::string_view kw) {
    skip_ws();
    if (text_.substr(pos_, kw.size()) != kw)
      return false;
    size_t end = pos_ + kw.size();
    if (end < text_.size() && ident_char(text_[end]))
      return false;
    pos_ = end;
    return true;
  }

  bool symbol(std::string_view sym) {
    skip_ws();
    if (text_.substr(pos_, sym.size()) != sym)
      return false;
    pos_ += sym.size();
    return true;
  }

  int32_t parse_or() {
    return parse_binary("or", op::or_, &predicate_parser::parse_and);
  }

  int32_t parse_and() {
    return parse_binary("and", op::and_, &predicate_parser::parse_unary);
  }

  // Left-associative `operand (kw operand)*`.
  int32_t parse_binary(std::string_view kw, op kind, int32_t (predicate_parser::*operand)()) {
    auto lhs = (this->*operand)();
    while (lhs >= 0 && keyword(kw)) {
      auto rhs = (this->*operand)();
      if (rhs < 0)
        return -1;
      node n;
      n.kind = kind;
      n.lhs = lhs;
      n.rhs = rhs;
      lhs = push(std::move(n));
    }
    return lhs;
  }

  int32_t parse_unary() {
    if (keyword("not")) {
      if (++nesting_ > max_predicate_depth)
        return too_deep();
      auto inner = parse_unary();
      --nesting_;
      if (inner < 0)
        return -1;
      node n;
      n.kind = op::not_;
      n.lhs = inner;
      return push(std::move(n));
    }
    return parse_primary();
  }

  int32_t parse_primary() {
    skip_ws();
    if (at_end())
      return fail("expected a condition such as type == \"play\", but the text ended");
    if (symbol("(")) {
      if (++nesting_ > max_predicate_depth)
        return too_deep();
      auto inner = parse_or();
      --nesting_;
      if (inner < 0)
        return -1;
      if (!symbol(")"))
        return fail("expected ')' to close the parenthesis");
      return inner;
    }
    if (keyword("exists")) {
      node n;
      n.kind = op::exists;
      if (!parse_path(n))
        return -1;
      return push(std::move(n));
    }
    if (keyword("true")) {
      node n;
      n.kind = op::always;
      return push(std::move(n));
    }
    if (keyword("false")) {
      node n;
      n.kind = op::not_;
      node t;
      t.kind = op::always;
      n.lhs = push(std::move(t));
      return push(std::move(n));
    }
    node n;
    if (!parse_path(n))
      return -1;
    skip_ws();
    if (keyword("exists")) {
      n.kind = op::exists;
      return push(std::move(n));
    }
    if (keyword("in")) {
      n.kind = op::in;
      if (!symbol("["))
        return fail("expected '[' to start the list after 'in'");
      for (;;) {
        literal lit;
        if (!parse_literal(lit))
          return -1;
        n.values.push_back(std::move(lit));
        if (symbol(","))
          continue;
        if (symbol("]"))
          break;
        return fail("expected ',' or ']' in the list after 'in'");
      }
      return push(std::move(n));
    }
    if (keyword("matches")) {
      n.kind = op::matches;
      skip_ws();
      size_t start = pos_;
      literal lit;
      if (!parse_literal(lit))
        return -1;
      if (lit.type != literal::kind::string) {
        pos_ = start;
        return fail("expected a quoted regular expression after 'matches', e.g. matches "
                    "\"^E[0-9]+$\"");
      }
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_shared<const RE2>(lit.s, options);
      if (!re->ok()) {
        pos_ = start;
        return fail(fmt::format("invalid regular expression \"{}\": {} (RE2 syntax)", lit.s,
                                re->error()));
      }
      n.regex = std::move(re);
      literal_form(lit.s, n);
      n.values.push_back(std::move(lit));
      return push(std::move(n));
    }
    static constexpr std::pair<std::string_view, op> ops[] = {
      {"==", op::eq}, {"!=", op::ne}, {"<=", op::le}, {">=", op::ge}, {"<", op::lt}, {">", op::gt},
    };
    bool matched = false;
    for (auto& [text, kind] : ops) {
      if (symbol(text)) {
        n.kind = kind;
        matched = true;
        break;
      }
    }
    if (!matched) {
      if (symbol("=")) {
        --pos_; // point at the '='
        return fail("'=' is not a comparison; use '==' to compare");
      }
      return fail(fmt::format("expected a comparison after '{}' (==, !=, <, <=, >, >=, in [...], "
                              "matches \"regex\", exists)",
                              n.source == predicate::field::attr ? n.path : field_name(n.source)));
    }
    literal lit;
    if (!parse_literal(lit))
      return -1;
    n.values.push_back(std::move(lit));
    return push(std::move(n));
  }

  // Recognizes `^literal` and `^literal$` (printable ASCII; metacharacters only escaped), which
  // `eval` tests as a prefix or equality; any other form stays with RE2, which has validated it.
  static void literal_form(std::string_view re, node& n) {
    if (re.empty() || re[0] != '^')
      return;
    static constexpr std::string_view meta = "\\.+*?()|[]{}^$";
    std::string lit;
    for (size_t i = 1; i < re.size(); ++i) {
      char c = re[i];
      if (c < ' ' || c > '~')
        return;
      if (c == '$' && i + 1 == re.size()) {
        n.literal_exact = true;
        break;
      }
      if (c == '\\') {
        // An escaped punctuation character is itself; escapes with letters or digits are classes
        // or special (\d, \b, \Q, \1).
        if (i + 1 == re.size() || std::isalnum(static_cast<unsigned char>(re[i + 1]))
            || re[i + 1] < ' ' || re[i + 1] > '~')
          return;
        lit += re[++i];
        continue;
      }
      if (meta.find(c) != std::string_view::npos)
        return;
      lit += c;
    }
    n.literal_prefix = std::move(lit);
    n.literal_regex = true;
  }

  static std::string field_name(predicate::field f) {
    switch (f) {
      case predicate::field::id: return "id";
      case predicate::field::type: return "type";
      case predicate::field::device_id: return "device_id";
      case predicate::field::profile_id: return "profile_id";
      case predicate::field::ts: return "ts";
      case predicate::field::ingest_ts: return "ingest_ts";
      case predicate::field::offset: return "offset";
      default: return "attrs";
    }
  }

  bool parse_path(node& n) {
    skip_ws();
    if (at_end() || !ident_start(text_[pos_])) {
      fail(at_end() ? "expected a field name, but the text ended"
                    : fmt::format("expected a field name such as type or attrs.title_id, found "
                                  "'{}'",
                                  peek_token()));
      return false;
    }
    size_t start = pos_;
    while (!at_end() && (ident_char(text_[pos_]) || text_[pos_] == '.'))
      ++pos_;
    std::string path{text_.substr(start, pos_ - start)};
    if (path.back() == '.' || path.find("..") != std::string::npos) {
      fail(fmt::format("'{}' is not a valid field path", path));
      return false;
    }
    static constexpr std::pair<std::string_view, predicate::field> envelope[] = {
      {"id", predicate::field::id},
      {"type", predicate::field::type},
      {"device_id", predicate::field::device_id},
      {"profile_id", predicate::field::profile_id},
      {"ts", predicate::field::ts},
      {"ingest_ts", predicate::field::ingest_ts},
      {"offset", predicate::field::offset},
    };
    for (auto& [name, f] : envelope) {
      if (path == name) {
        n.source = f;
        return true;
      }
    }
    n.source = predicate::field::attr;
    if (path.rfind("attrs.", 0) == 0)
      path.erase(0, 6);
    n.path = std::move(path);
    return true;
  }

  bool parse_literal(literal& lit) {
    skip_ws();
    if (at_end()) {
      fail("expected a value (a quoted string, a number, true, false or null), but the text "
           "ended");
      return false;
    }
    char c = text_[pos_];
    if (c == '"' || c == '\'') {
      size_t start = pos_++;
      std::string value;
      while (!at_end() && text_[pos_] != c) {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size())
          ++pos_;
        value += text_[pos_++];
      }
      if (at_end()) {
        pos_ = start;
        fail("this string is never closed; add the closing quote");
        return false;
      }
      ++pos_;
      lit.type = literal::kind::string;
      lit.s = std::move(value);
      return true;
    }
    if (keyword("true") || keyword("false")) {
      lit.type = literal::kind::boolean;
      lit.b = text_[pos_ - 1] == 'e' && text_[pos_ - 2] == 'u';
      return true;
    }
    if (keyword("null")) {
      lit.type = literal::kind::null;
      return true;
    }
    if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c))) {
      size_t start = pos_;
      ++pos_;
      bool real = false;
      while (!at_end()
             && (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.'
                 || text_[pos_] == 'e' || text_[pos_] == 'E'
                 || ((text_[pos_] == '-' || text_[pos_] == '+')
                     && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E')))) {
        real = real || !std::isdigit(static_cast<unsigned char>(text_[pos_]));
        ++pos_;
      }
      std::string num{text_.substr(start, pos_ - start)};
      char* end = nullptr;
      if (real) {
        lit.type = literal::kind::real;
        lit.d = std::strtod(num.c_str(), &end);
      } else {
        lit.type = literal::kind::integer;
        errno = 0;
        lit.i = std::strtoll(num.c_str(), &end, 10);
        if (errno == ERANGE)
          end = nullptr;
      }
      if (end == nullptr || *end != '\0') {
        pos_ = start;
        fail(fmt::format("'{}' is not a valid number", num));
        return false;
      }
      return true;
    }
    fail(fmt::format("expected a value (a quoted string, a number, true, false or null), found "
                     "'{}'; quote strings",
                     peek_token()));
    return false;
  }

  std::string_view text_;
  predicate& out_;
  size_t pos_ = 0;
  std::string error_;
  size_t nesting_ = 0;         ///< open parentheses and `not`s around the current position
  std::vector<size_t> depths_; ///< tree depth of each node of `out_`

public:
  size_t error_offset_ = 0;
};

bool predicate::compile(std::string_view text, std::string& error) {
  size_t offset = 0;
  return compile(text, error, offset);
}

bool predicate::compile(std::string_view text, std::string& error, size_t& error_offset) {
  nodes_.clear();
  root_ = -1;
  predicate_parser parser{text, *this};
  if (!parser.run(error)) {
    error_offset = parser.error_offset_;
    nodes_.clear();
    root_ = -1;
    return false;
  }
  return true;
}

bool predicate::eval(const event& e) const {
  return root_ < 0 || eval_node(root_, e, nullptr);
}

bool predicate::eval(const event& e, const attr_slot* slots) const {
  return root_ < 0 || eval_node(root_, e, slots);
}

void predicate::assign_slots(std::vector<std::string>& paths) {
  for (auto& n : nodes_) {
    if (n.source != field::attr || n.path.empty())
      continue;
    auto i = std::find(paths.begin(), paths.end(), n.path);
    n.slot = static_cast<int32_t>(i - paths.begin());
    if (i == paths.end())
      paths.push_back(n.path);
  }
}

namespace {

// String equality that rejects on the length and the first and last bytes first (literals of one
// predicate often share a length) and compares short strings without a call to memcmp.
inline bool same(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  if (a.empty())
    return true;
  if (a.front() != b.front() || a.back() != b.back())
    return false;
  constexpr size_t short_string = 16;
  if (a.size() > short_string)
    return std::memcmp(a.data(), b.data(), a.size()) == 0;
  for (size_t i = 1; i + 1 < a.size(); ++i)
    if (a[i] != b[i])
      return false;
  return true;
}

} // namespace

bool resolve_attr_slots(std::string_view attrs, const std::vector<std::string>& paths,
                        attr_slot* slots) {
  if (paths.size() > max_attr_slots)
    return false;
  return find_attrs(attrs, paths, slots);
}

namespace {

using view = attr_value;

// The value of the field `n` reads: the slot's value, or `tmp` filled from the envelope (or by
// `find_attr` without slots); null when the field is absent. Copies no string.
const view* read_field(const predicate::node& n, const event& e, const attr_slot* slots,
                       view& tmp) {
  auto str = [&](const std::string& s) {
    tmp.type = attr_value::kind::string;
    tmp.s = s;
    return &tmp;
  };
  auto num = [&](int64_t i) {
    tmp.type = attr_value::kind::integer;
    tmp.i = i;
    return &tmp;
  };
  switch (n.source) {
    case predicate::field::id: return str(e.id);
    case predicate::field::type: return str(e.type);
    case predicate::field::device_id: return str(e.device_id);
    case predicate::field::profile_id: return e.profile_id.empty() ? nullptr : str(e.profile_id);
    case predicate::field::ts: return num(e.ts);
    case predicate::field::ingest_ts: return num(e.ingest_ts);
    case predicate::field::offset: return num(static_cast<int64_t>(e.offset));
    case predicate::field::attr: {
      if (slots != nullptr && n.slot >= 0) {
        auto& slot = slots[n.slot];
        return slot.found ? &slot.value : nullptr;
      }
      auto found = find_attr(e.attrs, n.path);
      if (!found)
        return nullptr;
      tmp = *found;
      return &tmp;
    }
  }
  return nullptr;
}

// Three-way comparison; nullopt when the types are not comparable.
std::optional<int> compare(const view& v, const predicate::literal& lit) {
  using lk = predicate::literal::kind;
  using vk = attr_value::kind;
  auto num = [](const view& x) -> std::optional<double> {
    if (x.type == vk::integer)
      return static_cast<double>(x.i);
    if (x.type == vk::floating)
      return x.d;
    return std::nullopt;
  };
  switch (lit.type) {
    case lk::null:
      return v.type == vk::nil ? std::optional<int>{0} : std::nullopt;
    case lk::boolean:
      if (v.type != vk::boolean)
        return std::nullopt;
      return static_cast<int>(v.b) - static_cast<int>(lit.b);
    case lk::string:
      if (v.type != vk::string)
        return std::nullopt;
      {
        int c = v.s.compare(lit.s);
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
      }
    case lk::integer:
      if (v.type == vk::integer)
        return v.i < lit.i ? -1 : (v.i > lit.i ? 1 : 0);
      [[fallthrough]];
    case lk::real: {
      auto x = num(v);
      if (!x)
        return std::nullopt;
      double y = lit.type == lk::integer ? static_cast<double>(lit.i) : lit.d;
      return *x < y ? -1 : (*x > y ? 1 : 0);
    }
  }
  return std::nullopt;
}

// `compare(v, lit) == 0`, with strings compared for equality only (lengths first).
inline bool equal(const view& v, const predicate::literal& lit) {
  if (lit.type == predicate::literal::kind::string)
    return v.type == attr_value::kind::string && same(v.s, lit.s);
  auto c = compare(v, lit);
  return c && *c == 0;
}

} // namespace

bool predicate::eval_node(int32_t index, const event& e, const attr_slot* slots) const {
  const auto& n = nodes_[static_cast<size_t>(index)];
  switch (n.kind) {
    case op::always: return true;
    case op::and_: return eval_node(n.lhs, e, slots) && eval_node(n.rhs, e, slots);
    case op::or_: return eval_node(n.lhs, e, slots) || eval_node(n.rhs, e, slots);
    case op::not_: return !eval_node(n.lhs, e, slots);
    default: break;
  }
  // Every other operation reads its field first.
  view tmp;
  auto v = read_field(n, e, slots, tmp);
  switch (n.kind) {
    case op::exists: return v && v->type != attr_value::kind::nil;
    case op::matches:
      if (!v || v->type != attr_value::kind::string)
        return false;
      if (n.literal_regex)
        return n.literal_exact ? same(v->s, n.literal_prefix)
                               : same(v->s.substr(0, n.literal_prefix.size()), n.literal_prefix);
      return RE2::PartialMatch(re2::StringPiece(v->s.data(), v->s.size()), *n.regex);
    case op::in:
      if (!v)
        return false;
      for (auto& lit : n.values)
        if (equal(*v, lit))
          return true;
      return false;
    default: break;
  }
  if (!v) {
    // An absent field equals null and differs from everything else.
    bool is_null = n.values[0].type == literal::kind::null;
    return n.kind == op::eq ? is_null : (n.kind == op::ne ? !is_null : false);
  }
  if (n.kind == op::eq)
    return equal(*v, n.values[0]);
  if (n.kind == op::ne)
    return !equal(*v, n.values[0]);
  auto c = compare(*v, n.values[0]);
  switch (n.kind) {
    case op::lt: return c && *c < 0;
    case op::le: return c && *c <= 0;
    case op::gt: return c && *c > 0;
    case op::ge: return c && *c >= 0;
    default: return false;
  }
}

} // namespace sluice
