#pragma once

namespace sluice {

/// `sluice dlq list|replay [--url=http://HOST:PORT | --config-file=FILE] [--reason=S]
/// [--ids=1,2] [--all] [--limit=N]`: lists the dead letters of a running node (every page, one
/// line each) or replays a selection through its pipeline, over the node's admin API
/// (`/v1/admin/dead-letters`). With `--config-file`, the node is found through
/// `<data-dir>/gateway.port` and `gateway.host`. `argv[1]` is "dlq". Returns the process exit code
/// (0 ok, 1 the node refused or could not be reached, 2 usage).
int run_dlq_command(int argc, char** argv);

} // namespace sluice
