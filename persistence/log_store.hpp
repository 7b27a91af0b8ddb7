#pragma once

#include "persistence/lmdb.hpp"

#include <cstdint>
#include <functional>
#include <string_view>

namespace sluice::persistence {

/// Statistics of the ingest log as stored.
struct log_stats {
  uint64_t first_offset = 0; ///< first offset still stored (0 when empty)
  uint64_t next_offset = 1;  ///< offset the next appended event gets
  uint64_t records = 0;      ///< number of stored batch records
  uint64_t bytes = 0;        ///< sum of stored value sizes
};

/// The ingest log inside an `environment`: one record per accepted batch, key = the batch's first
/// offset (big-endian), value = the encoded batch, appended with MDB_APPEND.
///
/// Lifecycle: constructed over an open environment; `open` recovers `next_offset` and statistics from
/// the last record. Concurrency: `append`/`trim` only inside the single writer's write transaction;
/// `read` from any thread. Limits: a record's value is bounded by LMDB (4 GiB); the caller bounds
/// batch sizes.
class log_store {
public:
  explicit log_store(environment& env);
  /// Re-reads statistics from the database (call once after opening).
  void open();
  /// Appends a batch of `count` events encoded as `value`; returns its first offset.
  uint64_t append(write_txn& txn, uint32_t count, std::string_view value);
  /// Calls `fn(first_offset, count, value)` for each record holding any offset >= `from`, in order,
  /// until `fn` returns false. `count` is the number of events in the record.
  void read(uint64_t from,
            const std::function<bool(uint64_t, uint32_t, std::string_view)>& fn) const;
  /// Deletes every record whose events all lie below `below`; returns records removed.
  size_t trim(write_txn& txn, uint64_t below);
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
  environment& env_;
  log_stats stats_;
  log_stats saved_;
};

} // namespace sluice::persistence
