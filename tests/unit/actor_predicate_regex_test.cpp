// `matches` with a literal-prefix regex (`^tv-`, `^abc$`) is decided without RE2: the outcome
// equals RE2's for every value.

#include "actors/predicate.hpp"
#include "messages/codec.hpp"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <string>

namespace {

using namespace sluice;

TEST(predicate_regex, literal_prefix_regexes_match_exactly_what_re2_matches) {
  // Regexes as RE2 sees them; the predicate text escapes each backslash once more.
  const char* regexes[] = {"^tv-", "^3\\.", "^abc$", "^a\\-b", "^E[0-9]+$", "^$", "^",
                           "^a.b", "^a\\.b$", "^(ab)", "^a|b", "^a\\d", "^x*"};
  const char* values[] = {"tv-1", "tv", "3.1", "31", "abc", "abcd", "a-b", "", "E12",
                          "a.b",  "axb", "ab", "b", "a1", "xx"};
  for (auto* re : regexes) {
    std::string escaped;
    for (const char* c = re; *c != '\0'; ++c) {
      if (*c == '\\' || *c == '"')
        escaped += '\\';
      escaped += *c;
    }
    predicate p;
    std::string error;
    ASSERT_TRUE(p.compile("v matches \"" + escaped + "\"", error)) << re << ": " << error;
    RE2 direct{re};
    ASSERT_TRUE(direct.ok()) << re;
    for (auto* v : values) {
      auto b = decode_json(std::string{R"({"type":"t","device_id":"d","ts":1,"v":")"} + v + "\"}",
                           5);
      ASSERT_TRUE(b.ok()) << b.error;
      EXPECT_EQ(p.eval(b.events.front()), RE2::PartialMatch(v, direct))
        << "regex " << re << ", value \"" << v << "\"";
    }
  }
}

} // namespace
