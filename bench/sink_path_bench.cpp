// sluice_sink_path_bench: the sink side of the reference job per event (issue 9), in the two
// pieces a node's sink runners spend their CPU on (Google Benchmark):
//
// - `reference_routing`: what both sink runners of conf/reference.conf do with every event of a
//   committed batch: evaluate the routes (`type == "error"` -> errors, the rest -> events) for
//   each of the two sinks, and for the sink that takes the event apply the deciding route's
//   actions (`mask = ["card"]`, `pii = "off"`: a search of the attributes for the masked key;
//   1% of the events hold a card and are copied and rewritten).
// - `file_sink_render`: `file_sink::write_refs` of 5,000 events to /dev/null (rendering NDJSON
//   and the write calls); `cold:1` evicts the caches (a 48 MB write) before each batch, as in a
//   node, where the events were decoded on another thread and a batch is ~1.5 MB.
//
//   build/bench/sluice_sink_path_bench [--benchmark_filter=...] [--benchmark_repetitions=N]

#include "actors/route_actions.hpp"
#include "actors/route_table.hpp"
#include "actors/sinks/file/file_sink.hpp"
#include "bench/file_sink_setup.hpp"
#include "bench/reference_batch.hpp"
#include "messages/codec.hpp"

#include <benchmark/benchmark.h>

#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace sluice;
using bench::reference_events;
using bench::reference_routes;

constexpr size_t batch_events = 5000;



void reference_routing(benchmark::State& state) {
  auto events = reference_events(0, batch_events);
  route_table table;
  if (auto err = compile_routes_text(reference_routes, {"events", "errors"}, table); !err.empty())
    throw std::runtime_error(err);
  route_transformer transform{nullptr, nullptr, "events"};
  std::deque<event> copies(2);
  size_t taken = 0;
  for (auto _ : state) {
    for (size_t sink = 0; sink < 2; ++sink) {
      for (auto& e : events) {
        // routed_here (actors/sink_runner.cpp): the first matching route naming the sink.
        const route_actions* actions = nullptr;
        std::string_view name;
        bool any = table.match(e, [&](size_t r) {
          auto& rt = table.routes[r];
          if (actions == nullptr && std::find(rt.sinks.begin(), rt.sinks.end(), sink) != rt.sinks.end()) {
            actions = &rt.actions;
            name = rt.name;
          }
        });
        if (!any && std::find(table.unmatched_sinks.begin(), table.unmatched_sinks.end(), sink)
                      != table.unmatched_sinks.end()) {
          actions = &table.unmatched_actions;
          name = unmatched_route;
        }
        if (actions == nullptr)
          continue;
        auto& out = transform.apply(name, *actions, e, copies[0]);
        benchmark::DoNotOptimize(&out);
        ++taken;
      }
    }
  }
  if (taken != state.iterations() * events.size())
    state.SkipWithError("every event must go to exactly one sink");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
}
BENCHMARK(reference_routing);

void file_sink_render(benchmark::State& state) {
  auto events = reference_events(0, batch_events);
  auto refs = bench::refs_of(events);
  auto sink = bench::dev_null_file_sink();
  const bool cold = state.range(0) != 0;
  std::vector<char> evict(cold ? 48 << 20 : 0);
  char fill = 0;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      for (size_t k = 0; k < evict.size(); k += 64)
        evict[k] = ++fill;
      benchmark::ClobberMemory();
      state.ResumeTiming();
    }
    write_report report;
    if (sink->write_refs(refs, report) != sink_status::ok)
      state.SkipWithError(report.error.c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * refs.size()));
}
BENCHMARK(file_sink_render)->ArgName("cold")->Arg(0)->Arg(1);

} // namespace

BENCHMARK_MAIN();
