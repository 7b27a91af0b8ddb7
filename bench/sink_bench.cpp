// Per-event cost of the file sink's path (issue 9): rendering reference-job events as NDJSON
// (`append_json`), a whole `file_sink::write_refs` of 1,000 events to /dev/null (rendering and the
// write calls, without the kernel's page-cache copy or an fsync), the same with 5,000-event
// batches appended to a real file with `fdatasync` per batch, buffered against `direct-io`
// (counters: the sink thread's CPU per event from getrusage(RUSAGE_THREAD), which includes the
// kernel's copy into the page cache and the writeback work `fdatasync` does; not the device's
// time), and the ingest log's encoding of a 100-event record (`encode_log_record`) and its
// decoding (`decode_log_record`).
//
//   sluice_sink_bench --benchmark_filter=file_sink_append [--benchmark_min_time=3]
// writes its files under $SLUICE_BENCH_DIR (default /tmp; not a tmpfs, or there is no disk).

#include "actors/sinks/file/file_sink.hpp"
#include "bench/file_sink_setup.hpp"
#include "bench/reference_batch.hpp"
#include "messages/codec.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

namespace {

using namespace sluice;
using bench::reference_events;


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
  auto refs = bench::refs_of(events);
  auto sink = bench::dev_null_file_sink();
  for (auto _ : state) {
    write_report report;
    if (sink->write_refs(refs, report) != sink_status::ok)
      state.SkipWithError(report.error.c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * refs.size()));
}
BENCHMARK(file_sink_write_dev_null);

/// CPU time (user + system) of the calling thread, in ns.
int64_t thread_cpu_ns() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<int64_t>(tv.tv_sec) * 1000000000 + static_cast<int64_t>(tv.tv_usec) * 1000;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

/// Appends 5,000-event batches (~1.6 MB of NDJSON) to a file with fdatasync per batch, as the
/// sink runner does; range(0): direct-io. Every 64 batches (untimed) the file is removed and a new
/// sink starts on a new one, so the benchmark holds at most ~100 MB of disk.
void file_sink_append(benchmark::State& state) {
  auto events = reference_events(0, 5000);
  auto refs = bench::refs_of(events);
  const char* base = std::getenv("SLUICE_BENCH_DIR");
  std::string tmpl = std::string{base ? base : "/tmp"} + "/sluice-sink-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    throw std::runtime_error("mkdtemp " + tmpl);
  file_sink_config cfg;
  cfg.path = tmpl + "/events.ndjson";
  cfg.fsync = true;
  cfg.direct_io = state.range(0) != 0;
  std::unique_ptr<file_sink> sink;
  std::string error;
  auto restart = [&] {
    sink.reset();
    std::error_code ec;
    std::filesystem::remove(cfg.path, ec);
    sink = std::make_unique<file_sink>(cfg, "node-1");
    return sink->start(error) == sink_status::ok;
  };
  if (!restart())
    state.SkipWithError(error.c_str());
  else if (sink->direct_io() != cfg.direct_io)
    state.SkipWithError("O_DIRECT refused here: set SLUICE_BENCH_DIR to a disk");
  int64_t cpu_ns = 0;
  int64_t batches = 0;
  for (auto _ : state) {
    if (++batches % 64 == 0) {
      state.PauseTiming();
      bool ok = restart();
      state.ResumeTiming();
      if (!ok) {
        state.SkipWithError(error.c_str());
        break;
      }
    }
    auto cpu0 = thread_cpu_ns();
    write_report report;
    if (sink->write_refs(refs, report) != sink_status::ok) {
      state.SkipWithError(report.error.c_str());
      break;
    }
    cpu_ns += thread_cpu_ns() - cpu0;
  }
  sink.reset();
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  auto n = static_cast<double>(state.iterations() * refs.size());
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["cpu_ns_per_event"] = static_cast<double>(cpu_ns) / n;
}
BENCHMARK(file_sink_append)
  ->ArgName("direct")
  ->Arg(0)
  ->Arg(1)
  ->UseRealTime()
  ->Unit(benchmark::kMillisecond);

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
