// Profile state throughput (events/s through profile_model: watch time + continue watching, as
// the profile actors run it, batched per profile like a shard does) and the LMDB bytes per
// profile of its committed state. The aggregates (trending, genres, co-watch) are measured by
// bench/aggregation_bench.cpp.
//
//   build/bench/sluice_profile_bench [--benchmark_filter=...]

#include "bench/playback_attrs.hpp"
#include "actors/profile_model.hpp"
#include "persistence/lmdb.hpp"

#include <benchmark/benchmark.h>
#include <lmdb.h>
#include <msgpack.hpp>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

using namespace sluice;

namespace {

constexpr int64_t t0 = 1'732'233'600'000; // 2024-11-22T00:00:00Z
constexpr int64_t heartbeat_ms = 30'000;
constexpr size_t titles = 500;

std::string attrs(const std::string& title, int64_t position) {
  return sluice::bench::playback_attrs(title, position);
}

/// `n` playback events of `profiles` profiles: sessions of play, heartbeats every 30 s, now and
/// then a pause or a seek, a stop at the end (or none: 1 in 4 sessions just ends); 2% of the
/// events arrive up to 2 minutes late and 1% twice. Event time advances with the stream.
std::vector<event> make_events(size_t n, size_t profiles) {
  std::mt19937_64 rng{7};
  struct viewer {
    std::string title;
    int64_t ts = t0;
    int64_t position = 0;
    int left = 0;
  };
  std::vector<viewer> viewers(profiles);
  std::vector<event> out;
  out.reserve(n + n / 50);
  for (size_t i = 0; out.size() < n; ++i) {
    auto p = rng() % profiles;
    auto& v = viewers[p];
    std::string type = "heartbeat";
    if (v.left == 0) {
      auto r = static_cast<double>(rng() % 10000) / 10000.0;
      v.title = "t-" + std::to_string(static_cast<size_t>(r * r * titles));
      v.left = 20 + static_cast<int>(rng() % 100);
      v.ts += 600'000 + static_cast<int64_t>(rng() % 3'600'000);
      v.position = static_cast<int64_t>(rng() % 600'000);
      type = "play";
    } else {
      v.ts += heartbeat_ms;
      v.position += heartbeat_ms;
      if (v.left == 1)
        type = rng() % 4 == 0 ? "heartbeat" : "stop";
      else if (rng() % 40 == 0)
        type = "pause";
      else if (rng() % 40 == 0)
        v.position += static_cast<int64_t>(rng() % 600'000); // a seek
    }
    --v.left;
    event e;
    e.id = "e" + std::to_string(i);
    e.type = type;
    e.device_id = "d" + std::to_string(p);
    e.profile_id = "p" + std::to_string(p);
    e.ts = v.ts;
    e.attrs = attrs(v.title, v.position);
    if (rng() % 50 == 0)
      e.ts -= static_cast<int64_t>(rng() % 120'000); // out of order (a stale clock)
    out.push_back(e);
    if (rng() % 100 == 0)
      out.push_back(e); // a duplicate
  }
  // A little disorder in arrival too: swap neighbours now and then.
  for (size_t i = 1; i < out.size(); ++i)
    if (rng() % 20 == 0)
      std::swap(out[i - 1], out[i]);
  for (size_t i = 0; i < out.size(); ++i)
    out[i].offset = i + 1;
  return out;
}

/// Groups a log batch per profile, as a shard does before it sends one `apply` per profile.
std::unordered_map<std::string, event_batch> group_by_profile(const event* first, const event* last) {
  std::unordered_map<std::string, event_batch> out;
  for (auto* e = first; e != last; ++e)
    out[e->profile_id].push_back(*e);
  return out;
}

void BM_profile_apply(benchmark::State& state) {
  auto profiles = static_cast<size_t>(state.range(0));
  auto events = make_events(200'000, profiles);
  constexpr size_t log_batch = 1000;
  std::vector<std::vector<std::pair<std::string, event_batch>>> batches;
  for (size_t i = 0; i < events.size(); i += log_batch) {
    auto grouped = group_by_profile(events.data() + i,
                               events.data() + std::min(events.size(), i + log_batch));
    batches.emplace_back(grouped.begin(), grouped.end());
  }
  uint64_t late = 0;
  for (auto _ : state) {
    std::unordered_map<std::string, profile_model> models;
    late = 0;
    for (auto& batch : batches)
      for (auto& [id, evs] : batch) {
        auto& m = models[id];
        m.apply(evs);
        // The actor answers every apply with its encoded state (the shard checkpoints it).
        benchmark::DoNotOptimize(m.encode());
      }
    for (auto& [id, m] : models)
      late += m.late_events();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
  state.counters["late_events"] = static_cast<double>(late);
}
BENCHMARK(BM_profile_apply)->Arg(1'000)->Arg(20'000)->Unit(benchmark::kMillisecond);

// The `profiles` database after the events: LMDB pages (branch + leaf + overflow) × page size,
// per profile; and the encoded state bytes per profile.
void BM_profile_lmdb_bytes_per_profile(benchmark::State& state) {
  auto profiles = static_cast<size_t>(state.range(0));
  auto events = make_events(profiles * 200, profiles); // ~200 events (≈ 1.5 h watched) each
  char tmpl[] = "/tmp/sluice-profile-bench-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  double per_profile = 0;
  double encoded_per_profile = 0;
  for (auto _ : state) {
    std::unordered_map<std::string, profile_model> models;
    auto grouped = group_by_profile(events.data(), events.data() + events.size());
    for (auto& [id, evs] : grouped)
      models[id].apply(evs);
    persistence::env_options opts;
    opts.path = (dir / "lmdb").string();
    opts.mode = persistence::durability::none;
    std::filesystem::remove_all(opts.path);
    persistence::environment env{opts};
    uint64_t encoded = 0;
    {
      persistence::write_txn txn{env};
      for (auto& [id, m] : models) {
        auto bytes = m.encode();
        encoded += bytes.size();
        txn.put(persistence::db::profiles, id, bytes);
      }
      txn.commit();
    }
    persistence::read_txn txn{env};
    MDB_stat st{};
    mdb_stat(txn.handle(), env.dbi(persistence::db::profiles), &st);
    auto bytes = (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
    per_profile = double(bytes) / double(models.size());
    encoded_per_profile = double(encoded) / double(models.size());
  }
  std::filesystem::remove_all(dir);
  state.counters["lmdb_bytes_per_profile"] = per_profile;
  state.counters["encoded_bytes_per_profile"] = encoded_per_profile;
}
BENCHMARK(BM_profile_lmdb_bytes_per_profile)->Arg(10'000)->Iterations(1)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
