#pragma once

// What the lake tests share: a local object store, the tests' clock, play events, and a fixture
// that runs a `lake` sink on a table `events` under a fresh temp dir.

#include "actors/sinks/lake/lake_sink.hpp"

#include "messages/codec.hpp"
#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace sluice::lake_testing {

constexpr int64_t hour_ms = 3600 * 1000;
/// 2024-11-22T10:30:00Z: "now" of the tests.
constexpr int64_t now_ts = 1732271400000;

/// A local object store rooted at `root`.
inline std::unique_ptr<persistence::object_store> open_local(const std::string& root) {
  persistence::object_store_config cfg;
  cfg.root = root;
  return persistence::open_object_store(cfg);
}

/// Events from JSON, with dense offsets from `first`; every event must be accepted.
inline event_batch events(const std::string& json, log_offset first) {
  auto d = decode_json(json, now_ts);
  EXPECT_TRUE(d.ok()) << d.error;
  EXPECT_TRUE(d.rejected.empty());
  for (auto& e : d.events)
    e.offset = first++;
  return d.events;
}

/// `n` play events at `ts`, offsets from `first`, ids `e<offset>`; `extra` is appended to each
/// event's fields (e.g. `,"codec":"h264"`).
inline event_batch plays(size_t n, int64_t ts, log_offset first, const std::string& extra = {}) {
  std::string json = "[";
  for (size_t i = 0; i < n; ++i)
    json += fmt::format(R"({}{{"id":"e{}","type":"play","device_id":"tv-1","ts":{},)"
                        R"("title_id":"t-{}","position_ms":{}{}}})",
                        i ? "," : "", first + i, ts, i % 3, 1000 * (first + i), extra);
  return events(json + "]", first);
}

/// Writes `batch`, which must be accepted whole.
inline void write_ok(lake_sink& s, const event_batch& batch) {
  write_report report;
  ASSERT_EQ(s.write(batch, report), sink_status::ok) << report.error;
  ASSERT_TRUE(report.rejected.empty()) << report.rejected.front().second;
}

/// Flushes (a final flush unless `final` is false), which must succeed.
inline void flush_ok(lake_sink& s, bool final = true) {
  std::string error;
  ASSERT_EQ(s.flush(final, error), sink_status::ok) << error;
}

/// A `lake` sink on the table `events` under `<temp dir>/lake`, staging in `<temp dir>/staging`,
/// with a clock the test sets (`clock`, starting at `now_ts`).
struct lake_sink_fixture : ::testing::Test {
  persistence::testing::temp_dir dir;
  int64_t clock = now_ts;

  /// Columns `title_id:string` and `position_ms:int64`; everything else at its default.
  lake_sink_config config() {
    lake_sink_config cfg;
    cfg.root = dir.sub("lake");
    cfg.table = "events";
    cfg.columns = {"title_id:string", "position_ms:int64"};
    cfg.staging_dir = dir.sub("staging");
    return cfg;
  }

  /// A started sink for `cfg` on the test's clock.
  std::unique_ptr<lake_sink> make(const lake_sink_config& cfg) {
    EXPECT_EQ(cfg.validate(), "");
    auto s = std::make_unique<lake_sink>(cfg, [this] { return clock; });
    std::string error;
    EXPECT_EQ(s->start(error), sink_status::ok) << error;
    return s;
  }

  /// The object store of the lake root.
  std::unique_ptr<persistence::object_store> store() {
    return open_local(dir.sub("lake"));
  }

  /// The table's current snapshot.
  lake::snapshot current() {
    auto s = store();
    lake::table t{*s, "events"};
    t.open();
    return t.current();
  }
};

} // namespace sluice::lake_testing
