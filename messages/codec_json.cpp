// `decode_json`: client JSON batches → events, with simdjson's On-Demand API.
//
// One pass over the document: envelope fields are read in place, every other field is packed
// straight into the event's msgpack `attrs` (in client order) through a per-thread scratch buffer,
// so an accepted event costs its own strings and nothing else. Attribute nesting depth counts
// containers: a scalar attribute has depth 0, `{"a": {"b": 1}}` gives `a` depth 1.

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <fmt/format.h>
#include <msgpack.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
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

// -- the decoder ----------------------------------------------------------------------------------

/// Decodes one batch. Lifetime: one call of `decode_json`; borrows the per-thread parser buffers.
class json_decoder {
public:
  json_decoder(decoded_batch& result, int64_t ingest_ts, const decode_limits& limits,
               std::string& scratch)
    : result_(result), ingest_ts_(ingest_ts), limits_(limits), scratch_(scratch) {
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

  // Decodes the event at client index `index`, appending it to the events or the rejections.
  error_code decode_one(od::object& object, uint32_t index) {
    event& e = result_.events.emplace_back();
    std::string reason;
    if (auto err = decode_event(object, e, reason)) {
      result_.events.pop_back();
      return err;
    }
    if (!reason.empty()) {
      result_.events.pop_back();
      result_.rejected.push_back({index, std::move(reason)});
    }
    return SUCCESS;
  }

  error_code decode_event(od::object& object, event& e, std::string& reason) {
    bool has_type = false;
    bool has_device_id = false;
    bool has_ts = false;
    scratch_.clear();
    const size_t attrs_header = detail::open_container(scratch_);
    uint32_t attr_count = 0;
    detail::string_writer writer{&scratch_};
    msgpack::packer<detail::string_writer> packer{writer};
    for (auto field_result : object) {
      od::field field;
      if (auto err = std::move(field_result).get(field))
        return err;
      std::string_view key;
      if (auto err = field.unescaped_key().get(key))
        return err;
      od::value value = field.value();
      error_code err = SUCCESS;
      if (key == "type") {
        err = read_required_string(value, "type", e.type, has_type, reason);
      } else if (key == "device_id") {
        err = read_required_string(value, "device_id", e.device_id, has_device_id, reason);
      } else if (key == "ts") {
        err = read_ts(value, e.ts, has_ts, reason);
      } else if (key == "id") {
        err = read_optional_string(value, "id", e.id, reason);
      } else if (key == "profile_id") {
        err = read_optional_string(value, "profile_id", e.profile_id, reason);
      } else {
        packer.pack_str(static_cast<uint32_t>(key.size()));
        packer.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
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
    if (e.id.empty())
      detail::append_uuid_v4(e.id);
    if (attr_count > 0) {
      detail::close_container(scratch_, attrs_header, true, attr_count);
      e.attrs.assign(scratch_);
    }
    e.ingest_ts = ingest_ts_;
    return SUCCESS;
  }

  error_code read_required_string(od::value& value, const char* name, std::string& out,
                                  bool& seen, std::string& reason) {
    od::json_type type;
    if (auto err = value.type().get(type))
      return err;
    seen = true;
    if (type == od::json_type::string) {
      std::string_view s;
      if (auto err = value.get_string().get(s))
        return err;
      if (!s.empty()) {
        out.assign(s.data(), s.size());
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
  error_code read_optional_string(od::value& value, const char* name, std::string& out,
                                  std::string& reason) {
    od::json_type type;
    if (auto err = value.type().get(type))
      return err;
    if (type == od::json_type::string) {
      std::string_view s;
      if (auto err = value.get_string().get(s))
        return err;
      out.assign(s.data(), s.size());
      return SUCCESS;
    }
    if (auto err = validate(value))
      return err;
    if (type == od::json_type::null) {
      out.clear();
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
      if (auto err = value.get_string().get(s))
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
    scratch_.resize(mark);
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
    detail::string_writer writer{&scratch_};
    msgpack::packer<detail::string_writer> packer{writer};
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
        const size_t header = detail::open_container(scratch_);
        uint32_t count = 0;
        for (auto field_result : object) {
          od::field field;
          if (auto err = std::move(field_result).get(field))
            return err;
          std::string_view key;
          if (auto err = field.unescaped_key().get(key))
            return err;
          packer.pack_str(static_cast<uint32_t>(key.size()));
          packer.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
          if (auto err = pack_value(field.value(), depth + 1, too_deep))
            return err;
          ++count;
        }
        detail::close_container(scratch_, header, true, count);
        return SUCCESS;
      }
      case od::json_type::array: {
        od::array array;
        if (auto err = value.get_array().get(array))
          return err;
        if (depth + 1 > limits_.max_depth)
          too_deep = true;
        const size_t header = detail::open_container(scratch_);
        uint32_t count = 0;
        for (auto element : array) {
          od::value child;
          if (auto err = element.get(child))
            return err;
          if (auto err = pack_value(child, depth + 1, too_deep))
            return err;
          ++count;
        }
        detail::close_container(scratch_, header, false, count);
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
              detail::append_float64(scratch_, n.get_double());
              break;
          }
          return SUCCESS;
        }
        // Integers beyond 64 bits are kept as the nearest double.
        double d;
        if (auto err = value.get_double().get(d))
          return err;
        detail::append_float64(scratch_, d);
        return SUCCESS;
      }
      case od::json_type::string: {
        std::string_view s;
        if (auto err = value.get_string().get(s))
          return err;
        packer.pack_str(static_cast<uint32_t>(s.size()));
        packer.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
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
  std::string& scratch_;
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

} // namespace

decoded_batch decode_json(std::string_view body, int64_t ingest_ts, const decode_limits& limits) {
  // Per-thread state reused across batches: the parser's buffers, a padded copy of the body and
  // the scratch buffer that attrs are packed into.
  thread_local od::parser parser;
  thread_local std::vector<char> padded;
  thread_local std::string scratch;

  decoded_batch result;
  // Room for the events up front (a JSON event takes at least this many bytes; rarely smaller):
  // no reallocation that moves every decoded event.
  constexpr size_t min_event_json_bytes = 128;
  result.events.reserve(std::min(limits.max_events, body.size() / min_event_json_bytes + 1));
  const size_t capacity = body.size() + simdjson::SIMDJSON_PADDING;
  if (padded.size() < capacity)
    padded.resize(capacity);
  std::memcpy(padded.data(), body.data(), body.size());
  std::memset(padded.data() + body.size(), 0, simdjson::SIMDJSON_PADDING);

  od::document doc;
  if (auto err = parser.iterate(padded.data(), body.size(), capacity).get(doc)) {
    fail_unlocated(result, body, err);
    return result;
  }
  json_decoder decoder{result, ingest_ts, limits, scratch};
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
      offset = std::min(static_cast<size_t>(location - padded.data()), body.size());
    const char* message = decoder.custom_message();
    fail_malformed(result, offset, message ? message : simdjson::error_message(err));
    return result;
  }
  if (!decoder.shape_problem.empty()) {
    fail_shape(result, std::move(decoder.shape_problem));
    return result;
  }
  if (doc.current_location().get(location) == SUCCESS) {
    size_t offset = static_cast<size_t>(location - padded.data());
    if (offset < body.size()) {
      fail_malformed(result, offset, "unexpected content after the JSON value");
      return result;
    }
  }
  return result;
}

} // namespace sluice
