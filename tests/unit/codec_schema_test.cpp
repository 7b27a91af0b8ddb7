// Schema validation: every rule, its message and its metric rule name.

#include "messages/codec.hpp"
#include "messages/schema.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

/// The single event of a JSON body.
event one(const std::string& json) {
  auto b = decode_json(json, 1000);
  EXPECT_TRUE(b.ok()) << b.error;
  EXPECT_EQ(b.events.size(), 1u) << json;
  return b.events.empty() ? event{} : b.events.front();
}

field_rule rule(std::string name, field_type t) {
  field_rule f;
  f.name = std::move(name);
  f.type = t;
  return f;
}

/// A `play` schema (version 2) exercising every rule.
schema_registry play_registry() {
  event_schema s;
  s.type = "play";
  s.version = 2;
  auto title = rule("title_id", field_type::string);
  title.required = true;
  title.pattern = "^t-[0-9]+$";
  title.max_length = 12;
  s.fields.push_back(title);
  auto position = rule("position_ms", field_type::integer);
  position.required = true;
  position.min = 0;
  position.max = 36000000;
  s.fields.push_back(position);
  auto quality = rule("quality", field_type::string);
  quality.enum_values = {"sd", "hd", "uhd"};
  s.fields.push_back(quality);
  auto ratio = rule("ratio", field_type::number);
  ratio.min = 0;
  ratio.max = 1;
  s.fields.push_back(ratio);
  s.fields.push_back(rule("muted", field_type::boolean));
  s.fields.push_back(rule("player", field_type::object));
  auto tags = rule("tags", field_type::array);
  tags.max_items = 2;
  s.fields.push_back(tags);
  s.fields.push_back(rule("started", field_type::timestamp));
  s.max_event_bytes = 400;
  schema_registry r;
  EXPECT_EQ(r.add(s), "");
  return r;
}

struct outcome {
  bool ok;
  std::string rule;
  std::string message;
  std::string label;
};

outcome check(const schema_registry& r, const std::string& json) {
  auto e = one(json);
  const event_schema* s = nullptr;
  schema_violation v;
  bool ok = r.validate(e, s, v);
  return {ok, std::string{v.rule}, v.message, s ? s->label : ""};
}

const std::string head = R"({"type":"play","device_id":"tv-1","ts":1,)";

TEST(schema_validation, a_valid_event_passes_and_names_its_schema_version) {
  auto r = play_registry();
  auto o = check(r, head + R"("title_id":"t-42","position_ms":0,"quality":"hd","ratio":0.5,)"
                           R"("muted":true,"player":{"codec":"h264"},"tags":["a"],)"
                           R"("started":"2024-11-22T00:00:00Z","extra":1})");
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.label, "play@2");
}

TEST(schema_validation, each_rule_reports_the_field_and_the_rule) {
  auto r = play_registry();
  struct row {
    std::string attrs;
    std::string rule;
    std::string message;
  };
  const row rows[] = {
    {R"("position_ms":0)", "required", "schema play@2: field title_id: missing (required)"},
    {R"("title_id":"t-1","position_ms":-1)", "min",
     "schema play@2: field position_ms: below minimum 0"},
    {R"("title_id":"t-1","position_ms":36000001)", "max",
     "schema play@2: field position_ms: above maximum 36000000"},
    {R"("title_id":"t-1","position_ms":"5")", "type",
     "schema play@2: field position_ms: expected int, got string"},
    {R"("title_id":"t-1","position_ms":1.5)", "type",
     "schema play@2: field position_ms: expected int, got number"},
    {R"("title_id":"x-1","position_ms":0)", "pattern",
     "schema play@2: field title_id: value \"x-1\" does not match pattern ^t-[0-9]+$"},
    {R"("title_id":"t-1234567890123","position_ms":0)", "max-length",
     "schema play@2: field title_id: string of 15 bytes, longer than max-length 12"},
    {R"("title_id":"t-1","position_ms":0,"quality":"4k")", "enum",
     "schema play@2: field quality: value \"4k\" not in enum [sd, hd, uhd]"},
    {R"("title_id":"t-1","position_ms":0,"ratio":1.5)", "max",
     "schema play@2: field ratio: above maximum 1"},
    {R"("title_id":"t-1","position_ms":0,"muted":"yes")", "type",
     "schema play@2: field muted: expected bool, got string"},
    {R"("title_id":"t-1","position_ms":0,"player":[1])", "type",
     "schema play@2: field player: expected object, got array"},
    {R"("title_id":"t-1","position_ms":0,"tags":["a","b","c"])", "max-items",
     "schema play@2: field tags: 3 items, more than max-items 2"},
    {R"("title_id":"t-1","position_ms":0,"started":"yesterday")", "type",
     "schema play@2: field started: expected timestamp (epoch ms or RFC 3339), got a string "
     "that is not RFC 3339"},
    {R"("title_id":"t-1","position_ms":0,"title_id2":null)", "", ""},
  };
  for (auto& x : rows) {
    auto o = check(r, head + x.attrs + "}");
    if (x.rule.empty()) {
      EXPECT_TRUE(o.ok) << x.attrs << ": " << o.message;
      continue;
    }
    EXPECT_FALSE(o.ok) << x.attrs;
    EXPECT_EQ(o.rule, x.rule) << x.attrs;
    EXPECT_EQ(o.message, x.message) << x.attrs;
  }
}

TEST(schema_validation, an_integer_is_a_number_and_an_epoch_ms_is_a_timestamp) {
  auto r = play_registry();
  EXPECT_TRUE(check(r, head + R"("title_id":"t-1","position_ms":0,"ratio":1,"started":17})").ok);
}

TEST(schema_validation, an_event_above_max_event_bytes_is_refused) {
  auto r = play_registry();
  auto o = check(r, head + R"("title_id":"t-1","position_ms":0,"blob":")" + std::string(500, 'x')
                      + "\"}");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.rule, "max-event-bytes");
  EXPECT_NE(o.message.find("more than max-event-bytes 400"), std::string::npos) << o.message;
}

TEST(schema_validation, other_fields_are_refused_when_the_schema_says_so) {
  event_schema s;
  s.type = "stop";
  s.allow_other_fields = false;
  s.fields.push_back(rule("position_ms", field_type::integer));
  schema_registry r;
  ASSERT_EQ(r.add(s), "");
  auto o = check(r, R"({"type":"stop","device_id":"d","ts":1,"position_ms":1,"oops":2})");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.rule, "unknown-field");
  EXPECT_EQ(o.message, "schema stop@1: field oops: not in the schema (allow-other-fields is false)");
}

TEST(schema_validation, types_without_a_schema_follow_the_unknown_types_policy) {
  auto r = play_registry();
  auto o = check(r, R"({"type":"click","device_id":"d","ts":1})");
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.label, "");
  r.unknown_types = schema_registry::unknown_policy::reject;
  o = check(r, R"({"type":"click","device_id":"d","ts":1})");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.rule, "unknown-type");
  EXPECT_EQ(o.message, "no schema for event type 'click' (schemas.unknown-types = \"reject\")");
}

TEST(schema_validation, an_event_without_attributes_only_fails_required_fields) {
  auto r = play_registry();
  auto o = check(r, R"({"type":"play","device_id":"d","ts":1})");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.rule, "required");
}

TEST(schema_validation, more_than_64_fields_are_tracked) {
  event_schema s;
  s.type = "wide";
  for (int i = 0; i < 70; ++i) {
    auto f = rule("f" + std::to_string(100 + i), field_type::integer);
    f.required = true;
    s.fields.push_back(f);
  }
  schema_registry r;
  ASSERT_EQ(r.add(s), "");
  std::string json = R"({"type":"wide","device_id":"d","ts":1)";
  for (int i = 0; i < 69; ++i)
    json += ",\"f" + std::to_string(100 + i) + "\":1";
  auto o = check(r, json + "}");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.message, "schema wide@1: field f169: missing (required)");
  o = check(r, json + ",\"f169\":2}");
  EXPECT_TRUE(o.ok) << o.message;
}

TEST(schema_registry_config, bad_schemas_are_refused_with_the_field_named) {
  schema_registry r;
  event_schema s;
  s.type = "play";
  auto f = rule("title_id", field_type::string);
  f.pattern = "(unclosed";
  s.fields.push_back(f);
  auto err = r.add(s);
  EXPECT_NE(err.find("schema play: field title_id: invalid pattern"), std::string::npos) << err;
  s.fields = {rule("a", field_type::string)};
  s.fields[0].min = 1;
  err = r.add(s);
  EXPECT_NE(err.find("min and max need type int or number"), std::string::npos) << err;
  s.fields = {rule("a", field_type::integer), rule("a", field_type::string)};
  EXPECT_NE(r.add(s).find("declared twice"), std::string::npos);
}

TEST(schema_registry_config, schemas_render_as_json) {
  auto r = play_registry();
  auto json = r.to_json();
  EXPECT_NE(json.find(R"("unknown_types":"accept")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("label":"play@2")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"({"name":"position_ms","type":"int","required":true,"min":0,)"
                      R"("max":36000000})"),
            std::string::npos)
    << json;
  EXPECT_NE(json.find(R"("enum":["sd","hd","uhd"])"), std::string::npos) << json;
}

} // namespace
} // namespace sluice
