#pragma once

// The lake's table format: data files in event-time partitions plus numbered snapshots under
// `<table>/_meta/`, one of which `<table>/_meta/current` names. Plain C++ (no CAF actors): used by
// the `lake` sink and by `sluice lake`.

#include "messages/event.hpp"
#include "persistence/object_store.hpp"
#include "persistence/parquet_writer.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::lake {

/// One committed data file, as listed in a snapshot.
struct file_entry {
  /// Relative to the table directory: `date=YYYY-MM-DD/hour=HH/part-<uuid>.parquet`.
  std::string path;
  /// `date=YYYY-MM-DD/hour=HH`.
  std::string partition;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  /// Event time range of the file's rows (epoch ms UTC).
  int64_t min_ts = 0;
  int64_t max_ts = 0;
  /// Log offset range: the file holds exactly the partition's accepted events in this range.
  log_offset min_offset = 0;
  log_offset max_offset = 0;
  /// The writer (node name) whose log the offsets belong to; empty in tables written before
  /// concurrent writers (one writer, see `snapshot::legacy`).
  std::string writer;
};

/// What a snapshot records per writer (node): offsets are per node, so is the watermark.
struct writer_state {
  /// Every event this writer accepted at or below this offset (of its own log) is in a file of
  /// the snapshot (or was refused for its content and dead-lettered).
  log_offset offset_watermark = 0;
  /// When this writer last committed (epoch ms UTC).
  int64_t committed_ms = 0;
};

/// One column of the table schema as recorded in snapshots.
struct column_entry {
  std::string name;
  persistence::parquet::column_type type = persistence::parquet::column_type::string;
  bool nullable = true;
};

/// One snapshot: the complete state of the table after one commit.
struct snapshot {
  /// 1, 2, 3, ...; 0 means "no snapshot yet".
  uint64_t id = 0;
  /// The snapshot this one was derived from (0 for the first).
  uint64_t parent = 0;
  /// Commit time, epoch ms UTC.
  int64_t timestamp_ms = 0;
  std::vector<column_entry> schema;
  /// Files this commit added and removed.
  std::vector<file_entry> added;
  std::vector<file_entry> removed;
  /// Every file of the table at this snapshot: a reader needs only this list.
  std::vector<file_entry> files;
  /// The watermark of `writer` (the writer that made this snapshot), kept at the top level for
  /// readers of format 1.
  log_offset offset_watermark = 0;
  /// The writer (node name) that made this snapshot; empty in format 1.
  std::string writer;
  /// Per writer: its watermark and last commit. A format-1 snapshot (no `writers`) reads as one
  /// writer with the empty name.
  std::map<std::string, writer_state> writers;

  /// True when the only writer is the unnamed one of a format-1 table: the first named writer
  /// that commits takes its state and files over (see `table::commit`).
  bool legacy() const {
    return writers.size() == 1 && writers.begin()->first.empty();
  }
  /// True when `f` belongs to writer `id` (its offsets are in `id`'s log): its own files, and the
  /// unnamed ones while the table is `legacy()`.
  bool owned_by(const file_entry& f, const std::string& id) const {
    return f.writer == id || (f.writer.empty() && legacy());
  }
  /// The watermark of writer `id` (the legacy one's while the table is `legacy()`; 0 when `id`
  /// never committed).
  log_offset watermark_of(const std::string& id) const;
};

/// Thrown by `table::commit` when a concurrent commit removed a file this commit removes (two
/// compactions of the same files): the commit is dropped, nothing is written.
class commit_conflict : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// How `table::commit` retries when another writer took the snapshot number first.
struct commit_policy {
  /// Attempts in all (the first included) before `commit` gives up with a transient store_error.
  uint32_t max_attempts = 16;
  /// Backoff after a lost race: from this, doubling per attempt, capped at `max_backoff`, with
  /// equal jitter.
  std::chrono::milliseconds backoff{5};
  std::chrono::milliseconds max_backoff{1000};
};

/// What `table::commit` did since the table was constructed (for `/metrics`).
struct commit_stats {
  /// Commits that created their snapshot.
  uint64_t commits = 0;
  /// Races lost: the snapshot number was taken by another writer (each one reloads and retries).
  uint64_t conflicts = 0;
  /// Commits that gave up after `max_attempts`, and ones dropped as `commit_conflict`.
  uint64_t exhausted = 0;
  uint64_t dropped = 0;
};

/// `date=YYYY-MM-DD/hour=HH` of an event time (epoch ms, UTC; proleptic Gregorian, also before
/// 1970).
std::string partition_of(int64_t ts_ms);

/// A fresh data file name `part-<uuid>.parquet`. The uuid is a version 7 UUID (RFC 9562): 48 bits
/// of `now_ms`, then random bits from /dev/urandom, so a file's creation time is readable from its
/// name (retention uses it for files no snapshot references).
std::string new_part_name(int64_t now_ms);

/// The creation time encoded in a `part-<uuid v7>.parquet` name; nullopt for other names.
std::optional<int64_t> part_created_ms(std::string_view file_name);

/// `snap-<id, 20 digits>.json`: lexical order is numeric order.
std::string snapshot_file_name(uint64_t id);

/// Renders a snapshot as JSON (the format of `_meta/snap-*.json`).
std::string render_snapshot(const snapshot& s);

/// Parses `render_snapshot` output; nullopt with `error` set when the text is not a snapshot.
std::optional<snapshot> parse_snapshot(std::string_view json, std::string& error);

/// What `table::expire` did.
struct expire_result {
  size_t snapshots_deleted = 0;
  size_t files_deleted = 0;
  uint64_t bytes_deleted = 0;
};

/// One table in an object store: finds the newest snapshot, commits snapshots (several writers
/// concurrently), lists history, expires.
///
/// Commit protocol (optimistic concurrency, as Iceberg's file-system tables): a snapshot is
/// committed when `_meta/snap-<n>.json` is **created** — with `put_if_absent` (exclusive create:
/// `link(2)` locally, `If-None-Match: *` on S3), so of several writers deriving snapshot n from
/// n-1, exactly one wins. The loser reloads the newest snapshot, re-applies its own added and
/// removed files and its writer state on top (a removed file that is gone: `commit_conflict`,
/// nothing written) and tries n+1, up to `commit_policy::max_attempts` with backoff. Every
/// snapshot keeps every other writer's files and state. `_meta/current` is then replaced with the
/// snapshot's name: a **hint** (it may lag, or even go back when two writers race to write it);
/// `open` reads the hint and probes `snap-<hint+1>`, `snap-<hint+2>`, ... until one is missing,
/// so readers always get the newest committed snapshot (falling back to a listing of `_meta/` when
/// the hinted snapshot was expired). Snapshot ids are dense: n is only created from n-1.
///
/// Lifecycle: `open` loads the newest snapshot; `commit` reloads before it derives (a writer idle
/// for longer than the retention must not re-create an expired snapshot number). Concurrency: an
/// instance is not thread-safe; any number of instances (processes, nodes) may commit to one
/// table as long as their writer ids differ (the sink enforces that with a lease, see
/// `writer_lease`). `expire` may run in every writer: it never deletes the newest snapshot nor
/// files a snapshot within the retention lists, nor unlisted files younger than the retention
/// (another writer's files in flight between their move and their commit). Errors: store failures
/// propagate as `persistence::store_error`; a corrupt hint or snapshot throws `std::runtime_error`
/// naming the object.
class table {
public:
  /// Crash-injection points for tests (`hook` receives "after-snapshot-write").
  using hook_fn = std::function<void(std::string_view point)>;

  /// `writer` names this instance's writer (the node name; empty for read-only use and for
  /// `sluice lake` on a format-1 table).
  table(persistence::object_store& store, std::string name, std::string writer = {},
        commit_policy policy = {});

  /// Loads the newest snapshot (an empty table when there is none).
  void open();

  /// Replaces `_meta/current` with the newest snapshot's name when `open` found the hint behind
  /// (a writer that crashed between its snapshot and the hint). Returns true when it wrote.
  bool publish_hint();

  /// Verifies once that the store honours `put_if_absent` (a server that ignores
  /// `If-None-Match` would let two writers overwrite each other's snapshot): creates
  /// `_meta/exclusive-create-probe` twice; the second must answer false. Returns false (and
  /// `error` says why) when the store overwrote.
  bool probe_exclusive_create(std::string& error);

  /// The writer id given at construction.
  const std::string& writer() const noexcept {
    return writer_;
  }

  /// What `commit` did so far.
  const commit_stats& stats() const noexcept {
    return stats_;
  }

  /// The newest snapshot as of the last `open` or `commit` (id 0 when the table is empty).
  const snapshot& current() const noexcept {
    return current_;
  }

  const std::string& name() const noexcept {
    return name_;
  }

  /// The object store the table lives in.
  persistence::object_store& store() const noexcept {
    return store_;
  }

  /// The store key of a path relative to the table directory.
  std::string key(std::string_view relative) const;

  /// A reader's address (`file:///...` or `s3://...`) of a file of the current snapshot.
  std::string url(const file_entry& f) const;

  /// Commits a snapshot on top of the newest one (see the class comment): adds `added` (their
  /// `writer` set to this writer), removes the files whose paths are in `removed_paths` (all must
  /// be in the newest snapshot, else `commit_conflict`), records `schema` and this writer's
  /// `watermark` (nullopt: unchanged). The data files must already be in place. Throws
  /// `commit_conflict`, a transient `store_error` after `max_attempts` lost races, or the store's
  /// error; `current()` is then the newest snapshot seen.
  const snapshot& commit(std::vector<file_entry> added, const std::vector<std::string>& removed_paths,
                         std::vector<column_entry> schema, std::optional<log_offset> watermark,
                         int64_t now_ms);

  /// Every readable snapshot in `_meta/`, oldest first.
  std::vector<snapshot> history();

  /// Deletes snapshots older than `retention` (never the current one) and data files that no
  /// remaining snapshot lists and that are older than `retention` (by their commit time or, for
  /// files no snapshot ever listed, by the time in their uuid v7 name).
  expire_result expire(std::chrono::milliseconds retention, int64_t now_ms);

  /// Test hook called at commit's crash-injection points.
  void set_hook(hook_fn hook) {
    hook_ = std::move(hook);
  }

private:
  /// The snapshot `id` or nullopt when it does not exist (throws when it is corrupt).
  std::optional<snapshot> load(uint64_t id);

  persistence::object_store& store_;
  std::string name_;
  std::string writer_;
  commit_policy policy_;
  snapshot current_;
  /// The id `_meta/current` named at the last `open`.
  uint64_t hint_id_ = 0;
  commit_stats stats_;
  std::minstd_rand jitter_;
  hook_fn hook_;
};

} // namespace sluice::lake
