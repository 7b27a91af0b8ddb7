#pragma once

#include "actors/option_table.hpp"
#include "actors/predicate.hpp"
#include "actors/route_actions.hpp"

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
  /// Attributes to keep (all others are removed); exclusive with `drop`.
  std::vector<std::string> keep;
  /// Fields to remove.
  std::vector<std::string> drop;
  /// Fields replaced by `[masked]`.
  std::vector<std::string> mask;
  /// Fields replaced by their keyed pseudonym (HMAC-SHA256).
  std::vector<std::string> hash;
  /// Renames, `"from:to"`.
  std::vector<std::string> rename;
  /// What to do with detected PII: mask, hash or off.
  std::string pii = "mask";

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
  route_actions actions;
};

/// The compiled routes of a node. An event goes to every route whose predicate it satisfies; an
/// event that satisfies none goes to the `_unmatched` route (its `when` must be empty).
///
/// Order and delivery: routes are tried in the order of their names (byte order; CAF's settings
/// are sorted, so this order survives every round trip through the config and the route store).
/// A sink receives an event once: the first matching route that names the sink decides the
/// actions applied to that sink's copy. See docs/routes.md.
///
/// Lifecycle: built once by `load_routes` or `compile_routes_text`, then immutable and shared as
/// `std::shared_ptr<const route_table>`; `match` and `decide` are const and allocation-free.
struct route_table {
  std::vector<route> routes;
  /// Sinks of `_unmatched` (empty: unmatched events go nowhere, counted as unrouted).
  std::vector<size_t> unmatched_sinks;
  /// Actions of `_unmatched` (default: mask PII).
  route_actions unmatched_actions;

  /// Whether some route hashes (needs `pii.secret`).
  bool uses_hash() const noexcept {
    if (unmatched_actions.uses_hash())
      return true;
    for (auto& r : routes)
      if (r.actions.uses_hash())
        return true;
    return false;
  }

  /// Every attribute path the predicates read, by slot (see `predicate::assign_slots`).
  std::vector<std::string> attr_paths;

  /// Calls `fn(route_index)` for each matching route; returns false when none matched. The
  /// attributes the predicates read are looked up in one pass over the event first.
  template <class F>
  bool match(const event& e, F&& fn) const {
    // Raw storage: resolve_attr_slots initializes the slots it uses (no per-event memset).
    attr_slot_buffer<max_attr_slots> storage;
    auto* slots = storage.get();
    const attr_slot* resolved = !attr_paths.empty()
                                    && resolve_attr_slots(e.attrs, attr_paths, slots)
                                  ? slots
                                  : nullptr;
    bool any = false;
    for (size_t i = 0; i < routes.size(); ++i) {
      if (routes[i].pred.eval(e, resolved)) {
        any = true;
        fn(i);
      }
    }
    return any;
  }
};

/// Compiles every `[routes.<name>]` section. `sink_names` are the configured sinks. Returns an
/// error text naming the route and key and, for predicate errors, the line and column within
/// the `when` text; with `source` (the text the settings were read from), line and column are
/// those of the source instead.
std::string load_routes(const caf::settings& routes, const std::vector<std::string>& sink_names,
                        route_table& out, std::string_view source = {});

/// Compiles a route set given as INI text (`[routes.<name>]` sections; other sections are
/// ignored): `PUT /v1/admin/routes`, `sluice routes check FILE` and `sluice.routes-file`. Returns
/// an error text (empty on success) that starts with `line L, column C:` relative to `ini_text`
/// and names the route and key.
std::string compile_routes_text(std::string_view ini_text,
                                const std::vector<std::string>& sink_names, route_table& out);

/// Checks that hashing routes have a secret: an error text naming the first route that hashes
/// while `have_secret` is false (pseudonyms without a key would be an unsalted hash), else empty.
std::string check_route_secret(const route_table& table, bool have_secret);

} // namespace sluice
