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
#include <optional>
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
  /// Every event the writer accepted at or below this offset is in `files` (or was refused for
  /// its content and dead-lettered).
  log_offset offset_watermark = 0;
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

/// One table in an object store: reads `current`, commits snapshots, lists history, expires.
///
/// Lifecycle: `open` reads `<table>/_meta/current` and the snapshot it names (a table without
/// `current` is empty, whatever else lies in `_meta/`: `current` is the truth, other snapshot and
/// data files are garbage that `expire` deletes once older than the retention). `commit` writes
/// `snap-<n+1>.json` with `put` (atomic: local temp + fsync + rename, S3 single PUT), then replaces
/// `current` with `put`; a reader following `current` sees all files of a snapshot or none.
/// Concurrency: not thread-safe; one writer per table (the sink that owns it, or `sluice lake
/// compact`: both hold the table's `writer_lock`, see lake_compaction.hpp). `sluice lake` reads
/// concurrently without harm; its `expire` only deletes what no snapshot within the retention and
/// no recent uncommitted file needs. Errors: store failures propagate as
/// `persistence::store_error`; a corrupt `current` or snapshot throws `std::runtime_error` naming
/// the object.
class table {
public:
  /// Crash-injection points for tests (`hook` receives "after-snapshot-write").
  using hook_fn = std::function<void(std::string_view point)>;

  table(persistence::object_store& store, std::string name);

  /// Reads `current` and its snapshot (an empty table when there is no `current`).
  void open();

  /// The snapshot `current` names (id 0 when the table is empty).
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

  /// Commits a snapshot on top of `current()`: adds `added`, removes the files whose paths are in
  /// `removed_paths`, records `schema` and `watermark`. The data files must already be in place.
  /// On failure `current()` is unchanged.
  const snapshot& commit(std::vector<file_entry> added, const std::vector<std::string>& removed_paths,
                         std::vector<column_entry> schema, log_offset watermark, int64_t now_ms);

  /// Every readable snapshot in `_meta/`, oldest first (including ones newer than `current` that
  /// a crash left behind; `current_id` tells which is current).
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
  persistence::object_store& store_;
  std::string name_;
  snapshot current_;
  hook_fn hook_;
};

} // namespace sluice::lake
