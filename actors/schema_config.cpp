#include "actors/schema_config.hpp"

#include <caf/config_value.hpp>

#include <algorithm>

#include <fmt/format.h>

namespace sluice {

namespace {

using caf::config_value;

std::string load_field(const std::string& where, const std::string& name, const config_value& v,
                       field_rule& f) {
  f.name = name;
  if (auto text = caf::get_if<std::string>(&v)) { // shorthand: `title_id = "string"`
    auto t = parse_field_type(*text);
    if (!t)
      return fmt::format("invalid value for '{}': unknown type \"{}\" (use string, int, number, "
                         "bool, object, array, timestamp or any)",
                         where, *text);
    f.type = *t;
    return {};
  }
  auto rules = caf::get_if<caf::settings>(&v);
  if (rules == nullptr)
    return fmt::format("invalid value for '{}': expected a type name or a map such as "
                       "{{ type = \"int\", min = 0 }}",
                       where);
  for (auto& [key, value] : *rules) {
    auto at = where + "." + key;
    auto integer = caf::get_if<config_value::integer>(&value);
    auto real = caf::get_if<double>(&value);
    auto number = [&](std::optional<double>& dst) -> std::string {
      if (integer)
        dst = static_cast<double>(*integer);
      else if (real)
        dst = *real;
      else
        return fmt::format("invalid value for '{}': expected a number", at);
      return {};
    };
    if (key == "type") {
      auto text = caf::get_if<std::string>(&value);
      auto t = text ? parse_field_type(*text) : std::nullopt;
      if (!t)
        return fmt::format("invalid value for '{}': expected one of \"string\", \"int\", "
                           "\"number\", \"bool\", \"object\", \"array\", \"timestamp\", \"any\"",
                           at);
      f.type = *t;
    } else if (key == "required") {
      auto b = caf::get_if<bool>(&value);
      if (!b)
        return fmt::format("invalid value for '{}': expected true or false", at);
      f.required = *b;
    } else if (key == "enum") {
      auto list = caf::get_if<config_value::list>(&value);
      if (!list)
        return fmt::format("invalid value for '{}': expected a list of strings", at);
      for (auto& item : *list) {
        auto s = caf::get_if<std::string>(&item);
        if (!s)
          return fmt::format("invalid value for '{}': expected a list of quoted strings", at);
        f.enum_values.push_back(*s);
      }
    } else if (key == "min") {
      if (auto err = number(f.min); !err.empty())
        return err;
    } else if (key == "max") {
      if (auto err = number(f.max); !err.empty())
        return err;
    } else if (key == "pattern") {
      auto s = caf::get_if<std::string>(&value);
      if (!s)
        return fmt::format("invalid value for '{}': expected a quoted RE2 pattern", at);
      f.pattern = *s;
    } else if (key == "max-length" || key == "max-items") {
      if (!integer || *integer <= 0)
        return fmt::format("invalid value for '{}': expected a positive integer", at);
      (key == "max-length" ? f.max_length : f.max_items) = static_cast<size_t>(*integer);
    } else {
      return fmt::format("unknown key '{}' (known keys: type required enum min max pattern "
                         "max-length max-items)",
                         at);
    }
  }
  return {};
}

std::string load_type(const std::string& type, const caf::settings& section, event_schema& s) {
  s.type = type;
  std::vector<std::string> required;
  for (auto& [key, value] : section) {
    auto at = "schemas." + type + "." + key;
    auto integer = caf::get_if<config_value::integer>(&value);
    if (key == "version") {
      if (!integer || *integer < 1)
        return fmt::format("invalid value for '{}': expected a positive integer", at);
      s.version = static_cast<uint32_t>(*integer);
    } else if (key == "max-event-bytes") {
      if (!integer || *integer < 0)
        return fmt::format("invalid value for '{}': expected a byte count", at);
      s.max_event_bytes = static_cast<size_t>(*integer);
    } else if (key == "allow-other-fields") {
      auto b = caf::get_if<bool>(&value);
      if (!b)
        return fmt::format("invalid value for '{}': expected true or false", at);
      s.allow_other_fields = *b;
    } else if (key == "required") {
      auto list = caf::get_if<config_value::list>(&value);
      if (!list)
        return fmt::format("invalid value for '{}': expected a list of field names", at);
      for (auto& item : *list) {
        auto name = caf::get_if<std::string>(&item);
        if (!name)
          return fmt::format("invalid value for '{}': expected a list of quoted field names", at);
        required.push_back(*name);
      }
    } else if (key == "fields") {
      auto fields = caf::get_if<caf::settings>(&value);
      if (!fields)
        return fmt::format("invalid value for '{}': expected a map of field = rules", at);
      for (auto& [name, rules] : *fields) {
        field_rule f;
        if (auto err = load_field(at + "." + name, name, rules, f); !err.empty())
          return err;
        s.fields.push_back(std::move(f));
      }
    } else {
      return fmt::format("unknown key '{}' (known keys: version required fields max-event-bytes "
                         "allow-other-fields)",
                         at);
    }
  }
  for (auto& name : required) {
    auto it = std::find_if(s.fields.begin(), s.fields.end(),
                           [&](const field_rule& f) { return f.name == name; });
    if (it == s.fields.end()) {
      field_rule f;
      f.name = name;
      f.required = true;
      s.fields.push_back(std::move(f));
    } else {
      it->required = true;
    }
  }
  return {};
}

} // namespace

std::string load_schemas(const caf::settings& section, schema_registry& out) {
  for (auto& [key, value] : section) {
    if (auto sub = caf::get_if<caf::settings>(&value)) {
      event_schema s;
      if (auto err = load_type(key, *sub, s); !err.empty())
        return err;
      if (auto err = out.add(std::move(s)); !err.empty())
        return err;
      continue;
    }
    auto text = caf::get_if<std::string>(&value);
    if (key == "unknown-types") {
      if (!text || (*text != "accept" && *text != "reject"))
        return "invalid value for 'schemas.unknown-types': use \"accept\" or \"reject\"";
      out.unknown_types = *text == "accept" ? schema_registry::unknown_policy::accept
                                            : schema_registry::unknown_policy::reject;
    } else if (key == "version-attribute") {
      if (!text)
        return "invalid value for 'schemas.version-attribute': expected a quoted attribute name";
      out.version_attribute = *text;
    } else {
      return fmt::format("unknown option 'schemas.{}' (schemas.unknown-types, "
                         "schemas.version-attribute, or a [schemas.<type>] section)",
                         key);
    }
  }
  return {};
}

std::string schemas_help() {
  return "  schemas.<type>.version=<integer> (default: 1)\n"
         "  schemas.<type>.required=<list of strings>  fields that must be present\n"
         "  schemas.<type>.max-event-bytes=<integer> (default: 0 = no limit)\n"
         "  schemas.<type>.allow-other-fields=<bool> (default: true)\n"
         "  schemas.<type>.fields={ <field> = \"<type>\" or { type, required, enum, min, max, "
         "pattern, max-length, max-items } }\n"
         "      types: string int number bool object array timestamp any (docs/schemas.md)\n";
}

} // namespace sluice
