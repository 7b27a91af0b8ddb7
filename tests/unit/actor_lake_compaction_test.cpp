// Compaction of a lake table on a local root: small files of a partition merged into one in a new
// snapshot, the merged file read back, exactly-once replay over a merged file, the single-writer
// lock, the sink's own compaction and crashes at the compaction's commit points.

#include "actors/sinks/lake/lake_compaction.hpp"
#include "actors/sinks/lake/lake_sink.hpp"

#include "lake_test_helpers.hpp"
#include "persistence/parquet_reader.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include <unistd.h>

using namespace sluice;
using namespace sluice::lake_testing;
namespace pq = sluice::persistence::parquet;

namespace {

constexpr const char* hour10 = "date=2024-11-22/hour=10";
/// Column indexes of `id` and `offset` in the table's files.
constexpr size_t id_column = 0;
constexpr size_t offset_column = 6;

/// `n` play events at `ts`, offsets from `first`, ids `e<offset>`, each with a `codec`.
event_batch h264_plays(size_t n, int64_t ts, log_offset first) {
  return plays(n, ts, first, R"(,"codec":"h264")");
}

/// One row of a data file: id and offset.
using id_offset = std::pair<std::string, log_offset>;

struct lake_compaction_test : lake_sink_fixture {
  lake_sink_config config() {
    auto cfg = lake_sink_fixture::config();
    cfg.max_file_rows = 3;
    cfg.compact_interval = caf::timespan{0}; // off unless a test turns it on
    return cfg;
  }

  std::string local_path(const lake::file_entry& f) {
    return dir.sub("lake") + "/events/" + f.path;
  }

  /// The rows (id, offset) of one data file, in file order.
  std::vector<id_offset> rows_of(const lake::file_entry& f) {
    std::vector<id_offset> out;
    auto r = pq::reader::open_file(local_path(f));
    r.for_each_row([&](const std::vector<pq::cell>& row) {
      out.emplace_back(std::string{std::get<std::string_view>(row[id_column])},
                       static_cast<log_offset>(std::get<int64_t>(row[offset_column])));
    });
    return out;
  }

  /// Compacts the table as `sluice lake compact` does (taking the writer lock).
  lake::compact_result compact(const lake_sink_config& cfg, const std::string& partition = {}) {
    std::string why;
    auto lock = lake::writer_lock::try_acquire(cfg.staging_dir, "compact", why);
    EXPECT_TRUE(lock.has_value()) << why;
    auto s = store();
    lake::table t{*s, "events", cfg.writer_id};
    t.open();
    auto opts = lake_compact_options(cfg);
    opts.partition = partition;
    opts.now_ms = clock;
    return lake::compact(t, opts);
  }

  /// Every offset of the current snapshot's files, read from the files; fails on a duplicate.
  std::set<log_offset> offsets_in_current() {
    std::set<log_offset> out;
    for (auto& f : current().files)
      for (auto& [id, o] : rows_of(f))
        EXPECT_TRUE(out.insert(o).second) << "offset " << o << " (" << id << ") twice";
    return out;
  }
};

/// Runs in a death test's child: compacts `cfg`'s table with SIGKILL armed at `point`.
void crash_during_compaction(const lake_sink_config& cfg, const char* point) {
  std::string why;
  auto lock = lake::writer_lock::try_acquire(cfg.staging_dir, "compact", why);
  auto store = open_local(cfg.root);
  lake::table t{*store, cfg.table, cfg.writer_id};
  t.open();
  auto kill_at = [point](std::string_view at) {
    if (at == point)
      ::raise(SIGKILL);
  };
  t.set_hook(kill_at);
  auto opts = lake_compact_options(cfg);
  opts.now_ms = now_ts;
  opts.hook = kill_at;
  lake::compact(t, opts);
  std::exit(0); // not reached when the hook fires
}

} // namespace

TEST_F(lake_compaction_test, lake_compaction_merges_a_partitions_small_files_into_one_in_one_snapshot) {
  auto cfg = config();
  {
    auto s = make(cfg);
    for (log_offset o = 1; o <= 12; o += 3)
      write_ok(*s, h264_plays(3, now_ts, o)); // four files of 3 rows in hour 10
    write_ok(*s, h264_plays(1, now_ts - 5 * hour_ms, 13));
    flush_ok(*s); // one file in hour 05
  }
  auto before = current();
  ASSERT_EQ(before.files.size(), 5u);
  std::vector<id_offset> original;
  for (auto& f : before.files)
    if (f.partition == hour10)
      for (auto& row : rows_of(f))
        original.push_back(row);
  std::sort(original.begin(), original.end(),
            [](auto& a, auto& b) { return a.second < b.second; });

  auto r = compact(cfg);
  ASSERT_EQ(r.merged.size(), 1u);
  EXPECT_TRUE(r.skipped.empty());
  auto snap = current();
  EXPECT_EQ(snap.id, before.id + 1);
  EXPECT_EQ(r.snapshot_id, snap.id);
  ASSERT_EQ(snap.added.size(), 1u);
  EXPECT_EQ(snap.removed.size(), 4u);
  EXPECT_EQ(snap.files.size(), 2u) << "hour 10 merged, hour 05 untouched (a single file)";
  EXPECT_EQ(snap.offset_watermark, before.offset_watermark);
  EXPECT_EQ(snap.schema.size(), before.schema.size());
  auto& merged = snap.added[0];
  EXPECT_EQ(merged.partition, hour10);
  EXPECT_EQ(merged.path.rfind(std::string{hour10} + "/part-", 0), 0u) << merged.path;
  EXPECT_EQ(merged.rows, 12u);
  EXPECT_EQ(merged.min_offset, 1u);
  EXPECT_EQ(merged.max_offset, 12u);
  EXPECT_EQ(merged.min_ts, now_ts);
  EXPECT_EQ(merged.max_ts, now_ts);
  EXPECT_EQ(merged.bytes, std::filesystem::file_size(local_path(merged)));
  EXPECT_EQ(rows_of(merged), original) << "same rows, in offset order";
  // Readers of the older snapshot still find every file it lists.
  for (auto& f : before.files)
    EXPECT_TRUE(std::filesystem::exists(local_path(f))) << f.path;
  // The merged file keeps the table's schema and writer metadata.
  auto reader = pq::reader::open_file(local_path(merged));
  ASSERT_EQ(reader.schema().size(), snap.schema.size());
  for (size_t i = 0; i < snap.schema.size(); ++i)
    EXPECT_EQ(reader.schema()[i].name, snap.schema[i].name);
  EXPECT_NE(std::find(reader.key_value_metadata().begin(), reader.key_value_metadata().end(),
                      std::make_pair(std::string{"sluice.table"}, std::string{"events"})),
            reader.key_value_metadata().end());
  EXPECT_TRUE(compact(cfg).merged.empty()) << "nothing left to merge";
  EXPECT_EQ(current().id, snap.id);
}

TEST_F(lake_compaction_test, lake_compaction_plan_never_skips_a_big_file_between_small_ones) {
  lake::snapshot snap;
  auto file = [&](log_offset lo, log_offset hi, uint64_t bytes) {
    lake::file_entry f;
    f.partition = hour10;
    f.path = fmt::format("{}/part-{}.parquet", hour10, lo);
    f.rows = hi - lo + 1;
    f.bytes = bytes;
    f.min_offset = lo;
    f.max_offset = hi;
    snap.files.push_back(f);
  };
  // Listed out of offset order on purpose: the plan sorts by min_offset.
  file(30, 39, 100);  // small
  file(1, 9, 100);    // small
  file(10, 19, 5000); // big: ends the run
  file(20, 29, 100);  // small
  file(40, 49, 100);  // small
  lake::compact_options opts;
  opts.target_file_bytes = 1000;
  auto plan = lake::plan_compaction(snap, opts);
  ASSERT_EQ(plan.size(), 1u) << "the run [1..9] alone is one file";
  ASSERT_EQ(plan[0].inputs.size(), 3u);
  EXPECT_EQ(plan[0].inputs.front().min_offset, 20u);
  EXPECT_EQ(plan[0].inputs.back().max_offset, 49u);
  EXPECT_EQ(plan[0].rows, 30u);
  opts.min_files = 4;
  EXPECT_TRUE(lake::plan_compaction(snap, opts).empty());
  opts.min_files = 2;
  opts.target_file_bytes = 250; // two small files fit, a third does not
  plan = lake::plan_compaction(snap, opts);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].inputs.size(), 2u);
  opts.partition = "date=2024-11-22/hour=11";
  EXPECT_TRUE(lake::plan_compaction(snap, opts).empty());
}

TEST_F(lake_compaction_test, lake_replay_after_compaction_writes_no_row_twice) {
  auto cfg = config();
  {
    auto s = make(cfg);
    // Offset 1 is a late event that stays buffered, so the watermark stays 0; offsets 2..10 go
    // to hour 10 as three committed files.
    write_ok(*s, h264_plays(1, now_ts - 26 * hour_ms, 1));
    for (log_offset o = 2; o <= 10; o += 3)
      write_ok(*s, h264_plays(3, now_ts, o));
    EXPECT_EQ(s->durable_upto(10), 0u);
    // Killed here: offset 1 is lost from memory, the engine replays from 1.
  }
  ASSERT_EQ(current().files.size(), 3u);
  ASSERT_EQ(compact(cfg).merged.size(), 1u);
  ASSERT_EQ(current().files.size(), 1u);
  ASSERT_EQ(current().offset_watermark, 0u);
  auto s = make(cfg);
  event_batch replay = h264_plays(1, now_ts - 26 * hour_ms, 1);
  for (auto& e : h264_plays(9, now_ts, 2))
    replay.push_back(e);
  write_ok(*s, replay);
  EXPECT_EQ(s->buffered_rows(), 1u) << "offsets 2..10 are in the merged file";
  write_ok(*s, h264_plays(2, now_ts, 11)); // then the log goes on
  flush_ok(*s);
  auto offsets = offsets_in_current();
  EXPECT_EQ(offsets.size(), 12u);
  EXPECT_EQ(*offsets.begin(), 1u);
  EXPECT_EQ(*offsets.rbegin(), 12u);
  EXPECT_EQ(current().offset_watermark, 12u);
}

TEST_F(lake_compaction_test, lake_writer_lock_keeps_a_second_writer_out) {
  auto cfg = config();
  {
    auto s = make(cfg);
    write_ok(*s, h264_plays(3, now_ts, 1));
    std::string why;
    EXPECT_FALSE(lake::writer_lock::try_acquire(cfg.staging_dir, "compact", why).has_value());
    EXPECT_NE(why.find("being written by a running node"), std::string::npos) << why;
    EXPECT_NE(why.find(fmt::format("pid {}", ::getpid())), std::string::npos) << why;
    lake_sink second{cfg, [this] { return clock; }};
    std::string error;
    EXPECT_EQ(second.start(error), sink_status::retry) << "a second sink on the same table";
    EXPECT_NE(error.find("running node"), std::string::npos) << error;
  }
  // The sink is gone: the CLI's compaction may run, and a sink cannot start meanwhile.
  std::string why;
  auto lock = lake::writer_lock::try_acquire(cfg.staging_dir, "compact", why);
  ASSERT_TRUE(lock.has_value()) << why;
  lake_sink blocked{cfg, [this] { return clock; }};
  std::string error;
  EXPECT_EQ(blocked.start(error), sink_status::retry);
  EXPECT_NE(error.find("sluice lake compact"), std::string::npos) << error;
  lock.reset();
  EXPECT_EQ(blocked.start(error), sink_status::ok) << error;
  EXPECT_TRUE(std::filesystem::exists(cfg.staging_dir + "/writer.lock"))
    << "staging clean-up keeps the lock file";
}

TEST_F(lake_compaction_test, lake_sink_compacts_by_itself_at_most_once_per_compact_interval) {
  auto cfg = config();
  cfg.compact_interval = std::chrono::minutes{1};
  auto s = make(cfg);
  for (log_offset o = 1; o <= 9; o += 3)
    write_ok(*s, h264_plays(3, now_ts, o));
  EXPECT_EQ(s->compactions(), 0u) << "the first step comes one interval after start";
  EXPECT_EQ(current().files.size(), 3u);
  clock += 61 * 1000;
  write_ok(*s, h264_plays(3, now_ts, 10)); // commits a 4th file, then compacts all four
  EXPECT_EQ(s->compactions(), 1u);
  auto snap = current();
  ASSERT_EQ(snap.files.size(), 1u);
  EXPECT_EQ(snap.files[0].rows, 12u);
  EXPECT_EQ(snap.files[0].min_offset, 1u);
  EXPECT_EQ(snap.files[0].max_offset, 12u);
  clock += 30 * 1000;
  write_ok(*s, h264_plays(3, now_ts, 13));
  write_ok(*s, h264_plays(3, now_ts, 16));
  EXPECT_EQ(s->compactions(), 1u) << "within the interval";
  EXPECT_EQ(current().files.size(), 3u);
  flush_ok(*s);
  EXPECT_EQ(offsets_in_current().size(), 18u);
}

TEST_F(lake_compaction_test, lake_compaction_survives_crash_between_file_move_and_pointer_swap) {
  for (auto point : {lake::compact_crash_point.data(), "after-snapshot-write"}) {
    SCOPED_TRACE(point);
    std::filesystem::remove_all(dir.sub("lake"));
    auto cfg = config();
    {
      auto s = make(cfg);
      write_ok(*s, h264_plays(1, now_ts - 26 * hour_ms, 1)); // buffered: watermark 0
      for (log_offset o = 2; o <= 7; o += 3)
        write_ok(*s, h264_plays(3, now_ts, o));
    }
    auto before = current();
    ASSERT_EQ(before.files.size(), 2u);
    EXPECT_EXIT(crash_during_compaction(cfg, point), ::testing::KilledBySignal(SIGKILL), "");
    auto after = current();
    // The snapshot's creation is the commit: a crash after it leaves only the hint behind.
    bool committed = std::string_view{point} == "after-snapshot-write";
    EXPECT_EQ(after.id, before.id + (committed ? 1 : 0));
    EXPECT_EQ(after.files.size(), committed ? 1u : 2u);
    for (auto& f : after.files)
      EXPECT_TRUE(std::filesystem::exists(local_path(f))) << f.path;
    // Restart and replay from offset 1: nothing doubled, nothing lost.
    {
      auto s = make(cfg);
      event_batch replay = h264_plays(1, now_ts - 26 * hour_ms, 1);
      for (auto& e : h264_plays(6, now_ts, 2))
        replay.push_back(e);
      write_ok(*s, replay);
      flush_ok(*s);
    }
    EXPECT_EQ(offsets_in_current(), (std::set<log_offset>{1, 2, 3, 4, 5, 6, 7}));
    // A later compaction completes, and retention deletes what the crash left behind.
    ASSERT_EQ(compact(cfg).merged.size(), committed ? 0u : 1u);
    EXPECT_EQ(offsets_in_current().size(), 7u);
    auto s = store();
    lake::table t{*s, "events"};
    t.open();
    clock += 2 * hour_ms;
    t.expire(std::chrono::hours{1}, clock);
    size_t data_files = 0;
    for (auto& obj : s->list("events/"))
      data_files += obj.key.find("/_meta/") == std::string::npos;
    EXPECT_EQ(data_files, t.current().files.size()) << "garbage and merged inputs expired";
  }
}
