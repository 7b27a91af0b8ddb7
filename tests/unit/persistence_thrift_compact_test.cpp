// The Thrift compact encoder against byte sequences derived by hand from the compact protocol
// spec (apache/thrift doc/specs/thrift-compact-protocol.md).

#include "persistence/thrift_compact.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sluice::persistence::thrift;

namespace {

std::vector<uint8_t> bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

using v = std::vector<uint8_t>;

} // namespace

TEST(thrift_compact, varints_are_unsigned_leb128) {
  std::string out;
  put_uvarint(out, 0);
  put_uvarint(out, 127);
  put_uvarint(out, 300);
  EXPECT_EQ(bytes(out), (v{0x00, 0x7F, 0xAC, 0x02}));
}

TEST(thrift_compact, zigzag_maps_small_magnitudes_to_small_codes) {
  EXPECT_EQ(zigzag(0), 0u);
  EXPECT_EQ(zigzag(-1), 1u);
  EXPECT_EQ(zigzag(1), 2u);
  EXPECT_EQ(zigzag(-2), 3u);
  EXPECT_EQ(zigzag(2147483647), 4294967294u);
  EXPECT_EQ(zigzag(-2147483648LL), 4294967295u);
  EXPECT_EQ(zigzag(INT64_MIN), UINT64_MAX);
}

TEST(thrift_compact, increasing_field_ids_use_the_one_byte_delta_header) {
  std::string out;
  compact_writer w{out};
  w.field_i32(1, 1);    // delta 1, type 5 → 0x15, zigzag(1) = 2
  w.field_i64(3, -1);   // delta 2, type 6 → 0x26, zigzag(-1) = 1
  w.field_binary(4, "abc"); // delta 1, type 8 → 0x18, length 3
  w.end_struct();
  EXPECT_EQ(bytes(out), (v{0x15, 0x02, 0x26, 0x01, 0x18, 0x03, 'a', 'b', 'c', 0x00}));
  EXPECT_EQ(w.depth(), 0u);
}

TEST(thrift_compact, a_delta_over_fifteen_or_a_smaller_id_uses_the_long_header) {
  std::string out;
  compact_writer w{out};
  w.field_i32(16, 0); // type byte 0x05, then zigzag(16) = 32 as varint
  w.field_i32(3, 0);  // id went down: long form again, zigzag(3) = 6
  w.end_struct();
  EXPECT_EQ(bytes(out), (v{0x05, 0x20, 0x00, 0x05, 0x06, 0x00, 0x00}));
}

TEST(thrift_compact, bool_fields_carry_their_value_in_the_type_nibble) {
  std::string out;
  compact_writer w{out};
  w.field_bool(1, true);
  w.field_bool(2, false);
  w.end_struct();
  EXPECT_EQ(bytes(out), (v{0x11, 0x12, 0x00}));
}

TEST(thrift_compact, i16_fields_are_zigzag_varints_of_type_four) {
  std::string out;
  compact_writer w{out};
  w.field_i16(7, -3);
  w.end_struct();
  EXPECT_EQ(bytes(out), (v{0x74, 0x05, 0x00}));
}

TEST(thrift_compact, short_lists_carry_size_and_element_type_in_one_byte) {
  std::string out;
  compact_writer w{out};
  w.field_list(1, compact_type::i32, 3);
  w.elem_i32(1);
  w.elem_i32(2);
  w.elem_i32(3);
  w.field_list(2, compact_type::binary, 1);
  w.elem_binary("x");
  w.end_struct();
  EXPECT_EQ(bytes(out), (v{0x19, 0x35, 0x02, 0x04, 0x06, 0x19, 0x18, 0x01, 'x', 0x00}));
}

TEST(thrift_compact, lists_of_fifteen_or_more_write_their_size_as_a_varint) {
  std::string out;
  compact_writer w{out};
  w.field_list(1, compact_type::i64, 15);
  for (int i = 0; i < 15; ++i)
    w.elem_i64(0);
  w.end_struct();
  v expected{0x19, 0xF6, 0x0F};
  expected.insert(expected.end(), 15, 0x00);
  expected.push_back(0x00);
  EXPECT_EQ(bytes(out), expected);
}

TEST(thrift_compact, nested_structs_restart_field_deltas_and_restore_the_outer_ones) {
  std::string out;
  compact_writer w{out};
  w.field_struct(1);  // 0x1C
  w.field_i32(1, 5);  // inner id 1: 0x15 0x0A
  w.end_struct();     // 0x00
  w.field_i32(2, 7);  // outer delta from 1: 0x15 0x0E
  w.field_list(3, compact_type::structure, 2); // 0x19 0x2C
  w.begin_struct();
  w.field_i32(2, 1); // delta 2 from 0: 0x25 0x02
  w.end_struct();
  w.begin_struct();
  w.end_struct(); // empty struct: just stop
  w.end_struct();
  EXPECT_EQ(bytes(out), (v{0x1C, 0x15, 0x0A, 0x00, 0x15, 0x0E, 0x19, 0x2C, 0x25, 0x02, 0x00,
                           0x00, 0x00}));
}

TEST(thrift_compact, ending_more_structs_than_were_opened_throws) {
  std::string out;
  compact_writer w{out};
  w.end_struct();
  EXPECT_THROW(w.end_struct(), std::logic_error);
  EXPECT_THROW(w.field_i32(1, 1), std::logic_error);
}
