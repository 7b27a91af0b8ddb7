// JSON rendering of events for sinks: `append_json` and the string escaper.
//
// Attribute values map back from msgpack as: nil → null, bool, int/uint → integer, float32/float64
// → number (non-finite → null), str → string, array/map → array/object, bin → base64 string
// (RFC 4648, with padding), ext → null. Map keys that are not strings render as their decimal text
// (integers) or are dropped with their value (anything else). Invalid UTF-8 in strings is replaced
// by U+FFFD so that the output is always valid JSON.

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <array>
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

constexpr char hex_digits[] = "0123456789abcdef";

void append_escaped_ascii(std::string& out, unsigned char c) {
  switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default: {
      char buf[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0xf]};
      out.append(buf, sizeof buf);
    }
  }
}

bool needs_escape(unsigned char c) {
  return c < 0x20 || c == '"' || c == '\\';
}

void append_base64(std::string& out, std::string_view bytes) {
  static constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out += '"';
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
                    alphabet[v & 63]};
    out.append(quad, 4);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = at(i) << 16;
    char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], '=', '='};
    out.append(quad, 4);
  } else if (rest == 2) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], '='};
    out.append(quad, 4);
  }
  out += '"';
}

bool render_value(std::string& out, mp_reader& r, size_t depth);

// Renders one map key; returns false (after skipping it) when the key cannot be a JSON key.
bool render_key(std::string& out, mp_reader& r, bool& ok) {
  mp_reader probe = r;
  mp_token t;
  if (!probe.next(t)) {
    ok = false;
    return false;
  }
  switch (t.type) {
    case mp_type::str:
    case mp_type::bin:
      r = probe;
      append_json_string(out, t.bytes);
      return true;
    case mp_type::uint:
      r = probe;
      out += '"';
      out += fmt::format_int(t.u).c_str();
      out += '"';
      return true;
    case mp_type::sint:
      r = probe;
      out += '"';
      out += fmt::format_int(t.i).c_str();
      out += '"';
      return true;
    default:
      ok = r.skip();
      return false;
  }
}

// Renders the map entries that follow a map header of `count` pairs, each preceded by a comma
// when `first` is false. Entries with unusable keys are dropped, as are (with `skip_reserved`) the
// keys `append_json` already wrote for the envelope. Returns false on corrupt bytes.
bool render_entries(std::string& out, mp_reader& r, uint32_t count, size_t depth, bool first,
                    bool skip_reserved);

bool is_envelope_key(std::string_view k) {
  return k == "id" || k == "type" || k == "device_id" || k == "profile_id" || k == "ts"
         || k == "ingest_ts" || k == "offset" || k == "node";
}

bool render_entries(std::string& out, mp_reader& r, uint32_t count, size_t depth, bool first,
                    bool skip_reserved) {
  for (uint32_t n = 0; n < count; ++n) {
    size_t mark = out.size();
    if (!first)
      out += ',';
    if (skip_reserved) {
      mp_reader probe = r;
      mp_token t;
      if (probe.next(t) && t.type == mp_type::str && is_envelope_key(t.bytes)) {
        out.resize(mark);
        r = probe;
        if (!r.skip())
          return false;
        continue;
      }
    }
    bool ok = true;
    if (!render_key(out, r, ok)) {
      out.resize(mark);
      if (!ok || !r.skip())
        return false;
      continue;
    }
    out += ':';
    if (!render_value(out, r, depth + 1)) {
      out.resize(mark);
      return false;
    }
    first = false;
  }
  return true;
}

bool render_value(std::string& out, mp_reader& r, size_t depth) {
  mp_token t;
  if (depth > max_render_depth) {
    out += "null";
    return r.skip();
  }
  if (!r.next(t))
    return false;
  switch (t.type) {
    case mp_type::nil:
      out += "null";
      return true;
    case mp_type::boolean:
      out += t.b ? "true" : "false";
      return true;
    case mp_type::uint: {
      fmt::format_int text{t.u};
      out.append(text.data(), text.size());
      return true;
    }
    case mp_type::sint: {
      fmt::format_int text{t.i};
      out.append(text.data(), text.size());
      return true;
    }
    case mp_type::float32:
      detail::append_json_float(out, static_cast<float>(t.d));
      return true;
    case mp_type::float64:
      detail::append_json_double(out, t.d);
      return true;
    case mp_type::str:
      append_json_string(out, t.bytes);
      return true;
    case mp_type::bin:
      append_base64(out, t.bytes);
      return true;
    case mp_type::ext:
      out += "null";
      return true;
    case mp_type::array:
      out += '[';
      for (uint32_t n = 0; n < t.count; ++n) {
        if (n > 0)
          out += ',';
        if (!render_value(out, r, depth + 1))
          return false;
      }
      out += ']';
      return true;
    case mp_type::map:
      out += '{';
      if (!render_entries(out, r, t.count, depth, true, false))
        return false;
      out += '}';
      return true;
  }
  return false;
}

} // namespace

void append_json_string(std::string& out, std::string_view s) {
  // Fast path: printable ASCII without quotes or backslashes (ids, types, keys, most values) is
  // copied as it is, in one append.
  const auto* bytes = reinterpret_cast<const unsigned char*>(s.data());
  size_t plain = 0;
  while (plain < s.size()) {
    auto c = bytes[plain];
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
      break;
    ++plain;
  }
  if (plain == s.size()) {
    auto at = out.size();
    out.resize(at + s.size() + 2);
    char* dst = out.data() + at;
    dst[0] = '"';
    if (!s.empty())
      std::memcpy(dst + 1, s.data(), s.size());
    dst[s.size() + 1] = '"';
    return;
  }
  out += '"';
  const bool valid_utf8 = simdjson::validate_utf8(s.data(), s.size());
  size_t run_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (needs_escape(c)) {
      out.append(s.data() + run_start, i - run_start);
      append_escaped_ascii(out, c);
      run_start = ++i;
    } else if (c >= 0x80 && !valid_utf8) {
      size_t len = detail::utf8_sequence_length(s, i);
      if (len == 0) {
        out.append(s.data() + run_start, i - run_start);
        out += "\\ufffd";
        run_start = ++i;
      } else {
        i += len;
      }
    } else {
      ++i;
    }
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out += '"';
}

void append_json(std::string& out, const event& e, std::string_view node) {
  out += "{\"id\":";
  append_json_string(out, e.id);
  out += ",\"type\":";
  append_json_string(out, e.type);
  out += ",\"device_id\":";
  append_json_string(out, e.device_id);
  if (!e.profile_id.empty()) {
    out += ",\"profile_id\":";
    append_json_string(out, e.profile_id);
  }
  auto append_int = [&out](auto v) {
    fmt::format_int text{v};
    out.append(text.data(), text.size());
  };
  out += ",\"ts\":";
  append_int(e.ts);
  out += ",\"ingest_ts\":";
  append_int(e.ingest_ts);
  out += ",\"offset\":";
  append_int(e.offset);
  if (!node.empty()) {
    out += ",\"node\":";
    append_json_string(out, node);
  }
  if (!e.attrs.empty()) {
    // Attributes named like an envelope field are left out (the envelope value is the one that
    // counts); corrupt attrs bytes end the attributes early, never the object.
    mp_reader r{e.attrs};
    mp_token header;
    if (r.next(header) && header.type == mp_type::map)
      render_entries(out, r, header.count, 0, false, true);
  }
  out += '}';
}

} // namespace sluice
