// encode_log_record / decode_log_record: round trips and corrupt input.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>
#include <random>

using namespace sluice;
using sluice::test::mp_builder;

namespace {

event_batch sample_events(size_t n) {
  std::mt19937_64 rng{42};
  event_batch events;
  for (size_t k = 0; k < n; ++k) {
    event e;
    e.id = "id-" + std::to_string(k) + std::string(k % 40, 'x');
    e.type = k % 3 == 0 ? "play" : "héartbeat ▶";
    e.device_id = "device-" + std::to_string(rng() % 1000);
    e.profile_id = k % 4 == 0 ? "" : "profile-\xf0\x9f\x8e\xac";
    e.ts = k % 5 == 0 ? INT64_MIN : (k % 5 == 1 ? INT64_MAX : static_cast<int64_t>(rng()) >> 1);
    e.ingest_ts = 1732269600000 + static_cast<int64_t>(k);
    if (k % 2 == 1) {
      mp_builder attrs;
      attrs.map(3).str("n").val(rng()).str("big").val(uint64_t{18446744073709551615u});
      attrs.str("s").str(std::string(k * 7, 'a'));
      e.attrs = attrs.bytes;
    }
    events.push_back(std::move(e));
  }
  return events;
}

} // namespace

TEST(log_record, round_trips_a_batch_and_assigns_dense_offsets) {
  auto events = sample_events(500);
  std::string bytes;
  encode_log_record(events, bytes);
  event_batch out;
  ASSERT_TRUE(decode_log_record(bytes, 1001, out));
  ASSERT_EQ(out.size(), events.size());
  for (size_t k = 0; k < events.size(); ++k) {
    event expected = events[k];
    expected.offset = 1001 + k;
    EXPECT_EQ(out[k], expected) << k;
  }
}

TEST(log_record, does_not_store_offsets) {
  auto events = sample_events(3);
  std::string with_offsets, without;
  encode_log_record(events, without);
  for (auto& e : events)
    e.offset = 99;
  encode_log_record(events, with_offsets);
  EXPECT_EQ(with_offsets, without);
}

TEST(log_record, keeps_attrs_bytes_exactly) {
  event e;
  e.id = "i";
  e.type = "t";
  e.device_id = "d";
  e.attrs = std::string("\x81\xa1k\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 12); // {"k": 1.0}
  std::string bytes;
  encode_log_record({e}, bytes);
  event_batch out;
  ASSERT_TRUE(decode_log_record(bytes, 1, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].attrs, e.attrs);
}

TEST(log_record, appends_to_existing_output) {
  auto events = sample_events(4);
  std::string bytes;
  encode_log_record(events, bytes);
  event_batch out(2);
  ASSERT_TRUE(decode_log_record(bytes, 7, out));
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0], event{});
  EXPECT_EQ(out[2].id, events[0].id);
  EXPECT_EQ(out[5].offset, 10u);
}

TEST(log_record, encodes_an_empty_batch_as_no_bytes) {
  std::string bytes;
  encode_log_record({}, bytes);
  EXPECT_TRUE(bytes.empty());
  event_batch out;
  EXPECT_TRUE(decode_log_record(bytes, 1, out));
  EXPECT_TRUE(out.empty());
}

TEST(log_record, decodes_two_appended_encodings_as_one_record) {
  auto a = sample_events(3);
  auto b = sample_events(2);
  std::string bytes;
  encode_log_record(a, bytes);
  encode_log_record(b, bytes);
  event_batch out;
  ASSERT_TRUE(decode_log_record(bytes, 1, out));
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[3].id, b[0].id);
  EXPECT_EQ(out[4].offset, 5u);
}

TEST(log_record, refuses_every_truncation_and_leaves_the_output_unchanged) {
  auto events = sample_events(6);
  std::string bytes;
  encode_log_record(events, bytes);
  // Event boundaries: a cut there is a valid, shorter record.
  std::vector<size_t> boundaries;
  for (size_t k = 1; k <= events.size(); ++k) {
    std::string prefix;
    encode_log_record(event_batch(events.begin(), events.begin() + k), prefix);
    boundaries.push_back(prefix.size());
  }
  const event sentinel{"s", "t", "d", "", 1, 2, 3, "", "", 0};
  for (size_t cut = 1; cut < bytes.size(); ++cut) {
    event_batch out{sentinel};
    bool ok = decode_log_record(std::string_view{bytes}.substr(0, cut), 1, out);
    bool at_boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    EXPECT_EQ(ok, at_boundary) << cut;
    if (!ok) {
      ASSERT_EQ(out.size(), 1u) << cut;
      EXPECT_EQ(out[0], sentinel);
    }
  }
}

TEST(log_record, survives_random_corruption_without_crashing) {
  auto events = sample_events(20);
  std::string bytes;
  encode_log_record(events, bytes);
  std::mt19937 rng{7};
  size_t refused = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string corrupt = bytes;
    for (int flips = 0; flips < 3; ++flips)
      corrupt[rng() % corrupt.size()] = static_cast<char>(rng());
    event_batch out;
    if (!decode_log_record(corrupt, 1, out)) {
      ++refused;
      EXPECT_TRUE(out.empty());
    } else {
      std::string json; // whatever was accepted is usable
      for (const auto& e : out)
        append_json(json, e);
      EXPECT_EQ(json.empty(), out.empty());
    }
  }
  EXPECT_GT(refused, 0u);
}

TEST(log_record, refuses_records_of_a_different_layout) {
  event_batch out;
  mp_builder six;
  six.array(6).str("i").str("t").str("d").nil().val(1).val(2);
  EXPECT_FALSE(decode_log_record(six.bytes, 1, out));
  mp_builder bad_attrs;
  bad_attrs.array(7).str("i").str("t").str("d").nil().val(1).val(2);
  bad_attrs.pk.pack_bin(2);
  bad_attrs.pk.pack_bin_body("\x92\x01", 2); // a truncated array, not a map
  EXPECT_FALSE(decode_log_record(bad_attrs.bytes, 1, out));
  mp_builder str_ts;
  str_ts.array(7).str("i").str("t").str("d").nil().str("1").val(2);
  str_ts.pk.pack_bin(0);
  EXPECT_FALSE(decode_log_record(str_ts.bytes, 1, out));
  EXPECT_TRUE(out.empty());
}

TEST(log_record, a_filtered_decode_keeps_only_accepted_events_with_their_own_offsets) {
  auto events = sample_events(200);
  std::string bytes;
  encode_log_record(events, bytes);
  event_batch out;
  ASSERT_TRUE(decode_log_record_if(bytes, 1, out, [](std::string_view device, std::string_view profile) {
    return !profile.empty() && device.back() % 2 == 0;
  }));
  event_batch expected;
  for (size_t k = 0; k < events.size(); ++k) {
    if (events[k].profile_id.empty() || events[k].device_id.back() % 2 != 0)
      continue;
    expected.push_back(events[k]);
    expected.back().offset = 1 + k;
  }
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(out, expected);
}

TEST(log_record, writing_into_reserved_space_gives_the_bytes_of_encode_log_record) {
  // Every size class of msgpack-c's strings, bins and integers, local and forwarded events.
  event_batch batch;
  const std::vector<int64_t> ints = {0,           1,           127,         128,
                                     255,         256,         65535,       65536,
                                     4294967295,  4294967296,  INT64_MAX,   -1,
                                     -32,         -33,         -128,        -129,
                                     -32768,      -32769,      -2147483648, -2147483649LL,
                                     INT64_MIN};
  const std::vector<size_t> lengths = {0, 1, 31, 32, 255, 256, 65535, 65536};
  for (size_t k = 0; k < ints.size(); ++k) {
    event e;
    auto len = lengths[k % lengths.size()];
    e.id = std::string(len, 'i');
    e.type = std::string(lengths[(k + 1) % lengths.size()], 't');
    e.device_id = std::string(lengths[(k + 2) % lengths.size()], 'd');
    e.profile_id = k % 3 == 0 ? std::string() : std::string(lengths[(k + 3) % lengths.size()], 'p');
    e.ts = ints[k];
    e.ingest_ts = ints[ints.size() - 1 - k];
    e.attrs = std::string(lengths[(k + 4) % lengths.size()], '\x01');
    if (k % 2 == 1) {
      e.origin = std::string(lengths[(k + 5) % lengths.size()] + 1, 'o');
      e.origin_offset = static_cast<log_offset>(ints[k]);
    }
    batch.push_back(e);
  }
  std::string expected;
  encode_log_record(batch, expected);
  ASSERT_EQ(log_record_size(batch), expected.size());
  std::string area(expected.size(), '\0');
  ASSERT_TRUE(write_log_record(batch, area.data(), area.size()));
  EXPECT_EQ(area, expected);
  // A wrong size is refused, never overrun.
  std::string small(expected.size() - 1 + 8, '\x5a');
  EXPECT_FALSE(write_log_record(batch, small.data(), expected.size() - 1));
  EXPECT_EQ(small.substr(expected.size() - 1), std::string(8, '\x5a'));
  EXPECT_FALSE(write_log_record(batch, area.data(), 0));
}
