// RFC 3339 timestamps → epoch milliseconds, with no date library.
//
// Accepted: `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+HH:MM|-HH:MM)`. Fractions of any length are
// truncated to milliseconds. A leap second (`:60`) is accepted and counts as the first
// millisecond(s) of the next minute, as POSIX time has no room for it.

#include "messages/codec.hpp"

namespace sluice {

namespace {

constexpr int64_t ms_per_second = 1000;
constexpr int64_t ms_per_minute = 60 * ms_per_second;
constexpr int64_t ms_per_hour = 60 * ms_per_minute;
constexpr int64_t ms_per_day = 24 * ms_per_hour;

/// Length of the mandatory part `YYYY-MM-DDTHH:MM:SS`.
constexpr size_t date_time_length = 19;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads `n` digits at `pos`; false when any is not a digit.
bool read_digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size())
    return false;
  int v = 0;
  for (size_t k = 0; k < n; ++k) {
    char c = s[pos + k];
    if (!is_digit(c))
      return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

bool is_leap_year(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int y, int m) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

} // namespace

std::optional<int64_t> parse_rfc3339_ms(std::string_view s) {
  int year, month, day, hour, minute, second;
  if (!read_digits(s, 0, 4, year) || s.size() < date_time_length || s[4] != '-'
      || !read_digits(s, 5, 2, month) || s[7] != '-' || !read_digits(s, 8, 2, day))
    return std::nullopt;
  char sep = s[10];
  if (sep != 'T' && sep != 't' && sep != ' ')
    return std::nullopt;
  if (!read_digits(s, 11, 2, hour) || s[13] != ':' || !read_digits(s, 14, 2, minute)
      || s[16] != ':' || !read_digits(s, 17, 2, second))
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23
      || minute > 59 || second > 60)
    return std::nullopt;
  size_t pos = date_time_length;
  int64_t fraction_ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t digits = 0;
    int64_t scale = 100;
    while (pos < s.size() && is_digit(s[pos])) {
      if (digits < 3) {
        fraction_ms += (s[pos] - '0') * scale;
        scale /= 10;
      }
      ++digits;
      ++pos;
    }
    if (digits == 0)
      return std::nullopt;
  }
  if (pos >= s.size())
    return std::nullopt; // the offset is mandatory
  int64_t offset_ms = 0;
  char zone = s[pos];
  if (zone == 'Z' || zone == 'z') {
    ++pos;
  } else if (zone == '+' || zone == '-') {
    int off_hour, off_minute;
    if (!read_digits(s, pos + 1, 2, off_hour) || pos + 3 >= s.size() || s[pos + 3] != ':'
        || !read_digits(s, pos + 4, 2, off_minute) || off_hour > 23 || off_minute > 59)
      return std::nullopt;
    offset_ms = off_hour * ms_per_hour + off_minute * ms_per_minute;
    if (zone == '-')
      offset_ms = -offset_ms;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size())
    return std::nullopt;
  int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return days * ms_per_day + hour * ms_per_hour + minute * ms_per_minute + second * ms_per_second
         + fraction_ms - offset_ms;
}

} // namespace sluice
