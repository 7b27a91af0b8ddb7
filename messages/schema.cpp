// Schema validation: one walk over an event's top-level attributes with the codec's msgpack reader.

#include "messages/schema.hpp"

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

namespace sluice {

namespace {

using detail::mp_reader;
using detail::mp_token;
using detail::mp_type;

constexpr std::array<std::pair<field_type, std::string_view>, 8> type_names = {{
  {field_type::any, "any"},
  {field_type::string, "string"},
  {field_type::integer, "int"},
  {field_type::number, "number"},
  {field_type::boolean, "bool"},
  {field_type::object, "object"},
  {field_type::array, "array"},
  {field_type::timestamp, "timestamp"},
}};

/// Envelope bytes counted besides the strings: `ts`, `ingest_ts` and `offset` (8 bytes each).
constexpr size_t envelope_fixed_bytes = 24;

std::string_view token_type_name(const mp_token& t) {
  switch (t.type) {
    case mp_type::nil: return "null";
    case mp_type::boolean: return "bool";
    case mp_type::uint:
    case mp_type::sint: return "int";
    case mp_type::float32:
    case mp_type::float64: return "number";
    case mp_type::str: return "string";
    case mp_type::bin: return "binary";
    case mp_type::ext: return "extension";
    case mp_type::array: return "array";
    case mp_type::map: return "object";
  }
  return "unknown";
}

bool is_int(const mp_token& t) {
  return t.type == mp_type::sint
         || (t.type == mp_type::uint && t.u <= static_cast<uint64_t>(INT64_MAX));
}

double numeric(const mp_token& t) {
  switch (t.type) {
    case mp_type::uint: return static_cast<double>(t.u);
    case mp_type::sint: return static_cast<double>(t.i);
    default: return t.d;
  }
}

bool type_matches(field_type want, const mp_token& t) {
  switch (want) {
    case field_type::any: return true;
    case field_type::string: return t.type == mp_type::str;
    case field_type::integer: return is_int(t);
    case field_type::number:
      return is_int(t) || t.type == mp_type::float32 || t.type == mp_type::float64;
    case field_type::boolean: return t.type == mp_type::boolean;
    case field_type::object: return t.type == mp_type::map;
    case field_type::array: return t.type == mp_type::array;
    case field_type::timestamp:
      return is_int(t) || (t.type == mp_type::str && parse_rfc3339_ms(t.bytes).has_value());
  }
  return false;
}

std::string render_list(const std::vector<std::string>& xs) {
  std::string out = "[";
  for (size_t i = 0; i < xs.size(); ++i)
    out += (i ? ", " : "") + xs[i];
  return out + "]";
}

// Checks one value against its rule; returns false with `v` filled.
bool check_value(const event_schema& s, const field_rule& f, const mp_token& t,
                 schema_violation& v) {
  auto fail = [&](std::string_view rule, std::string what) {
    v.rule = rule;
    v.message = fmt::format("schema {}: field {}: {}", s.label, f.name, what);
    return false;
  };
  if (!type_matches(f.type, t)) {
    if (f.type == field_type::timestamp && t.type == mp_type::str)
      return fail("type", "expected timestamp (epoch ms or RFC 3339), got a string that is not "
                          "RFC 3339");
    return fail("type", fmt::format("expected {}, got {}", field_type_name(f.type),
                                    token_type_name(t)));
  }
  if (t.type == mp_type::str) {
    if (f.max_length > 0 && t.bytes.size() > f.max_length)
      return fail("max-length", fmt::format("string of {} bytes, longer than max-length {}",
                                            t.bytes.size(), f.max_length));
    if (!f.enum_values.empty()
        && std::find(f.enum_values.begin(), f.enum_values.end(), t.bytes) == f.enum_values.end())
      return fail("enum", fmt::format("value \"{}\" not in enum {}", t.bytes,
                                      render_list(f.enum_values)));
    if (f.regex
        && !re2::RE2::PartialMatch(re2::StringPiece(t.bytes.data(), t.bytes.size()), *f.regex))
      return fail("pattern", fmt::format("value \"{}\" does not match pattern {}", t.bytes,
                                         f.pattern));
  }
  if (is_int(t) || t.type == mp_type::float32 || t.type == mp_type::float64) {
    if (f.type == field_type::integer || f.type == field_type::number) {
      double x = numeric(t);
      if (f.min && x < *f.min)
        return fail("min", fmt::format("below minimum {}", *f.min));
      if (f.max && x > *f.max)
        return fail("max", fmt::format("above maximum {}", *f.max));
    }
  }
  if ((t.type == mp_type::array || t.type == mp_type::map) && f.max_items > 0
      && t.count > f.max_items)
    return fail("max-items", fmt::format("{} items, more than max-items {}", t.count,
                                         f.max_items));
  return true;
}

void append_number(std::string& out, double x) {
  out += fmt::format("{}", x);
}

} // namespace

std::string_view field_type_name(field_type t) noexcept {
  for (auto& [k, name] : type_names)
    if (k == t)
      return name;
  return "any";
}

std::optional<field_type> parse_field_type(std::string_view name) noexcept {
  for (auto& [k, n] : type_names)
    if (n == name)
      return k;
  if (name == "integer")
    return field_type::integer;
  if (name == "boolean")
    return field_type::boolean;
  return std::nullopt;
}

std::string schema_registry::add(event_schema s) {
  if (s.type.empty())
    return "a schema needs an event type";
  std::sort(s.fields.begin(), s.fields.end(),
            [](const field_rule& a, const field_rule& b) { return a.name < b.name; });
  for (size_t i = 0; i < s.fields.size(); ++i) {
    auto& f = s.fields[i];
    if (i > 0 && s.fields[i - 1].name == f.name)
      return fmt::format("schema {}: field {} is declared twice", s.type, f.name);
    if (f.min && f.max && *f.min > *f.max)
      return fmt::format("schema {}: field {}: min {} is above max {}", s.type, f.name, *f.min,
                         *f.max);
    bool numeric_type = f.type == field_type::integer || f.type == field_type::number;
    if ((f.min || f.max) && !numeric_type)
      return fmt::format("schema {}: field {}: min and max need type int or number (it is {})",
                         s.type, f.name, field_type_name(f.type));
    bool stringy = f.type == field_type::string || f.type == field_type::any;
    if ((!f.pattern.empty() || !f.enum_values.empty() || f.max_length > 0) && !stringy)
      return fmt::format("schema {}: field {}: pattern, enum and max-length need type string "
                         "(it is {})",
                         s.type, f.name, field_type_name(f.type));
    if (!f.pattern.empty()) {
      re2::RE2::Options opts;
      opts.set_log_errors(false);
      auto re = std::make_shared<re2::RE2>(f.pattern, opts);
      if (!re->ok())
        return fmt::format("schema {}: field {}: invalid pattern \"{}\": {}", s.type, f.name,
                           f.pattern, re->error());
      f.regex = std::move(re);
    }
  }
  s.label = fmt::format("{}@{}", s.type, s.version);
  auto key = s.type;
  schemas_[key] = std::move(s);
  return {};
}

const event_schema* schema_registry::find(std::string_view type) const {
  auto i = schemas_.find(type);
  return i == schemas_.end() ? nullptr : &i->second;
}

bool schema_registry::validate(const event& e, const event_schema*& schema,
                               schema_violation& v) const {
  schema = find(e.type);
  if (schema == nullptr) {
    if (unknown_types == unknown_policy::accept)
      return true;
    v.rule = "unknown-type";
    v.message = fmt::format("no schema for event type '{}' (schemas.unknown-types = \"reject\")",
                            e.type);
    return false;
  }
  const auto& s = *schema;
  if (s.max_event_bytes > 0) {
    size_t bytes = e.attrs.size() + e.id.size() + e.type.size() + e.device_id.size()
                   + e.profile_id.size() + envelope_fixed_bytes;
    if (bytes > s.max_event_bytes) {
      v.rule = "max-event-bytes";
      v.message = fmt::format("schema {}: event of {} bytes, more than max-event-bytes {}",
                              s.label, bytes, s.max_event_bytes);
      return false;
    }
  }
  // Which fields were seen: a bit per field up to 64 (the usual case), else a reused vector.
  const size_t n = s.fields.size();
  uint64_t seen_bits = 0;
  thread_local std::vector<uint8_t> seen_many;
  const bool many = n > 64;
  if (many)
    seen_many.assign(n, 0);
  if (!e.attrs.empty()) {
    mp_reader r{e.attrs};
    mp_token header;
    if (!r.next(header) || header.type != mp_type::map) {
      v.rule = "type";
      v.message = fmt::format("schema {}: the attributes are not a map", s.label);
      return false;
    }
    for (uint32_t k = 0; k < header.count; ++k) {
      mp_token key;
      if (!r.next(key) || key.type != mp_type::str) {
        v.rule = "type";
        v.message = fmt::format("schema {}: corrupt attributes", s.label);
        return false;
      }
      auto it = std::lower_bound(s.fields.begin(), s.fields.end(), key.bytes,
                                 [](const field_rule& f, std::string_view name) {
                                   return f.name < name;
                                 });
      const bool known = it != s.fields.end() && it->name == key.bytes;
      if (!known && !s.allow_other_fields) {
        v.rule = "unknown-field";
        v.message = fmt::format("schema {}: field {}: not in the schema (allow-other-fields is "
                                "false)",
                                s.label, key.bytes);
        return false;
      }
      if (!known || it->type == field_type::any) {
        if (known) {
          auto idx = static_cast<size_t>(it - s.fields.begin());
          many ? void(seen_many[idx] = 1) : void(seen_bits |= uint64_t{1} << idx);
        }
        if (!r.skip()) {
          v.rule = "type";
          v.message = fmt::format("schema {}: corrupt attributes", s.label);
          return false;
        }
        continue;
      }
      auto idx = static_cast<size_t>(it - s.fields.begin());
      many ? void(seen_many[idx] = 1) : void(seen_bits |= uint64_t{1} << idx);
      mp_reader probe = r;
      mp_token value;
      if (!probe.next(value) || !r.skip()) {
        v.rule = "type";
        v.message = fmt::format("schema {}: corrupt attributes", s.label);
        return false;
      }
      if (!check_value(s, *it, value, v))
        return false;
    }
  }
  for (size_t idx = 0; idx < n; ++idx) {
    bool seen = many ? seen_many[idx] != 0 : (seen_bits >> idx) & 1;
    if (!seen && s.fields[idx].required) {
      v.rule = "required";
      v.message = fmt::format("schema {}: field {}: missing (required)", s.label,
                              s.fields[idx].name);
      return false;
    }
  }
  return true;
}

std::string schema_registry::to_json(const event_schema& s) {
  std::string out = "{\"type\":";
  append_json_string(out, s.type);
  out += ",\"version\":" + std::to_string(s.version) + ",\"label\":";
  append_json_string(out, s.label);
  out += ",\"max_event_bytes\":" + std::to_string(s.max_event_bytes);
  out += ",\"allow_other_fields\":";
  out += s.allow_other_fields ? "true" : "false";
  out += ",\"fields\":[";
  for (size_t i = 0; i < s.fields.size(); ++i) {
    auto& f = s.fields[i];
    if (i > 0)
      out += ',';
    out += "{\"name\":";
    append_json_string(out, f.name);
    out += ",\"type\":";
    append_json_string(out, field_type_name(f.type));
    out += ",\"required\":";
    out += f.required ? "true" : "false";
    if (!f.enum_values.empty()) {
      out += ",\"enum\":[";
      for (size_t k = 0; k < f.enum_values.size(); ++k) {
        if (k > 0)
          out += ',';
        append_json_string(out, f.enum_values[k]);
      }
      out += ']';
    }
    if (f.min) {
      out += ",\"min\":";
      append_number(out, *f.min);
    }
    if (f.max) {
      out += ",\"max\":";
      append_number(out, *f.max);
    }
    if (!f.pattern.empty()) {
      out += ",\"pattern\":";
      append_json_string(out, f.pattern);
    }
    if (f.max_length > 0)
      out += ",\"max_length\":" + std::to_string(f.max_length);
    if (f.max_items > 0)
      out += ",\"max_items\":" + std::to_string(f.max_items);
    out += '}';
  }
  return out + "]}";
}

std::string schema_registry::to_json() const {
  std::string out = "{\"unknown_types\":";
  out += unknown_types == unknown_policy::accept ? "\"accept\"" : "\"reject\"";
  out += ",\"version_attribute\":";
  append_json_string(out, version_attribute);
  out += ",\"schemas\":[";
  bool first = true;
  for (auto& [type, s] : schemas_) {
    if (!first)
      out += ',';
    first = false;
    out += to_json(s);
  }
  return out + "]}";
}

} // namespace sluice
