// sluice_msgpack_decode_bench: `decode_msgpack` of WebSocket/HTTP msgpack batches of 100
// reference-job events (the frames of `sluice_loadgen --mode=ws-msgpack --payload=reference
// --events-per-batch=100`) on one core (Google Benchmark).
//
//   build/bench/sluice_msgpack_decode_bench [--benchmark_filter=...]
//
// One iteration decodes one body and destroys the decoded batch, as the gateway does per frame
// (there the events are destroyed later, on another thread). The bodies cycle through 100
// different batches (10,000 reference events: `id`, `type`, `device_id`, `profile_id`,
// `title_id`, `ts`, `position_ms` and in 1% `card`), each the map `{"batch": N, "events": [...]}`
// as the load generator packs it. `ns_per_event` is the figure to compare builds by.
//
// `BM_decode_msgpack/reference` decodes those bodies; `BM_decode_msgpack/nested_attrs` the same
// events with three more attributes (a float64, a float32 and a map of three fields holding an
// array), to weigh the attribute walk.

#include "messages/codec.hpp"

#include <benchmark/benchmark.h>
#include <msgpack.hpp>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace sluice;

constexpr size_t events_per_body = 100;
constexpr size_t body_count = 100;

struct string_stream {
  std::string* out;
  void write(const char* data, size_t size) {
    out->append(data, size);
  }
};

using packer = msgpack::packer<string_stream>;

void pack_str(packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

// The reference job's event `k` (bench/reference_event.hpp's values), packed like sluice_loadgen.
void pack_reference_event(packer& pk, uint64_t k, bool nested) {
  static const char* const types[] = {"play",      "pause",     "seek",      "stop",
                                      "heartbeat", "heartbeat", "heartbeat", "heartbeat",
                                      "bitrate_change", "heartbeat"};
  const char* type = k % 20 == 0 ? "error" : types[k % 10];
  const bool card = k % 100 == 7;
  char buf[128];
  pk.pack_map(7 + (card ? 1 : 0) + (nested ? 3 : 0));
  pack_str(pk, "id");
  std::snprintf(buf, sizeof buf,
                "%08" PRIx64 "-%04x-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64, k, 0u, k % 4096,
                (k * 7) % 4096, k * uint64_t{2654435761} % uint64_t{281474976710656});
  pack_str(pk, buf);
  pack_str(pk, "type");
  pack_str(pk, type);
  pack_str(pk, "device_id");
  std::snprintf(buf, sizeof buf, "dev-%016" PRIx64, (k * 40503) % uint64_t{18446744073709});
  pack_str(pk, buf);
  pack_str(pk, "profile_id");
  std::snprintf(buf, sizeof buf, "prof-%010" PRIu64, k % 9999991);
  pack_str(pk, buf);
  pack_str(pk, "title_id");
  std::snprintf(buf, sizeof buf, "title-%08" PRIu64, k % 99991);
  pack_str(pk, buf);
  pack_str(pk, "ts");
  pk.pack(static_cast<int64_t>(uint64_t{1732233600000} + k));
  pack_str(pk, "position_ms");
  pk.pack(static_cast<int64_t>((k * 1337) % 7200000));
  if (card) {
    pack_str(pk, "card");
    pack_str(pk, "4111 1111 1111 1111");
  }
  if (nested) {
    pack_str(pk, "bitrate_mbps");
    pk.pack_double(5.8);
    pack_str(pk, "volume");
    pk.pack_float(0.75f);
    pack_str(pk, "player");
    pk.pack_map(3);
    pack_str(pk, "codec");
    pack_str(pk, "h264");
    pack_str(pk, "cdn");
    pack_str(pk, "edge-3");
    pack_str(pk, "buffers");
    pk.pack_array(3);
    pk.pack(120);
    pk.pack(4500);
    pk.pack(-1);
  }
}

std::vector<std::string> make_bodies(bool nested) {
  std::vector<std::string> bodies;
  uint64_t k = 0;
  for (size_t b = 0; b < body_count; ++b) {
    std::string body;
    string_stream stream{&body};
    packer pk{stream};
    pk.pack_map(2);
    pack_str(pk, "batch");
    pk.pack_fix_uint64(b + 1);
    pack_str(pk, "events");
    pk.pack_array(static_cast<uint32_t>(events_per_body));
    for (size_t i = 0; i < events_per_body; ++i)
      pack_reference_event(pk, k++, nested);
    body.shrink_to_fit();
    bodies.push_back(std::move(body));
  }
  return bodies;
}

void run(benchmark::State& state, bool nested) {
  auto bodies = make_bodies(nested);
  size_t i = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    const auto& body = bodies[i];
    i = i + 1 == bodies.size() ? 0 : i + 1;
    auto batch = decode_msgpack(body, 1732233600000);
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

void BM_decode_msgpack_reference(benchmark::State& state) {
  run(state, false);
}

void BM_decode_msgpack_nested_attrs(benchmark::State& state) {
  run(state, true);
}

BENCHMARK(BM_decode_msgpack_reference)->Name("BM_decode_msgpack/reference");
BENCHMARK(BM_decode_msgpack_nested_attrs)->Name("BM_decode_msgpack/nested_attrs");

} // namespace

BENCHMARK_MAIN();
