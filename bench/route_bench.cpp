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
#include "actors/sinks/file/file_sink.hpp"
#include "messages/codec.hpp"
#include "file_sink_setup.hpp"
#include "reference_batch.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

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

/// The deciding route of sink `sink` for `e`, as the sink runner decides: the first matching
/// route naming the sink, else `_unmatched` when no route matched and it names the sink, else null.
const route_actions* runner_decision(const route_table& table, size_t sink, const event& e,
                                     std::string_view& name) {
  const route_actions* here = nullptr;
  bool any = table.match(e, [&](size_t r) {
    auto& rt = table.routes[r];
    if (here == nullptr && std::find(rt.sinks.begin(), rt.sinks.end(), sink) != rt.sinks.end()) {
      here = &rt.actions;
      name = rt.name;
    }
  });
  if (any)
    return here;
  auto& um = table.unmatched_sinks;
  if (std::find(um.begin(), um.end(), sink) == um.end())
    return nullptr;
  name = unmatched_route;
  return &table.unmatched_actions;
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

  /// The sink runner's decision for the "events" sink.
  const route_actions* decide(const event& e, std::string_view& name) const {
    return runner_decision(table, sink, e, name);
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

// -- the sink side of the reference job (conf/reference.conf) ------------------------------------
//
// The events of ../shared/bench/reference-job.lua (5% `error`, 1% with a card number), the routes
// of conf/reference.conf (type == "error" -> errors, the rest -> events, card masked, PII off) and
// both sinks, per event of a committed batch (argument: events per batch; 2,048 is about what a
// live commit holds, 65,536 a catch-up chunk):
//
// * sink_take/copy: what a sink runner did per event until this change: route, copy every event
//   it takes into its buffer, apply the route's actions to the copy in place.
// * sink_take/ref: what it does now: route, hold events by pointer, copy only what a route changes
//   (the 1% with a card) and events of a batch the sink takes less than half of (errors).
// * file_write/one_write: the file sink until this change: render the whole batch into one
//   buffer, one write(2) (reproduced here with the same renderer).
// * file_write/chunked: file_sink::write_refs now: render and write 256 KB chunks of whole lines.
//
// The file benchmarks write to a temporary file (fsync off: the CPU, not the disk) and measure
// thread CPU time, which includes the kernel's copy into the page cache.

const char* const reference_routes_ini = sluice::bench::reference_routes;

std::string reference_event_json(uint64_t k) {
  std::string out;
  bench::append_reference_event(out, k);
  return out;
}

event_batch reference_batch(size_t n) {
  std::string body = "[";
  for (size_t k = 0; k < n; ++k) {
    if (k > 0)
      body += ',';
    body += reference_event_json(k);
  }
  body += ']';
  decode_limits limits;
  limits.max_events = n;
  auto b = decode_json(body, 1732233600123, limits);
  if (!b.ok() || b.events.size() != n)
    throw std::runtime_error("bad reference batch: " + b.error);
  for (size_t i = 0; i < n; ++i)
    b.events[i].offset = i + 1;
  return std::move(b.events);
}

size_t approx_bytes(const event& e) {
  return e.id.size() + e.type.size() + e.device_id.size() + e.profile_id.size() + e.attrs.size()
         + 64;
}

struct reference_sinks {
  route_table table;
  route_transformer transform{nullptr, nullptr, "bench"};
  event_batch batch;
  std::vector<std::string> sinks = {"events", "errors"};

  explicit reference_sinks(size_t n) : batch(reference_batch(n)) {
    if (auto err = compile_routes_text(reference_routes_ini, sinks, table); !err.empty())
      throw std::runtime_error(err);
  }

  /// The deciding route of sink `sink` for `e` (null: not for it), as the runner decides.
  const route_actions* decide(size_t sink, const event& e, std::string_view& name) const {
    return runner_decision(table, sink, e, name);
  }
};

void sink_take_copy(benchmark::State& state) {
  reference_sinks f{static_cast<size_t>(state.range(0))};
  event_batch buffers[2];
  size_t bytes = 0;
  for (auto _ : state) {
    for (size_t sink = 0; sink < 2; ++sink) {
      auto& buffer = buffers[sink];
      buffer.clear(); // the runner's inflight batch, written and cleared
      for (auto& e : f.batch) {
        std::string_view name;
        auto actions = f.decide(sink, e, name);
        if (actions == nullptr)
          continue;
        buffer.push_back(e);
        f.transform.apply(name, *actions, buffer.back());
        bytes += approx_bytes(buffer.back());
      }
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.batch.size()));
}
BENCHMARK(sink_take_copy)->Name("sink_take/copy")->Arg(2048)->Arg(65536);

void sink_take_ref(benchmark::State& state) {
  reference_sinks f{static_cast<size_t>(state.range(0))};
  struct taken {
    const event* e;
    std::string_view name;
    const route_actions* actions;
  };
  std::vector<taken> scratch;
  event_refs refs[2];
  std::deque<event> copies[2];
  size_t used[2] = {0, 0};
  size_t bytes = 0;
  for (auto _ : state) {
    for (size_t sink = 0; sink < 2; ++sink) {
      refs[sink].clear();
      used[sink] = 0;
      scratch.clear();
      for (auto& e : f.batch) {
        std::string_view name;
        if (auto actions = f.decide(sink, e, name))
          scratch.push_back({&e, name, actions});
      }
      bool kept = scratch.size() * 2 >= f.batch.size();
      for (auto& t : scratch) {
        if (used[sink] == copies[sink].size())
          copies[sink].emplace_back();
        auto& spare = copies[sink][used[sink]];
        auto& out = f.transform.apply(t.name, *t.actions, *t.e, spare);
        const event* held = t.e;
        if (&out == &spare) {
          held = &copies[sink][used[sink]++];
        } else if (!kept) {
          spare = *t.e;
          held = &copies[sink][used[sink]++];
        }
        refs[sink].push_back(held);
        bytes += approx_bytes(*held);
      }
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.batch.size()));
}
BENCHMARK(sink_take_ref)->Name("sink_take/ref")->Arg(2048)->Arg(65536);

/// A temporary NDJSON file, truncated (outside the timing) when it passes 256 MB.
struct temp_file {
  std::string path;
  int fd = -1;
  temp_file() {
    char name[] = "/tmp/sluice-route-bench-XXXXXX";
    fd = ::mkstemp(name);
    if (fd < 0)
      throw std::runtime_error("mkstemp failed");
    path = name;
  }
  ~temp_file() {
    ::close(fd);
    ::unlink(path.c_str());
  }
  void trim(benchmark::State& state) {
    if (::lseek(fd, 0, SEEK_END) < (off_t{256} << 20))
      return;
    state.PauseTiming();
    [[maybe_unused]] auto rc = ::ftruncate(fd, 0);
    state.ResumeTiming();
  }
};

/// The masked events the events sink writes (95% of the batch).
event_batch events_sink_batch(reference_sinks& f) {
  event_batch out;
  for (auto& e : f.batch) {
    std::string_view name;
    if (auto actions = f.decide(0, e, name)) {
      out.push_back(e);
      f.transform.apply(name, *actions, out.back());
    }
  }
  return out;
}

void file_write_one_write(benchmark::State& state) {
  reference_sinks f{static_cast<size_t>(state.range(0))};
  auto events = events_sink_batch(f);
  temp_file file;
  std::string buffer;
  for (auto _ : state) {
    buffer.clear();
    buffer.reserve(events.size() * 320);
    for (auto& e : events) {
      append_json(buffer, e, "node-1");
      buffer += '\n';
    }
    const char* data = buffer.data();
    size_t left = buffer.size();
    while (left > 0) {
      auto n = ::write(file.fd, data, left);
      if (n <= 0)
        throw std::runtime_error("write failed");
      data += n;
      left -= static_cast<size_t>(n);
    }
    file.trim(state);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
}
BENCHMARK(file_write_one_write)->Name("file_write/one_write")->Arg(2048)->Arg(65536)
  ->UseRealTime()->MeasureProcessCPUTime();

void file_write_chunked(benchmark::State& state) {
  reference_sinks f{static_cast<size_t>(state.range(0))};
  auto events = events_sink_batch(f);
  auto refs = bench::refs_of(events);
  temp_file file;
  file_sink_config cfg;
  cfg.path = file.path;
  cfg.fsync = false;
  file_sink sink{cfg, "node-1"};
  write_report report;
  std::string error;
  if (sink.start(error) != sink_status::ok)
    throw std::runtime_error(error);
  for (auto _ : state) {
    if (sink.write_refs(refs, report) != sink_status::ok)
      throw std::runtime_error(report.error);
    if (::lseek(file.fd, 0, SEEK_END) >= (off_t{256} << 20)) {
      state.PauseTiming();
      sink.stop(); // reopened by the next write: the sink keeps the file's size
      [[maybe_unused]] auto rc = ::ftruncate(file.fd, 0);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
}
BENCHMARK(file_write_chunked)->Name("file_write/chunked")->Arg(2048)->Arg(65536)
  ->UseRealTime()->MeasureProcessCPUTime();

} // namespace

BENCHMARK_MAIN();
