#pragma once

// HTTP endpoints of the live aggregates: trending titles, popular genres, also-watched.

#include "actors/node.hpp"
#include "gateway/server.hpp"

#include <vector>

namespace sluice::gateway {

/// `GET /v1/trending?window=&k=`, `GET /v1/genres/popular?date=&k=` and
/// `GET /v1/titles/{id}/also-watched?k=`, answered by the node's aggregator (docs/aggregates.md).
std::vector<endpoint> aggregate_endpoints(const node_handles& nodes);

} // namespace sluice::gateway
