// JSON rendering of events for sinks: `append_json`, `render_json` and the string escaper.
//
// Attribute values map back from msgpack as: nil → null, bool, int/uint → integer, float32/float64
// → number (non-finite → null), str → string, array/map → array/object, bin → base64 string
// (RFC 4648, with padding), ext → null. Map keys that are not strings render as their decimal text
// (integers) or are dropped with their value (anything else). Invalid UTF-8 in strings is replaced
// by U+FFFD so that the output is always valid JSON.
//
// Cost: the renderer writes through a raw pointer into room reserved once per event
// (`json_render_bound`), so no write checks capacity or zero-fills; strings up to 64 bytes are
// first tried as plain (one check over all their 8-byte words, copied whole), others scanned 8
// bytes at a time for the next byte that needs escaping and copied in 8-byte blocks between those;
// integers below 10^16 are converted 8 digits at a time (`digit_bytes`); the attributes are read
// once, each key by the reader itself, with every fixed-size token inline (`next_hot`).

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>

namespace sluice {

namespace detail {

namespace {

void append_floating_text(std::string& out, size_t start) {
  // fmt's shortest form prints 1.0 as "1": keep the value a JSON float so it reads back as one.
  for (size_t k = start; k < out.size(); ++k) {
    char c = out[k];
    if (c == '.' || c == 'e' || c == 'E')
      return;
  }
  out += ".0";
}

} // namespace

void append_json_double(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  size_t start = out.size();
  fmt::format_to(std::back_inserter(out), "{}", value);
  append_floating_text(out, start);
}

void append_json_float(std::string& out, float value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  size_t start = out.size();
  fmt::format_to(std::back_inserter(out), "{}", value);
  append_floating_text(out, start);
}

} // namespace detail

namespace {

using detail::mp_reader;
using detail::mp_token;
using detail::mp_type;

/// Deepest attribute nesting `append_json` renders; deeper values (only possible in corrupt or
/// hand-made attrs, the decoders stop at `decode_limits::max_depth`) render as null. Bounds the
/// renderer's recursion, and so its stack use.
constexpr size_t max_render_depth = 256;

/// Output bytes per input byte of a string at most: a control character or an invalid UTF-8 byte
/// becomes a 6-byte escape (`\u001f`, `\ufffd`).
constexpr size_t string_expansion = 6;
/// Output bytes per msgpack byte of the attributes at most. Per token, with the separator before
/// it: a 1-byte nil/bool/container header/fixint key renders as at most 6 bytes (`,false`,
/// `,"-32"`), a 9-byte int64/float64 as at most 27 (`,"-9223372036854775808"`), a string or bin
/// as at most 6 per payload byte plus quotes and separator (≥ 1 header byte), base64 4/3 per byte.
constexpr size_t attrs_expansion = 8;
/// Output bytes besides the strings and attributes: the envelope's keys, punctuation and three
/// 64-bit integers (≤ 20 digits each), the string quotes, plus the 8 bytes a block copy may write
/// past the end of what it keeps (`copy_block`), with a margin.
constexpr size_t fixed_overhead = 256;

constexpr char hex_digits[] = "0123456789abcdef";

/// Writes `n` bytes of literal text.
template <size_t N>
inline void put(char*& p, const char (&text)[N]) {
  std::memcpy(p, text, N - 1);
  p += N - 1;
}

inline void put(char*& p, const char* data, size_t n) {
  std::memcpy(p, data, n);
  p += n;
}

void put_escaped_ascii(char*& p, unsigned char c) {
  switch (c) {
    case '"':
      put(p, "\\\"");
      break;
    case '\\':
      put(p, "\\\\");
      break;
    case '\b':
      put(p, "\\b");
      break;
    case '\f':
      put(p, "\\f");
      break;
    case '\n':
      put(p, "\\n");
      break;
    case '\r':
      put(p, "\\r");
      break;
    case '\t':
      put(p, "\\t");
      break;
    default: {
      char buf[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0xf]};
      put(p, buf, sizeof buf);
    }
  }
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool little_endian = true;
#else
constexpr bool little_endian = false;
#endif

constexpr uint64_t ones = 0x0101010101010101ULL;
constexpr uint64_t highs = 0x8080808080808080ULL;

/// The 8 decimal digits of `v` (< 10^8, leading zeros included) as their values 0-9, the first
/// digit in the low byte: split into two 4-digit halves in 32-bit lanes, each into 2-digit pairs
/// in 16-bit lanes, each into digits in bytes, by multiply-shift division (exact for these
/// ranges: x * 10486 >> 20 is x / 100 for x < 10^4, x * 103 >> 10 is x / 10 for x < 100).
/// The divisions of all lanes run at once, where `std::to_chars` divides by 100 in a chain of
/// dependent steps; that chain was a fifth of the renderer's time (two 13-digit timestamps and
/// the offset per event).
[[gnu::always_inline]] inline uint64_t digit_bytes(uint32_t v) noexcept {
  uint64_t x = (v / 10000) | (uint64_t{v % 10000} << 32);
  uint64_t y = ((x * 10486) >> 20) & 0x0000007f0000007fULL;
  x = y | ((x - y * 100) << 16);
  y = ((x * 103) >> 10) & 0x000f000f000f000fULL;
  return y | ((x - y * 10) << 8);
}

/// Writes `v` (< 10^8) in decimal without leading zeros; writes 8 bytes (the bound's margin).
[[gnu::always_inline]] inline void put_small_uint(char*& p, uint32_t v) noexcept {
  if (v < 10) {
    *p++ = static_cast<char>('0' + v);
    return;
  }
  uint64_t d = digit_bytes(v);
  // Leading zero digits are zero bytes at the low end.
  auto zeros = static_cast<unsigned>(__builtin_ctzll(d)) / 8;
  uint64_t text = (d | (ones * '0')) >> (8 * zeros);
  std::memcpy(p, &text, 8);
  p += 8 - zeros;
}

[[gnu::always_inline]] inline void put_uint(char*& p, uint64_t v) noexcept {
  constexpr uint64_t e8 = 100000000;
  if constexpr (little_endian) {
    if (v < e8) {
      put_small_uint(p, static_cast<uint32_t>(v));
      return;
    }
    if (v < e8 * e8) { // up to 16 digits: timestamps in ms (13), offsets
      put_small_uint(p, static_cast<uint32_t>(v / e8));
      uint64_t text = digit_bytes(static_cast<uint32_t>(v % e8)) | (ones * '0');
      std::memcpy(p, &text, 8);
      p += 8;
      return;
    }
  }
  p = std::to_chars(p, p + 21, v).ptr;
}

[[gnu::always_inline]] inline void put_int(char*& p, uint64_t v) noexcept {
  put_uint(p, v);
}

[[gnu::always_inline]] inline void put_int(char*& p, int64_t v) noexcept {
  if (v < 0) {
    *p++ = '-';
    put_uint(p, uint64_t{0} - static_cast<uint64_t>(v));
  } else {
    put_uint(p, static_cast<uint64_t>(v));
  }
}

/// The high bit of each byte of `x` (8 string bytes, the first in the low byte) that needs more
/// than a copy: below 0x20, `"`, `\`, and (with `high`) 0x80 and up. Exact for the lowest set
/// byte (a borrow only makes bytes above a real match look like one), which is all the scan uses.
inline uint64_t special_bytes(uint64_t x, bool high) noexcept {
  uint64_t control = (x - ones * 0x20) & ~x;
  uint64_t q = x ^ (ones * '"');
  uint64_t quote = (q - ones) & ~q;
  uint64_t b = x ^ (ones * '\\');
  uint64_t backslash = (b - ones) & ~b;
  uint64_t m = control | quote | backslash;
  if (high)
    m |= x;
  return m & highs;
}

/// The `n` (1 to 7) bytes at `s` in the low bytes of a word, the rest zero: two overlapping loads
/// of fixed size rather than a byte loop through memory, whose 8-byte reload would wait for the
/// byte stores (a store-forwarding stall that cost more than the whole scan).
inline uint64_t load_tail(const char* s, size_t n) noexcept {
  if (n >= 4) {
    uint32_t lo, hi;
    std::memcpy(&lo, s, 4);
    std::memcpy(&hi, s + n - 4, 4);
    return uint64_t{lo} | (uint64_t{hi} << (8 * (n - 4)));
  }
  if (n >= 2) {
    uint16_t lo, hi;
    std::memcpy(&lo, s, 2);
    std::memcpy(&hi, s + n - 2, 2);
    return uint64_t{lo} | (uint64_t{hi} << (8 * (n - 2)));
  }
  return static_cast<unsigned char>(*s);
}

/// Copies plain bytes from `s` until the first one that needs attention (see `special_bytes`) or
/// `end`; returns where it stopped. Writes whole 8-byte blocks, up to 7 bytes past what it keeps
/// (the bound's margin), so most short strings take one or a few loads and stores.
inline const char* copy_plain(char*& p, const char* s, const char* end, bool high) noexcept {
  if constexpr (little_endian) {
    while (end - s >= 8) {
      uint64_t x;
      std::memcpy(&x, s, 8);
      std::memcpy(p, &x, 8);
      uint64_t m = special_bytes(x, high);
      if (m != 0) {
        auto k = static_cast<size_t>(__builtin_ctzll(m)) / 8;
        p += k;
        return s + k;
      }
      p += 8;
      s += 8;
    }
    if (s == end)
      return s;
    // The tail: padded with spaces (plain), so only its own bytes can stop the scan.
    auto n = static_cast<size_t>(end - s);
    uint64_t x = load_tail(s, n) | ((ones * ' ') << (8 * n));
    std::memcpy(p, &x, 8);
    uint64_t m = special_bytes(x, high);
    size_t k = m != 0 ? static_cast<size_t>(__builtin_ctzll(m)) / 8 : n;
    p += k;
    return s + k;
  } else {
    while (s < end) {
      auto c = static_cast<unsigned char>(*s);
      if (c < 0x20 || c == '"' || c == '\\' || (high && c >= 0x80))
        break;
      *p++ = *s++;
    }
    return s;
  }
}

void put_escaped_string(char*& p, std::string_view str) {
  *p++ = '"';
  const char* s = str.data();
  const char* const end = s + str.size();
  // Non-ASCII bytes need a look only while the string is not known to be valid UTF-8 (decided
  // once, at the first such byte); in an invalid string each sequence is checked on its own.
  enum class utf8 { unknown, valid, invalid } state = utf8::unknown;
  bool high = true;
  for (;;) {
    s = copy_plain(p, s, end, high);
    if (s == end)
      break;
    auto c = static_cast<unsigned char>(*s);
    if (c < 0x80) {
      put_escaped_ascii(p, c);
      ++s;
      continue;
    }
    if (state == utf8::unknown)
      state = simdjson::validate_utf8(str.data(), str.size()) ? utf8::valid : utf8::invalid;
    if (state == utf8::valid) {
      high = false; // copied as it is from here on
      continue;
    }
    size_t len = detail::utf8_sequence_length(str, static_cast<size_t>(s - str.data()));
    if (len == 0) {
      put(p, "\\ufffd");
      ++s;
    } else {
      put(p, s, len);
      s += len;
    }
  }
  *p++ = '"';
}

/// Writes `str` quoted when none of its bytes needs escaping or a UTF-8 check (the common case:
/// ids, keys, most values); returns false otherwise, having written scratch only past `p` (the
/// caller then takes `put_escaped_string`). One load per 8 bytes, the last one overlapping the
/// one before rather than a padded tail, and a single branch on all of them: for the short
/// strings of an event this beats the block loop of `copy_plain`, whose per-block exit test and
/// tail handling cost more than the copy.
[[gnu::always_inline]] inline bool put_plain_string(char*& p, std::string_view str) noexcept {
  if constexpr (!little_endian) {
    return false;
  } else {
    const char* s = str.data();
    size_t n = str.size();
    char* q = p;
    if (n < 8) {
      if (n == 0) {
        q[0] = '"';
        q[1] = '"';
        p = q + 2;
        return true;
      }
      uint64_t x = load_tail(s, n) | ((ones * ' ') << (8 * n));
      if (special_bytes(x, true) != 0)
        return false;
      q[0] = '"';
      std::memcpy(q + 1, &x, 8);
      q[1 + n] = '"';
      p = q + n + 2;
      return true;
    }
    uint64_t any = 0;
    size_t k = 0;
    for (; k + 8 < n; k += 8) {
      uint64_t x;
      std::memcpy(&x, s + k, 8);
      std::memcpy(q + 1 + k, &x, 8);
      any |= special_bytes(x, true);
    }
    uint64_t x;
    std::memcpy(&x, s + n - 8, 8);
    any |= special_bytes(x, true);
    if (any != 0)
      return false;
    q[0] = '"';
    std::memcpy(q + 1 + n - 8, &x, 8);
    q[1 + n] = '"';
    p = q + n + 2;
    return true;
  }
}

/// Strings up to this long try `put_plain_string` first; longer ones (where a late escape would
/// waste a whole scan) go to `put_escaped_string`, whose block loop suits them.
constexpr size_t max_plain_try = 64;

[[gnu::always_inline]] inline void put_json_string(char*& p, std::string_view str) {
  if (str.size() > max_plain_try || !put_plain_string(p, str))
    put_escaped_string(p, str);
}

void put_base64(char*& p, std::string_view bytes) {
  static constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  *p++ = '"';
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
                    alphabet[v & 63]};
    put(p, quad, 4);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = at(i) << 16;
    char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], '=', '='};
    put(p, quad, 4);
  } else if (rest == 2) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], '='};
    put(p, quad, 4);
  }
  *p++ = '"';
}

/// Writes a finite float in fmt's shortest round-trip form, `.0` added to integral values (see
/// `detail::append_json_double`); null when not finite.
template <class Float>
void put_floating(char*& p, Float value) {
  if (!std::isfinite(value)) {
    put(p, "null");
    return;
  }
  char* start = p;
  p = fmt::format_to(p, "{}", value);
  for (char* k = start; k < p; ++k)
    if (*k == '.' || *k == 'e' || *k == 'E')
      return;
  put(p, ".0");
}

bool render_value(char*& p, mp_reader& r, size_t depth);

bool is_envelope_key(std::string_view k) {
  switch (k.size()) {
    case 2:
      return k == "id" || k == "ts";
    case 4:
      return k == "type" || k == "node";
    case 6:
      return k == "offset";
    case 9:
      return k == "device_id" || k == "ingest_ts";
    case 10:
      return k == "profile_id";
    default:
      return false;
  }
}

// Renders the map entries that follow a map header of `count` pairs, each preceded by a comma
// when `first` is false. Entries with unusable keys are dropped, as are (with `skip_reserved`) the
// keys `append_json` already wrote for the envelope. Returns false on corrupt bytes, with the
// output cut back to before the entry that held them.
//
// Each key is read once, by the reader itself: a copy of the reader to peek at the key (and its
// copy back) cost a store-forwarding stall per key, the largest single cost of the loop.
bool render_entries(char*& p, mp_reader& r, uint32_t count, size_t depth, bool first,
                    bool skip_reserved) {
  for (uint32_t n = 0; n < count; ++n) {
    char* mark = p;
    mp_token k;
    if (!r.next_hot(k))
      return false;
    if (!first)
      *p++ = ',';
    switch (k.type) {
      case mp_type::str:
        if (skip_reserved && is_envelope_key(k.bytes)) {
          p = mark;
          if (!r.skip())
            return false;
          continue;
        }
        put_json_string(p, k.bytes);
        break;
      case mp_type::bin:
        put_json_string(p, k.bytes);
        break;
      case mp_type::uint:
        *p++ = '"';
        put_int(p, k.u);
        *p++ = '"';
        break;
      case mp_type::sint:
        *p++ = '"';
        put_int(p, k.i);
        *p++ = '"';
        break;
      default:
        // Not usable as a JSON key: the entry is dropped (key and value).
        p = mark;
        if (!r.skip_elements(k) || !r.skip())
          return false;
        continue;
    }
    *p++ = ':';
    if (!render_value(p, r, depth + 1)) {
      p = mark;
      return false;
    }
    first = false;
  }
  return true;
}

bool render_value(char*& p, mp_reader& r, size_t depth) {
  mp_token t;
  if (depth > max_render_depth) {
    put(p, "null");
    return r.skip();
  }
  if (!r.next_hot(t))
    return false;
  switch (t.type) {
    case mp_type::nil:
      put(p, "null");
      return true;
    case mp_type::boolean:
      if (t.b)
        put(p, "true");
      else
        put(p, "false");
      return true;
    case mp_type::uint:
      put_int(p, t.u);
      return true;
    case mp_type::sint:
      put_int(p, t.i);
      return true;
    case mp_type::float32:
      put_floating(p, static_cast<float>(t.d));
      return true;
    case mp_type::float64:
      put_floating(p, t.d);
      return true;
    case mp_type::str:
      put_json_string(p, t.bytes);
      return true;
    case mp_type::bin:
      put_base64(p, t.bytes);
      return true;
    case mp_type::ext:
      put(p, "null");
      return true;
    case mp_type::array:
      *p++ = '[';
      for (uint32_t n = 0; n < t.count; ++n) {
        if (n > 0)
          *p++ = ',';
        if (!render_value(p, r, depth + 1))
          return false;
      }
      *p++ = ']';
      return true;
    case mp_type::map:
      *p++ = '{';
      if (!render_entries(p, r, t.count, depth, true, false))
        return false;
      *p++ = '}';
      return true;
  }
  return false;
}

/// `render_json` for a reserved area: `dst` has room for `json_render_bound` bytes.
char* render_event(char* p, const event& e, std::string_view node) {
  put(p, "{\"id\":");
  put_json_string(p, e.id);
  put(p, ",\"type\":");
  put_json_string(p, e.type);
  put(p, ",\"device_id\":");
  put_json_string(p, e.device_id);
  if (!e.profile_id.empty()) {
    put(p, ",\"profile_id\":");
    put_json_string(p, e.profile_id);
  }
  put(p, ",\"ts\":");
  put_int(p, e.ts);
  put(p, ",\"ingest_ts\":");
  put_int(p, e.ingest_ts);
  put(p, ",\"offset\":");
  put_int(p, e.offset);
  if (!node.empty()) {
    put(p, ",\"node\":");
    put_json_string(p, node);
  }
  if (!e.attrs.empty()) {
    // Attributes named like an envelope field are left out (the envelope value is the one that
    // counts); corrupt attrs bytes end the attributes early, never the object.
    mp_reader r{e.attrs};
    mp_token header;
    if (r.next_hot(header) && header.type == mp_type::map)
      render_entries(p, r, header.count, 0, false, true);
  }
  *p++ = '}';
  return p;
}

} // namespace

size_t json_render_bound(const event& e, std::string_view node) noexcept {
  return string_expansion
           * (e.id.size() + e.type.size() + e.device_id.size() + e.profile_id.size() + node.size())
         + attrs_expansion * e.attrs.size() + fixed_overhead;
}

char* render_json(char* dst, const event& e, std::string_view node) {
  return render_event(dst, e, node);
}

void append_json_string(std::string& out, std::string_view s) {
  auto at = out.size();
  out.resize(at + string_expansion * s.size() + fixed_overhead);
  char* p = out.data() + at;
  put_json_string(p, s);
  out.resize(static_cast<size_t>(p - out.data()));
}

void append_json(std::string& out, const event& e, std::string_view node) {
  auto at = out.size();
  out.resize(at + json_render_bound(e, node));
  char* end = render_event(out.data() + at, e, node);
  out.resize(static_cast<size_t>(end - out.data()));
}

} // namespace sluice
