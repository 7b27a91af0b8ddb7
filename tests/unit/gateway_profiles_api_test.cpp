// Validation of the watch-time query parameters (gateway/profiles_api.cpp).

#include "gateway/profiles_api.hpp"

#include <gtest/gtest.h>

using namespace sluice::gateway;

namespace {

std::string check(std::map<std::string, std::string> query, std::string* what = nullptr) {
  std::string w;
  auto err = parse_watch_time_params(query, w);
  if (what != nullptr)
    *what = w;
  return err;
}

} // namespace

TEST(profiles_api, watch_time_accepts_inclusive_dates_and_defaults) {
  std::string what;
  EXPECT_EQ(check({{"from", "2024-11-01"}, {"to", "2024-11-30"}}, &what), "");
  EXPECT_EQ(what, "watch-time 2024-11-01 2024-11-30");
  EXPECT_EQ(check({}, &what), "");
  EXPECT_EQ(what, "watch-time - -");
  EXPECT_EQ(check({{"to", "2024-11-30"}}, &what), "");
  EXPECT_EQ(what, "watch-time - 2024-11-30");
  EXPECT_EQ(check({{"from", "2024-11-30"}, {"to", "2024-11-30"}}), "");
  EXPECT_EQ(check({{"from", "2024-01-01"}, {"to", "2024-12-31"}}), "") << "366 days";
}

TEST(profiles_api, watch_time_rejects_bad_parameters_naming_them) {
  EXPECT_EQ(check({{"from", "2024-11-31"}}),
            "{\"error\":\"from must be a date YYYY-MM-DD, got \\\"2024-11-31\\\"\","
            "\"parameter\":\"from\"}");
  EXPECT_NE(check({{"to", "tomorrow"}}).find("\"parameter\":\"to\""), std::string::npos);
  EXPECT_EQ(check({{"from", "2024-11-02"}, {"to", "2024-11-01"}}),
            "{\"error\":\"from (2024-11-02) is after to (2024-11-01)\",\"parameter\":\"from\"}");
  EXPECT_NE(check({{"from", "2023-01-01"}, {"to", "2024-01-02"}}).find("longer than 366 days"),
            std::string::npos);
  EXPECT_NE(check({{"days", "3"}}).find("\"parameter\":\"days\""), std::string::npos);
}
