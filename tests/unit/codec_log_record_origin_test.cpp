// The ingest log's encoding of forwarded events (cluster): `origin` and `origin_offset` stored in a
// 9-element array, local events unchanged in their 7-element one, and both read back.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

using namespace sluice;
using sluice::test::mp_builder;

namespace {

event local_event(int k) {
  event e;
  e.id = "local-" + std::to_string(k);
  e.type = "play";
  e.device_id = "device-" + std::to_string(k % 3);
  e.profile_id = k % 2 == 0 ? "" : "profile-" + std::to_string(k);
  e.ts = 1732269600000 + k;
  e.ingest_ts = 1732269600500 + k;
  if (k % 3 == 0) {
    mp_builder attrs;
    attrs.map(1).str("title_id").str("t-" + std::to_string(k));
    e.attrs = attrs.bytes;
  }
  return e;
}

event forwarded_event(int k, std::string origin, log_offset origin_offset) {
  auto e = local_event(k);
  e.id = "fwd-" + std::to_string(k);
  e.origin = std::move(origin);
  e.origin_offset = origin_offset;
  return e;
}

/// Local and forwarded events interleaved, from two origins; one at the largest offset.
event_batch mixed_batch() {
  return {local_event(0),
          forwarded_event(1, "node-2", 17),
          forwarded_event(2, "node-3", 17),
          local_event(3),
          forwarded_event(4, "node-2", 18),
          forwarded_event(5, "nöde-\xf0\x9f\x8e\xac", UINT64_MAX),
          local_event(6)};
}

/// Bytes of `e` in the 7-element layout written before forwarded events existed.
std::string old_layout(const event& e) {
  mp_builder b;
  b.array(7).str(e.id).str(e.type).str(e.device_id);
  if (e.profile_id.empty())
    b.nil();
  else
    b.str(e.profile_id);
  b.val(e.ts).val(e.ingest_ts);
  b.pk.pack_bin(static_cast<uint32_t>(e.attrs.size()));
  b.pk.pack_bin_body(e.attrs.data(), static_cast<uint32_t>(e.attrs.size()));
  return b.bytes;
}

/// A 9-element array with the envelope of a valid event followed by `tail` (two elements).
template <class Tail>
std::string nine(Tail tail) {
  mp_builder b;
  b.array(9).str("i").str("t").str("d").nil().val(1).val(2);
  b.pk.pack_bin(0);
  tail(b);
  return b.bytes;
}

} // namespace

TEST(log_record_origin, a_mixed_record_of_local_and_forwarded_events_round_trips_with_dense_offsets) {
  auto events = mixed_batch();
  std::string bytes;
  encode_log_record(events, bytes);
  event_batch out;
  ASSERT_TRUE(decode_log_record(bytes, 41, out));
  ASSERT_EQ(out.size(), events.size());
  for (size_t k = 0; k < events.size(); ++k) {
    auto expected = events[k];
    expected.offset = 41 + k;
    EXPECT_EQ(out[k], expected) << k;
  }
  EXPECT_EQ(out[1].origin, "node-2");
  EXPECT_EQ(out[1].origin_offset, 17u);
  EXPECT_EQ(out[5].origin_offset, UINT64_MAX);
  EXPECT_TRUE(out[3].origin.empty());
  EXPECT_EQ(out[3].origin_offset, 0u);
}

TEST(log_record_origin, a_local_event_keeps_the_seven_element_layout_byte_for_byte) {
  auto e = local_event(3);
  e.origin_offset = 99; // meaningless without an origin: not stored
  std::string bytes;
  encode_log_record({e}, bytes);
  EXPECT_EQ(bytes, old_layout(e));
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0x97) << "fixarray of 7";
  event_batch out;
  ASSERT_TRUE(decode_log_record(bytes, 1, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].origin_offset, 0u);
}

TEST(log_record_origin, a_forwarded_event_is_the_seven_fields_then_origin_and_origin_offset) {
  auto e = forwarded_event(3, "node-2", 1234);
  std::string bytes;
  encode_log_record({e}, bytes);
  auto local = e;
  local.origin.clear();
  local.origin_offset = 0;
  auto prefix = old_layout(local);
  ASSERT_GT(bytes.size(), prefix.size());
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0x99) << "fixarray of 9";
  EXPECT_EQ(bytes.substr(1, prefix.size() - 1), prefix.substr(1));
  mp_builder tail;
  tail.str("node-2").val(uint64_t{1234});
  EXPECT_EQ(bytes.substr(prefix.size()), tail.bytes);
}

TEST(log_record_origin, records_written_before_forwarded_events_existed_are_read_as_local_events) {
  std::string bytes;
  event_batch expected;
  for (int k = 0; k < 5; ++k) {
    auto e = local_event(k);
    bytes += old_layout(e);
    e.offset = 100 + static_cast<log_offset>(k);
    expected.push_back(e);
  }
  event_batch out;
  ASSERT_TRUE(decode_log_record(bytes, 100, out));
  EXPECT_EQ(out, expected);
}

TEST(log_record_origin, a_filtered_decode_keeps_the_origin_of_the_events_it_keeps) {
  auto events = mixed_batch();
  std::string bytes;
  encode_log_record(events, bytes);
  event_batch out;
  ASSERT_TRUE(decode_log_record_if(bytes, 1, out, [](std::string_view device, std::string_view) {
    return device == "device-1" || device == "device-2";
  }));
  event_batch expected;
  for (size_t k = 0; k < events.size(); ++k) {
    if (events[k].device_id == "device-0")
      continue;
    expected.push_back(events[k]);
    expected.back().offset = 1 + k;
  }
  EXPECT_EQ(out, expected);
  EXPECT_TRUE(std::any_of(out.begin(), out.end(), [](auto& e) { return !e.origin.empty(); }));
}

TEST(log_record_origin, refuses_every_truncation_of_a_mixed_record_except_at_event_boundaries) {
  auto events = mixed_batch();
  std::string bytes;
  encode_log_record(events, bytes);
  std::vector<size_t> boundaries;
  for (size_t k = 1; k <= events.size(); ++k) {
    std::string prefix;
    encode_log_record(event_batch(events.begin(), events.begin() + k), prefix);
    boundaries.push_back(prefix.size());
  }
  for (size_t cut = 1; cut < bytes.size(); ++cut) {
    event_batch out;
    bool ok = decode_log_record(std::string_view{bytes}.substr(0, cut), 1, out);
    bool at_boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    EXPECT_EQ(ok, at_boundary) << cut;
    if (!ok) {
      EXPECT_TRUE(out.empty()) << cut;
    }
  }
}

TEST(log_record_origin, refuses_a_forwarded_layout_without_an_origin_or_with_a_bad_origin_offset) {
  event_batch out;
  EXPECT_FALSE(decode_log_record(nine([](mp_builder& b) { b.str("").val(uint64_t{5}); }), 1, out))
    << "the nine-element form always has an origin";
  EXPECT_FALSE(decode_log_record(nine([](mp_builder& b) { b.nil().val(uint64_t{5}); }), 1, out));
  EXPECT_FALSE(decode_log_record(nine([](mp_builder& b) { b.str("n").val(int64_t{-1}); }), 1, out));
  EXPECT_FALSE(decode_log_record(nine([](mp_builder& b) { b.str("n").str("5"); }), 1, out));
  EXPECT_FALSE(decode_log_record(nine([](mp_builder& b) { b.str("n").val(1.5); }), 1, out));
  mp_builder eight;
  eight.array(8).str("i").str("t").str("d").nil().val(1).val(2);
  eight.pk.pack_bin(0);
  eight.str("n");
  EXPECT_FALSE(decode_log_record(eight.bytes, 1, out)) << "only 7 or 9 elements";
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(decode_log_record(nine([](mp_builder& b) { b.str("n").val(uint64_t{5}); }), 1, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].origin, "n");
  EXPECT_EQ(out[0].origin_offset, 5u);
}

TEST(log_record_origin, append_json_renders_a_forwarded_event_exactly_like_a_local_one) {
  // Sink output has no origin: only the accepting node's sinks deliver an event.
  auto e = forwarded_event(3, "node-2", 17);
  e.offset = 5;
  auto local = e;
  local.origin.clear();
  local.origin_offset = 0;
  std::string forwarded_json, local_json;
  append_json(forwarded_json, e, "node-1");
  append_json(local_json, local, "node-1");
  EXPECT_EQ(forwarded_json, local_json);
  EXPECT_EQ(forwarded_json.find("node-2"), std::string::npos) << forwarded_json;
}
