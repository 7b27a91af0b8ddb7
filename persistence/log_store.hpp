#pragma once

#include "persistence/lmdb.hpp"

#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <string_view>
#include <utility>

namespace sluice::persistence {

/// Statistics of the ingest log as stored.
struct log_stats {
  uint64_t first_offset = 0; ///< first offset still stored (0 when empty)
  uint64_t next_offset = 1;  ///< offset the next appended event gets
  uint64_t records = 0;      ///< number of stored batch records
  uint64_t bytes = 0;        ///< sum of stored value sizes (each = 4-byte count prefix + batch)
};

/// The ingest log inside an `environment`: one record per accepted batch, key = the batch's first
/// offset (big-endian), value = the batch's event count (4 bytes, big-endian) followed by the
/// encoded batch, appended with MDB_APPEND. Offsets are dense: a record of `count` events holds
/// offsets [first, first + count). `trim` also stores the next offset in db::meta
/// ("log.next_offset"), so offsets never restart even after the whole log was trimmed.
///
/// Lifecycle: constructed over an open environment; `open` recovers `next_offset` and statistics from
/// the last record. Concurrency: `append`/`trim` only inside the single writer's write transaction;
/// `read` from any thread (it opens its own read transaction); `stats` only on the writer's thread.
/// A writer calls `checkpoint` before its write transaction and `rollback` if it is aborted (e.g.
/// MDB_MAP_FULL): a throwing `append`/`trim` may leave earlier changes of the same transaction in
/// the statistics. Limits: a record's value is bounded by LMDB (4 GiB); the caller bounds batch
/// sizes. `open` scans every record once to count bytes.
class log_store {
public:
  explicit log_store(environment& env);
  /// Re-reads statistics from the database (call once after opening).
  void open();
  /// Appends a batch of `count` (>= 1) events encoded as `value`; returns its first offset.
  uint64_t append(write_txn& txn, uint32_t count, std::string_view value);
  /// Like `append` for a batch of `size` bytes that the caller writes into the returned space
  /// (LMDB's, valid until the next change in `txn`) instead of copying it from a buffer; sets
  /// `first` to the batch's first offset. The caller fills all `size` bytes before anything else
  /// happens in `txn`, or aborts the transaction.
  char* append_reserved(write_txn& txn, uint32_t count, size_t size, uint64_t& first);
  /// Calls `fn(first_offset, count, value)` for each record holding any offset >= `from`, in order,
  /// until `fn` returns false. `count` is the number of events in the record; `value` is the batch
  /// as appended (without the count prefix) and is valid only during the call: afterwards the
  /// pages of a value of at least one page are unmapped from the process (`madvise`; they stay in
  /// the page cache), so reading a large backlog does not leave it in the process's RSS. `trim`
  /// does the same for the records it deletes.
  void read(uint64_t from,
            const std::function<bool(uint64_t, uint32_t, std::string_view)>& fn) const;
  /// Deletes the records whose events all lie below `below`, oldest first and at most
  /// `max_records` of them; returns records removed. `more`, when given, is set to whether
  /// records below `below` remain because of `max_records` (a writer spreads a large trim over
  /// several transactions: each deletion costs a B-tree update and frees pages).
  size_t trim(write_txn& txn, uint64_t below,
              size_t max_records = std::numeric_limits<size_t>::max(), bool* more = nullptr);
  const log_stats& stats() const noexcept {
    return stats_;
  }
  /// Undo in-memory bookkeeping for appends of an aborted transaction: resets to the values saved
  /// by `checkpoint`.
  void checkpoint() noexcept {
    saved_ = stats_;
  }
  void rollback() noexcept {
    stats_ = saved_;
  }

private:
  /// Where the environment's data file is mapped: looked up in /proc/self/maps (LMDB does not tell)
  /// once, and again only when the map size changed (`environment::grow` remaps the file). Trims
  /// and catch-up reads release the pages of what they read through it. Thread-safe.
  std::pair<uintptr_t, uintptr_t> mapped() const;

  environment& env_;
  log_stats stats_;
  log_stats saved_;
  mutable std::mutex map_mutex_;
  mutable std::pair<uintptr_t, uintptr_t> map_{0, 0};
};

} // namespace sluice::persistence
