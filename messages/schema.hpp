#pragma once

// Event schemas and quality rules, checked once per event at ingest (gateway side, before the
// log). Plain C++ (no CAF); patterns are RE2, compiled once when a schema is added.

#include "messages/event.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace sluice {

/// The type a schema demands of an attribute.
enum class field_type : uint8_t {
  any,       ///< any value (only the field's presence is checked)
  string,    ///< msgpack str / JSON string
  integer,   ///< an integer ("int" in config)
  number,    ///< an integer or a floating-point number
  boolean,   ///< true / false ("bool" in config)
  object,    ///< a map
  array,     ///< an array
  timestamp, ///< epoch milliseconds (integer) or an RFC 3339 string
};

/// Config name of a field type (`string`, `int`, `number`, `bool`, `object`, `array`,
/// `timestamp`, `any`).
std::string_view field_type_name(field_type t) noexcept;

/// Parses a config name of a field type.
std::optional<field_type> parse_field_type(std::string_view name) noexcept;

/// The rules for one top-level attribute of an event type.
struct field_rule {
  std::string name;
  field_type type = field_type::any;
  bool required = false;
  /// Allowed values of a string field (empty: any).
  std::vector<std::string> enum_values;
  /// Inclusive bounds of an int / number field.
  std::optional<double> min;
  std::optional<double> max;
  /// RE2 pattern a string field must contain (unanchored search: anchor with ^ and $).
  std::string pattern;
  /// Largest string in bytes (0: no limit).
  size_t max_length = 0;
  /// Most elements of an array or entries of an object (0: no limit).
  size_t max_items = 0;
  /// `pattern`, compiled by `schema_registry::add`.
  std::shared_ptr<const re2::RE2> regex;
};

/// The schema of one event type.
struct event_schema {
  std::string type;
  uint32_t version = 1;
  /// Sorted by name by `schema_registry::add`.
  std::vector<field_rule> fields;
  /// Largest event in bytes: its encoded attributes plus its envelope strings (0: no limit).
  size_t max_event_bytes = 0;
  /// Whether attributes the schema does not name are allowed.
  bool allow_other_fields = true;
  /// `type@version`, stored with every accepted event.
  std::string label;
};

/// What a failed validation reports: the rule (a metric label) and a message naming the schema,
/// the field and the rule (`schema play@2: field position_ms: below minimum 0`).
struct schema_violation {
  std::string_view rule;
  std::string message;
};

/// Every schema of a node, by event type.
///
/// Lifecycle: filled once at start-up (`add` compiles patterns), then read-only: `validate` is
/// const and safe from every gateway io thread at once. Cost: one walk over the event's top-level
/// attributes (values are skipped, not decoded); no allocation when the event is valid.
class schema_registry {
public:
  /// What happens to an event whose type has no schema.
  enum class unknown_policy { accept, reject };

  /// Adds a schema (sorting its fields, compiling its patterns). Returns an error text naming the
  /// type and field, empty on success.
  std::string add(event_schema schema);

  /// The schema of `type`, or nullptr.
  const event_schema* find(std::string_view type) const;

  /// Checks `e`. Returns true when it may be stored; `schema` is then its schema (nullptr for an
  /// accepted type without one). On false, `violation` says why.
  bool validate(const event& e, const event_schema*& schema, schema_violation& violation) const;

  /// `{"unknown_types":"accept","version_attribute":"...","schemas":[...]}`.
  std::string to_json() const;

  /// One schema as a JSON object.
  static std::string to_json(const event_schema& s);

  bool empty() const noexcept {
    return schemas_.empty();
  }

  unknown_policy unknown_types = unknown_policy::accept;
  /// Attribute that carries `type@version` on accepted events (empty: not stored).
  std::string version_attribute = "schema_version";

private:
  std::map<std::string, event_schema, std::less<>> schemas_;
};

} // namespace sluice
