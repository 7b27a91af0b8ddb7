// The renderer's fast paths (issue 9): every msgpack token kind the attrs reader handles inline
// (`mp_reader::next_hot`), keys read once (reserved and unusable keys dropped with their values),
// attrs cut inside every token, and strings of every length up to past the plain-copy limit
// against a byte-by-byte reference of the escaping rules.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"
#include "tests/unit/json_string_reference.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace sluice;
using sluice::test::envelope;
using sluice::test::mp_builder;
using sluice::test::reference_json_string;

namespace {

constexpr std::string_view envelope_json
  = R"({"id":"e1","type":"play","device_id":"d1","ts":1700000000000,)"
    R"("ingest_ts":1700000000123,"offset":42)";

std::string render(const event& e) {
  std::string out;
  append_json(out, e);
  return out;
}

/// What `render` gives for `attrs_json` (the JSON of the attributes, without braces) after the
/// envelope of `envelope()`.
std::string with_attrs(std::string_view attrs_json) {
  std::string out{envelope_json};
  if (!attrs_json.empty()) {
    out += ',';
    out += attrs_json;
  }
  out += '}';
  return out;
}


} // namespace

TEST(render_tokens, every_integer_width_renders_its_value) {
  event e = envelope();
  mp_builder b;
  b.map(10);
  b.str("u7").val(uint64_t{127});
  b.str("u8").val(uint64_t{200});
  b.str("u16").val(uint64_t{60000});
  b.str("u32").val(uint64_t{4000000000});
  b.str("u64").val(uint64_t{18446744073709551615ULL});
  b.str("n5").val(int64_t{-5});
  b.str("i8").val(int64_t{-100});
  b.str("i16").val(int64_t{-30000});
  b.str("i32").val(int64_t{-2000000000});
  b.str("i64").val(int64_t{-9223372036854775807LL - 1});
  e.attrs = b.bytes;
  EXPECT_EQ(render(e), with_attrs(R"("u7":127,"u8":200,"u16":60000,"u32":4000000000,)"
                                  R"("u64":18446744073709551615,"n5":-5,"i8":-100,"i16":-30000,)"
                                  R"("i32":-2000000000,"i64":-9223372036854775808)"));
}

TEST(render_tokens, nil_booleans_str8_and_nested_fixed_containers_render_as_json) {
  event e = envelope();
  mp_builder b;
  std::string long_value(200, 'v'); // str8
  std::string long_key(40, 'k');    // str8 key
  b.map(6);
  b.str("none").nil();
  b.str("yes").val(true);
  b.str("no").val(false);
  b.str(long_key).str(long_value);
  b.str("list").array(3).val(1).array(0).map(1).str("a").array(1).nil();
  b.str("m").map(2).str("x").val(uint64_t{70000}).str("y").str("");
  e.attrs = b.bytes;
  EXPECT_EQ(render(e), with_attrs(R"("none":null,"yes":true,"no":false,")" + long_key + R"(":")"
                                  + long_value + R"(","list":[1,[],{"a":[null]}],)"
                                  + R"("m":{"x":70000,"y":""})"));
}

TEST(render_tokens, integer_keys_render_quoted_and_container_keys_drop_their_entry) {
  event e = envelope();
  mp_builder b;
  b.map(6);
  b.val(uint64_t{300}).str("three hundred");
  b.val(int64_t{-7}).str("minus seven");
  b.array(2).val(1).map(1).str("deep").val(2); // an array key holding a map...
  b.map(1).str("k").array(1).val(3);           // ...and its value: dropped
  b.map(1).str("mk").val(1);                   // a map key...
  b.array(1).val(1);                           // ...and its value: dropped
  b.val(true).str("bool key");                 // a boolean key: dropped
  b.str("after").val(1);
  e.attrs = b.bytes;
  EXPECT_EQ(render(e), with_attrs(R"("300":"three hundred","-7":"minus seven","after":1)"));
}

TEST(render_tokens, reserved_keys_are_dropped_with_nested_values_and_the_rest_kept) {
  event e = envelope();
  mp_builder b;
  b.map(5);
  b.str("type").map(2).str("a").array(2).val(1).val(2).str("b").nil();
  b.str("first").val(1);
  b.str("ts").array(1).str("x");
  b.str("types").str("not reserved");
  b.str("device_id").str("spoof");
  e.attrs = b.bytes;
  EXPECT_EQ(render(e), with_attrs(R"("first":1,"types":"not reserved")"));
  // Nested maps keep keys named like envelope fields.
  mp_builder c;
  c.map(1).str("m").map(1).str("id").str("kept");
  e.attrs = c.bytes;
  EXPECT_EQ(render(e), with_attrs(R"("m":{"id":"kept"})"));
}

TEST(render_tokens, attrs_cut_inside_any_token_keep_the_entries_before_it) {
  event e = envelope();
  mp_builder b;
  b.map(7);
  b.str("a").val(uint64_t{200});
  b.str("b").val(uint64_t{60000});
  b.str("c").val(uint64_t{4000000000});
  b.str("d").val(uint64_t{18446744073709551615ULL});
  b.str("e").str(std::string(40, 'x'));
  b.str("f").map(1).str("g").val(int64_t{-30000});
  b.str(std::string(33, 'h')).val(true);
  const std::string full = b.bytes;
  const std::vector<std::string> entries
    = {R"("a":200)", R"("b":60000)", R"("c":4000000000)", R"("d":18446744073709551615)",
       R"("e":")" + std::string(40, 'x') + '"', R"("f":{"g":-30000})",
       '"' + std::string(33, 'h') + R"(":true)"};
  // Where each entry ends in `full` (found by encoding the prefixes).
  std::vector<size_t> ends;
  {
    mp_builder p;
    p.map(7);
    p.str("a").val(uint64_t{200});
    ends.push_back(p.bytes.size());
    p.str("b").val(uint64_t{60000});
    ends.push_back(p.bytes.size());
    p.str("c").val(uint64_t{4000000000});
    ends.push_back(p.bytes.size());
    p.str("d").val(uint64_t{18446744073709551615ULL});
    ends.push_back(p.bytes.size());
    p.str("e").str(std::string(40, 'x'));
    ends.push_back(p.bytes.size());
    p.str("f").map(1).str("g").val(int64_t{-30000});
    ends.push_back(p.bytes.size());
    p.str(std::string(33, 'h')).val(true);
    ends.push_back(p.bytes.size());
  }
  ASSERT_EQ(ends.back(), full.size());
  simdjson::dom::parser parser;
  for (size_t cut = 0; cut <= full.size(); ++cut) {
    e.attrs = full.substr(0, cut);
    std::string expected_attrs;
    for (size_t k = 0; k < entries.size() && ends[k] <= cut; ++k) {
      if (!expected_attrs.empty())
        expected_attrs += ',';
      expected_attrs += entries[k];
    }
    auto out = render(e);
    ASSERT_EQ(out, with_attrs(expected_attrs)) << "cut at " << cut;
    ASSERT_EQ(parser.parse(out).error(), simdjson::SUCCESS) << "cut at " << cut;
  }
}

TEST(render_tokens, strings_of_every_length_past_the_plain_limit_match_the_reference) {
  const std::vector<std::string> specials = {"\"", "\\", "\n", std::string(1, '\0'), "\x1f",
                                             "\xc3\xa9", "\xe2\x96\xb6", "\xff", "\x7f", "/"};
  for (size_t len = 0; len <= 80; ++len) {
    std::string plain(len, 'x');
    for (size_t k = 0; k < len; ++k)
      plain[k] = static_cast<char>('a' + k % 26);
    std::string out;
    append_json_string(out, plain);
    ASSERT_EQ(out, reference_json_string(plain)) << "len " << len;
    for (size_t at = 0; at <= len; ++at)
      for (auto& sp : specials) {
        std::string s = plain;
        s.insert(at, sp);
        out.clear();
        append_json_string(out, s);
        ASSERT_EQ(out, reference_json_string(s)) << "len " << len << " at " << at;
      }
  }
}

TEST(render_tokens, plain_strings_as_keys_and_values_render_within_the_bound) {
  // Keys and values of every length up to 70, each in an event rendered into exactly its bound
  // plus a guard: nothing is written past the bound, the text is the expected one.
  for (size_t len = 0; len <= 70; ++len) {
    event e = envelope();
    std::string s(len, 'q');
    mp_builder b;
    b.map(2).str(s + "k").str(s).str("n").val(1);
    e.attrs = b.bytes;
    e.id = s;
    const size_t bound = json_render_bound(e, "node-1");
    std::vector<char> buf(bound + 64, '\x5a');
    char* end = render_json(buf.data(), e, "node-1");
    ASSERT_LE(static_cast<size_t>(end - buf.data()), bound);
    for (size_t k = bound; k < buf.size(); ++k)
      ASSERT_EQ(buf[k], '\x5a') << "wrote past the bound, len " << len;
    std::string expected = R"({"id":")" + s + R"(","type":"play","device_id":"d1","ts":1700000000000,)"
                           + R"("ingest_ts":1700000000123,"offset":42,"node":"node-1",")" + s
                           + R"(k":")" + s + R"(","n":1})";
    ASSERT_EQ(std::string(buf.data(), end), expected) << "len " << len;
  }
}

TEST(render_tokens, integers_at_every_digit_count_boundary_and_random_ones_match_to_chars) {
  std::vector<uint64_t> values = {0, 1, 9, 10, 99, 100, 18446744073709551615ULL};
  for (uint64_t p = 10; p <= 1000000000000000000ULL; p *= 10) {
    values.push_back(p - 1);
    values.push_back(p);
    values.push_back(p + 1);
  }
  std::mt19937_64 rng{20261122};
  for (int n = 0; n < 20000; ++n) {
    values.push_back(rng() >> (rng() % 64));
  }
  auto text = [](auto v) {
    char buf[24];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  };
  for (uint64_t v : values) {
    for (int64_t s : {static_cast<int64_t>(v), -static_cast<int64_t>(v >> 1)}) {
      event e = envelope();
      e.ts = s;
      e.ingest_ts = static_cast<int64_t>(v >> 1);
      e.offset = v;
      mp_builder b;
      b.map(3).str("u").val(v).str("i").val(s).val(v).val(true);
      e.attrs = b.bytes;
      std::string expected = R"({"id":"e1","type":"play","device_id":"d1","ts":)" + text(s)
                             + R"(,"ingest_ts":)" + text(static_cast<int64_t>(v >> 1))
                             + R"(,"offset":)" + text(v) + R"(,"u":)" + text(v) + R"(,"i":)"
                             + text(s) + R"(,")" + text(v) + R"(":true})";
      ASSERT_EQ(render(e), expected) << v;
    }
  }
}
