#pragma once

// The admin API of the routes: read them, their versions, and swap them (hot reload).

#include "actors/node.hpp"
#include "gateway/server.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace sluice::gateway {

/// `GET /v1/admin/routes`, `GET /v1/admin/routes/versions`, `GET /v1/admin/routes/versions/{n}`,
/// `PUT /v1/admin/routes` and `POST /v1/admin/routes/rollback`. Empty when the node's routes
/// are not versioned.
std::vector<endpoint> routes_endpoints(const node_handles& nodes);

/// Finds the position in a route compile error ("line L, column C: ..." or "L:C: ..."); false
/// when it names none.
bool error_position(std::string_view error, size_t& line, size_t& column);

/// The JSON document of a route version in effect: version, effective_from, created_ms,
/// comment, text, the compiled routes (name, when, sinks, and `actions`: every other key of the
/// route's section as written: keep, drop, mask, hash, rename, pii).
std::string route_version_json(const route_history::entry& e,
                               const std::vector<std::string>& sink_names);

} // namespace sluice::gateway
