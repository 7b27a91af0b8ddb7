// A predicate that is one envelope string comparison (`type == "error"`, the reference job's route)
// is evaluated without the tree walk (issue 9); these tests hold it to the tree's answers.

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

TEST(predicate_envelope, a_single_envelope_string_comparison_answers_as_the_tree_does) {
  const std::vector<std::string> fields = {"id", "type", "device_id", "profile_id", "attrs.type"};
  const std::vector<std::string> literals = {"error", "", "e", "errors", "rror"};
  const std::vector<std::string> values = {"error", "", "e", "errors", "Error", "rror"};
  for (auto& field : fields)
    for (auto* op : {"==", "!="})
      for (auto& lit : literals) {
        std::string text = field + " " + op + " \"" + lit + "\"";
        auto direct = compiled(text);
        auto tree = compiled("not not (" + text + ")"); // the same test through the tree walk
        for (auto& v : values) {
          event e;
          e.id = v;
          e.type = v;
          e.device_id = v;
          e.profile_id = v;
          EXPECT_EQ(direct.eval(e), tree.eval(e)) << text << " on \"" << v << '"';
          EXPECT_EQ(direct.eval(e, nullptr), tree.eval(e, nullptr)) << text << " on \"" << v << '"';
        }
      }
}

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
