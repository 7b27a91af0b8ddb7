#pragma once

namespace sluice {

/// `sluice routes check FILE [--config-file=conf/sluice.conf]`: compiles the route INI text in
/// FILE offline against the sinks of the config file (routes cannot add sinks), exactly as
/// `PUT /v1/admin/routes` would. Prints `FILE: OK, ...` with a summary, or
/// `FILE:LINE:COLUMN: message`. `argv[1]` is "routes". Returns the process exit code (0 valid,
/// 1 invalid routes, 2 usage or configuration error).
int run_routes_command(int argc, char** argv);

} // namespace sluice
