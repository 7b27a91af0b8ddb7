#include "persistence/log_store.hpp"

#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <fstream>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice::persistence;
using sluice::persistence::testing::temp_dir;

namespace {

env_options options_for(const temp_dir& dir) {
  env_options opts;
  opts.path = dir.sub("env");
  opts.initial_map_bytes = size_t{16} << 20;
  opts.max_map_bytes = size_t{64} << 20;
  return opts;
}

using entry = std::tuple<uint64_t, uint32_t, std::string>;

std::vector<entry> read_all(const log_store& log, uint64_t from) {
  std::vector<entry> out;
  log.read(from, [&](uint64_t first, uint32_t count, std::string_view value) {
    out.emplace_back(first, count, std::string{value});
    return true;
  });
  return out;
}

/// Appends records of the given event counts in one committed transaction; payload "b<first>".
std::vector<uint64_t> append_committed(environment& env, log_store& log,
                                       const std::vector<uint32_t>& counts) {
  std::vector<uint64_t> firsts;
  log.checkpoint();
  write_txn txn{env};
  for (auto count : counts)
    firsts.push_back(log.append(txn, count, "b" + std::to_string(log.stats().next_offset)));
  txn.commit();
  return firsts;
}

} // namespace

TEST(log_store, an_empty_log_starts_at_offset_one_and_reads_nothing) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  EXPECT_EQ(log.stats().first_offset, 0u);
  EXPECT_EQ(log.stats().next_offset, 1u);
  EXPECT_EQ(log.stats().records, 0u);
  EXPECT_EQ(log.stats().bytes, 0u);
  EXPECT_TRUE(read_all(log, 0).empty());
  EXPECT_TRUE(read_all(log, 1).empty());
}

TEST(log_store, appended_records_get_dense_offsets_and_read_back_from_the_start) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  auto firsts = append_committed(env, log, {3, 1, 100});
  EXPECT_EQ(firsts, (std::vector<uint64_t>{1, 4, 5}));
  EXPECT_EQ(log.stats().first_offset, 1u);
  EXPECT_EQ(log.stats().next_offset, 105u);
  EXPECT_EQ(log.stats().records, 3u);
  EXPECT_EQ(log.stats().bytes, 3 * 4 + std::string("b1b4b5").size());
  auto all = read_all(log, 1);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], entry(1, 3, "b1"));
  EXPECT_EQ(all[1], entry(4, 1, "b4"));
  EXPECT_EQ(all[2], entry(5, 100, "b5"));
  EXPECT_EQ(read_all(log, 0), all) << "offset 0 is below every record";
  // A second transaction continues where the first stopped.
  EXPECT_EQ(append_committed(env, log, {2}), (std::vector<uint64_t>{105}));
  EXPECT_EQ(log.stats().next_offset, 107u);
}

TEST(log_store, read_from_the_middle_of_a_record_starts_at_that_record) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  append_committed(env, log, {10, 10, 10}); // [1,10] [11,20] [21,30]
  auto from_15 = read_all(log, 15);
  ASSERT_EQ(from_15.size(), 2u);
  EXPECT_EQ(std::get<0>(from_15[0]), 11u);
  EXPECT_EQ(std::get<0>(from_15[1]), 21u);
  EXPECT_EQ(std::get<0>(read_all(log, 20).front()), 11u) << "the last offset of a record";
  EXPECT_EQ(std::get<0>(read_all(log, 21).front()), 21u) << "the first offset of a record";
  auto from_30 = read_all(log, 30);
  ASSERT_EQ(from_30.size(), 1u) << "inside the last record";
  EXPECT_EQ(from_30[0], entry(21, 10, "b21"));
}

TEST(log_store, read_from_past_the_end_calls_nothing) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  append_committed(env, log, {10, 10});
  EXPECT_TRUE(read_all(log, 21).empty());
  EXPECT_TRUE(read_all(log, 1'000'000).empty());
}

TEST(log_store, read_stops_when_the_callback_returns_false) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  append_committed(env, log, {1, 1, 1, 1});
  std::vector<uint64_t> seen;
  log.read(2, [&](uint64_t first, uint32_t, std::string_view) {
    seen.push_back(first);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<uint64_t>{2, 3}));
}

TEST(log_store, trim_removes_only_records_entirely_below_the_offset) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  append_committed(env, log, {10, 10, 10}); // [1,10] [11,20] [21,30]
  EXPECT_EQ(log.stats().bytes, (4 + 2) + (4 + 3) + (4 + 3)); // prefix + "b1", "b11", "b21"
  {
    write_txn txn{env};
    EXPECT_EQ(log.trim(txn, 1), 0u) << "below the first offset: nothing";
    EXPECT_EQ(log.trim(txn, 15), 1u) << "[11,20] still holds offsets 15..20";
    txn.commit();
  }
  EXPECT_EQ(log.stats().first_offset, 11u);
  EXPECT_EQ(log.stats().records, 2u);
  EXPECT_EQ(log.stats().bytes, 2u * (4 + 3));
  EXPECT_EQ(log.stats().next_offset, 31u);
  auto rest = read_all(log, 0);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(std::get<0>(rest[0]), 11u);
  {
    write_txn txn{env};
    EXPECT_EQ(log.trim(txn, 21), 1u) << "exactly the first offset of the next record";
    txn.commit();
  }
  EXPECT_EQ(log.stats().first_offset, 21u);
  EXPECT_EQ(read_all(log, 0).size(), 1u);
}

TEST(log_store, a_bounded_trim_removes_the_oldest_records_and_says_whether_more_are_below) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  append_committed(env, log, {10, 10, 10, 10}); // [1,10] [11,20] [21,30] [31,40]
  bool more = false;
  {
    write_txn txn{env};
    EXPECT_EQ(log.trim(txn, 31, 2, &more), 2u) << "three records are below 31, two may go";
    EXPECT_TRUE(more) << "[21,30] is still below 31";
    txn.commit();
  }
  EXPECT_EQ(log.stats().first_offset, 21u);
  EXPECT_EQ(log.stats().records, 2u);
  {
    write_txn txn{env};
    EXPECT_EQ(log.trim(txn, 31, 2, &more), 1u);
    EXPECT_FALSE(more) << "[31,40] holds offsets at or above 31";
    txn.commit();
  }
  EXPECT_EQ(log.stats().first_offset, 31u);
  {
    write_txn txn{env};
    EXPECT_EQ(log.trim(txn, 1'000, 1, &more), 1u);
    EXPECT_FALSE(more) << "the bound was reached by the last record there was";
    txn.commit();
  }
  EXPECT_EQ(log.stats().records, 0u);
  EXPECT_EQ(log.stats().first_offset, 0u);
  EXPECT_EQ(log.stats().next_offset, 41u);
  EXPECT_TRUE(read_all(log, 0).empty());
}

TEST(log_store, trim_of_everything_empties_the_log_but_keeps_offsets_increasing_after_reopen) {
  temp_dir dir;
  auto opts = options_for(dir);
  {
    environment env{opts};
    log_store log{env};
    log.open();
    append_committed(env, log, {5, 5});
    write_txn txn{env};
    EXPECT_EQ(log.trim(txn, 1'000), 2u);
    txn.commit();
    EXPECT_EQ(log.stats().records, 0u);
    EXPECT_EQ(log.stats().bytes, 0u);
    EXPECT_EQ(log.stats().first_offset, 0u);
    EXPECT_EQ(log.stats().next_offset, 11u);
    EXPECT_TRUE(read_all(log, 0).empty());
  }
  environment env{opts};
  log_store log{env};
  log.open();
  EXPECT_EQ(log.stats().next_offset, 11u) << "offsets never restart at 1";
  EXPECT_EQ(log.stats().records, 0u);
  EXPECT_EQ(append_committed(env, log, {1}), (std::vector<uint64_t>{11}));
}

TEST(log_store, reopen_recovers_next_offset_stats_and_data_from_the_stored_records) {
  temp_dir dir;
  auto opts = options_for(dir);
  log_stats before;
  std::vector<entry> data;
  {
    environment env{opts};
    log_store log{env};
    log.open();
    append_committed(env, log, {7, 3});
    append_committed(env, log, {100});
    write_txn txn{env};
    log.trim(txn, 8); // drops [1,7]
    txn.commit();
    before = log.stats();
    data = read_all(log, 0);
  }
  environment env{opts};
  log_store log{env};
  log.open();
  EXPECT_EQ(log.stats().first_offset, before.first_offset);
  EXPECT_EQ(log.stats().first_offset, 8u);
  EXPECT_EQ(log.stats().next_offset, 111u);
  EXPECT_EQ(log.stats().records, before.records);
  EXPECT_EQ(log.stats().bytes, before.bytes);
  EXPECT_EQ(read_all(log, 0), data);
  EXPECT_EQ(append_committed(env, log, {1}), (std::vector<uint64_t>{111}));
}

TEST(log_store, an_aborted_transaction_leaves_nothing_and_rollback_restores_stats) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  append_committed(env, log, {4});
  auto committed = log.stats();
  log.checkpoint();
  {
    write_txn txn{env};
    EXPECT_EQ(log.append(txn, 6, "lost"), 5u);
    EXPECT_EQ(log.trim(txn, 100), 2u);
    EXPECT_EQ(log.stats().next_offset, 11u);
  } // aborted
  log.rollback();
  EXPECT_EQ(log.stats().next_offset, committed.next_offset);
  EXPECT_EQ(log.stats().first_offset, committed.first_offset);
  EXPECT_EQ(log.stats().records, committed.records);
  EXPECT_EQ(log.stats().bytes, committed.bytes);
  auto all = read_all(log, 0);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], entry(1, 4, "b1"));
  EXPECT_EQ(append_committed(env, log, {1}), (std::vector<uint64_t>{5}))
    << "the aborted offsets are handed out again";
}

TEST(log_store, a_writer_with_stale_offsets_cannot_overwrite_records) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store fresh{env};
  fresh.open();
  log_store stale{env};
  stale.open(); // next_offset 1, never updated
  append_committed(env, fresh, {3});
  write_txn txn{env};
  try {
    stale.append(txn, 1, "overwrite?");
    FAIL() << "appending offset 1 again must throw";
  } catch (const lmdb_error& e) {
    EXPECT_EQ(e.code(), MDB_KEYEXIST);
    EXPECT_NE(std::string{e.what()}.find("log"), std::string::npos) << e.what();
  }
  EXPECT_EQ(stale.stats().next_offset, 1u) << "a failed append changes no statistics";
  EXPECT_EQ(stale.stats().records, 0u);
}

TEST(log_store, append_rejects_an_empty_batch) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  write_txn txn{env};
  EXPECT_THROW(log.append(txn, 0, "x"), std::invalid_argument);
  EXPECT_EQ(log.stats().next_offset, 1u);
}

TEST(log_store, map_full_is_recovered_by_rollback_grow_and_retry_and_survives_reopen) {
  temp_dir dir;
  auto opts = options_for(dir);
  opts.initial_map_bytes = size_t{64} << 10;
  opts.max_map_bytes = size_t{8} << 20;
  const std::string batch(3000, 'e');
  uint64_t records = 0;
  uint64_t next = 0;
  {
    environment env{opts};
    log_store log{env};
    log.open();
    bool grew = false;
    while (records < 200) {
      log.checkpoint();
      try {
        write_txn txn{env};
        log.append(txn, 100, batch);
        txn.commit();
        ++records;
      } catch (const lmdb_error& e) {
        ASSERT_TRUE(e.map_full()) << e.what();
        log.rollback();
        EXPECT_EQ(log.stats().records, records) << "rollback undoes the failed append";
        ASSERT_TRUE(env.grow()) << "8 MiB holds 200 records of 3 KB";
        grew = true;
      }
    }
    EXPECT_TRUE(grew) << "a 64 KiB map cannot hold 600 KB";
    EXPECT_GT(env.map_bytes(), opts.initial_map_bytes);
    EXPECT_EQ(log.stats().records, records);
    EXPECT_EQ(log.stats().next_offset, 1 + 100 * records);
    next = log.stats().next_offset;
  }
  environment env{opts};
  log_store log{env};
  log.open();
  EXPECT_EQ(log.stats().records, records);
  EXPECT_EQ(log.stats().next_offset, next);
  uint64_t expected_first = 1;
  size_t seen = 0;
  log.read(0, [&](uint64_t first, uint32_t count, std::string_view value) {
    EXPECT_EQ(first, expected_first);
    EXPECT_EQ(count, 100u);
    EXPECT_EQ(value, batch);
    expected_first += count;
    ++seen;
    return true;
  });
  EXPECT_EQ(seen, records);
}

TEST(log_store, read_runs_on_its_own_snapshot_while_the_writer_appends) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  append_committed(env, log, {1, 1});
  size_t seen = 0;
  log.read(0, [&](uint64_t, uint32_t, std::string_view) {
    if (seen++ == 0)
      append_committed(env, log, {1}); // commits while the read transaction is open
    return true;
  });
  EXPECT_EQ(seen, 2u) << "the record committed during the read is not part of its snapshot";
  EXPECT_EQ(read_all(log, 0).size(), 3u);
}

namespace {

/// Resident KiB of this process's mappings of files under `dir` (from /proc/self/smaps).
size_t resident_kib_under(const std::string& dir) {
  std::ifstream smaps{"/proc/self/smaps"};
  std::string line;
  bool inside = false;
  size_t kib = 0;
  while (std::getline(smaps, line)) {
    auto space = line.find(' ');
    if (space != std::string::npos && line.find('-') < space) { // a mapping's first line
      inside = line.find(dir) != std::string::npos;
      continue;
    }
    if (inside && line.rfind("Rss:", 0) == 0)
      kib += std::stoul(line.substr(4));
  }
  return kib;
}

} // namespace

TEST(log_store, records_larger_than_a_page_read_back_intact_and_leave_no_pages_mapped) {
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  // 400 records of 20 KiB (as a 100-event client batch): 8 MiB of overflow pages.
  std::string batch(20 * 1024, '\0');
  for (size_t i = 0; i < batch.size(); ++i)
    batch[i] = static_cast<char>('a' + i % 23);
  for (int t = 0; t < 4; ++t) {
    log.checkpoint();
    write_txn txn{env};
    for (int r = 0; r < 100; ++r)
      log.append(txn, 100, batch);
    txn.commit();
  }
  for (int pass = 0; pass < 2; ++pass) { // the second pass maps the released pages again
    size_t seen = 0;
    log.read(0, [&](uint64_t, uint32_t count, std::string_view value) {
      EXPECT_EQ(count, 100u);
      EXPECT_TRUE(value == batch) << "record " << seen << " on pass " << pass;
      ++seen;
      return true;
    });
    EXPECT_EQ(seen, 400u);
  }
  // Reading the whole log leaves (far) less than its 8 MiB resident in this process: the pages
  // of each record are released once the callback is done with them.
  EXPECT_LT(resident_kib_under(dir.sub("env")), 1024u);
}

TEST(log_store, pages_read_after_the_map_grew_are_released_from_the_new_mapping) {
  temp_dir dir;
  auto opts = options_for(dir);
  opts.initial_map_bytes = size_t{4} << 20;
  environment env{opts};
  log_store log{env};
  log.open();
  std::string batch(20 * 1024, 'x');
  auto append_batches = [&](int n) {
    for (;;) {
      log.checkpoint();
      try {
        write_txn txn{env};
        for (int r = 0; r < n; ++r)
          log.append(txn, 100, batch);
        txn.commit();
        return;
      } catch (const lmdb_error& e) {
        log.rollback();
        ASSERT_TRUE(e.map_full()) << e.what();
        ASSERT_TRUE(env.grow());
      }
    }
  };
  append_batches(50); // 1 MiB in a 4 MiB map
  auto read_everything = [&] {
    size_t seen = 0;
    log.read(0, [&](uint64_t, uint32_t, std::string_view value) {
      EXPECT_TRUE(value == batch);
      ++seen;
      return true;
    });
    return seen;
  };
  EXPECT_EQ(read_everything(), 50u); // the mapping is looked up at its first size
  auto before = env.map_bytes();
  append_batches(400); // 8 MiB more: the map grows and LMDB maps the file again
  ASSERT_GT(env.map_bytes(), before);
  EXPECT_EQ(read_everything(), 450u);
  EXPECT_LT(resident_kib_under(dir.sub("env")), 1024u)
    << "the pages of the grown map were not released: the old mapping's range was used";
}

TEST(log_store, trimming_records_larger_than_a_page_counts_their_stored_bytes_exactly) {
  // Records on overflow pages (their size comes from LMDB's node), and a last one that ends at
  // the log's next offset.
  temp_dir dir;
  environment env{options_for(dir)};
  log_store log{env};
  log.open();
  std::string batch(20 * 1024, 'y');
  log.checkpoint();
  {
    write_txn txn{env};
    for (int r = 0; r < 40; ++r)
      log.append(txn, 100, batch);
    log.append(txn, 7, "short");
    txn.commit();
  }
  {
    write_txn txn{env};
    EXPECT_EQ(log.trim(txn, 30 * 100 + 1), 30u);
    txn.commit();
  }
  EXPECT_EQ(log.stats().records, 11u);
  EXPECT_EQ(log.stats().first_offset, 30u * 100 + 1);
  EXPECT_EQ(log.stats().bytes, 10u * (4 + batch.size()) + (4 + 5));
  {
    write_txn txn{env};
    EXPECT_EQ(log.trim(txn, 40 * 100 + 7), 10u) << "the last record still holds offset 4007";
    EXPECT_EQ(log.trim(txn, 40 * 100 + 8), 1u) << "the last record ends at the next offset";
    txn.commit();
  }
  EXPECT_EQ(log.stats().records, 0u);
  EXPECT_EQ(log.stats().bytes, 0u);
  EXPECT_EQ(log.stats().next_offset, 40u * 100 + 8);
  EXPECT_TRUE(read_all(log, 0).empty());
}
