// The `lake` sink on a local root: partitioning by event time, flush policy, snapshot content,
// exactly-once files across a crash and replay, type checks, retried batches.

#include "actors/sinks/lake/lake_sink.hpp"

#include "lake_test_helpers.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using namespace sluice;
using namespace sluice::lake_testing;

namespace {

struct lake_sink_test : lake_sink_fixture {
  /// Rows per partition in the current snapshot.
  std::map<std::string, uint64_t> rows_by_partition() {
    std::map<std::string, uint64_t> out;
    for (auto& f : current().files)
      out[f.partition] += f.rows;
    return out;
  }
};

/// Runs in a death test's child: writes offsets 3..5 and flushes with the crash hook armed.
void crash_during_flush(const lake_sink_config& cfg, const char* point) {
  ::setenv("SLUICE_LAKE_CRASH_AT", point, 1);
  lake_sink s{cfg, [] { return now_ts; }};
  std::string error;
  s.start(error);
  write_report report;
  s.write(plays(3, now_ts, 3), report);
  s.flush(true, error);
  std::exit(0); // not reached when the hook fires
}

} // namespace

TEST_F(lake_sink_test, lake_event_five_hours_late_lands_in_its_true_hour) {
  auto s = make(config());
  write_ok(*s, plays(3, now_ts, 1));
  write_ok(*s, plays(1, now_ts - 5 * hour_ms, 4)); // the airplane case, after newer events
  EXPECT_EQ(s->open_partitions(), 2u);
  flush_ok(*s, true);
  auto rows = rows_by_partition();
  EXPECT_EQ(rows["date=2024-11-22/hour=10"], 3u);
  EXPECT_EQ(rows["date=2024-11-22/hour=05"], 1u);
  EXPECT_EQ(rows.size(), 2u);
  auto snap = current();
  EXPECT_EQ(snap.id, 1u) << "partitions flushed together commit in one snapshot";
  for (auto& f : snap.files)
    EXPECT_TRUE(std::filesystem::exists(dir.sub("lake") + "/events/" + f.path)) << f.path;
}

TEST_F(lake_sink_test, lake_flushes_a_partition_when_it_reaches_max_file_rows) {
  auto cfg = config();
  cfg.max_file_rows = 4;
  auto s = make(cfg);
  write_ok(*s, plays(3, now_ts, 1));
  EXPECT_EQ(current().id, 0u);
  write_ok(*s, plays(2, now_ts, 4));
  auto snap = current();
  ASSERT_EQ(snap.files.size(), 1u);
  EXPECT_EQ(snap.files[0].rows, 5u) << "the whole buffer goes into the file";
  EXPECT_EQ(snap.files[0].min_offset, 1u);
  EXPECT_EQ(snap.files[0].max_offset, 5u);
  EXPECT_EQ(s->buffered_rows(), 0u);
}

TEST_F(lake_sink_test, lake_flushes_a_partition_when_it_reaches_max_file_bytes) {
  auto cfg = config();
  cfg.max_file_bytes = 300;
  auto s = make(cfg);
  write_ok(*s, plays(1, now_ts, 1));
  EXPECT_EQ(current().id, 0u);
  write_ok(*s, plays(10, now_ts, 2));
  EXPECT_EQ(rows_by_partition()["date=2024-11-22/hour=10"], 11u);
}

TEST_F(lake_sink_test, lake_flushes_a_partition_whose_oldest_row_waited_max_file_age) {
  auto cfg = config();
  cfg.max_file_age = std::chrono::seconds{60};
  auto s = make(cfg);
  write_ok(*s, plays(2, now_ts - 2 * hour_ms, 1));
  clock += 30 * 1000;
  write_ok(*s, plays(2, now_ts, 3));
  clock += 40 * 1000; // the first partition has waited 70 s, the second 40 s
  flush_ok(*s, false);
  auto rows = rows_by_partition();
  EXPECT_EQ(rows["date=2024-11-22/hour=08"], 2u);
  EXPECT_EQ(rows.count("date=2024-11-22/hour=10"), 0u);
  EXPECT_EQ(s->buffered_rows(), 2u);
  EXPECT_EQ(current().offset_watermark, 2u) << "offsets 3 and 4 are still buffered";
  EXPECT_EQ(s->durable_upto(4), 2u);
}

TEST_F(lake_sink_test, lake_late_partition_does_not_hold_the_current_one_open) {
  auto cfg = config();
  cfg.max_file_rows = 3;
  auto s = make(cfg);
  write_ok(*s, plays(1, now_ts - 26 * hour_ms, 1)); // yesterday, stays buffered
  write_ok(*s, plays(3, now_ts, 2));
  auto rows = rows_by_partition();
  EXPECT_EQ(rows["date=2024-11-22/hour=10"], 3u);
  EXPECT_EQ(rows.count("date=2024-11-21/hour=08"), 0u);
  EXPECT_EQ(current().offset_watermark, 0u) << "offset 1 is buffered";
  flush_ok(*s, true);
  EXPECT_EQ(rows_by_partition()["date=2024-11-21/hour=08"], 1u);
  EXPECT_EQ(current().offset_watermark, 4u);
  EXPECT_EQ(s->durable_upto(9), 9u) << "nothing buffered: everything accepted is durable";
}

TEST_F(lake_sink_test, lake_over_its_memory_budget_turns_the_largest_partitions_into_files_first) {
  auto cfg = config();
  cfg.max_buffer_bytes = 200; // more than one buffered row (~45 bytes), less than seven
  auto s = make(cfg);
  write_ok(*s, plays(1, now_ts - 26 * hour_ms, 1)); // a small late partition
  ASSERT_TRUE(rows_by_partition().empty()) << "one row fits the budget";
  write_ok(*s, plays(6, now_ts, 2)); // the large current one tips it over
  auto rows = rows_by_partition();
  EXPECT_EQ(rows["date=2024-11-22/hour=10"], 6u) << "the largest partition became a file";
  EXPECT_EQ(rows.count("date=2024-11-21/hour=08"), 0u) << "the small one stays buffered";
}

TEST_F(lake_sink_test, lake_snapshot_lists_schema_files_and_watermark_and_swaps_current) {
  auto s = make(config());
  write_ok(*s, plays(2, now_ts, 1));
  flush_ok(*s, true);
  write_ok(*s, plays(3, now_ts - hour_ms, 3));
  flush_ok(*s, true);
  auto meta = dir.sub("lake") + "/events/_meta/";
  EXPECT_TRUE(std::filesystem::exists(meta + lake::snapshot_file_name(1)));
  EXPECT_TRUE(std::filesystem::exists(meta + lake::snapshot_file_name(2)));
  auto snap = current();
  EXPECT_EQ(snap.id, 2u);
  EXPECT_EQ(snap.parent, 1u);
  EXPECT_EQ(snap.timestamp_ms, now_ts);
  EXPECT_EQ(snap.offset_watermark, 5u);
  ASSERT_EQ(snap.added.size(), 1u);
  EXPECT_EQ(snap.added[0].rows, 3u);
  EXPECT_EQ(snap.added[0].min_ts, now_ts - hour_ms);
  EXPECT_EQ(snap.added[0].min_offset, 3u);
  EXPECT_EQ(snap.added[0].max_offset, 5u);
  EXPECT_GT(snap.added[0].bytes, 0u);
  EXPECT_EQ(snap.added[0].bytes,
            std::filesystem::file_size(dir.sub("lake") + "/events/" + snap.added[0].path));
  EXPECT_EQ(snap.files.size(), 2u);
  std::vector<std::string> names;
  for (auto& c : snap.schema)
    names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"id", "type", "device_id", "profile_id", "ts",
                                             "ingest_ts", "offset", "title_id", "position_ms",
                                             "attrs"}));
  std::vector<std::string> staged;
  for (auto& entry : std::filesystem::directory_iterator{dir.sub("staging")})
    staged.push_back(entry.path().filename().string());
  EXPECT_EQ(staged, std::vector<std::string>{std::string{lake::writer_lock_name}})
    << "staged files moved into place; only the table's writer lock stays";
}

TEST_F(lake_sink_test, lake_replay_after_a_kill_without_flush_writes_no_row_twice) {
  auto cfg = config();
  cfg.max_file_rows = 4;
  // Offsets 1..10 over two hours: hour 10 holds 1, 2, 3, 5, 8, 9; hour 9 holds 4, 6, 7, 10. The
  // first 8 offsets fill hour 10 to 5 rows (committed); hour 9 stays buffered from offset 4.
  const std::set<log_offset> hour10 = {1, 2, 3, 5, 8, 9};
  event_batch batch;
  for (log_offset o = 1; o <= 10; ++o) {
    auto one = plays(1, hour10.count(o) ? now_ts : now_ts - hour_ms, o);
    batch.push_back(one.front());
  }
  event_batch first_part(batch.begin(), batch.begin() + 8);
  log_offset durable = 0;
  {
    auto s = make(cfg);
    write_ok(*s, first_part);
    durable = s->durable_upto(8);
    // Killed here: no flush, the destructor only drops the buffers.
  }
  EXPECT_EQ(durable, 3u) << "offset 4 is the lowest one buffered";
  auto before = current();
  ASSERT_EQ(before.files.size(), 1u);
  EXPECT_EQ(before.offset_watermark, 3u);
  auto s = make(cfg);
  // The engine replays from its recorded offset + 1 (at most the watermark), then goes on.
  event_batch replay(batch.begin() + static_cast<long>(durable), batch.end());
  write_ok(*s, replay);
  flush_ok(*s, true);
  auto snap = current();
  uint64_t rows = 0;
  std::set<log_offset> covered;
  for (auto& f : snap.files) {
    rows += f.rows;
    for (auto o = f.min_offset; o <= f.max_offset; ++o) {
      if (lake::partition_of(batch[o - 1].ts) == f.partition) {
        EXPECT_TRUE(covered.insert(o).second) << "offset " << o << " in two files";
      }
    }
  }
  EXPECT_EQ(rows, 10u);
  EXPECT_EQ(covered.size(), 10u);
  EXPECT_EQ(snap.offset_watermark, 10u);
}

TEST_F(lake_sink_test, lake_replay_below_the_watermark_after_restart_adds_nothing) {
  {
    auto s = make(config());
    write_ok(*s, plays(5, now_ts, 1));
    flush_ok(*s, true);
  }
  auto s = make(config());
  write_ok(*s, plays(5, now_ts, 1)); // the engine's offset lagged the watermark
  EXPECT_EQ(s->buffered_rows(), 0u);
  flush_ok(*s, true);
  EXPECT_EQ(current().id, 1u);
  EXPECT_EQ(rows_by_partition()["date=2024-11-22/hour=10"], 5u);
}

TEST_F(lake_sink_test, lake_rejects_an_attribute_of_the_wrong_type_naming_the_field_and_writes_the_rest) {
  auto s = make(config());
  auto batch = events(
    R"([{"type":"play","device_id":"d","ts":1732271400000,"position_ms":5},
        {"type":"play","device_id":"d","ts":1732271400000,"position_ms":"five"},
        {"type":"play","device_id":"d","ts":1732271400000,"title_id":7},
        {"type":"play","device_id":"d","ts":1732271400000,"position_ms":6.0,"codec":"h264"},
        {"type":"play","device_id":"d","ts":1732271400000,"position_ms":6.5}])",
    1);
  write_report report;
  ASSERT_EQ(s->write(batch, report), sink_status::ok) << report.error;
  ASSERT_EQ(report.rejected.size(), 3u);
  EXPECT_EQ(report.rejected[0].first, 1u);
  EXPECT_NE(report.rejected[0].second.find("'position_ms'"), std::string::npos);
  EXPECT_NE(report.rejected[0].second.find("string"), std::string::npos);
  EXPECT_NE(report.rejected[0].second.find("int64"), std::string::npos);
  EXPECT_EQ(report.rejected[1].first, 2u);
  EXPECT_NE(report.rejected[1].second.find("'title_id'"), std::string::npos);
  EXPECT_EQ(report.rejected[2].first, 4u) << "6.5 is not an int64; 6.0 is";
  flush_ok(*s, true);
  EXPECT_EQ(rows_by_partition()["date=2024-11-22/hour=10"], 2u);
  EXPECT_EQ(current().offset_watermark, 5u);
}

TEST_F(lake_sink_test, lake_retried_batch_is_not_buffered_twice) {
  auto s = make(config());
  auto batch = plays(4, now_ts, 1);
  write_ok(*s, batch);
  write_ok(*s, batch);
  EXPECT_EQ(s->buffered_rows(), 4u);
  flush_ok(*s, true);
  EXPECT_EQ(rows_by_partition()["date=2024-11-22/hour=10"], 4u);
}

TEST_F(lake_sink_test, lake_store_failure_keeps_the_buffer_and_reports_unhealthy_until_it_recovers) {
  auto s = make(config());
  write_ok(*s, plays(3, now_ts, 1));
  // A plain file where the partition directory must go makes the move fail.
  auto blocker = dir.sub("lake") + "/events/date=2024-11-22";
  std::filesystem::create_directories(dir.sub("lake") + "/events");
  { std::ofstream{blocker} << "x"; }
  std::string error;
  EXPECT_NE(s->flush(true, error), sink_status::ok);
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(s->healthy());
  EXPECT_EQ(s->buffered_rows(), 3u);
  EXPECT_EQ(s->durable_upto(3), 0u);
  std::filesystem::remove(blocker);
  flush_ok(*s, true);
  EXPECT_TRUE(s->healthy());
  EXPECT_EQ(rows_by_partition()["date=2024-11-22/hour=10"], 3u);
}

TEST_F(lake_sink_test, lake_commit_survives_crash_between_file_move_and_pointer_swap) {
  for (auto point : {"after-file-move", "after-snapshot-write"}) {
    SCOPED_TRACE(point);
    std::filesystem::remove_all(dir.sub("lake"));
    {
      auto s = make(config());
      write_ok(*s, plays(2, now_ts, 1));
      flush_ok(*s, true);
    }
    auto cfg = config();
    EXPECT_EXIT(crash_during_flush(cfg, point), ::testing::KilledBySignal(SIGKILL), "");
    // The snapshot's creation is the commit: after it, the crash only left the hint behind.
    EXPECT_EQ(current().id, std::string_view{point} == "after-file-move" ? 1u : 2u);
    auto s = make(config());
    write_ok(*s, plays(3, now_ts, 3)); // the replay
    flush_ok(*s, true);
    auto snap = current();
    EXPECT_EQ(snap.id, 2u);
    uint64_t rows = 0;
    for (auto& f : snap.files) {
      rows += f.rows;
      EXPECT_TRUE(std::filesystem::exists(dir.sub("lake") + "/events/" + f.path));
    }
    EXPECT_EQ(rows, 5u);
  }
}
