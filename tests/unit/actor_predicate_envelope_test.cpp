// Predicates that are one envelope string comparison (`type == "error"`, the reference job's route)
// and their neighbours: the answers the tree gives for each envelope field and literal kind.

#include "actors/predicate.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sluice;

namespace {

predicate compiled(const std::string& text) {
  predicate p;
  std::string error;
  EXPECT_TRUE(p.compile(text, error)) << text << ": " << error;
  return p;
}

} // namespace

TEST(predicate_envelope, the_reference_route_matches_only_the_error_type) {
  auto p = compiled("type == \"error\"");
  event e;
  e.type = "error";
  EXPECT_TRUE(p.eval(e));
  e.type = "play";
  EXPECT_FALSE(p.eval(e));
  e.type = "";
  EXPECT_FALSE(p.eval(e));
  auto ne = compiled("type != \"error\"");
  EXPECT_TRUE(ne.eval(e));
  e.type = "error";
  EXPECT_FALSE(ne.eval(e));
}

TEST(predicate_envelope, an_empty_profile_id_is_absent_and_equals_no_string) {
  auto eq = compiled("profile_id == \"\"");
  auto ne = compiled("profile_id != \"\"");
  event e;
  EXPECT_FALSE(eq.eval(e));
  EXPECT_TRUE(ne.eval(e));
  e.profile_id = "p1";
  EXPECT_FALSE(eq.eval(e));
  EXPECT_TRUE(ne.eval(e));
}

TEST(predicate_envelope, comparisons_with_other_literals_keep_their_meaning) {
  event e;
  e.type = "5";
  EXPECT_FALSE(compiled("type == 5").eval(e)) << "a string never equals an integer";
  EXPECT_TRUE(compiled("type != 5").eval(e));
  EXPECT_FALSE(compiled("type == null").eval(e));
  EXPECT_TRUE(compiled("type < \"6\"").eval(e));
}
