// find_attrs: several attribute paths looked up in one pass over msgpack attrs.

#include "messages/attr_paths.hpp"
#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

using namespace sluice;
using sluice::test::attrs_of;

namespace {

TEST(find_attrs, finds_what_find_attr_finds_and_skips_maps_no_path_reaches_into) {
  auto attrs = attrs_of(R"({"type":"play","device_id":"d","ts":1,
    "other":{"x":{"y":"z"}},"player":{"codec":"av1","version":"2.4.1"},"player.codec":"late",
    "a_key_longer_than_every_path_we_look_for":{"codec":"no"},"n":-7,"list":[1,2]})");
  std::vector<std::string> paths = {"player.codec", "player.version", "n", "list", "other",
                                    "other.x.y", "codec", "missing"};
  attr_slot slots[8];
  ASSERT_TRUE(find_attrs(attrs, paths, slots));
  for (size_t i = 0; i < paths.size(); ++i) {
    auto want = find_attr(attrs, paths[i]);
    ASSERT_EQ(slots[i].found, want.has_value()) << paths[i];
    if (want) {
      EXPECT_EQ(slots[i].value.type, want->type) << paths[i];
      if (want->type == attr_value::kind::string || want->type == attr_value::kind::integer) {
        EXPECT_EQ(slots[i].value.s, want->s) << paths[i];
        EXPECT_EQ(slots[i].value.i, want->i) << paths[i];
      }
    }
  }
  EXPECT_EQ(slots[0].value.s, "av1"); // the first in map order
}

TEST(find_attrs, rejects_bytes_that_are_not_msgpack_and_finds_nothing_in_a_non_map) {
  std::vector<std::string> paths = {"a"};
  attr_slot slots[1];
  auto attrs = attrs_of(R"({"type":"play","device_id":"d","ts":1,"a":"value","b":{"c":1}})");
  // Truncated anywhere, also inside a map no path reaches into: not msgpack.
  for (size_t cut = 1; cut < attrs.size(); ++cut)
    EXPECT_FALSE(find_attrs(attrs.substr(0, cut), paths, slots)) << cut;
  EXPECT_FALSE(find_attrs(std::string(1, '\xc1'), paths, slots)); // the never-used byte
  // An array or a scalar at the root: msgpack, but no attributes.
  EXPECT_TRUE(find_attrs(std::string{"\x92\x01\x02", 3}, paths, slots));
  EXPECT_FALSE(slots[0].found);
  EXPECT_TRUE(find_attrs(std::string{"\x07", 1}, paths, slots));
  EXPECT_FALSE(slots[0].found);
  // Empty attrs: an empty map.
  EXPECT_TRUE(find_attrs({}, paths, slots));
  EXPECT_FALSE(slots[0].found);
}

TEST(find_attrs, answers_what_find_attr_answers_for_each_path_also_when_attrs_are_damaged) {
  auto attrs = attrs_of(R"({"type":"play","device_id":"d","ts":1,"list":[1,{"title_id":"no"}],
    "title_id":"t-1","position_ms":61000,"duration_ms":1.5e6,"nested":{"a":1,"title_id":"no"}})");
  // Top-level names only (read without building paths), and with a dotted path.
  std::vector<std::string> top = {"title_id", "position_ms", "duration_ms", "missing", "list"};
  std::vector<std::string> dotted = {"title_id", "position_ms", "duration_ms", "missing",
                                     "nested.a"};
  std::optional<attr_value> out[5];
  auto same_as_find_attr = [&](std::string_view bytes, const std::vector<std::string>& paths) {
    find_attrs(bytes, paths, out);
    for (size_t i = 0; i < paths.size(); ++i) {
      auto want = find_attr(bytes, paths[i]);
      ASSERT_EQ(out[i].has_value(), want.has_value()) << paths[i] << " of " << bytes.size();
      if (want && want->type != attr_value::kind::other) {
        EXPECT_EQ(out[i]->type, want->type) << paths[i];
        EXPECT_EQ(out[i]->s, want->s) << paths[i];
        EXPECT_EQ(out[i]->i, want->i) << paths[i];
        EXPECT_EQ(out[i]->d, want->d) << paths[i];
      }
    }
  };
  for (auto* paths : {&top, &dotted}) {
    same_as_find_attr(attrs, *paths);
    ASSERT_TRUE(out[0] && out[1] && out[2]);
    EXPECT_EQ(out[0]->s, "t-1"); // the first in map order, not one nested below
    EXPECT_EQ(out[1]->i, 61000);
    EXPECT_EQ(out[2]->d, 1.5e6);
    EXPECT_FALSE(out[3]);
    ASSERT_TRUE(out[4]);
    // Truncated: what find_attr still finds before the damage.
    for (size_t cut = 0; cut < attrs.size(); ++cut)
      same_as_find_attr(std::string_view{attrs}.substr(0, cut), *paths);
  }
  EXPECT_EQ(out[4]->i, 1); // nested.a
  // More paths than fit on the stack.
  std::vector<std::string> many(20, "position_ms");
  std::optional<attr_value> many_out[20];
  find_attrs(attrs, many, many_out);
  for (auto& v : many_out)
    EXPECT_TRUE(v && v->i == 61000);
}

} // namespace
