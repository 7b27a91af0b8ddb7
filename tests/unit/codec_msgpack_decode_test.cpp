// decode_msgpack: the same shapes and rules as decode_json, from msgpack bytes.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

using namespace sluice;
using sluice::test::mp_builder;
using sluice::test::mp_text;
using sluice::test::rejection_for;

namespace {

constexpr int64_t ingest = 1732269600123;

decoded_batch decode(std::string_view body, const decode_limits& limits = {}) {
  return decode_msgpack(body, ingest, limits);
}

// Appends a valid event map with `extra` fields (already packed) to `b`.
void event_map(mp_builder& b, std::string_view device, uint32_t extra_fields = 0) {
  b.map(3 + extra_fields).str("type").str("play").str("device_id").str(device).str("ts").val(
    int64_t{1700000000000});
}

} // namespace

TEST(msgpack_decoder, decodes_a_single_event_map) {
  mp_builder b;
  b.map(6).str("id").str("e1").str("type").str("play").str("device_id").str("d1");
  b.str("profile_id").str("p1").str("ts").val(int64_t{1700000000000}).str("bitrate").val(4500);
  auto r = decode(b.bytes);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.events.size(), 1u);
  const event& e = r.events[0];
  EXPECT_EQ(e.id, "e1");
  EXPECT_EQ(e.type, "play");
  EXPECT_EQ(e.device_id, "d1");
  EXPECT_EQ(e.profile_id, "p1");
  EXPECT_EQ(e.ts, 1700000000000);
  EXPECT_EQ(e.ingest_ts, ingest);
  EXPECT_EQ(mp_text(e.attrs), R"({"bitrate":4500})");
  EXPECT_EQ(r.total, 1u);
}

TEST(msgpack_decoder, decodes_an_array_of_event_maps_in_order) {
  mp_builder b;
  b.array(2);
  event_map(b, "a");
  event_map(b, "b");
  auto r = decode(b.bytes);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].device_id, "a");
  EXPECT_EQ(r.events[1].device_id, "b");
  EXPECT_EQ(r.total, 2u);
}

TEST(msgpack_decoder, decodes_a_wrapper_with_numeric_or_string_batch_ids) {
  for (int variant = 0; variant < 4; ++variant) {
    mp_builder b;
    b.map(2).str("batch");
    const char* expected[] = {"17", "\"abc\"", "-3", ""};
    if (variant == 0)
      b.val(17);
    else if (variant == 1)
      b.str("abc");
    else if (variant == 2)
      b.val(-3);
    else
      b.nil();
    b.str("events").array(1);
    event_map(b, "a");
    auto r = decode(b.bytes);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.batch_id, expected[variant]);
    EXPECT_EQ(r.events.size(), 1u);
  }
}

TEST(msgpack_decoder, refuses_wrong_top_level_shapes) {
  mp_builder number;
  number.val(42);
  auto r = decode(number.bytes);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("must be an event map"), std::string::npos) << r.error;

  mp_builder events_not_array;
  events_not_array.map(1).str("events").map(0);
  r = decode(events_not_array.bytes);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("'events' must be an array"), std::string::npos) << r.error;

  mp_builder bad_batch;
  bad_batch.map(2).str("events").array(0).str("batch").val(true);
  r = decode(bad_batch.bytes);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("'batch'"), std::string::npos) << r.error;
}

TEST(msgpack_decoder, rejects_events_with_missing_or_mistyped_fields_and_keeps_the_others) {
  mp_builder b;
  b.array(8);
  b.map(2).str("type").str("t").str("ts").val(1);                            // 0: no device_id
  b.map(2).str("device_id").str("d").str("ts").val(1);                       // 1: no type
  b.map(2).str("type").str("t").str("device_id").str("d");                   // 2: no ts
  b.map(3).str("type").str("").str("device_id").str("d").str("ts").val(1);   // 3: empty type
  b.map(3).str("type").str("t").str("device_id").str("d").str("ts").f64(2.0); // 4: float ts
  b.val(7);                                                                   // 5: not a map
  event_map(b, "ok");                                                         // 6
  b.map(3).str("type").str("t").str("device_id").val(5).str("ts").val(1);    // 7: int device_id
  auto r = decode(b.bytes);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(rejection_for(r, 0), "missing field 'device_id'");
  EXPECT_EQ(rejection_for(r, 1), "missing field 'type'");
  EXPECT_EQ(rejection_for(r, 2), "missing field 'ts'");
  EXPECT_EQ(rejection_for(r, 3), "field 'type' must be a non-empty UTF-8 string");
  EXPECT_EQ(rejection_for(r, 4), "field 'ts' must be epoch milliseconds or an RFC 3339 string");
  EXPECT_EQ(rejection_for(r, 5), "the event must be a msgpack map");
  EXPECT_EQ(rejection_for(r, 7), "field 'device_id' must be a non-empty UTF-8 string");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].device_id, "ok");
  EXPECT_EQ(r.total, 8u);
}

TEST(msgpack_decoder, rejects_mistyped_id_and_profile_id_and_reads_nil_as_absent) {
  mp_builder b;
  b.array(3);
  event_map(b, "a", 1);
  b.str("id").val(5);
  event_map(b, "b", 1);
  b.str("profile_id").val(true);
  event_map(b, "c", 2);
  b.str("id").nil().str("profile_id").nil();
  auto r = decode(b.bytes);
  EXPECT_EQ(rejection_for(r, 0), "field 'id' must be a UTF-8 string or nil");
  EXPECT_EQ(rejection_for(r, 1), "field 'profile_id' must be a UTF-8 string or nil");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].profile_id, "");
  EXPECT_EQ(r.events[0].id.size(), 36u) << "a generated UUID";
}

TEST(msgpack_decoder, rejects_envelope_strings_that_are_not_utf8) {
  mp_builder b;
  b.map(3).str("type").str("t").str("device_id").str("d\xff").str("ts").val(1);
  auto r = decode(b.bytes);
  EXPECT_EQ(rejection_for(r, 0), "field 'device_id' must be a non-empty UTF-8 string");
}

TEST(msgpack_decoder, rejects_an_event_with_a_non_string_key) {
  mp_builder b;
  event_map(b, "a", 1);
  b.val(7).str("x");
  auto r = decode(b.bytes);
  EXPECT_EQ(rejection_for(r, 0), "the event's field names must be msgpack strs");
  mp_builder nested;
  event_map(nested, "a", 1);
  nested.str("m").map(1).val(1).val(2);
  r = decode(nested.bytes);
  EXPECT_EQ(rejection_for(r, 0), "field 'm' contains a map key that is not a string");
}

TEST(msgpack_decoder, reads_ts_as_integer_rfc3339_str_or_timestamp_extension) {
  mp_builder b;
  b.array(5);
  b.map(3).str("type").str("t").str("device_id").str("d").str("ts").val(-7);
  b.map(3).str("type").str("t").str("device_id").str("d").str("ts").str("2024-11-22T10:00:00.5Z");
  // timestamp32: seconds only.
  b.map(3).str("type").str("t").str("device_id").str("d").str("ts");
  b.pk.pack_ext(4, -1);
  const char ts32[] = {0x67, 0x40, 0x56, 0x20}; // 1732269600
  b.pk.pack_ext_body(ts32, 4);
  // timestamp64: 250 ms in nanoseconds, same seconds.
  b.map(3).str("type").str("t").str("device_id").str("d").str("ts");
  uint64_t v = (uint64_t{250000000} << 34) | 1732269600u;
  char ts64[8];
  for (int k = 0; k < 8; ++k)
    ts64[k] = static_cast<char>(v >> (56 - 8 * k));
  b.pk.pack_ext(8, -1);
  b.pk.pack_ext_body(ts64, 8);
  // Another extension type is not a timestamp.
  b.map(3).str("type").str("t").str("device_id").str("d").str("ts");
  b.pk.pack_ext(4, 5);
  b.pk.pack_ext_body(ts32, 4);
  auto r = decode(b.bytes);
  ASSERT_EQ(r.events.size(), 4u) << r.error;
  EXPECT_EQ(r.events[0].ts, -7);
  EXPECT_EQ(r.events[1].ts, 1732269600500);
  EXPECT_EQ(r.events[2].ts, 1732269600000);
  EXPECT_EQ(r.events[3].ts, 1732269600250);
  EXPECT_EQ(rejection_for(r, 4), "field 'ts' must be epoch milliseconds or an RFC 3339 string");
}

TEST(msgpack_decoder, keeps_attrs_in_client_order_with_their_msgpack_types) {
  mp_builder b;
  event_map(b, "d", 5);
  b.str("f32").f32(2.0f).str("bin");
  b.pk.pack_bin(3);
  b.pk.pack_bin_body("\x00\x01\x02", 3);
  b.str("big").val(uint64_t{18446744073709551615u}).str("arr").array(2).val(1).str("x");
  b.str("obj").map(1).str("k").nil();
  auto r = decode(b.bytes);
  ASSERT_EQ(r.events.size(), 1u) << r.error << rejection_for(r, 0);
  const std::string& attrs = r.events[0].attrs;
  auto oh = msgpack::unpack(attrs.data(), attrs.size());
  const auto& map = oh.get().via.map;
  ASSERT_EQ(map.size, 5u);
  EXPECT_EQ(map.ptr[0].val.type, msgpack::type::FLOAT32) << "integral floats stay floats";
  EXPECT_EQ(map.ptr[1].val.type, msgpack::type::BIN);
  EXPECT_EQ(std::string(map.ptr[1].val.via.bin.ptr, 3), std::string("\x00\x01\x02", 3));
  EXPECT_EQ(map.ptr[2].val.via.u64, 18446744073709551615u);
  EXPECT_EQ(map.ptr[2].key.as<std::string>(), "big");
  std::string text = mp_text(attrs);
  EXPECT_NE(text.find(R"("arr":[1,"x"],"obj":{"k":null}})"), std::string::npos) << text;
}

TEST(msgpack_decoder, decodes_the_same_events_as_the_json_decoder_for_the_same_content) {
  std::string json = R"([{"id":"x1","type":"play","device_id":"d","profile_id":"p","ts":5,)"
                     R"("n":-3,"s":"é","list":[1,2],"m":{"a":true,"b":null}}])";
  mp_builder b;
  b.array(1).map(9).str("id").str("x1").str("type").str("play").str("device_id").str("d");
  b.str("profile_id").str("p").str("ts").val(5).str("n").val(-3).str("s").str("é");
  b.str("list").array(2).val(1).val(2).str("m").map(2).str("a").val(true).str("b").nil();
  auto from_json = decode_json(json, ingest);
  auto from_msgpack = decode(b.bytes);
  ASSERT_EQ(from_json.events.size(), 1u) << from_json.error;
  ASSERT_EQ(from_msgpack.events.size(), 1u) << from_msgpack.error;
  EXPECT_EQ(from_json.events[0], from_msgpack.events[0]);
}

TEST(msgpack_decoder, rejects_an_event_whose_attrs_nest_deeper_than_max_depth) {
  decode_limits limits;
  limits.max_depth = 2;
  mp_builder b;
  b.array(2);
  event_map(b, "deep", 1);
  b.str("a").map(1).str("b").array(1).array(0);
  event_map(b, "ok", 1);
  b.str("a").map(1).str("b").array(0);
  auto r = decode(b.bytes, limits);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(rejection_for(r, 0), "field 'a' is nested deeper than the max_depth limit (2)");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].device_id, "ok");
}

TEST(msgpack_decoder, refuses_pathological_nesting_as_a_whole_batch_error) {
  std::string bytes(5000, '\x91'); // arrays of one element, 5000 deep
  bytes += '\xc0';
  auto r = decode(bytes);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("nested deeper"), std::string::npos) << r.error;
}

TEST(msgpack_decoder, refuses_more_than_max_events) {
  decode_limits limits;
  limits.max_events = 1;
  mp_builder array;
  array.array(2);
  event_map(array, "a");
  event_map(array, "b");
  mp_builder wrapper;
  wrapper.map(1).str("events").array(2);
  event_map(wrapper, "a");
  event_map(wrapper, "b");
  for (const auto& body : {array.bytes, wrapper.bytes}) {
    auto r = decode(body, limits);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error.find("more than 1 events"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("max_events"), std::string::npos) << r.error;
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(msgpack_decoder, locates_a_truncated_body_at_its_end) {
  mp_builder b;
  b.array(2);
  event_map(b, "a");
  event_map(b, "b");
  for (size_t cut = 1; cut < b.bytes.size(); ++cut) {
    auto r = decode(std::string_view{b.bytes}.substr(0, cut));
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_EQ(r.error_offset, cut);
    EXPECT_EQ(r.error.rfind("malformed msgpack at byte " + std::to_string(cut), 0), 0u) << r.error;
  }
}

TEST(msgpack_decoder, locates_the_never_used_byte_0xc1) {
  mp_builder b;
  event_map(b, "a", 1);
  b.str("x");
  size_t at = b.bytes.size();
  b.bytes += '\xc1';
  auto r = decode(b.bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error_offset, at);
  EXPECT_NE(r.error.find("0xc1"), std::string::npos) << r.error;
}

TEST(msgpack_decoder, treats_bytes_after_the_value_as_malformed) {
  mp_builder b;
  event_map(b, "a");
  size_t at = b.bytes.size();
  b.val(1);
  auto r = decode(b.bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error_offset, at);
  EXPECT_NE(r.error.find("after the msgpack value"), std::string::npos) << r.error;
}

TEST(msgpack_decoder, refuses_a_huge_claimed_count_without_allocating_for_it) {
  const std::string map32("\xdf\xff\xff\xff\xff", 5);
  auto r = decode(map32);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error_offset, 5u) << r.error;
  const std::string nested("\x91\xdd\xff\xff\xff\xff", 6);
  EXPECT_FALSE(decode(nested).ok());
}

TEST(msgpack_decoder, refuses_an_empty_body) {
  auto r = decode("");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("empty"), std::string::npos) << r.error;
}
