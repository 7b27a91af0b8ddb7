#include "persistence/log_store.hpp"

#include "persistence/lmdb_detail.hpp"

#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

namespace sluice::persistence {

namespace {

using detail::to_val;
using detail::to_view;

/// Bytes of the big-endian event count that prefixes every stored record.
constexpr size_t count_prefix_bytes = 4;

/// Key in db::meta holding the log's next offset (8 bytes big-endian), written by `trim`, so
/// offsets keep increasing across a restart even when every record has been trimmed.
constexpr std::string_view next_offset_key = "log.next_offset";

/// The address range of the environment's memory map.
struct map_range {
  uintptr_t begin = 0;
  uintptr_t end = 0;
};

/// Where `env`'s data file is mapped in this process (from /proc/self/maps, matched by inode; LMDB
/// does not tell its map address unless MDB_FIXEDMAP). Empty when not found.
map_range map_of(MDB_env* env) {
  mdb_filehandle_t fd;
  struct stat st;
  if (mdb_env_get_fd(env, &fd) != MDB_SUCCESS || ::fstat(fd, &st) != 0)
    return {};
  std::ifstream maps{"/proc/self/maps"};
  std::string line;
  while (std::getline(maps, line)) {
    // "begin-end perms offset dev inode path"
    unsigned long long begin = 0, end = 0, offset = 0, inode = 0;
    char perms[8] = {};
    char dev[16] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu", &begin, &end, perms, &offset,
                    dev, &inode)
          == 6
        && inode == static_cast<unsigned long long>(st.st_ino) && offset == 0)
      return {static_cast<uintptr_t>(begin), static_cast<uintptr_t>(end)};
  }
  return {};
}

/// The pages of a record value that fills at least one page, whose mapping this process may drop:
/// such a value lives on overflow pages of its own, so no other record shares them. The pages stay in
/// the page cache (without MDB_WRITEMAP the map is a read-only shared file mapping; a later access
/// maps them again), but no longer count in the process's RSS: without this, catch-up reads of a
/// log that lags by `storage.max-log-bytes` leave that much of the file resident in the process.
/// Only a value inside the map qualifies (never a dirty page of a write transaction, which is
/// heap memory); empty otherwise.
map_range value_pages(const map_range& map, const MDB_val& v) {
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  auto data = reinterpret_cast<uintptr_t>(v.mv_data);
  if (v.mv_size < page || data < map.begin || data + v.mv_size > map.end)
    return {};
  return {data & ~(page - 1), (data + v.mv_size + page - 1) & ~(page - 1)};
}

/// Collects the pages of consecutive values (see `value_pages`) and releases each contiguous run
/// with one `madvise`: each call interrupts every core running one of the process's threads (TLB
/// shootdown), so records stored one after the other cost one call, not one each.
class page_releaser {
public:
  explicit page_releaser(map_range map) : map_(map) {
    // nop
  }
  page_releaser(const page_releaser&) = delete;
  page_releaser& operator=(const page_releaser&) = delete;
  ~page_releaser() {
    flush();
  }
  void add(const MDB_val& v) {
    auto r = value_pages(map_, v);
    if (r.end == r.begin)
      return;
    if (r.begin != run_.end)
      flush();
    if (run_.end == run_.begin)
      run_.begin = r.begin;
    run_.end = r.end;
  }
  void flush() {
    if (run_.end > run_.begin) // advisory: errors ignored
      ::madvise(reinterpret_cast<void*>(run_.begin), run_.end - run_.begin, MADV_DONTNEED);
    run_ = {};
  }

private:
  map_range map_;
  map_range run_;
};

/// One stored record, viewing LMDB's memory.
struct record {
  uint64_t first;
  uint32_t count;
  std::string_view payload;
  size_t stored_bytes; ///< size of the stored value, prefix included
};

record parse(const MDB_val& key, const MDB_val& value) {
  auto k = to_view(key);
  auto v = to_view(value);
  if (k.size() != 8 || v.size() < count_prefix_bytes)
    throw lmdb_error(MDB_CORRUPTED,
                     "log record with a " + std::to_string(k.size()) + "-byte key and a "
                       + std::to_string(v.size())
                       + "-byte value: expected an 8-byte offset and a 4-byte event count; the "
                         "ingest log in this data-dir is damaged or was written by another program");
  uint32_t count = 0;
  for (size_t i = 0; i < count_prefix_bytes; ++i)
    count = (count << 8) | static_cast<unsigned char>(v[i]);
  return {decode_be64(k), count, v.substr(count_prefix_bytes), v.size()};
}

} // namespace

log_store::log_store(environment& env) : env_(env) {
  // nop
}

void log_store::open() {
  read_txn txn{env_};
  log_stats fresh;
  detail::cursor cur{txn.handle(), env_.dbi(db::log), db::log};
  MDB_val k;
  MDB_val v;
  for (bool found = cur.get(k, v, MDB_FIRST, "MDB_FIRST"); found;
       found = cur.get(k, v, MDB_NEXT, "MDB_NEXT")) {
    auto rec = parse(k, v);
    if (fresh.records == 0)
      fresh.first_offset = rec.first;
    ++fresh.records;
    fresh.bytes += rec.stored_bytes;
    fresh.next_offset = rec.first + rec.count;
  }
  if (auto saved = txn.get(db::meta, next_offset_key))
    fresh.next_offset = std::max(fresh.next_offset, decode_be64(*saved));
  stats_ = fresh;
  saved_ = fresh;
}

uint64_t log_store::append(write_txn& txn, uint32_t count, std::string_view value) {
  uint64_t first = 0;
  char* out = append_reserved(txn, count, value.size(), first);
  if (!value.empty())
    std::memcpy(out, value.data(), value.size());
  return first;
}

char* log_store::append_reserved(write_txn& txn, uint32_t count, size_t size, uint64_t& first) {
  if (count == 0)
    throw std::invalid_argument("log_store::append: a record must hold at least one event");
  if (size > std::numeric_limits<uint32_t>::max() - count_prefix_bytes)
    throw std::invalid_argument("log_store::append: a " + std::to_string(size)
                                + "-byte batch exceeds LMDB's 4 GiB value limit; split the batch");
  first = stats_.next_offset;
  auto key = encode_be64(first);
  MDB_val k = to_val(key);
  MDB_val v{count_prefix_bytes + size, nullptr};
  // MDB_RESERVE: LMDB hands back the space for the value, so the batch is written (or copied)
  // once, into it.
  detail::check_append(mdb_put(detail::live(txn.handle(), "log_store::append"),
                               env_.dbi(db::log), &k, &v, MDB_APPEND | MDB_RESERVE),
                       db::log);
  auto* out = static_cast<unsigned char*>(v.mv_data);
  out[0] = static_cast<unsigned char>(count >> 24);
  out[1] = static_cast<unsigned char>(count >> 16);
  out[2] = static_cast<unsigned char>(count >> 8);
  out[3] = static_cast<unsigned char>(count);
  // Bookkeeping only after LMDB accepted the record: a throwing append leaves stats_ untouched,
  // and `rollback` undoes the appends of a transaction that is later aborted.
  if (stats_.records == 0)
    stats_.first_offset = first;
  stats_.next_offset = first + count;
  ++stats_.records;
  stats_.bytes += v.mv_size;
  return reinterpret_cast<char*>(out + count_prefix_bytes);
}

void log_store::read(uint64_t from,
                     const std::function<bool(uint64_t, uint32_t, std::string_view)>& fn) const {
  read_txn txn{env_};
  detail::cursor cur{txn.handle(), env_.dbi(db::log), db::log};
  auto [map_begin, map_end] = mapped();
  page_releaser released{{map_begin, map_end}};
  auto from_key = encode_be64(from);
  MDB_val k = to_val(from_key);
  MDB_val v;
  // The record holding `from` is either the first with key >= from (key == from) or the one before.
  bool have = cur.get(k, v, MDB_SET_RANGE, "MDB_SET_RANGE");
  uint64_t start = have ? parse(k, v).first : 0;
  if (!have || start > from) {
    bool prev = have ? cur.get(k, v, MDB_PREV, "MDB_PREV") : cur.get(k, v, MDB_LAST, "MDB_LAST");
    if (prev) {
      auto rec = parse(k, v);
      if (rec.first + rec.count > from) {
        start = rec.first;
        have = true;
      }
    }
  }
  if (!have)
    return;
  // Re-position explicitly rather than relying on the cursor state after a failed MDB_PREV.
  auto start_key = encode_be64(start);
  k = to_val(start_key);
  for (bool found = cur.get(k, v, MDB_SET_KEY, "MDB_SET_KEY"); found;
       found = cur.get(k, v, MDB_NEXT, "MDB_NEXT")) {
    auto rec = parse(k, v);
    bool more = fn(rec.first, rec.count, rec.payload);
    released.add(v); // `fn` is done with the bytes
    if (!more)
      break;
  }
}

std::pair<uintptr_t, uintptr_t> log_store::mapped() const {
  std::lock_guard<std::mutex> guard{map_mutex_};
  if (map_.second - map_.first != env_.map_bytes()) {
    auto r = map_of(env_.handle());
    map_ = {r.begin, r.end};
  }
  return map_;
}

size_t log_store::trim(write_txn& txn, uint64_t below, size_t max_records, bool* more) {
  detail::cursor cur{detail::live(txn.handle(), "log_store::trim"), env_.dbi(db::log), db::log};
  size_t removed = 0;
  uint64_t new_first = 0;
  if (more != nullptr)
    *more = false;
  std::optional<page_releaser> released; // the map is looked up once per trim that removes any
  MDB_val k;
  MDB_val v;
  while (cur.get(k, v, MDB_FIRST, "MDB_FIRST")) {
    auto rec = parse(k, v);
    new_first = rec.first;
    if (rec.first + rec.count > below) // its last offset, first + count - 1, is >= below
      break;
    if (removed == max_records) { // the rest is for a later transaction
      if (more != nullptr)
        *more = true;
      break;
    }
    cur.del();
    if (!released) {
      auto [map_begin, map_end] = mapped();
      released.emplace(map_range{map_begin, map_end});
    }
    released->add(v); // reading its count mapped the record's first page
    ++removed;
    --stats_.records;
    stats_.bytes -= rec.stored_bytes;
    new_first = 0; // nothing left unless the next round finds a record
  }
  if (removed > 0) {
    stats_.first_offset = new_first;
    txn.put(db::meta, next_offset_key, encode_be64(stats_.next_offset));
  }
  return removed;
}

} // namespace sluice::persistence
