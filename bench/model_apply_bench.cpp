// The per-event model work of the scheduler workers on reference-job events (issue 9): reading a
// playback event's attributes in one pass (`read_attrs` into uninitialized slots, as the profile
// and aggregate models do, against `find_attrs` into `std::optional`s, as they did), one
// `profile_model::apply_one` and one `aggregate_model::apply` (the conf/titles.csv-sized catalog,
// which the reference titles are not in, as in the reference job). Events cycle through the
// reference pool (10,000 events; one model per profile key), so the models see what a node under
// the reference load sees. Whole shard batches are in bench/shard_lookup_bench.cpp.
//
//   build-x/bench/sluice_model_apply_bench [--benchmark_filter=...]

#include "actors/aggregate_model.hpp"
#include "actors/catalog.hpp"
#include "actors/profile_model.hpp"
#include "messages/attr_paths.hpp"
#include "reference_struct.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice;

namespace {

constexpr uint64_t reference_pool = 10'000;

/// Reference-job event `k` of wrk thread 0 as the gateway decodes it.
event reference_event(uint64_t k) {
  return bench::reference_event(k, 0);
}

std::vector<event> reference_events() {
  std::vector<event> out;
  for (uint64_t k = 0; k < reference_pool; ++k)
    out.push_back(reference_event(k));
  return out;
}

const std::vector<std::string> paths{"title_id", "position_ms", "duration_ms"};

void bm_find_attrs_optional(benchmark::State& state) {
  auto events = reference_events();
  size_t n = 0;
  for (auto _ : state) {
    std::optional<attr_value> out[3];
    find_attrs(events[n++ % events.size()].attrs, paths, out);
    benchmark::DoNotOptimize(out);
  }
}

void bm_read_attrs_slots(benchmark::State& state) {
  auto events = reference_events();
  size_t n = 0;
  for (auto _ : state) {
    attr_slot_buffer<3> storage;
    auto* slots = storage.get();
    read_attrs(events[n++ % events.size()].attrs, paths, slots);
    benchmark::DoNotOptimize(slots);
    benchmark::ClobberMemory();
  }
}

void bm_profile_apply_one(benchmark::State& state) {
  auto events = reference_events();
  std::vector<profile_model> models(events.size());
  log_offset offset = 0;
  size_t n = 0;
  for (auto _ : state) {
    auto i = n++ % events.size();
    auto& e = events[i];
    e.offset = ++offset; // new: applied, not skipped as applied already
    benchmark::DoNotOptimize(models[i].apply_one(e));
    models[i].end_batch();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void bm_aggregate_apply(benchmark::State& state) {
  auto events = reference_events();
  std::string csv = "id,name,genres,duration\n";
  for (int i = 1; i <= 50; ++i)
    csv += fmt::format("t-{},Title {},Drama|Mystery,1h52m\n", i, i);
  std::string err;
  auto cat = catalog::parse(csv, err);
  if (!cat)
    throw std::runtime_error("bench catalog: " + err);
  aggregate_model model;
  size_t n = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(model.apply(events[n++ % events.size()], *cat));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

BENCHMARK(bm_find_attrs_optional);
BENCHMARK(bm_read_attrs_slots);
BENCHMARK(bm_profile_apply_one);
BENCHMARK(bm_aggregate_apply);

} // namespace

BENCHMARK_MAIN();
