// Ingest-time data quality per event (Google Benchmark): schema validation of a ~200-byte play
// event, enrichment (device type, country, schema version), and session assignment per batch.

#include "messages/codec.hpp"
#include "messages/quality.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/session_store.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

using namespace sluice;

event sample_event() {
  auto b = decode_json(R"({"type":"play","device_id":"tv-000123","profile_id":"p-42",)"
                       R"("ts":1732233600000,"title_id":"t-81234","position_ms":123456,)"
                       R"("quality":"hd","player":{"codec":"h264","bitrate_kbps":5800},)"
                       R"("app_version":"7.12.0","cdn":"edge-17"})",
                       1732233600000);
  return b.events.at(0);
}

ingest_quality make_quality() {
  ingest_quality q;
  event_schema s;
  s.type = "play";
  s.version = 2;
  auto field = [](std::string name, field_type t, bool required = false) {
    field_rule f;
    f.name = std::move(name);
    f.type = t;
    f.required = required;
    return f;
  };
  auto title = field("title_id", field_type::string, true);
  title.pattern = "^t-[0-9]+$";
  title.max_length = 64;
  auto pos = field("position_ms", field_type::integer, true);
  pos.min = 0;
  auto quality = field("quality", field_type::string);
  quality.enum_values = {"sd", "hd", "uhd"};
  s.fields = {title, pos, quality, field("player", field_type::object)};
  s.max_event_bytes = 16384;
  q.schemas.add(s);
  enrich_options o;
  q.enrich.init(o);
  return q;
}

void validate_play(benchmark::State& state) {
  auto q = make_quality();
  auto e = sample_event();
  for (auto _ : state) {
    const event_schema* s = nullptr;
    schema_violation v;
    benchmark::DoNotOptimize(q.schemas.validate(e, s, v));
  }
  state.SetLabel(std::to_string(e.attrs.size()) + " attr bytes");
}
BENCHMARK(validate_play);

void enrich_play(benchmark::State& state) {
  auto q = make_quality();
  auto proto = sample_event();
  auto ctx = q.enrich.prepare({"Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)", "203.0.113.9", ""});
  event e;
  for (auto _ : state) {
    e.attrs = proto.attrs; // copy (reusing capacity), then append 3 attributes
    q.enrich.apply(e, ctx, "schema_version", "play@2");
    benchmark::DoNotOptimize(e.attrs.data());
  }
}
BENCHMARK(enrich_play);

void prepare_batch(benchmark::State& state) {
  auto q = make_quality();
  for (auto _ : state)
    benchmark::DoNotOptimize(
      q.enrich.prepare({"Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)", "203.0.113.9", ""}));
}
BENCHMARK(prepare_batch);

void assign_sessions(benchmark::State& state) {
  auto dir = std::filesystem::temp_directory_path() / "sluice-quality-bench";
  std::filesystem::remove_all(dir);
  persistence::env_options eo;
  eo.path = dir.string();
  eo.mode = persistence::durability::none;
  persistence::environment env{eo};
  persistence::session_tracker t{env, {}};
  auto proto = sample_event();
  event_batch batch(100, proto); // one device's batch, the usual case
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].attrs = proto.attrs;
      batch[i].ts = proto.ts + static_cast<int64_t>(i);
    }
    state.ResumeTiming();
    t.begin();
    t.assign(batch);
    t.commit();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch.size()));
  std::filesystem::remove_all(dir);
}
BENCHMARK(assign_sessions);

} // namespace

BENCHMARK_MAIN();
