#pragma once

namespace sluice {

/// `sluice replay FILE... [--url=http://HOST:PORT | --config-file=FILE] [options]`: sends history
/// files (NDJSON, or CSV with a header; plain, gzip or zstd, detected by magic bytes) to a running
/// node through `POST /v1/events`, in batches with several in flight, honouring 503/429
/// Retry-After. Reports every rejected row as `FILE:LINE: reason` (stderr, and NDJSON with
/// `--rejects`), shows progress, and keeps a state file of the acknowledged prefix of each file so
/// that a rerun resumes after an interruption (SIGINT waits for the batches in flight). Events keep
/// their `ts`; a missing `id` is derived from the file's content hash and line, so re-sent events
/// keep their ids. `argv[1]` is "replay". Returns 0 when every row was accepted, 2 when some were
/// rejected, 1 on fatal errors (node unreachable, unreadable file), 130 when interrupted (the state
/// is saved), 64 on usage errors. See docs/replay.md.
int run_replay_command(int argc, char** argv);

} // namespace sluice
