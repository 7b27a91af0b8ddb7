// A shard's per-event key work, as in actors/shard.cpp: skip the keys of other shards, then find
// the entity of each own key, over batches of 100 reference-job device ids (10,000 distinct keys,
// 2 shards: ~5,000 entities in this one). Compares the node-based table the shard used
// (`std::unordered_map<std::string_view, std::unique_ptr<slot>>`, each key hashed twice: once for
// the shard filter and once by the map) with `entity_table` (one hash per key) looked up event by
// event and in two passes with prefetching. Between batches the caches are flushed by walking
// 8 MB (not timed), as the gateway, codec and sinks do between the batches a shard receives.
//
//   build-x/bench/sluice_shard_lookup_bench [--benchmark_filter=...]

#include "actors/entity_table.hpp"
#include "actors/placement.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

using namespace sluice;

namespace {

constexpr size_t shards = 2;
constexpr size_t batch_size = 100;
constexpr size_t distinct_keys = 10'000;

/// An entity slot as the shard keeps it: its key and some state that applying an event touches.
struct slot {
  std::string key;
  uint64_t batch = 0;
  char state[192] = {};
};

struct slot_key {
  std::string_view operator()(const slot& s) const noexcept {
    return s.key;
  }
};

std::vector<std::string> make_keys() {
  std::vector<std::string> keys;
  for (uint64_t k = 0; k < distinct_keys; ++k)
    keys.push_back(fmt::format("dev-{:016x}", (k * 40503) % 18446744073709ull));
  return keys;
}

/// 1,000 batches of 100 keys drawn at random (as the reference job's shuffled pools arrive).
std::vector<std::vector<std::string_view>> make_batches(const std::vector<std::string>& keys) {
  std::mt19937_64 rng{9};
  std::vector<std::vector<std::string_view>> out(1000);
  for (auto& b : out)
    for (size_t i = 0; i < batch_size; ++i)
      b.push_back(keys[rng() % keys.size()]);
  return out;
}

void flush_caches() {
  static std::vector<char> junk(8 << 20);
  for (size_t i = 0; i < junk.size(); i += 64)
    junk[i] = static_cast<char>(junk[i] + 1);
  benchmark::ClobberMemory();
}

void bm_unordered_map_two_hashes(benchmark::State& state) {
  auto keys = make_keys();
  auto batches = make_batches(keys);
  std::unordered_map<std::string_view, std::unique_ptr<slot>> table;
  for (auto& k : keys)
    if (shard_index(k, shards) == 0) {
      auto s = std::make_unique<slot>();
      s->key = k;
      std::string_view view{s->key};
      table.emplace(view, std::move(s));
    }
  size_t n = 0;
  uint64_t tag = 0;
  for (auto _ : state) {
    state.PauseTiming();
    flush_caches();
    state.ResumeTiming();
    auto& b = batches[n++ % batches.size()];
    ++tag;
    for (auto key : b) {
      if (shard_index(key, shards) != 0)
        continue;
      auto& s = *table.find(key)->second;
      s.batch = tag;
      s.state[0]++;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
}

template <bool two_pass>
void bm_entity_table_one_hash(benchmark::State& state) {
  auto keys = make_keys();
  auto batches = make_batches(keys);
  entity_table<slot, slot_key> table;
  for (auto& k : keys)
    if (auto h = key_hash(k); shard_of(h, shards) == 0) {
      auto s = std::make_unique<slot>();
      s->key = k;
      table.insert(h, std::move(s));
    }
  struct pending {
    std::string_view key;
    size_t hash;
    slot* target;
  };
  std::vector<pending> mine;
  size_t n = 0;
  uint64_t tag = 0;
  for (auto _ : state) {
    state.PauseTiming();
    flush_caches();
    state.ResumeTiming();
    auto& b = batches[n++ % batches.size()];
    ++tag;
    if constexpr (two_pass) {
      mine.clear();
      for (auto key : b) {
        auto h = key_hash(key);
        if (shard_of(h, shards) != 0)
          continue;
        table.prefetch(h);
        mine.push_back({key, h, nullptr});
      }
      for (auto& p : mine) {
        p.target = table.find(p.key, p.hash);
        __builtin_prefetch(&p.target->batch);
      }
      for (auto& p : mine) {
        p.target->batch = tag;
        p.target->state[0]++;
      }
    } else {
      for (auto key : b) {
        auto h = key_hash(key);
        if (shard_of(h, shards) != 0)
          continue;
        auto& s = *table.find(key, h);
        s.batch = tag;
        s.state[0]++;
      }
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
}

BENCHMARK(bm_unordered_map_two_hashes);
BENCHMARK_TEMPLATE(bm_entity_table_one_hash, false);
BENCHMARK_TEMPLATE(bm_entity_table_one_hash, true);

} // namespace

BENCHMARK_MAIN();
