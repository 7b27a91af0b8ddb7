// parse_rfc3339_ms: the RFC 3339 subset clients send as `ts`.

#include "messages/codec.hpp"

#include <gtest/gtest.h>

using sluice::parse_rfc3339_ms;

namespace {

constexpr int64_t hour_ms = 3600 * 1000;
constexpr int64_t minute_ms = 60 * 1000;

} // namespace

TEST(rfc3339, parses_the_unix_epoch_as_zero) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
}

TEST(rfc3339, parses_a_utc_timestamp_to_epoch_milliseconds) {
  EXPECT_EQ(parse_rfc3339_ms("2024-11-22T10:00:00Z"), 1732269600000);
}

TEST(rfc3339, accepts_lowercase_t_and_z_and_a_space_separator) {
  EXPECT_EQ(parse_rfc3339_ms("2024-11-22t10:00:00z"), 1732269600000);
  EXPECT_EQ(parse_rfc3339_ms("2024-11-22 10:00:00Z"), 1732269600000);
}

TEST(rfc3339, keeps_milliseconds_of_a_fraction_and_truncates_finer_digits) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00.5Z"), 500);
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00.12Z"), 120);
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00.123Z"), 123);
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00.123999999Z"), 123);
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00.000001Z"), 0);
}

TEST(rfc3339, subtracts_a_positive_offset_and_adds_a_negative_one) {
  EXPECT_EQ(parse_rfc3339_ms("2024-11-22T11:00:00+01:00"), 1732269600000);
  EXPECT_EQ(parse_rfc3339_ms("2024-11-22T04:30:00-05:30"), 1732269600000);
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00+23:59"), -(23 * hour_ms + 59 * minute_ms));
  EXPECT_EQ(parse_rfc3339_ms("2024-11-22T10:00:00-00:00"), 1732269600000);
}

TEST(rfc3339, an_offset_can_move_the_instant_across_a_day_boundary) {
  EXPECT_EQ(parse_rfc3339_ms("2024-11-21T23:00:00-11:00"), 1732269600000);
}

TEST(rfc3339, gives_negative_values_before_1970) {
  EXPECT_EQ(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), -1);
  EXPECT_EQ(parse_rfc3339_ms("0001-01-01T00:00:00Z"), -62135596800000);
}

TEST(rfc3339, handles_the_last_representable_year) {
  EXPECT_EQ(parse_rfc3339_ms("9999-12-31T23:59:59Z"), 253402300799000);
}

TEST(rfc3339, accepts_february_29_only_in_leap_years) {
  EXPECT_EQ(parse_rfc3339_ms("2024-02-29T12:00:00Z"), 1709208000000);
  EXPECT_EQ(parse_rfc3339_ms("2000-02-29T00:00:00Z"), 951782400000);
  EXPECT_EQ(parse_rfc3339_ms("2023-02-29T00:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_rfc3339_ms("1900-02-29T00:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_rfc3339_ms("2024-02-30T00:00:00Z"), std::nullopt);
}

TEST(rfc3339, rejects_out_of_range_dates_and_times) {
  for (const char* text : {"2024-00-10T00:00:00Z", "2024-13-10T00:00:00Z", "2024-04-00T00:00:00Z",
                           "2024-04-31T00:00:00Z", "2024-01-32T00:00:00Z", "2024-01-01T24:00:00Z",
                           "2024-01-01T00:60:00Z", "2024-01-01T00:00:61Z",
                           "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00+01:60"})
    EXPECT_EQ(parse_rfc3339_ms(text), std::nullopt) << text;
}

TEST(rfc3339, counts_a_leap_second_as_the_start_of_the_next_minute) {
  EXPECT_EQ(parse_rfc3339_ms("2016-12-31T23:59:60Z"), 1483228800000);
}

TEST(rfc3339, rejects_garbage_and_incomplete_forms) {
  for (const char* text :
       {"", "garbage", "2024-11-22", "2024-11-22T10:00:00", "2024-11-22T10:00Z",
        "2024-11-22T10:00:00.Z", "2024-11-22T10:00:00ZZ", "2024-11-22T10:00:00Z ",
        " 2024-11-22T10:00:00Z", "2024-1-22T10:00:00Z", "2024/11/22T10:00:00Z",
        "2024-11-22X10:00:00Z", "2024-11-22T10:00:00+0100", "2024-11-22T10:00:00+01",
        "2024-11-22T10:00:00+01:0", "+2024-11-22T10:00:00Z", "2024-11-22T1a:00:00Z",
        "2024-11-22T10:00:00.12a3Z", "1732269600000"})
    EXPECT_EQ(parse_rfc3339_ms(text), std::nullopt) << '"' << text << '"';
}
