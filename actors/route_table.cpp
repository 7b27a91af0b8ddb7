#include "actors/route_table.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace sluice {

const option_table<route_config>& route_config::options() {
  static const auto table = [] {
    option_table<route_config> t;
    t.add(&route_config::when, "when",
          "predicate over event fields, e.g. type == \"error\" and attrs.player.codec exists; "
          "empty matches every event")
      .add(&route_config::sinks, "sinks", "sinks that receive matching events, e.g. [\"errors\"]");
    return t;
  }();
  return table;
}

std::string load_routes(const caf::settings& routes, const std::vector<std::string>& sink_names,
                        route_table& out) {
  out = route_table{};
  for (auto& [name, value] : routes) {
    auto where = "routes." + name;
    auto section = caf::get_if<caf::settings>(&value);
    if (section == nullptr)
      return fmt::format("'{}' must be a section [{}] with 'when' and 'sinks'", where, where);
    route_config cfg;
    if (auto err = route_config::options().load(cfg, *section, where); !err.empty())
      return err;
    if (cfg.sinks.empty())
      return fmt::format("'{}.sinks' is empty; name at least one sink", where);
    std::vector<size_t> sinks;
    for (auto& s : cfg.sinks) {
      auto i = std::find(sink_names.begin(), sink_names.end(), s);
      if (i == sink_names.end())
        return fmt::format("'{}.sinks' names \"{}\", which is not a configured sink (configure "
                           "[sinks.{}])",
                           where, s, s);
      sinks.push_back(static_cast<size_t>(i - sink_names.begin()));
    }
    if (name == unmatched_route) {
      if (!cfg.when.empty())
        return fmt::format("'{}.when' must be empty: this route takes what no other route "
                           "matched",
                           where);
      out.unmatched_sinks = std::move(sinks);
      continue;
    }
    route r;
    r.name = name;
    r.when = cfg.when;
    r.sinks = std::move(sinks);
    std::string error;
    if (!r.pred.compile(cfg.when, error))
      return fmt::format("'{}.when': {}", where, error);
    out.routes.push_back(std::move(r));
  }
  return {};
}

} // namespace sluice
