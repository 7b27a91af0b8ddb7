// Parquet's RLE / bit-packed hybrid and PLAIN helpers against byte sequences from the format spec
// (apache/parquet-format Encodings.md) and derived by hand from it.

#include "persistence/parquet_encoding.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sluice::persistence::parquet::encoding;

namespace {

using v = std::vector<uint8_t>;

v bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

template <class T>
v hybrid(const std::vector<T>& values, int width) {
  std::string out;
  rle_hybrid(out, values, width);
  return bytes(out);
}

} // namespace

TEST(parquet_encoding, bit_width_is_the_bits_needed_for_the_largest_value) {
  EXPECT_EQ(bit_width(0), 0);
  EXPECT_EQ(bit_width(1), 1);
  EXPECT_EQ(bit_width(2), 2);
  EXPECT_EQ(bit_width(255), 8);
  EXPECT_EQ(bit_width(256), 9);
  EXPECT_EQ(bit_width(UINT32_MAX), 32);
}

TEST(parquet_encoding, bit_packing_matches_the_spec_example_for_zero_to_seven_at_width_three) {
  // Encodings.md: values 0..7 with bit width 3 pack to 10001000 11000110 11111010.
  EXPECT_EQ(hybrid(std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7}, 3),
            (v{0x03, 0x88, 0xC6, 0xFA}));
}

TEST(parquet_encoding, a_long_run_of_one_value_becomes_a_single_rle_run) {
  // Header = count << 1 (LSB 0 = RLE), then the value in ceil(width / 8) bytes.
  EXPECT_EQ(hybrid(std::vector<uint8_t>(10, 1), 1), (v{0x14, 0x01}));
  EXPECT_EQ(hybrid(std::vector<uint32_t>(8, 300), 9), (v{0x10, 0x2C, 0x01}));
  EXPECT_EQ(hybrid(std::vector<uint8_t>(1000, 0), 1), (v{0xD0, 0x0F, 0x00}));
}

TEST(parquet_encoding, short_runs_are_bit_packed_lsb_first_and_zero_padded) {
  EXPECT_EQ(hybrid(std::vector<uint8_t>{1, 0, 1, 0, 1, 0, 1, 0}, 1), (v{0x03, 0x55}));
  EXPECT_EQ(hybrid(std::vector<uint8_t>{1, 0, 1}, 1), (v{0x03, 0x05}));
}

TEST(parquet_encoding, literals_before_a_run_are_completed_to_a_whole_group_from_the_run) {
  // [0,1,0] + twelve 1s: five 1s complete the group (0b11111010), the seven left are < 8 and
  // go into a final padded group.
  std::vector<uint8_t> values{0, 1, 0};
  values.insert(values.end(), 12, 1);
  EXPECT_EQ(hybrid(values, 1), (v{0x03, 0xFA, 0x03, 0x7F}));
  // [0,1,0] + twenty 1s: after the group is completed, fifteen 1s remain: one RLE run.
  std::vector<uint8_t> longer{0, 1, 0};
  longer.insert(longer.end(), 20, 1);
  EXPECT_EQ(hybrid(longer, 1), (v{0x03, 0xFA, 0x1E, 0x01}));
}

TEST(parquet_encoding, an_empty_input_writes_nothing_and_a_bad_width_throws) {
  EXPECT_TRUE(hybrid(std::vector<uint32_t>{}, 4).empty());
  EXPECT_THROW(hybrid(std::vector<uint32_t>{1}, 0), std::invalid_argument);
  EXPECT_THROW(hybrid(std::vector<uint32_t>{1}, 33), std::invalid_argument);
}

TEST(parquet_encoding, plain_helpers_write_little_endian_and_length_prefixed_byte_arrays) {
  std::string out;
  put_le32(out, 0x01020304);
  put_le64(out, 0x0102030405060708ULL);
  put_byte_array(out, "hi", 2);
  EXPECT_EQ(bytes(out), (v{0x04, 0x03, 0x02, 0x01, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                           0x02, 0x00, 0x00, 0x00, 'h', 'i'}));
}

TEST(parquet_encoding, the_string_dictionary_keeps_first_seen_indices_across_growth) {
  string_dictionary dict;
  constexpr int distinct = 5000; // several doublings of the index
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < distinct; ++i) {
      auto [index, added] = dict.insert("value-" + std::to_string(i));
      EXPECT_EQ(index, static_cast<uint32_t>(i));
      EXPECT_EQ(added, round == 0);
    }
  }
  EXPECT_EQ(dict.size(), static_cast<size_t>(distinct));
  std::string plain;
  for (int i = 0; i < distinct; ++i) {
    std::string v = "value-" + std::to_string(i);
    put_byte_array(plain, v.data(), v.size());
  }
  EXPECT_EQ(dict.plain(), plain) << "the dictionary page body is PLAIN in index order";
  EXPECT_EQ(dict.insert("").first, static_cast<uint32_t>(distinct)) << "the empty string is a value";
  dict.clear();
  EXPECT_TRUE(dict.empty());
  EXPECT_EQ(dict.insert("value-7"), (std::pair<uint32_t, bool>{0, true}));
}
