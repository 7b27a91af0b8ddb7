// `decode_msgpack`: client msgpack batches → events.
//
// The same shapes and rules as `decode_json`: one event map, an array of event maps, or a map with
// `events` (array) and `batch` (number or str). The whole body is unpacked once into a per-thread
// zone (strings are referenced, not copied); every non-envelope field is packed again into the
// event's `attrs`. Besides integers and RFC 3339 strs, `ts` accepts the msgpack timestamp
// extension (type -1). Envelope strings must be valid UTF-8.

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <fmt/format.h>
#include <msgpack.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace sluice {

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

decoded_batch decode_msgpack(std::string_view body, int64_t ingest_ts,
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

} // namespace sluice
