// append_json / append_json_string: rendering events for sinks.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>

using namespace sluice;
using sluice::test::envelope;
using sluice::test::mp_builder;

namespace {

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// Parses `json` with simdjson (DOM) and returns its string value; fails the test if invalid.
std::string parse_string_back(const std::string& json) {
  simdjson::dom::parser parser;
  std::string_view value;
  auto err = parser.parse(json).get_string().get(value);
  EXPECT_EQ(err, simdjson::SUCCESS) << json;
  return std::string(value);
}

std::string render(const event& e, std::string_view node = {}) {
  std::string out;
  append_json(out, e, node);
  return out;
}

} // namespace

TEST(json_string, escapes_quotes_backslashes_and_control_characters) {
  EXPECT_EQ(json_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_string("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(json_string(std::string("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(json_string("\x7f/"), "\"\x7f/\"");
  EXPECT_EQ(json_string(""), R"("")");
}

TEST(json_string, passes_valid_utf8_through_unchanged) {
  const std::string text = "café ▶ \xf0\x9f\x8e\xac";
  EXPECT_EQ(json_string(text), "\"" + text + "\"");
  EXPECT_EQ(parse_string_back(json_string(text)), text);
}

TEST(json_string, replaces_invalid_utf8_with_the_replacement_character) {
  EXPECT_EQ(json_string("a\xff" "b"), R"("a\ufffdb")");
  EXPECT_EQ(json_string("\xc3"), R"("\ufffd")") << "truncated sequence";
  EXPECT_EQ(json_string("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")") << "a surrogate";
  EXPECT_EQ(json_string("\xc0\xaf"), R"("\ufffd\ufffd")") << "an overlong form";
  EXPECT_EQ(json_string("é\xffé\n"), "\"é\\ufffdé\\n\"");
  EXPECT_EQ(parse_string_back(json_string("x\xf5\x80y")), "x\xef\xbf\xbd\xef\xbf\xbdy");
}

TEST(json_string, round_trips_every_byte_value_through_a_json_parser) {
  std::string all;
  for (int c = 0; c < 128; ++c)
    all += static_cast<char>(c);
  EXPECT_EQ(parse_string_back(json_string(all)), all);
}

TEST(append_json, writes_the_envelope_in_order_and_omits_empty_profile_and_node) {
  EXPECT_EQ(render(envelope()),
            R"({"id":"e1","type":"play","device_id":"d1","ts":1700000000000,)"
            R"("ingest_ts":1700000000123,"offset":42})");
  event e = envelope();
  e.profile_id = "p1";
  e.ts = -1;
  EXPECT_EQ(render(e, "node-a"),
            R"({"id":"e1","type":"play","device_id":"d1","profile_id":"p1","ts":-1,)"
            R"("ingest_ts":1700000000123,"offset":42,"node":"node-a"})");
}

TEST(append_json, appends_without_a_trailing_newline) {
  std::string out = "prefix ";
  append_json(out, envelope());
  EXPECT_EQ(out.rfind("prefix {", 0), 0u);
  EXPECT_EQ(out.back(), '}');
}

TEST(append_json, expands_attrs_as_top_level_fields_in_order) {
  event e = envelope();
  mp_builder b;
  b.map(4).str("z").val(1).str("a").array(2).str("x").nil().str("m").map(1).str("k").val(false);
  b.str("neg").val(-9223372036854775807LL - 1);
  e.attrs = b.bytes;
  EXPECT_EQ(render(e),
            R"({"id":"e1","type":"play","device_id":"d1","ts":1700000000000,)"
            R"("ingest_ts":1700000000123,"offset":42,"z":1,"a":["x",null],"m":{"k":false},)"
            R"("neg":-9223372036854775808})");
}

TEST(append_json, renders_numbers_so_they_read_back_with_their_type) {
  event e = envelope();
  mp_builder b;
  b.map(6).str("one").f64(1.0).str("tenth").f64(0.1).str("f32").f32(0.1f).str("big").f64(1e300);
  b.str("u").val(uint64_t{18446744073709551615u}).str("tiny").f64(5e-324);
  e.attrs = b.bytes;
  std::string out = render(e);
  EXPECT_NE(out.find(R"("one":1.0,"tenth":0.1,"f32":0.1,"big":1e+300,)"
                     R"("u":18446744073709551615,"tiny":5e-324})"),
            std::string::npos)
    << out;
}

TEST(append_json, renders_non_finite_doubles_as_null) {
  event e = envelope();
  mp_builder b;
  b.map(3).str("nan").f64(std::numeric_limits<double>::quiet_NaN());
  b.str("inf").f64(std::numeric_limits<double>::infinity());
  b.str("ninf").f32(-std::numeric_limits<float>::infinity());
  e.attrs = b.bytes;
  EXPECT_NE(render(e).find(R"("nan":null,"inf":null,"ninf":null})"), std::string::npos);
}

TEST(append_json, renders_bin_as_base64_and_ext_as_null) {
  event e = envelope();
  mp_builder b;
  b.map(5).str("b0");
  b.pk.pack_bin(0);
  b.str("b1");
  b.pk.pack_bin(1);
  b.pk.pack_bin_body("h", 1);
  b.str("b2");
  b.pk.pack_bin(2);
  b.pk.pack_bin_body("he", 2);
  b.str("b5");
  b.pk.pack_bin(5);
  b.pk.pack_bin_body("hello", 5);
  b.str("ext");
  b.pk.pack_ext(1, 3);
  b.pk.pack_ext_body("x", 1);
  e.attrs = b.bytes;
  EXPECT_NE(render(e).find(R"("b0":"","b1":"aA==","b2":"aGU=","b5":"aGVsbG8=","ext":null})"),
            std::string::npos)
    << render(e);
}

TEST(append_json, leaves_out_attrs_named_like_envelope_fields) {
  event e = envelope();
  mp_builder b;
  b.map(3).str("offset").val(7).str("keep").val(1).str("node").str("spoofed");
  e.attrs = b.bytes;
  EXPECT_EQ(render(e, "n1"),
            R"({"id":"e1","type":"play","device_id":"d1","ts":1700000000000,)"
            R"("ingest_ts":1700000000123,"offset":42,"node":"n1","keep":1})");
}

TEST(append_json, renders_integer_keys_as_strings_and_drops_other_non_string_keys) {
  event e = envelope();
  mp_builder b;
  b.map(2).str("m").map(3).val(5).str("five").val(true).str("dropped").str("k").str("v");
  b.str("after").val(1);
  e.attrs = b.bytes;
  EXPECT_NE(render(e).find(R"("m":{"5":"five","k":"v"},"after":1})"), std::string::npos)
    << render(e);
}

TEST(append_json, stays_valid_json_when_attrs_are_corrupt) {
  event e = envelope();
  mp_builder b;
  b.map(3).str("ok").val(1).str("cut").array(3).val(1);
  e.attrs = b.bytes; // claims 3 entries and a 3-element array, holds less
  std::string out = render(e);
  EXPECT_EQ(out, R"({"id":"e1","type":"play","device_id":"d1","ts":1700000000000,)"
                 R"("ingest_ts":1700000000123,"offset":42,"ok":1})");
  simdjson::dom::parser parser;
  EXPECT_EQ(parser.parse(out).error(), simdjson::SUCCESS);
  e.attrs = "\xc1garbage";
  EXPECT_EQ(parser.parse(render(e)).error(), simdjson::SUCCESS);
}

TEST(append_json, renders_pathologically_deep_attrs_as_null_beyond_a_bound) {
  event e = envelope();
  e.attrs = "\x81\xa1" "a" + std::string(100000, '\x91') + "\xc0";
  std::string out = render(e);
  simdjson::dom::parser parser;
  EXPECT_EQ(parser.parse(out).error(), simdjson::SUCCESS);
  EXPECT_NE(out.find("null"), std::string::npos);
}

TEST(append_json, json_to_event_to_json_keeps_every_field) {
  const std::string input
    = R"({"id":"x-1","type":"play","device_id":"dev \"7\"","profile_id":"p\u00e9","ts":1700000000001,)"
      R"("title":"Heat\n2","bitrate":4500000,"ratio":0.75,"whole":2.0,"neg":-12,)"
      R"("big":18446744073709551615,"ok":true,"none":null,"tags":["a",1,[]],)"
      R"("player":{"codec":"h264","sizes":{"w":1920,"h":1080}},"ctrl":"\u0001\t"})";
  auto batch = decode_json(input, 1700000000999);
  ASSERT_EQ(batch.events.size(), 1u) << batch.error;
  event e = batch.events[0];
  e.offset = 77;
  std::string output = render(e, "node-1");

  simdjson::dom::parser parser;
  simdjson::dom::element in_doc, out_doc;
  ASSERT_EQ(parser.parse(input).get(in_doc), simdjson::SUCCESS);
  std::string in_text = simdjson::minify(in_doc);
  simdjson::dom::parser parser2;
  ASSERT_EQ(parser2.parse(output).get(out_doc), simdjson::SUCCESS) << output;
  simdjson::dom::object out_object = out_doc.get_object();
  EXPECT_EQ(int64_t(out_object["ingest_ts"]), 1700000000999);
  EXPECT_EQ(int64_t(out_object["offset"]), 77);
  EXPECT_EQ(std::string_view(out_object["node"]), "node-1");
  // Every input field comes back with the same value and type, in the same order.
  simdjson::dom::object in_object = in_doc.get_object();
  auto out_it = out_object.begin();
  for (auto [key, value] : in_object) {
    while (out_it != out_object.end() && out_it.key() != key)
      ++out_it; // skip ingest_ts/offset/node
    ASSERT_NE(out_it, out_object.end()) << key;
    EXPECT_EQ(simdjson::minify(out_it.value()), simdjson::minify(value)) << key;
    EXPECT_EQ(out_it.value().type(), value.type()) << key;
  }
  // And decoding the output again gives the same event, plus the fields the sink added.
  auto again = decode_json(output, 1);
  ASSERT_EQ(again.events.size(), 1u) << again.error;
  const event& e2 = again.events[0];
  EXPECT_EQ(e2.id, e.id);
  EXPECT_EQ(e2.type, e.type);
  EXPECT_EQ(e2.device_id, e.device_id);
  EXPECT_EQ(e2.profile_id, e.profile_id);
  EXPECT_EQ(e2.ts, e.ts);
  EXPECT_EQ(find_attr(e2.attrs, "player.sizes.w")->i, 1920);
  EXPECT_EQ(find_attr(e2.attrs, "offset")->i, 77);
  EXPECT_EQ(find_attr(e2.attrs, "whole")->type, attr_value::kind::floating);
}
