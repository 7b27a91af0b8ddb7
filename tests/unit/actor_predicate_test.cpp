#include "actor_fixture.hpp"
#include "actors/predicate.hpp"
#include "actors/profile_model.hpp"
#include "actors/device_model.hpp"

#include <gtest/gtest.h>
#include <msgpack.hpp>

using namespace sluice;

namespace {

// {"amount": 12, "codec": "h264", "player": {"codec": "av1", "live": true}, "ratio": 0.5}
std::string sample_attrs() {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_map(4);
  pk.pack(std::string{"amount"});
  pk.pack(12);
  pk.pack(std::string{"codec"});
  pk.pack(std::string{"h264"});
  pk.pack(std::string{"player"});
  pk.pack_map(2);
  pk.pack(std::string{"codec"});
  pk.pack(std::string{"av1"});
  pk.pack(std::string{"live"});
  pk.pack(true);
  pk.pack(std::string{"ratio"});
  pk.pack(0.5);
  return std::string{buf.data(), buf.size()};
}

event sample_event() {
  event e;
  e.id = "id-1";
  e.type = "play";
  e.device_id = "dev-1";
  e.ts = 1000;
  e.offset = 7;
  e.attrs = sample_attrs();
  return e;
}

struct predicate_case {
  const char* text;
  bool expected;
};

TEST(predicate, evaluates_a_table_of_predicates_against_one_event) {
  predicate_case cases[] = {
    {"", true},
    {"type == \"play\"", true},
    {"type == 'play'", true},
    {"type != \"play\"", false},
    {"type == \"stop\"", false},
    {"type in [\"stop\", \"play\"]", true},
    {"type in [\"stop\"]", false},
    {"ts > 999", true},
    {"ts >= 1000 and ts <= 1000", true},
    {"ts < 1000", false},
    {"offset == 7", true},
    {"amount > 10", true},
    {"attrs.amount > 10.5", true},
    {"amount == 12.0", true},
    {"ratio < 1", true},
    {"attrs.player.codec == \"av1\"", true},
    {"player.live == true", true},
    {"player.live == false", false},
    {"exists attrs.codec", true},
    {"attrs.codec exists", true},
    {"exists attrs.nope", false},
    {"nope == null", true},
    {"profile_id == null", true},
    {"exists profile_id", false},
    {"not type == \"play\"", false},
    {"type == \"stop\" or amount > 10", true},
    {"(type == \"stop\" or type == \"play\") and not exists nope", true},
    {"codec > 5", false},
    {"codec != 5", true},
    {"true", true},
    {"false", false},
  };
  auto e = sample_event();
  for (auto& c : cases) {
    predicate p;
    std::string error;
    ASSERT_TRUE(p.compile(c.text, error)) << c.text << ": " << error;
    EXPECT_EQ(p.eval(e), c.expected) << c.text;
  }
}

TEST(predicate, parse_errors_name_the_line_and_column_and_what_was_expected) {
  struct bad {
    const char* text;
    const char* message;
  } cases[] = {
    {"type = \"play\"", "line 1, column 6: '=' is not a comparison; use '=='"},
    {"type == play", "line 1, column 9: expected a value"},
    {"type ==", "line 1, column 8: expected a value (a quoted string, a number, true, false or "
                "null), but the text ended"},
    {"type == \"play\" and\n  (ts > 1", "line 2, column 10: expected ')'"},
    {"type == \"play", "line 1, column 9: this string is never closed"},
    {"type \"play\"", "line 1, column 6: expected a comparison after 'type'"},
    {"type == \"a\" type == \"b\"", "line 1, column 13: unexpected 'type'"},
    {"type in \"a\"", "line 1, column 9: expected '['"},
    {"== 1", "line 1, column 1: expected a field name"},
  };
  for (auto& c : cases) {
    predicate p;
    std::string error;
    EXPECT_FALSE(p.compile(c.text, error)) << c.text;
    EXPECT_NE(error.find(c.message), std::string::npos)
      << "for " << c.text << " got: " << error;
  }
}

event playback(log_offset offset, std::string type, int64_t ts, std::string title, int64_t pos,
               int64_t duration = 0) {
  event e;
  e.id = "e" + std::to_string(offset);
  e.type = std::move(type);
  e.device_id = "d";
  e.profile_id = "p";
  e.ts = ts;
  e.offset = offset;
  e.attrs = sluice::testing::playback_attrs(title, pos, duration);
  return e;
}

TEST(profile_model, continue_watching_lists_titles_in_progress_most_recent_first) {
  profile_model m;
  m.apply({playback(1, "play", 100, "a", 0), playback(2, "heartbeat", 200, "a", 30000),
           playback(3, "play", 300, "b", 1000), playback(4, "pause", 250, "c", 500)});
  auto json = m.continue_watching_json("p");
  auto b = json.find("\"b\"");
  auto c = json.find("\"c\"");
  auto a = json.find("\"a\"");
  ASSERT_NE(b, std::string::npos);
  EXPECT_LT(b, c);
  EXPECT_LT(c, a);
  EXPECT_NE(json.find("\"position_ms\":30000"), std::string::npos);
}

TEST(profile_model, an_older_event_does_not_overwrite_a_newer_position) {
  profile_model m;
  m.apply({playback(1, "pause", 500, "a", 9000), playback(2, "heartbeat", 400, "a", 1000)});
  EXPECT_EQ(m.titles().at("a").position_ms, 9000);
  EXPECT_EQ(m.titles().at("a").updated_ts, 500);
}

TEST(profile_model, a_completed_title_leaves_continue_watching) {
  profile_model m;
  m.apply({playback(1, "play", 1, "a", 0, 100000), playback(2, "stop", 2, "a", 96000, 100000),
           playback(3, "pause", 3, "b", 10, 100000)});
  auto json = m.continue_watching_json("p");
  EXPECT_EQ(json.find("\"a\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"b\""), std::string::npos) << json;
}

TEST(profile_model, replayed_events_are_not_applied_twice_and_state_round_trips) {
  profile_model m;
  m.apply({playback(1, "play", 1, "a", 5)});
  profile_model restored;
  ASSERT_TRUE(restored.decode(m.encode()));
  EXPECT_EQ(restored.applied_upto(), 1u);
  EXPECT_FALSE(restored.apply({playback(1, "pause", 99, "a", 77)}));
  EXPECT_EQ(restored.titles().at("a").position_ms, 5);
  EXPECT_FALSE(restored.decode("not msgpack at all"));
}

TEST(device_model, counts_duplicates_and_out_of_order_events) {
  device_model d;
  auto e1 = playback(1, "play", 100, "a", 0);
  auto e2 = playback(2, "play", 50, "a", 0);
  auto dup = e1;
  dup.offset = 3;
  d.apply({e1, e2, dup});
  EXPECT_EQ(d.events(), 2u);
  EXPECT_EQ(d.duplicates(), 1u);
  EXPECT_EQ(d.out_of_order(), 1u);
  device_model restored;
  ASSERT_TRUE(restored.decode(d.encode()));
  EXPECT_EQ(restored.json("x"), d.json("x"));
}

} // namespace
