#pragma once

namespace sluice {

/// `sluice lake snapshots|files|expire --config-file=FILE --table=T [--json]`: the history, the
/// current file list (as URLs for `read_parquet([...])`) and retention of a lake table declared in
/// the config file (a `[sinks.*]` section with kind = "lake"). `argv[1]` is "lake". Returns the
/// process exit code (0 ok, 1 store or table error, 2 usage or configuration error).
int run_lake_command(int argc, char** argv);

} // namespace sluice
