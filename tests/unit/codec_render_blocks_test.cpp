// The block-wise JSON renderer (`render_json`, `append_json_string`) against a byte-by-byte
// reference of the escaping rules, on strings built to hit every 8-byte block boundary, and the
// promise that rendering stays inside `json_render_bound` whatever the attrs bytes hold.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"
#include "tests/unit/json_string_reference.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <random>
#include <string>
#include <vector>

using namespace sluice;
using sluice::test::envelope;
using sluice::test::mp_builder;
using sluice::test::reference_json_string;

namespace {


std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

/// Renders `e` into a buffer of exactly `json_render_bound` bytes followed by a guard area, and
/// fails when anything past the bound was touched; returns the JSON.
std::string render_guarded(const event& e, std::string_view node = {}) {
  constexpr size_t guard = 64;
  const size_t bound = json_render_bound(e, node);
  std::vector<char> buf(bound + guard, '\x5a');
  char* end = render_json(buf.data(), e, node);
  EXPECT_LE(static_cast<size_t>(end - buf.data()), bound);
  for (size_t k = bound; k < buf.size(); ++k)
    if (buf[k] != '\x5a') {
      ADD_FAILURE() << "wrote past json_render_bound at +" << (k - bound);
      break;
    }
  return std::string(buf.data(), end);
}

} // namespace

TEST(json_string_blocks, tricky_strings_render_as_before) {
  // Expected texts as the byte-by-byte renderer produced them.
  EXPECT_EQ(json_string("0123456\""), R"("0123456\"")") << "a quote at the end of a block";
  EXPECT_EQ(json_string("01234567\\"), R"("01234567\\")") << "a backslash opening a block";
  EXPECT_EQ(json_string(std::string("abc\0def", 7)), R"("abc\u0000def")");
  EXPECT_EQ(json_string("\x7f\x1f\x0b"), "\"\x7f\\u001f\\u000b\"");
  EXPECT_EQ(json_string("/</script>"), R"("/</script>")");
  EXPECT_EQ(json_string("0123456\xc3\xa9z"), "\"0123456\xc3\xa9z\"") << "é across two blocks";
  EXPECT_EQ(json_string("012345\xf0\x9f\x8e\xac"), "\"012345\xf0\x9f\x8e\xac\"");
  EXPECT_EQ(json_string("\xef\xbf\xbd"), "\"\xef\xbf\xbd\"") << "U+FFFD itself is valid";
  EXPECT_EQ(json_string("\"\xff"), R"("\"\ufffd")") << "a quote, then invalid UTF-8";
  EXPECT_EQ(json_string("0123456\xe2\x96"), R"("0123456\ufffd\ufffd")") << "cut at the end";
  EXPECT_EQ(json_string("\xc3\xa9\xff\xc3\xa9\"\n"), "\"\xc3\xa9\\ufffd\xc3\xa9\\\"\\n\"");
  EXPECT_EQ(json_string("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")") << "past U+10FFFF";
  std::string quotes = "\"";
  for (int i = 0; i < 20; ++i)
    quotes += "\\\"";
  EXPECT_EQ(json_string(std::string(20, '"')), quotes + "\"") << "a special byte in every lane";
}

TEST(json_string_blocks, every_special_byte_at_every_position_matches_the_reference) {
  const std::vector<std::string> specials = {"\"", "\\", "\n", std::string(1, '\0'), "\x1f",
                                             "\xc3\xa9", "\xe2\x96\xb6", "\xf0\x9f\x8e\xac",
                                             "\xff", "\xc3", "\xed\xa0\x80", "\x7f"};
  for (size_t len = 0; len <= 33; ++len)
    for (size_t at = 0; at <= len; ++at)
      for (auto& sp : specials) {
        std::string s(len, 'x');
        s.insert(at, sp);
        ASSERT_EQ(json_string(s), reference_json_string(s)) << "len " << len << " at " << at;
      }
}

TEST(json_string_blocks, random_strings_of_tricky_bytes_match_the_reference) {
  const std::string alphabet = std::string("a\"\\\n\t\x01\x1f\x7f\xc3\xa9\xe2\x96\xb6\xf0\x9f\x8e"
                                           "\xac\xff\xed\xa0\x80\xc0 ")
                               + '\0';
  std::mt19937 rng{20261122};
  for (int n = 0; n < 20000; ++n) {
    std::string s(rng() % 48, ' ');
    for (auto& c : s)
      c = alphabet[rng() % alphabet.size()];
    ASSERT_EQ(json_string(s), reference_json_string(s)) << n;
  }
}

TEST(render_json, writes_what_append_json_appends_and_stays_within_its_bound) {
  event e = envelope();
  e.profile_id = "p\"1";
  mp_builder b;
  b.map(4).str("title").str("Heat \xff\n2").str("n").val(-12).str("a").array(2).val(true).nil();
  b.str("id").str("ignored");
  e.attrs = b.bytes;
  std::string appended = "prefix";
  append_json(appended, e, "node-1");
  EXPECT_EQ("prefix" + render_guarded(e, "node-1"), appended);
  EXPECT_EQ(appended, R"(prefix{"id":"e1","type":"play","device_id":"d1","profile_id":"p\"1",)"
                      R"("ts":1700000000000,"ingest_ts":1700000000123,"offset":42,"node":"node-1",)"
                      R"("title":"Heat \ufffd\n2","n":-12,"a":[true,null]})");
}

TEST(render_json, the_widest_attrs_per_byte_stay_within_the_bound) {
  event e = envelope();
  e.id = std::string(50, '\x01'); // 6 bytes out per byte in
  e.device_id = std::string(50, '\xff');
  mp_builder b;
  b.map(600);
  for (int i = 0; i < 100; ++i) // 1-byte keys that render as ,"-32":
    b.val(-32).val(false);
  for (int i = 0; i < 100; ++i)
    b.val(int64_t{-9223372036854775807LL - 1}).val(uint64_t{18446744073709551615u});
  for (int i = 0; i < 100; ++i)
    b.str("").f64(-1.2345678901234567e-300);
  for (int i = 0; i < 100; ++i)
    b.val(1).f32(-1.17549435e-38f);
  for (int i = 0; i < 100; ++i)
    b.str("\x1f").str(std::string(3, '\xff'));
  for (int i = 0; i < 100; ++i) {
    b.val(2).array(3).map(0).nil();
    b.pk.pack_ext(1, 3);
    b.pk.pack_ext_body("x", 1);
  }
  e.attrs = b.bytes;
  auto out = render_guarded(e, std::string(30, '"'));
  simdjson::dom::parser parser;
  EXPECT_EQ(parser.parse(out).error(), simdjson::SUCCESS) << out;
}

TEST(render_json, random_and_corrupt_attrs_stay_within_the_bound_and_valid) {
  std::mt19937 rng{9};
  simdjson::dom::parser parser;
  for (int n = 0; n < 5000; ++n) {
    event e = envelope();
    // A map header, then random bytes biased to short tokens: mostly corrupt.
    std::string attrs(1, static_cast<char>(0x80 | (rng() % 16)));
    size_t len = rng() % 64;
    for (size_t k = 0; k < len; ++k) {
      auto r = rng() % 4;
      attrs += static_cast<char>(r == 0 ? 0xe0 + rng() % 32 : r == 1 ? 0xc0 + rng() % 4 : rng());
    }
    e.attrs = attrs;
    auto out = render_guarded(e);
    std::string appended;
    append_json(appended, e);
    ASSERT_EQ(out, appended);
    ASSERT_EQ(parser.parse(out).error(), simdjson::SUCCESS) << n << ": " << out;
  }
}
