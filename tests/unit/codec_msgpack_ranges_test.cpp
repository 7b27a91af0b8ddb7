// decode_msgpack in one pass (byte ranges into attrs, no msgpack-c object tree) against the
// decoder it replaced: the earlier implementation is kept below, in this file only, as the
// reference of a differential test over tens of thousands of generated bodies.
//
// What may differ, and only in `attrs`: the new decoder copies each attribute's bytes as the
// client encoded them, where the old one unpacked and packed them again with msgpack-c, which
// wrote the smallest encoding (fixstr for a short str sent as str8, a uint for a non-negative
// int64, fixext for a 4-byte ext8, fixmap headers...) and turned a float32 signalling NaN into a
// quiet one (float -> double -> float). So attrs are compared after packing them again the old
// way, and byte for byte whenever the generated body uses the smallest encodings and no float32
// signalling NaN. Events, rejections (index and text), batch ids, totals, errors and error
// offsets must be identical.

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <msgpack.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

// -- the decoder before the one-pass rewrite (messages/codec_msgpack.cpp, verbatim but for the
//    namespace and the function's name) ---------------------------------------------------------

namespace sluice::old_msgpack {

namespace {

using detail::mp_reader;
using detail::mp_token;
using detail::mp_type;

/// Nesting beyond which the whole batch is refused as malformed before looking at its events
/// (the same bound simdjson applies to JSON); `decode_limits::max_depth` rejects single events
/// well below it.
constexpr size_t max_parse_depth = 1024;

/// Containers around an attribute value inside a batch: wrapper map, events array, event map.
constexpr size_t envelope_depth = 3;

/// The msgpack timestamp extension type.
constexpr int8_t timestamp_ext_type = -1;

constexpr int64_t ns_per_ms = 1000000;
constexpr int64_t ms_per_second = 1000;
constexpr uint32_t ns_per_second = 1000000000;

std::string_view as_view(const msgpack::object& o) {
  return {o.via.str.ptr, o.via.str.size};
}

uint64_t load_be(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t k = 0; k < n; ++k)
    v = (v << 8) | static_cast<unsigned char>(p[k]);
  return v;
}

// Epoch ms of a msgpack timestamp extension payload.
std::optional<int64_t> timestamp_ms(const msgpack::object& o) {
  const char* p = o.via.ext.data();
  int64_t seconds;
  uint32_t nanos;
  switch (o.via.ext.size) {
    case 4:
      seconds = static_cast<int64_t>(load_be(p, 4));
      nanos = 0;
      break;
    case 8: {
      uint64_t v = load_be(p, 8);
      nanos = static_cast<uint32_t>(v >> 34);
      seconds = static_cast<int64_t>(v & ((uint64_t{1} << 34) - 1));
      break;
    }
    case 12:
      nanos = static_cast<uint32_t>(load_be(p, 4));
      seconds = static_cast<int64_t>(load_be(p + 4, 8));
      break;
    default:
      return std::nullopt;
  }
  constexpr int64_t max_seconds = std::numeric_limits<int64_t>::max() / ms_per_second - 1;
  if (nanos >= ns_per_second || seconds > max_seconds || seconds < -max_seconds)
    return std::nullopt;
  return seconds * ms_per_second + static_cast<int64_t>(nanos) / ns_per_ms;
}

bool is_utf8(std::string_view s) {
  return simdjson::validate_utf8(s.data(), s.size());
}

enum class attr_check { ok, too_deep, bad_key };

// Checks an attribute value: containers within `max_depth`, map keys all str.
attr_check check_attr(const msgpack::object& o, size_t depth, size_t max_depth) {
  if (o.type == msgpack::type::ARRAY) {
    if (depth + 1 > max_depth)
      return attr_check::too_deep;
    for (uint32_t k = 0; k < o.via.array.size; ++k)
      if (auto c = check_attr(o.via.array.ptr[k], depth + 1, max_depth); c != attr_check::ok)
        return c;
  } else if (o.type == msgpack::type::MAP) {
    if (depth + 1 > max_depth)
      return attr_check::too_deep;
    for (uint32_t k = 0; k < o.via.map.size; ++k) {
      const auto& kv = o.via.map.ptr[k];
      if (kv.key.type != msgpack::type::STR)
        return attr_check::bad_key;
      if (auto c = check_attr(kv.val, depth + 1, max_depth); c != attr_check::ok)
        return c;
    }
  }
  return attr_check::ok;
}

// Packs `o` like msgpack-c's packer, except that floats stay floats (see append_float64).
// Recursion is bounded: only values that passed `check_attr` get here.
void pack_object(msgpack::packer<detail::string_writer>& packer, std::string& buf,
                 const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::FLOAT32:
      detail::append_float32(buf, static_cast<float>(o.via.f64));
      return;
    case msgpack::type::FLOAT64:
      detail::append_float64(buf, o.via.f64);
      return;
    case msgpack::type::ARRAY:
      packer.pack_array(o.via.array.size);
      for (uint32_t k = 0; k < o.via.array.size; ++k)
        pack_object(packer, buf, o.via.array.ptr[k]);
      return;
    case msgpack::type::MAP:
      packer.pack_map(o.via.map.size);
      for (uint32_t k = 0; k < o.via.map.size; ++k) {
        pack_object(packer, buf, o.via.map.ptr[k].key);
        pack_object(packer, buf, o.via.map.ptr[k].val);
      }
      return;
    default:
      packer.pack(o);
  }
}

/// Decodes one unpacked batch. Lifetime: one call of `decode_msgpack`.
class msgpack_decoder {
public:
  msgpack_decoder(decoded_batch& result, int64_t ingest_ts, const decode_limits& limits,
                  std::string& scratch)
    : result_(result), ingest_ts_(ingest_ts), limits_(limits), scratch_(scratch) {
    // nop
  }

  /// Returns an empty string, or the batch-level problem.
  std::string decode_root(const msgpack::object& root) {
    if (root.type == msgpack::type::ARRAY)
      return decode_events(root);
    if (root.type != msgpack::type::MAP)
      return "the msgpack body must be an event map, an array of event maps, or a map with "
             "'events' (array) and 'batch'";
    const msgpack::object* events = nullptr;
    const msgpack::object* batch = nullptr;
    for (uint32_t k = 0; k < root.via.map.size; ++k) {
      const auto& kv = root.via.map.ptr[k];
      if (kv.key.type != msgpack::type::STR)
        continue;
      auto key = as_view(kv.key);
      if (key == "events") {
        if (events != nullptr)
          return "the msgpack body has more than one 'events' field";
        events = &kv.val;
      } else if (key == "batch") {
        batch = &kv.val;
      }
    }
    if (events == nullptr) {
      result_.total = 1;
      decode_one(root, 0);
      return {};
    }
    if (events->type != msgpack::type::ARRAY)
      return "'events' must be an array of event maps";
    if (batch != nullptr) {
      if (auto problem = read_batch_id(*batch); !problem.empty())
        return problem;
    }
    return decode_events(*events);
  }

private:
  std::string read_batch_id(const msgpack::object& o) {
    auto& id = result_.batch_id;
    switch (o.type) {
      case msgpack::type::STR:
        append_json_string(id, as_view(o));
        return {};
      case msgpack::type::POSITIVE_INTEGER:
        id = fmt::format_int(o.via.u64).str();
        return {};
      case msgpack::type::NEGATIVE_INTEGER:
        id = fmt::format_int(o.via.i64).str();
        return {};
      case msgpack::type::FLOAT32:
      case msgpack::type::FLOAT64:
        if (!std::isfinite(o.via.f64))
          return "'batch' must be a number or a string";
        detail::append_json_double(id, o.via.f64);
        return {};
      case msgpack::type::NIL:
        return {};
      default:
        return "'batch' must be a number or a string";
    }
  }

  std::string decode_events(const msgpack::object& array) {
    const uint32_t n = array.via.array.size;
    if (n > limits_.max_events)
      return too_many_events(limits_.max_events);
    result_.events.reserve(n);
    for (uint32_t index = 0; index < n; ++index) {
      const auto& element = array.via.array.ptr[index];
      if (element.type == msgpack::type::MAP)
        decode_one(element, index);
      else
        result_.rejected.push_back({index, "the event must be a msgpack map"});
    }
    result_.total = n;
    return {};
  }

public:
  static std::string too_many_events(size_t max_events) {
    return fmt::format(
      "the batch has more than {} events (the max_events limit); split it into smaller batches",
      max_events);
  }

private:
  void decode_one(const msgpack::object& map, uint32_t index) {
    event& e = result_.events.emplace_back();
    std::string reason = decode_event(map, e);
    if (!reason.empty()) {
      result_.events.pop_back();
      result_.rejected.push_back({index, std::move(reason)});
    }
  }

  std::string decode_event(const msgpack::object& map, event& e) {
    bool has_type = false;
    bool has_device_id = false;
    bool has_ts = false;
    std::string reason;
    auto note = [&reason](std::string problem) {
      if (reason.empty())
        reason = std::move(problem);
    };
    scratch_.clear();
    const size_t attrs_header = detail::open_container(scratch_);
    uint32_t attr_count = 0;
    detail::string_writer writer{&scratch_};
    msgpack::packer<detail::string_writer> packer{writer};
    for (uint32_t k = 0; k < map.via.map.size; ++k) {
      const auto& kv = map.via.map.ptr[k];
      if (kv.key.type != msgpack::type::STR) {
        note("the event's field names must be msgpack strs");
        continue;
      }
      auto key = as_view(kv.key);
      const auto& v = kv.val;
      if (key == "type" || key == "device_id") {
        (key == "type" ? has_type : has_device_id) = true;
        if (v.type == msgpack::type::STR && v.via.str.size > 0 && is_utf8(as_view(v)))
          (key == "type" ? e.type : e.device_id).assign(as_view(v));
        else
          note(fmt::format("field '{}' must be a non-empty UTF-8 string", key));
      } else if (key == "ts") {
        has_ts = true;
        if (auto ts = read_ts(v))
          e.ts = *ts;
        else
          note("field 'ts' must be epoch milliseconds or an RFC 3339 string");
      } else if (key == "id" || key == "profile_id") {
        auto& out = key == "id" ? e.id : e.profile_id;
        if (v.type == msgpack::type::STR && is_utf8(as_view(v)))
          out.assign(as_view(v));
        else if (v.type == msgpack::type::NIL)
          out.clear();
        else
          note(fmt::format("field '{}' must be a UTF-8 string or nil", key));
      } else {
        switch (check_attr(v, 0, limits_.max_depth)) {
          case attr_check::ok:
            break;
          case attr_check::too_deep:
            note(fmt::format("field '{}' is nested deeper than the max_depth limit ({})", key,
                             limits_.max_depth));
            continue;
          case attr_check::bad_key:
            note(fmt::format("field '{}' contains a map key that is not a string", key));
            continue;
        }
        packer.pack_str(static_cast<uint32_t>(key.size()));
        packer.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
        pack_object(packer, scratch_, v);
        ++attr_count;
      }
    }
    if (!has_type)
      note("missing field 'type'");
    else if (!has_device_id)
      note("missing field 'device_id'");
    else if (!has_ts)
      note("missing field 'ts'");
    if (!reason.empty())
      return reason;
    if (e.id.empty())
      detail::append_uuid_v4(e.id);
    if (attr_count > 0) {
      detail::close_container(scratch_, attrs_header, true, attr_count);
      e.attrs.assign(scratch_);
    }
    e.ingest_ts = ingest_ts_;
    return {};
  }

  static std::optional<int64_t> read_ts(const msgpack::object& v) {
    switch (v.type) {
      case msgpack::type::POSITIVE_INTEGER:
        if (v.via.u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          return std::nullopt;
        return static_cast<int64_t>(v.via.u64);
      case msgpack::type::NEGATIVE_INTEGER:
        return v.via.i64;
      case msgpack::type::STR:
        return parse_rfc3339_ms(as_view(v));
      case msgpack::type::EXT:
        if (v.via.ext.type() != timestamp_ext_type)
          return std::nullopt;
        return timestamp_ms(v);
      default:
        return std::nullopt;
    }
  }

  decoded_batch& result_;
  int64_t ingest_ts_;
  const decode_limits& limits_;
  std::string& scratch_;
};

void fail(decoded_batch& result, size_t offset, std::string message) {
  result.events.clear();
  result.rejected.clear();
  result.total = 0;
  result.error_offset = offset;
  result.error = std::move(message);
}

void fail_malformed(decoded_batch& result, size_t offset, std::string_view what) {
  fail(result, offset, fmt::format("malformed msgpack at byte {}: {}", offset, what));
}

// Locates a syntax error that msgpack-c reported without an offset.
void fail_unlocated(decoded_batch& result, std::string_view body) {
  mp_reader r{body};
  if (r.skip()) {
    fail_malformed(result, 0, "the body could not be unpacked");
    return;
  }
  size_t at = r.error_offset();
  fail_malformed(result, at,
                 at >= body.size() ? "the body ends in the middle of a value"
                                   : "invalid type byte 0xc1");
}

} // namespace

decoded_batch decode(std::string_view body, int64_t ingest_ts,
                             const decode_limits& limits) {
  thread_local std::string scratch;
  decoded_batch result;
  if (body.empty()) {
    fail_malformed(result, 0, "the body is empty");
    return result;
  }
  {
    // Refuse an oversized top-level array before unpacking it.
    mp_reader r{body};
    mp_token t;
    if (r.next(t) && t.type == mp_type::array && t.count > limits.max_events) {
      fail(result, 0, msgpack_decoder::too_many_events(limits.max_events));
      return result;
    }
  }
  // No container can hold more elements than there are bytes left, so bounding counts by the body
  // size stops a few bytes claiming 2^32 elements from allocating gigabytes.
  const size_t depth = std::max(max_parse_depth, limits.max_depth + envelope_depth);
  const msgpack::unpack_limit unpack_limits{body.size(), body.size() / 2, body.size(),
                                            body.size(), body.size(), depth};
  msgpack::zone zone;
  msgpack::object root;
  size_t consumed = 0;
  try {
    bool referenced = false;
    auto reference_all = [](msgpack::type::object_type, size_t, void*) { return true; };
    root = msgpack::unpack(zone, body.data(), body.size(), consumed, referenced, reference_all,
                           nullptr, unpack_limits);
  } catch (const msgpack::depth_size_overflow&) {
    fail(result, 0,
         fmt::format("malformed msgpack: values are nested deeper than {} levels", depth));
    return result;
  } catch (const msgpack::unpack_error&) {
    fail_unlocated(result, body);
    return result;
  } catch (const std::bad_alloc&) {
    fail(result, 0, "the msgpack body is too large to decode");
    return result;
  }
  if (consumed < body.size()) {
    fail_malformed(result, consumed, "unexpected bytes after the msgpack value");
    return result;
  }
  msgpack_decoder decoder{result, ingest_ts, limits, scratch};
  if (auto problem = decoder.decode_root(root); !problem.empty())
    fail(result, 0, std::move(problem));
  return result;
}

} // namespace sluice::old_msgpack

// -- generated bodies ----------------------------------------------------------------------------

namespace {

using namespace sluice;
using sluice::test::mp_builder;
using sluice::test::rejection_for;

constexpr int64_t ingest = 1732269600123;

/// Writes msgpack by hand so that every encoding form can be chosen: `smallest` picks the form
/// msgpack-c's packer writes, otherwise a random form that can hold the value.
class body_writer {
public:
  body_writer(std::mt19937_64& rng, bool smallest) : rng_(rng), smallest_(smallest) {
    // nop
  }

  std::string bytes;
  /// False once something was written that the old decoder would not copy byte for byte.
  bool canonical = true;

  void byte(uint8_t b) {
    bytes += static_cast<char>(b);
  }

  void be(uint64_t v, size_t n) {
    for (size_t k = n; k-- > 0;)
      byte(static_cast<uint8_t>(v >> (8 * k)));
  }

  void nil() {
    byte(0xc0);
  }

  void boolean(bool b) {
    byte(b ? 0xc3 : 0xc2);
  }

  void uint(uint64_t v) {
    int form = smallest_form(v < 128 ? 0 : v < 256 ? 1 : v < 65536 ? 2 : v < 4294967296u ? 3 : 4, 4);
    if (!smallest_ && form >= 1 && coin(4)) {
      // A non-negative value in a signed form that holds it.
      uint64_t max[] = {0, 127, 32767, 2147483647, 9223372036854775807u};
      if (v <= max[form]) {
        byte(static_cast<uint8_t>(0xd0 + form - 1));
        be(v, size_t{1} << (form - 1));
        canonical = false;
        return;
      }
    }
    if (form == 0) {
      byte(static_cast<uint8_t>(v));
      return;
    }
    byte(static_cast<uint8_t>(0xcc + form - 1));
    be(v, size_t{1} << (form - 1));
  }

  void sint(int64_t v) {
    if (v >= 0)
      return uint(static_cast<uint64_t>(v));
    int least = v >= -32 ? 0 : v >= -128 ? 1 : v >= -32768 ? 2 : v >= -2147483648LL ? 3 : 4;
    int form = smallest_form(least, 4);
    if (form == 0) {
      byte(static_cast<uint8_t>(v));
      return;
    }
    byte(static_cast<uint8_t>(0xd0 + form - 1));
    be(static_cast<uint64_t>(v), size_t{1} << (form - 1));
  }

  void f32(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    byte(0xca);
    be(bits, 4);
  }

  void f32_bits(uint32_t bits) {
    byte(0xca);
    be(bits, 4);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    if (std::isnan(f) && (bits & 0x00400000u) == 0)
      canonical = false; // a signalling NaN: the old decoder made it quiet
  }

  void f64(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    byte(0xcb);
    be(bits, 8);
  }

  void str(std::string_view s) {
    size_t n = s.size();
    int form = smallest_form(n < 32 ? 0 : n < 256 ? 1 : n < 65536 ? 2 : 3, 3);
    if (form == 0)
      byte(static_cast<uint8_t>(0xa0 | n));
    else {
      byte(static_cast<uint8_t>(0xd9 + form - 1));
      be(n, size_t{1} << (form - 1));
    }
    bytes.append(s);
  }

  void bin(std::string_view s) {
    size_t n = s.size();
    int form = smallest_form(n < 256 ? 1 : n < 65536 ? 2 : 3, 3);
    byte(static_cast<uint8_t>(0xc4 + form - 1));
    be(n, size_t{1} << (form - 1));
    bytes.append(s);
  }

  void ext(int8_t type, std::string_view payload) {
    size_t n = payload.size();
    const bool fixed = n == 1 || n == 2 || n == 4 || n == 8 || n == 16;
    if (fixed && (smallest_ || coin(2))) {
      int log2 = n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : n == 8 ? 3 : 4;
      byte(static_cast<uint8_t>(0xd4 + log2));
    } else {
      int form = smallest_form(n < 256 ? 1 : n < 65536 ? 2 : 3, 3);
      if (fixed)
        canonical = false;
      byte(static_cast<uint8_t>(0xc7 + form - 1));
      be(n, size_t{1} << (form - 1));
    }
    byte(static_cast<uint8_t>(type));
    bytes.append(payload);
  }

  void array(uint32_t n) {
    header(n, 0x90, 0xdc);
  }

  void map(uint32_t n) {
    header(n, 0x80, 0xde);
  }

  bool coin(int one_in) {
    return std::uniform_int_distribution<int>(0, one_in - 1)(rng_) == 0;
  }

private:
  void header(uint32_t n, uint8_t fix, uint8_t wide) {
    int form = smallest_form(n < 16 ? 0 : n < 65536 ? 1 : 2, 2);
    if (form == 0) {
      byte(static_cast<uint8_t>(fix | n));
    } else {
      byte(static_cast<uint8_t>(wide + form - 1));
      be(n, form == 1 ? 2 : 4);
    }
  }

  // The smallest form `least`, or (not smallest_) sometimes a wider one up to `widest`.
  int smallest_form(int least, int widest) {
    if (smallest_ || least == widest || !coin(3))
      return least;
    canonical = false;
    return std::uniform_int_distribution<int>(least + 1, widest)(rng_);
  }

  std::mt19937_64& rng_;
  bool smallest_;
};

/// Random bodies of every shape the decoders distinguish.
class body_generator {
public:
  explicit body_generator(uint64_t seed) : rng_(seed) {
    // nop
  }

  int pick(int n) {
    return std::uniform_int_distribution<int>(0, n - 1)(rng_);
  }

  bool coin(int one_in) {
    return pick(one_in) == 0;
  }

  std::string text(size_t max_len) {
    static const char* const pieces[] = {"a", "play", "é", "日本", "\xff", "\xc3", "\xed\xa0\x80",
                                         "\xf4\x90\x80\x80", "0", "-", " ", "\xf0\x9f\x98\x80",
                                         "\xc0\xaf"};
    std::string s;
    size_t len = static_cast<size_t>(pick(static_cast<int>(max_len) + 1));
    bool ascii = !coin(4);
    while (s.size() < len)
      s += ascii ? std::string(1, static_cast<char>('a' + pick(26))) : pieces[pick(13)];
    return s;
  }

  std::string long_text() {
    size_t sizes[] = {31, 32, 255, 256, 300, 65535, 65536, 70000};
    size_t n = sizes[pick(8)];
    std::string s(n, 'x');
    if (coin(3))
      s[static_cast<size_t>(pick(static_cast<int>(n)))] = '\xfe';
    return s;
  }

  /// A value; containers nest up to `levels` more levels.
  void value(body_writer& w, int levels) {
    switch (pick(levels > 0 ? 17 : 13)) {
      case 0:
        return w.nil();
      case 1:
        return w.boolean(coin(2));
      case 2:
        return w.uint(random_uint());
      case 3:
        return w.sint(-static_cast<int64_t>(random_uint() >> 1) - 1);
      case 4:
        return w.f32(static_cast<float>(pick(2000) - 1000) / 8.0f);
      case 5:
        if (coin(3)) {
          uint32_t special[] = {0x7f800001u, 0x7fc00000u, 0x7f800000u, 0xff800000u, 0x80000000u,
                                0x00000001u};
          return w.f32_bits(special[pick(6)]);
        }
        return w.f32(0.1f * static_cast<float>(pick(100)));
      case 6:
        return w.f64(coin(4) ? std::nan("") : static_cast<double>(pick(100000)) / 7.0);
      case 7:
        return w.str(text(12));
      case 8:
        return w.str(coin(8) ? long_text() : text(40));
      case 9: {
        std::string payload(static_cast<size_t>(pick(3) == 0 ? 300 : pick(20)), '\x01');
        return w.bin(payload);
      }
      case 10: {
        size_t sizes[] = {0, 1, 2, 3, 4, 8, 12, 16, 17, 300};
        std::string payload(sizes[pick(10)], '\x02');
        return w.ext(static_cast<int8_t>(pick(256) - 128), payload);
      }
      case 11:
        return w.sint(static_cast<int64_t>(pick(200)) - 100);
      case 12:
        return w.uint(static_cast<uint64_t>(pick(300)));
      case 13:
      case 14: {
        uint32_t n = coin(10) ? 16 + static_cast<uint32_t>(pick(4)) : static_cast<uint32_t>(pick(4));
        w.array(n);
        for (uint32_t k = 0; k < n; ++k)
          value(w, levels - 1);
        return;
      }
      default: {
        uint32_t n = coin(10) ? 16 + static_cast<uint32_t>(pick(3)) : static_cast<uint32_t>(pick(4));
        w.map(n);
        for (uint32_t k = 0; k < n; ++k) {
          if (coin(25))
            value(w, levels - 1); // a key that is not a str (or is one, by chance)
          else
            w.str(text(6));
          value(w, levels - 1);
        }
        return;
      }
    }
  }

  /// Nested arrays/maps `levels` deep around a scalar.
  void nested(body_writer& w, int levels) {
    for (int k = 0; k < levels; ++k) {
      if (coin(2)) {
        w.array(1);
      } else {
        w.map(1);
        w.str("k");
      }
    }
    w.nil();
  }

  uint64_t random_uint() {
    switch (pick(6)) {
      case 0:
        return static_cast<uint64_t>(pick(128));
      case 1:
        return 128 + static_cast<uint64_t>(pick(128));
      case 2:
        return 256 + static_cast<uint64_t>(pick(65000));
      case 3:
        return 65536 + (rng_() & 0xffffffu);
      case 4:
        return rng_();
      default:
        return 4294967296u + (rng_() & 0xffffffffffu);
    }
  }

  void ts(body_writer& w) {
    switch (pick(12)) {
      case 0:
        return w.sint(-static_cast<int64_t>(pick(100000)));
      case 1:
        return w.uint(std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(pick(2)));
      case 2:
        return w.str("2024-11-22T10:00:00.5Z");
      case 3:
        return w.str(coin(2) ? "2024-13-22T10:00:00Z" : "yesterday");
      case 4: {
        std::string p("\x67\x40\x56\x20", 4);
        return w.ext(-1, p);
      }
      case 5: {
        uint64_t v = (uint64_t{250000000} << 34) | 1732269600u;
        std::string p;
        for (int k = 7; k >= 0; --k)
          p += static_cast<char>(v >> (8 * k));
        return w.ext(-1, p);
      }
      case 6: {
        std::string p(12, '\0');
        p[11] = 5;
        if (coin(3))
          p[0] = '\x7f'; // nanoseconds out of range
        if (coin(3))
          p[4] = '\x7f'; // seconds out of range
        return w.ext(-1, p);
      }
      case 7:
        return w.ext(coin(2) ? 5 : -1, std::string(coin(2) ? 4 : 3, '\x01'));
      case 8:
        return w.f64(5.0);
      case 9:
        return value(w, 1);
      default:
        return w.uint(1700000000000 + static_cast<uint64_t>(pick(100000)));
    }
  }

  void envelope_string(body_writer& w, bool may_be_empty_or_nil) {
    switch (pick(10)) {
      case 0:
        return w.str("");
      case 1:
        return w.str(text(10)); // maybe not UTF-8
      case 2:
        return may_be_empty_or_nil ? w.nil() : w.uint(5);
      case 3:
        return value(w, 1);
      case 4:
        return w.str(std::string(static_cast<size_t>(20 + pick(20)), 'd') + "\xc3\xa9");
      default:
        return w.str("v" + std::to_string(pick(1000)));
    }
  }

  /// An event map: the envelope fields (sometimes missing, mistyped, repeated) and attributes.
  void event(body_writer& w, int attr_levels) {
    struct field_writer {
      std::string name;
      int kind;
    };
    std::vector<field_writer> fields;
    bool sloppy = coin(3);
    auto want = [&](int one_in_missing) { return !sloppy || !coin(one_in_missing); };
    if (want(4))
      fields.push_back({"type", 0});
    if (want(4))
      fields.push_back({"device_id", 0});
    if (want(4))
      fields.push_back({"ts", 1});
    if (coin(2))
      fields.push_back({"id", 2});
    if (coin(2))
      fields.push_back({"profile_id", 2});
    int attrs = pick(coin(20) ? 20 : 5);
    for (int k = 0; k < attrs; ++k)
      fields.push_back({"a" + std::to_string(k), 3});
    if (sloppy && coin(4))
      fields.push_back({fields.empty() ? "type" : fields[static_cast<size_t>(pick(static_cast<int>(fields.size())))].name, 0});
    if (sloppy && coin(6))
      fields.push_back({"", 4}); // a key that is not a str
    std::shuffle(fields.begin(), fields.end(), rng_);
    w.map(static_cast<uint32_t>(fields.size()));
    for (const auto& f : fields) {
      if (f.kind == 4) {
        value(w, 1);
        value(w, 1);
        continue;
      }
      w.str(f.name);
      switch (f.kind) {
        case 0:
          if (f.name == "ts")
            ts(w);
          else
            envelope_string(w, false);
          break;
        case 1:
          ts(w);
          break;
        case 2:
          envelope_string(w, true);
          break;
        default:
          if (coin(30))
            nested(w, attr_levels - 1 + pick(3)); // around the max_depth limit
          else
            value(w, std::min(attr_levels, 3));
      }
    }
  }

  void events_array(body_writer& w, int attr_levels, uint32_t n) {
    w.array(n);
    for (uint32_t k = 0; k < n; ++k) {
      if (coin(15))
        value(w, 2); // not a map, mostly
      else
        event(w, attr_levels);
    }
  }

  void batch_id(body_writer& w) {
    switch (pick(9)) {
      case 0:
        return w.str(text(8));
      case 1:
        return w.uint(random_uint());
      case 2:
        return w.sint(-5);
      case 3:
        return w.f64(coin(2) ? 2.5 : std::numeric_limits<double>::infinity());
      case 4:
        return w.f32(coin(2) ? 0.1f : std::nanf(""));
      case 5:
        return w.nil();
      default:
        return value(w, 1);
    }
  }

  /// A whole body: mostly well-formed; `max_depth` is the limit the decoders run with.
  std::string body(size_t max_depth, bool* canonical) {
    body_writer w{rng_, coin(2)};
    const int attr_levels = static_cast<int>(std::min<size_t>(max_depth, 6));
    switch (pick(8)) {
      case 0:
      case 1:
        events_array(w, attr_levels, static_cast<uint32_t>(pick(coin(10) ? 40 : 6)));
        break;
      case 2:
        event(w, attr_levels);
        break;
      case 3:
        value(w, 3); // some root that is no batch, or by chance is
        break;
      default: {
        // The wrapper, with extra keys, repeated or missing `events`, `batch` in every form.
        std::vector<int> keys;
        keys.push_back(0);
        if (coin(2))
          keys.push_back(1);
        if (coin(6))
          keys.push_back(0);
        if (coin(8))
          keys.erase(keys.begin());
        if (coin(4))
          keys.push_back(2);
        if (coin(8))
          keys.push_back(3);
        if (coin(6))
          keys.push_back(1);
        std::shuffle(keys.begin(), keys.end(), rng_);
        w.map(static_cast<uint32_t>(keys.size()));
        for (int key : keys) {
          switch (key) {
            case 0:
              w.str("events");
              if (coin(12))
                value(w, 2);
              else
                events_array(w, attr_levels, static_cast<uint32_t>(pick(8)));
              break;
            case 1:
              w.str("batch");
              batch_id(w);
              break;
            case 2:
              w.str(coin(2) ? "type" : text(6));
              value(w, 2);
              break;
            default:
              value(w, 1); // a non-str key
              value(w, 1);
          }
        }
      }
    }
    *canonical = w.canonical;
    return std::move(w.bytes);
  }

private:
  std::mt19937_64 rng_;
};

/// `attrs` packed again the old decoder's way (smallest encodings, float32 via double).
std::string repacked(const std::string& attrs) {
  if (attrs.empty())
    return attrs;
  msgpack::object_handle oh = msgpack::unpack(attrs.data(), attrs.size());
  const msgpack::object& map = oh.get();
  std::string out;
  size_t header = detail::open_container(out);
  detail::string_writer writer{&out};
  msgpack::packer<detail::string_writer> packer{writer};
  for (uint32_t k = 0; k < map.via.map.size; ++k) {
    old_msgpack::pack_object(packer, out, map.via.map.ptr[k].key);
    old_msgpack::pack_object(packer, out, map.via.map.ptr[k].val);
  }
  detail::close_container(out, header, true, map.via.map.size);
  return out;
}

bool looks_generated(const std::string& id) {
  return id.size() == 36 && id[8] == '-' && id[13] == '-' && id[14] == '4' && id[18] == '-'
         && id[23] == '-';
}

/// Empty when `fresh` (the one-pass decoder) and `old` agree on `body`; else what differs.
std::string difference(const decoded_batch& fresh, const decoded_batch& old, bool canonical) {
  if (fresh.error != old.error)
    return "error: '" + fresh.error + "' vs old '" + old.error + "'";
  if (fresh.error_offset != old.error_offset)
    return fmt::format("error_offset {} vs old {}", fresh.error_offset, old.error_offset);
  if (fresh.batch_id != old.batch_id)
    return "batch_id " + fresh.batch_id + " vs old " + old.batch_id;
  if (fresh.total != old.total)
    return fmt::format("total {} vs old {}", fresh.total, old.total);
  if (fresh.rejected.size() != old.rejected.size())
    return fmt::format("{} rejections vs old {}", fresh.rejected.size(), old.rejected.size());
  for (size_t k = 0; k < old.rejected.size(); ++k)
    if (fresh.rejected[k].index != old.rejected[k].index
        || fresh.rejected[k].error != old.rejected[k].error)
      return fmt::format("rejection {}: {} '{}' vs old {} '{}'", k, fresh.rejected[k].index,
                         fresh.rejected[k].error, old.rejected[k].index, old.rejected[k].error);
  if (fresh.events.size() != old.events.size())
    return fmt::format("{} events vs old {}", fresh.events.size(), old.events.size());
  for (size_t k = 0; k < old.events.size(); ++k) {
    const event& a = fresh.events[k];
    const event& b = old.events[k];
    if (a.id != b.id && !(looks_generated(a.id) && looks_generated(b.id)))
      return fmt::format("event {}: id '{}' vs old '{}'", k, a.id, b.id);
    if (a.type != b.type || a.device_id != b.device_id || a.profile_id != b.profile_id
        || a.ts != b.ts || a.ingest_ts != b.ingest_ts || a.offset != b.offset
        || a.origin != b.origin)
      return fmt::format("event {}: envelope differs", k);
    if (repacked(a.attrs) != b.attrs)
      return fmt::format("event {}: attrs {} vs old {}", k, test::mp_text(a.attrs),
                         test::mp_text(b.attrs));
    if (canonical && a.attrs != b.attrs)
      return fmt::format("event {}: attrs bytes differ from the old ones (same value)", k);
  }
  return {};
}

struct tally {
  size_t bodies = 0;
  size_t errors = 0;
  size_t with_events = 0;
  size_t with_rejections = 0;
  size_t attrs_bytes_differ = 0;
};

void compare(std::string_view body, const decode_limits& limits, bool canonical, tally& t) {
  auto fresh = decode_msgpack(body, ingest, limits);
  auto old = old_msgpack::decode(body, ingest, limits);
  ++t.bodies;
  t.errors += fresh.ok() ? 0 : 1;
  t.with_events += fresh.events.empty() ? 0 : 1;
  t.with_rejections += fresh.rejected.empty() ? 0 : 1;
  for (size_t k = 0; k < fresh.events.size() && k < old.events.size(); ++k)
    t.attrs_bytes_differ += fresh.events[k].attrs != old.events[k].attrs ? 1 : 0;
  auto diff = difference(fresh, old, canonical);
  ASSERT_TRUE(diff.empty()) << diff << "\nbody (" << body.size() << " bytes, max_depth "
                            << limits.max_depth << ", max_events " << limits.max_events
                            << "): " << fmt::format("{:02x}", fmt::join(body, " "));
}

void print(const char* what, const tally& t) {
  std::printf("%s: %zu bodies, %zu batch errors, %zu with events, %zu with rejections, %zu events "
              "whose attrs bytes differ from the old ones\n",
              what, t.bodies, t.errors, t.with_events, t.with_rejections, t.attrs_bytes_differ);
}

decode_limits limits_for(body_generator& g) {
  decode_limits limits;
  switch (g.pick(4)) {
    case 0:
      limits.max_depth = static_cast<size_t>(g.pick(4));
      break;
    case 1:
      limits.max_depth = 1500; // the parse depth becomes 1503
      break;
    default:
      break;
  }
  if (g.coin(5))
    limits.max_events = static_cast<size_t>(g.pick(6));
  return limits;
}

} // namespace

TEST(msgpack_one_pass_decoder, decodes_generated_bodies_exactly_as_the_msgpack_c_decoder_did) {
  body_generator g{20261122};
  tally t;
  for (int k = 0; k < 30000; ++k) {
    bool canonical = true;
    auto limits = limits_for(g);
    std::string body = g.body(limits.max_depth, &canonical);
    compare(body, limits, canonical, t);
    if (HasFatalFailure())
      return;
  }
  print("generated", t);
  // The generator reaches every outcome.
  EXPECT_GT(t.errors, 1000u);
  EXPECT_GT(t.with_events, 5000u);
  EXPECT_GT(t.with_rejections, 5000u);
  EXPECT_GT(t.attrs_bytes_differ, 100u) << "non-smallest encodings are kept as sent";
}

TEST(msgpack_one_pass_decoder, agrees_with_the_old_decoder_on_mutated_bodies) {
  // Random byte changes, insertions (0xc1 among them), deletions and huge claimed counts.
  body_generator g{7};
  tally t;
  for (int k = 0; k < 20000; ++k) {
    bool canonical = true;
    auto limits = limits_for(g);
    std::string body = g.body(limits.max_depth, &canonical);
    if (body.empty())
      continue;
    int edits = 1 + g.pick(3);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      size_t at = static_cast<size_t>(g.pick(static_cast<int>(body.size())));
      switch (g.pick(5)) {
        case 0:
          body[at] = static_cast<char>(g.pick(256));
          break;
        case 1:
          body.insert(at, 1, '\xc1');
          break;
        case 2:
          body.erase(at, 1);
          break;
        case 3:
          body.insert(at, g.coin(2) ? std::string("\xdd\xff\xff\xff\xff", 5)
                                    : std::string("\xdf\x00\x01\x00\x00", 5));
          break;
        default:
          body[at] = static_cast<char>(static_cast<unsigned char>(body[at]) ^ 0x10);
      }
    }
    compare(body, limits, false, t);
    if (HasFatalFailure())
      return;
  }
  print("mutated", t);
  EXPECT_GT(t.errors, 5000u);
  EXPECT_GT(t.with_events, 500u);
}

TEST(msgpack_one_pass_decoder, agrees_with_the_old_decoder_on_every_truncation_of_small_bodies) {
  body_generator g{99};
  tally t;
  for (int k = 0; k < 300; ++k) {
    bool canonical = true;
    auto limits = limits_for(g);
    std::string body = g.body(limits.max_depth, &canonical);
    if (body.size() > 400)
      continue;
    for (size_t cut = 0; cut <= body.size(); ++cut) {
      compare(std::string_view{body}.substr(0, cut), limits, canonical, t);
      if (HasFatalFailure())
        return;
    }
  }
  print("truncated", t);
  EXPECT_GT(t.bodies, 5000u);
}

TEST(msgpack_one_pass_decoder, agrees_with_the_old_decoder_around_the_parse_depth_limit) {
  // 1024 levels (or max_depth + 3) is where the whole body becomes malformed; around it, with the
  // deep value in the events, after a syntax error, and behind a count that cannot fit.
  tally t;
  for (size_t max_depth : {size_t{32}, size_t{1500}}) {
    decode_limits limits;
    limits.max_depth = max_depth;
    const size_t parse_depth = std::max<size_t>(1024, max_depth + 3);
    for (size_t levels = parse_depth - 5; levels <= parse_depth + 2; ++levels) {
      for (int shape = 0; shape < 5; ++shape) {
        std::string body;
        if (shape == 0) {
          body.assign(levels, '\x91');
          body += '\xc0';
        } else {
          // [ {type, device_id, ts, deep: [[...]]} ] nested to `levels` in all.
          mp_builder b;
          b.array(1).map(4).str("type").str("t").str("device_id").str("d").str("ts").val(1);
          b.str("deep");
          body = b.bytes;
          body.append(levels - 2, '\x91');
          body += '\xc0';
          if (shape == 2)
            body.back() = '\xc1'; // a syntax error after the deepest container
          if (shape == 3)
            body.insert(1, "\xc1"); // a syntax error before it
          if (shape == 4)
            body.insert(3 + 4 + 1 + 1, "\xdd\xff\xff\xff\xff"); // a count beyond the body first
        }
        compare(body, limits, true, t);
        if (HasFatalFailure())
          return;
      }
    }
  }
}

TEST(msgpack_one_pass_decoder, copies_attribute_bytes_as_sent_and_keeps_float32_bits) {
  // str8 for a 2-byte str, an int64 holding 5, a 4-byte ext8, a float32 signalling NaN: the old
  // decoder packed these as fixstr, positive fixint, fixext4 and a quiet NaN.
  mp_builder b;
  b.map(7).str("type").str("t").str("device_id").str("d").str("ts").val(1);
  std::string attrs_in;
  attrs_in += std::string("\xa1s\xd9\x02hi", 6);
  attrs_in += std::string("\xa1n\xd3\x00\x00\x00\x00\x00\x00\x00\x05", 11);
  attrs_in += std::string("\xa1x\xc7\x04\x07\x01\x02\x03\x04", 9);
  attrs_in += std::string("\xa1" "f\xca\x7f\x80\x00\x01", 7);
  b.bytes += attrs_in;
  auto fresh = decode_msgpack(b.bytes, ingest);
  ASSERT_EQ(fresh.events.size(), 1u) << fresh.error << rejection_for(fresh, 0);
  EXPECT_EQ(fresh.events[0].attrs, "\x84" + attrs_in);
  auto old = old_msgpack::decode(b.bytes, ingest, decode_limits{});
  ASSERT_EQ(old.events.size(), 1u);
  EXPECT_EQ(old.events[0].attrs,
            std::string("\x84\xa1s\xa2hi\xa1n\x05\xa1x\xd6\x07\x01\x02\x03\x04"
                        "\xa1" "f\xca\x7f\xc0\x00\x01",
                        24));
  EXPECT_EQ(repacked(fresh.events[0].attrs), old.events[0].attrs);
}

TEST(msgpack_one_pass_decoder, builds_attrs_from_fields_around_the_envelope_fields) {
  // Attributes before, between and after the envelope fields, and more than 15 of them (a map16
  // header).
  mp_builder b;
  b.map(3 + 17);
  b.str("a0").val(0);
  b.str("type").str("t");
  for (int k = 1; k < 16; ++k)
    b.str("a" + std::to_string(k)).val(k);
  b.str("device_id").str("d").str("ts").val(1);
  b.str("a16").str("last");
  auto fresh = decode_msgpack(b.bytes, ingest);
  ASSERT_EQ(fresh.events.size(), 1u) << fresh.error << rejection_for(fresh, 0);
  const std::string& attrs = fresh.events[0].attrs;
  EXPECT_EQ(static_cast<unsigned char>(attrs[0]), 0xde);
  auto old = old_msgpack::decode(b.bytes, ingest, decode_limits{});
  EXPECT_EQ(attrs, old.events[0].attrs);
  EXPECT_NE(test::mp_text(attrs).find(R"("a0":0,"a1":1)"), std::string::npos);
  EXPECT_NE(test::mp_text(attrs).find(R"("a15":15,"a16":"last"})"), std::string::npos);
}

TEST(msgpack_one_pass_decoder, agrees_with_the_old_decoder_on_counts_at_the_body_size_limit) {
  // msgpack-c refused a container claiming more elements than the body has bytes (maps: more
  // pairs than half of them) before checking its depth: then the error is located like a syntax
  // error (at the end of the body here) instead of "nested deeper". Counts just below, at and
  // above those limits, in front of nesting beyond the parse depth.
  tally t;
  decode_limits limits;
  const size_t levels = 1030;
  for (bool is_map : {false, true}) {
    const size_t size = 3 + (is_map ? 2 : 0) + levels + 1;
    const size_t limit = is_map ? size / 2 : size;
    for (size_t count = limit - 1; count <= limit + 1; ++count) {
      std::string body;
      body += static_cast<char>(is_map ? 0xde : 0xdc);
      body += static_cast<char>(count >> 8);
      body += static_cast<char>(count);
      if (is_map)
        body += "\xa1k";
      body.append(levels, '\x91');
      body += '\xc0';
      ASSERT_EQ(body.size(), size);
      compare(body, limits, true, t);
      auto r = decode_msgpack(body, ingest, limits);
      if (count > limit)
        EXPECT_EQ(r.error_offset, body.size()) << r.error;
      else
        EXPECT_NE(r.error.find("nested deeper than 1024"), std::string::npos) << r.error;
    }
  }
}
