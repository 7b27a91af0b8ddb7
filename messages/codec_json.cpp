// `decode_json`: client JSON batches → events, with simdjson's On-Demand API.
//
// One pass over the document: envelope fields are read in place, every other field is packed
// straight into the event's msgpack `attrs` (in client order) through a per-thread scratch buffer,
// so an accepted event costs its own strings and nothing else. Attribute nesting depth counts
// containers: a scalar attribute has depth 0, `{"a": {"b": 1}}` gives `a` depth 1.
//
// Speed (bench/json_decode_bench.cpp): keys and strings without escapes are views into the body
// (simdjson 3.0's On-Demand has no escaped-key accessor, and unescaping copies every string into
// the parser's buffer through a virtual call); the body is searched for a backslash once, and only
// a body that has one has its strings checked one by one, the escaped ones read by simdjson as
// before. Fields are taken by reference (copies of simdjson's iterator structs stalled on store
// forwarding), and `decode_json_in_place` parses a body with spare capacity without copying it.

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <fmt/format.h>
#include <msgpack.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

namespace sluice {

namespace {

using simdjson::error_code;
using simdjson::SUCCESS;
namespace od = simdjson::ondemand;

constexpr size_t npos = std::string_view::npos;

/// Deepest nesting of any value whose syntax is checked; deeper is a malformed body (DEPTH_ERROR).
constexpr size_t max_syntax_depth = 1024;

constexpr const char* shape_error
  = "the JSON body must be an event object, an array of event objects, or "
    "{\"events\": [...], \"batch\": <id>}";

// -- diagnostics for errors simdjson reports without a location -----------------------------------

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/// What a plain byte scan can tell about a body simdjson refused without saying where.
struct body_scan {
  /// One past the end of the root array/object; npos when it never closes.
  size_t root_end = npos;
  /// First unescaped control character inside a string; npos when none.
  size_t control_in_string = npos;
};

// Runs only on the error path. Not a parser: it tracks strings and bracket depth, nothing else.
body_scan scan_body(std::string_view body) {
  body_scan result;
  bool in_string = false;
  bool escaped = false;
  size_t depth = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      else if (static_cast<unsigned char>(c) < 0x20 && result.control_in_string == npos)
        result.control_in_string = i;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      if (--depth == 0 && result.root_end == npos)
        result.root_end = i + 1;
    }
  }
  return result;
}

size_t first_invalid_utf8(std::string_view body) {
  size_t i = 0;
  while (i < body.size()) {
    size_t len = detail::utf8_sequence_length(body, i);
    if (len == 0)
      return i;
    i += len;
  }
  return body.size();
}

// -- strings read in place --------------------------------------------------------------------------

/// Whether the string between `begin` and `end` (no quotes) has escapes to undo.
inline bool has_escapes(const char* begin, const char* end) noexcept {
  return std::memchr(begin, '\\', static_cast<size_t>(end - begin)) != nullptr;
}

/// Where the closing quote of the string starting at `token` is: `token` runs from the string's
/// opening quote to the next structural character (simdjson's raw token), so after the closing
/// quote only whitespace can follow. nullptr when the token does not look like that.
inline const char* closing_quote(std::string_view token) noexcept {
  size_t end = token.size();
  while (end > 1 && is_json_space(token[end - 1]))
    --end;
  return end > 1 && token[end - 1] == '"' ? token.data() + end - 1 : nullptr;
}

/// Where the closing quote of an object key is, found back from the start of its value
/// (`"key" : value`: the ':' and whitespace in between); nullptr when the bytes are not like that.
inline const char* closing_quote_before(const char* value, const char* key) noexcept {
  const char* p = value - 1;
  while (p > key && is_json_space(*p))
    --p;
  if (p <= key || *p != ':')
    return nullptr;
  --p;
  while (p >= key && is_json_space(*p))
    --p;
  return p >= key && *p == '"' ? p : nullptr;
}

// -- the attribute buffer -----------------------------------------------------------------------

/// The msgpack bytes of one event's attributes while they are packed, before they are copied into
/// the event at their exact size. A msgpack-c stream (`write`) with inline room checks, so that a
/// one-byte header costs a store rather than a `std::string::append` call.
///
/// Lifecycle: one per gateway thread (thread_local in `decode_json`), reused by every batch; it
/// keeps its largest capacity (a few hundred bytes for the reference events; at most the largest
/// event's attributes). Not thread-safe.
class pack_buffer {
public:
  /// Room left in front of the attributes for the map header, written once the count is known.
  static constexpr size_t header_room = detail::container_placeholder_size;

  char* data() noexcept {
    return bytes_.get();
  }

  size_t size() const noexcept {
    return size_;
  }

  /// Drops everything past the first `n` bytes.
  void truncate(size_t n) noexcept {
    size_ = n;
  }

  /// Appends `n` bytes and returns where they go.
  char* extend(size_t n) {
    if (capacity_ - size_ < n)
      grow(n);
    char* at = bytes_.get() + size_;
    size_ += n;
    return at;
  }

  /// The msgpack-c stream interface.
  void write(const char* data, size_t n) {
    std::memcpy(extend(n), data, n);
  }

  /// Appends `s` as a msgpack str (the encoding msgpack-c's `pack_str` picks).
  void pack_str(std::string_view s) {
    if (s.size() < 32) {
      char* at = extend(1 + s.size());
      at[0] = static_cast<char>(0xa0 | s.size());
      std::memcpy(at + 1, s.data(), s.size());
      return;
    }
    msgpack::packer<pack_buffer> packer{*this};
    packer.pack_str(static_cast<uint32_t>(s.size()));
    packer.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
  }

  /// Appends a placeholder for a container header (see `detail::open_container`).
  size_t open_container() {
    const size_t pos = size_;
    extend(detail::container_placeholder_size);
    return pos;
  }

  /// Writes the smallest header for `count` elements at `pos` and moves the elements back over
  /// the unused placeholder bytes (the bytes of `detail::close_container`).
  void close_container(size_t pos, bool is_map, uint32_t count) {
    char header[detail::container_placeholder_size];
    const size_t header_size = encode_header(header, is_map, count);
    const size_t gap = detail::container_placeholder_size - header_size;
    char* body = bytes_.get() + pos + detail::container_placeholder_size;
    std::memmove(body - gap, body, size_ - pos - detail::container_placeholder_size);
    size_ -= gap;
    std::memcpy(bytes_.get() + pos, header, header_size);
  }

  /// The attributes packed after `header_room` bytes as one msgpack map of `count` pairs: the map
  /// header is written right in front of them, so no byte moves.
  std::string_view finish_map(uint32_t count) noexcept {
    char header[detail::container_placeholder_size];
    const size_t header_size = encode_header(header, true, count);
    char* begin = bytes_.get() + header_room - header_size;
    std::memcpy(begin, header, header_size);
    return {begin, size_ - (header_room - header_size)};
  }

  /// Appends `value` as a msgpack float64 (see `detail::append_float64`).
  void pack_float64(double value) {
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    char* at = extend(9);
    at[0] = static_cast<char>(0xcb);
    for (size_t k = 0; k < 8; ++k)
      at[1 + k] = static_cast<char>(bits >> (56 - 8 * k));
  }

private:
  static size_t encode_header(char* header, bool is_map, uint32_t count) noexcept {
    if (count < 16) {
      header[0] = static_cast<char>((is_map ? 0x80 : 0x90) | count);
      return 1;
    }
    if (count <= 0xffff) {
      header[0] = static_cast<char>(is_map ? 0xde : 0xdc);
      header[1] = static_cast<char>(count >> 8);
      header[2] = static_cast<char>(count);
      return 3;
    }
    header[0] = static_cast<char>(is_map ? 0xdf : 0xdd);
    for (size_t k = 0; k < 4; ++k)
      header[1 + k] = static_cast<char>(count >> (24 - 8 * k));
    return 5;
  }

  void grow(size_t n) {
    const size_t capacity = std::max({size_ + n, 2 * capacity_, size_t{256}});
    auto bytes = std::make_unique<char[]>(capacity);
    if (size_ > 0)
      std::memcpy(bytes.get(), bytes_.get(), size_);
    bytes_ = std::move(bytes);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// -- the decoder ----------------------------------------------------------------------------------

/// Decodes one batch. Lifetime: one call of `decode_json`; borrows the per-thread parser buffers.
class json_decoder {
public:
  json_decoder(decoded_batch& result, std::string_view body, int64_t ingest_ts,
               const decode_limits& limits, pack_buffer& scratch)
    : result_(result),
      ingest_ts_(ingest_ts),
      limits_(limits),
      scratch_(scratch),
      body_has_escapes_(std::memchr(body.data(), '\\', body.size()) != nullptr) {
    // nop
  }

  /// A message replacing simdjson's for the last error, when simdjson's would mislead.
  const char* custom_message() const noexcept {
    return custom_message_;
  }

  /// Set when decoding stopped on a batch-level problem that is not a syntax error.
  std::string shape_problem;

  error_code decode_document(od::document& doc) {
    od::json_type type;
    if (auto err = doc.type().get(type))
      return err;
    if (type == od::json_type::array) {
      od::array events;
      if (auto err = doc.get_array().get(events))
        return err;
      return decode_events(events);
    }
    if (type != od::json_type::object) {
      shape_problem = shape_error;
      return SUCCESS;
    }
    od::object root;
    if (auto err = doc.get_object().get(root))
      return err;
    od::value ignored;
    auto err = root.find_field_unordered("events").get(ignored);
    if (err != SUCCESS && err != simdjson::NO_SUCH_FIELD)
      return err;
    const bool is_wrapper = err == SUCCESS;
    bool rewound;
    if (auto err2 = root.reset().get(rewound))
      return err2;
    if (is_wrapper)
      return decode_wrapper(root);
    result_.total = 1;
    return decode_one(root, 0);
  }

private:
  error_code decode_wrapper(od::object& root) {
    bool seen_events = false;
    for (auto field_result : root) {
      od::field field;
      if (auto err = std::move(field_result).get(field))
        return err;
      std::string_view key;
      if (auto err = field.unescaped_key().get(key))
        return err;
      od::value value = field.value();
      if (key == "events") {
        od::json_type type;
        if (auto err = value.type().get(type))
          return err;
        if (type != od::json_type::array || seen_events) {
          shape_problem = seen_events ? "the JSON body has more than one 'events' field"
                                      : "'events' must be an array of event objects";
          return SUCCESS;
        }
        seen_events = true;
        od::array events;
        if (auto err = value.get_array().get(events))
          return err;
        if (auto err = decode_events(events); err || !shape_problem.empty())
          return err;
      } else if (key == "batch") {
        if (auto err = read_batch_id(value); err || !shape_problem.empty())
          return err;
      } else if (auto err = validate(value)) {
        return err; // other wrapper fields are ignored, but must be well-formed
      }
    }
    return SUCCESS;
  }

  error_code read_batch_id(od::value& value) {
    od::json_type type;
    if (auto err = value.type().get(type))
      return err;
    switch (type) {
      case od::json_type::string: {
        std::string_view id;
        if (auto err = value.get_string().get(id))
          return err;
        result_.batch_id.clear();
        append_json_string(result_.batch_id, id);
        return SUCCESS;
      }
      case od::json_type::number: {
        std::string_view raw = value.raw_json_token();
        while (!raw.empty() && is_json_space(raw.back()))
          raw.remove_suffix(1);
        double ignored;
        if (auto err = value.get_double().get(ignored))
          return err;
        result_.batch_id.assign(raw.data(), raw.size());
        return SUCCESS;
      }
      case od::json_type::null:
        result_.batch_id.clear();
        return validate(value);
      default:
        shape_problem = "'batch' must be a number or a string";
        return SUCCESS;
    }
  }

  error_code decode_events(od::array& events) {
    uint32_t index = 0;
    for (auto element : events) {
      od::value value;
      if (auto err = element.get(value))
        return err;
      if (index >= limits_.max_events) {
        shape_problem = fmt::format(
          "the batch has more than {} events (the max_events limit); split it into smaller batches",
          limits_.max_events);
        return SUCCESS;
      }
      od::json_type type;
      if (auto err = value.type().get(type))
        return err;
      if (type != od::json_type::object) {
        if (auto err = validate(value))
          return err;
        result_.rejected.push_back({index, "the event must be a JSON object"});
      } else {
        od::object object;
        if (auto err = value.get_object().get(object))
          return err;
        if (auto err = decode_one(object, index))
          return err;
      }
      ++index;
    }
    result_.total = index;
    return SUCCESS;
  }

  // The key of `field`: a view into the body when it has no escapes (nearly always), else
  // unescaped by simdjson into the parser's string buffer.
  error_code read_key(od::field& field, std::string_view& key) const {
    const char* begin = field.key().raw(); // past the opening quote
    const char* end = closing_quote_before(field.value().raw_json_token().data(), begin);
    if (end == nullptr || (body_has_escapes_ && has_escapes(begin, end)))
      return field.unescaped_key().get(key);
    key = std::string_view(begin, static_cast<size_t>(end - begin));
    return SUCCESS;
  }

  // The string `value` holds (its type is string): a view into the body when it has no escapes,
  // else unescaped by simdjson into the parser's string buffer (valid for the whole document).
  // Consumes `value` either way.
  error_code read_string(od::value& value, std::string_view& out) const {
    std::string_view token = value.raw_json_token();
    const char* end = closing_quote(token);
    if (end == nullptr || (body_has_escapes_ && has_escapes(token.data() + 1, end)))
      return value.get_string().get(out);
    od::raw_json_string consumed;
    if (auto err = value.get_raw_json_string().get(consumed))
      return err;
    out = std::string_view(token.data() + 1, static_cast<size_t>(end - token.data() - 1));
    return SUCCESS;
  }

  // Decodes the event at client index `index`, appending it to the events or the rejections.
  error_code decode_one(od::object& object, uint32_t index) {
    std::string reason;
    if (auto err = decode_event(object, reason))
      return err;
    if (!reason.empty())
      result_.rejected.push_back({index, std::move(reason)});
    return SUCCESS;
  }

  // Appends the event to the accepted ones, or sets `reason`. Its strings are views into the body
  // (or simdjson's string buffer, for strings with escapes) until the event is accepted: a
  // rejected event costs no string, an accepted one each string once, at its exact size.
  error_code decode_event(od::object& object, std::string& reason) {
    std::string_view id;
    std::string_view type;
    std::string_view device_id;
    std::string_view profile_id;
    int64_t ts = 0;
    bool has_type = false;
    bool has_device_id = false;
    bool has_ts = false;
    scratch_.truncate(0);
    scratch_.extend(pack_buffer::header_room);
    uint32_t attr_count = 0;
    for (auto field_result : object) {
      // By reference: copies of simdjson's iterators cost store-forwarding stalls here.
      if (auto err = field_result.error())
        return err;
      od::field&& field = std::move(field_result).value_unsafe();
      std::string_view key;
      if (auto err = read_key(field, key))
        return err;
      od::value& value = field.value();
      error_code err = SUCCESS;
      if (key == "type") {
        err = read_required_string(value, "type", type, has_type, reason);
      } else if (key == "device_id") {
        err = read_required_string(value, "device_id", device_id, has_device_id, reason);
      } else if (key == "ts") {
        err = read_ts(value, ts, has_ts, reason);
      } else if (key == "id") {
        err = read_optional_string(value, "id", id, reason);
      } else if (key == "profile_id") {
        err = read_optional_string(value, "profile_id", profile_id, reason);
      } else {
        scratch_.pack_str(key);
        bool too_deep = false;
        err = pack_value(value, 0, too_deep);
        ++attr_count;
        if (too_deep && reason.empty())
          reason = fmt::format("field '{}' is nested deeper than the max_depth limit ({})", key,
                               limits_.max_depth);
      }
      if (err)
        return err;
    }
    if (reason.empty()) {
      if (!has_type)
        reason = "missing field 'type'";
      else if (!has_device_id)
        reason = "missing field 'device_id'";
      else if (!has_ts)
        reason = "missing field 'ts'";
    }
    if (!reason.empty())
      return SUCCESS;
    // Built in place and moved into the batch: `emplace_back()` would value-initialise (zero) the
    // whole event first.
    event e;
    if (id.empty())
      detail::append_uuid_v4(e.id);
    else
      e.id = std::string{id};
    e.type = std::string{type};
    e.device_id = std::string{device_id};
    e.profile_id = std::string{profile_id};
    e.ts = ts;
    e.ingest_ts = ingest_ts_;
    if (attr_count > 0)
      e.attrs = std::string{scratch_.finish_map(attr_count)};
    result_.events.push_back(std::move(e));
    return SUCCESS;
  }

  // `type` and `device_id`: a non-empty string. `out` becomes a view (see `decode_event`); a later
  // field of the same name overrides an earlier one.
  error_code read_required_string(od::value& value, const char* name, std::string_view& out,
                                  bool& seen, std::string& reason) {
    od::json_type type;
    if (auto err = value.type().get(type))
      return err;
    seen = true;
    if (type == od::json_type::string) {
      std::string_view s;
      if (auto err = read_string(value, s))
        return err;
      if (!s.empty()) {
        out = s;
        return SUCCESS;
      }
    } else if (auto err = validate(value)) {
      return err;
    }
    if (reason.empty())
      reason = fmt::format("field '{}' must be a non-empty string", name);
    return SUCCESS;
  }

  // `id` and `profile_id`: a string, or null/absent (an empty `id` counts as absent).
  error_code read_optional_string(od::value& value, const char* name, std::string_view& out,
                                  std::string& reason) {
    od::json_type type;
    if (auto err = value.type().get(type))
      return err;
    if (type == od::json_type::string) {
      std::string_view s;
      if (auto err = read_string(value, s))
        return err;
      out = s;
      return SUCCESS;
    }
    if (auto err = validate(value))
      return err;
    if (type == od::json_type::null) {
      out = {};
      return SUCCESS;
    }
    if (reason.empty())
      reason = fmt::format("field '{}' must be a string or null", name);
    return SUCCESS;
  }

  error_code read_ts(od::value& value, int64_t& out, bool& seen, std::string& reason) {
    od::json_type type;
    if (auto err = value.type().get(type))
      return err;
    seen = true;
    bool ok = false;
    if (type == od::json_type::number) {
      od::number n;
      if (value.get_number().get(n) == SUCCESS) {
        if (n.get_number_type() == od::number_type::signed_integer) {
          out = n.get_int64();
          ok = true;
        }
      } else if (auto err = validate(value)) {
        return err; // not a number at all
      }
    } else if (type == od::json_type::string) {
      std::string_view s;
      if (auto err = read_string(value, s))
        return err;
      if (auto ms = parse_rfc3339_ms(s)) {
        out = *ms;
        ok = true;
      }
    } else if (auto err = validate(value)) {
      return err;
    }
    if (!ok && reason.empty())
      reason = "field 'ts' must be epoch milliseconds or an RFC 3339 string";
    return SUCCESS;
  }

  // Consumes `value` completely (so its syntax is checked) without keeping it.
  error_code validate(od::value& value) {
    const size_t mark = scratch_.size();
    bool ignored = false;
    auto err = pack_value(value, 0, ignored);
    scratch_.truncate(mark);
    return err;
  }

  // Appends `value` to the scratch buffer as msgpack. `depth` counts the containers around it
  // inside the attribute; `too_deep` is set (and packing goes on, to check the syntax) past
  // `max_depth`.
  error_code pack_value(od::value& value, size_t depth, bool& too_deep) {
    // The syntax walk past max_depth recurses too: bound it (as simdjson's DOM does) so that a
    // body of nested brackets cannot overflow the io thread's stack (found by fuzz_json).
    if (depth >= max_syntax_depth)
      return simdjson::DEPTH_ERROR;
    msgpack::packer<pack_buffer> packer{scratch_};
    od::json_type type;
    if (auto err = value.type().get(type))
      return err;
    switch (type) {
      case od::json_type::object: {
        od::object object;
        if (auto err = value.get_object().get(object))
          return err;
        if (depth + 1 > limits_.max_depth)
          too_deep = true;
        const size_t header = scratch_.open_container();
        uint32_t count = 0;
        for (auto field_result : object) {
          if (auto err = field_result.error())
            return err;
          od::field&& field = std::move(field_result).value_unsafe();
          std::string_view key;
          if (auto err = read_key(field, key))
            return err;
          scratch_.pack_str(key);
          if (auto err = pack_value(field.value(), depth + 1, too_deep))
            return err;
          ++count;
        }
        scratch_.close_container(header, true, count);
        return SUCCESS;
      }
      case od::json_type::array: {
        od::array array;
        if (auto err = value.get_array().get(array))
          return err;
        if (depth + 1 > limits_.max_depth)
          too_deep = true;
        const size_t header = scratch_.open_container();
        uint32_t count = 0;
        for (auto element : array) {
          od::value child;
          if (auto err = element.get(child))
            return err;
          if (auto err = pack_value(child, depth + 1, too_deep))
            return err;
          ++count;
        }
        scratch_.close_container(header, false, count);
        return SUCCESS;
      }
      case od::json_type::number: {
        od::number n;
        if (value.get_number().get(n) == SUCCESS) {
          switch (n.get_number_type()) {
            case od::number_type::signed_integer:
              packer.pack_int64(n.get_int64());
              break;
            case od::number_type::unsigned_integer:
              packer.pack_uint64(n.get_uint64());
              break;
            default:
              scratch_.pack_float64(n.get_double());
              break;
          }
          return SUCCESS;
        }
        // Integers beyond 64 bits are kept as the nearest double.
        double d;
        if (auto err = value.get_double().get(d))
          return err;
        scratch_.pack_float64(d);
        return SUCCESS;
      }
      case od::json_type::string: {
        std::string_view s;
        if (auto err = read_string(value, s))
          return err;
        scratch_.pack_str(s);
        return SUCCESS;
      }
      case od::json_type::boolean: {
        bool b;
        if (auto err = value.get_bool().get(b)) {
          custom_message_ = "invalid literal (expected true, false or null)";
          return err;
        }
        if (b)
          packer.pack_true();
        else
          packer.pack_false();
        return SUCCESS;
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto err = value.is_null().get(is_null); err || !is_null) {
          custom_message_ = "invalid literal (expected true, false or null)";
          return err ? err : simdjson::INCORRECT_TYPE;
        }
        packer.pack_nil();
        return SUCCESS;
      }
    }
    return simdjson::INCORRECT_TYPE;
  }

  decoded_batch& result_;
  int64_t ingest_ts_;
  const decode_limits& limits_;
  pack_buffer& scratch_;
  /// Whether a backslash occurs anywhere in the body: when not (nearly always), no string has
  /// escapes and none is searched for one.
  const bool body_has_escapes_;
  const char* custom_message_ = nullptr;
};

void fail_malformed(decoded_batch& result, size_t offset, std::string_view message) {
  result.events.clear();
  result.rejected.clear();
  result.total = 0;
  result.error_offset = offset;
  result.error = fmt::format("malformed JSON at byte {}: {}", offset, message);
}

void fail_shape(decoded_batch& result, std::string message) {
  result.events.clear();
  result.rejected.clear();
  result.total = 0;
  result.error_offset = 0;
  result.error = std::move(message);
}

// Finds where the problem is for the errors simdjson reports without a location.
void fail_unlocated(decoded_batch& result, std::string_view body, error_code err) {
  switch (err) {
    case simdjson::EMPTY:
      fail_malformed(result, 0, "the body is empty");
      return;
    case simdjson::UTF8_ERROR:
      fail_malformed(result, first_invalid_utf8(body), simdjson::error_message(err));
      return;
    case simdjson::UNESCAPED_CHARS: {
      size_t at = scan_body(body).control_in_string;
      fail_malformed(result, at == npos ? 0 : at, simdjson::error_message(err));
      return;
    }
    case simdjson::UNCLOSED_STRING:
      fail_malformed(result, body.size(), simdjson::error_message(err));
      return;
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT: {
      // simdjson checks that the last token closes the root: either the body stops early or
      // something follows the root value.
      size_t end = scan_body(body).root_end;
      if (end == npos) {
        fail_malformed(result, body.size(), "the body ends before its array or object is closed");
        return;
      }
      while (end < body.size() && is_json_space(body[end]))
        ++end;
      fail_malformed(result, end, "unexpected content after the JSON value");
      return;
    }
    default:
      fail_malformed(result, 0, simdjson::error_message(err));
  }
}

static_assert(json_padding == simdjson::SIMDJSON_PADDING,
              "codec.hpp's json_padding must be the padding simdjson reads past a document");

// Decodes `body`, followed in memory by `capacity - body.size() >= json_padding` zero bytes.
decoded_batch decode_in_place(std::string_view body, size_t capacity, int64_t ingest_ts,
                              const decode_limits& limits) {
  // Per-thread state reused across batches: the parser's buffers (sized for the largest body seen
  // so far) and the scratch buffer that attrs are packed into.
  thread_local od::parser parser;
  thread_local pack_buffer scratch;

  decoded_batch result;
  // Room for the events up front (a JSON event takes at least this many bytes; rarely smaller):
  // no reallocation that moves every decoded event.
  constexpr size_t min_event_json_bytes = 128;
  result.events.reserve(std::min(limits.max_events, body.size() / min_event_json_bytes + 1));

  od::document doc;
  if (auto err = parser.iterate(body.data(), body.size(), capacity).get(doc)) {
    fail_unlocated(result, body, err);
    return result;
  }
  json_decoder decoder{result, body, ingest_ts, limits, scratch};
  auto err = decoder.decode_document(doc);
  if (err == simdjson::INCOMPLETE_ARRAY_OR_OBJECT) {
    // Reported by simdjson's check that the last token closes the root, with no location.
    fail_unlocated(result, body, err);
    return result;
  }
  const char* location = nullptr;
  if (err) {
    size_t offset = body.size();
    if (doc.current_location().get(location) == SUCCESS)
      offset = std::min(static_cast<size_t>(location - body.data()), body.size());
    const char* message = decoder.custom_message();
    fail_malformed(result, offset, message ? message : simdjson::error_message(err));
    return result;
  }
  if (!decoder.shape_problem.empty()) {
    fail_shape(result, std::move(decoder.shape_problem));
    return result;
  }
  if (doc.current_location().get(location) == SUCCESS) {
    size_t offset = static_cast<size_t>(location - body.data());
    if (offset < body.size()) {
      fail_malformed(result, offset, "unexpected content after the JSON value");
      return result;
    }
  }
  return result;
}

} // namespace

decoded_batch decode_json(std::string_view body, int64_t ingest_ts, const decode_limits& limits) {
  // A copy of the body with room for simdjson's padding behind it, reused by the thread's calls.
  thread_local std::vector<char> padded;
  const size_t capacity = body.size() + json_padding;
  if (padded.size() < capacity)
    padded.resize(capacity);
  std::memcpy(padded.data(), body.data(), body.size());
  std::memset(padded.data() + body.size(), 0, json_padding);
  return decode_in_place({padded.data(), body.size()}, capacity, ingest_ts, limits);
}

decoded_batch decode_json_in_place(std::string& body, int64_t ingest_ts,
                                   const decode_limits& limits) {
  const size_t size = body.size();
  if (body.capacity() - size < json_padding)
    return decode_json(body, ingest_ts, limits);
  // Zeros behind the body, as in decode_json's copy: on malformed input simdjson's On-Demand
  // reads into the padding, and what it finds there would otherwise change the error reported.
  // Neither call reallocates (the capacity suffices); resize keeps the bytes past the new end.
  body.append(json_padding, '\0');
  body.resize(size);
  return decode_in_place(body, size + json_padding, ingest_ts, limits);
}

} // namespace sluice
