#pragma once

namespace sluice {

/// `sluice lake snapshots|files|expire|compact --config-file=FILE --table=T [--json]
/// [--partition=P] [--dry-run]`: the history, the current file list (as URLs for
/// `read_parquet([...])`), retention and compaction (small files of a partition merged into one,
/// in one new snapshot, under the table's writer lock) of a lake table declared in the config file
/// (a `[sinks.*]` section with kind = "lake"). `argv[1]` is "lake". Returns the process exit code
/// (0 ok, 1 store or table error or the table locked by a running node, 2 usage or configuration
/// error).
int run_lake_command(int argc, char** argv);

} // namespace sluice
