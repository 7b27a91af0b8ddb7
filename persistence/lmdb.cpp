#include <cerrno>
#include "persistence/lmdb.hpp"

#include "persistence/lmdb_detail.hpp"

#include <lmdb.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace sluice::persistence {

namespace {

/// Named databases the environment has room for beyond `db_count`, so a later typed store can add
/// its own key space without reopening older data directories with a different limit.
constexpr unsigned spare_dbs = 8;

/// Permissions of the data and lock files: owner read/write, group read (for backup tooling).
constexpr mdb_mode_t file_mode = 0640;

/// Name of LMDB's data file inside the environment directory.
constexpr const char* data_file_name = "data.mdb";

constexpr const char* db_names[db_count] = {
  "log", "offsets", "devices", "profiles", "aggregates", "routes", "meta", "sessions",
};

/// Flags of every environment:
/// - MDB_NOTLS: a reader slot belongs to its read transaction, not to the thread, so any thread
///   may open read transactions, several at once (see `environment`);
/// - MDB_NOMEMINIT: LMDB does not zero the unused tail of the pages it allocates before writing
///   them. Every log record is a value of overflow pages of its own (~20 KB for a 100-event batch),
///   and zeroing the last 4 KiB page of each was 2% of the log writer's time. The bytes left there
///   are this process's own heap, written into a file that already holds every event unmasked.
constexpr unsigned int base_env_flags = MDB_NOTLS | MDB_NOMEMINIT;

/// Environment flags for each durability mode (`base_env_flags` are added for every mode).
///
/// `periodic` and `none` use the same flags: MDB_NOSYNC skips the data and the meta fsync on
/// commit, so MDB_NOMETASYNC adds nothing, and MDB_MAPASYNC only has an effect with MDB_WRITEMAP.
/// We do not use MDB_WRITEMAP: it lets a stray write through a pointer into the map corrupt the
/// database, preallocates the data file to the whole map size, and measured no faster with 20 KB
/// log records (one per commit: ~20 k/s with WRITEMAP|MAPASYNC vs ~57 k/s without; ten per
/// commit: about equal, 110-130 k/s). Commits still go to the OS page cache with write(),
/// so a process crash loses nothing; only power loss / kernel crash loses unsynced commits. The
/// modes differ in who syncs: `periodic` owners call `environment::flush` on a timer, `none` owners
/// never do (the destructor still syncs once on a clean close).
unsigned int durability_flags(durability mode) noexcept {
  switch (mode) {
    case durability::sync:
      return 0;
    case durability::periodic:
    case durability::none:
      return MDB_NOSYNC;
  }
  return 0;
}


std::string op_name(const char* op, db which) {
  return std::string{op} + "(" + detail::db_name(which) + ")";
}

} // namespace

using detail::live;

namespace detail {

const char* db_name(db which) noexcept {
  auto index = static_cast<int>(which);
  return index >= 0 && index < db_count ? db_names[index] : "?";
}

MDB_txn* live(MDB_txn* txn, const char* op) {
  if (txn == nullptr)
    throw std::logic_error(std::string{"persistence: "} + op
                           + " on a write transaction that was already committed");
  return txn;
}

void check_append(int rc, db which) {
  if (rc == MDB_KEYEXIST)
    throw lmdb_error(rc, std::string{"mdb_put("} + db_name(which)
                           + ", MDB_APPEND): the key does not sort after the last key of the "
                             "database (keys must be appended in strictly increasing order)");
  check(rc, std::string{"mdb_put("} + db_name(which) + ", MDB_APPEND)");
}

} // namespace detail

using detail::check;
using detail::to_val;
using detail::to_view;

// -- lmdb_error ---------------------------------------------------------------------------------

lmdb_error::lmdb_error(int code, const std::string& what) : std::runtime_error(what), code_(code) {
  // nop
}

bool lmdb_error::map_full() const noexcept {
  return code_ == MDB_MAP_FULL;
}

bool lmdb_error::out_of_space() const noexcept {
  return code_ == MDB_MAP_FULL || code_ == ENOSPC || code_ == EDQUOT;
}

// -- durability ---------------------------------------------------------------------------------

std::optional<durability> parse_durability(std::string_view text) {
  if (text == "sync")
    return durability::sync;
  if (text == "periodic")
    return durability::periodic;
  if (text == "none")
    return durability::none;
  return std::nullopt;
}

// -- environment --------------------------------------------------------------------------------

environment::environment(const env_options& opts)
  : mode_(opts.mode), map_bytes_(opts.initial_map_bytes), max_map_bytes_(opts.max_map_bytes) {
  if (opts.path.empty())
    throw std::invalid_argument("persistence: the LMDB directory path is empty; set data-dir");
  if (opts.initial_map_bytes == 0 || opts.initial_map_bytes > opts.max_map_bytes)
    throw std::invalid_argument("persistence: initial map size (" + std::to_string(opts.initial_map_bytes)
                                + " bytes) must be > 0 and <= the maximum map size ("
                                + std::to_string(opts.max_map_bytes) + " bytes)");
  namespace fs = std::filesystem;
  fs::create_directories(opts.path); // throws filesystem_error naming the path
  // Reopening a data file larger than the initial map: start at the doubling of the initial size
  // that covers it (LMDB would otherwise shrink the map to exactly the used pages, leaving no room
  // for the first write).
  std::error_code ec;
  auto existing = fs::file_size(fs::path{opts.path} / data_file_name, ec);
  if (!ec) {
    while (map_bytes_ <= existing && map_bytes_ < max_map_bytes_)
      map_bytes_ = map_bytes_ > max_map_bytes_ / 2 ? max_map_bytes_ : map_bytes_ * 2;
  }
  check(mdb_env_create(&env_), "mdb_env_create");
  try {
    check(mdb_env_set_maxdbs(env_, db_count + spare_dbs), "mdb_env_set_maxdbs");
    check(mdb_env_set_maxreaders(env_, opts.max_readers), "mdb_env_set_maxreaders");
    check(mdb_env_set_mapsize(env_, map_bytes_), "mdb_env_set_mapsize");
    check(mdb_env_open(env_, opts.path.c_str(), base_env_flags | durability_flags(mode_), file_mode),
          "mdb_env_open(" + opts.path + ")");
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin(open databases)");
    for (int i = 0; i < db_count; ++i) {
      int rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &dbis_[i]);
      if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        check(rc, std::string{"mdb_dbi_open("} + db_names[i] + ", MDB_CREATE)");
      }
    }
    check(mdb_txn_commit(txn), "mdb_txn_commit(open databases)");
    MDB_envinfo info;
    check(mdb_env_info(env_, &info), "mdb_env_info");
    map_bytes_ = info.me_mapsize;
  } catch (...) {
    mdb_env_close(env_);
    env_ = nullptr;
    throw;
  }
}

environment::~environment() {
  if (env_ == nullptr)
    return;
  // Commits in the no-fsync modes are in the page cache; a clean close makes them durable.
  if (mode_ != durability::sync)
    mdb_env_sync(env_, 1);
  mdb_env_close(env_);
}

void environment::flush() {
  check(mdb_env_sync(env_, 1), "mdb_env_sync(force)");
}

bool environment::grow() {
  if (map_bytes_ >= max_map_bytes_)
    return false;
  auto next = map_bytes_ > max_map_bytes_ / 2 ? max_map_bytes_ : map_bytes_ * 2;
  check(mdb_env_set_mapsize(env_, next),
        "mdb_env_set_mapsize(" + std::to_string(next) + " bytes)");
  MDB_envinfo info;
  check(mdb_env_info(env_, &info), "mdb_env_info");
  map_bytes_ = info.me_mapsize;
  return true;
}

// -- read_txn -----------------------------------------------------------------------------------

read_txn::read_txn(const environment& env) : env_(env) {
  check(mdb_txn_begin(env.handle(), nullptr, MDB_RDONLY, &txn_), "mdb_txn_begin(MDB_RDONLY)");
}

read_txn::~read_txn() {
  mdb_txn_abort(txn_);
}

std::optional<std::string_view> read_txn::get(db which, std::string_view key) const {
  MDB_val k = to_val(key);
  MDB_val v;
  int rc = mdb_get(txn_, env_.dbi(which), &k, &v);
  if (rc == MDB_NOTFOUND)
    return std::nullopt;
  check(rc, op_name("mdb_get", which));
  return to_view(v);
}

void read_txn::scan(db which, std::string_view from,
                    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  detail::cursor cur{txn_, env_.dbi(which), which};
  MDB_val k = to_val(from);
  MDB_val v;
  // LMDB rejects an empty key for MDB_SET_RANGE; an empty `from` means "from the first key".
  bool found = from.empty() ? cur.get(k, v, MDB_FIRST, "MDB_FIRST")
                            : cur.get(k, v, MDB_SET_RANGE, "MDB_SET_RANGE");
  while (found && fn(to_view(k), to_view(v)))
    found = cur.get(k, v, MDB_NEXT, "MDB_NEXT");
}

// -- write_txn ----------------------------------------------------------------------------------

write_txn::write_txn(environment& env) : env_(env) {
  check(mdb_txn_begin(env.handle(), nullptr, 0, &txn_), "mdb_txn_begin(write)");
}

write_txn::~write_txn() {
  if (txn_ != nullptr)
    mdb_txn_abort(txn_);
}

void write_txn::put(db which, std::string_view key, std::string_view value) {
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  check(mdb_put(live(txn_, "put"), env_.dbi(which), &k, &v, 0), op_name("mdb_put", which));
}

void write_txn::append(db which, std::string_view key, std::string_view value) {
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  detail::check_append(mdb_put(live(txn_, "append"), env_.dbi(which), &k, &v, MDB_APPEND), which);
}

bool write_txn::del(db which, std::string_view key) {
  MDB_val k = to_val(key);
  int rc = mdb_del(live(txn_, "del"), env_.dbi(which), &k, nullptr);
  if (rc == MDB_NOTFOUND)
    return false;
  check(rc, op_name("mdb_del", which));
  return true;
}

std::optional<std::string_view> write_txn::get(db which, std::string_view key) const {
  MDB_val k = to_val(key);
  MDB_val v;
  int rc = mdb_get(live(txn_, "get"), env_.dbi(which), &k, &v);
  if (rc == MDB_NOTFOUND)
    return std::nullopt;
  check(rc, op_name("mdb_get", which));
  return to_view(v);
}

size_t write_txn::del_below(db which, std::string_view below) {
  detail::cursor cur{live(txn_, "del_below"), env_.dbi(which), which};
  size_t removed = 0;
  MDB_val k;
  MDB_val v;
  // Re-position on the first key after each delete: a B-tree descent per key, and no reliance on
  // the cursor's post-delete position.
  while (cur.get(k, v, MDB_FIRST, "MDB_FIRST") && to_view(k) < below) {
    cur.del();
    ++removed;
  }
  return removed;
}

void write_txn::commit() {
  auto* txn = live(txn_, "commit");
  txn_ = nullptr; // mdb_txn_commit frees the transaction even when it fails
  check(mdb_txn_commit(txn), "mdb_txn_commit");
}

// -- offsets ------------------------------------------------------------------------------------

std::string encode_be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

uint64_t decode_be64(std::string_view bytes) {
  if (bytes.size() != 8)
    throw std::invalid_argument("persistence: decode_be64 needs exactly 8 bytes, got "
                                + std::to_string(bytes.size()));
  uint64_t v = 0;
  for (unsigned char c : bytes)
    v = (v << 8) | c;
  return v;
}

} // namespace sluice::persistence
