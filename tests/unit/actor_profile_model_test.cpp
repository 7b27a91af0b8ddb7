// Watch time and continue watching of profile_model (docs/profiles.md), including an independent
// re-implementation of the documented formula that every arrival order must match.

#include "actor_fixture.hpp"

#include "actors/catalog.hpp"
#include "actors/profile_model.hpp"
#include "messages/codec.hpp"

#include <algorithm>
#include <map>
#include <random>

using namespace sluice;
using namespace sluice::testing;

namespace {

constexpr int64_t sec = 1000;
// 2024-11-22T00:00:00Z
constexpr int64_t day0 = 1732233600000;

struct builder {
  log_offset next = 1;
  event operator()(std::string type, int64_t ts, std::string title, int64_t pos,
                   int64_t duration = 0) {
    auto e = make_event("e" + std::to_string(next), std::move(type), "d", "p", ts);
    e.offset = next++;
    e.attrs = playback_attrs(title, pos, duration);
    return e;
  }
};

// The formula of docs/profiles.md, written straight from the doc: dedupe, sort, sum pairs.
std::map<std::pair<std::string, int32_t>, int64_t>
reference(const std::vector<event>& events, int64_t timeout = 90 * sec, int64_t tol = 10 * sec) {
  struct pt {
    int64_t ts;
    int rank;
    int64_t pos;
    bool operator<(const pt& o) const {
      return std::tie(ts, rank, pos) < std::tie(o.ts, o.rank, o.pos);
    }
    bool operator==(const pt& o) const {
      return ts == o.ts && rank == o.rank && pos == o.pos;
    }
  };
  std::map<std::string, int> ranks{{"play", 0}, {"heartbeat", 1}, {"pause", 2}, {"stop", 3}};
  std::map<std::string, std::vector<pt>> by_title;
  for (auto& e : events) {
    auto title = find_attr(e.attrs, "title_id");
    auto pos = find_attr(e.attrs, "position_ms");
    by_title[std::string{title->s}].push_back({e.ts, ranks.at(e.type), std::max<int64_t>(0, pos->i)});
  }
  std::map<std::pair<std::string, int32_t>, int64_t> out;
  for (auto& [title, list] : by_title) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    for (size_t i = 0; i + 1 < list.size(); ++i) {
      auto& a = list[i];
      auto& b = list[i + 1];
      auto dt = b.ts - a.ts;
      auto dp = b.pos - a.pos;
      if (a.rank <= 1 && dt <= timeout && std::llabs(dp - dt) <= tol && dt > 0)
        out[{title, utc_day(a.ts)}] += dt;
    }
  }
  return out;
}

std::map<std::pair<std::string, int32_t>, int64_t> actual(const profile_model& m) {
  std::map<std::pair<std::string, int32_t>, int64_t> out;
  for (auto& [day, titles] : m.watch_days())
    for (auto& [title, ms] : titles)
      out[{title, day}] = ms;
  return out;
}

} // namespace

TEST(profile_watch_time, play_heartbeat_pause_counts_the_playing_intervals_only) {
  builder b;
  profile_model m;
  m.apply({b("play", day0, "t", 0), b("heartbeat", day0 + 30 * sec, "t", 30 * sec),
           b("pause", day0 + 50 * sec, "t", 50 * sec),
           // paused for 70 s: not watching
           b("play", day0 + 120 * sec, "t", 50 * sec),
           b("stop", day0 + 150 * sec, "t", 80 * sec)});
  EXPECT_EQ(m.watch_ms("t", utc_day(day0)), 80 * sec);
}

TEST(profile_watch_time, a_missing_stop_ends_the_session_at_its_last_event) {
  builder b;
  profile_model m;
  m.apply({b("play", day0, "t", 0), b("heartbeat", day0 + 30 * sec, "t", 30 * sec),
           b("heartbeat", day0 + 60 * sec, "t", 60 * sec)});
  EXPECT_EQ(m.watch_ms("t"), 60 * sec) << "the open interval after the last heartbeat counts 0";
  // The app died; the next session resumes an hour later: the gap is longer than the timeout.
  m.apply({b("play", day0 + 3600 * sec, "t", 60 * sec),
           b("heartbeat", day0 + 3630 * sec, "t", 90 * sec)});
  EXPECT_EQ(m.watch_ms("t"), 90 * sec);
  // Exactly the timeout still counts; one millisecond more does not.
  m.apply({b("heartbeat", day0 + 3720 * sec, "t", 180 * sec),
           b("heartbeat", day0 + 3810 * sec + 1, "t", 270 * sec + 1)});
  EXPECT_EQ(m.watch_ms("t"), 180 * sec);
}

TEST(profile_watch_time, a_seek_forward_or_backward_is_not_watching) {
  builder b;
  profile_model m;
  m.apply({b("play", day0, "t", 0),
           b("heartbeat", day0 + 30 * sec, "t", 600 * sec),  // seek forward inside: 0
           b("heartbeat", day0 + 60 * sec, "t", 630 * sec),  // 30 s
           b("heartbeat", day0 + 90 * sec, "t", 100 * sec),  // seek backward: 0
           b("heartbeat", day0 + 120 * sec, "t", 140 * sec), // +40 s position in 30 s: 10 s off, counts
           b("heartbeat", day0 + 150 * sec, "t", 181 * sec)}); // 11 s off: a seek
  EXPECT_EQ(m.watch_ms("t"), 60 * sec);
}

TEST(profile_watch_time, an_interval_counts_on_the_utc_day_it_starts) {
  builder b;
  profile_model m;
  auto midnight = day0 + 86'400 * sec;
  m.apply({b("play", midnight - 20 * sec, "t", 0), b("heartbeat", midnight + 10 * sec, "t", 30 * sec),
           b("heartbeat", midnight + 40 * sec, "t", 60 * sec)});
  EXPECT_EQ(m.watch_ms("t", utc_day(day0)), 30 * sec);
  EXPECT_EQ(m.watch_ms("t", utc_day(midnight)), 30 * sec);
}

TEST(profile_watch_time, duplicates_count_once_even_after_later_events_and_with_new_ids) {
  builder b;
  profile_model m;
  auto play = b("play", day0, "t", 0);
  auto pause = b("pause", day0 + 20 * sec, "t", 20 * sec);
  auto resume = b("play", day0 + 21 * sec, "t", 20 * sec);
  auto hb = b("heartbeat", day0 + 51 * sec, "t", 50 * sec);
  m.apply({play, pause, resume, hb});
  EXPECT_EQ(m.watch_ms("t"), 50 * sec);
  // Resent with other ids and offsets, after everything: nothing changes (a pause counted again
  // would split the interval after the resume).
  auto pause2 = b("pause", day0 + 20 * sec, "t", 20 * sec);
  auto play2 = b("play", day0, "t", 0);
  EXPECT_TRUE(m.apply({pause2, play2}));
  EXPECT_EQ(m.watch_ms("t"), 50 * sec);
}

TEST(profile_watch_time, at_the_same_millisecond_a_pause_orders_after_a_play) {
  builder b;
  profile_model m;
  // Whatever the arrival order: play@20 < pause@20, so the title is paused after t=20 s.
  m.apply({b("play", day0, "t", 0), b("play", day0 + 20 * sec, "t", 20 * sec),
           b("heartbeat", day0 + 50 * sec, "t", 50 * sec)});
  EXPECT_EQ(m.watch_ms("t"), 50 * sec);
  m.apply({b("pause", day0 + 20 * sec, "t", 20 * sec)});
  EXPECT_EQ(m.watch_ms("t"), 20 * sec);
  EXPECT_EQ(m.titles().at("t").last_event(), "heartbeat");
}

TEST(profile_watch_time, a_late_event_adjusts_its_neighbours) {
  builder b;
  profile_model m;
  m.apply({b("play", day0, "t", 0), b("heartbeat", day0 + 60 * sec, "t", 60 * sec)});
  EXPECT_EQ(m.watch_ms("t"), 60 * sec);
  // A pause in between arrives late: the 60 s interval becomes 25 s watching + paused.
  m.apply({b("pause", day0 + 25 * sec, "t", 25 * sec)});
  EXPECT_EQ(m.watch_ms("t"), 25 * sec);
  // A late heartbeat that reveals a seek in the first part.
  m.apply({b("heartbeat", day0 + 10 * sec, "t", 500 * sec)});
  EXPECT_EQ(m.watch_ms("t"), 0);
}

TEST(profile_watch_time, every_arrival_order_within_the_horizon_matches_the_documented_formula) {
  std::mt19937_64 rng{42};
  const char* types[] = {"play", "heartbeat", "heartbeat", "heartbeat", "pause", "stop"};
  for (int trial = 0; trial < 40; ++trial) {
    builder b;
    std::vector<event> events;
    for (int title = 0; title < 3; ++title) {
      int64_t ts = day0 + 86'400 * sec - 600 * sec + title * 7 * sec; // across midnight
      int64_t pos = 0;
      for (int i = 0; i < 30; ++i) {
        auto type = types[rng() % 6];
        auto step = static_cast<int64_t>(rng() % 4 == 0 ? rng() % 200 : 25 + rng() % 10) * sec;
        ts += step;
        pos += rng() % 8 == 0 ? static_cast<int64_t>(rng() % 1000) * sec - 500 * sec : step;
        pos = std::max<int64_t>(pos, 0);
        events.push_back(b(type, ts, "t" + std::to_string(title), pos));
        if (rng() % 6 == 0) { // a duplicate
          auto dup = events.back();
          dup.id += "-dup";
          events.push_back(dup);
        }
      }
    }
    auto want = reference(events);
    // Arrival order: shuffled, then offsets assigned in that order.
    std::shuffle(events.begin(), events.end(), rng);
    for (size_t i = 0; i < events.size(); ++i)
      events[i].offset = i + 1;
    profile_options opts;
    opts.reorder_horizon_ms = 24 * 3600 * sec; // every event is within the horizon
    profile_model m{opts};
    // In batches of various sizes, through encode/decode now and then (as after a restart).
    for (size_t i = 0; i < events.size();) {
      auto n = std::min<size_t>(events.size() - i, 1 + rng() % 7);
      m.apply(event_batch(events.begin() + i, events.begin() + i + n));
      i += n;
      if (rng() % 4 == 0) {
        profile_model restored{opts};
        ASSERT_TRUE(restored.decode(m.encode()));
        m = restored;
      }
    }
    ASSERT_EQ(actual(m), want) << "trial " << trial;
    EXPECT_EQ(m.late_events(), 0u);
  }
}

TEST(profile_watch_time, an_event_beyond_the_reorder_horizon_is_counted_late_and_not_watched) {
  builder b;
  profile_options opts;
  opts.reorder_horizon_ms = 600 * sec;
  profile_model m{opts};
  m.apply({b("play", day0, "a", 0), b("heartbeat", day0 + 30 * sec, "a", 30 * sec),
           b("play", day0 + 3600 * sec, "b", 0)});
  // Newest is day0+3600 s; a heartbeat of "a" at +60 s is 3540 s behind: too late.
  m.apply({b("heartbeat", day0 + 60 * sec, "a", 60 * sec)});
  EXPECT_EQ(m.late_events(), 1u);
  EXPECT_EQ(m.watch_ms("a"), 30 * sec);
  // Continue watching has no horizon: the late event is the newest of "a".
  EXPECT_EQ(m.titles().at("a").position_ms, 60 * sec);
  // Within the horizon (behind by 500 s): exact.
  m.apply({b("heartbeat", day0 + 3100 * sec, "b", 0), b("heartbeat", day0 + 3130 * sec, "b", 30 * sec)});
  EXPECT_EQ(m.late_events(), 1u);
  EXPECT_EQ(m.watch_ms("b"), 30 * sec);
}

TEST(profile_watch_time, recent_events_stay_bounded_by_the_horizon) {
  builder b;
  profile_options opts;
  opts.reorder_horizon_ms = 300 * sec;
  profile_model m{opts};
  int64_t ts = day0;
  for (int i = 0; i < 2000; ++i, ts += 30 * sec)
    m.apply({b(i == 0 ? "play" : "heartbeat", ts, "t", ts - day0)});
  EXPECT_LE(m.titles().at("t").recent.size(), 300 / 30 + 2u);
  EXPECT_EQ(m.watch_ms("t"), 1999 * 30 * sec);
  // A late event just inside the horizon still finds its neighbours.
  auto last = ts - 30 * sec;
  m.apply({b("pause", last - 285 * sec, "t", last - 285 * sec - day0)});
  EXPECT_EQ(m.watch_ms("t"), 1999 * 30 * sec - 15 * sec);
}

TEST(profile_watch_time, watch_time_json_filters_days_and_totals_titles) {
  builder b;
  profile_model m;
  auto d1 = day0 + 86'400 * sec;
  m.apply({b("play", day0, "t-1", 0), b("stop", day0 + 30 * sec, "t-1", 30 * sec),
           b("play", d1, "t-1", 30 * sec), b("stop", d1 + 20 * sec, "t-1", 50 * sec),
           b("play", d1, "zz", 0), b("pause", d1 + 5 * sec, "zz", 5 * sec)});
  std::string err;
  auto cat = catalog::parse("id,name,genres,duration\nt-1,The One,Drama,1h\n", err);
  ASSERT_TRUE(cat) << err;
  auto all = m.watch_time_json("p", std::nullopt, std::nullopt, cat.get());
  EXPECT_EQ(all, "{\"profile_id\":\"p\",\"from\":\"2024-10-25\",\"to\":\"2024-11-23\","
                 "\"total_ms\":55000,\"titles\":[{\"title_id\":\"t-1\",\"name\":\"The One\","
                 "\"watch_ms\":50000},{\"title_id\":\"zz\",\"watch_ms\":5000}],\"days\":["
                 "{\"date\":\"2024-11-22\",\"total_ms\":30000,\"titles\":[{\"title_id\":\"t-1\","
                 "\"name\":\"The One\",\"watch_ms\":30000}]},"
                 "{\"date\":\"2024-11-23\",\"total_ms\":25000,\"titles\":[{\"title_id\":\"t-1\","
                 "\"name\":\"The One\",\"watch_ms\":20000},{\"title_id\":\"zz\",\"watch_ms\":5000}]}]}");
  auto one = m.watch_time_json("p", parse_utc_day("2024-11-23"), parse_utc_day("2024-11-23"));
  EXPECT_NE(one.find("\"total_ms\":25000,"), std::string::npos) << one;
  EXPECT_EQ(one.find("2024-11-22"), std::string::npos) << one;
  auto from_only = m.watch_time_json("p", parse_utc_day("2024-11-23"), std::nullopt);
  EXPECT_NE(from_only.find("\"from\":\"2024-11-23\",\"to\":\"2024-11-23\""), std::string::npos)
    << from_only;
}

TEST(profile_dates, utc_days_parse_format_and_reject_impossible_dates) {
  EXPECT_EQ(format_utc_day(utc_day(day0)), "2024-11-22");
  EXPECT_EQ(utc_day(-1), -1);
  EXPECT_EQ(parse_utc_day("2024-11-22"), utc_day(day0));
  EXPECT_EQ(parse_utc_day("2024-02-29"), utc_day(1709164800000));
  EXPECT_FALSE(parse_utc_day("2023-02-29"));
  EXPECT_FALSE(parse_utc_day("2024-13-01"));
  EXPECT_FALSE(parse_utc_day("2024-1-01"));
  EXPECT_FALSE(parse_utc_day("2024-11-22T00"));
  EXPECT_FALSE(parse_utc_day("yesterday!"));
}

TEST(profile_continue_watching, most_recent_first_with_names_and_catalog_durations) {
  builder b;
  profile_model m;
  std::string err;
  auto cat = catalog::parse("id,name,genres,duration\nt-1,First,Drama,100\nt-2,Second,,100\n", err);
  ASSERT_TRUE(cat) << err;
  m.apply({b("play", day0, "t-1", 0), b("pause", day0 + 10 * sec, "t-1", 10 * sec),
           b("play", day0 + 5 * sec, "t-2", 0, 999'999),
           // not in the catalog: the event's duration decides
           b("pause", day0 + 20 * sec, "x", 90 * sec, 100 * sec)});
  auto json = m.continue_watching_json("p", cat.get());
  auto item = [](const char* id, int64_t pos, int64_t ts, const char* last, const char* name) {
    std::string out = std::string{"{\"title_id\":\""} + id + "\",\"position_ms\":"
                      + std::to_string(pos) + ",\"duration_ms\":100000,\"updated_ts\":"
                      + std::to_string(ts) + ",\"last_event\":\"" + last + "\"";
    if (name != nullptr)
      out += std::string{",\"name\":\""} + name + "\"";
    return out + "}";
  };
  EXPECT_EQ(json, "{\"profile_id\":\"p\",\"items\":["
                    + item("x", 90 * sec, day0 + 20 * sec, "pause", nullptr) + ","
                    + item("t-1", 10 * sec, day0 + 10 * sec, "pause", "First") + ","
                    + item("t-2", 0, day0 + 5 * sec, "play", "Second") + "]}");
}

TEST(profile_continue_watching, completed_titles_leave_and_a_rewatch_brings_them_back) {
  builder b;
  profile_model m;
  std::string err;
  auto cat = catalog::parse("id,name,genres,duration\nt-1,First,Drama,100\n", err);
  ASSERT_TRUE(cat) << err;
  m.apply({b("play", day0, "t-1", 0), b("stop", day0 + 96 * sec, "t-1", 96 * sec)});
  EXPECT_EQ(m.continue_watching_json("p", cat.get()).find("t-1"), std::string::npos);
  // Without the catalog the duration is unknown: never completed.
  EXPECT_NE(m.continue_watching_json("p").find("t-1"), std::string::npos);
  // An older event arriving late does not bring it back; a newer one (a rewatch) does.
  m.apply({b("heartbeat", day0 + 50 * sec, "t-1", 50 * sec)});
  EXPECT_EQ(m.continue_watching_json("p", cat.get()).find("t-1"), std::string::npos);
  m.apply({b("play", day0 + 3600 * sec, "t-1", 0)});
  EXPECT_NE(m.continue_watching_json("p", cat.get()).find("t-1"), std::string::npos);
}

TEST(profile_continue_watching, the_least_recent_titles_are_forgotten_beyond_max_titles) {
  builder b;
  profile_options opts;
  opts.max_titles = 2;
  profile_model m{opts};
  m.apply({b("play", day0 + 3 * sec, "a", 0), b("play", day0 + 1 * sec, "b", 0),
           b("play", day0 + 2 * sec, "c", 0)});
  ASSERT_EQ(m.titles().size(), 2u);
  EXPECT_EQ(m.titles().count("b"), 0u);
}

TEST(profile_state, replayed_offsets_are_skipped_and_an_old_format_is_refused) {
  builder b;
  profile_model m;
  m.apply({b("play", day0, "t", 0), b("heartbeat", day0 + 30 * sec, "t", 30 * sec)});
  profile_model restored;
  ASSERT_TRUE(restored.decode(m.encode()));
  EXPECT_EQ(restored.watch_ms("t"), 30 * sec);
  auto again = b("heartbeat", day0 + 60 * sec, "t", 60 * sec);
  again.offset = 2; // already applied offsets: a replay after a restart
  EXPECT_FALSE(restored.apply({again}));
  EXPECT_EQ(restored.watch_ms("t"), 30 * sec);
  // The layout before watch time ([applied_upto, events, titles]) is not misread.
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::make_tuple(uint64_t{7}, uint64_t{7}, std::map<std::string, int>{}));
  EXPECT_FALSE(restored.decode(std::string_view{buf.data(), buf.size()}));
}

TEST(profile_state, playback_events_without_title_or_position_are_counted_and_ignored) {
  counter invalid;
  profile_options opts;
  opts.invalid_playback = &invalid;
  profile_model m{opts};
  auto no_position = make_event("x1", "play", "d", "p", day0);
  no_position.offset = 1;
  auto billing = make_event("x2", "billing", "d", "p", day0);
  billing.offset = 2;
  EXPECT_TRUE(m.apply({no_position, billing}));
  EXPECT_EQ(invalid.value(), 1u) << "billing is not a playback event";
  EXPECT_TRUE(m.titles().empty());
}
