// A shard's per-event key work, as in actors/shard.cpp: skip the keys of other shards, then find
// the entity of each own key, over batches of 100 reference-job device ids (10,000 distinct keys,
// 2 shards: ~5,000 entities in this one). Compares the node-based table the shard used
// (`std::unordered_map<std::string_view, std::unique_ptr<slot>>`, each key hashed twice: once for
// the shard filter and once by the map) with `entity_table` (one hash per key) looked up event by
// event and in two passes with prefetching. Between batches the caches are flushed by walking
// 8 MB (not timed), as the gateway, codec and sinks do between the batches a shard receives.
//
// The whole-batch cases (`bm_shard_batch`) run one shard's `dispatch` handler logic
// (`apply_batch`, actors/shard.cpp) over batches of 1,700 reference-job events (17 requests of
// 100, as one group commit carries at ~500k events/s) with real device or profile entities
// (shard 0 of 2, every key's entity already in memory): with the placement hashes the ingest log
// computes (`with_hashes`) or without them (the shard hashes every event's key itself, as every
// shard did before the log computed them once); `cold`: the caches flushed before each batch (as
// above), else the batch and the entities stay cached from the previous rounds (the best case).
// `bm_log_hashes` is the ingest log's share: both kinds' hashes of a batch, once for all shards.
//
//   build-x/bench/sluice_shard_lookup_bench [--benchmark_filter=...]

#include "actors/device_entity.hpp"
#include "actors/entity_table.hpp"
#include "actors/metrics.hpp"
#include "actors/placement.hpp"
#include "actors/profile_entity.hpp"
#include "actors/shard.hpp"
#include "persistence/lmdb.hpp"
#include "reference_struct.hpp"

#include <caf/actor_clock.hpp>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

using namespace sluice;
using bench::reference_event;

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

constexpr size_t group_commit_events = 1700;
constexpr uint64_t reference_pool = 10'000;


/// One shard (0 of 2) of `kind` over a scratch LMDB environment, holding the entity of every
/// key of the reference pool that hashes to it.
struct bench_shard {
  std::filesystem::path dir;
  std::unique_ptr<persistence::environment> env;
  metrics_registry metrics;
  shard_state st;
  log_offset next_offset = 1;

  explicit bench_shard(placement_key key) {
    char tmpl[] = "/tmp/sluice-shard-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    persistence::env_options opts;
    opts.path = dir.string();
    opts.mode = persistence::durability::none;
    env = std::make_unique<persistence::environment>(opts);
    st.deps.kind.key = key;
    st.deps.kind.space = key == placement_key::device ? state_space::devices
                                                      : state_space::profiles;
    st.deps.kind.make = [key](std::string_view k,
                              std::string_view stored) -> std::unique_ptr<entity> {
      if (key == placement_key::device)
        return std::make_unique<device_entity>(k, stored);
      return std::make_unique<profile_entity>(k, stored, profile_options{});
    };
    st.deps.index = 0;
    st.deps.count = shards;
    st.deps.env = env.get();
    st.active = &metrics.get_gauge("active", "");
    st.spawned = &metrics.get_counter("spawned", "");
    st.restored = &metrics.get_counter("restored", "");
    // Every key of the pool once: the entities are made before anything is timed.
    committed_batch warm;
    for (uint64_t k = 0; k < reference_pool; ++k)
      warm.events.push_back(reference_event(k, 0));
    number(warm);
    apply_batch(st, warm, caf::actor_clock::clock_type::now(), nullptr);
  }

  ~bench_shard() {
    env.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  void number(committed_batch& b) {
    for (auto& e : b.events)
      e.offset = next_offset++;
    b.upto = next_offset - 1;
  }
};

/// Batches of `group_commit_events` cycling through the pool, from both wrk threads.
std::vector<committed_batch> reference_batches(size_t n) {
  std::vector<committed_batch> out(n);
  uint64_t k = 0;
  for (auto& b : out)
    for (size_t i = 0; i < group_commit_events; ++i, ++k)
      b.events.push_back(reference_event(k % reference_pool, (k / 100) % 2));
  return out;
}

template <placement_key key, bool with_hashes, bool cold>
void bm_shard_batch(benchmark::State& state) {
  bench_shard shard{key};
  auto batches = reference_batches(12);
  if (with_hashes)
    for (auto& b : batches) {
      add_key_hashes(b, placement_key::device);
      add_key_hashes(b, placement_key::profile);
    }
  size_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto& b = batches[n++ % batches.size()];
    shard.number(b); // new offsets: applied, not skipped as already applied
    if (cold)
      flush_caches();
    state.ResumeTiming();
    apply_batch(shard.st, b, caf::actor_clock::clock_type::now(), nullptr);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * group_commit_events));
}

/// The ingest log's share: both kinds' hashes of a batch (once, for every shard).
void bm_log_hashes(benchmark::State& state) {
  auto batches = reference_batches(12);
  size_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto& b = batches[n++ % batches.size()];
    flush_caches();
    state.ResumeTiming();
    add_key_hashes(b, placement_key::device);
    add_key_hashes(b, placement_key::profile);
    benchmark::DoNotOptimize(b.profile_hashes.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * group_commit_events));
}

BENCHMARK(bm_unordered_map_two_hashes);
BENCHMARK_TEMPLATE(bm_entity_table_one_hash, false);
BENCHMARK_TEMPLATE(bm_entity_table_one_hash, true);
BENCHMARK_TEMPLATE(bm_shard_batch, placement_key::device, false, true);
BENCHMARK_TEMPLATE(bm_shard_batch, placement_key::device, true, true);
BENCHMARK_TEMPLATE(bm_shard_batch, placement_key::profile, false, true);
BENCHMARK_TEMPLATE(bm_shard_batch, placement_key::profile, true, true);
BENCHMARK_TEMPLATE(bm_shard_batch, placement_key::device, false, false);
BENCHMARK_TEMPLATE(bm_shard_batch, placement_key::device, true, false);
BENCHMARK_TEMPLATE(bm_shard_batch, placement_key::profile, false, false);
BENCHMARK_TEMPLATE(bm_shard_batch, placement_key::profile, true, false);
BENCHMARK(bm_log_hashes);

} // namespace

BENCHMARK_MAIN();
