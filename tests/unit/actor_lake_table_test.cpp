// The lake's table format without the sink: partitions, file names, snapshot JSON, commits,
// retention. Local object store in a temp dir.

#include "actors/sinks/lake/lake_table.hpp"

#include "lake_test_helpers.hpp"
#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace sluice;
using namespace sluice::lake;
using namespace sluice::lake_testing;
using sluice::persistence::testing::temp_dir;

namespace {

constexpr int64_t day_ms = 24 * hour_ms;
/// 2024-11-22T00:00:00Z.
constexpr int64_t nov22 = 1732233600000;

file_entry make_file(std::string partition, log_offset lo, log_offset hi, int64_t now) {
  file_entry f;
  f.partition = partition;
  f.path = partition + "/" + new_part_name(now);
  f.rows = hi - lo + 1;
  f.bytes = 100;
  f.min_ts = f.max_ts = nov22;
  f.min_offset = lo;
  f.max_offset = hi;
  return f;
}

void touch(const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path{path}.parent_path());
  std::ofstream{path} << "x";
}

} // namespace

TEST(lake_table, partition_is_the_utc_date_and_hour_of_event_time) {
  EXPECT_EQ(partition_of(nov22), "date=2024-11-22/hour=00");
  EXPECT_EQ(partition_of(nov22 + 13 * hour_ms + 59 * 60 * 1000 + 999), "date=2024-11-22/hour=13");
  EXPECT_EQ(partition_of(nov22 - 1), "date=2024-11-21/hour=23");
  EXPECT_EQ(partition_of(0), "date=1970-01-01/hour=00");
  EXPECT_EQ(partition_of(-1), "date=1969-12-31/hour=23");
  // 2024-02-29T05:00Z (leap day) and 2000-03-01T00:00Z.
  EXPECT_EQ(partition_of(1709182800000), "date=2024-02-29/hour=05");
  EXPECT_EQ(partition_of(951868800000), "date=2000-03-01/hour=00");
}

TEST(lake_table, part_names_are_uuid_v7_carrying_their_creation_time) {
  auto a = new_part_name(nov22);
  auto b = new_part_name(nov22);
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), std::string{"part-"}.size() + 36 + std::string{".parquet"}.size());
  EXPECT_EQ(a[5 + 14], '7') << a; // version nibble
  EXPECT_EQ(part_created_ms(a), nov22);
  EXPECT_FALSE(part_created_ms("snap-1.json"));
}

TEST(lake_table, snapshot_names_sort_lexically_in_numeric_order) {
  EXPECT_EQ(snapshot_file_name(7), "snap-00000000000000000007.json");
  EXPECT_LT(snapshot_file_name(9), snapshot_file_name(10));
}

TEST(lake_table, snapshot_json_round_trips_every_field) {
  snapshot s;
  s.id = 3;
  s.parent = 2;
  s.timestamp_ms = nov22;
  s.offset_watermark = 41;
  s.schema = {{"id", persistence::parquet::column_type::string, false},
              {"position_ms", persistence::parquet::column_type::int64, true}};
  s.added = {make_file("date=2024-11-22/hour=00", 10, 20, nov22)};
  s.removed = {make_file("date=2024-11-22/hour=00", 1, 9, nov22)};
  s.files = s.added;
  std::string error;
  auto back = parse_snapshot(render_snapshot(s), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->id, 3u);
  EXPECT_EQ(back->parent, 2u);
  EXPECT_EQ(back->timestamp_ms, nov22);
  EXPECT_EQ(back->offset_watermark, 41u);
  ASSERT_EQ(back->schema.size(), 2u);
  EXPECT_EQ(back->schema[1].name, "position_ms");
  EXPECT_EQ(back->schema[1].type, persistence::parquet::column_type::int64);
  EXPECT_FALSE(back->schema[0].nullable);
  ASSERT_EQ(back->files.size(), 1u);
  EXPECT_EQ(back->files[0].path, s.added[0].path);
  EXPECT_EQ(back->files[0].min_offset, 10u);
  EXPECT_EQ(back->files[0].max_offset, 20u);
  EXPECT_EQ(back->removed[0].rows, 9u);
  EXPECT_FALSE(parse_snapshot("{\"snapshot_id\":1}", error));
  EXPECT_NE(error.find("parent"), std::string::npos) << error;
}

TEST(lake_table, commit_writes_the_snapshot_then_points_current_at_it) {
  temp_dir dir;
  auto store = open_local(dir.path());
  table t{*store, "events"};
  t.open();
  EXPECT_EQ(t.current().id, 0u);
  auto f1 = make_file("date=2024-11-22/hour=00", 1, 5, nov22);
  touch(dir.path() + "/events/" + f1.path);
  t.commit({f1}, {}, {}, 5, nov22);
  auto f2 = make_file("date=2024-11-22/hour=01", 6, 8, nov22);
  touch(dir.path() + "/events/" + f2.path);
  t.commit({f2}, {f1.path}, {}, 8, nov22 + 1);
  EXPECT_EQ(*store->get("events/_meta/current"), snapshot_file_name(2) + "\n");
  table reread{*store, "events"};
  reread.open();
  EXPECT_EQ(reread.current().id, 2u);
  EXPECT_EQ(reread.current().parent, 1u);
  ASSERT_EQ(reread.current().files.size(), 1u);
  EXPECT_EQ(reread.current().files[0].path, f2.path);
  ASSERT_EQ(reread.current().removed.size(), 1u);
  EXPECT_EQ(reread.current().removed[0].path, f1.path);
  EXPECT_EQ(reread.history().size(), 2u);
  EXPECT_EQ(reread.url(f2).rfind("file://", 0), 0u);
}

TEST(lake_table, a_snapshot_written_before_a_crash_is_committed_and_its_stale_hint_rolled_forward) {
  // The snapshot's exclusive create is the commit point; `current` is only a hint.
  temp_dir dir;
  auto store = open_local(dir.path());
  table t{*store, "events"};
  t.open();
  t.commit({}, {}, {}, 1, nov22);
  t.set_hook([](std::string_view point) {
    if (point == "after-snapshot-write")
      throw std::runtime_error("crash");
  });
  auto f = make_file("date=2024-11-22/hour=00", 2, 3, nov22);
  EXPECT_THROW(t.commit({f}, {}, {}, 3, nov22), std::runtime_error);
  EXPECT_EQ(*store->get("events/_meta/current"), snapshot_file_name(1) + "\n") << "stale hint";
  table reread{*store, "events"};
  reread.open();
  EXPECT_EQ(reread.current().id, 2u);
  ASSERT_EQ(reread.current().files.size(), 1u);
  EXPECT_EQ(reread.current().offset_watermark, 3u);
  EXPECT_TRUE(reread.publish_hint());
  EXPECT_EQ(*store->get("events/_meta/current"), snapshot_file_name(2) + "\n");
  EXPECT_FALSE(reread.publish_hint()) << "nothing to roll forward";
}

TEST(lake_table, expire_prunes_old_snapshots_and_unlisted_files_but_never_current) {
  temp_dir dir;
  auto store = open_local(dir.path());
  table t{*store, "events"};
  t.open();
  const auto retention = std::chrono::milliseconds{day_ms};
  auto old_file = make_file("date=2024-11-20/hour=00", 1, 2, nov22 - 3 * day_ms);
  auto kept_file = make_file("date=2024-11-22/hour=00", 3, 4, nov22 - 3 * day_ms);
  touch(dir.path() + "/events/" + old_file.path);
  touch(dir.path() + "/events/" + kept_file.path);
  t.commit({old_file}, {}, {}, 2, nov22 - 3 * day_ms);
  t.commit({kept_file}, {old_file.path}, {}, 4, nov22 - 2 * day_ms); // current, though old
  // An old orphan (a crash between move and commit) and a fresh one (maybe in flight).
  auto old_orphan = "events/date=2024-11-20/hour=00/" + new_part_name(nov22 - 2 * day_ms);
  auto new_orphan = "events/date=2024-11-22/hour=00/" + new_part_name(nov22);
  touch(dir.path() + "/" + old_orphan);
  touch(dir.path() + "/" + new_orphan);
  auto r = t.expire(retention, nov22);
  EXPECT_EQ(r.snapshots_deleted, 1u);
  EXPECT_EQ(r.files_deleted, 2u); // old_file (only in the pruned snapshot) and old_orphan
  EXPECT_FALSE(store->get("events/" + old_file.path));
  EXPECT_FALSE(store->get(old_orphan));
  EXPECT_TRUE(store->get("events/" + kept_file.path));
  EXPECT_TRUE(store->get(new_orphan));
  table reread{*store, "events"};
  reread.open();
  EXPECT_EQ(reread.current().id, 2u);
}
