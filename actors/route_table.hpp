#pragma once

#include "actors/option_table.hpp"
#include "actors/predicate.hpp"

#include <caf/settings.hpp>

#include <string>
#include <vector>

namespace sluice {

/// Options of one `[routes.<name>]` section.
struct route_config {
  /// Predicate over event fields; empty matches every event.
  std::string when;
  /// Names of the sinks (sections `[sinks.<name>]`) that receive matching events.
  std::vector<std::string> sinks;

  static const option_table<route_config>& options();
};

/// Name of the route that receives events no other route matched.
inline constexpr const char* unmatched_route = "_unmatched";

/// One compiled route.
struct route {
  std::string name;
  std::string when;
  predicate pred;
  /// Indexes into the sink name list given to `load_routes`.
  std::vector<size_t> sinks;
};

/// The compiled routes of a node. An event goes to every route whose predicate it satisfies; an
/// event that satisfies none goes to the `_unmatched` route (its `when` must be empty).
///
/// Lifecycle: built once by `load_routes`, then immutable; `match` is const and allocation-free.
struct route_table {
  std::vector<route> routes;
  /// Sinks of `_unmatched` (empty: unmatched events go nowhere, counted as unrouted).
  std::vector<size_t> unmatched_sinks;

  /// Calls `fn(route_index)` for each matching route; returns false when none matched.
  template <class F>
  bool match(const event& e, F&& fn) const {
    bool any = false;
    for (size_t i = 0; i < routes.size(); ++i) {
      if (routes[i].pred.eval(e)) {
        any = true;
        fn(i);
      }
    }
    return any;
  }
};

/// Compiles every `[routes.<name>]` section. `sink_names` are the configured sinks. Returns an
/// error text naming the route and, for predicate errors, the line and column.
std::string load_routes(const caf::settings& routes, const std::vector<std::string>& sink_names,
                        route_table& out);

} // namespace sluice
