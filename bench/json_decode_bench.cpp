// sluice_json_decode_bench: `decode_json` of the reference job's request bodies (JSON arrays of
// 100 ~200-byte events, ../shared/bench/reference-job.lua) on one core (Google Benchmark).
//
//   build/bench/sluice_json_decode_bench [--benchmark_filter=...]
//
// One iteration decodes one body and destroys the decoded batch, as the gateway does per request
// (there the events are destroyed later, on another thread). The bodies cycle through 100
// different batches (10,000 reference events) so that the branch predictors and caches see what
// they see under wrk. `ns_per_event` is the figure to compare builds by.
//
// `BM_decode_json/copy` calls `decode_json` (which copies the body to pad it),
// `BM_decode_json/in_place` calls `decode_json_in_place` on bodies with `json_padding` bytes of
// spare capacity (parsed where they are).

#include "messages/codec.hpp"
#include "reference_event.hpp"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace {

using namespace sluice;

constexpr size_t events_per_body = 100;
constexpr size_t body_count = 100;

std::vector<std::string> make_bodies(bool spare_capacity) {
  std::vector<std::string> bodies;
  uint64_t k = 0;
  for (size_t b = 0; b < body_count; ++b) {
    std::string body = "[";
    for (size_t i = 0; i < events_per_body; ++i) {
      if (i > 0)
        body += ',';
      bench::append_reference_event(body, k++);
    }
    body += ']';
    if (spare_capacity) {
      body.reserve(body.size() + json_padding);
    } else {
      body.shrink_to_fit();
    }
    bodies.push_back(std::move(body));
  }
  return bodies;
}

void run(benchmark::State& state, bool spare_capacity) {
  auto bodies = make_bodies(spare_capacity);
  size_t i = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    auto& body = bodies[i];
    i = i + 1 == bodies.size() ? 0 : i + 1;
    auto batch = spare_capacity ? decode_json_in_place(body, 1732233600000)
                                : decode_json(body, 1732233600000);
    if (!batch.ok() || batch.events.size() != events_per_body)
      state.SkipWithError("the reference body did not decode");
    bytes += body.size();
    benchmark::DoNotOptimize(batch.events.data());
  }
  const auto events = static_cast<double>(state.iterations() * events_per_body);
  state.counters["ns_per_event"]
    = benchmark::Counter(events * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["events/s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_decode_json_copy(benchmark::State& state) {
  run(state, false);
}

void BM_decode_json_in_place(benchmark::State& state) {
  run(state, true);
}

BENCHMARK(BM_decode_json_copy)->Name("BM_decode_json/copy");
BENCHMARK(BM_decode_json_in_place)->Name("BM_decode_json/in_place");

} // namespace

BENCHMARK_MAIN();
