// any_attr_key (the top-level key check route actions use before rewriting attrs) and the plain
// ASCII fast path of append_json_string.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

using namespace sluice;
using sluice::test::mp_builder;

namespace {

bool in_set(std::string_view key, const void* ctx) {
  auto& keys = *static_cast<const std::set<std::string, std::less<>>*>(ctx);
  return keys.count(key) > 0;
}

bool has_any(std::string_view attrs, std::set<std::string, std::less<>> keys) {
  return any_attr_key(attrs, in_set, &keys);
}

std::string rendered(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

} // namespace

TEST(any_attr_key, finds_a_wanted_top_level_key_and_ignores_nested_ones) {
  auto attrs = mp_builder{}
                 .map(3)
                 .str("title_id")
                 .str("t-1")
                 .str("player")
                 .map(1)
                 .str("card")
                 .str("4111")
                 .str("card")
                 .str("4111 1111 1111 1111")
                 .bytes;
  EXPECT_TRUE(has_any(attrs, {"card"}));
  EXPECT_TRUE(has_any(attrs, {"player"}));
  EXPECT_FALSE(has_any(attrs, {"codec", "ip"}));
  auto nested_only = mp_builder{}.map(1).str("player").map(1).str("card").str("x").bytes;
  EXPECT_FALSE(has_any(nested_only, {"card"})); // a nested key is not a top-level key
}

TEST(any_attr_key, empty_attrs_have_no_key_and_unreadable_attrs_count_as_having_one) {
  EXPECT_FALSE(has_any("", {"card"}));
  EXPECT_FALSE(has_any(mp_builder{}.map(0).bytes, {"card"}));
  // Not a map, truncated, or trailing bytes: the caller must take its full path.
  EXPECT_TRUE(has_any(mp_builder{}.array(1).str("card").bytes, {"card"}));
  auto truncated = mp_builder{}.map(2).str("a").str("b").bytes;
  EXPECT_TRUE(has_any(truncated, {"card"}));
  auto trailing = mp_builder{}.map(1).str("a").str("b").bytes + "\xc0";
  EXPECT_TRUE(has_any(trailing, {"card"}));
}

TEST(append_json_string, plain_ascii_is_copied_and_everything_else_still_escaped) {
  EXPECT_EQ(rendered(""), "\"\"");
  EXPECT_EQ(rendered("dev-00000000000a1b2c"), "\"dev-00000000000a1b2c\"");
  EXPECT_EQ(rendered("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(rendered("tab\there"), "\"tab\\there\"");
  EXPECT_EQ(rendered("caf\xc3\xa9"), "\"caf\xc3\xa9\"");        // valid UTF-8 kept
  EXPECT_EQ(rendered("bad\xff"), "\"bad\\ufffd\"");                // invalid byte replaced
  EXPECT_EQ(rendered(std::string_view{"nul\0x", 5}), "\"nul\\u0000x\"");
  // Appends: what was in the buffer stays.
  std::string out = "[";
  append_json_string(out, "x");
  EXPECT_EQ(out, "[\"x\"");
}
