// Several writers (nodes) on one lake table: the optimistic commit protocol (exclusive create of
// the next snapshot, reload and re-apply on a lost race), per-writer watermarks and files,
// compaction and retention next to other writers, the per-writer lease, format-1 tables.
// Real local object stores in a temp dir; races are interleaved by hand (deterministic).

#include "actors/sinks/lake/lake_compaction.hpp"
#include "actors/sinks/lake/lake_sink.hpp"
#include "actors/sinks/lake/lake_table.hpp"
#include "lake_test_helpers.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <set>
#include <thread>

using namespace sluice;
using namespace sluice::lake;
using namespace sluice::lake_testing;

namespace {

/// A real local store that runs `before_create` (once, then clears it) right before a
/// `put_if_absent` of a snapshot: the test lets another writer commit exactly there. With
/// `lose_response`, a successful create answers false, as a retried S3 request whose first
/// response was lost does.
class interleaving_store final : public persistence::object_store {
public:
  explicit interleaving_store(std::unique_ptr<persistence::object_store> inner)
    : inner_(std::move(inner)) {}

  std::function<void()> before_create;
  bool lose_response = false;

  void put_file(const std::string& key, const std::string& local_path) override {
    inner_->put_file(key, local_path);
  }
  void put(const std::string& key, std::string_view bytes) override {
    inner_->put(key, bytes);
  }
  bool put_if_absent(const std::string& key, std::string_view bytes) override {
    if (key.find("/_meta/snap-") != std::string::npos && before_create) {
      auto f = std::move(before_create);
      before_create = nullptr;
      f();
    }
    bool created = inner_->put_if_absent(key, bytes);
    if (created && lose_response && key.find("/_meta/snap-") != std::string::npos) {
      lose_response = false;
      return false;
    }
    return created;
  }
  std::optional<std::string> get(const std::string& key) override {
    return inner_->get(key);
  }
  std::vector<persistence::object_info> list(const std::string& prefix) override {
    return inner_->list(prefix);
  }
  void remove(const std::string& key) override {
    inner_->remove(key);
  }
  std::string url(const std::string& key) const override {
    return inner_->url(key);
  }
  bool healthy() const override {
    return inner_->healthy();
  }

private:
  std::unique_ptr<persistence::object_store> inner_;
};

file_entry make_file(const std::string& partition, log_offset lo, log_offset hi,
                     uint64_t bytes = 100) {
  file_entry f;
  f.partition = partition;
  f.path = partition + "/" + new_part_name(now_ts);
  f.rows = hi - lo + 1;
  f.bytes = bytes;
  f.min_ts = f.max_ts = now_ts;
  f.min_offset = lo;
  f.max_offset = hi;
  return f;
}

constexpr const char* p10 = "date=2024-11-22/hour=10";

struct lake_concurrent_test : lake_sink_fixture {
  /// A sink of writer `id` on the shared table, with its own staging dir (its own node).
  lake_sink_config writer_config(const std::string& id) {
    auto cfg = config();
    cfg.writer_id = id;
    cfg.staging_dir = dir.sub("staging-" + id);
    return cfg;
  }

  /// Every (writer, offset) of the newest snapshot's files, by the files' metadata ranges.
  std::multiset<std::pair<std::string, log_offset>> offsets_by_writer() {
    std::multiset<std::pair<std::string, log_offset>> out;
    for (auto& f : current().files)
      for (auto o = f.min_offset; o <= f.max_offset; ++o)
        out.emplace(f.writer, o);
    return out;
  }
};

} // namespace

TEST_F(lake_concurrent_test, a_writer_that_loses_the_race_reloads_and_reapplies_its_files_keeping_the_others) {
  auto shared = store();
  interleaving_store racy{open_local(dir.sub("lake"))};
  table a{*shared, "events", "node-a"};
  table b{racy, "events", "node-b"};
  a.open();
  b.open();
  auto fa = make_file(p10, 1, 5);
  auto fb = make_file(p10, 1, 7); // same offsets: another node's log
  // b reads snapshot 0, then a commits snapshot 1 before b creates it.
  racy.before_create = [&] { a.commit({fa}, {}, {}, 5, now_ts); };
  b.commit({fb}, {}, {}, 7, now_ts + 1);
  EXPECT_EQ(b.stats().conflicts, 1u);
  EXPECT_EQ(b.stats().commits, 1u);
  table reader{*shared, "events"};
  reader.open();
  auto& snap = reader.current();
  EXPECT_EQ(snap.id, 2u);
  EXPECT_EQ(snap.parent, 1u);
  EXPECT_EQ(snap.writer, "node-b");
  ASSERT_EQ(snap.files.size(), 2u) << "b's snapshot keeps a's file";
  EXPECT_EQ(snap.files[0].writer, "node-a");
  EXPECT_EQ(snap.files[1].writer, "node-b");
  ASSERT_EQ(snap.added.size(), 1u);
  EXPECT_EQ(snap.added[0].path, fb.path);
  EXPECT_EQ(snap.watermark_of("node-a"), 5u);
  EXPECT_EQ(snap.watermark_of("node-b"), 7u);
  EXPECT_EQ(snap.watermark_of("node-c"), 0u) << "a writer that never committed";
  EXPECT_EQ(reader.history().size(), 2u) << "no snapshot was overwritten";
}

TEST_F(lake_concurrent_test, a_commit_gives_up_after_its_attempts_when_other_writers_always_win) {
  auto shared = store();
  interleaving_store racy{open_local(dir.sub("lake"))};
  commit_policy policy;
  policy.max_attempts = 3;
  policy.backoff = std::chrono::milliseconds{1};
  table a{*shared, "events", "node-a"};
  table b{racy, "events", "node-b", policy};
  a.open();
  b.open();
  log_offset next = 1;
  std::function<void()> win = [&] {
    a.commit({make_file(p10, next, next)}, {}, {}, next, now_ts);
    ++next;
    racy.before_create = win; // and again before b's next attempt
  };
  racy.before_create = win;
  try {
    b.commit({make_file(p10, 1, 2)}, {}, {}, 2, now_ts);
    FAIL() << "the commit should give up";
  } catch (const persistence::store_error& e) {
    EXPECT_TRUE(e.transient());
    EXPECT_NE(std::string{e.what()}.find("after 3 attempts"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b.stats().conflicts, 3u);
  EXPECT_EQ(b.stats().exhausted, 1u);
  EXPECT_EQ(b.current().id, 3u) << "b saw every snapshot a made";
  racy.before_create = nullptr;
  b.commit({make_file(p10, 1, 2)}, {}, {}, 2, now_ts); // the retry, later, succeeds
  EXPECT_EQ(b.current().files.size(), 4u);
}

TEST_F(lake_concurrent_test, a_lost_create_response_is_recognised_as_the_writers_own_commit) {
  interleaving_store racy{open_local(dir.sub("lake"))};
  racy.lose_response = true;
  table b{racy, "events", "node-b"};
  b.open();
  b.commit({make_file(p10, 1, 3)}, {}, {}, 3, now_ts);
  EXPECT_EQ(b.current().id, 1u);
  EXPECT_EQ(b.stats().conflicts, 0u);
  EXPECT_EQ(current().id, 1u) << "not committed a second time as snapshot 2";
  EXPECT_EQ(current().files.size(), 1u);
}

TEST_F(lake_concurrent_test, a_compaction_whose_inputs_another_commit_removed_is_dropped) {
  auto shared = store();
  interleaving_store racy{open_local(dir.sub("lake"))};
  table a{*shared, "events", "node-a"};
  auto f1 = make_file(p10, 1, 2);
  auto f2 = make_file(p10, 3, 4);
  a.commit({f1, f2}, {}, {}, 4, now_ts);
  // Two instances compact the same inputs (e.g. `sluice lake compact` against a stale view):
  // the second must not commit a duplicate of f1's rows.
  table a2{racy, "events", "node-a"};
  a2.open();
  auto merged1 = make_file(p10, 1, 4);
  auto merged2 = make_file(p10, 1, 4);
  racy.before_create = [&] { a.commit({merged1}, {f1.path, f2.path}, {}, std::nullopt, now_ts); };
  EXPECT_THROW(a2.commit({merged2}, {f1.path, f2.path}, {}, std::nullopt, now_ts), commit_conflict);
  EXPECT_EQ(a2.stats().dropped, 1u);
  auto snap = current();
  ASSERT_EQ(snap.files.size(), 1u);
  EXPECT_EQ(snap.files[0].path, merged1.path);
  EXPECT_EQ(snap.watermark_of("node-a"), 4u) << "a compaction keeps the watermark";
}

TEST_F(lake_concurrent_test, compaction_merges_only_the_compacting_writers_files) {
  auto shared = store();
  table a{*shared, "events", "node-a"};
  table b{*shared, "events", "node-b"};
  a.commit({make_file(p10, 1, 2), make_file(p10, 3, 4)}, {}, {}, 4, now_ts);
  b.open();
  b.commit({make_file(p10, 1, 2), make_file(p10, 3, 4)}, {}, {}, 4, now_ts);
  compact_options opts;
  opts.min_files = 2;
  opts.writer_id = "node-b";
  auto plan = plan_compaction(b.current(), opts);
  ASSERT_EQ(plan.size(), 1u) << "a's files, interleaved in offset order, are not b's to merge";
  ASSERT_EQ(plan[0].inputs.size(), 2u);
  for (auto& f : plan[0].inputs)
    EXPECT_EQ(f.writer, "node-b");
}

TEST_F(lake_concurrent_test, retention_keeps_the_newest_snapshot_past_a_stale_hint_and_files_in_flight) {
  auto shared = store();
  table a{*shared, "events", "node-a"};
  table b{*shared, "events", "node-b"};
  auto old_day = now_ts - 3 * 24 * hour_ms;
  a.commit({make_file(p10, 1, 1)}, {}, {}, 1, old_day);
  b.open();
  b.commit({make_file(p10, 1, 1)}, {}, {}, 1, old_day + 1);
  // a's hint names snapshot 1 again (the hint race), though snapshot 2 is the newest.
  shared->put("events/_meta/current", snapshot_file_name(1) + "\n");
  // b moved a file into the table and has not committed it yet.
  auto in_flight = make_file(p10, 2, 2);
  shared->put("events/" + in_flight.path, "x");
  table expirer{*shared, "events", "node-a"};
  auto r = expirer.expire(std::chrono::hours{24}, now_ts);
  EXPECT_EQ(r.snapshots_deleted, 1u) << "snapshot 1 only";
  EXPECT_EQ(r.files_deleted, 0u);
  EXPECT_TRUE(shared->get("events/" + in_flight.path)) << "younger than the retention";
  table reader{*shared, "events"};
  reader.open(); // the hint names an expired snapshot: found by listing
  EXPECT_EQ(reader.current().id, 2u);
  EXPECT_EQ(reader.current().files.size(), 2u);
  b.commit({in_flight}, {}, {}, 2, now_ts);
  EXPECT_EQ(current().id, 3u);
}

TEST_F(lake_concurrent_test, a_format_1_table_reads_as_one_writer_whose_state_the_first_named_writer_takes) {
  auto shared = store();
  auto legacy_file = make_file(p10, 1, 9);
  std::string json = R"({"format":1,"snapshot_id":1,"parent":0,"timestamp_ms":1,"offset_watermark":9,
"schema":[],"added":[],"removed":[],"files":[{"path":")"
                     + legacy_file.path + R"(","partition":")" + p10
                     + R"(","rows":9,"bytes":100,"min_ts":1,"max_ts":1,"min_offset":1,"max_offset":9}]})";
  shared->put("events/_meta/" + snapshot_file_name(1), json);
  shared->put("events/_meta/current", snapshot_file_name(1) + "\n");
  table t{*shared, "events", "node-1"};
  t.open();
  EXPECT_TRUE(t.current().legacy());
  EXPECT_EQ(t.current().watermark_of("node-1"), 9u);
  EXPECT_TRUE(t.current().owned_by(t.current().files[0], "node-1"));
  t.commit({make_file(p10, 10, 12)}, {}, {}, 12, now_ts);
  auto snap = current();
  EXPECT_FALSE(snap.legacy());
  ASSERT_EQ(snap.writers.size(), 1u);
  EXPECT_EQ(snap.watermark_of("node-1"), 12u);
  for (auto& f : snap.files)
    EXPECT_EQ(f.writer, "node-1") << "the legacy files are node-1's now";
  EXPECT_EQ(snap.watermark_of("node-2"), 0u) << "another node starts from its own offset 0";
}

TEST_F(lake_concurrent_test, two_sinks_on_one_table_keep_every_event_once_with_per_writer_watermarks) {
  auto ca = writer_config("node-a");
  auto cb = writer_config("node-b");
  {
    auto a = make(ca);
    auto b = make(cb);
    // Both nodes' logs start at offset 1: the same offsets, different events.
    write_ok(*a, plays(3, now_ts, 1));
    write_ok(*b, plays(4, now_ts, 1, R"(,"codec":"b")"));
    flush_ok(*a);
    flush_ok(*b); // b's table is behind: it reloads before deriving, no lost race
    write_ok(*a, plays(2, now_ts, 4));
    flush_ok(*a);
    auto snap = current();
    EXPECT_EQ(snap.id, 3u);
    EXPECT_EQ(snap.watermark_of("node-a"), 5u);
    EXPECT_EQ(snap.watermark_of("node-b"), 4u);
    EXPECT_EQ(a->durable_upto(5), 5u);
  }
  std::multiset<std::pair<std::string, log_offset>> want;
  for (log_offset o = 1; o <= 5; ++o)
    want.emplace("node-a", o);
  for (log_offset o = 1; o <= 4; ++o)
    want.emplace("node-b", o);
  EXPECT_EQ(offsets_by_writer(), want);
  // Both restart and replay their logs from 1: each skips only what its own files hold.
  auto a = make(ca);
  auto b = make(cb);
  write_ok(*a, plays(6, now_ts, 1)); // 1..5 replayed, 6 new
  write_ok(*b, plays(4, now_ts, 1, R"(,"codec":"b")"));
  flush_ok(*a);
  flush_ok(*b);
  want.emplace("node-a", 6);
  EXPECT_EQ(offsets_by_writer(), want) << "nothing doubled, nothing lost";
}

TEST_F(lake_concurrent_test, a_second_process_with_the_same_node_name_is_refused_by_the_writer_lease) {
  auto first = make(writer_config("node-a"));
  auto cfg = writer_config("node-a");
  cfg.staging_dir = dir.sub("other-data-dir-staging"); // not the same data dir: no flock conflict
  lake_sink second{cfg, [this] { return clock; }};
  std::string error;
  EXPECT_EQ(second.start(error), sink_status::retry);
  EXPECT_NE(error.find("node names (sluice.node) must be unique"), std::string::npos) << error;
  // Once the first stops (its lease released), the name is free.
  first.reset();
  EXPECT_EQ(second.start(error), sink_status::ok) << error;
  // And a lease nobody renewed within writer-lease is taken over.
  write_ok(second, plays(1, now_ts, 1));
  lake_sink third{writer_config("node-a"), [this] { return clock; }};
  EXPECT_EQ(third.start(error), sink_status::retry);
  clock += 31 * 1000;
  EXPECT_EQ(third.start(error), sink_status::ok) << error;
  // The old holder notices before it commits: its flush is refused, its rows stay buffered.
  EXPECT_EQ(second.flush(true, error), sink_status::retry);
  EXPECT_NE(error.find("must be unique"), std::string::npos) << error;
  EXPECT_EQ(second.buffered_rows(), 1u);
}

TEST_F(lake_concurrent_test, writers_committing_in_parallel_threads_lose_no_commit_and_overwrite_no_snapshot) {
  // Real races: each thread is a writer with its own store instance on the same directory.
  constexpr int writers = 4;
  constexpr int commits_each = 50;
  std::vector<commit_stats> stats(writers);
  auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      auto s = open_local(dir.sub("lake"));
      commit_policy policy;
      policy.max_attempts = 1000; // never give up here: the test counts lost races
      table t{*s, "events", fmt::format("node-{}", w), policy};
      for (int i = 1; i <= commits_each; ++i)
        t.commit({make_file(p10, static_cast<log_offset>(i), static_cast<log_offset>(i))}, {}, {},
                 static_cast<log_offset>(i), now_ts);
      stats[w] = t.stats();
    });
  for (auto& t : threads)
    t.join();
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  uint64_t conflicts = 0;
  for (auto& s : stats) {
    EXPECT_EQ(s.commits, static_cast<uint64_t>(commits_each));
    conflicts += s.conflicts;
  }
  auto snap = current();
  EXPECT_EQ(snap.id, static_cast<uint64_t>(writers * commits_each)) << "dense, none overwritten";
  EXPECT_EQ(snap.files.size(), static_cast<size_t>(writers * commits_each)) << "no file lost";
  for (int w = 0; w < writers; ++w)
    EXPECT_EQ(snap.watermark_of(fmt::format("node-{}", w)), static_cast<log_offset>(commits_each));
  std::cout << fmt::format("[ figures  ] {} writers x {} commits on one local table: {} ms, {} lost "
                           "races (each reloaded and retried)\n",
                           writers, commits_each, elapsed_ms, conflicts);
}
