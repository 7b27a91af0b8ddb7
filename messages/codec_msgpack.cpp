// `decode_msgpack`: client msgpack batches → events.
//
// The same shapes and rules as `decode_json`: one event map, an array of event maps, or a map with
// `events` (array) and `batch` (number or str). One pass over the body with `mp_reader` (no object
// tree): the envelope fields are read as views into the body, and every other field's key and
// value are copied into the event's `attrs` byte for byte (they are msgpack already; the client's
// encoding is kept, float32 included; a lone event map, which is known not to be a wrapper only
// at its end, is read twice). Besides integers and RFC 3339 strs, `ts` accepts the msgpack
// timestamp extension (type -1). Envelope strings must be valid UTF-8.
//
// The checks and error texts are those of the earlier decoder, which unpacked the whole body with
// msgpack-c first: a malformed body (truncated, the byte 0xc1, nesting beyond the parse depth, a
// container claiming more elements than the body has bytes) wins over every other problem, then
// bytes after the value, then the batch-level problems, so the pass reads the whole body before it
// reports any of those.

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

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

uint64_t load_be(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t k = 0; k < n; ++k)
    v = (v << 8) | static_cast<unsigned char>(p[k]);
  return v;
}

// Epoch ms of a msgpack timestamp extension payload.
std::optional<int64_t> timestamp_ms(std::string_view payload) {
  const char* p = payload.data();
  int64_t seconds;
  uint32_t nanos;
  switch (payload.size()) {
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

std::optional<int64_t> read_ts(const mp_token& v) {
  switch (v.type) {
    case mp_type::uint:
      if (v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return std::nullopt;
      return static_cast<int64_t>(v.u);
    case mp_type::sint:
      return v.i;
    case mp_type::str:
      return parse_rfc3339_ms(v.bytes);
    case mp_type::ext:
      if (v.ext_type != timestamp_ext_type)
        return std::nullopt;
      return timestamp_ms(v.bytes);
    default:
      return std::nullopt;
  }
}

// Envelope strings are short ids, nearly always ASCII: an OR over 8-byte words settles those
// without simdjson's per-call setup (measured with sluice_msgpack_decode_bench).
bool is_utf8(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t high = 0;
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    uint64_t word;
    std::memcpy(&word, p + k, sizeof word);
    high |= word;
  }
  for (; k < n; ++k)
    high |= static_cast<unsigned char>(p[k]);
  if ((high & 0x8080808080808080u) == 0)
    return true;
  return simdjson::validate_utf8(p, n);
}

bool is_container(const mp_token& t) {
  return t.type == mp_type::array || t.type == mp_type::map;
}

/// Elements (keys and values counted apart) of a container token.
uint64_t elements(const mp_token& t) {
  return t.type == mp_type::map ? uint64_t{2} * t.count : t.count;
}

/// The first problem of an attribute value, in byte order.
enum class attr_check { ok, too_deep, bad_key };

/// The event fields with a meaning of their own; everything else goes to `attrs`.
enum class field { attr, id, type, device_id, profile_id, ts };

field classify(std::string_view key) {
  switch (key.size()) {
    case 2:
      if (key == "id")
        return field::id;
      if (key == "ts")
        return field::ts;
      return field::attr;
    case 4:
      return key == "type" ? field::type : field::attr;
    case 9:
      return key == "device_id" ? field::device_id : field::attr;
    case 10:
      return key == "profile_id" ? field::profile_id : field::attr;
    default:
      return field::attr;
  }
}

std::string too_many_events(size_t max_events) {
  return fmt::format(
    "the batch has more than {} events (the max_events limit); split it into smaller batches",
    max_events);
}

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

// Locates the first syntax error of the body (a truncation or the byte 0xc1) by reading it from
// the start, as the earlier decoder did after msgpack-c reported one without an offset.
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

/// Per-thread buffers of the decoder, kept between calls so that a batch allocates nothing but
/// its events.
struct decoder_buffers {
  /// Open containers of the value `walk` is reading: elements left, and whether it is a map.
  struct frame {
    uint64_t left;
    bool is_map;
  };
  std::vector<frame> frames;
  /// Byte ranges of the current event's attributes (adjacent ones merged).
  std::vector<std::string_view> ranges;
  /// The first problem of the current event.
  std::string reason;
};

/// Decodes one body in one pass. Lifetime: one call of `decode_msgpack`; borrows the body, the
/// result and the calling thread's buffers.
class msgpack_decoder {
public:
  msgpack_decoder(std::string_view body, decoded_batch& result, int64_t ingest_ts,
                  const decode_limits& limits, decoder_buffers& buffers)
    : body_(body),
      r_(body),
      result_(result),
      ingest_ts_(ingest_ts),
      limits_(limits),
      parse_depth_(std::max(max_parse_depth, limits.max_depth + envelope_depth)),
      frames_(buffers.frames),
      ranges_(buffers.ranges),
      reason_(buffers.reason) {
    // nop
  }

  void run() {
    if (!decode_root()) {
      switch (malformed_) {
        case malformed::too_deep:
          fail(result_, 0,
               fmt::format("malformed msgpack: values are nested deeper than {} levels",
                           parse_depth_));
          return;
        default:
          fail_unlocated(result_, body_);
          return;
      }
    }
    if (end_ < body_.size()) {
      fail_malformed(result_, end_, "unexpected bytes after the msgpack value");
      return;
    }
    if (auto problem = batch_problem(); !problem.empty())
      fail(result_, 0, std::move(problem));
  }

private:
  /// Why the body is malformed (the pass stops at the first such problem).
  enum class malformed { none, syntax, too_deep };

  /// Reads one token within `open` containers, with the limits msgpack-c applied: no container
  /// claims more elements than the body has bytes (then the error is located like a syntax
  /// error), nor nests beyond `parse_depth_`.
  bool read(mp_token& t, size_t open) {
    if (!r_.next_inline(t)) {
      malformed_ = malformed::syntax;
      return false;
    }
    if (is_container(t)) {
      const size_t limit = t.type == mp_type::map ? body_.size() / 2 : body_.size();
      if (t.count > limit) {
        malformed_ = malformed::syntax;
        return false;
      }
      if (open + 1 > parse_depth_) {
        malformed_ = malformed::too_deep;
        return false;
      }
    }
    return true;
  }

  /// Reads the rest of the value whose first token `t` (read within `open` containers) is. With
  /// `check`, also applies the rules of attribute values (nesting within `max_depth`, str map
  /// keys), recording the first problem there unless one is recorded already.
  bool finish(const mp_token& t, size_t open, attr_check* check) {
    if (!is_container(t))
      return true;
    if (check != nullptr && *check == attr_check::ok && limits_.max_depth < 1)
      *check = attr_check::too_deep;
    if (t.count == 0)
      return true;
    frames_.clear();
    frames_.push_back({elements(t), t.type == mp_type::map});
    mp_token u;
    for (;;) {
      const bool is_key = frames_.back().is_map && frames_.back().left % 2 == 0;
      if (!read(u, open + frames_.size()))
        return false;
      if (check != nullptr && *check == attr_check::ok) {
        if (is_key) {
          if (u.type != mp_type::str)
            *check = attr_check::bad_key;
        } else if (is_container(u) && frames_.size() + 1 > limits_.max_depth) {
          *check = attr_check::too_deep;
        }
      }
      if (is_container(u) && u.count > 0) {
        frames_.push_back({elements(u), u.type == mp_type::map});
        continue;
      }
      while (--frames_.back().left == 0) {
        frames_.pop_back();
        if (frames_.empty())
          return true;
      }
    }
  }

  bool walk(mp_token& t, size_t open, attr_check* check = nullptr) {
    return read(t, open) && finish(t, open, check);
  }

  bool decode_root() {
    mp_token root;
    if (!read(root, 0))
      return false;
    if (root.type == mp_type::array) {
      // The caller refused more than max_events already.
      if (!decode_events(root.count, 1))
        return false;
      end_ = r_.offset();
      return true;
    }
    if (root.type != mp_type::map) {
      end_ = r_.offset();
      problem_ = "the msgpack body must be an event map, an array of event maps, or a map with "
                 "'events' (array) and 'batch'";
      return true;
    }
    // A wrapper when some key is "events": its first `events` array is decoded as it comes, and
    // the rest of the map only checked. Otherwise the map is one event, read again below.
    const size_t content = r_.offset();
    for (uint32_t k = 0; k < root.count; ++k) {
      mp_token key;
      if (!walk(key, 1))
        return false;
      const bool is_str = key.type == mp_type::str;
      if (is_str && key.bytes == "events") {
        mp_token value;
        if (!read(value, 1))
          return false;
        if (has_events_) {
          duplicate_events_ = true;
        } else if (value.type != mp_type::array) {
          events_not_array_ = true;
        } else if (value.count > limits_.max_events) {
          too_many_events_ = true;
        } else {
          has_events_ = true;
          if (!decode_events(value.count, 2))
            return false;
          continue;
        }
        has_events_ = true;
        if (!finish(value, 1, nullptr))
          return false;
        continue;
      }
      if (is_str && key.bytes == "batch")
        batch_at_ = r_.offset();
      mp_token value;
      if (!walk(value, 1))
        return false;
    }
    end_ = r_.offset();
    if (!has_events_) {
      // One event: every key and value was checked above, so this pass cannot fail.
      r_ = mp_reader{body_.substr(content)};
      result_.total = 1;
      return decode_event(root.count, 1, 0);
    }
    return true;
  }

  /// The batch-level problem, in the order the earlier decoder checked them; sets the batch id.
  std::string batch_problem() {
    if (!problem_.empty())
      return std::move(problem_);
    if (!has_events_)
      return {};
    if (duplicate_events_)
      return "the msgpack body has more than one 'events' field";
    if (events_not_array_)
      return "'events' must be an array of event maps";
    if (batch_at_ != npos) {
      if (auto problem = read_batch_id(); !problem.empty())
        return problem;
    }
    if (too_many_events_)
      return too_many_events(limits_.max_events);
    return {};
  }

  std::string read_batch_id() {
    mp_reader r{body_.substr(batch_at_)};
    mp_token t;
    r.next(t); // checked by the pass
    auto& id = result_.batch_id;
    switch (t.type) {
      case mp_type::str:
        append_json_string(id, t.bytes);
        return {};
      case mp_type::uint:
        id = fmt::format_int(t.u).str();
        return {};
      case mp_type::sint:
        id = fmt::format_int(t.i).str();
        return {};
      case mp_type::float32:
      case mp_type::float64:
        if (!std::isfinite(t.d))
          return "'batch' must be a number or a string";
        detail::append_json_double(id, t.d);
        return {};
      case mp_type::nil:
        return {};
      default:
        return "'batch' must be a number or a string";
    }
  }

  bool decode_events(uint32_t n, size_t open) {
    // Reserve for what the body can hold: an event map takes more than 16 bytes.
    const size_t left = body_.size() - r_.offset();
    result_.events.reserve(result_.events.size() + std::min<size_t>(n, left / 16 + 1));
    for (uint32_t index = 0; index < n; ++index) {
      mp_token element;
      if (!read(element, open))
        return false;
      if (element.type == mp_type::map) {
        if (!decode_event(element.count, open + 1, index))
          return false;
      } else {
        if (!finish(element, open, nullptr))
          return false;
        result_.rejected.push_back({index, "the event must be a msgpack map"});
      }
    }
    result_.total = n;
    return true;
  }

  void note(std::string problem) {
    if (reason_.empty())
      reason_ = std::move(problem);
  }

  void add_range(const char* begin, const char* end) {
    if (!ranges_.empty() && ranges_.back().data() + ranges_.back().size() == begin)
      ranges_.back() = std::string_view(ranges_.back().data(),
                                        ranges_.back().size() + static_cast<size_t>(end - begin));
    else
      ranges_.emplace_back(begin, static_cast<size_t>(end - begin));
  }

  /// Reads the `pairs` fields of an event map (its header read within `open - 1` containers);
  /// appends the event or its rejection. Returns false when the body is malformed.
  bool decode_event(uint32_t pairs, size_t open, uint32_t index) {
    std::string_view id;
    std::string_view type;
    std::string_view device_id;
    std::string_view profile_id;
    int64_t ts = 0;
    bool has_type = false;
    bool has_device_id = false;
    bool has_ts = false;
    uint32_t attr_count = 0;
    reason_.clear();
    ranges_.clear();
    for (uint32_t k = 0; k < pairs; ++k) {
      const char* field_begin = r_.position();
      mp_token key;
      if (!walk(key, open))
        return false;
      mp_token v;
      if (key.type != mp_type::str) {
        note("the event's field names must be msgpack strs");
        if (!walk(v, open))
          return false;
        continue;
      }
      switch (classify(key.bytes)) {
        case field::type:
        case field::device_id: {
          if (!walk(v, open))
            return false;
          const bool is_type = key.bytes.size() == 4;
          (is_type ? has_type : has_device_id) = true;
          if (!reason_.empty())
            break;
          if (v.type == mp_type::str && !v.bytes.empty() && is_utf8(v.bytes))
            (is_type ? type : device_id) = v.bytes;
          else
            note(fmt::format("field '{}' must be a non-empty UTF-8 string", key.bytes));
          break;
        }
        case field::ts:
          if (!walk(v, open))
            return false;
          has_ts = true;
          if (!reason_.empty())
            break;
          if (auto value = read_ts(v))
            ts = *value;
          else
            note("field 'ts' must be epoch milliseconds or an RFC 3339 string");
          break;
        case field::id:
        case field::profile_id: {
          if (!walk(v, open))
            return false;
          if (!reason_.empty())
            break;
          auto& out = key.bytes.size() == 2 ? id : profile_id;
          if (v.type == mp_type::str && is_utf8(v.bytes))
            out = v.bytes;
          else if (v.type == mp_type::nil)
            out = {};
          else
            note(fmt::format("field '{}' must be a UTF-8 string or nil", key.bytes));
          break;
        }
        case field::attr: {
          if (!reason_.empty()) {
            if (!walk(v, open))
              return false;
            break;
          }
          attr_check check = attr_check::ok;
          if (!walk(v, open, &check))
            return false;
          switch (check) {
            case attr_check::ok:
              add_range(field_begin, r_.position());
              ++attr_count;
              break;
            case attr_check::too_deep:
              note(fmt::format("field '{}' is nested deeper than the max_depth limit ({})",
                               key.bytes, limits_.max_depth));
              break;
            case attr_check::bad_key:
              note(fmt::format("field '{}' contains a map key that is not a string", key.bytes));
              break;
          }
          break;
        }
      }
    }
    if (reason_.empty()) {
      if (!has_type)
        note("missing field 'type'");
      else if (!has_device_id)
        note("missing field 'device_id'");
      else if (!has_ts)
        note("missing field 'ts'");
    }
    if (!reason_.empty()) {
      result_.rejected.push_back({index, reason_});
      return true;
    }
    event& e = result_.events.emplace_back();
    if (id.empty())
      detail::append_uuid_v4(e.id);
    else
      e.id.assign(id);
    e.type.assign(type);
    e.device_id.assign(device_id);
    e.profile_id.assign(profile_id);
    e.ts = ts;
    e.ingest_ts = ingest_ts_;
    if (attr_count > 0)
      write_attrs(e.attrs, attr_count);
    return true;
  }

  /// `attrs` = a map header for `count` pairs and the collected ranges, in one allocation.
  void write_attrs(std::string& attrs, uint32_t count) {
    char header[detail::container_placeholder_size];
    size_t header_size;
    if (count < 16) {
      header[0] = static_cast<char>(0x80 | count);
      header_size = 1;
    } else if (count <= 0xffff) {
      header[0] = static_cast<char>(0xde);
      header[1] = static_cast<char>(count >> 8);
      header[2] = static_cast<char>(count);
      header_size = 3;
    } else {
      header[0] = static_cast<char>(0xdf);
      for (size_t k = 0; k < 4; ++k)
        header[1 + k] = static_cast<char>(count >> (24 - 8 * k));
      header_size = 5;
    }
    size_t size = header_size;
    for (auto range : ranges_)
      size += range.size();
    attrs.reserve(size);
    attrs.append(header, header_size);
    for (auto range : ranges_)
      attrs.append(range.data(), range.size());
  }

  static constexpr size_t npos = static_cast<size_t>(-1);

  std::string_view body_;
  mp_reader r_;
  decoded_batch& result_;
  int64_t ingest_ts_;
  const decode_limits& limits_;
  size_t parse_depth_;
  std::vector<decoder_buffers::frame>& frames_;
  std::vector<std::string_view>& ranges_;
  std::string& reason_;
  malformed malformed_ = malformed::none;
  /// Where the root value ends.
  size_t end_ = 0;
  /// A problem of the root's shape (neither map nor array).
  std::string problem_;
  // The wrapper map's findings, reported by `batch_problem` once the whole body was read.
  bool has_events_ = false;
  bool duplicate_events_ = false;
  bool events_not_array_ = false;
  bool too_many_events_ = false;
  /// Offset of the last `batch` value, npos when absent.
  size_t batch_at_ = npos;
};

} // namespace

decoded_batch decode_msgpack(std::string_view body, int64_t ingest_ts,
                             const decode_limits& limits) {
  thread_local decoder_buffers buffers;
  decoded_batch result;
  if (body.empty()) {
    fail_malformed(result, 0, "the body is empty");
    return result;
  }
  {
    // Refuse an oversized top-level array before reading it.
    mp_reader r{body};
    mp_token t;
    if (r.next(t) && t.type == mp_type::array && t.count > limits.max_events) {
      fail(result, 0, too_many_events(limits.max_events));
      return result;
    }
  }
  msgpack_decoder decoder{body, result, ingest_ts, limits, buffers};
  decoder.run();
  // A pathological body (thousands of attributes or levels) leaves no large buffer behind.
  constexpr size_t kept_entries = 4096;
  if (buffers.frames.capacity() > kept_entries)
    std::vector<decoder_buffers::frame>{}.swap(buffers.frames);
  if (buffers.ranges.capacity() > kept_entries)
    std::vector<std::string_view>{}.swap(buffers.ranges);
  return result;
}

} // namespace sluice
