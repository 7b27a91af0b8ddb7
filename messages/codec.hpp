#pragma once

// Wire and log encodings of events. Plain C++ (no CAF): the gateway decodes client bytes with these,
// the ingest log stores `encode_log_record` output, sinks render events with `append_json`.

#include "messages/event.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <functional>
#include <string_view>

namespace sluice {

/// Limits applied while decoding one client batch.
struct decode_limits {
  /// Maximum number of events in one batch; more is a whole-batch error.
  size_t max_events = 100000;
  /// Maximum nesting depth of attribute values.
  size_t max_depth = 32;
};

/// Result of decoding one client batch (an HTTP body or a WebSocket frame).
struct decoded_batch {
  /// Whole-batch failure (malformed JSON/msgpack, wrong top-level shape, too many events).
  /// Empty when the batch could be decoded; per-event problems go to `rejected` instead.
  std::string error;
  /// Byte offset into the input where a malformed-input error was detected (valid when `error`
  /// is set and the error is a syntax error; otherwise 0).
  size_t error_offset = 0;
  /// Accepted events, in client order; `ingest_ts` is set, `offset` is 0.
  event_batch events;
  /// Client indices of the events refused, with a reason naming the field
  /// (e.g. `"missing field 'device_id'"`, `"field 'ts' must be epoch ms or RFC 3339"`).
  std::vector<rejection> rejected;
  /// The client's `batch` id rendered as JSON text (`17` or `"abc"`), empty when absent.
  std::string batch_id;
  /// Total number of events the client sent (accepted + rejected).
  size_t total = 0;

  bool ok() const noexcept {
    return error.empty();
  }
};

/// Decodes a JSON batch: one event object, an array of event objects, or
/// `{"events": [...], "batch": <id>}`. `ingest_ts` is stamped on every accepted event.
decoded_batch decode_json(std::string_view body, int64_t ingest_ts,
                          const decode_limits& limits = {});

/// Spare capacity a body needs for `decode_json_in_place`: the parser may read this many bytes
/// past the end of a body.
constexpr size_t json_padding = 64;

/// `decode_json` without its copy of the body when `body.capacity() - body.size() >= json_padding`:
/// then `json_padding` zero bytes are written behind the body (within its capacity; its size and
/// content stay as they were) and the body is parsed where it is. Otherwise the same as
/// `decode_json(body, ...)`. Same results either way.
decoded_batch decode_json_in_place(std::string& body, int64_t ingest_ts,
                                   const decode_limits& limits = {});

/// Decodes the same shapes as `decode_json` from msgpack.
decoded_batch decode_msgpack(std::string_view body, int64_t ingest_ts,
                             const decode_limits& limits = {});

/// Appends the log encoding of `events` (offsets are not stored: the log key gives the first offset
/// and events are dense) to `out`. An event with a non-empty `origin` (forwarded by another node)
/// also stores `origin` and `origin_offset`; a local event stores neither (its `origin_offset` is
/// not kept). Layout: messages/codec_log.cpp.
void encode_log_record(const event_batch& events, std::string& out);

/// The number of bytes `encode_log_record` appends for the `count` events at `events`.
size_t log_record_size(const event* events, size_t count) noexcept;
inline size_t log_record_size(const event_batch& events) noexcept {
  return log_record_size(events.data(), events.size());
}

/// Writes what `encode_log_record` appends for the `count` events at `events` into `dst`, which
/// holds exactly `size` = `log_record_size(events, count)` bytes (e.g. space reserved in the
/// store): no copy through a string. Never writes past `size`; returns false when the encoding did
/// not fill it exactly.
bool write_log_record(const event* events, size_t count, char* dst, size_t size);
inline bool write_log_record(const event_batch& events, char* dst, size_t size) {
  return write_log_record(events.data(), events.size(), dst, size);
}

/// Decodes a log record written by `encode_log_record` (records written before forwarded events
/// existed included), assigning offsets `first, first+1, ...`; `origin` and `origin_offset` come
/// back as stored (empty and 0 for a local event). Appends to `out`; returns false (and leaves
/// `out` unchanged) when the bytes are corrupt.
bool decode_log_record(std::string_view bytes, log_offset first, event_batch& out);

/// Which events of a record a reader keeps, judged by (`device_id`, `profile_id`).
using log_filter = std::function<bool(std::string_view device_id, std::string_view profile_id)>;

/// Like `decode_log_record`, but appends only the events `keep` accepts (all when empty); offsets
/// still count every event. Skipped events are parsed but not copied.
bool decode_log_record_if(std::string_view bytes, log_offset first, event_batch& out,
                          const log_filter& keep);

/// Appends `e` as one JSON object (envelope fields, `offset`, `ingest_ts`, `node` when not empty,
/// then the attributes expanded in place) without a trailing newline.
void append_json(std::string& out, const event& e, std::string_view node = {});

/// Most bytes `render_json(dst, e, node)` writes (what it keeps plus scratch past it): room to
/// reserve before rendering into a buffer of one's own.
size_t json_render_bound(const event& e, std::string_view node = {}) noexcept;

/// Writes what `append_json` appends to `dst`, which has room for `json_render_bound(e, node)`
/// bytes; returns the end of the JSON object (bytes past it up to the bound may be overwritten).
char* render_json(char* dst, const event& e, std::string_view node = {});

/// Appends `s` to `out` as a JSON string literal (quotes and escapes included).
void append_json_string(std::string& out, std::string_view s);

/// A read-only view of one attribute value found by `find_attr`.
struct attr_value {
  enum class kind { nil, boolean, integer, floating, string, other } type = kind::nil;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;
};

/// Looks up a dotted path (`player.codec`) in an `attrs` map without copying; nullopt if absent.
std::optional<attr_value> find_attr(std::string_view attrs, std::string_view path);

/// Whether the msgpack map `attrs` has a top-level key (a string) for which `wanted(key, ctx)` is
/// true. Also true when `attrs` is not a well-formed map, so a caller that skips work on `false`
/// only ever skips it for attributes it has read. Allocation-free: the keys handed to `wanted`
/// are views into `attrs`.
bool any_attr_key(std::string_view attrs, bool (*wanted)(std::string_view key, const void* ctx),
                  const void* ctx);

/// Parses RFC 3339 (`2024-11-22T10:00:00Z`, fractional seconds and offsets allowed) to epoch ms.
std::optional<int64_t> parse_rfc3339_ms(std::string_view text);

/// The value (0-15) of the hexadecimal digit `c` (`0-9`, `a-f`, `A-F`); -1 for any other char.
int hex_value(char c) noexcept;

} // namespace sluice
