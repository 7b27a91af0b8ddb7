// Regressions found by the libFuzzer targets (tests/fuzz, docs/fuzzing.md) in the route language:
// each test is the minimal form of an input kept in tests/fuzz/regressions/routes/.

#include "actors/route_table.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace sluice;

// fuzz_routes: regressions/routes/section_header_after_list_close.ini. A list closed on the line of
// the next section header (`][routes.b]`) hid that header from the error locator, so the error came
// without the `line L, column C:` that PUT /v1/admin/routes and the console promise.
TEST(route_fuzz_regressions, an_error_in_a_section_whose_header_follows_other_text_still_names_its_line) {
  route_table table;
  auto err = compile_routes_text("[routes.a]\nsinks = [\"s\"\n][routes.b]\nwhen = \"ts <\"\n"
                                 "sinks = [\"s\"]\n",
                                 {"s"}, table);
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.rfind("line 3, column 2: ", 0), 0u) << err;
  EXPECT_NE(err.find("routes.b.when"), std::string::npos) << err;
}

TEST(route_fuzz_regressions, every_route_error_starts_with_a_line_and_column) {
  for (const char* text : {"[routes.a]\nsinks = [\"nope\"]\n", "[routes.a]\nwhen = \"(\"\nsinks = [\"s\"]\n",
                           "[routes.a]\nsinks = []\n", "x = 1\n", "[routes.a]\nkeep = [\"a\"]\ndrop = [\"b\"]\nsinks = [\"s\"]\n"}) {
    route_table table;
    auto err = compile_routes_text(text, {"s"}, table);
    ASSERT_FALSE(err.empty()) << text;
    EXPECT_EQ(err.rfind("line ", 0), 0u) << err;
  }
}

namespace {

std::string repeat(std::string_view s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i)
    out += s;
  return out;
}

event play_event() {
  event e;
  e.type = "play";
  e.device_id = "d";
  return e;
}

} // namespace

// fuzz_routes: regressions/routes/deep_parentheses.txt and deep_not_chain.txt. The recursive-descent
// parser recursed once per '(' and per 'not': a long enough `when` (PUT /v1/admin/routes takes
// megabytes) overflowed the stack.
TEST(route_fuzz_regressions, a_condition_in_a_hundred_thousand_parentheses_is_an_error_not_a_crash) {
  predicate p;
  std::string err;
  size_t at = 0;
  EXPECT_FALSE(p.compile(repeat("(", 100000) + "type == \"play\"" + repeat(")", 100000), err, at));
  EXPECT_NE(err.find("nests deeper than 256 levels"), std::string::npos) << err;
  EXPECT_EQ(err.rfind("line 1, column 258: ", 0), 0u) << err;
  EXPECT_EQ(at, 257u);
}

TEST(route_fuzz_regressions, a_hundred_thousand_nots_are_an_error_not_a_crash) {
  predicate p;
  std::string err;
  EXPECT_FALSE(p.compile(repeat("not ", 100000) + "type == \"play\"", err));
  EXPECT_NE(err.find("nests deeper than 256 levels"), std::string::npos) << err;
}

// fuzz_routes: regressions/routes/long_or_chain_eval_recursion.txt. A long and/or chain compiled
// (the parser loops) into a tree as deep as the chain is long, and evaluation recursed through it:
// the first event routed crashed the node.
TEST(route_fuzz_regressions, a_hundred_thousand_ors_are_an_error_not_a_crash_at_evaluation) {
  predicate p;
  std::string err;
  EXPECT_FALSE(p.compile(repeat("type == \"x\" or ", 100000) + "true", err));
  EXPECT_NE(err.find("nests deeper than 256 levels"), std::string::npos) << err;
}

TEST(route_fuzz_regressions, conditions_up_to_the_depth_bound_compile_and_evaluate) {
  predicate chain;
  std::string err;
  ASSERT_TRUE(chain.compile(repeat("type == \"x\" or ", 127) + "type == \"play\"", err)) << err;
  EXPECT_TRUE(chain.eval(play_event()));
  predicate nested;
  ASSERT_TRUE(nested.compile(repeat("(not ", 100) + "type == \"play\"" + repeat(")", 100), err))
    << err;
  EXPECT_TRUE(nested.eval(play_event())); // an even number of nots
}
