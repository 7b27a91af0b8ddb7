// Per-event cost of the file sink's path (issue 9): rendering reference-job events as NDJSON
// (`append_json`), a whole `file_sink::write_refs` of 1,000 events to /dev/null (rendering and the
// write calls, without the kernel's page-cache copy or an fsync), and the ingest log's encoding of
// a 100-event record (`encode_log_record`) and its decoding (`decode_log_record`).

#include "actors/sinks/file/file_sink.hpp"
#include "bench/reference_event.hpp"
#include "messages/codec.hpp"

#include <benchmark/benchmark.h>

#include <stdexcept>
#include <string>

namespace {

using namespace sluice;

/// Reference events `first..first+n-1` as the log hands them to the sinks (offsets set).
event_batch reference_events(uint64_t first, size_t n) {
  std::string body = "[";
  for (size_t k = 0; k < n; ++k) {
    if (k > 0)
      body += ',';
    bench::append_reference_event(body, first + k);
  }
  body += ']';
  auto decoded = decode_json(body, 1732233600123);
  if (!decoded.error.empty() || decoded.events.size() != n)
    throw std::runtime_error("reference events did not decode: " + decoded.error);
  for (size_t k = 0; k < n; ++k)
    decoded.events[k].offset = 1000000 + first + k;
  return std::move(decoded.events);
}

void render_ndjson(benchmark::State& state) {
  auto events = reference_events(0, 1000);
  std::string out;
  size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    for (auto& e : events) {
      append_json(out, e, "node-1");
      out += '\n';
    }
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(render_ndjson);

void file_sink_write_dev_null(benchmark::State& state) {
  auto events = reference_events(0, 1000);
  event_refs refs;
  for (auto& e : events)
    refs.push_back(&e);
  file_sink_config cfg;
  cfg.path = "/dev/null";
  cfg.fsync = false;
  file_sink sink{cfg, "node-1"};
  std::string error;
  if (sink.start(error) != sink_status::ok)
    throw std::runtime_error(error);
  for (auto _ : state) {
    write_report report;
    if (sink.write_refs(refs, report) != sink_status::ok)
      state.SkipWithError(report.error.c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * refs.size()));
}
BENCHMARK(file_sink_write_dev_null);

void encode_log_record_100(benchmark::State& state) {
  auto events = reference_events(0, 100);
  std::string out;
  for (auto _ : state) {
    out.clear();
    encode_log_record(events, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
}
BENCHMARK(encode_log_record_100);

void decode_log_record_100(benchmark::State& state) {
  auto events = reference_events(0, 100);
  std::string record;
  encode_log_record(events, record);
  event_batch out;
  for (auto _ : state) {
    out.clear();
    if (!decode_log_record(record, 1, out))
      state.SkipWithError("corrupt record");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
}
BENCHMARK(decode_log_record_100);

} // namespace

BENCHMARK_MAIN();
