// The access policy's hot path: per-device rate limits of decoded batches (one bucket lookup per
// distinct device of a batch, in a sharded LRU map bounded to limits.max-devices) and the cached
// check of a bearer token (one HMAC-SHA256 and a hash lookup). Reported per event / per request.
//
//   build/bench/sluice_limits_bench

#include "actors/metrics.hpp"
#include "gateway/access.hpp"
#include "messages/codec.hpp"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::gateway;

namespace {

/// A batch of `events` events spread over `devices` devices, ids offset by `base`.
decoded_batch make_batch(size_t events, size_t devices, size_t base) {
  decoded_batch b;
  b.total = events;
  b.events.resize(events);
  for (size_t i = 0; i < events; ++i) {
    b.events[i].type = "heartbeat";
    b.events[i].device_id = "device-" + std::to_string(base + i % devices);
  }
  return b;
}

/// Device limits on batches of 100 events: range(0) devices per batch, range(1) distinct devices
/// in rotation (up to 1M, beyond the map's bound of 262,144: evictions included).
void device_limits(benchmark::State& state) {
  const auto per_batch = static_cast<size_t>(state.range(0));
  const auto population = static_cast<size_t>(state.range(1));
  constexpr size_t events = 100;
  metrics_registry metrics;
  access_options opts;
  opts.device_limit = {1e9, 1e9}; // never refuses: measures the bookkeeping, not rejections
  access_control policy{opts, metrics, nullptr};
  // Pre-built batches (the decoder's cost is not ours); `limit` never moves events when it
  // grants everything, so a batch can be reused.
  std::vector<decoded_batch> batches;
  const size_t distinct_batches = std::max<size_t>(1, std::min<size_t>(population / per_batch, 4096));
  for (size_t i = 0; i < distinct_batches; ++i)
    batches.push_back(make_batch(events, per_batch, (i * per_batch) % population));
  size_t offset = 0;
  size_t k = 0;
  for (auto _ : state) {
    auto& b = batches[k];
    if (++k == batches.size()) {
      k = 0;
      // rotate through the whole population: later rounds use other device ids
      offset = (offset + distinct_batches * per_batch) % population;
      if (population > distinct_batches * per_batch) {
        state.PauseTiming();
        for (size_t i = 0; i < batches.size(); ++i)
          batches[i] = make_batch(events, per_batch, (offset + i * per_batch) % population);
        state.ResumeTiming();
      }
    }
    benchmark::DoNotOptimize(policy.limit("anonymous", b));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events));
  state.counters["ns_per_event"] = benchmark::Counter(
    static_cast<double>(state.iterations() * events), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["buckets"] = static_cast<double>(policy.devices().size());
}
BENCHMARK(device_limits)
  ->Args({1, 1000})
  ->Args({1, 1000000})
  ->Args({10, 100000})
  ->Args({100, 1000000})
  ->Unit(benchmark::kMicrosecond);

/// A bearer-token request whose verdict is cached (the ingest hot path: one HMAC per request).
void cached_bearer(benchmark::State& state) {
  metrics_registry metrics;
  access_options opts;
  const std::string token = generate_token();
  opts.tokens.push_back({"devices", make_kdf_hash(token, min_kdf_iterations), {"ingest"}, -1, -1});
  access_control policy{opts, metrics, nullptr};
  const std::string auth = "Bearer " + token;
  request_head h;
  h.method = "POST";
  h.path = "/v1/events";
  h.authorization = auth;
  for (auto _ : state)
    benchmark::DoNotOptimize(policy.authorize(h, scope::ingest));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(cached_bearer)->ThreadRange(1, 2);

/// One PBKDF2 verification at the default cost (what an unseen token costs, once).
void kdf_default(benchmark::State& state) {
  std::string err;
  auto stored = parse_kdf_hash(make_kdf_hash("token", default_kdf_iterations), err);
  for (auto _ : state)
    benchmark::DoNotOptimize(kdf_verify("token", *stored));
}
BENCHMARK(kdf_default)->Unit(benchmark::kMillisecond)->Iterations(3);

} // namespace

BENCHMARK_MAIN();
