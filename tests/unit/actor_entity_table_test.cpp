// entity_table: the open-addressing table a shard keeps its entities in, by key and precomputed
// hash.

#include "actors/entity_table.hpp"
#include "actors/placement.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>

using namespace sluice;

namespace {

struct item {
  std::string key;
  int value = 0;
};

struct item_key {
  std::string_view operator()(const item& x) const noexcept {
    return x.key;
  }
};

using table = entity_table<item, item_key>;

item* add(table& t, const std::string& key, size_t hash, int value) {
  return t.insert(hash, std::make_unique<item>(item{key, value}));
}

// Every key of `want` is found with its value, and the table holds nothing else.
void expect_same(const table& t, const std::map<std::string, std::pair<size_t, int>>& want) {
  ASSERT_EQ(t.size(), want.size());
  for (auto& [key, v] : want) {
    auto* found = t.find(key, v.first);
    ASSERT_NE(found, nullptr) << key;
    EXPECT_EQ(found->value, v.second) << key;
  }
  size_t seen = 0;
  t.for_each([&](const item& x) {
    ++seen;
    EXPECT_EQ(want.count(x.key), 1u) << x.key;
  });
  EXPECT_EQ(seen, want.size());
}

TEST(entity_table, finds_inserted_keys_by_their_hash_and_nothing_else) {
  table t;
  EXPECT_EQ(t.find("a", key_hash("a")), nullptr); // empty, no array yet
  EXPECT_EQ(t.capacity(), 0u);
  auto* a = add(t, "a", key_hash("a"), 1);
  add(t, "b", key_hash("b"), 2);
  EXPECT_EQ(t.find("a", key_hash("a")), a);
  EXPECT_EQ(t.find("b", key_hash("b"))->value, 2);
  EXPECT_EQ(t.find("c", key_hash("c")), nullptr);
  // The hash alone does not find a key: the bytes must match too.
  EXPECT_EQ(t.find("c", key_hash("a")), nullptr);
  EXPECT_EQ(t.size(), 2u);
}

TEST(entity_table, keys_with_equal_hashes_or_equal_homes_are_told_apart_and_erased_singly) {
  table t;
  std::map<std::string, std::pair<size_t, int>> want;
  // 40 keys on 4 full hashes whose top bits are equal (the same home at every capacity), so
  // every lookup walks a long run of entries; erasing from the middle of the run shifts the rest.
  for (int i = 0; i < 40; ++i) {
    auto key = "k" + std::to_string(i);
    size_t hash = (size_t{0xabc} << 52) | static_cast<size_t>(i % 4);
    add(t, key, hash, i);
    want[key] = {hash, i};
  }
  expect_same(t, want);
  for (int i = 0; i < 40; i += 3) {
    auto key = "k" + std::to_string(i);
    EXPECT_TRUE(t.erase(key, want[key].first)) << key;
    EXPECT_FALSE(t.erase(key, want[key].first)) << key;
    want.erase(key);
    expect_same(t, want);
  }
}

TEST(entity_table, grows_above_half_full_and_shrinks_when_most_values_are_erased) {
  table t;
  std::map<std::string, std::pair<size_t, int>> want;
  for (int i = 0; i < 5000; ++i) {
    auto key = "dev-" + std::to_string(i);
    add(t, key, key_hash(key), i);
    want[key] = {key_hash(key), i};
    ASSERT_LE(t.size() * 2, t.capacity());
  }
  EXPECT_EQ(t.capacity(), 16384u);
  expect_same(t, want);
  // Keep every 100th: 50 left, the array halves while above 8 x 50 entries.
  auto erased = t.erase_if([](const item& x) { return x.value % 100 != 0; });
  EXPECT_EQ(erased, 4950u);
  for (auto i = want.begin(); i != want.end();)
    i = i->second.second % 100 != 0 ? want.erase(i) : std::next(i);
  expect_same(t, want);
  EXPECT_EQ(t.capacity(), 256u);
  t.erase_if([](const item&) { return true; });
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.capacity(), 16u);
  EXPECT_EQ(t.find("dev-0", key_hash("dev-0")), nullptr);
}

TEST(entity_table, matches_a_reference_map_over_random_inserts_erases_and_erase_ifs) {
  // Hashes from a small range of top bits, so runs wrap around the end of the array often.
  std::mt19937_64 rng{42};
  table t;
  std::map<std::string, std::pair<size_t, int>> want;
  for (int step = 0; step < 20000; ++step) {
    auto n = rng() % 300;
    auto key = "key-" + std::to_string(n);
    // A few distinct homes near the end and the start of the array, and full hashes that differ.
    size_t hash = ((n % 7 < 4 ? ~size_t{0} : size_t{0}) & ~size_t{0xffff}) | n;
    auto op = rng() % 10;
    if (op < 5) {
      if (want.count(key) == 0) {
        auto* p = add(t, key, hash, step);
        want[key] = {hash, step};
        ASSERT_EQ(t.find(key, hash), p);
      }
    } else if (op < 9) {
      ASSERT_EQ(t.erase(key, hash), want.erase(key) == 1) << key;
    } else {
      auto cut = static_cast<int>(rng() % 300);
      t.erase_if([&](const item& x) {
        return std::stoi(x.key.substr(4)) < cut / 4;
      });
      for (auto i = want.begin(); i != want.end();)
        i = std::stoi(i->first.substr(4)) < cut / 4 ? want.erase(i) : std::next(i);
    }
    ASSERT_NO_FATAL_FAILURE(expect_same(t, want)) << "step " << step;
  }
}

TEST(entity_table, values_keep_their_address_while_the_table_grows_and_shifts) {
  table t;
  auto* first = add(t, "first", key_hash("first"), 7);
  for (int i = 0; i < 1000; ++i) {
    auto key = std::to_string(i);
    add(t, key, key_hash(key), i);
  }
  for (int i = 0; i < 1000; i += 2) {
    auto key = std::to_string(i);
    t.erase(key, key_hash(key));
  }
  EXPECT_EQ(t.find("first", key_hash("first")), first);
  EXPECT_EQ(first->value, 7);
}

TEST(entity_table, key_hash_places_a_key_in_the_shard_shard_index_names) {
  for (std::string key : {"dev-1", "prof-0000000042", "", "a much longer key than the others"})
    for (size_t n : {1, 2, 3, 7})
      EXPECT_EQ(shard_of(key_hash(key), n), shard_index(key, n)) << key;
  // Placement must stay libstdc++'s std::hash: shard offsets rely on it across restarts.
  EXPECT_EQ(key_hash("dev-1"), std::hash<std::string_view>{}("dev-1"));
}

} // namespace
