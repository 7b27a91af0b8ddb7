// Regressions found by the libFuzzer targets (tests/fuzz, docs/fuzzing.md) in the codecs: each test
// is the minimal form of a crashing input kept in tests/fuzz/regressions/<target>/.

#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace sluice;

namespace {

constexpr int64_t ingest = 1732269600123;

std::string nested(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

} // namespace

// fuzz_json: regressions/json/deep_nesting_stack_overflow.json. The syntax walk went on past
// max_depth with one stack frame per level, so a body of brackets overflowed the io thread's stack.
TEST(codec_fuzz_regressions, a_json_body_nested_a_million_levels_deep_is_malformed_not_a_crash) {
  auto b = decode_json(R"({"events":[)" + nested(1000000) + "]}", ingest);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error.find("too deep"), std::string::npos) << b.error;
  EXPECT_GT(b.error_offset, 1000u) << b.error;
  EXPECT_TRUE(b.events.empty());
}

TEST(codec_fuzz_regressions, an_attribute_nested_a_million_levels_deep_is_malformed_not_a_crash) {
  auto b = decode_json(R"({"type":"play","device_id":"d","ts":1,"a":)" + nested(1000000) + "}",
                       ingest);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error.find("too deep"), std::string::npos) << b.error;
}

TEST(codec_fuzz_regressions, an_envelope_field_nested_a_million_levels_deep_is_malformed) {
  auto b = decode_json(R"({"type":"play","device_id":"d","ts":)" + nested(1000000) + "}", ingest);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error.find("too deep"), std::string::npos) << b.error;
}

TEST(codec_fuzz_regressions, nesting_below_the_syntax_bound_still_rejects_only_the_deep_event) {
  auto b = decode_json(R"([{"type":"play","device_id":"d","ts":1,"a":)" + nested(1000)
                         + R"(},{"type":"play","device_id":"e","ts":2}])",
                       ingest);
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].device_id, "e");
  ASSERT_EQ(b.rejected.size(), 1u);
  EXPECT_EQ(b.rejected[0].index, 0u);
}

// fuzz_log_record: regressions/log_record/filtered_event_with_corrupt_attrs.rec. A reader with a
// filter skipped the attribute check of the events it did not keep, so the same corrupt record was
// refused by one consumer and read by another.
TEST(codec_fuzz_regressions, a_record_with_corrupt_attrs_is_corrupt_for_every_reader_whatever_it_keeps) {
  event good;
  good.id = "e-1";
  good.type = "play";
  good.device_id = "keep-me";
  event bad = good;
  bad.id = "e-2";
  bad.device_id = "skip-me";
  bad.attrs = "\x01"; // a positive fixint, not a map
  std::string record;
  encode_log_record({good, bad}, record);
  event_batch all;
  EXPECT_FALSE(decode_log_record(record, 1, all));
  EXPECT_TRUE(all.empty());
  event_batch kept;
  EXPECT_FALSE(decode_log_record_if(record, 1, kept, [](std::string_view device, std::string_view) {
    return device == "keep-me";
  }));
  EXPECT_TRUE(kept.empty());
}
