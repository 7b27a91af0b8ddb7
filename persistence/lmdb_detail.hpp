#pragma once

// Internal helpers shared by the persistence sources; not part of the module's API.

#include "persistence/lmdb.hpp"

#include <lmdb.h>

#include <string>
#include <string_view>

namespace sluice::persistence::detail {

/// Name of a named database as stored in LMDB ("log", "offsets", ...).
const char* db_name(db which) noexcept;

/// Returns `txn`; throws std::logic_error naming `op` when it is null (a committed write_txn).
MDB_txn* live(MDB_txn* txn, const char* op);

/// Checks the result of an MDB_APPEND put; MDB_KEYEXIST becomes an "out of order" lmdb_error.
void check_append(int rc, db which);

/// Throws `lmdb_error(rc, "<op>: <mdb_strerror(rc)>")` unless `rc` is MDB_SUCCESS.
inline void check(int rc, const std::string& op) {
  if (rc != MDB_SUCCESS)
    throw lmdb_error(rc, op + ": " + mdb_strerror(rc));
}

inline MDB_val to_val(std::string_view bytes) noexcept {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

inline std::string_view to_view(const MDB_val& val) noexcept {
  return {static_cast<const char*>(val.mv_data), val.mv_size};
}

/// RAII cursor over one named database inside a transaction; closed in the destructor.
class cursor {
public:
  cursor(MDB_txn* txn, MDB_dbi dbi, db which) : which_(which) {
    check(mdb_cursor_open(txn, dbi, &cur_),
          std::string{"mdb_cursor_open("} + db_name(which) + ")");
  }
  ~cursor() {
    mdb_cursor_close(cur_);
  }
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;

  /// Positions the cursor with `op`; returns false on MDB_NOTFOUND, throws on any other failure.
  /// `key` is the input for MDB_SET_RANGE / MDB_SET_KEY and receives the key found.
  bool get(MDB_val& key, MDB_val& value, MDB_cursor_op op, const char* op_name) {
    int rc = mdb_cursor_get(cur_, &key, &value, op);
    if (rc == MDB_NOTFOUND)
      return false;
    check(rc, std::string{"mdb_cursor_get("} + db_name(which_) + ", " + op_name + ")");
    return true;
  }

  /// Deletes the entry under the cursor.
  void del() {
    check(mdb_cursor_del(cur_, 0), std::string{"mdb_cursor_del("} + db_name(which_) + ")");
  }

private:
  MDB_cursor* cur_ = nullptr;
  db which_;
};

} // namespace sluice::persistence::detail
