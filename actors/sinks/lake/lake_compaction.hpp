#pragma once

// Compaction of a lake table (small files of a partition merged into one, in a new snapshot) and
// the table's single-writer lock. Plain C++ (no CAF actors): used by the `lake` sink and by
// `sluice lake compact`.

#include "actors/sinks/lake/lake_table.hpp"
#include "persistence/parquet_writer.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::lake {

/// Name of the lock file in the table's staging dir (never removed by staging clean-up).
inline constexpr std::string_view writer_lock_name = "writer.lock";

/// Crash-injection point of `compact`: after the merged files moved into the table, before the
/// snapshot is written (the table's own hook then sees "after-snapshot-write").
inline constexpr std::string_view compact_crash_point = "after-compact-file-move";

/// What to compact and how to write the merged files.
struct compact_options {
  /// A partition is compacted when it has at least this many consecutive small files.
  size_t min_files = 2;
  /// A file is small below this size; a merged file gathers small files up to this size.
  uint64_t target_file_bytes = uint64_t{64} << 20;
  /// Only this partition (`date=YYYY-MM-DD/hour=HH`); empty: every partition.
  std::string partition;
  /// Only this writer's files (`snapshot::owned_by`): a writer compacts its own files only.
  std::string writer_id;
  /// Stop planning more groups once the inputs planned so far reach this many bytes (the first
  /// group is always planned); 0: no limit. Keeps one call bounded in time and memory.
  uint64_t max_input_bytes = 0;
  /// Where the merged file is written and fsynced before it moves into the table (local).
  std::string staging_dir;
  /// Writer options of the table (compression, row groups, key_value_metadata).
  persistence::parquet::writer_options writer;
  /// Commit time of the new snapshot and creation time in the merged files' names (epoch ms).
  int64_t now_ms = 0;
  /// Called at `compact_crash_point` (tests); may be empty.
  table::hook_fn hook;
};

/// One merge: consecutive (in log-offset order) small files of one partition.
struct compaction_group {
  std::string partition;
  /// In `min_offset` order.
  std::vector<file_entry> inputs;
  /// Sum of the inputs' rows and bytes.
  uint64_t rows = 0;
  uint64_t bytes = 0;
};

/// One merge that was carried out.
struct compaction_output {
  compaction_group group;
  file_entry output;
};

/// What `compact` did.
struct compact_result {
  std::vector<compaction_output> merged;
  /// Groups left alone, with the reason (e.g. a file written with another schema).
  std::vector<std::pair<compaction_group, std::string>> skipped;
  /// The snapshot that committed the merges (0 when nothing was merged).
  uint64_t snapshot_id = 0;
};

/// The merges `compact` would do on `snap` (pure; `--dry-run` prints it). Only files of
/// `opts.writer_id` are considered (offsets are per writer). Per partition, files are
/// taken in `min_offset` order and gathered into runs of consecutive files below
/// `target_file_bytes` whose total stays within it; a run of at least `min_files` is a group.
/// Groups never skip a file: a big file between small ones ends the run.
std::vector<compaction_group> plan_compaction(const snapshot& snap, const compact_options& opts);

/// Merges the planned groups of `t.current()` (of `t.writer()`'s files, whatever
/// `opts.writer_id` says): per group, the inputs are read from the store one
/// at a time, their rows copied in offset order into one new file with the table's schema
/// (`t.current().schema`) and `opts.writer`, written to `opts.staging_dir`, fsynced and moved into
/// the partition (`put_file`); then ONE snapshot adds the merged files and removes the inputs
/// (offset watermark unchanged). The inputs stay in the store until retention expires them, so a
/// reader that followed an older snapshot still reads its files. A group whose input does not have
/// the table's schema is skipped (listed in `skipped`). Store and Parquet errors throw; then
/// `t.current()` is unchanged and a merged file already moved is garbage that `expire` deletes.
/// The caller must hold the table's `writer_lock`.
compact_result compact(table& t, const compact_options& opts);

/// The table's single-writer lock: an exclusive `flock` on `<staging_dir>/writer.lock`, which
/// holds the holder's pid and role for the message others get. The `lake` sink takes it in
/// `start` for its lifetime and `sluice lake compact` for its run, so they never both commit to a
/// table. The staging dir is local for local and S3 roots alike (one node per staging dir).
///
/// Lifecycle: `try_acquire` opens (creating the dir and file) and locks without waiting; the lock
/// is released when the object is destroyed (or the process dies: the kernel drops `flock`s).
/// Concurrency: two objects conflict even inside one process (each opens its own file
/// description); the descriptor is close-on-exec. Not copyable.
class writer_lock {
public:
  /// Takes the lock or returns nullopt with `error` saying who holds it ("the table is being
  /// written by a running node (pid N); stop it or let the node compact") or what failed.
  /// `role` is recorded for others' messages: "node" or "compact".
  static std::optional<writer_lock> try_acquire(const std::string& staging_dir,
                                                std::string_view role, std::string& error);

  writer_lock(writer_lock&& other) noexcept;
  writer_lock& operator=(writer_lock&& other) noexcept;
  writer_lock(const writer_lock&) = delete;
  writer_lock& operator=(const writer_lock&) = delete;
  ~writer_lock();

private:
  explicit writer_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// A writer id's lease on a table: the object `<table>/_meta/writers/<writer>.json` (writer,
/// random instance id, host, pid, heartbeat time, duration). Two processes with the same writer
/// id (node name) on one table would share offsets and watermark: the second is refused.
///
/// Lifecycle: `try_acquire` reads the object; when another instance holds it and renewed it
/// within `duration` (and, on this host, its pid is alive) it fails with an error naming host
/// and pid; otherwise it writes its own record. `renew` rewrites the record when a third of the
/// duration passed; `verify` (before each commit) re-reads it and fails when another live
/// instance took it over; `release` (on stop) deletes it if it is still ours. A crashed holder on
/// another host blocks its writer id for up to `duration`.
/// Limits: the object is replaced with plain `put` (no compare-and-swap), so two instances that
/// start within one round trip of each other can both believe they hold it; the next `verify`
/// of the one whose record was overwritten fails. Not thread-safe.
class writer_lease {
public:
  static std::optional<writer_lease> try_acquire(table& t, std::chrono::milliseconds duration,
                                                 int64_t now_ms, std::string& error);
  /// Rewrites the record when due (or `force`); false with `error` when another instance holds
  /// the lease. Store errors throw.
  bool renew(int64_t now_ms, std::string& error, bool force = false);
  /// Re-reads the record: false with `error` when another live instance holds it; rewrites it
  /// when it is missing, someone else's but expired, or due.
  bool verify(int64_t now_ms, std::string& error);
  /// Deletes the record if it is ours (best effort); later calls fail.
  void release() noexcept;

  const std::string& instance() const noexcept {
    return instance_;
  }

private:
  writer_lease(persistence::object_store& store, std::string key, std::string writer,
               std::chrono::milliseconds duration);
  std::string render(int64_t now_ms) const;
  bool held_by_other(const std::string& text, int64_t now_ms, std::string& error) const;

  persistence::object_store* store_;
  std::string key_;
  std::string writer_;
  std::chrono::milliseconds duration_;
  std::string host_;
  std::string instance_;
  int64_t renewed_ms_ = 0;
};

} // namespace sluice::lake
