#include "persistence/log_store.hpp"

#include "persistence/lmdb_detail.hpp"

#include <lmdb.h>

#include <algorithm>
#include <cstring>
#include <limits>
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
  if (count == 0)
    throw std::invalid_argument("log_store::append: a record must hold at least one event");
  if (value.size() > std::numeric_limits<uint32_t>::max() - count_prefix_bytes)
    throw std::invalid_argument("log_store::append: a " + std::to_string(value.size())
                                + "-byte batch exceeds LMDB's 4 GiB value limit; split the batch");
  auto first = stats_.next_offset;
  auto key = encode_be64(first);
  MDB_val k = to_val(key);
  MDB_val v{count_prefix_bytes + value.size(), nullptr};
  // MDB_RESERVE: LMDB hands back the space for the value, so the batch is copied once.
  detail::check_append(mdb_put(detail::live(txn.handle(), "log_store::append"),
                               env_.dbi(db::log), &k, &v, MDB_APPEND | MDB_RESERVE),
                       db::log);
  auto* out = static_cast<unsigned char*>(v.mv_data);
  out[0] = static_cast<unsigned char>(count >> 24);
  out[1] = static_cast<unsigned char>(count >> 16);
  out[2] = static_cast<unsigned char>(count >> 8);
  out[3] = static_cast<unsigned char>(count);
  if (!value.empty())
    std::memcpy(out + count_prefix_bytes, value.data(), value.size());
  // Bookkeeping only after LMDB accepted the record: a throwing append leaves stats_ untouched,
  // and `rollback` undoes the appends of a transaction that is later aborted.
  if (stats_.records == 0)
    stats_.first_offset = first;
  stats_.next_offset = first + count;
  ++stats_.records;
  stats_.bytes += v.mv_size;
  return first;
}

void log_store::read(uint64_t from,
                     const std::function<bool(uint64_t, uint32_t, std::string_view)>& fn) const {
  read_txn txn{env_};
  detail::cursor cur{txn.handle(), env_.dbi(db::log), db::log};
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
    if (!fn(rec.first, rec.count, rec.payload))
      break;
  }
}

size_t log_store::trim(write_txn& txn, uint64_t below) {
  detail::cursor cur{detail::live(txn.handle(), "log_store::trim"), env_.dbi(db::log), db::log};
  size_t removed = 0;
  uint64_t new_first = 0;
  MDB_val k;
  MDB_val v;
  while (cur.get(k, v, MDB_FIRST, "MDB_FIRST")) {
    auto rec = parse(k, v);
    if (rec.first + rec.count > below) { // its last offset, first + count - 1, is >= below
      new_first = rec.first;
      break;
    }
    cur.del();
    ++removed;
    --stats_.records;
    stats_.bytes -= rec.stored_bytes;
  }
  if (removed > 0) {
    stats_.first_offset = new_first;
    txn.put(db::meta, next_offset_key, encode_be64(stats_.next_offset));
  }
  return removed;
}

} // namespace sluice::persistence
