#pragma once

// Private helpers shared by the codec translation units (messages/codec_*.cpp). Not part of the
// public API: nothing outside messages/ includes this header.

#include "messages/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sluice::detail {

// -- msgpack byte reader ------------------------------------------------------------------------

/// Kinds of msgpack tokens, as read by `mp_reader`.
enum class mp_type : uint8_t { nil, boolean, uint, sint, float32, float64, str, bin, ext, array, map };

/// One msgpack token. For `str`, `bin` and `ext` the payload is in `bytes` (a view into the input);
/// for `array` and `map`, `count` is the number of elements (pairs for maps) that follow.
struct mp_token {
  mp_type type = mp_type::nil;
  bool b = false;
  uint64_t u = 0;
  int64_t i = 0;
  double d = 0;
  uint32_t count = 0;
  int8_t ext_type = 0;
  std::string_view bytes;
};

/// A forward-only, allocation-free reader over msgpack bytes (the format spec, nothing more).
///
/// Lifecycle: borrows the bytes it reads; no ownership, no state beyond the cursor. Every read is
/// bounds-checked, so corrupt or truncated input makes a read return false, never crash. After a
/// failed read, `error_offset()` tells where the problem was found: the offending byte, or the end
/// of the input when the bytes were truncated.
class mp_reader {
public:
  explicit mp_reader(std::string_view bytes) noexcept
    : begin_(reinterpret_cast<const uint8_t*>(bytes.data())),
      pos_(begin_),
      end_(begin_ + bytes.size()) {
    // nop
  }

  bool at_end() const noexcept {
    return pos_ == end_;
  }

  size_t offset() const noexcept {
    return static_cast<size_t>(pos_ - begin_);
  }

  const char* position() const noexcept {
    return reinterpret_cast<const char*>(pos_);
  }

  size_t error_offset() const noexcept {
    return error_offset_;
  }

  /// Reads one token; for str/bin/ext consumes the payload too. Returns false on truncated input
  /// or the never-used byte 0xc1.
  bool next(mp_token& t) noexcept;

  /// `next` with the most common tokens of attribute maps (positive fixint, fixstr) read inline,
  /// for the renderer's loop; other readers keep the out-of-line `next`, which suits them better
  /// (measured: log record decoding ~10% slower with this inline, NDJSON rendering ~12% faster).
  bool next_inline(mp_token& t) noexcept {
    if (pos_ != end_ && take_fixint_or_fixstr(t))
      return true;
    return next(t);
  }

  /// `next_inline` with the other fixed-size tokens inline too: negative fixint, nil, booleans,
  /// fixmap and fixarray headers, 8- to 64-bit integers and str8. For the JSON renderer, which
  /// reads every token of the attributes (a uint32 value or a map header through `next` cost a
  /// call each); anything else goes through `next`.
  [[gnu::always_inline]] bool next_hot(mp_token& t) noexcept {
    if (pos_ != end_) {
      if (take_fixint_or_fixstr(t))
        return true;
      uint8_t tag = *pos_;
      auto avail = static_cast<size_t>(end_ - pos_);
      if ((tag & 0xe0) == 0x80) { // fixmap 0x80-0x8f, fixarray 0x90-0x9f
        ++pos_;
        t.type = (tag & 0x10) != 0 ? mp_type::array : mp_type::map;
        t.count = tag & 0x0f;
        return true;
      }
      if (tag >= 0xe0) {
        ++pos_;
        t.type = mp_type::sint;
        t.i = static_cast<int8_t>(tag);
        return true;
      }
      switch (tag) {
        case 0xc0:
          ++pos_;
          t.type = mp_type::nil;
          return true;
        case 0xc2:
        case 0xc3:
          ++pos_;
          t.type = mp_type::boolean;
          t.b = tag == 0xc3;
          return true;
        case 0xcc:
          if (avail > 1) {
            t.type = mp_type::uint;
            t.u = pos_[1];
            pos_ += 2;
            return true;
          }
          break;
        case 0xcd:
          if (take_uint<uint16_t>(t, avail))
            return true;
          break;
        case 0xce:
          if (take_uint<uint32_t>(t, avail))
            return true;
          break;
        case 0xcf:
          if (take_uint<uint64_t>(t, avail))
            return true;
          break;
        case 0xd9:
          if (avail > 1 && avail - 2 >= pos_[1]) {
            t.type = mp_type::str;
            t.bytes = std::string_view(reinterpret_cast<const char*>(pos_ + 2), pos_[1]);
            pos_ += 2 + pos_[1];
            return true;
          }
          break;
        default:
          break;
      }
    }
    return next(t);
  }

  /// Skips one complete value (containers included) without recursion.
  bool skip() noexcept;

  /// Skips the elements of the container whose header `t` (just read) announced; nothing for
  /// other tokens. With the header read first, this is `skip` of the whole container.
  bool skip_elements(const mp_token& t) noexcept;

private:
  /// Skips `pending` complete values (containers included) without recursion.
  bool skip_values(uint64_t pending) noexcept;

  /// Takes a positive fixint, or a fixstr whose payload is all there; false (nothing consumed)
  /// for any other token. Needs `pos_ != end_`.
  [[gnu::always_inline]] bool take_fixint_or_fixstr(mp_token& t) noexcept {
    uint8_t tag = *pos_;
    if (tag <= 0x7f) {
      ++pos_;
      t.type = mp_type::uint;
      t.u = tag;
      return true;
    }
    if ((tag & 0xe0) == 0xa0) {
      size_t n = tag & 0x1f;
      if (static_cast<size_t>(end_ - pos_) > n) {
        t.type = mp_type::str;
        t.bytes = std::string_view(reinterpret_cast<const char*>(pos_ + 1), n);
        pos_ += 1 + n;
        return true;
      }
    }
    return false;
  }

  /// Takes a uint16/32/64 (tag at `pos_`, `avail` bytes left from it) when it is all there.
  template <class T>
  [[gnu::always_inline]] bool take_uint(mp_token& t, size_t avail) noexcept {
    if (avail <= sizeof(T))
      return false;
    ++pos_;
    t.type = mp_type::uint;
    t.u = load_be<T>();
    return true;
  }

  bool fail_at(const uint8_t* where) noexcept {
    error_offset_ = static_cast<size_t>(where - begin_);
    return false;
  }

  bool need(size_t n) const noexcept {
    return static_cast<size_t>(end_ - pos_) >= n;
  }

  template <class T>
  T load_be() noexcept {
    T result = 0;
    for (size_t k = 0; k < sizeof(T); ++k)
      result = static_cast<T>((static_cast<uint64_t>(result) << 8) | pos_[k]);
    pos_ += sizeof(T);
    return result;
  }

  bool read_payload(mp_token& t, size_t n) noexcept {
    if (!need(n))
      return fail_at(end_);
    t.bytes = std::string_view(reinterpret_cast<const char*>(pos_), n);
    pos_ += n;
    return true;
  }

  const uint8_t* begin_;
  const uint8_t* pos_;
  const uint8_t* end_;
  size_t error_offset_ = 0;
};

// -- msgpack writing ----------------------------------------------------------------------------

/// A msgpack-c output stream that appends to a `std::string`.
struct string_writer {
  std::string* out;
  void write(const char* data, size_t size) {
    out->append(data, size);
  }
};

/// Appends `value` as a msgpack float64. msgpack-c's `pack_double` would write integral values
/// such as 2.0 as integers, changing their type; the codecs keep JSON's and the client's types.
inline void append_float64(std::string& buf, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  char bytes[9];
  bytes[0] = static_cast<char>(0xcb);
  for (size_t k = 0; k < 8; ++k)
    bytes[1 + k] = static_cast<char>(bits >> (56 - 8 * k));
  buf.append(bytes, sizeof bytes);
}

/// Appends `value` as a msgpack float32 (see `append_float64`).
inline void append_float32(std::string& buf, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  char bytes[5];
  bytes[0] = static_cast<char>(0xca);
  for (size_t k = 0; k < 4; ++k)
    bytes[1 + k] = static_cast<char>(bits >> (24 - 8 * k));
  buf.append(bytes, sizeof bytes);
}

/// Size of the placeholder written for a container header whose element count is not known yet
/// (array32/map32 header: one tag byte plus a 4-byte count).
constexpr size_t container_placeholder_size = 5;

/// Reserves space for a container header at the end of `buf`; returns the position to pass to
/// `close_container`.
inline size_t open_container(std::string& buf) {
  size_t pos = buf.size();
  buf.append(container_placeholder_size, '\0');
  return pos;
}

/// Writes the smallest msgpack array/map header for `count` elements at `pos` (a placeholder made
/// by `open_container`) and moves the already written elements back over the unused bytes.
void close_container(std::string& buf, size_t pos, bool is_map, uint32_t count);

// -- text helpers -------------------------------------------------------------------------------

/// Length of the valid UTF-8 sequence starting at `s[i]` (1 for ASCII), or 0 when the bytes there
/// are not valid UTF-8 (overlong forms, surrogates, and code points past U+10FFFF are invalid).
inline size_t utf8_sequence_length(std::string_view s, size_t i) noexcept {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
    return k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  unsigned char c = byte(i);
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return cont(i + 1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    unsigned char lo = c == 0xe0 ? 0xa0 : 0x80; // no overlong forms
    unsigned char hi = c == 0xed ? 0x9f : 0xbf; // no surrogates
    return cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xf4 ? 0x8f : 0xbf; // nothing past U+10FFFF
    return cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

// -- misc ---------------------------------------------------------------------------------------

/// Appends a random UUID v4 in its canonical text form (36 chars, lowercase hex) to `out`.
void append_uuid_v4(std::string& out);

/// Appends `value` as a JSON number that reads back as a floating-point number (shortest
/// round-trip form, `.0` added to integral values); `null` when not finite.
void append_json_double(std::string& out, double value);

/// Appends `value` (a float32 read from msgpack) like `append_json_double`, in its shortest float
/// form so that `0.1f` renders as `0.1`.
void append_json_float(std::string& out, float value);

/// The attribute value a scalar token holds; `raw` (the value's complete encoding, may be empty
/// when the caller does not need it) stands in for kinds attr_value cannot carry.
attr_value to_attr_value(const mp_token& t, std::string_view raw);

} // namespace sluice::detail
