#include "actors/predicate.hpp"

#include "messages/codec.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <new>
#include <optional>

#include <fmt/format.h>
#include <msgpack.hpp>
#include <re2/re2.h>

namespace sluice {

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
    out_.nodes_.push_back(std::move(n));
    return static_cast<int32_t>(out_.nodes_.size() - 1);
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
      auto inner = parse_unary();
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
      auto inner = parse_or();
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

// Resolves attribute paths in one msgpack-c SAX pass (see `resolve_attr_slots`).
struct slot_visitor : msgpack::null_visitor {
  static constexpr size_t max_depth = 32;
  const std::vector<std::string>* paths = nullptr;
  attr_slot* slots = nullptr;
  size_t missing = 0;
  // The dotted path of the current key, and its length at each map level.
  std::string path;
  size_t base[max_depth] = {};
  size_t depth = 0;
  // Inside an array (or too deep): no paths there.
  size_t opaque = 0;
  bool in_key = false;
  bool key_ok = false;

  void init() {
    path.clear();
    depth = 0;
    nframes = 0;
    overflow = 0;
    opaque = 0;
    in_key = false;
    key_ok = false;
  }

  // The value of the current key is `v`.
  void found(const attr_value& v) {
    if (opaque > 0 || !key_ok || depth == 0 || missing == 0)
      return;
    for (size_t i = 0; i < paths->size(); ++i) {
      if (!slots[i].found && (*paths)[i] == path) {
        slots[i].found = true;
        slots[i].value = v;
        --missing;
      }
    }
  }
  bool scalar(attr_value v) {
    if (!in_key)
      found(v);
    else
      key_ok = false; // a non-string key never matches
    return true;
  }
  bool visit_nil() {
    return scalar({});
  }
  bool visit_boolean(bool b) {
    attr_value v;
    v.type = attr_value::kind::boolean;
    v.b = b;
    return scalar(v);
  }
  bool visit_positive_integer(uint64_t u) {
    attr_value v;
    if (u <= static_cast<uint64_t>(INT64_MAX)) {
      v.type = attr_value::kind::integer;
      v.i = static_cast<int64_t>(u);
    } else {
      v.type = attr_value::kind::other; // does not fit attr_value's int64
    }
    return scalar(v);
  }
  bool visit_negative_integer(int64_t i) {
    attr_value v;
    v.type = attr_value::kind::integer;
    v.i = i;
    return scalar(v);
  }
  bool visit_float32(float f) {
    return visit_float64(f);
  }
  bool visit_float64(double d) {
    attr_value v;
    v.type = attr_value::kind::floating;
    v.d = d;
    return scalar(v);
  }
  bool visit_str(const char* p, uint32_t n) {
    if (in_key) {
      if (opaque == 0 && depth > 0) {
        path.resize(base[depth - 1]);
        if (!path.empty())
          path += '.';
        path.append(p, n);
        key_ok = true;
      }
      return true;
    }
    attr_value v;
    v.type = attr_value::kind::string;
    v.s = std::string_view{p, n};
    found(v);
    return true;
  }
  bool other() {
    attr_value v;
    v.type = attr_value::kind::other;
    return scalar(v);
  }
  bool visit_bin(const char*, uint32_t) {
    return other();
  }
  bool visit_ext(const char*, uint32_t) {
    return other();
  }
  // Containers: a map under a matchable key is a level of the path; arrays, maps as keys, maps
  // under non-string keys or too deep are opaque (nothing inside them is matched).
  static constexpr size_t max_frames = 64;
  enum frame : uint8_t { level, opaque_frame };
  frame frames[max_frames] = {};
  size_t nframes = 0;
  size_t overflow = 0;
  void push(frame f) {
    if (f == opaque_frame)
      ++opaque;
    if (nframes < max_frames) {
      frames[nframes++] = f;
    } else {
      ++overflow;
      if (f == level) { // never deeper than max_depth levels: count it as opaque
        ++opaque;
        --depth;
      }
    }
  }
  void pop() {
    if (overflow > 0) {
      --overflow;
      --opaque;
      return;
    }
    if (frames[--nframes] == opaque_frame) {
      --opaque;
    } else {
      --depth;
      path.resize(base[depth]);
    }
  }
  bool start_array(uint32_t) {
    other();
    push(opaque_frame);
    return true;
  }
  bool end_array() {
    pop();
    return true;
  }
  bool start_map(uint32_t) {
    bool root = nframes == 0 && overflow == 0;
    if (!root)
      other();
    if (opaque == 0 && depth < max_depth && (root || (!in_key && key_ok))) {
      base[depth] = path.size();
      ++depth;
      push(level);
    } else {
      push(opaque_frame);
    }
    return true;
  }
  bool end_map() {
    pop();
    return true;
  }
  bool start_map_key() {
    in_key = true;
    key_ok = false;
    return true;
  }
  bool end_map_key() {
    in_key = false;
    return true;
  }
  void parse_error(size_t, size_t) {
  }
  void insufficient_bytes(size_t, size_t) {
  }
};

} // namespace

bool resolve_attr_slots(std::string_view attrs, const std::vector<std::string>& paths,
                        attr_slot* slots) {
  if (paths.size() > max_attr_slots)
    return false;
  for (size_t i = 0; i < paths.size(); ++i)
    new (&slots[i]) attr_slot{};
  if (attrs.empty() || paths.empty())
    return true;
  // One visitor and parser per thread: the parser's stack keeps its capacity across events.
  thread_local slot_visitor visitor;
  thread_local msgpack::v3::detail::parse_helper<slot_visitor> parser{visitor};
  visitor.paths = &paths;
  visitor.slots = slots;
  visitor.missing = paths.size();
  parser.init();
  size_t off = 0;
  auto ret = parser.execute(attrs.data(), attrs.size(), off);
  return ret == msgpack::PARSE_SUCCESS || ret == msgpack::PARSE_EXTRA_BYTES;
}

namespace {

// A field value as read from an event, without copying.
struct view {
  attr_value::kind type = attr_value::kind::nil;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;
};

std::optional<view> read_field(const predicate::node& n, const event& e,
                               const attr_slot* slots) {
  view v;
  switch (n.source) {
    case predicate::field::id: v.type = attr_value::kind::string; v.s = e.id; return v;
    case predicate::field::type: v.type = attr_value::kind::string; v.s = e.type; return v;
    case predicate::field::device_id:
      v.type = attr_value::kind::string;
      v.s = e.device_id;
      return v;
    case predicate::field::profile_id:
      if (e.profile_id.empty())
        return std::nullopt;
      v.type = attr_value::kind::string;
      v.s = e.profile_id;
      return v;
    case predicate::field::ts: v.type = attr_value::kind::integer; v.i = e.ts; return v;
    case predicate::field::ingest_ts:
      v.type = attr_value::kind::integer;
      v.i = e.ingest_ts;
      return v;
    case predicate::field::offset:
      v.type = attr_value::kind::integer;
      v.i = static_cast<int64_t>(e.offset);
      return v;
    case predicate::field::attr: {
      std::optional<attr_value> a;
      if (slots != nullptr && n.slot >= 0) {
        auto& slot = slots[n.slot];
        if (!slot.found)
          return std::nullopt;
        a = slot.value;
      } else {
        a = find_attr(e.attrs, n.path);
      }
      if (!a)
        return std::nullopt;
      v.type = a->type;
      v.b = a->b;
      v.i = a->i;
      v.d = a->d;
      v.s = a->s;
      return v;
    }
  }
  return std::nullopt;
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

} // namespace

bool predicate::eval_node(int32_t index, const event& e, const attr_slot* slots) const {
  const auto& n = nodes_[static_cast<size_t>(index)];
  switch (n.kind) {
    case op::always: return true;
    case op::and_: return eval_node(n.lhs, e, slots) && eval_node(n.rhs, e, slots);
    case op::or_: return eval_node(n.lhs, e, slots) || eval_node(n.rhs, e, slots);
    case op::not_: return !eval_node(n.lhs, e, slots);
    case op::exists: {
      auto v = read_field(n, e, slots);
      return v && v->type != attr_value::kind::nil;
    }
    case op::matches: {
      auto v = read_field(n, e, slots);
      return v && v->type == attr_value::kind::string
             && RE2::PartialMatch(re2::StringPiece(v->s.data(), v->s.size()), *n.regex);
    }
    case op::in: {
      auto v = read_field(n, e, slots);
      if (!v)
        return false;
      for (auto& lit : n.values)
        if (auto c = compare(*v, lit); c && *c == 0)
          return true;
      return false;
    }
    default: break;
  }
  auto v = read_field(n, e, slots);
  if (!v) {
    // An absent field equals null and differs from everything else.
    bool is_null = n.values[0].type == literal::kind::null;
    return n.kind == op::eq ? is_null : (n.kind == op::ne ? !is_null : false);
  }
  auto c = compare(*v, n.values[0]);
  switch (n.kind) {
    case op::eq: return c && *c == 0;
    case op::ne: return !c || *c != 0;
    case op::lt: return c && *c < 0;
    case op::le: return c && *c <= 0;
    case op::gt: return c && *c > 0;
    case op::ge: return c && *c >= 0;
    default: return false;
  }
}

} // namespace sluice
