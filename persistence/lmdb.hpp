#pragma once

// RAII wrappers around one LMDB environment and its transactions. Plain C++ (no CAF).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

struct MDB_env;
struct MDB_txn;

namespace sluice::persistence {

/// Error from LMDB, carrying the LMDB return code and the operation that failed.
class lmdb_error : public std::runtime_error {
public:
  lmdb_error(int code, const std::string& what);
  int code() const noexcept {
    return code_;
  }
  /// True when the error is MDB_MAP_FULL (the caller may `environment::grow` and retry).
  bool map_full() const noexcept;
  /// True when the map is full or the disk is (MDB_MAP_FULL, ENOSPC, EDQUOT): the write may
  /// succeed once space is freed.
  bool out_of_space() const noexcept;

private:
  int code_;
};

/// When a commit reaches the disk.
enum class durability {
  /// fsync on every commit (an acknowledged batch survives power loss).
  sync,
  /// No fsync on commit (MDB_NOSYNC); `environment::flush` is called periodically by the owner.
  periodic,
  /// No fsync by the owner (same flags as `periodic`, MDB_NOSYNC; MDB_WRITEMAP is not used, so
  /// MDB_MAPASYNC would be a no-op): survives a process crash, not power loss. The environment
  /// still syncs once when it is closed cleanly.
  none,
};

/// Parses "sync" | "periodic" | "none".
std::optional<durability> parse_durability(std::string_view text);

/// Named databases (LMDB key spaces) of a sluice node.
enum class db {
  log,       ///< ingest log: key = first offset (8 bytes big-endian), value = encoded batch
  offsets,   ///< consumer name → offset (8 bytes big-endian)
  devices,   ///< device_id → passivated device state
  profiles,  ///< profile_id → passivated profile state
  aggregates,
  routes,
  meta,
  sessions,  ///< device_id → its current session (see `session_tracker`)
};
inline constexpr int db_count = 8;

/// Options for opening an environment.
struct env_options {
  std::string path;                          ///< directory; created if missing
  size_t initial_map_bytes = size_t{1} << 30; ///< starting map size; grows on demand
  size_t max_map_bytes = size_t{64} << 30;    ///< upper bound for growth
  durability mode = durability::sync;
  unsigned max_readers = 256;
};

class read_txn;
class write_txn;

/// One LMDB environment with every named database of a node opened.
///
/// Lifecycle: open in the constructor (directory created, databases created), closed in the
/// destructor after every transaction has ended. Concurrency: any thread may open read
/// transactions (MDB_NOTLS); exactly one thread at a time may hold a write transaction (LMDB's own
/// writer lock serializes them; sluice routes all writes through the ingest-log actor). Limits: the
/// map grows by doubling up to `max_map_bytes` when a write fails with MDB_MAP_FULL; `grow` must be
/// called with no transaction open in this process. A write that fails with MDB_MAP_FULL poisons
/// its transaction: abort it (destroy the `write_txn`), `grow`, then redo the whole transaction.
/// Reopening a data file larger than `initial_map_bytes` starts at the first doubling of it that
/// covers the file (`map_bytes` reports the real size). Every LMDB failure throws `lmdb_error`.
class environment {
public:
  explicit environment(const env_options& opts);
  ~environment();
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;

  MDB_env* handle() const noexcept {
    return env_;
  }
  unsigned dbi(db which) const noexcept {
    return dbis_[static_cast<int>(which)];
  }
  durability mode() const noexcept {
    return mode_;
  }
  /// Forces an fsync of everything committed so far.
  void flush();
  /// Doubles the map size (bounded by max_map_bytes). Returns false when already at the maximum.
  bool grow();
  /// The upper bound the map may grow to.
  size_t max_map_bytes() const noexcept {
    return max_map_bytes_;
  }
  size_t map_bytes() const noexcept {
    return map_bytes_;
  }

private:
  MDB_env* env_ = nullptr;
  unsigned dbis_[db_count] = {};
  durability mode_;
  size_t map_bytes_;
  size_t max_map_bytes_;
};

/// A read-only snapshot; aborted in the destructor.
class read_txn {
public:
  explicit read_txn(const environment& env);
  ~read_txn();
  read_txn(const read_txn&) = delete;
  read_txn& operator=(const read_txn&) = delete;
  /// Value of `key` in `which`, viewing LMDB's memory (valid while the transaction lives).
  std::optional<std::string_view> get(db which, std::string_view key) const;
  /// Calls `fn(key, value)` for each entry with key >= `from` in key order until it returns false
  /// (an empty `from` starts at the first key). The views are valid while the transaction lives.
  void scan(db which, std::string_view from,
            const std::function<bool(std::string_view, std::string_view)>& fn) const;
  MDB_txn* handle() const noexcept {
    return txn_;
  }

private:
  const environment& env_;
  MDB_txn* txn_ = nullptr;
};

/// A write transaction; aborted in the destructor unless committed.
class write_txn {
public:
  explicit write_txn(environment& env);
  ~write_txn();
  write_txn(const write_txn&) = delete;
  write_txn& operator=(const write_txn&) = delete;
  void put(db which, std::string_view key, std::string_view value);
  /// Appends with MDB_APPEND: `key` must sort after every existing key of `which`; otherwise
  /// throws `lmdb_error` with code MDB_KEYEXIST.
  void append(db which, std::string_view key, std::string_view value);
  /// Removes `key`; returns false if absent.
  bool del(db which, std::string_view key);
  std::optional<std::string_view> get(db which, std::string_view key) const;
  /// Deletes every key of `which` that sorts strictly below `below`; returns the count removed.
  size_t del_below(db which, std::string_view below);
  /// Commits; afterwards the destructor does nothing and every other call throws
  /// std::logic_error. A failed commit (e.g. MDB_MAP_FULL) has aborted the transaction.
  void commit();
  /// The LMDB transaction, or nullptr once committed.
  MDB_txn* handle() const noexcept {
    return txn_;
  }

private:
  environment& env_;
  MDB_txn* txn_ = nullptr;
};

/// 8-byte big-endian encoding of an offset, so LMDB's byte order is numeric order.
std::string encode_be64(uint64_t v);
uint64_t decode_be64(std::string_view bytes);

} // namespace sluice::persistence
