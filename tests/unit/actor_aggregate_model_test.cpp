// The aggregate model (plain C++): trending window and watermark, popular genres, co-watch,
// checkpoint entries and restore.

#include "actor_fixture.hpp"

#include "actors/aggregate_model.hpp"
#include "actors/catalog.hpp"

using namespace sluice;
using namespace sluice::testing;

namespace sluice {
// Readable failures: `t1:2` instead of object bytes.
void PrintTo(const ranked& r, std::ostream* os) {
  *os << r.id << ':' << r.score;
}
} // namespace sluice

namespace {

constexpr int64_t minute = 60'000;
constexpr int64_t day_ms = 86'400'000;
// A fixed UTC midnight (2024-11-22) so days are easy to name.
constexpr int64_t t0 = 1'732'233'600'000;

std::shared_ptr<const catalog> test_catalog() {
  std::string err;
  auto cat = catalog::parse("id,name,genres,duration\n"
                            "t1,One,Drama|Crime,100s\n"
                            "t2,Two,Drama,100s\n"
                            "t3,Three,Comedy,100s\n"
                            "t4,Four,,100s\n",
                            err);
  EXPECT_TRUE(cat) << err;
  return cat;
}

struct aggregate_model_test : ::testing::Test {
  std::shared_ptr<const catalog> cat = test_catalog();
  aggregate_options opts;
  log_offset next = 1;

  aggregate_model_test() {
    opts.window_ms = 60 * minute;
    opts.bucket_ms = minute;
    opts.allowed_lateness_ms = 5 * minute;
  }

  event ev(const std::string& profile, const std::string& title, int64_t ts,
           int64_t position = 0, const std::string& type = "heartbeat") {
    auto e = make_event("e" + std::to_string(next), type, "dev", profile, ts);
    e.offset = next++;
    e.attrs = playback_attrs(title, position);
    return e;
  }
};

std::vector<ranked> items(std::initializer_list<std::pair<const char*, uint64_t>> xs) {
  std::vector<ranked> out;
  for (auto& [id, n] : xs)
    out.push_back({id, n});
  return out;
}

TEST_F(aggregate_model_test, trending_counts_distinct_profiles_per_title_and_breaks_ties_by_title_id) {
  aggregate_model m{opts};
  for (auto& [p, t] : std::vector<std::pair<std::string, std::string>>{
         {"p1", "t2"}, {"p1", "t2"}, {"p2", "t2"}, {"p1", "t1"}, {"p3", "t1"}, {"p3", "t3"}})
    EXPECT_EQ(m.apply(ev(p, t, t0 + minute), *cat), apply_outcome::counted);
  EXPECT_EQ(m.trending(opts.window_ms, 10), items({{"t1", 2}, {"t2", 2}, {"t3", 1}}));
  EXPECT_EQ(m.trending(opts.window_ms, 1), items({{"t1", 2}}));
}

TEST_F(aggregate_model_test, only_playback_events_with_a_profile_and_a_catalog_title_count) {
  aggregate_model m{opts};
  EXPECT_EQ(m.apply(ev("p1", "t1", t0, 0, "click"), *cat), apply_outcome::ignored);
  EXPECT_EQ(m.apply(ev("", "t1", t0), *cat), apply_outcome::ignored);
  EXPECT_EQ(m.apply(ev("p1", "nope", t0), *cat), apply_outcome::unknown_title);
  EXPECT_FALSE(m.has_events());
  for (auto type : {"play", "pause", "stop", "heartbeat"})
    EXPECT_EQ(m.apply(ev(std::string{"p-"} + type, "t1", t0, 0, type), *cat),
              apply_outcome::counted);
  EXPECT_EQ(m.trending(opts.window_ms, 10), items({{"t1", 4}}));
}

TEST_F(aggregate_model_test, the_watermark_trails_the_newest_event_time_and_closed_buckets_take_no_events) {
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0 + 30 * minute), *cat);
  EXPECT_EQ(m.watermark(), t0 + 25 * minute);
  // Out of order but within the allowed lateness: counted.
  EXPECT_EQ(m.apply(ev("p2", "t1", t0 + 25 * minute + 1), *cat), apply_outcome::counted);
  // Its bucket [24min, 25min) ended at the watermark: late, excluded.
  EXPECT_EQ(m.apply(ev("p3", "t1", t0 + 24 * minute + 59'999), *cat), apply_outcome::late);
  EXPECT_EQ(m.trending(opts.window_ms, 10), items({{"t1", 2}}));
  // The watermark only moves forward: an older event does not pull it back.
  m.apply(ev("p4", "t2", t0 + 26 * minute), *cat);
  EXPECT_EQ(m.watermark(), t0 + 25 * minute);
  m.apply(ev("p4", "t2", t0 + 40 * minute), *cat);
  EXPECT_EQ(m.watermark(), t0 + 35 * minute);
  EXPECT_EQ(m.apply(ev("p5", "t2", t0 + 30 * minute), *cat), apply_outcome::late);
}

TEST_F(aggregate_model_test, a_late_event_still_counts_for_genres_and_completions) {
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0 + 30 * minute), *cat);
  EXPECT_EQ(m.apply(ev("p2", "t3", t0 + minute, 100'000), *cat), apply_outcome::late);
  EXPECT_EQ(m.apply(ev("p2", "t2", t0 + minute, 100'000), *cat), apply_outcome::late);
  EXPECT_EQ(m.popular_genres(utc_day_number(t0), 10), items({{"Drama", 2}, {"Comedy", 1}, {"Crime", 1}}));
  EXPECT_EQ(m.also_watched("t3", 5), items({{"t2", 1}}));
  EXPECT_EQ(m.trending(opts.window_ms, 10), items({{"t1", 1}}));
}

TEST_F(aggregate_model_test, the_window_slides_with_event_time_and_old_buckets_are_evicted) {
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0), *cat);
  m.apply(ev("p2", "t1", t0 + 50 * minute), *cat);
  m.apply(ev("p3", "t2", t0 + 55 * minute), *cat);
  EXPECT_EQ(m.trending(60 * minute, 10), items({{"t1", 2}, {"t2", 1}}));
  EXPECT_EQ(m.trending(15 * minute, 10), items({{"t1", 1}, {"t2", 1}}));
  EXPECT_EQ(m.trending(minute, 10), items({{"t2", 1}}));
  EXPECT_EQ(m.trending_entries(), 3u);
  // 60 buckets end with the bucket of 60min: the bucket of t0 falls out and is evicted.
  m.apply(ev("p3", "t3", t0 + 60 * minute), *cat);
  EXPECT_EQ(m.trending(60 * minute, 10), items({{"t1", 1}, {"t2", 1}, {"t3", 1}}));
  EXPECT_EQ(m.trending_entries(), 3u);
  aggregate_dirty taken;
  auto entries = m.collect(taken);
  EXPECT_EQ(taken.trending.count({"t1", "p1"}), 1u);
  size_t deletes = 0;
  for (auto& [k, v] : entries)
    deletes += v.empty();
  EXPECT_EQ(deletes, 1u) << "the evicted (t1, p1) entry is deleted from LMDB";
}

TEST_F(aggregate_model_test, a_profile_seen_again_moves_to_its_newest_bucket_and_is_counted_once) {
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0 + 10 * minute), *cat);
  m.apply(ev("p1", "t1", t0 + 40 * minute), *cat);
  m.apply(ev("p1", "t1", t0 + 38 * minute), *cat); // older, within lateness: no change
  EXPECT_EQ(m.trending(60 * minute, 10), items({{"t1", 1}}));
  EXPECT_EQ(m.trending(5 * minute, 10), items({{"t1", 1}}));
  EXPECT_EQ(m.trending_entries(), 1u);
}

TEST_F(aggregate_model_test, duplicates_of_an_event_change_nothing) {
  aggregate_model a{opts};
  aggregate_model b{opts};
  std::vector<event> evs{ev("p1", "t1", t0, 100'000), ev("p1", "t2", t0 + minute, 100'000),
                         ev("p2", "t2", t0 + 2 * minute, 100'000), ev("p2", "t1", t0, 10)};
  for (auto& e : evs)
    a.apply(e, *cat);
  for (auto& e : evs) {
    b.apply(e, *cat);
    b.apply(e, *cat);
  }
  for (auto& e : evs)
    b.apply(e, *cat); // resent later (some are late now): still nothing counted twice
  EXPECT_EQ(a.trending(opts.window_ms, 10), b.trending(opts.window_ms, 10));
  EXPECT_EQ(a.popular_genres(utc_day_number(t0), 10), b.popular_genres(utc_day_number(t0), 10));
  EXPECT_EQ(a.also_watched("t1", 10), b.also_watched("t1", 10));
  EXPECT_EQ(b.also_watched("t1", 10), items({{"t2", 1}}));
}

TEST_F(aggregate_model_test, popular_genres_count_distinct_profiles_per_utc_day) {
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0 + 1), *cat);          // Drama, Crime
  m.apply(ev("p1", "t2", t0 + 2), *cat);          // Drama again: same profile
  m.apply(ev("p2", "t3", t0 + 3), *cat);          // Comedy
  m.apply(ev("p3", "t4", t0 + 4), *cat);          // no genres
  m.apply(ev("p2", "t2", t0 + day_ms + 5), *cat); // next day
  EXPECT_EQ(m.popular_genres(utc_day_number(t0), 10), items({{"Comedy", 1}, {"Crime", 1}, {"Drama", 1}}));
  EXPECT_EQ(m.popular_genres(utc_day_number(t0) + 1, 10), items({{"Drama", 1}}));
  EXPECT_TRUE(m.popular_genres(utc_day_number(t0) - 1, 10).empty());
}

TEST_F(aggregate_model_test, days_older_than_the_retention_are_evicted) {
  opts.genre_days = 2;
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0), *cat);
  m.apply(ev("p1", "t1", t0 + day_ms), *cat);
  EXPECT_EQ(m.popular_genres(utc_day_number(t0), 10).size(), 2u);
  m.apply(ev("p1", "t3", t0 + 2 * day_ms), *cat);
  EXPECT_TRUE(m.popular_genres(utc_day_number(t0), 10).empty());
  EXPECT_EQ(m.popular_genres(utc_day_number(t0) + 1, 10).size(), 2u);
}

TEST_F(aggregate_model_test, co_watch_counts_profiles_that_completed_both_titles) {
  aggregate_model m{opts};
  // Completed: position >= 0.95 * 100 s.
  m.apply(ev("p1", "t1", t0, 95'000), *cat);
  m.apply(ev("p1", "t2", t0, 99'000), *cat);
  m.apply(ev("p1", "t3", t0, 50'000), *cat); // in progress: no co-occurrence
  m.apply(ev("p2", "t1", t0, 100'000), *cat);
  m.apply(ev("p2", "t3", t0, 100'000), *cat);
  m.apply(ev("p3", "t2", t0, 100'000), *cat);
  m.apply(ev("p3", "t1", t0, 100'000), *cat);
  EXPECT_EQ(m.also_watched("t1", 5), items({{"t2", 2}, {"t3", 1}}));
  EXPECT_EQ(m.also_watched("t2", 5), items({{"t1", 2}}));
  EXPECT_EQ(m.also_watched("t1", 1), items({{"t2", 2}}));
  EXPECT_TRUE(m.also_watched("t4", 5).empty());
}

TEST_F(aggregate_model_test, a_profile_remembers_only_its_most_recent_completions) {
  opts.max_completions = 2;
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0, 100'000), *cat);
  m.apply(ev("p1", "t2", t0, 100'000), *cat);
  m.apply(ev("p1", "t3", t0, 100'000), *cat); // pairs with t1 and t2, then t1 is forgotten
  m.apply(ev("p1", "t4", t0, 100'000), *cat); // pairs with t2 and t3 only
  EXPECT_EQ(m.also_watched("t4", 5), items({{"t2", 1}, {"t3", 1}}));
  EXPECT_EQ(m.also_watched("t1", 5), items({{"t2", 1}, {"t3", 1}}));
  m.apply(ev("p1", "t4", t0, 100'000), *cat); // still remembered: nothing changes
  EXPECT_EQ(m.also_watched("t4", 5), items({{"t2", 1}, {"t3", 1}}));
  m.apply(ev("p1", "t2", t0, 100'000), *cat); // forgotten meanwhile: pairs again (the bound)
  EXPECT_EQ(m.also_watched("t2", 5), items({{"t3", 2}, {"t4", 2}, {"t1", 1}}));
}

TEST_F(aggregate_model_test, co_watch_keeps_at_most_max_neighbors_per_title) {
  opts.max_neighbors = 1;
  opts.top_n = 1;
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0, 100'000), *cat);
  m.apply(ev("p1", "t2", t0, 100'000), *cat);
  m.apply(ev("p2", "t1", t0, 100'000), *cat);
  m.apply(ev("p2", "t3", t0, 100'000), *cat); // t1: {t2:1, t3:1} → t3 (larger id) dropped
  EXPECT_EQ(m.also_watched("t1", 5), items({{"t2", 1}}));
  EXPECT_EQ(m.pair_count(), 3u);
}

TEST_F(aggregate_model_test, stored_entries_restore_the_same_answers) {
  aggregate_model m{opts};
  for (int i = 0; i < 200; ++i)
    m.apply(ev("p" + std::to_string(i % 17), "t" + std::to_string(1 + i % 4),
               t0 + (i % 50) * minute + i, (i % 3 == 0) ? 100'000 : 1000),
            *cat);
  // What a checkpoint writes, applied to a map standing in for LMDB (empty value deletes).
  std::map<std::string, std::string> stored;
  auto write = [&](aggregate_model& model) {
    aggregate_dirty taken;
    for (auto& [k, v] : model.collect(taken))
      if (v.empty())
        stored.erase(k);
      else
        stored[k] = v;
  };
  write(m);
  m.apply(ev("p1", "t1", t0 + 70 * minute), *cat); // evicts, then checkpoint again
  write(m);
  aggregate_model r{opts};
  for (auto& [k, v] : stored)
    EXPECT_TRUE(r.load(k, v));
  r.finish_load();
  EXPECT_EQ(r.max_event_ts(), m.max_event_ts());
  EXPECT_EQ(r.trending_entries(), m.trending_entries());
  for (int64_t w : {minute, 15 * minute, 60 * minute})
    EXPECT_EQ(r.trending(w, 10), m.trending(w, 10));
  EXPECT_EQ(r.popular_genres(utc_day_number(t0), 10), m.popular_genres(utc_day_number(t0), 10));
  for (auto t : {"t1", "t2", "t3", "t4"})
    EXPECT_EQ(r.also_watched(t, 10), m.also_watched(t, 10));
  EXPECT_TRUE(r.cowatch_ok());
  EXPECT_FALSE(r.dirty());
}

TEST_F(aggregate_model_test, a_failed_checkpoint_requeues_its_keys) {
  aggregate_model m{opts};
  m.apply(ev("p1", "t1", t0, 100'000), *cat);
  aggregate_dirty taken;
  auto first = m.collect(taken);
  EXPECT_FALSE(m.dirty());
  m.requeue(std::move(taken));
  EXPECT_TRUE(m.dirty());
  aggregate_dirty again;
  EXPECT_EQ(m.collect(again), first);
}

TEST_F(aggregate_model_test, an_unreadable_co_watch_entry_marks_co_watch_unusable) {
  aggregate_model m{opts};
  EXPECT_FALSE(m.load("c\xa2t1", "junk"));
  m.finish_load();
  EXPECT_FALSE(m.cowatch_ok());
}

TEST_F(aggregate_model_test, options_are_validated) {
  aggregate_options o;
  EXPECT_EQ(o.validate(), "");
  o.allowed_lateness_ms = o.window_ms;
  EXPECT_NE(o.validate().find("trending.allowed-lateness"), std::string::npos);
  o = {};
  o.window_ms = 90'500;
  EXPECT_NE(o.validate().find("trending.window"), std::string::npos);
}

} // namespace
