#include "gateway/routes_api.hpp"

#include <gtest/gtest.h>

using namespace sluice;
using namespace sluice::gateway;

TEST(routes_api, the_position_of_a_compile_error_is_found_in_both_spellings) {
  size_t line = 0, column = 0;
  ASSERT_TRUE(error_position("line 3, column 17: 'routes.x.when': bad", line, column));
  EXPECT_EQ(line, 3u);
  EXPECT_EQ(column, 17u);
  ASSERT_TRUE(error_position("routes.conf:12:4: unknown key", line, column));
  EXPECT_EQ(line, 12u);
  EXPECT_EQ(column, 4u);
  EXPECT_FALSE(error_position("'routes.x.sinks' is empty; name at least one sink", line, column));
  EXPECT_FALSE(error_position("version 10: no such thing", line, column));
}

TEST(routes_api, a_version_document_names_its_routes_sinks_and_text) {
  route_history::entry e;
  e.version = 4;
  e.effective_from = 1200;
  e.created_ms = 5;
  e.comment = "api";
  e.text = "[routes.errors]\nwhen = \"type == \\\"error\\\"\"\nmask = [\"attrs.email\"]\n"
           "pii = \"hash\"\n";
  auto table = std::make_shared<route_table>();
  route r;
  r.name = "errors";
  r.when = "type == \"error\"";
  r.sinks = {1};
  table->routes.push_back(std::move(r));
  table->unmatched_sinks = {0};
  e.table = table;
  EXPECT_EQ(route_version_json(e, {"events", "errors"}),
            "{\"version\":4,\"effective_from\":1200,\"created_ms\":5,\"comment\":\"api\","
            "\"text\":\"[routes.errors]\\nwhen = \\\"type == \\\\\\\"error\\\\\\\"\\\"\\n"
            "mask = [\\\"attrs.email\\\"]\\npii = \\\"hash\\\"\\n\","
            "\"routes\":[{\"name\":\"errors\",\"when\":\"type == \\\"error\\\"\","
            "\"sinks\":[\"errors\"],\"actions\":{\"mask\":[\"attrs.email\"],\"pii\":\"hash\"}}],"
            "\"unmatched_sinks\":[\"events\"],\"unmatched_actions\":{}}");
}
