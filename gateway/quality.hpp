#pragma once

// Schema validation and enrichment of decoded batches on the gateway's io threads, and the
// `/v1/schemas` endpoints. No Beast and no CAF here.

#include "gateway/server.hpp"
#include "messages/codec.hpp"
#include "messages/quality.hpp"

#include <memory>
#include <vector>

namespace sluice {
class counter;
class metrics_registry;
} // namespace sluice

namespace sluice::gateway::detail {

/// Validates every event of `batch` against its schema and enriches the valid ones.
///
/// Events that fail leave `batch.events` for `invalid` (with the reason), and are listed in
/// `batch.rejected` by their index in the client's batch, which stays sorted by index. Counts
/// `sluice_schema_violations_total{type,rule}` and `sluice_events_clock_skewed_total`. Returns the
/// number of schema violations. Thread-safe (the quality config is read-only).
size_t apply_quality(decoded_batch& batch, const ingest_quality& quality, const client_info& client,
                     std::vector<quarantined>& invalid, metrics_registry& metrics);

/// `GET /v1/schemas` (every schema) and `GET /v1/schemas/{type}` (one, 404 when unknown).
std::vector<endpoint> schema_endpoints(std::shared_ptr<const ingest_quality> quality);

} // namespace sluice::gateway::detail
