// Route language, route actions and PII detection: tables of inputs and expected outcomes.

#include "actors/pii.hpp"
#include "actors/predicate.hpp"
#include "actors/route_actions.hpp"
#include "actors/route_table.hpp"
#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace sluice;

namespace {

/// One event decoded from JSON the way the gateway decodes it.
event from_json(std::string_view json) {
  auto b = decode_json(json, 5);
  EXPECT_TRUE(b.ok()) << b.error;
  EXPECT_EQ(b.events.size(), 1u) << json;
  auto e = b.events.empty() ? event{} : b.events.front();
  e.offset = 9;
  return e;
}

std::string to_json(const event& e) {
  std::string out;
  append_json(out, e);
  return out;
}

const std::vector<std::string> sinks = {"events", "lake", "errors"};

// -- predicates ---------------------------------------------------------------------------------

TEST(route_language, predicates_evaluate_against_a_table_of_events) {
  auto play = from_json(R"({"type":"play","device_id":"tv-1","profile_id":"p-1","ts":1000,
    "code":"E42","n":12,"ratio":0.5,"live":true,"player":{"codec":"av1","version":"1.2.3"},
    "tags":["a","b"],"msg":"user bob@example.com failed"})");
  auto bare = from_json(R"({"type":"error","device_id":"phone-7","ts":2000})");
  struct row {
    const char* when;
    bool play;
    bool bare;
  } rows[] = {
    {"", true, true},
    {"type == \"play\"", true, false},
    {"type in [\"play\", \"stop\"]", true, false},
    {"type in [\"error\"]", false, true},
    {"ts >= 1000 and ts < 2000", true, false},
    {"n > 10 and ratio <= 0.5", true, false},
    {"attrs.player.codec == \"av1\"", true, false},
    {"player.version matches \"^1\\\\.[0-9]+\"", true, false},
    {"code matches \"^E[0-9]+$\"", true, false},
    {"code matches \"^X\"", false, false},
    {"msg matches \"[a-z]+@[a-z]+\\\\.com\"", true, false},
    {"device_id matches \"^(tv|phone)-\"", true, true},
    {"n matches \"12\"", false, false},          // not a string: no match
    {"missing matches \".*\"", false, false},    // absent: no match
    {"not missing matches \".*\"", true, true},  // so its negation holds
    {"exists player.codec", true, false},
    {"player.codec exists", true, false},
    {"exists profile_id", true, false},
    {"profile_id == null", false, true},
    {"missing == null", true, true},
    {"missing != 1", true, true},
    {"missing > 1", false, false},
    {"code > 5", false, false},                  // string against a number: false
    {"code != 5", true, true},
    {"n == \"12\"", false, false},               // number against a string: false
    {"live == true", true, false},
    {"not (type == \"play\" or type == \"error\")", false, false},
    {"type == \"error\" or (n > 1 and live == true)", true, true},
    {"tags exists", true, false},
  };
  for (auto& r : rows) {
    predicate p;
    std::string error;
    ASSERT_TRUE(p.compile(r.when, error)) << r.when << ": " << error;
    EXPECT_EQ(p.eval(play), r.play) << r.when;
    EXPECT_EQ(p.eval(bare), r.bare) << r.when;
    // The same with the attributes looked up in one pass, as route tables do.
    std::vector<std::string> paths;
    p.assign_slots(paths);
    attr_slot slots[max_attr_slots];
    ASSERT_TRUE(resolve_attr_slots(play.attrs, paths, slots));
    EXPECT_EQ(p.eval(play, slots), r.play) << r.when << " (slots)";
    ASSERT_TRUE(resolve_attr_slots(bare.attrs, paths, slots));
    EXPECT_EQ(p.eval(bare, slots), r.bare) << r.when << " (slots)";
  }
}

TEST(route_language, one_pass_attribute_lookup_agrees_with_find_attr) {
  auto e = from_json(R"({"type":"play","device_id":"d","ts":1,"a.b":"dotted","a":{"b":"nested",
    "c":{"d":[1,{"e":2}],"f":-3}},"arr":[{"x":1}],"big":18446744073709551615,"f":1.5,"t":true,
    "z":null,"m":{},"s":"str","later":{"k":"v"},"n":{"1":{"2":{"3":{"4":"deep"}}}}})");
  std::vector<std::string> paths = {"a.b", "a", "a.c.d", "a.c.f", "a.c.d.e", "arr", "arr.x", "big",
    "f", "t", "z", "m", "s", "later.k", "missing", "a.missing", "n.1.2.3.4", "s.x"};
  attr_slot slots[max_attr_slots];
  ASSERT_TRUE(resolve_attr_slots(e.attrs, paths, slots));
  for (size_t i = 0; i < paths.size(); ++i) {
    auto want = find_attr(e.attrs, paths[i]);
    EXPECT_EQ(slots[i].found, want.has_value()) << paths[i];
    if (!want || !slots[i].found)
      continue;
    auto& got = slots[i].value;
    EXPECT_EQ(got.type, want->type) << paths[i];
    EXPECT_EQ(got.b, want->b) << paths[i];
    EXPECT_EQ(got.i, want->i) << paths[i];
    EXPECT_EQ(got.d, want->d) << paths[i];
    if (want->type == attr_value::kind::string)
      EXPECT_EQ(got.s, want->s) << paths[i];
  }
}

TEST(route_language, malformed_routes_fail_with_the_line_column_route_and_key) {
  struct row {
    const char* text;
    const char* error;
  } rows[] = {
    {"[routes.errors]\nwhen = \"type = \\\"error\\\"\"\nsinks = [\"errors\"]\n",
     "line 2, column 14: 'routes.errors.when': line 1, column 6: '=' is not a comparison; use "
     "'==' to compare"},
    {"[routes.a]\nsinks = [\"events\"]\n\n[routes.b]\nwhen = \"code matches \\\"([a-z\\\"\"\n"
     "sinks = [\"events\"]\n",
     "line 5, column 22: 'routes.b.when': line 1, column 14: invalid regular expression "
     "\"([a-z\": missing ]: [a-z (RE2 syntax)"},
    {"[routes.b]\nwhen = \"type == \\\"a\\\" and (ts > 1\"\nsinks = [\"events\"]\n",
     "line 2, column 34: 'routes.b.when': line 1, column 24: expected ')' to close the "
     "parenthesis"},
    {"[routes.b]\nwhen = \"type == 1\"\nsinks = [\"nowhere\"]\n",
     "line 3, column 9: 'routes.b.sinks' names \"nowhere\", which is not a configured sink "
     "(configure [sinks.nowhere])"},
    {"[routes.b]\nsinks = [\"events\"]\nkeep = [\"a\"]\ndrop = [\"b\"]\n",
     "line 3, column 8: routes.b: 'keep' and 'drop' are both set; use one"},
    {"[routes.b]\nsinks = [\"events\"]\nmask = [\"ts\"]\n",
     "line 3, column 8: routes.b: 'mask' names the envelope field \"ts\", which cannot be "
     "masked; only id, device_id and profile_id can be masked or hashed"},
    {"[routes.b]\nsinks = [\"events\"]\ndrop = [\"device_id\"]\n",
     "line 3, column 8: routes.b: 'drop' names the envelope field \"device_id\", which cannot be "
     "dropped; mask or hash it instead"},
    {"[routes.b]\nsinks = [\"events\"]\nrename = [\"a.b:c.d\"]\n",
     "line 3, column 10: routes.b: 'rename' entry \"a.b:c.d\" moves the field to another map"},
    {"[routes.b]\nsinks = [\"events\"]\nrename = [\"nocolon\"]\n",
     "line 3, column 10: routes.b: 'rename' entry \"nocolon\" is not \"from:to\""},
    {"[routes.b]\nsinks = [\"events\"]\npii = \"redact\"\n",
     "line 3, column 7: routes.b: 'pii' is \"redact\"; use \"mask\" (the default), \"hash\" or "
     "\"off\""},
    {"[routes.b]\nsinks = [\"events\"]\nmask = [\"x\"]\nhash = [\"x\"]\n",
     "line 4, column 8: routes.b: 'hash' names \"x\", which already has the action 'mask'"},
    {"[routes.b]\nsinks = [\"events\"]\ncolour = \"red\"\n",
     "line 3, column 10: unknown key 'routes.b.colour'"},
    {"[routes._unmatched]\nwhen = \"type == 1\"\nsinks = [\"events\"]\n",
     "line 2, column 8: 'routes._unmatched.when' must be empty"},
    {"[routes.b]\nsinks = [\"events\"\n",
     "line 1, column 1: the section [routes.b] could not be read: a list or string in it is not "
     "closed"},
    {"[routes.b]\nwhen \"x\"\n",
     "line 2, column 7: the text is not valid INI (unexpected character)"},
    {"[other]\nx = 1\n", "line 1, column 1: no [routes.<name>] section"},
  };
  for (auto& r : rows) {
    route_table t;
    auto err = compile_routes_text(r.text, sinks, t);
    EXPECT_NE(err.find(r.error), std::string::npos) << "for\n" << r.text << "got: " << err;
  }
}

TEST(route_language, a_route_file_compiles_with_actions_and_the_unmatched_route) {
  route_table t;
  auto err = compile_routes_text(R"(; routes
[routes.b-errors]
when = "type == \"error\""
sinks = ["errors", "lake"]
hash = ["profile_id"]
pii = "hash"

[routes.a-debug]
when = "attrs.debug exists"
sinks = ["events"]
keep = ["debug", "player.codec"]

[routes._unmatched]
sinks = ["events", "lake"]
)",
                                 sinks, t);
  ASSERT_EQ(err, "");
  ASSERT_EQ(t.routes.size(), 2u);
  EXPECT_EQ(t.routes[0].name, "a-debug"); // name order decides which route shapes a sink's copy
  EXPECT_EQ(t.routes[1].sinks, (std::vector<size_t>{2, 1}));
  EXPECT_TRUE(t.uses_hash());
  EXPECT_EQ(t.unmatched_sinks, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(t.unmatched_actions.pii, pii_mode::mask); // secure by default
  EXPECT_NE(check_route_secret(t, false).find("route 'b-errors' hashes fields or PII but no "
                                              "secret is configured"),
            std::string::npos);
  EXPECT_EQ(check_route_secret(t, true), "");
}

// -- actions ------------------------------------------------------------------------------------

struct actions_test : ::testing::Test {
  std::shared_ptr<const pii_detector> detector;
  void SetUp() override {
    pii_options opts;
    opts.secret = "0123456789abcdef-test-secret";
    std::string err;
    detector = pii_detector::make(opts, err);
    ASSERT_TRUE(detector) << err;
  }
  route_actions compile(std::vector<std::string> keep, std::vector<std::string> drop,
                        std::vector<std::string> mask, std::vector<std::string> hash,
                        std::vector<std::string> rename, std::string pii = "mask") {
    route_actions a;
    auto err = route_actions::compile(keep, drop, mask, hash, rename, pii, a);
    EXPECT_EQ(err, "");
    return a;
  }
};

TEST_F(actions_test, keep_drop_mask_hash_and_rename_apply_to_the_copy) {
  route_transformer tf{detector, nullptr, "s"};
  auto original = from_json(R"({"type":"play","device_id":"tv-1","profile_id":"p-1","ts":1,
    "a":1,"b":"x","player":{"codec":"av1","ip":"n/a","debug":true},"items":[{"sku":"s1","n":1}]})");
  struct row {
    route_actions actions;
    const char* json;
  } rows[] = {
    {compile({}, {"b", "player.debug", "items.sku"}, {}, {}, {}),
     R"({"id":"","type":"play","device_id":"tv-1","profile_id":"p-1","ts":1,"ingest_ts":5,"offset":9,"a":1,"player":{"codec":"av1","ip":"n/a"},"items":[{"n":1}]})"},
    {compile({"a", "player.codec"}, {}, {}, {}, {}),
     R"({"id":"","type":"play","device_id":"tv-1","profile_id":"p-1","ts":1,"ingest_ts":5,"offset":9,"a":1,"player":{"codec":"av1"}})"},
    {compile({}, {}, {"b", "player", "device_id"}, {}, {}),
     R"({"id":"","type":"play","device_id":"[masked]","profile_id":"p-1","ts":1,"ingest_ts":5,"offset":9,"a":1,"b":"[masked]","player":"[masked]","items":[{"sku":"s1","n":1}]})"},
    {compile({}, {"profile_id"}, {}, {}, {"b:bee", "player.codec:player.video_codec"}),
     R"({"id":"","type":"play","device_id":"tv-1","ts":1,"ingest_ts":5,"offset":9,"a":1,"bee":"x","player":{"video_codec":"av1","ip":"n/a","debug":true},"items":[{"sku":"s1","n":1}]})"},
  };
  for (auto& r : rows) {
    auto e = original;
    e.id.clear();
    tf.apply("r", r.actions, e);
    EXPECT_EQ(to_json(e), r.json);
  }
  // Hash: keyed, stable, a 64-character hex pseudonym.
  auto a = compile({}, {}, {}, {"profile_id", "b", "a"}, {});
  auto e1 = original, e2 = original;
  tf.apply("r", a, e1);
  tf.apply("r", a, e2);
  EXPECT_EQ(e1.profile_id.size(), 64u);
  EXPECT_EQ(e1.profile_id, e2.profile_id);
  EXPECT_NE(e1.profile_id, "p-1");
  EXPECT_EQ(find_attr(e1.attrs, "b")->s.size(), 64u);
  EXPECT_EQ(find_attr(e1.attrs, "a")->type, attr_value::kind::string);
  // The original in the log is untouched: the transformer works on the copy it is given.
  EXPECT_EQ(original.profile_id, "p-1");
}

TEST_F(actions_test, field_actions_leave_events_without_the_named_keys_byte_for_byte_as_they_are) {
  route_transformer tf{detector, nullptr, "s"};
  auto without = from_json(R"({"type":"play","device_id":"tv-1","ts":1,"title_id":"t-1",
    "player":{"card":"nested is not the top-level card"}})");
  auto e = without;
  tf.apply("r", compile({}, {}, {"card"}, {}, {}, "off"), e);
  EXPECT_EQ(e, without);
  // The same action on an event that has the key masks it, and keep still removes the others.
  auto with = from_json(R"({"type":"play","device_id":"tv-1","ts":1,"card":"4111 1111 1111 1111",
    "title_id":"t-1"})");
  auto m = with;
  tf.apply("r", compile({}, {}, {"card"}, {}, {}, "off"), m);
  EXPECT_EQ(find_attr(m.attrs, "card")->s, "[masked]");
  EXPECT_EQ(find_attr(m.attrs, "title_id")->s, "t-1");
  auto k = without;
  tf.apply("r", compile({"card"}, {}, {}, {}, {}, "off"), k);
  EXPECT_FALSE(find_attr(k.attrs, "title_id"));
  EXPECT_FALSE(find_attr(k.attrs, "player"));
}

TEST_F(actions_test, the_copying_overload_copies_only_the_events_a_route_changes) {
  // The sink runner holds events by pointer: `apply(route, actions, in, out)` answers `in` itself
  // when nothing changes, else `out` (the changed copy), and never changes `in`.
  route_transformer tf{detector, nullptr, "s"};
  auto mask = compile({}, {}, {"card"}, {}, {}, "off");
  auto plain = from_json(R"({"type":"play","device_id":"tv-1","ts":1,"title_id":"t-1"})");
  auto look_alike = from_json(R"({"type":"play","device_id":"tv-1","ts":1,"title_id":"card",
    "player":{"card":"nested"}})");
  auto with = from_json(R"({"type":"play","device_id":"tv-1","ts":1,"card":"4111 1111 1111 1111",
    "title_id":"t-1"})");
  event out;
  EXPECT_EQ(&tf.apply("r", mask, plain, out), &plain);
  EXPECT_EQ(&tf.apply("r", mask, look_alike, out), &look_alike);
  const auto before = with;
  auto& changed = tf.apply("r", mask, with, out);
  ASSERT_EQ(&changed, &out);
  EXPECT_EQ(find_attr(out.attrs, "card")->s, "[masked]");
  EXPECT_EQ(with, before);
  // The same as the in-place overload gives.
  auto in_place = with;
  tf.apply("r", mask, in_place);
  EXPECT_EQ(out, in_place);
  // Envelope actions and PII that the pre-filter passes change (a copy of) every event.
  auto hash_device = compile({}, {}, {}, {"device_id"}, {}, "off");
  EXPECT_EQ(&tf.apply("r", hash_device, plain, out), &out);
  EXPECT_NE(out.device_id, plain.device_id);
  auto pii = compile({}, {}, {}, {}, {}, "mask");
  EXPECT_EQ(&tf.apply("r", pii, with, out), &out);
  EXPECT_EQ(find_attr(out.attrs, "card")->s, "[masked:card]");
  EXPECT_EQ(&tf.apply("r", pii, plain, out), &plain);
}

TEST_F(actions_test, pii_is_masked_by_default_hashed_on_request_and_left_with_off) {
  route_transformer tf{detector, nullptr, "s"};
  auto original = from_json(R"({"type":"play","device_id":"tv-1","profile_id":"Bob@Example.com","ts":1,
    "note":"card 4111 1111 1111 1111 and mail bob@example.com","n":4111111111111111,
    "deep":{"list":["call +1 415-555-2671"]}})");
  auto e = original;
  tf.apply("r", compile({}, {}, {}, {}, {}), e);
  EXPECT_EQ(e.profile_id, "[masked:email]");
  EXPECT_EQ(find_attr(e.attrs, "note")->s, "card [masked:card] and mail [masked:email]");
  EXPECT_EQ(find_attr(e.attrs, "n")->i, 4111111111111111); // numbers are not strings
  EXPECT_NE(to_json(e).find(R"("list":["call [masked:phone]"])"), std::string::npos) << to_json(e);
  EXPECT_EQ(tf.last_detections()[static_cast<size_t>(pii_kind::card)], 1u);
  EXPECT_EQ(tf.last_detections()[static_cast<size_t>(pii_kind::email)], 2u);
  EXPECT_EQ(tf.last_detections()[static_cast<size_t>(pii_kind::phone)], 1u);

  auto h = original;
  tf.apply("r", compile({}, {}, {}, {}, {}, "hash"), h);
  // Normalized before hashing: the same address in two spellings has one pseudonym.
  auto note = std::string{find_attr(h.attrs, "note")->s};
  EXPECT_EQ(note.find("4111"), std::string::npos);
  EXPECT_NE(note.find(h.profile_id), std::string::npos) << note;

  auto off = original;
  tf.apply("r", compile({}, {}, {}, {}, {}, "off"), off);
  EXPECT_EQ(off, original);
}

TEST_F(actions_test, pii_fields_limit_the_scan_to_the_named_paths) {
  pii_options opts;
  opts.fields = {"attrs.deep"};
  std::string err;
  auto d = pii_detector::make(opts, err);
  ASSERT_TRUE(d) << err;
  route_transformer tf{d, nullptr, "s"};
  auto e = from_json(R"({"type":"play","device_id":"tv-1","ts":1,"top":"bob@example.com",
    "deep":{"x":"bob@example.com"}})");
  tf.apply("r", compile({}, {}, {}, {}, {}), e);
  EXPECT_EQ(find_attr(e.attrs, "top")->s, "bob@example.com");
  EXPECT_EQ(find_attr(e.attrs, "deep.x")->s, "[masked:email]");
}

// -- PII detection ------------------------------------------------------------------------------

TEST(pii_detection, finds_each_kind_and_ignores_look_alikes) {
  std::string err;
  auto d = pii_detector::make(pii_options{}, err);
  ASSERT_TRUE(d) << err;
  pii_scanner scanner{d};
  struct row {
    const char* text;
    const char* expected; // "kind:value|kind:value" or "" for none
  } rows[] = {
    {"4111111111111111", "card:4111111111111111"},
    {"pay 4111 1111 1111 1111 now", "card:4111 1111 1111 1111"},
    {"5500-0000-0000-0004", "card:5500-0000-0000-0004"},
    {"amex 3782 822463 10005.", "card:3782 822463 10005"},
    {"order 12 4111 1111 1111 1111", "card:4111 1111 1111 1111"},
    {"4111 1111 1111 1112", ""},                 // Luhn fails
    {"1732233600000", ""},                       // epoch ms as a string: issuer digit 1
    {"17322336000001234", ""},
    {"id-4111111111111111x", ""},                // glued to letters
    {"mail Bob.Smith+tag@mail.example.co.uk.", "email:Bob.Smith+tag@mail.example.co.uk"},
    {"user@localhost", ""},
    {"+14155552671", "phone:+14155552671"},
    {"call +44 20 7946 0958 today", "phone:+44 20 7946 0958"},
    {"(415) 555-2671", "phone:(415) 555-2671"},
    {"415.555.2671", "phone:415.555.2671"},
    {"07700 900123", "phone:07700 900123"},
    {"4155552671", ""},                          // bare digits: an id, not a phone
    {"2024-11-22", ""},
    {"01-02-2024", ""},
    {"v 1.2.3", ""},
    {"from 192.168.1.20:8080", "ipv4:192.168.1.20"},
    {"999.1.1.1", ""},
    {"1.2.3.4.5", ""},
    {"2001:db8::8a2e:370:7334", "ipv6:2001:db8::8a2e:370:7334"},
    {"FE80:0000:0000:0000:0202:B3FF:FE1E:8329", "ipv6:FE80:0000:0000:0000:0202:B3FF:FE1E:8329"},
    {"::ffff:192.0.2.1", "ipv6:::ffff:192.0.2.1"},
    {"at 12:30:45", ""},
    {"std::vector", ""},
    {"mac 00:1a:2b:3c:4d:5e", ""},
    {"a@b.io 10.0.0.1", "email:a@b.io|ipv4:10.0.0.1"},
  };
  for (auto& r : rows) {
    std::vector<pii_span> spans;
    scanner.find(r.text, spans);
    std::string got;
    for (auto& s : spans) {
      if (!got.empty())
        got += '|';
      got += std::string{to_string(s.kind)} + ":"
             + std::string{std::string_view{r.text}.substr(s.begin, s.end - s.begin)};
    }
    EXPECT_EQ(got, r.expected) << r.text;
  }
}

TEST(pii_detection, the_prefilter_passes_every_event_that_holds_pii) {
  std::string err;
  auto d = pii_detector::make(pii_options{}, err);
  ASSERT_TRUE(d) << err;
  pii_scanner scanner{d};
  EXPECT_FALSE(scanner.maybe(from_json(R"({"type":"play","device_id":"tv-1","ts":1,"t":"x"})")));
  EXPECT_TRUE(scanner.maybe(from_json(R"({"type":"play","device_id":"tv-1","ts":1,
    "deep":{"x":"a@b.io"}})")));
  EXPECT_TRUE(scanner.maybe(from_json(R"({"type":"play","device_id":"+14155552671","ts":1})")));
}

TEST(pii_detection, unknown_kinds_and_encodings_are_rejected_by_name) {
  pii_options opts;
  opts.kinds = {"card", "ssn"};
  std::string err;
  EXPECT_FALSE(pii_detector::make(opts, err));
  EXPECT_EQ(err, "pii.kinds names \"ssn\"; use card, email, phone, ipv4 or ipv6");
  opts.kinds = {"card"};
  opts.hash_encoding = "base32";
  EXPECT_FALSE(pii_detector::make(opts, err));
  EXPECT_EQ(err, "pii.hash-encoding is \"base32\"; use hex or base64url");
}

TEST(pii_detection, luhn_accepts_valid_numbers_only) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_TRUE(luhn_valid("378282246310005"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_FALSE(luhn_valid(""));
}

TEST(pseudonyms, are_stable_for_one_secret_and_differ_across_secrets) {
  keyed_hasher a{"secret-one-0123456789", false};
  keyed_hasher a2{"secret-one-0123456789", false};
  keyed_hasher b{"secret-two-0123456789", false};
  keyed_hasher url{"secret-one-0123456789", true};
  std::string x, y, z, w, v;
  a.append("bob@example.com", x);
  a.append("bob@example.com", v); // the same context again: re-keyed, not chained
  a2.append("bob@example.com", y);
  b.append("bob@example.com", z);
  url.append("bob@example.com", w);
  EXPECT_EQ(x, y);
  EXPECT_EQ(x, v);
  EXPECT_NE(x, z);
  EXPECT_EQ(x.size(), 64u);
  EXPECT_EQ(w.size(), 43u);
  EXPECT_EQ(w.find_first_of("+/="), std::string::npos);
  // RFC 4231 test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
  keyed_hasher jefe{"Jefe", false};
  std::string rfc;
  jefe.append("what do ya want for nothing?", rfc);
  EXPECT_EQ(rfc, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(pseudonyms, the_secret_comes_from_config_or_the_environment) {
  pii_options opts;
  ::setenv(pii_secret_env, "from-the-environment-123", 1);
  EXPECT_EQ(resolve_pii_secret(opts), "from-the-environment-123");
  opts.secret = "from-the-config-file-1234";
  EXPECT_EQ(resolve_pii_secret(opts), "from-the-config-file-1234");
  ::unsetenv(pii_secret_env);
  opts.secret.clear();
  EXPECT_EQ(resolve_pii_secret(opts), "");
}

} // namespace
