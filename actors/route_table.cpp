#include "actors/route_table.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/message.hpp>
#include <caf/pec.hpp>

#include <algorithm>
#include <sstream>

#include <fmt/format.h>
#include "messages/text.hpp"

namespace sluice {

const option_table<route_config>& route_config::options() {
  static const auto table = [] {
    option_table<route_config> t;
    t.add(&route_config::when, "when",
          "predicate over event fields, e.g. type == \"error\" and attrs.player.codec exists or "
          "attrs.message matches \"^E[0-9]+\"; empty matches every event")
      .add(&route_config::sinks, "sinks", "sinks that receive matching events, e.g. [\"errors\"]")
      .add(&route_config::keep, "keep",
           "attributes to keep, all others are removed from the copy (exclusive with drop), e.g. "
           "[\"title_id\", \"player.codec\"]")
      .add(&route_config::drop, "drop", "fields to remove, e.g. [\"debug\", \"profile_id\"]")
      .add(&route_config::mask, "mask", "fields replaced by \"[masked]\", e.g. [\"ip\"]")
      .add(&route_config::hash, "hash",
           "fields replaced by their keyed pseudonym (HMAC-SHA256 with pii.secret), e.g. "
           "[\"profile_id\", \"attrs.email\"]")
      .add(&route_config::rename, "rename", "renames \"from:to\", e.g. [\"cc:country\"]")
      .add(&route_config::pii, "pii",
           "detected PII (cards, e-mails, phones, IPs) in string values: mask, hash or off");
    return t;
  }();
  return table;
}

namespace {

/// Where a route's error points: the key whose value is wrong and, for predicates, the byte
/// offset inside the `when` text.
struct route_error {
  std::string text;
  std::string route;
  std::string key;
  size_t value_offset = std::string_view::npos;
};


// Offset in `text` of what an error about `key` of `[routes.<route>]` points at: the value of the
// key (into a quoted value by `value_offset` characters, escapes counted), else the section
// header; npos when the section is not in `text`.
size_t locate(std::string_view text, const route_error& err) {
  auto header = "routes." + err.route;
  size_t section_at = std::string_view::npos;
  bool in_section = false;
  size_t pos = 0;
  while (pos <= text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos)
      eol = text.size();
    auto line = text.substr(pos, eol - pos);
    auto t = trim_blanks(line);
    if (!t.empty() && t.front() == '[') {
      auto close = t.find(']');
      in_section = close != std::string_view::npos && trim_blanks(t.substr(1, close - 1)) == header;
      if (in_section && section_at == std::string_view::npos)
        section_at = pos + static_cast<size_t>(t.data() - line.data());
    } else if (in_section && !err.key.empty() && t.substr(0, err.key.size()) == err.key) {
      auto rest = t.substr(err.key.size());
      auto r = trim_blanks(rest);
      if (!r.empty() && r.front() == '=') {
        size_t v = static_cast<size_t>(r.data() - text.data()) + 1;
        while (v < eol && (text[v] == ' ' || text[v] == '\t'))
          ++v;
        if (err.value_offset == std::string_view::npos || v >= eol || text[v] != '"')
          return v;
        size_t raw = v + 1;
        for (size_t k = 0; k < err.value_offset && raw < eol; ++k)
          raw += text[raw] == '\\' ? 2 : 1;
        return std::min(raw, eol);
      }
    }
    pos = eol + 1;
  }
  if (section_at == std::string_view::npos) // a header after other content: `][routes.b]`
    if (auto at = text.find("[" + header + "]"); at != std::string_view::npos)
      return at;
  return section_at;
}

std::string line_column(std::string_view text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return fmt::format("line {}, column {}", line, col);
}

// Compiles every route; on failure fills `err`.
bool compile_all(const caf::settings& routes, const std::vector<std::string>& sink_names,
                 route_table& out, route_error& err) {
  out = route_table{};
  for (auto& [name, value] : routes) {
    auto where = "routes." + name;
    err.route = name;
    auto section = caf::get_if<caf::settings>(&value);
    if (section == nullptr) {
      err.text = fmt::format("'{}' must be a section [{}] with 'when' and 'sinks'", where, where);
      return false;
    }
    route_config cfg;
    if (auto e = route_config::options().load(cfg, *section, where); !e.empty()) {
      err.text = e;
      for (auto& [key, v] : *section)
        if (e.find("'" + where + "." + key + "'") != std::string::npos)
          err.key = key;
      return false;
    }
    if (cfg.sinks.empty()) {
      err.key = section->count("sinks") ? "sinks" : "";
      err.text = fmt::format("'{}.sinks' is empty; name at least one sink", where);
      return false;
    }
    std::vector<size_t> sinks;
    for (auto& s : cfg.sinks) {
      auto i = std::find(sink_names.begin(), sink_names.end(), s);
      if (i == sink_names.end()) {
        err.key = "sinks";
        err.text = fmt::format("'{}.sinks' names \"{}\", which is not a configured sink "
                               "(configure [sinks.{}])",
                               where, s, s);
        return false;
      }
      sinks.push_back(static_cast<size_t>(i - sink_names.begin()));
    }
    route_actions actions;
    if (auto e = route_actions::compile(cfg.keep, cfg.drop, cfg.mask, cfg.hash, cfg.rename,
                                        cfg.pii, actions);
        !e.empty()) {
      // The message starts with the key it is about ('keep', 'drop', ...).
      auto close = e.find('\'', 1);
      err.key = e.front() == '\'' && close != std::string::npos ? e.substr(1, close - 1) : "";
      err.text = fmt::format("{}: {}", where, e);
      return false;
    }
    if (name == unmatched_route) {
      if (!cfg.when.empty()) {
        err.key = "when";
        err.text = fmt::format("'{}.when' must be empty: this route takes what no other route "
                               "matched",
                               where);
        return false;
      }
      out.unmatched_sinks = std::move(sinks);
      out.unmatched_actions = std::move(actions);
      continue;
    }
    route r;
    r.name = name;
    r.when = cfg.when;
    r.sinks = std::move(sinks);
    r.actions = std::move(actions);
    std::string error;
    size_t offset = 0;
    if (!r.pred.compile(cfg.when, error, offset)) {
      err.key = "when";
      err.value_offset = offset;
      err.text = fmt::format("'{}.when': {}", where, error);
      return false;
    }
    r.pred.assign_slots(out.attr_paths);
    out.routes.push_back(std::move(r));
  }
  err = route_error{};
  return true;
}

} // namespace

std::string load_routes(const caf::settings& routes, const std::vector<std::string>& sink_names,
                        route_table& out, std::string_view source) {
  route_error err;
  if (compile_all(routes, sink_names, out, err))
    return {};
  if (!source.empty())
    if (auto at = locate(source, err); at != std::string_view::npos)
      return line_column(source, at) + ": " + err.text;
  return err.text;
}

std::string compile_routes_text(std::string_view ini_text,
                                const std::vector<std::string>& sink_names, route_table& out) {
  std::istringstream in{std::string{ini_text}};
  auto parsed = caf::actor_system_config::parse_config(in);
  if (!parsed) {
    auto& e = parsed.error();
    auto ctx = e.context();
    std::string where = "line 1, column 1";
    if (ctx.match_elements<caf::settings>()) {
      auto& pos = ctx.get_as<caf::settings>(0);
      where = fmt::format("line {}, column {}", caf::get_or(pos, "line", int64_t{1}),
                          caf::get_or(pos, "column", int64_t{1}));
    }
    std::string what = e.category() == caf::atom("parser")
                         ? caf::to_string(static_cast<caf::pec>(e.code()))
                         : caf::to_string(e);
    std::replace(what.begin(), what.end(), '_', ' ');
    return fmt::format("{}: the text is not valid INI ({}); write sections [routes.<name>] "
                       "with lines key = value, strings in double quotes, lists in [...]",
                       where, what);
  }
  out = route_table{};
  // CAF 0.17 drops a section whose list is never closed without an error: every [routes.<name>]
  // header of the text must have been read.
  size_t pos = 0;
  while ((pos = ini_text.find("[routes.", pos)) != std::string_view::npos) {
    bool line_start = pos == 0 || ini_text[pos - 1] == '\n';
    auto close = ini_text.find(']', pos);
    auto eol = ini_text.find('\n', pos);
    if (line_start && close != std::string_view::npos && close < eol) {
      auto name = std::string{ini_text.substr(pos + 8, close - pos - 8)};
      auto r = parsed->find("routes");
      auto routes = r == parsed->end() ? nullptr : caf::get_if<caf::settings>(&r->second);
      if (routes == nullptr || routes->count(name) == 0)
        return fmt::format("{}: the section [routes.{}] could not be read: a list or string in "
                           "it is not closed (write lists as [\"a\", \"b\"] on one line)",
                           line_column(ini_text, pos), name);
    }
    pos += 8;
  }
  auto i = parsed->find("routes");
  if (i == parsed->end())
    return "line 1, column 1: no [routes.<name>] section; a route set needs at least one route "
           "(e.g. [routes._unmatched] with sinks = [\"events\"])";
  auto routes = caf::get_if<caf::settings>(&i->second);
  if (routes == nullptr)
    return "line 1, column 1: 'routes' must hold sections [routes.<name>]";
  auto err = load_routes(*routes, sink_names, out, ini_text);
  if (!err.empty() && err.rfind("line ", 0) != 0) // the route's section was not found in the text
    err = "line 1, column 1: " + err;
  return err;
}

std::string check_route_secret(const route_table& table, bool have_secret) {
  if (have_secret)
    return {};
  auto msg = [](const std::string& name) {
    return fmt::format("route '{}' hashes fields or PII but no secret is configured: set "
                       "pii.secret or the environment variable {} (at least {} bytes); sluice "
                       "never writes an unsalted hash",
                       name, pii_secret_env, min_pii_secret_bytes);
  };
  for (auto& r : table.routes)
    if (r.actions.uses_hash())
      return msg(r.name);
  if (table.unmatched_actions.uses_hash())
    return msg(unmatched_route);
  return {};
}

} // namespace sluice
