// decode_json's fast paths: bodies parsed where they are (decode_json_in_place), strings and keys
// read as views into the body unless they have escapes, attrs packed through the per-thread
// buffer. Each must give exactly what the plain path gives.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sluice;
using sluice::test::mp_builder;

namespace {

constexpr int64_t ingest = 1732269600123;

// Every field of two results (ids included: the bodies below give every accepted event an id).
void expect_same(const decoded_batch& a, const decoded_batch& b, std::string_view body) {
  EXPECT_EQ(a.error, b.error) << body;
  EXPECT_EQ(a.error_offset, b.error_offset) << body;
  EXPECT_EQ(a.total, b.total) << body;
  EXPECT_EQ(a.batch_id, b.batch_id) << body;
  EXPECT_EQ(a.events, b.events) << body;
  ASSERT_EQ(a.rejected.size(), b.rejected.size()) << body;
  for (size_t i = 0; i < a.rejected.size(); ++i) {
    EXPECT_EQ(a.rejected[i].index, b.rejected[i].index) << body;
    EXPECT_EQ(a.rejected[i].error, b.rejected[i].error) << body;
  }
}

// `body` in a string with room for the padding, the room filled with bytes that would change the
// parse if they were read as JSON (quotes, brackets, digits, backslashes).
std::string with_garbage_room(std::string_view body) {
  std::string s{body};
  s.append(json_padding + 16, '"');
  for (size_t i = body.size(); i < s.size(); i += 3)
    s[i] = i % 2 ? ']' : '\\';
  s.resize(body.size());
  return s;
}

std::string ev(std::string_view id, std::string_view extra = "") {
  std::string s = R"({"id":")";
  s += id;
  s += R"(","type":"play","device_id":"d-1","profile_id":"p","ts":1700000000000)";
  if (!extra.empty()) {
    s += ',';
    s += extra;
  }
  s += '}';
  return s;
}

const std::vector<std::string>& bodies() {
  static const std::vector<std::string> all = {
    "[" + ev("a", R"("title_id":"t-1","position_ms":42)") + "," + ev("b") + "]",
    ev("single", R"("nested":{"k":[1,2.5,"s",null,true]})"),
    R"({"events":[)" + ev("w") + R"(],"batch":17})",
    R"({"batch":"b\"1","events":[)" + ev("w2") + "]}",
    "[" + ev("ok") + R"(,{"type":"play","ts":1},{"id":"x","type":"","device_id":"d","ts":1}])",
    R"([ { "id" : "spaced" , "type" : "play" , "device_id" : "d" , "ts" : 1 , "k" : "v" } ])",
    "[" + ev("truncated"),
    R"([{"id":"t","type":"play","device_id":"d","ts":1,"s":"unterminated)",
    R"([{"id":"t","type":"play")",
    R"({"id":"t","type":"play","device_id":"d","ts":1} trailing)",
    R"({"id":"t","type":tru)",
    R"({"id":"t","ts":12)",
    R"("a root string")",
    R"(123)",
    R"(nul)",
    "",
    "   ",
  };
  return all;
}

} // namespace

TEST(json_in_place, a_body_with_spare_capacity_decodes_to_what_decode_json_gives) {
  for (const auto& body : bodies()) {
    std::string s = with_garbage_room(body);
    ASSERT_GE(s.capacity() - s.size(), json_padding);
    auto in_place = decode_json_in_place(s, ingest);
    expect_same(in_place, decode_json(body, ingest), body);
    EXPECT_EQ(s, body) << "the body's size and bytes stay as they were";
  }
}

TEST(json_in_place, a_body_without_enough_spare_capacity_is_copied_and_decodes_the_same) {
  for (const auto& body : bodies()) {
    std::string s{body};
    s.shrink_to_fit();
    if (s.capacity() - s.size() >= json_padding)
      continue; // the small-string buffer of a short body has room; covered above
    const char* data = s.data();
    auto copied = decode_json_in_place(s, ingest);
    expect_same(copied, decode_json(body, ingest), body);
    EXPECT_EQ(s, body);
    EXPECT_EQ(s.data(), data) << "not reallocated";
  }
}

TEST(json_in_place, keys_and_strings_with_escapes_decode_like_their_plain_forms) {
  auto escaped = decode_json(
    R"([{"id":"e\u0031","type":"pl\u0061y","device_\u0069d":"d\/1","ts":1,)"
    R"("ti\u0074le" : "x\u0079z" ,"plain":"p","n\u0065st":{"i\u006Ener":["\u0061",1]}}])",
    ingest);
  auto plain = decode_json(
    R"([{"id":"e1","type":"play","device_id":"d/1","ts":1,)"
    R"("title":"xyz","plain":"p","nest":{"inner":["a",1]}}])",
    ingest);
  ASSERT_TRUE(escaped.ok()) << escaped.error;
  ASSERT_EQ(escaped.events.size(), 1u);
  expect_same(escaped, plain, "escapes");
}

TEST(json_in_place, strings_holding_escaped_quotes_and_backslashes_keep_them) {
  auto b = decode_json(R"({"id":"q","type":"play","device_id":"a\"b\\","ts":1,"k\\":"\"v\""})",
                       ingest);
  ASSERT_EQ(b.events.size(), 1u) << b.error;
  EXPECT_EQ(b.events[0].device_id, "a\"b\\");
  mp_builder expected;
  expected.map(1).str("k\\").str("\"v\"");
  EXPECT_EQ(b.events[0].attrs, expected.bytes);
}

TEST(json_in_place, attr_strings_get_msgpack_c_encodings_for_every_length) {
  for (size_t len : {0u, 1u, 31u, 32u, 255u, 256u, 65535u, 65536u}) {
    std::string key(len == 0 ? 1 : len, 'k');
    std::string value(len, 'v');
    auto b = decode_json(ev("l", "\"" + key + "\":\"" + value + "\""), ingest);
    ASSERT_EQ(b.events.size(), 1u) << len << ": " << b.error;
    mp_builder expected;
    expected.map(1).str(key).str(value);
    EXPECT_EQ(b.events[0].attrs, expected.bytes) << "length " << len;
  }
}

TEST(json_in_place, attr_maps_get_the_smallest_header_for_their_count) {
  for (uint32_t count : {1u, 15u, 16u, 65535u, 65536u}) {
    std::string fields;
    mp_builder expected;
    expected.map(count);
    for (uint32_t i = 0; i < count; ++i) {
      std::string key = "a" + std::to_string(i);
      fields += (i ? "," : "") + ("\"" + key + "\":" + std::to_string(i));
      expected.str(key).val(i);
    }
    auto b = decode_json(ev("m", fields), ingest);
    ASSERT_EQ(b.events.size(), 1u) << count << ": " << b.error;
    EXPECT_EQ(b.events[0].attrs, expected.bytes) << count << " attributes";
  }
}

TEST(json_in_place, an_invalid_escape_is_located_after_its_string_or_key) {
  auto value = decode_json(R"({"type":"play","device_id":"d","ts":1,"bad":"\x"})", ingest);
  EXPECT_EQ(value.error, "malformed JSON at byte 48: Problem while parsing a string");
  auto key = decode_json(R"({"type":"play","device_id":"d","ts":1,"b\x":"x"})", ingest);
  EXPECT_EQ(key.error, "malformed JSON at byte 44: Problem while parsing a string");
  auto envelope = decode_json(R"({"type":"play","device_id":"d\q","ts":1})", ingest);
  EXPECT_EQ(envelope.error, "malformed JSON at byte 32: Problem while parsing a string");
}

TEST(json_in_place, a_rejected_event_after_accepted_ones_leaves_them_intact) {
  auto b = decode_json("[" + ev("first", R"("a":"x")") + R"(,{"id":"r","type":"play","ts":1},)"
                         + ev("third", R"("b":"y")") + "]",
                       ingest);
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[0].id, "first");
  EXPECT_EQ(b.events[1].id, "third");
  mp_builder a;
  a.map(1).str("a").str("x");
  EXPECT_EQ(b.events[0].attrs, a.bytes);
  ASSERT_EQ(b.rejected.size(), 1u);
  EXPECT_EQ(b.rejected[0].index, 1u);
  EXPECT_EQ(b.rejected[0].error, "missing field 'device_id'");
}
