#pragma once

#include <caf/config_value.hpp>
#include <caf/settings.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

namespace sluice {

/// Renders a timespan the way CAF's config format reads it back (`250ms`, `5s`, `2min`).
std::string render_timespan(caf::timespan x);

/// The option table of one configurable component (a sink kind, a route): name, type, default and
/// description of every key, bound to the members of the component's config struct. The same table
/// loads and validates a config section (rejecting unknown keys by name), renders `--help`, and
/// renders the commented example in `conf/`.
template <class Config>
class option_table {
public:
  struct entry {
    std::string name;
    std::string type;
    std::string description;
    std::function<std::string(const Config&)> show;
    /// Stores the value; returns an error text (empty on success).
    std::function<std::string(Config&, const caf::config_value&)> store;
  };

  template <class T>
  option_table& add(T Config::*member, std::string name, std::string description) {
    entry e;
    e.name = std::move(name);
    e.description = std::move(description);
    e.type = type_name<T>();
    e.show = [member](const Config& cfg) { return show_value(cfg.*member); };
    e.store = [member](Config& cfg, const caf::config_value& v) {
      return store_value(cfg.*member, v);
    };
    entries_.push_back(std::move(e));
    return *this;
  }

  const std::vector<entry>& entries() const noexcept {
    return entries_;
  }

  /// Loads `section` into `cfg`. `where` names the section in error texts (e.g. `sinks.events`).
  /// Returns an error text naming the offending key, or empty on success.
  std::string load(Config& cfg, const caf::settings& section, const std::string& where) const {
    for (auto& [key, value] : section) {
      const entry* found = nullptr;
      for (auto& e : entries_)
        if (e.name == key)
          found = &e;
      if (found == nullptr)
        return "unknown key '" + where + "." + key + "'" + known_keys();
      if (auto err = found->store(cfg, value); !err.empty())
        return "invalid value for '" + where + "." + key + "': " + err;
    }
    return {};
  }

  /// One line per option: `  <prefix>.<name>=<type> (default: x)  description`.
  std::string help(const std::string& prefix, const Config& defaults = Config{}) const {
    std::string out;
    for (auto& e : entries_)
      out += "  " + prefix + "." + e.name + "=<" + e.type + "> (default: " + e.show(defaults)
             + ")\n      " + e.description + "\n";
    return out;
  }

private:
  std::string known_keys() const {
    std::string out = " (known keys:";
    for (auto& e : entries_)
      out += " " + e.name;
    return out + ")";
  }

  template <class T>
  static std::string type_name() {
    if constexpr (std::is_same_v<T, bool>)
      return "bool";
    else if constexpr (std::is_integral_v<T>)
      return "integer";
    else if constexpr (std::is_floating_point_v<T>)
      return "real";
    else if constexpr (std::is_same_v<T, std::string>)
      return "string";
    else if constexpr (std::is_same_v<T, caf::timespan>)
      return "timespan";
    else
      return "list of strings";
  }

  template <class T>
  static std::string show_value(const T& x) {
    if constexpr (std::is_same_v<T, bool>)
      return x ? "true" : "false";
    else if constexpr (std::is_arithmetic_v<T>)
      return std::to_string(x);
    else if constexpr (std::is_same_v<T, std::string>)
      return "\"" + x + "\"";
    else if constexpr (std::is_same_v<T, caf::timespan>)
      return render_timespan(x);
    else {
      std::string out = "[";
      for (size_t i = 0; i < x.size(); ++i)
        out += (i ? ", \"" : "\"") + x[i] + "\"";
      return out + "]";
    }
  }

  template <class T>
  static std::string store_value(T& dst, const caf::config_value& v) {
    if constexpr (std::is_same_v<T, bool>) {
      if (auto p = caf::get_if<bool>(&v)) {
        dst = *p;
        return {};
      }
      return "expected true or false";
    } else if constexpr (std::is_integral_v<T>) {
      if (auto p = caf::get_if<caf::config_value::integer>(&v)) {
        if (std::is_unsigned_v<T> && *p < 0)
          return "expected a non-negative integer";
        dst = static_cast<T>(*p);
        return {};
      }
      return "expected an integer";
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto p = caf::get_if<double>(&v)) {
        dst = *p;
        return {};
      }
      if (auto p = caf::get_if<caf::config_value::integer>(&v)) {
        dst = static_cast<T>(*p);
        return {};
      }
      return "expected a number";
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (auto p = caf::get_if<std::string>(&v)) {
        dst = *p;
        return {};
      }
      return "expected a quoted string";
    } else if constexpr (std::is_same_v<T, caf::timespan>) {
      if (auto p = caf::get_if<caf::timespan>(&v)) {
        dst = *p;
        return {};
      }
      return "expected a duration such as 250ms, 5s or 1min";
    } else {
      if (auto p = caf::get_if<caf::config_value::list>(&v)) {
        dst.clear();
        for (auto& item : *p) {
          auto s = caf::get_if<std::string>(&item);
          if (s == nullptr)
            return "expected a list of quoted strings";
          dst.push_back(*s);
        }
        return {};
      }
      if (auto p = caf::get_if<std::string>(&v)) {
        dst = {*p};
        return {};
      }
      return "expected a list of quoted strings such as [\"a\", \"b\"]";
    }
  }

  std::vector<entry> entries_;
};

} // namespace sluice
