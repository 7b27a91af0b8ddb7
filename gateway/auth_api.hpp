#pragma once

// The console's login endpoints (`/v1/auth/*`), the audit log (`GET /v1/admin/audit`) and the
// endpoint table with scopes (`GET /v1/admin/endpoints`). See docs/access.md.

#include "gateway/server.hpp"

#include <memory>
#include <vector>

namespace sluice::gateway {

class access_control;

/// `POST /v1/auth/login`, `GET /v1/auth/session`, `POST /v1/auth/logout`, `GET /v1/admin/audit`
/// and `GET /v1/admin/endpoints`. The listing shows `table` (every other endpoint of the node),
/// these endpoints, and the ingest and WebSocket endpoints the server serves itself
/// (`POST /v1/events`, `/v1/stream`, `/v1/admin/live`), each with its scope. Append the result to
/// `table` last, so that the listing is complete.
std::vector<endpoint> access_endpoints(std::shared_ptr<access_control> access,
                                       const std::vector<endpoint>& table);

} // namespace sluice::gateway
