// Shared codec pieces: the msgpack reader, container headers, UUID generation, `find_attr` and
// `hex_value`.

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <msgpack.hpp>

#include <array>
#include <random>

namespace sluice::detail {

bool mp_reader::next(mp_token& t) noexcept {
  if (pos_ == end_)
    return fail_at(end_);
  const uint8_t* start = pos_;
  uint8_t tag = *pos_++;
  // Fixed-size families first: they cover the vast majority of tokens in practice.
  if (tag <= 0x7f) {
    t.type = mp_type::uint;
    t.u = tag;
    return true;
  }
  if (tag >= 0xe0) {
    t.type = mp_type::sint;
    t.i = static_cast<int8_t>(tag);
    return true;
  }
  if ((tag & 0xe0) == 0xa0) {
    t.type = mp_type::str;
    return read_payload(t, tag & 0x1f);
  }
  if ((tag & 0xf0) == 0x90) {
    t.type = mp_type::array;
    t.count = tag & 0x0f;
    return true;
  }
  if ((tag & 0xf0) == 0x80) {
    t.type = mp_type::map;
    t.count = tag & 0x0f;
    return true;
  }
  // Size of the fixed part that follows the tag byte for every remaining tag.
  static constexpr std::array<uint8_t, 32> fixed_sizes = {
    0, 0, 0, 0,  // c0 nil, c1 never used, c2 false, c3 true
    1, 2, 4,     // c4-c6 bin 8/16/32 (length)
    1, 2, 4,     // c7-c9 ext 8/16/32 (length; the type byte is read with the payload)
    4, 8,        // ca float32, cb float64
    1, 2, 4, 8,  // cc-cf uint 8/16/32/64
    1, 2, 4, 8,  // d0-d3 int 8/16/32/64
    1, 1, 1, 1, 1, // d4-d8 fixext 1/2/4/8/16 (type byte)
    1, 2, 4,     // d9-db str 8/16/32 (length)
    2, 4,        // dc-dd array 16/32
    2, 4,        // de-df map 16/32
  };
  if (tag == 0xc1)
    return fail_at(start);
  if (!need(fixed_sizes[tag - 0xc0]))
    return fail_at(end_);
  switch (tag) {
    case 0xc0:
      t.type = mp_type::nil;
      return true;
    case 0xc2:
    case 0xc3:
      t.type = mp_type::boolean;
      t.b = tag == 0xc3;
      return true;
    case 0xc4:
      t.type = mp_type::bin;
      return read_payload(t, load_be<uint8_t>());
    case 0xc5:
      t.type = mp_type::bin;
      return read_payload(t, load_be<uint16_t>());
    case 0xc6:
      t.type = mp_type::bin;
      return read_payload(t, load_be<uint32_t>());
    case 0xc7:
    case 0xc8:
    case 0xc9: {
      size_t n = tag == 0xc7 ? load_be<uint8_t>()
                             : (tag == 0xc8 ? load_be<uint16_t>() : load_be<uint32_t>());
      if (!need(1))
        return fail_at(end_);
      t.type = mp_type::ext;
      t.ext_type = static_cast<int8_t>(*pos_++);
      return read_payload(t, n);
    }
    case 0xca: {
      uint32_t bits = load_be<uint32_t>();
      float f;
      std::memcpy(&f, &bits, sizeof f);
      t.type = mp_type::float32;
      t.d = f;
      return true;
    }
    case 0xcb: {
      uint64_t bits = load_be<uint64_t>();
      std::memcpy(&t.d, &bits, sizeof t.d);
      t.type = mp_type::float64;
      return true;
    }
    case 0xcc:
      t.type = mp_type::uint;
      t.u = load_be<uint8_t>();
      return true;
    case 0xcd:
      t.type = mp_type::uint;
      t.u = load_be<uint16_t>();
      return true;
    case 0xce:
      t.type = mp_type::uint;
      t.u = load_be<uint32_t>();
      return true;
    case 0xcf:
      t.type = mp_type::uint;
      t.u = load_be<uint64_t>();
      return true;
    case 0xd0:
      t.type = mp_type::sint;
      t.i = static_cast<int8_t>(load_be<uint8_t>());
      return true;
    case 0xd1:
      t.type = mp_type::sint;
      t.i = static_cast<int16_t>(load_be<uint16_t>());
      return true;
    case 0xd2:
      t.type = mp_type::sint;
      t.i = static_cast<int32_t>(load_be<uint32_t>());
      return true;
    case 0xd3:
      t.type = mp_type::sint;
      t.i = static_cast<int64_t>(load_be<uint64_t>());
      return true;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      t.type = mp_type::ext;
      t.ext_type = static_cast<int8_t>(*pos_++);
      return read_payload(t, size_t{1} << (tag - 0xd4));
    case 0xd9:
      t.type = mp_type::str;
      return read_payload(t, load_be<uint8_t>());
    case 0xda:
      t.type = mp_type::str;
      return read_payload(t, load_be<uint16_t>());
    case 0xdb:
      t.type = mp_type::str;
      return read_payload(t, load_be<uint32_t>());
    case 0xdc:
      t.type = mp_type::array;
      t.count = load_be<uint16_t>();
      return true;
    case 0xdd:
      t.type = mp_type::array;
      t.count = load_be<uint32_t>();
      return true;
    case 0xde:
      t.type = mp_type::map;
      t.count = load_be<uint16_t>();
      return true;
    default: // 0xdf
      t.type = mp_type::map;
      t.count = load_be<uint32_t>();
      return true;
  }
}

bool mp_reader::skip() noexcept {
  return skip_values(1);
}

bool mp_reader::skip_elements(const mp_token& container) noexcept {
  return skip_values(container.type == mp_type::array ? uint64_t{container.count}
                     : container.type == mp_type::map ? uint64_t{2} * container.count
                                                      : 0);
}

bool mp_reader::skip_values(uint64_t pending) noexcept {
  // Every element takes at least one byte, so a bogus huge count ends at the input's end.
  mp_token t;
  while (pending > 0) {
    if (!next(t))
      return false;
    --pending;
    if (t.type == mp_type::array)
      pending += t.count;
    else if (t.type == mp_type::map)
      pending += uint64_t{2} * t.count;
  }
  return true;
}

void close_container(std::string& buf, size_t pos, bool is_map, uint32_t count) {
  std::array<char, container_placeholder_size> header;
  size_t header_size;
  if (count < 16) {
    header[0] = static_cast<char>((is_map ? 0x80 : 0x90) | count);
    header_size = 1;
  } else if (count <= 0xffff) {
    header[0] = static_cast<char>(is_map ? 0xde : 0xdc);
    header[1] = static_cast<char>(count >> 8);
    header[2] = static_cast<char>(count);
    header_size = 3;
  } else {
    header[0] = static_cast<char>(is_map ? 0xdf : 0xdd);
    for (size_t k = 0; k < 4; ++k)
      header[1 + k] = static_cast<char>(count >> (24 - 8 * k));
    header_size = 5;
  }
  size_t gap = container_placeholder_size - header_size;
  if (gap > 0) {
    char* body = buf.data() + pos + container_placeholder_size;
    size_t body_size = buf.size() - pos - container_placeholder_size;
    std::memmove(body - gap, body, body_size);
    buf.resize(buf.size() - gap);
  }
  std::memcpy(buf.data() + pos, header.data(), header_size);
}

void append_uuid_v4(std::string& out) {
  // Fast and unique enough for client-less ids: a per-thread 64-bit Mersenne Twister seeded once
  // from the OS. Not for secrets.
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64{seq};
  }()};
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & ~uint64_t{0xf000}) | uint64_t{0x4000};                 // version 4
  lo = (lo & ~(uint64_t{0xc} << 60)) | (uint64_t{0x8} << 60);       // variant 10xx
  static constexpr char hex[] = "0123456789abcdef";
  char text[36];
  size_t pos = 0;
  auto put = [&](uint64_t v, int nibbles, int shift) {
    for (int k = 0; k < nibbles; ++k)
      text[pos++] = hex[(v >> (shift - 4 * k)) & 0xf];
  };
  put(hi, 8, 60);
  text[pos++] = '-';
  put(hi, 4, 28);
  text[pos++] = '-';
  put(hi, 4, 12);
  text[pos++] = '-';
  put(lo, 4, 60);
  text[pos++] = '-';
  put(lo, 12, 44);
  out.append(text, sizeof text);
}

attr_value to_attr_value(const mp_token& t, std::string_view raw) {
  attr_value v;
  switch (t.type) {
    case mp_type::nil:
      v.type = attr_value::kind::nil;
      break;
    case mp_type::boolean:
      v.type = attr_value::kind::boolean;
      v.b = t.b;
      break;
    case mp_type::sint:
      v.type = attr_value::kind::integer;
      v.i = t.i;
      break;
    case mp_type::uint:
      if (t.u <= static_cast<uint64_t>(INT64_MAX)) {
        v.type = attr_value::kind::integer;
        v.i = static_cast<int64_t>(t.u);
      } else {
        // Does not fit the int64 of attr_value: hand back the raw encoding.
        v.type = attr_value::kind::other;
        v.s = raw;
      }
      break;
    case mp_type::float32:
    case mp_type::float64:
      v.type = attr_value::kind::floating;
      v.d = t.d;
      break;
    case mp_type::str:
      v.type = attr_value::kind::string;
      v.s = t.bytes;
      break;
    default:
      v.type = attr_value::kind::other;
      v.s = raw;
      break;
  }
  return v;
}

} // namespace sluice::detail

namespace sluice {

namespace {

using detail::mp_reader;
using detail::mp_token;
using detail::mp_type;
using detail::to_attr_value;


// Reads the value at `r`'s position (after its key), filling `out` with the complete raw bytes for
// `other` kinds.
bool read_leaf(mp_reader& r, attr_value& out) {
  const char* start = r.position();
  mp_reader probe = r;
  mp_token t;
  if (!probe.next(t))
    return false;
  if (t.type == mp_type::array || t.type == mp_type::map) {
    if (!r.skip())
      return false;
    out = to_attr_value(t, std::string_view(start, static_cast<size_t>(r.position() - start)));
    return true;
  }
  r = probe;
  out = to_attr_value(t, std::string_view(start, static_cast<size_t>(r.position() - start)));
  return true;
}

// Looks up `path` in the map whose header `r` is about to read. Keys may themselves contain dots:
// at each level a key equal to the whole remaining path matches, and a key equal to a prefix of it
// up to a dot descends into its value (when that value is a map). The first match in map order
// wins; a failed descent goes on with the next key.
std::optional<attr_value> find_in_map(mp_reader& r, std::string_view path) {
  mp_token header;
  if (!r.next(header) || header.type != mp_type::map)
    return std::nullopt;
  for (uint32_t n = 0; n < header.count; ++n) {
    mp_reader key_reader = r;
    mp_token key;
    if (!key_reader.next(key))
      return std::nullopt;
    if (key.type == mp_type::array || key.type == mp_type::map) {
      if (!r.skip()) // a container key: never a match, skip it whole
        return std::nullopt;
    } else {
      r = key_reader;
    }
    if (key.type == mp_type::str) {
      std::string_view k = key.bytes;
      if (k == path) {
        attr_value v;
        if (!read_leaf(r, v))
          return std::nullopt;
        return v;
      }
      if (path.size() > k.size() && path[k.size()] == '.' && path.compare(0, k.size(), k) == 0) {
        mp_reader nested = r;
        if (auto found = find_in_map(nested, path.substr(k.size() + 1)))
          return found;
      }
    }
    if (!r.skip())
      return std::nullopt;
  }
  return std::nullopt;
}

} // namespace

std::optional<attr_value> find_attr(std::string_view attrs, std::string_view path) {
  if (attrs.empty() || path.empty())
    return std::nullopt;
  mp_reader r{attrs};
  return find_in_map(r, path);
}

bool any_attr_key(std::string_view attrs, bool (*wanted)(std::string_view key, const void* ctx),
                  const void* ctx) {
  if (attrs.empty())
    return false;
  mp_reader r{attrs};
  mp_token t;
  if (!r.next(t) || t.type != mp_type::map)
    return true;
  for (uint32_t n = 0; n < t.count; ++n) {
    mp_token k;
    if (!r.next(k))
      return true;
    if (k.type == mp_type::str && wanted(k.bytes, ctx))
      return true;
    if (k.type == mp_type::array || k.type == mp_type::map)
      return true; // a container as key: unusual enough to take the caller's full path
    if (!r.skip())
      return true;
  }
  return !r.at_end();
}

int hex_value(char c) noexcept {
  // Value of the digits `a` / `A`.
  constexpr int first_letter_value = 10;
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + first_letter_value;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + first_letter_value;
  return -1;
}

} // namespace sluice
