#include "actors/pii.hpp"

#include <arpa/inet.h>
#include <hs/hs.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

namespace sluice {

std::string_view to_string(pii_kind k) noexcept {
  switch (k) {
    case pii_kind::card: return "card";
    case pii_kind::email: return "email";
    case pii_kind::phone: return "phone";
    case pii_kind::ipv4: return "ipv4";
    case pii_kind::ipv6: return "ipv6";
  }
  return "unknown";
}

namespace {

// The patterns find candidates; `pii_scanner::validate` decides (Hyperscan has no look-around,
// and Luhn or octet ranges are not regular-expression material anyway).
struct pattern {
  pii_kind kind;
  const char* regex;
};

constexpr pattern patterns[] = {
  // 13-19 digits with spaces or dashes: the validator takes the whole run of digits, spaces and
  // dashes around the match and looks for 13-19 digit windows on group boundaries whose first digit
  // is an issuer digit 2-6 (Mastercard 2/5, Amex and Diners 3, Visa 4, Discover and UnionPay 6;
  // a 13-digit epoch-ms timestamp starts with 1) and whose Luhn sum holds.
  {pii_kind::card, "[0-9][0-9 \\-]{11,36}[0-9]"},
  {pii_kind::email, "[A-Za-z0-9._%+\\-]+@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)*\\.[A-Za-z]{2,24}"},
  // E.164 with optional separators: +14155552671, +44 20 7946 0958, +1 (415) 555-2671.
  {pii_kind::phone, "\\+[1-9](?:[ .()\\-]{0,2}[0-9]){7,14}"},
  // North American national format; a separator is required: 415-555-2671, (415) 555 2671.
  {pii_kind::phone, "\\(?[2-9][0-9]{2}\\)?[ .\\-]?[2-9][0-9]{2}[ .\\-][0-9]{4}"},
  // National formats with a trunk 0 and separators: 07700 900123, 030 12345678, 06 12 34 56 78.
  {pii_kind::phone, "0[1-9][0-9]{0,4}[ \\-/][0-9]{2,8}(?:[ \\-][0-9]{2,8}){0,3}"},
  {pii_kind::ipv4, "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"},
  {pii_kind::ipv6, "[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}"},
  {pii_kind::ipv6, "[0-9A-Fa-f:]*::[0-9A-Fa-f:.]*"},
};

// The pre-filter: necessary conditions of the patterns above, checked over the raw bytes with
// bit masks of byte classes (SSE2, 16 bytes a step) and no regex engine: Hyperscan's fixed cost
// per scan exceeds the budget of this check. Every kind needs one of:
// - card, phone, IPv4: a run of digits and number separators (` .-()/+`) with at least 7 digits
//   (a phone has 7 or more, a card 13 or more), or with 4 digits and 3 dots (an IPv4 address);
// - e-mail: an `@`;
// - IPv6: `::`, or a run of hex digits and colons with 7 colons (eight groups).
// Each pattern's match lies inside such a run, and a run in a string value lies inside a run of
// the raw bytes around it (msgpack keys and headers can only lengthen it), so text the pre-filter
// passes over holds no PII; a hit may be a false alarm that the exact scan then rejects.

constexpr uint32_t kind_bit(pii_kind k) {
  return 1u << static_cast<unsigned>(k);
}

constexpr size_t block_bytes = 64;

/// Class masks of one block of up to 64 bytes: bit i is byte i.
struct block_masks {
  uint64_t number = 0; ///< digits and number separators
  uint64_t digit = 0;
  uint64_t dot = 0;
  uint64_t hex_colon = 0; ///< hex digits and colons (may be left empty around no colon)
  uint64_t colon = 0;
  uint64_t at = 0;
};

enum : uint8_t {
  cls_digit = 1,   // 0-9
  cls_num_sep = 2, // separators inside numbers: space . - ( ) / +
  cls_dot = 4,     // .
  cls_hex = 8,     // 0-9 A-F a-f
  cls_colon = 16,  // :
  cls_at = 32,     // @
};

struct byte_classes {
  uint8_t of[256] = {};
  constexpr byte_classes() {
    for (int c = '0'; c <= '9'; ++c)
      of[c] = cls_digit | cls_hex;
    for (int c = 'a'; c <= 'f'; ++c)
      of[c] = cls_hex;
    for (int c = 'A'; c <= 'F'; ++c)
      of[c] = cls_hex;
    for (char c : {' ', '-', '(', ')', '/', '+'})
      of[static_cast<unsigned char>(c)] = cls_num_sep;
    of[static_cast<unsigned char>('.')] = cls_num_sep | cls_dot;
    of[static_cast<unsigned char>(':')] = cls_colon;
    of[static_cast<unsigned char>('@')] = cls_at;
  }
};

constexpr byte_classes classes{};

/// Adds the masks of bytes `[from, to)` of `p`, one at a time.
void classify_bytes(const char* p, size_t from, size_t to, block_masks& m) noexcept {
  for (size_t i = from; i < to; ++i) {
    unsigned c = classes.of[static_cast<unsigned char>(p[i])];
    auto bit = [&](bool b) { return static_cast<uint64_t>(b) << i; };
    m.number |= bit((c & (cls_digit | cls_num_sep)) != 0);
    m.digit |= bit((c & cls_digit) != 0);
    m.dot |= bit((c & cls_dot) != 0);
    m.hex_colon |= bit((c & (cls_hex | cls_colon)) != 0);
    m.colon |= bit((c & cls_colon) != 0);
    m.at |= bit((c & cls_at) != 0);
  }
}

#if defined(__SSE2__)

/// Adds the masks of the 16 bytes `v` at bit `at`.
void classify16(__m128i v, size_t at, block_masks& m) noexcept {
  auto eq = [&](char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(c)); };
  auto in = [](__m128i x, char lo, char hi) { // signed: bytes >= 0x80 are never inside
    return _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmplt_epi8(x, _mm_set1_epi8(static_cast<char>(hi + 1))));
  };
  __m128i digit = in(v, '0', '9');
  __m128i dot = eq('.');
  __m128i colon = eq(':');
  __m128i sep = _mm_or_si128(
    _mm_or_si128(_mm_or_si128(eq(' '), eq('-')), _mm_or_si128(eq('('), eq(')'))),
    _mm_or_si128(_mm_or_si128(eq('/'), eq('+')), dot));
  auto bits = [&](__m128i x) {
    return static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(x))) << at;
  };
  m.number |= bits(_mm_or_si128(digit, sep));
  m.digit |= bits(digit);
  m.dot |= bits(dot);
  m.at |= bits(eq('@'));
  if (uint64_t colons = bits(colon); colons != 0) { // hex runs matter only around colons
    __m128i letter = in(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'f'); // A-F, a-f
    m.hex_colon |= bits(_mm_or_si128(_mm_or_si128(digit, letter), colon));
    m.colon |= colons;
  }
}

block_masks classify(const char* p, size_t n) noexcept {
  constexpr size_t step = 16;
  block_masks m;
  size_t i = 0;
  for (; i + step <= n; i += step)
    classify16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), i, m);
  if (i < n && n >= step) // the tail: the last 16 bytes again (their bits are the same)
    classify16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - step)), n - step, m);
  else if (i < n)
    classify_bytes(p, i, n, m);
  return m;
}

#else

block_masks classify(const char* p, size_t n) noexcept {
  block_masks m;
  classify_bytes(p, 0, n, m);
  return m;
}

#endif

/// Set bits of `x` (without a libgcc call where the target has no POPCNT instruction).
constexpr unsigned popcount(uint64_t x) noexcept {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<unsigned>((x * 0x0101010101010101ULL) >> 56);
}

/// Counts two byte classes (`a` and `b`) in the runs of a third across blocks (a run open at
/// the end of a block continues into the next), from the first `a` byte of each run on: `b`
/// bytes before it are not counted (every condition checked starts with an `a` byte).
struct run_counter {
  /// Counts of the run open at the end of the last block; zero when none holds an `a` byte.
  unsigned a = 0;
  unsigned b = 0;

  /// Feeds one block of `width` bytes: `runs` marks the run bytes, `ma` (within `runs`) and `mb`
  /// the counted ones. True as soon as some run's counts satisfy `ok(a, b)` (monotone in both).
  /// Visits only the runs holding an `a` byte.
  template <class Ok>
  bool feed(uint64_t runs, uint64_t ma, uint64_t mb, size_t width, Ok ok) noexcept {
    uint64_t top = uint64_t{1} << (width - 1);
    unsigned carried_a = a, carried_b = b;
    a = b = 0;
    if (carried_a != 0 && (runs & 1) != 0) { // the open run goes on at bit 0
      uint64_t run = runs & ~(runs + 1);
      carried_a += popcount(ma & run);
      carried_b += popcount(mb & run);
      if (ok(carried_a, carried_b))
        return true;
      ma &= ~run;
      if ((run & top) != 0) {
        a = carried_a;
        b = carried_b;
      }
    }
    while (ma != 0) {
      uint64_t first = ma & (~ma + 1);       // the first `a` byte of a run
      uint64_t from = runs & ~(first - 1);   // the runs from there on
      uint64_t run = from & ~(from + first); // that run, from that byte on
      unsigned ra = popcount(ma & run), rb = popcount(mb & run);
      if (ok(ra, rb))
        return true;
      ma &= ~run;
      if ((run & top) != 0) {
        a = ra;
        b = rb;
      }
    }
    return false;
  }
};

} // namespace

bool pii_prefilter::hit(std::string_view text) const noexcept {
  constexpr unsigned ipv4_digits = 4, ipv4_dots = 3, ipv6_colons = 7;
  auto number = [this](unsigned digits, unsigned dots) {
    return digits >= min_digits_ || (ipv4_ && digits >= ipv4_digits && dots >= ipv4_dots);
  };
  auto eight_groups = [](unsigned colons, unsigned) { return colons >= ipv6_colons; };
  bool numbers = min_digits_ != UINT32_MAX || ipv4_;
  run_counter num, hex;
  bool prev_colon = false;
  for (size_t off = 0; off < text.size(); off += block_bytes) {
    size_t n = std::min(block_bytes, text.size() - off);
    auto m = classify(text.data() + off, n);
    if (email_ && m.at != 0)
      return true;
    if (ipv6_) {
      if ((m.colon & (m.colon >> 1)) != 0 || (prev_colon && (m.colon & 1) != 0)) // "::"
        return true;
      // A block without colons ends every hex run that could still become an address (its
      // groups have at most four digits).
      if (m.colon == 0)
        hex = run_counter{};
      else if (hex.feed(m.hex_colon, m.colon, 0, n, eight_groups))
        return true;
      prev_colon = ((m.colon >> (n - 1)) & 1) != 0;
    }
    if (numbers && num.feed(m.number, m.digit, m.dot, n, number))
      return true;
  }
  return false;
}

void pii_prefilter::init(uint32_t kinds_mask) noexcept {
  constexpr unsigned phone_digits = 7, card_digits = 13, never = UINT32_MAX;
  min_digits_ = (kinds_mask & kind_bit(pii_kind::phone)) != 0  ? phone_digits
                : (kinds_mask & kind_bit(pii_kind::card)) != 0 ? card_digits
                                                                : never;
  ipv4_ = (kinds_mask & kind_bit(pii_kind::ipv4)) != 0;
  ipv6_ = (kinds_mask & kind_bit(pii_kind::ipv6)) != 0;
  email_ = (kinds_mask & kind_bit(pii_kind::email)) != 0;
}

namespace {

bool is_alnum(char c) noexcept {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_hex_or_colon(char c) noexcept {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
}

// A separator inside a longer number (`1234 0510 5101`): the value around it is not a phone.
bool continues_number(std::string_view text, size_t sep, int dir) noexcept {
  auto next = static_cast<long>(sep) + dir;
  return next >= 0 && static_cast<size_t>(next) < text.size()
         && is_digit(text[static_cast<size_t>(next)]);
}

hs_database* compile_db(const std::vector<const char*>& exprs, unsigned flags, unsigned mode,
                        std::string& error) {
  std::vector<unsigned> flag_list(exprs.size(), flags);
  std::vector<unsigned> ids(exprs.size());
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<unsigned>(i);
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(exprs.data(), flag_list.data(), ids.data(),
                       static_cast<unsigned>(exprs.size()), mode, nullptr, &db, &err)
      != HS_SUCCESS) {
    error = fmt::format("PII patterns do not compile (pattern {}): {}", err ? err->expression : -1,
                        err && err->message ? err->message : "unknown Hyperscan error");
    hs_free_compile_error(err);
    return nullptr;
  }
  return db;
}

} // namespace

pii_detector::~pii_detector() {
  hs_free_database(block_db_);
}

std::shared_ptr<const pii_detector> pii_detector::make(const pii_options& opts,
                                                       std::string& error) {
  std::shared_ptr<pii_detector> d{new pii_detector};
  d->opts_ = opts;
  for (auto& k : opts.kinds) {
    bool known = false;
    for (size_t i = 0; i < pii_kind_count; ++i) {
      if (k == to_string(static_cast<pii_kind>(i))) {
        d->kinds_mask_ |= 1u << i;
        known = true;
      }
    }
    if (!known) {
      error = fmt::format("pii.kinds names \"{}\"; use card, email, phone, ipv4 or ipv6", k);
      return nullptr;
    }
  }
  if (opts.hash_encoding != "hex" && opts.hash_encoding != "base64url") {
    error = fmt::format("pii.hash-encoding is \"{}\"; use hex or base64url", opts.hash_encoding);
    return nullptr;
  }
  static constexpr std::string_view envelope[] = {"id", "device_id", "profile_id"};
  for (auto f : opts.fields) {
    if (f.empty()) {
      error = "pii.fields holds an empty path; name a field such as attrs.email";
      return nullptr;
    }
    if (std::find(std::begin(envelope), std::end(envelope), f) != std::end(envelope)) {
      d->scans_id_ = d->scans_id_ || f == "id";
      d->envelope_fields_.push_back(f);
      continue;
    }
    if (f.rfind("attrs.", 0) == 0)
      f.erase(0, 6);
    d->attr_fields_.push_back(f);
  }
  std::vector<const char*> exprs;
  for (auto& p : patterns) {
    if ((d->kinds_mask_ & (1u << static_cast<unsigned>(p.kind))) == 0)
      continue;
    exprs.push_back(p.regex);
    d->pattern_kinds_.push_back(p.kind);
  }
  if (exprs.empty())
    return d;
  d->block_db_ = compile_db(exprs, HS_FLAG_SOM_LEFTMOST, HS_MODE_BLOCK, error);
  if (d->block_db_ == nullptr)
    return nullptr;
  d->prefilter_.init(d->kinds_mask_);
  return d;
}

bool pii_detector::scans(std::string_view path) const noexcept {
  if (path == "id")
    return scans_id_;
  if (scans_all())
    return true;
  for (auto& f : envelope_fields_)
    if (f == path)
      return true;
  for (auto& f : attr_fields_) {
    if (path == f)
      return true;
    if (path.size() > f.size() && path[f.size()] == '.' && path.compare(0, f.size(), f) == 0)
      return true;
  }
  return false;
}

// -- scanner ------------------------------------------------------------------------------------

pii_scanner::pii_scanner(std::shared_ptr<const pii_detector> detector)
  : detector_(std::move(detector)) {
  if (detector_->block_db_ != nullptr) {
    if (hs_alloc_scratch(detector_->block_db_, &scratch_) != HS_SUCCESS)
      throw std::runtime_error("Hyperscan scratch allocation failed");
  }
  // Typical strings produce a handful of candidates; the buffers grow once if needed.
  constexpr size_t initial_candidates = 64;
  candidates_.reserve(initial_candidates);
  found_.reserve(initial_candidates);
}

pii_scanner::~pii_scanner() {
  hs_free_scratch(scratch_);
}

bool pii_scanner::maybe(const event& e) const noexcept {
  if (scratch_ == nullptr)
    return false;
  // The event id is scanned only when pii.fields names it (it identifies the event; gateway ids
  // are UUIDs).
  auto& pf = detector_->prefilter_;
  return pf.hit(e.attrs) || pf.hit(e.device_id) || pf.hit(e.profile_id)
         || (detector_->scans_id_ && pf.hit(e.id));
}

void pii_scanner::find(std::string_view text, std::vector<pii_span>& out) {
  if (scratch_ == nullptr || text.empty() || text.size() > UINT32_MAX
      || !detector_->prefilter_.hit(text))
    return;
  candidates_.clear();
  auto on_match = [](unsigned id, unsigned long long from, unsigned long long to, unsigned,
                     void* ctx) -> int {
    static_cast<std::vector<candidate>*>(ctx)->push_back(
      {id, static_cast<uint32_t>(from), static_cast<uint32_t>(to)});
    return 0;
  };
  hs_scan(detector_->block_db_, text.data(), static_cast<unsigned>(text.size()), 0, scratch_,
          on_match, &candidates_);
  if (candidates_.empty())
    return;
  // Per pattern and start, the longest match; then validate each.
  std::sort(candidates_.begin(), candidates_.end(), [](const candidate& a, const candidate& b) {
    return a.id != b.id ? a.id < b.id : (a.from != b.from ? a.from < b.from : a.to > b.to);
  });
  found_.clear();
  for (size_t i = 0; i < candidates_.size(); ++i) {
    auto& c = candidates_[i];
    if (i > 0 && candidates_[i - 1].id == c.id && candidates_[i - 1].from == c.from)
      continue;
    validate(text, detector_->pattern_kinds_[c.id], c.from, c.to, found_);
  }
  if (found_.empty())
    return;
  // Overlaps across kinds (an IPv4 inside an IPv6, a card inside an e-mail): the earlier, then
  // longer span wins.
  std::sort(found_.begin(), found_.end(), [](const pii_span& a, const pii_span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  uint32_t covered = 0;
  bool first = true;
  for (auto& s : found_) {
    if (!first && s.begin < covered)
      continue;
    out.push_back(s);
    covered = s.end;
    first = false;
  }
}

void pii_scanner::validate(std::string_view text, pii_kind kind, uint32_t from, uint32_t to,
                           std::vector<pii_span>& out) const {
  auto before = [&](size_t pos) { return pos == 0 ? '\0' : text[pos - 1]; };
  auto at = [&](size_t pos) { return pos < text.size() ? text[pos] : '\0'; };
  switch (kind) {
    case pii_kind::card: {
      // The whole run of digits, spaces and dashes around the match; windows of 13-19 digits on
      // group boundaries with a valid issuer digit and Luhn sum.
      size_t b = from, e = to;
      auto run_char = [](char c) { return is_digit(c) || c == ' ' || c == '-'; };
      while (b > 0 && run_char(text[b - 1]))
        --b;
      while (e < text.size() && run_char(text[e]))
        ++e;
      while (b < e && !is_digit(text[b]))
        ++b;
      while (e > b && !is_digit(text[e - 1]))
        --e;
      if (is_alnum(before(b)) || is_alnum(at(e)))
        return;
      // Every card found in this run is reported once: skip if already done.
      for (auto& s : out)
        if (s.kind == pii_kind::card && s.begin >= b && s.end <= e)
          return;
      constexpr size_t max_digits = 64;
      uint32_t pos[max_digits];
      char digits[max_digits];
      bool group_start[max_digits];
      size_t n = 0;
      for (size_t k = b; k < e && n < max_digits; ++k) {
        if (!is_digit(text[k]))
          continue;
        group_start[n] = n == 0 || !is_digit(text[k - 1]);
        pos[n] = static_cast<uint32_t>(k);
        digits[n++] = text[k];
      }
      constexpr size_t min_len = 13, max_len = 19;
      size_t s = 0;
      while (s + min_len <= n) {
        bool taken = false;
        if (group_start[s] && digits[s] >= '2' && digits[s] <= '6') {
          for (size_t len = std::min(max_len, n - s); len >= min_len; --len) {
            bool group_end = s + len == n || group_start[s + len];
            if (group_end && luhn_valid(std::string_view(digits + s, len))) {
              out.push_back({kind, pos[s], pos[s + len - 1] + 1});
              s += len;
              taken = true;
              break;
            }
          }
        }
        if (!taken)
          ++s;
      }
      return;
    }
    case pii_kind::email:
      out.push_back({kind, from, to});
      return;
    case pii_kind::phone: {
      char b = before(from);
      if (is_alnum(b) || b == '+' || b == '_'
          || ((b == '-' || b == '.' || b == ' ' || b == '/') && continues_number(text, from - 1, -1)))
        return;
      char a = at(to);
      if (is_alnum(a) || a == '_'
          || ((a == '-' || a == '.' || a == ' ' || a == '/') && continues_number(text, to, +1)))
        return;
      size_t n = 0;
      for (size_t k = from; k < to; ++k)
        n += is_digit(text[k]) ? 1 : 0;
      bool plus = text[from] == '+';
      bool nanp = !plus && text[from] != '0';
      constexpr size_t e164_min = 8, e164_max = 15, nanp_digits = 10, national_min = 9,
                       national_max = 12;
      bool ok = plus ? (n >= e164_min && n <= e164_max)
                     : (nanp ? n == nanp_digits : (n >= national_min && n <= national_max));
      if (ok)
        out.push_back({kind, from, to});
      return;
    }
    case pii_kind::ipv4: {
      char b = before(from), a = at(to);
      if (is_alnum(b) || b == '.' || is_alnum(a) || (a == '.' && is_digit(at(to + 1))))
        return;
      int octet = 0, digits = 0;
      for (size_t k = from; k <= to; ++k) {
        if (k == to || text[k] == '.') {
          constexpr int max_octet = 255;
          if (digits == 0 || octet > max_octet)
            return;
          octet = 0;
          digits = 0;
        } else {
          octet = octet * 10 + (text[k] - '0');
          ++digits;
        }
      }
      out.push_back({kind, from, to});
      return;
    }
    case pii_kind::ipv6: {
      size_t b = from, e = to;
      while (b > 0 && is_hex_or_colon(text[b - 1]))
        --b;
      while (e < text.size() && is_hex_or_colon(text[e]))
        ++e;
      while (e > b && text[e - 1] == '.')
        --e;
      if (is_alnum(before(b)) || is_alnum(at(e)))
        return;
      for (auto& s : out)
        if (s.kind == pii_kind::ipv6 && s.begin == b)
          return;
      constexpr size_t max_text = 45; // INET6_ADDRSTRLEN - 1
      if (e - b > max_text || std::count(text.begin() + b, text.begin() + e, ':') < 2)
        return;
      char buf[max_text + 1];
      std::copy(text.begin() + b, text.begin() + e, buf);
      buf[e - b] = '\0';
      unsigned char addr[16];
      if (inet_pton(AF_INET6, buf, addr) == 1)
        out.push_back({kind, static_cast<uint32_t>(b), static_cast<uint32_t>(e)});
      return;
    }
  }
}

// -- pseudonyms ---------------------------------------------------------------------------------

keyed_hasher::keyed_hasher(std::string_view secret, bool base64url) : base64url_(base64url) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr)
    throw std::runtime_error("OpenSSL has no HMAC");
  ctx_ = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac); // the context holds its own reference
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
    OSSL_PARAM_construct_end(),
  };
  if (ctx_ == nullptr
      || EVP_MAC_init(ctx_, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                      params)
           != 1)
    throw std::runtime_error("HMAC-SHA256 initialisation failed");
}

keyed_hasher::~keyed_hasher() {
  EVP_MAC_CTX_free(ctx_);
}

void keyed_hasher::append(std::string_view value, std::string& out) {
  constexpr size_t mac_bytes = 32;
  unsigned char mac[mac_bytes];
  size_t len = 0;
  // A null key re-initialises with the key set in the constructor.
  EVP_MAC_init(ctx_, nullptr, 0, nullptr);
  EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(value.data()), value.size());
  EVP_MAC_final(ctx_, mac, &len, sizeof mac);
  if (!base64url_) {
    static constexpr char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; ++i) {
      out += hex[mac[i] >> 4];
      out += hex[mac[i] & 0xf];
    }
    return;
  }
  unsigned char b64[((mac_bytes + 2) / 3) * 4 + 1];
  int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
  for (int i = 0; i < n; ++i) {
    char c = static_cast<char>(b64[i]);
    if (c == '=')
      break;
    out += c == '+' ? '-' : (c == '/' ? '_' : c);
  }
}

void normalize_pii(pii_kind kind, std::string_view value, std::string& out) {
  out.clear();
  switch (kind) {
    case pii_kind::card:
    case pii_kind::phone:
      for (char c : value)
        if (is_digit(c) || (c == '+' && out.empty()))
          out += c;
      return;
    case pii_kind::email:
    case pii_kind::ipv6:
      for (char c : value)
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return;
    case pii_kind::ipv4: out.assign(value); return;
  }
}

std::string resolve_pii_secret(const pii_options& opts) {
  if (!opts.secret.empty())
    return opts.secret;
  if (const char* env = std::getenv(pii_secret_env))
    return env;
  return {};
}

bool luhn_valid(std::string_view digits) noexcept {
  int sum = 0;
  bool twice = false;
  for (auto i = digits.rbegin(); i != digits.rend(); ++i) {
    int d = *i - '0';
    if (twice) {
      d *= 2;
      if (d > 9)
        d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return !digits.empty() && sum % 10 == 0;
}

} // namespace sluice
