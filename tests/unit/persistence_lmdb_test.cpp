#include "persistence/lmdb.hpp"

#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace sluice::persistence;
using sluice::persistence::testing::temp_dir;

namespace {

env_options options_for(const temp_dir& dir, durability mode = durability::sync) {
  env_options opts;
  opts.path = dir.sub("env");
  opts.initial_map_bytes = size_t{16} << 20;
  opts.max_map_bytes = size_t{64} << 20;
  opts.mode = mode;
  return opts;
}

std::vector<std::pair<std::string, std::string>> scan_all(const environment& env, db which,
                                                          std::string_view from = {}) {
  std::vector<std::pair<std::string, std::string>> out;
  read_txn txn{env};
  txn.scan(which, from, [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string{k}, std::string{v});
    return true;
  });
  return out;
}

} // namespace

TEST(durability, parse_accepts_exactly_sync_periodic_and_none) {
  EXPECT_EQ(parse_durability("sync"), durability::sync);
  EXPECT_EQ(parse_durability("periodic"), durability::periodic);
  EXPECT_EQ(parse_durability("none"), durability::none);
  EXPECT_EQ(parse_durability(""), std::nullopt);
  EXPECT_EQ(parse_durability("SYNC"), std::nullopt);
  EXPECT_EQ(parse_durability("async"), std::nullopt);
  EXPECT_EQ(parse_durability("sync "), std::nullopt);
}

TEST(be64, round_trips_and_byte_order_is_numeric_order) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256}, uint64_t{1} << 40,
                     ~uint64_t{0}}) {
    auto bytes = encode_be64(v);
    ASSERT_EQ(bytes.size(), 8u);
    EXPECT_EQ(decode_be64(bytes), v);
  }
  EXPECT_EQ(encode_be64(0x0102030405060708ull), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_LT(encode_be64(255), encode_be64(256));
  EXPECT_LT(encode_be64(1), encode_be64(uint64_t{1} << 56));
  EXPECT_THROW(decode_be64("short"), std::invalid_argument);
}

TEST(environment, creates_a_missing_directory_and_every_named_database) {
  temp_dir dir;
  auto opts = options_for(dir);
  opts.path = dir.sub("a/b/c");
  environment env{opts};
  EXPECT_TRUE(std::filesystem::is_directory(opts.path));
  EXPECT_TRUE(std::filesystem::exists(opts.path + "/data.mdb"));
  std::vector<unsigned> dbis;
  for (int i = 0; i < db_count; ++i)
    dbis.push_back(env.dbi(static_cast<db>(i)));
  std::sort(dbis.begin(), dbis.end());
  EXPECT_EQ(std::unique(dbis.begin(), dbis.end()), dbis.end()) << "every db has its own handle";
  EXPECT_EQ(env.mode(), durability::sync);
  EXPECT_GE(env.map_bytes(), opts.initial_map_bytes);
}

TEST(environment, rejects_an_initial_map_larger_than_the_maximum) {
  temp_dir dir;
  auto opts = options_for(dir);
  opts.initial_map_bytes = opts.max_map_bytes * 2;
  EXPECT_THROW(environment{opts}, std::invalid_argument);
  opts = options_for(dir);
  opts.path.clear();
  EXPECT_THROW(environment{opts}, std::invalid_argument);
}

TEST(environment, named_databases_are_independent_key_spaces) {
  temp_dir dir;
  environment env{options_for(dir)};
  {
    write_txn txn{env};
    txn.put(db::offsets, "k", "offsets-value");
    txn.put(db::devices, "k", "devices-value");
    txn.commit();
  }
  read_txn txn{env};
  EXPECT_EQ(txn.get(db::offsets, "k"), "offsets-value");
  EXPECT_EQ(txn.get(db::devices, "k"), "devices-value");
  EXPECT_EQ(txn.get(db::profiles, "k"), std::nullopt);
  EXPECT_EQ(txn.get(db::meta, "k"), std::nullopt);
}

TEST(write_txn, put_overwrites_get_sees_own_writes_and_del_reports_absence) {
  temp_dir dir;
  environment env{options_for(dir)};
  write_txn txn{env};
  txn.put(db::meta, "a", "1");
  txn.put(db::meta, "a", "2");
  EXPECT_EQ(txn.get(db::meta, "a"), "2");
  EXPECT_TRUE(txn.del(db::meta, "a"));
  EXPECT_FALSE(txn.del(db::meta, "a"));
  EXPECT_EQ(txn.get(db::meta, "a"), std::nullopt);
  txn.put(db::meta, "b", "3");
  txn.commit();
  read_txn r{env};
  EXPECT_EQ(r.get(db::meta, "a"), std::nullopt);
  EXPECT_EQ(r.get(db::meta, "b"), "3");
}

TEST(write_txn, destroyed_without_commit_leaves_nothing) {
  temp_dir dir;
  environment env{options_for(dir)};
  {
    write_txn txn{env};
    txn.put(db::routes, "r1", "when true");
    txn.append(db::log, encode_be64(1), "batch");
  }
  EXPECT_TRUE(scan_all(env, db::routes).empty());
  EXPECT_TRUE(scan_all(env, db::log).empty());
}

TEST(write_txn, use_after_commit_is_a_logic_error_not_a_crash) {
  temp_dir dir;
  environment env{options_for(dir)};
  write_txn txn{env};
  txn.put(db::meta, "a", "1");
  txn.commit();
  EXPECT_EQ(txn.handle(), nullptr);
  EXPECT_THROW(txn.put(db::meta, "b", "2"), std::logic_error);
  EXPECT_THROW(txn.commit(), std::logic_error);
}

TEST(write_txn, append_with_an_out_of_order_key_throws_keyexist_naming_the_db) {
  temp_dir dir;
  environment env{options_for(dir)};
  write_txn txn{env};
  txn.append(db::log, encode_be64(10), "a");
  txn.append(db::log, encode_be64(20), "b");
  for (uint64_t bad : {uint64_t{20}, uint64_t{15}, uint64_t{1}}) {
    try {
      txn.append(db::log, encode_be64(bad), "c");
      FAIL() << "append of key " << bad << " after 20 must throw";
    } catch (const lmdb_error& e) {
      EXPECT_EQ(e.code(), MDB_KEYEXIST);
      EXPECT_FALSE(e.map_full());
      EXPECT_NE(std::string{e.what()}.find("mdb_put(log, MDB_APPEND)"), std::string::npos)
        << e.what();
      EXPECT_NE(std::string{e.what()}.find("increasing"), std::string::npos) << e.what();
    }
  }
  // The transaction is still usable: the out-of-order puts changed nothing.
  txn.append(db::log, encode_be64(30), "d");
  txn.commit();
  auto all = scan_all(env, db::log);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].second, "d");
}

TEST(read_txn, scan_visits_keys_in_byte_order_from_the_given_key_until_told_to_stop) {
  temp_dir dir;
  environment env{options_for(dir)};
  {
    write_txn txn{env};
    for (auto k : {"delta", "alpha", "charlie", "bravo", "echo"})
      txn.put(db::devices, k, std::string{"v-"} + k);
    txn.commit();
  }
  auto all = scan_all(env, db::devices);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].first, "alpha");
  EXPECT_EQ(all[1].first, "bravo");
  EXPECT_EQ(all[4].first, "echo");
  EXPECT_EQ(all[4].second, "v-echo");

  auto tail = scan_all(env, db::devices, "c"); // not a key: starts at the next one
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail[0].first, "charlie");

  EXPECT_TRUE(scan_all(env, db::devices, "zulu").empty());

  std::vector<std::string> seen;
  read_txn txn{env};
  txn.scan(db::devices, "bravo", [&](std::string_view k, std::string_view) {
    seen.emplace_back(k);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"bravo", "charlie"}));
}

TEST(write_txn, del_below_removes_exactly_the_keys_sorting_strictly_below) {
  temp_dir dir;
  environment env{options_for(dir)};
  {
    write_txn txn{env};
    for (uint64_t i = 1; i <= 100; ++i)
      txn.append(db::offsets, encode_be64(i), std::to_string(i));
    txn.commit();
  }
  {
    write_txn txn{env};
    EXPECT_EQ(txn.del_below(db::offsets, encode_be64(41)), 40u);
    EXPECT_EQ(txn.del_below(db::offsets, encode_be64(41)), 0u);
    EXPECT_EQ(txn.del_below(db::offsets, encode_be64(0)), 0u);
    txn.commit();
  }
  auto rest = scan_all(env, db::offsets);
  ASSERT_EQ(rest.size(), 60u);
  EXPECT_EQ(decode_be64(rest.front().first), 41u);
  EXPECT_EQ(decode_be64(rest.back().first), 100u);
  {
    write_txn txn{env};
    EXPECT_EQ(txn.del_below(db::offsets, encode_be64(1000)), 60u);
    txn.commit();
  }
  EXPECT_TRUE(scan_all(env, db::offsets).empty());
}

TEST(read_txn, sees_a_consistent_snapshot_while_a_writer_commits) {
  temp_dir dir;
  environment env{options_for(dir)};
  {
    write_txn txn{env};
    txn.put(db::profiles, "a", "old");
    txn.put(db::profiles, "b", "old");
    txn.commit();
  }
  read_txn snapshot{env};
  std::thread writer{[&] {
    write_txn txn{env};
    txn.put(db::profiles, "a", "new");
    txn.put(db::profiles, "b", "new");
    txn.put(db::profiles, "c", "new");
    txn.commit();
  }};
  writer.join();
  EXPECT_EQ(snapshot.get(db::profiles, "a"), "old");
  EXPECT_EQ(snapshot.get(db::profiles, "b"), "old");
  EXPECT_EQ(snapshot.get(db::profiles, "c"), std::nullopt);
  size_t n = 0;
  snapshot.scan(db::profiles, {}, [&](std::string_view, std::string_view v) {
    EXPECT_EQ(v, "old");
    ++n;
    return true;
  });
  EXPECT_EQ(n, 2u);
  read_txn fresh{env};
  EXPECT_EQ(fresh.get(db::profiles, "a"), "new");
  EXPECT_EQ(fresh.get(db::profiles, "c"), "new");
}

TEST(environment, map_full_then_grow_lets_the_retried_write_succeed_and_survive_reopen) {
  temp_dir dir;
  auto opts = options_for(dir);
  opts.initial_map_bytes = size_t{64} << 10;
  opts.max_map_bytes = size_t{16} << 20;
  const std::string value(1000, 'x');
  uint64_t written = 0;
  bool saw_map_full = false;
  {
    environment env{opts};
    EXPECT_EQ(env.map_bytes(), opts.initial_map_bytes);
    auto write_one = [&](uint64_t key) {
      write_txn txn{env};
      txn.append(db::aggregates, encode_be64(key), value);
      txn.commit();
    };
    for (int i = 0; i < 1000 && !saw_map_full; ++i) {
      try {
        write_one(written + 1);
        ++written;
      } catch (const lmdb_error& e) {
        ASSERT_TRUE(e.map_full()) << e.what();
        saw_map_full = true;
      }
    }
    ASSERT_TRUE(saw_map_full) << "a 64 KiB map cannot hold 1000 KB";
    ASSERT_GT(written, 0u);
    ASSERT_TRUE(env.grow());
    EXPECT_EQ(env.map_bytes(), opts.initial_map_bytes * 2);
    write_one(written + 1); // the same write, retried
    ++written;
    EXPECT_EQ(scan_all(env, db::aggregates).size(), written);
  }
  environment env{opts};
  auto all = scan_all(env, db::aggregates);
  ASSERT_EQ(all.size(), written);
  EXPECT_EQ(decode_be64(all.back().first), written);
  EXPECT_EQ(all.back().second, value);
  auto file = std::filesystem::file_size(opts.path + "/data.mdb");
  EXPECT_GT(env.map_bytes(), file) << "reopen adopts a map larger than the existing data file";
  EXPECT_GT(env.map_bytes(), opts.initial_map_bytes);
  write_txn txn{env};
  txn.append(db::aggregates, encode_be64(written + 1), value); // room to write after reopen
  txn.commit();
}

TEST(environment, grow_stops_at_the_maximum_map_size) {
  temp_dir dir;
  auto opts = options_for(dir);
  opts.initial_map_bytes = size_t{1} << 20;
  opts.max_map_bytes = size_t{3} << 20; // not a power-of-two multiple: the last step is clamped
  environment env{opts};
  EXPECT_TRUE(env.grow());
  EXPECT_EQ(env.map_bytes(), size_t{2} << 20);
  EXPECT_TRUE(env.grow());
  EXPECT_EQ(env.map_bytes(), size_t{3} << 20);
  EXPECT_FALSE(env.grow());
  EXPECT_EQ(env.map_bytes(), size_t{3} << 20);
}

TEST(environment, every_durability_mode_persists_committed_writes_across_reopen) {
  for (auto mode : {durability::sync, durability::periodic, durability::none}) {
    temp_dir dir;
    auto opts = options_for(dir, mode);
    {
      environment env{opts};
      EXPECT_EQ(env.mode(), mode);
      write_txn txn{env};
      txn.put(db::meta, "mode", "set");
      txn.commit();
      env.flush();
    }
    environment env{opts};
    read_txn txn{env};
    EXPECT_EQ(txn.get(db::meta, "mode"), "set");
  }
}

TEST(lmdb_error, names_the_operation_and_the_database) {
  temp_dir dir;
  environment env{options_for(dir)};
  write_txn txn{env};
  try {
    txn.put(db::devices, std::string(1000, 'k'), "v"); // keys are limited to 511 bytes
    FAIL() << "an oversized key must throw";
  } catch (const lmdb_error& e) {
    EXPECT_EQ(e.code(), MDB_BAD_VALSIZE);
    EXPECT_EQ(std::string{e.what()}.rfind("mdb_put(devices): ", 0), 0u) << e.what();
  }
}
