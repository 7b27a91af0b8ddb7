#pragma once

// HTTP endpoints of profile state and the title catalog.

#include "actors/node.hpp"
#include "gateway/server.hpp"

#include <vector>

namespace sluice {
class metrics_registry;
}

namespace sluice::gateway {

/// `GET /v1/profiles/{id}/continue-watching`, `GET /v1/profiles/{id}/watch-time?from=&to=`,
/// `GET /v1/titles/{id}` and `POST /v1/admin/catalog/reload` (docs/profiles.md).
std::vector<endpoint> profile_endpoints(const node_handles& nodes, metrics_registry& metrics);

/// Validates the query of a watch-time request; on success sets `what` (the profile actor's query)
/// and returns empty, otherwise a 400 body naming the parameter.
std::string parse_watch_time_params(const std::map<std::string, std::string>& query,
                                    std::string& what);

} // namespace sluice::gateway
