// sluice_route_bench: route evaluation plus PII scan (plus the mask rewrite when an event holds
// PII) for ~200-byte events and 10 routes, per event on one core (Google Benchmark).
//
//   build/bench/sluice_route_bench [--benchmark_filter=...]
//
// What one iteration does is what a sink runner does per event it receives: evaluate the routes
// in order to find the one deciding this sink's copy, copy the event (the runner's buffer), and
// apply the route's actions: the PII pre-filter (byte-class masks over the raw event bytes) and,
// when it hits, the exact scan (Hyperscan, on the strings that pass the pre-filter themselves) and
// the msgpack rewrite that masks the values. The argument is the share of
// events (in percent) that carry one PII value. Goal: <= 300 ns per event.

#include "actors/pii.hpp"
#include "actors/route_actions.hpp"
#include "actors/route_table.hpp"
#include "messages/codec.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace sluice;

constexpr size_t event_count = 4096;

const char* routes_ini = R"(
[routes.a-errors]
when = "type == \"error\" and attrs.code matches \"^E[0-9]+$\""
sinks = ["errors"]
[routes.b-billing]
when = "type == \"billing\""
sinks = ["billing"]
hash = ["profile_id"]
[routes.c-av1]
when = "attrs.player.codec == \"av1\" and ts > 1700000000000"
sinks = ["codecs"]
[routes.d-debug]
when = "exists attrs.debug"
sinks = ["debug"]
[routes.e-tv]
when = "device_id matches \"^tv-\" and type in [\"play\", \"stop\"]"
sinks = ["tv"]
[routes.f-late]
when = "attrs.position_ms > 3600000"
sinks = ["late"]
[routes.g-country]
when = "attrs.country in [\"DE\", \"FR\", \"NL\"]"
sinks = ["eu"]
[routes.h-not-heartbeat]
when = "not type == \"heartbeat\" and attrs.player.live == true"
sinks = ["live"]
[routes.i-version]
when = "attrs.player.version matches \"^3\\.\""
sinks = ["v2"]
[routes.j-clicks]
when = "type == \"click\" or type == \"search\""
sinks = ["clicks"]
[routes._unmatched]
sinks = ["events"]
)";

const std::vector<std::string> sink_names = {"errors", "billing", "codecs", "debug", "tv",
                                             "late",   "eu",      "live",   "v2",    "clicks",
                                             "events"};

std::string fmt_event(const char* type, unsigned device, const char* codec, const char* country,
                      const char* note, size_t i) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                R"({"id":"5f0c6a1e-3b7d-4c1a-9e2f-%012zu","type":"%s","device_id":"tv-%u",)"
                R"("profile_id":"p-%u","ts":%lld,"title_id":"t-%zu","position_ms":%zu,)"
                R"("country":"%s","player":{"codec":"%s","version":"2.4.1","live":false},)"
                R"("note":"%s"})",
                i, type, device, device % 3000, 1732233600000LL + static_cast<long long>(i),
                i % 500, (i * 7919) % 4000000, country, codec, note);
  return buf;
}

/// ~200-byte events (envelope and attributes as the lake counts them); `pii_percent` of them
/// carry one PII value in a free-text attribute.
std::vector<event> make_events(int pii_percent) {
  std::mt19937 rng{42};
  const char* types[] = {"play", "heartbeat", "pause", "stop", "click", "error"};
  const char* codecs[] = {"h264", "hevc", "av1", "vp9"};
  const char* countries[] = {"US", "DE", "BR", "JP", "FR", "IN"};
  const char* pii[] = {"mail bob.smith@example.com", "card 4111 1111 1111 1111",
                       "call +1 415-555-2671", "from 192.168.17.4", "from 2001:db8::8a2e:370:7334"};
  std::vector<event> out;
  size_t bytes = 0;
  for (size_t i = 0; i < event_count; ++i) {
    bool with_pii = static_cast<int>(rng() % 100) < pii_percent;
    auto json = fmt_event(types[rng() % 6], rng() % 10000, codecs[rng() % 4], countries[rng() % 6],
                          with_pii ? pii[rng() % 5] : "playback resumed after buffering", i);
    auto b = decode_json(json, 1732233600123);
    if (!b.ok() || b.events.size() != 1)
      throw std::runtime_error("bad benchmark event: " + b.error);
    auto& e = b.events.front();
    e.offset = i + 1;
    bytes += e.id.size() + e.type.size() + e.device_id.size() + e.profile_id.size() + 16
             + e.attrs.size();
    out.push_back(std::move(e));
  }
  static bool printed = false;
  if (!printed) {
    std::printf("mean event size: %zu bytes (envelope strings + 16 bytes of timestamps + attrs)\n",
                bytes / out.size());
    printed = true;
  }
  return out;
}

struct fixture {
  route_table table;
  std::vector<event> events;
  std::unique_ptr<route_transformer> transformer;
  size_t sink = 10; // "events", reached through _unmatched for most events, like a catch-all sink

  explicit fixture(int pii_percent) {
    if (auto err = compile_routes_text(routes_ini, sink_names, table); !err.empty())
      throw std::runtime_error(err);
    pii_options opts;
    opts.secret = "benchmark-secret-0123456789";
    std::string err;
    auto detector = pii_detector::make(opts, err);
    if (!detector)
      throw std::runtime_error(err);
    transformer = std::make_unique<route_transformer>(detector, nullptr, "events");
    events = make_events(pii_percent);
  }

  /// The sink runner's decision: the first matching route naming the sink, else `_unmatched`.
  const route_actions* decide(const event& e, std::string_view& name) const {
    const route_actions* here = nullptr;
    bool any = table.match(e, [&](size_t r) {
      auto& rt = table.routes[r];
      if (here == nullptr
          && std::find(rt.sinks.begin(), rt.sinks.end(), sink) != rt.sinks.end()) {
        here = &rt.actions;
        name = rt.name;
      }
    });
    if (!any) {
      name = unmatched_route;
      return &table.unmatched_actions;
    }
    return here;
  }
};

void route_evaluation_only(benchmark::State& state) {
  fixture f{0};
  size_t i = 0;
  for (auto _ : state) {
    std::string_view name;
    benchmark::DoNotOptimize(f.decide(f.events[i], name));
    i = (i + 1) % f.events.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(route_evaluation_only);

void routes_and_pii(benchmark::State& state) {
  fixture f{static_cast<int>(state.range(0))};
  event copy;
  size_t i = 0;
  for (auto _ : state) {
    auto& e = f.events[i];
    std::string_view name;
    if (auto actions = f.decide(e, name)) {
      copy = e; // the runner's copy (reuses this event's buffers)
      f.transformer->apply(name, *actions, copy);
      benchmark::DoNotOptimize(copy.attrs.data());
    }
    i = (i + 1) % f.events.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(routes_and_pii)->Arg(0)->Arg(10)->Arg(100);

void pii_prefilter_only(benchmark::State& state) {
  fixture f{0};
  pii_options opts;
  std::string err;
  pii_scanner scanner{pii_detector::make(opts, err)};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(scanner.maybe(f.events[i]));
    i = (i + 1) % f.events.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(pii_prefilter_only);

} // namespace

BENCHMARK_MAIN();
