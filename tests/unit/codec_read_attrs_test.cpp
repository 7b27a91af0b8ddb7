// read_attrs: several attribute paths looked up in one pass into uninitialized slots, answering
// what find_attr answers for each path (also for damaged attrs and repeated paths).

#include "messages/attr_paths.hpp"
#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace sluice;
using sluice::test::attrs_of;

namespace {

TEST(read_attrs, sets_every_slot_to_what_find_attr_answers_also_when_attrs_are_damaged) {
  auto attrs = attrs_of(R"({"type":"play","device_id":"d","ts":1,"title_id":"t-1",
    "position_ms":61000,"duration_ms":1.5e6,"nested":{"a":1,"title_id":"no"},"flag":true})");
  std::vector<std::string> top = {"title_id", "position_ms", "missing", "title_id", "flag",
                                  "duration_ms"};
  std::vector<std::string> dotted = {"nested.a", "title_id", "missing", "position_ms",
                                     "nested.title_id", "title_id"};
  for (auto* paths : {&top, &dotted}) {
    for (size_t cut = 0; cut <= attrs.size(); ++cut) {
      auto bytes = std::string_view{attrs}.substr(0, cut);
      // Garbage in the slots beforehand: every one is set, found or not.
      attr_slot_buffer<6> storage;
      std::memset(storage.bytes, 0xa5, sizeof storage.bytes);
      auto* slots = storage.get();
      read_attrs(bytes, *paths, slots);
      for (size_t i = 0; i < paths->size(); ++i) {
        auto want = find_attr(bytes, (*paths)[i]);
        ASSERT_EQ(slots[i].found, want.has_value()) << (*paths)[i] << " of " << cut;
        if (!want || want->type == attr_value::kind::other)
          continue;
        EXPECT_EQ(slots[i].value.type, want->type) << (*paths)[i];
        EXPECT_EQ(slots[i].value.s, want->s) << (*paths)[i];
        EXPECT_EQ(slots[i].value.i, want->i) << (*paths)[i];
        EXPECT_EQ(slots[i].value.d, want->d) << (*paths)[i];
        EXPECT_EQ(slots[i].value.b, want->b) << (*paths)[i];
      }
    }
  }
  // The whole map: a repeated path gets the same value in both of its slots.
  attr_slot_buffer<6> storage;
  auto* slots = storage.get();
  read_attrs(attrs, top, slots);
  ASSERT_TRUE(slots[0].found && slots[3].found);
  EXPECT_EQ(slots[0].value.s, "t-1");
  EXPECT_EQ(slots[3].value.s, "t-1");
  EXPECT_EQ(slots[1].value.i, 61000);
  EXPECT_FALSE(slots[2].found);
  EXPECT_TRUE(slots[4].found && slots[4].value.b);
  EXPECT_EQ(slots[5].value.d, 1.5e6);
  read_attrs(attrs, dotted, slots);
  EXPECT_EQ(slots[0].value.i, 1);
  EXPECT_EQ(slots[1].value.s, "t-1"); // the top-level one, first in map order
  EXPECT_EQ(slots[4].value.s, "no");
  EXPECT_EQ(slots[5].value.s, "t-1");
}

} // namespace
