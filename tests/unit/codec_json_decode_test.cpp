// decode_json: shapes, envelope rules, attrs, limits and malformed input.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

using namespace sluice;
using sluice::test::mp_text;
using sluice::test::rejection_for;

namespace {

constexpr int64_t ingest = 1732269600123;

decoded_batch decode(std::string_view body, const decode_limits& limits = {}) {
  return decode_json(body, ingest, limits);
}

std::string ev(std::string_view device, std::string_view extra = "") {
  std::string s = R"({"type":"play","device_id":")";
  s += device;
  s += R"(","ts":1700000000000)";
  if (!extra.empty()) {
    s += ',';
    s += extra;
  }
  s += '}';
  return s;
}

// Expects a malformed-JSON error at `offset`.
void expect_malformed_at(std::string_view body, size_t offset) {
  auto b = decode(body);
  ASSERT_FALSE(b.ok()) << body;
  EXPECT_EQ(b.error_offset, offset) << body << " → " << b.error;
  EXPECT_EQ(b.error.rfind("malformed JSON at byte " + std::to_string(offset) + ": ", 0), 0u)
    << b.error;
  EXPECT_TRUE(b.events.empty());
  EXPECT_TRUE(b.rejected.empty());
}

} // namespace

// -- shapes -----------------------------------------------------------------------------------------

TEST(json_decoder, decodes_a_single_event_object) {
  auto b = decode(R"({"id":"e1","type":"play","device_id":"d1","profile_id":"p1","ts":1700000000000})");
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.total, 1u);
  const event& e = b.events[0];
  EXPECT_EQ(e.id, "e1");
  EXPECT_EQ(e.type, "play");
  EXPECT_EQ(e.device_id, "d1");
  EXPECT_EQ(e.profile_id, "p1");
  EXPECT_EQ(e.ts, 1700000000000);
  EXPECT_EQ(e.ingest_ts, ingest);
  EXPECT_EQ(e.offset, 0u);
  EXPECT_EQ(e.attrs, "");
  EXPECT_EQ(b.batch_id, "");
}

TEST(json_decoder, decodes_an_array_of_events_in_client_order) {
  auto b = decode("[" + ev("a") + "," + ev("b") + "," + ev("c") + "]");
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(b.events[0].device_id, "a");
  EXPECT_EQ(b.events[1].device_id, "b");
  EXPECT_EQ(b.events[2].device_id, "c");
  EXPECT_EQ(b.total, 3u);
  EXPECT_TRUE(b.rejected.empty());
}

TEST(json_decoder, decodes_a_wrapper_with_a_numeric_batch_id) {
  auto b = decode(R"({"batch": 17 , "events":[)" + ev("a") + "," + ev("b") + "]}");
  ASSERT_TRUE(b.ok()) << b.error;
  EXPECT_EQ(b.batch_id, "17");
  EXPECT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.total, 2u);
}

TEST(json_decoder, keeps_a_string_batch_id_as_json_text) {
  auto b = decode(R"({"events":[)" + ev("a") + R"(],"batch":"abc"})");
  ASSERT_TRUE(b.ok()) << b.error;
  EXPECT_EQ(b.batch_id, "\"abc\"");
  auto escaped = decode(R"({"events":[],"batch":"a\"b\u00e9"})");
  ASSERT_TRUE(escaped.ok()) << escaped.error;
  EXPECT_EQ(escaped.batch_id, "\"a\\\"b\xc3\xa9\"");
}

TEST(json_decoder, keeps_a_fractional_or_negative_batch_id_as_written) {
  EXPECT_EQ(decode(R"({"events":[],"batch":-1.5e3})").batch_id, "-1.5e3");
}

TEST(json_decoder, leaves_the_batch_id_empty_when_absent_or_null) {
  auto absent = decode(R"({"events":[)" + ev("a") + "]}");
  ASSERT_TRUE(absent.ok()) << absent.error;
  EXPECT_EQ(absent.batch_id, "");
  auto null = decode(R"({"events":[],"batch":null})");
  ASSERT_TRUE(null.ok()) << null.error;
  EXPECT_EQ(null.batch_id, "");
}

TEST(json_decoder, refuses_a_batch_id_that_is_neither_number_nor_string) {
  auto b = decode(R"({"events":[],"batch":{"n":1}})");
  EXPECT_FALSE(b.ok());
  EXPECT_NE(b.error.find("'batch'"), std::string::npos) << b.error;
  EXPECT_EQ(b.error_offset, 0u);
}

TEST(json_decoder, refuses_a_wrapper_whose_events_is_not_an_array) {
  auto b = decode(R"({"events":{"type":"play"},"batch":1})");
  EXPECT_FALSE(b.ok());
  EXPECT_NE(b.error.find("'events' must be an array"), std::string::npos) << b.error;
  EXPECT_TRUE(b.events.empty());
}

TEST(json_decoder, refuses_a_wrapper_with_two_events_fields) {
  auto b = decode(R"({"events":[],"events":[]})");
  EXPECT_FALSE(b.ok());
  EXPECT_NE(b.error.find("more than one 'events'"), std::string::npos) << b.error;
}

TEST(json_decoder, ignores_other_fields_of_the_wrapper) {
  auto b = decode(R"({"client":"tv-app","events":[)" + ev("a") + "]}");
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].attrs, "");
}

TEST(json_decoder, refuses_a_top_level_value_that_is_not_an_object_or_array) {
  for (const char* body : {"42", "\"play\"", "null", "true"}) {
    auto b = decode(body);
    EXPECT_FALSE(b.ok()) << body;
    EXPECT_NE(b.error.find("must be an event object, an array of event objects"),
              std::string::npos)
      << b.error;
  }
}

TEST(json_decoder, decodes_an_empty_array_as_an_empty_batch) {
  auto b = decode(" [ ] ");
  ASSERT_TRUE(b.ok()) << b.error;
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.total, 0u);
}

// -- envelope ---------------------------------------------------------------------------------------

TEST(json_decoder, generates_a_uuid_v4_when_the_id_is_absent_empty_or_null) {
  auto b = decode("[" + ev("a") + "," + ev("b", R"("id":"")") + "," + ev("c", R"("id":null)")
                  + "]");
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 3u);
  const std::regex uuid_v4{"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"};
  for (const auto& e : b.events)
    EXPECT_TRUE(std::regex_match(e.id, uuid_v4)) << e.id;
}

TEST(json_decoder, generated_ids_are_unique) {
  std::string body = "[";
  for (int k = 0; k < 1000; ++k)
    body += (k ? "," : "") + ev("d");
  body += "]";
  auto b = decode(body);
  ASSERT_TRUE(b.ok()) << b.error;
  std::set<std::string> ids;
  for (const auto& e : b.events)
    ids.insert(e.id);
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(json_decoder, keeps_the_client_id) {
  auto b = decode(ev("a", R"("id":"client-\u00e9-1")"));
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].id, "client-\xc3\xa9-1");
}

TEST(json_decoder, reads_a_null_or_absent_profile_id_as_empty) {
  auto b = decode("[" + ev("a", R"("profile_id":null)") + "," + ev("b") + "]");
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[0].profile_id, "");
  EXPECT_EQ(b.events[1].profile_id, "");
}

TEST(json_decoder, reads_ts_as_epoch_ms_or_rfc3339) {
  auto b = decode(R"([{"type":"t","device_id":"d","ts":-5},)"
                  R"({"type":"t","device_id":"d","ts":"2024-11-22T11:00:00.250+01:00"}])");
  ASSERT_EQ(b.events.size(), 2u) << b.error;
  EXPECT_EQ(b.events[0].ts, -5);
  EXPECT_EQ(b.events[1].ts, 1732269600250);
}

TEST(json_decoder, rejects_an_event_without_device_id_and_keeps_the_others) {
  auto b = decode("[" + ev("a") + R"(,{"type":"play","ts":1},)" + ev("c") + "]");
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[0].device_id, "a");
  EXPECT_EQ(b.events[1].device_id, "c");
  ASSERT_EQ(b.rejected.size(), 1u);
  EXPECT_EQ(b.rejected[0].index, 1u);
  EXPECT_EQ(b.rejected[0].error, "missing field 'device_id'");
  EXPECT_EQ(b.total, 3u);
}

TEST(json_decoder, rejects_an_event_without_type_or_ts_naming_the_field) {
  auto b = decode(R"([{"device_id":"d","ts":1},{"type":"t","device_id":"d"}])");
  EXPECT_EQ(rejection_for(b, 0), "missing field 'type'");
  EXPECT_EQ(rejection_for(b, 1), "missing field 'ts'");
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.total, 2u);
}

TEST(json_decoder, rejects_empty_or_mistyped_type_and_device_id) {
  auto b = decode(R"([{"type":"","device_id":"d","ts":1},)"
                  R"({"type":7,"device_id":"d","ts":1},)"
                  R"({"type":"t","device_id":{"x":[1]},"ts":1},)"
                  R"({"type":"t","device_id":null,"ts":1}])");
  EXPECT_EQ(rejection_for(b, 0), "field 'type' must be a non-empty string");
  EXPECT_EQ(rejection_for(b, 1), "field 'type' must be a non-empty string");
  EXPECT_EQ(rejection_for(b, 2), "field 'device_id' must be a non-empty string");
  EXPECT_EQ(rejection_for(b, 3), "field 'device_id' must be a non-empty string");
}

TEST(json_decoder, rejects_a_ts_that_is_neither_integer_ms_nor_rfc3339) {
  const std::string message = "field 'ts' must be epoch milliseconds or an RFC 3339 string";
  auto b = decode(R"([{"type":"t","device_id":"d","ts":1.5},)"
                  R"({"type":"t","device_id":"d","ts":"yesterday"},)"
                  R"({"type":"t","device_id":"d","ts":true},)"
                  R"({"type":"t","device_id":"d","ts":18446744073709551615},)"
                  R"({"type":"t","device_id":"d","ts":null},)"
                  R"({"type":"t","device_id":"d","ts":123456789012345678901234}])");
  ASSERT_TRUE(b.ok()) << b.error;
  for (uint32_t k = 0; k < 6; ++k)
    EXPECT_EQ(rejection_for(b, k), message) << k;
}

TEST(json_decoder, rejects_a_mistyped_id_or_profile_id) {
  auto b = decode("[" + ev("a", R"("id":5)") + "," + ev("b", R"("profile_id":["p"])") + "]");
  EXPECT_EQ(rejection_for(b, 0), "field 'id' must be a string or null");
  EXPECT_EQ(rejection_for(b, 1), "field 'profile_id' must be a string or null");
}

TEST(json_decoder, rejects_array_elements_that_are_not_objects) {
  auto b = decode("[1,\"x\",null,[" + ev("nested") + "]," + ev("ok") + "]");
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].device_id, "ok");
  ASSERT_EQ(b.rejected.size(), 4u);
  for (uint32_t k = 0; k < 4; ++k) {
    EXPECT_EQ(b.rejected[k].index, k);
    EXPECT_EQ(b.rejected[k].error, "the event must be a JSON object");
  }
  EXPECT_EQ(b.total, 5u);
}

TEST(json_decoder, reports_the_first_problem_of_an_event) {
  auto b = decode(R"({"ts":"bad","type":""})");
  EXPECT_EQ(rejection_for(b, 0), "field 'ts' must be epoch milliseconds or an RFC 3339 string");
}

TEST(json_decoder, reads_envelope_keys_written_with_escapes) {
  auto b = decode(R"({"\u0074ype":"play","device_\u0069d":"d","ts":1})");
  ASSERT_EQ(b.events.size(), 1u) << rejection_for(b, 0);
  EXPECT_EQ(b.events[0].type, "play");
  EXPECT_EQ(b.events[0].attrs, "");
}

// -- attrs ------------------------------------------------------------------------------------------

TEST(json_decoder, keeps_every_other_field_in_attrs_in_client_order) {
  auto b = decode(R"({"zeta":1,"type":"t","alpha":"x","device_id":"d","mid":true,"ts":1})");
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(mp_text(b.events[0].attrs), R"({"zeta":1,"alpha":"x","mid":true})");
}

TEST(json_decoder, maps_json_values_to_msgpack_types) {
  auto b = decode(ev("d", R"("neg":-42,"big":18446744073709551615,"min":-9223372036854775808,)"
                          R"("pi":3.25,"f":false,"n":null,"s":"caf\u00e9 \"q\"",)"
                          R"("arr":[1,"two",[3]],"obj":{"k":{"j":null}})"));
  ASSERT_EQ(b.events.size(), 1u) << b.error << rejection_for(b, 0);
  const std::string& attrs = b.events[0].attrs;
  auto oh = msgpack::unpack(attrs.data(), attrs.size());
  const msgpack::object& map = oh.get();
  ASSERT_EQ(map.type, msgpack::type::MAP);
  ASSERT_EQ(map.via.map.size, 9u);
  auto val = [&](uint32_t k) -> const msgpack::object& { return map.via.map.ptr[k].val; };
  EXPECT_EQ(val(0).type, msgpack::type::NEGATIVE_INTEGER);
  EXPECT_EQ(val(0).via.i64, -42);
  EXPECT_EQ(val(1).type, msgpack::type::POSITIVE_INTEGER);
  EXPECT_EQ(val(1).via.u64, 18446744073709551615u);
  EXPECT_EQ(val(2).via.i64, INT64_MIN);
  EXPECT_EQ(val(3).type, msgpack::type::FLOAT64);
  EXPECT_EQ(val(3).via.f64, 3.25);
  EXPECT_EQ(val(4).type, msgpack::type::BOOLEAN);
  EXPECT_FALSE(val(4).via.boolean);
  EXPECT_EQ(val(5).type, msgpack::type::NIL);
  EXPECT_EQ(val(6).as<std::string>(), "caf\xc3\xa9 \"q\"");
  EXPECT_EQ(mp_text(std::string_view{attrs}), R"({"neg":-42,"big":18446744073709551615,)"
                                              R"("min":-9223372036854775808,"pi":3.25,"f":false,)"
                                              R"("n":null,"s":"café \"q\"","arr":[1,"two",[3]],)"
                                              R"("obj":{"k":{"j":null}}})");
}

TEST(json_decoder, keeps_integers_beyond_64_bits_as_doubles) {
  auto b = decode(ev("d", R"("n":123456789012345678901234)"));
  ASSERT_EQ(b.events.size(), 1u) << b.error;
  auto v = find_attr(b.events[0].attrs, "n");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, attr_value::kind::floating);
  EXPECT_DOUBLE_EQ(v->d, 1.2345678901234568e23);
}

TEST(json_decoder, packs_containers_with_16_or_more_elements_and_long_strings) {
  std::string fields;
  std::string expected = "{";
  for (int k = 0; k < 20; ++k) {
    fields += (k ? "," : "") + ("\"k" + std::to_string(k) + "\":" + std::to_string(k));
    expected += (k ? "," : "") + ("\"k" + std::to_string(k) + "\":" + std::to_string(k));
  }
  std::string long_string(300, 'x');
  fields += R"(,"list":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"long":")" + long_string + "\"";
  expected += R"(,"list":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"long":")" + long_string
              + "\"}";
  auto b = decode(ev("d", fields));
  ASSERT_EQ(b.events.size(), 1u) << b.error;
  const std::string& attrs = b.events[0].attrs;
  EXPECT_EQ(static_cast<unsigned char>(attrs[0]), 0xde) << "22 entries use a map16 header";
  EXPECT_EQ(mp_text(std::string_view{attrs}), expected);
}

TEST(json_decoder, accepts_attrs_nested_exactly_to_max_depth) {
  decode_limits limits;
  limits.max_depth = 2;
  auto b = decode(ev("d", R"("a":{"b":[1]},"c":[[]])"), limits);
  ASSERT_EQ(b.events.size(), 1u) << rejection_for(b, 0);
  EXPECT_EQ(mp_text(b.events[0].attrs), R"({"a":{"b":[1]},"c":[[]]})");
}

TEST(json_decoder, rejects_an_event_whose_attrs_nest_deeper_than_max_depth) {
  decode_limits limits;
  limits.max_depth = 2;
  auto b = decode("[" + ev("deep", R"("a":{"b":[[1]]})") + "," + ev("ok", R"("a":{"b":1})") + "]",
                  limits);
  ASSERT_TRUE(b.ok()) << b.error;
  EXPECT_EQ(rejection_for(b, 0), "field 'a' is nested deeper than the max_depth limit (2)");
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].device_id, "ok");
}

TEST(json_decoder, applies_the_default_depth_limit_of_32) {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  auto b = decode("[" + ev("ok", "\"a\":" + nested(32)) + "," + ev("deep", "\"a\":" + nested(33))
                  + "]");
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].device_id, "ok");
  EXPECT_EQ(rejection_for(b, 1), "field 'a' is nested deeper than the max_depth limit (32)");
}

TEST(json_decoder, stores_no_attrs_bytes_for_an_event_without_extra_fields) {
  auto b = decode(ev("d"));
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_TRUE(b.events[0].attrs.empty());
}

// -- limits -----------------------------------------------------------------------------------------

TEST(json_decoder, accepts_exactly_max_events) {
  decode_limits limits;
  limits.max_events = 3;
  auto b = decode("[" + ev("a") + "," + ev("b") + "," + ev("c") + "]", limits);
  ASSERT_TRUE(b.ok()) << b.error;
  EXPECT_EQ(b.events.size(), 3u);
}

TEST(json_decoder, refuses_a_batch_with_more_than_max_events) {
  decode_limits limits;
  limits.max_events = 2;
  for (std::string body : {"[" + ev("a") + "," + ev("b") + "," + ev("c") + "]",
                           R"({"batch":1,"events":[)" + ev("a") + ",1,2]}"}) {
    auto b = decode(body, limits);
    ASSERT_FALSE(b.ok()) << body;
    EXPECT_NE(b.error.find("more than 2 events"), std::string::npos) << b.error;
    EXPECT_NE(b.error.find("max_events"), std::string::npos) << b.error;
    EXPECT_TRUE(b.events.empty());
    EXPECT_TRUE(b.rejected.empty());
  }
}

// -- malformed input --------------------------------------------------------------------------------

TEST(json_decoder, locates_a_truncated_body_at_its_end) {
  std::string full = "[" + ev("a", R"("tags":["x","y"])") + "]";
  for (size_t cut : {size_t{1}, size_t{5}, full.size() / 2, full.size() - 3, full.size() - 1}) {
    std::string body = full.substr(0, cut);
    expect_malformed_at(body, body.size());
  }
}

TEST(json_decoder, locates_a_missing_comma_at_the_token_after_it) {
  //                0123456789012345
  std::string body = R"([{"type":"a" "device_id":"d","ts":1}])";
  expect_malformed_at(body, 13);
  std::string between_events = "[" + ev("a") + " " + ev("b") + "]";
  expect_malformed_at(between_events, ev("a").size() + 2);
}

TEST(json_decoder, locates_a_bad_literal_at_the_literal) {
  std::string prefix = ev("a").substr(0, ev("a").size() - 1) + R"(,"flag":)";
  auto b = decode(prefix + "tru}");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error_offset, prefix.size());
  EXPECT_NE(b.error.find("invalid literal"), std::string::npos) << b.error;
  expect_malformed_at(prefix + "nul}", prefix.size());
  expect_malformed_at(prefix + "fals}", prefix.size());
  expect_malformed_at(R"({"profile_id":nulll,"type":"t","device_id":"d","ts":1})", 14);
}

TEST(json_decoder, locates_a_bad_number_at_the_number) {
  expect_malformed_at(R"({"type":"t","x":1.2.3})", 16);
  expect_malformed_at(R"({"type":"t","x":-})", 16);
}

TEST(json_decoder, refuses_a_number_too_large_for_a_double_as_malformed) {
  std::string prefix = ev("a").substr(0, ev("a").size() - 1) + R"(,"x":)";
  expect_malformed_at(prefix + "1e400}", prefix.size());
}

TEST(json_decoder, locates_a_trailing_comma_at_the_closing_bracket) {
  std::string body = "[" + ev("a") + ",]";
  expect_malformed_at(body, body.size() - 1);
}

TEST(json_decoder, treats_trailing_content_after_the_document_as_malformed) {
  std::string event = ev("a");
  expect_malformed_at(event + " x", event.size() + 1);
  expect_malformed_at(event + event, event.size());
  expect_malformed_at("[" + event + "] [1]", event.size() + 3);
  expect_malformed_at("[" + event + "]]", event.size() + 2);
  auto ok = decode("[" + event + "] \n\t ");
  EXPECT_TRUE(ok.ok()) << "trailing whitespace is fine: " << ok.error;
}

TEST(json_decoder, locates_an_unescaped_control_character_in_a_string) {
  std::string body = R"({"type":"pl)" "\n" R"(ay","device_id":"d","ts":1})";
  expect_malformed_at(body, 11);
}

TEST(json_decoder, locates_invalid_utf8) {
  std::string body = R"({"type":"pl)" "\xff" R"(ay","device_id":"d","ts":1})";
  expect_malformed_at(body, 11);
}

TEST(json_decoder, locates_an_unquoted_key) {
  expect_malformed_at(R"({"type":"t",device_id:"d"})", 12);
}

TEST(json_decoder, refuses_an_empty_body) {
  for (const char* body : {"", "   \n"}) {
    auto b = decode(body);
    EXPECT_FALSE(b.ok());
    EXPECT_EQ(b.error_offset, 0u);
    EXPECT_NE(b.error.find("malformed JSON"), std::string::npos) << b.error;
  }
}

TEST(json_decoder, checks_the_syntax_of_rejected_events_too) {
  // The second element is not an object (a rejection), but its content is malformed.
  expect_malformed_at("[" + ev("a") + ",[1 2]]", ev("a").size() + 5);
}

TEST(json_decoder, reuses_its_per_thread_state_across_calls) {
  auto first = decode("[" + ev("a", R"("x":[1,2,3])") + "]");
  auto broken = decode("[" + ev("a") + ",");
  auto second = decode(ev("b", R"("y":{"z":"w"})"));
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(broken.ok());
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_EQ(mp_text(first.events[0].attrs), R"({"x":[1,2,3]})");
  EXPECT_EQ(mp_text(second.events[0].attrs), R"({"y":{"z":"w"}})");
}
