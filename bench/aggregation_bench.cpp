// Aggregation throughput (events/s through trending + popular genres + co-watch, the
// `aggregate_model` the aggregator actor runs) and the LMDB bytes per profile of its state.
// Watch time is measured by bench/profile_bench.cpp (profile_model).
//
//   build/bench/sluice_aggregation_bench [--benchmark_filter=...]

#include "bench/playback_attrs.hpp"
#include "actors/aggregate_model.hpp"
#include "actors/catalog.hpp"
#include "persistence/lmdb.hpp"

#include <benchmark/benchmark.h>
#include <lmdb.h>
#include <msgpack.hpp>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice;

namespace {

constexpr size_t catalog_titles = 500;
constexpr int64_t t0 = 1'732'233'600'000; // 2024-11-22T00:00:00Z
constexpr int64_t heartbeat_ms = 60'000;

std::shared_ptr<const catalog> bench_catalog() {
  static const char* genres[] = {"Drama", "Comedy", "Crime", "Sci-Fi", "Documentary",
                                 "Family", "Horror", "Romance", "Action", "Thriller"};
  std::string csv = "id,name,genres,duration\n";
  for (size_t i = 0; i < catalog_titles; ++i)
    csv += "t-" + std::to_string(i) + ",Title " + std::to_string(i) + "," + genres[i % 10] + "|"
           + genres[(i / 10) % 10] + "," + std::to_string(1200 + (i % 60) * 100) + "\n";
  std::string err;
  auto cat = catalog::parse(csv, err);
  if (!cat)
    throw std::runtime_error("bench catalog: " + err);
  return cat;
}

std::string attrs(const std::string& title, int64_t position) {
  return sluice::bench::playback_attrs(title, position);
}

/// `n` heartbeat-like events of `profiles` profiles over `hours` of event time: each profile
/// watches titles (popularity skewed) in sessions of 30 heartbeats, ending near or past the
/// completion ratio; event times arrive with up to 30 s of disorder and 1% a few hours late.
std::vector<event> make_events(const catalog& cat, size_t n, size_t profiles, int hours) {
  std::mt19937_64 rng{42};
  std::vector<event> out;
  out.reserve(n);
  struct viewer {
    std::string title;
    int64_t position = 0;
    int left = 0;
  };
  std::vector<viewer> viewers(profiles);
  auto span = int64_t{hours} * 3'600'000;
  for (size_t i = 0; i < n; ++i) {
    auto p = rng() % profiles;
    auto& v = viewers[p];
    if (v.left == 0) {
      auto r = static_cast<double>(rng() % 10000) / 10000.0;
      auto t = static_cast<size_t>(r * r * catalog_titles); // skewed to the head
      v.title = cat.titles()[t].id;
      auto duration = cat.titles()[t].duration_ms;
      v.left = 30;
      v.position = duration - 29 * heartbeat_ms - static_cast<int64_t>(rng() % 120'000);
    }
    --v.left;
    v.position += heartbeat_ms;
    event e;
    e.id = "e" + std::to_string(i);
    e.type = v.left == 29 ? "play" : "heartbeat";
    e.device_id = "d" + std::to_string(p);
    e.profile_id = "p" + std::to_string(p);
    e.ts = t0 + span * static_cast<int64_t>(i) / static_cast<int64_t>(n)
           - static_cast<int64_t>(rng() % 30'000);
    if (rng() % 100 == 0)
      e.ts -= 3 * 3'600'000; // late
    e.offset = i + 1;
    e.attrs = attrs(v.title, v.position);
    out.push_back(std::move(e));
  }
  return out;
}

void BM_aggregate_apply(benchmark::State& state) {
  auto cat = bench_catalog();
  auto profiles = static_cast<size_t>(state.range(0));
  auto events = make_events(*cat, 200'000, profiles, 4);
  size_t late = 0;
  for (auto _ : state) {
    aggregate_model model;
    late = 0;
    for (auto& e : events)
      late += model.apply(e, *cat) == apply_outcome::late;
    benchmark::DoNotOptimize(model.trending_entries());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
  state.counters["late_events"] = static_cast<double>(late);
}
BENCHMARK(BM_aggregate_apply)->Arg(2'000)->Arg(100'000)->Unit(benchmark::kMillisecond);

// Applying plus the checkpoint work: collecting the changed entries every 10,000 events (what
// a 200 ms checkpoint interval sees at ~50k events/s).
void BM_aggregate_apply_and_checkpoint(benchmark::State& state) {
  auto cat = bench_catalog();
  auto events = make_events(*cat, 200'000, static_cast<size_t>(state.range(0)), 4);
  constexpr size_t checkpoint_every = 10'000;
  size_t entries = 0;
  for (auto _ : state) {
    aggregate_model model;
    entries = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      model.apply(events[i], *cat);
      if ((i + 1) % checkpoint_every == 0) {
        aggregate_dirty taken;
        entries += model.collect(taken).size();
      }
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
  state.counters["entries_per_event"] = static_cast<double>(entries) / double(events.size());
}
BENCHMARK(BM_aggregate_apply_and_checkpoint)->Arg(2'000)->Arg(100'000)->Unit(benchmark::kMillisecond);

// The `aggregates` database after the events: LMDB pages (branch + leaf + overflow) × page
// size, per profile; and the raw key + value bytes per profile.
void BM_lmdb_bytes_per_profile(benchmark::State& state) {
  auto cat = bench_catalog();
  auto profiles = static_cast<size_t>(state.range(0));
  auto events = make_events(*cat, profiles * 50, profiles, 1);
  char tmpl[] = "/tmp/sluice-aggregation-bench-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  double per_profile = 0;
  double raw_per_profile = 0;
  for (auto _ : state) {
    aggregate_model model;
    for (auto& e : events)
      model.apply(e, *cat);
    aggregate_dirty taken;
    auto entries = model.collect(taken);
    persistence::env_options opts;
    opts.path = (dir / "lmdb").string();
    opts.mode = persistence::durability::none;
    std::filesystem::remove_all(opts.path);
    persistence::environment env{opts};
    uint64_t raw = 0;
    {
      persistence::write_txn txn{env};
      for (auto& [k, v] : entries) {
        txn.put(persistence::db::aggregates, k, v);
        raw += k.size() + v.size();
      }
      txn.commit();
    }
    persistence::read_txn txn{env};
    MDB_stat st{};
    mdb_stat(txn.handle(), env.dbi(persistence::db::aggregates), &st);
    auto bytes = (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
    per_profile = double(bytes) / double(profiles);
    raw_per_profile = double(raw) / double(profiles);
  }
  std::filesystem::remove_all(dir);
  state.counters["lmdb_bytes_per_profile"] = per_profile;
  state.counters["raw_bytes_per_profile"] = raw_per_profile;
}
BENCHMARK(BM_lmdb_bytes_per_profile)->Arg(10'000)->Iterations(1)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
