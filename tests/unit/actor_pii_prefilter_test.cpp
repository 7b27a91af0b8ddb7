// The PII pre-filter (`pii_prefilter`, `pii_scanner::maybe`): every value the exact scan finds, in
// every position of an event, passes it; ordinary events do not.

#include "actors/pii.hpp"
#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace sluice;

// One value of each format the exact patterns know, as the seeded-PII test writes them and more.
const char* const samples[] = {
  "4111111111111111",
  "4111 1111 1111 1111",
  "5500-0000-0000-0004",
  "3782 822463 10005",
  "6011000990139424",
  "a@b.io",
  "Bob.Smith+tag@mail.example.co.uk",
  "+14155552671",
  "+1 415-555-2671",
  "+1 (415) 555-2671",
  "+44 20 7946 0958",
  "(415) 555-2671",
  "415.555.2671",
  "415 555 2671",
  "07700 900123",
  "030 12345678",
  "06 12 34 56 78",
  "0221/1234567",
  "1.2.3.4",
  "192.168.17.4",
  "255.255.255.255",
  "::1",
  "2001:db8::8a2e:370:7334",
  "FE80:0000:0000:0000:0202:B3FF:FE1E:8329",
  "::ffff:192.0.2.1",
  "fe80::",
};

// Texts around a value: alone, in words, glued to punctuation, after a long prefix (the value
// then straddles the 64-byte blocks the pre-filter works in) and at a block's end.
std::vector<std::string> contexts(const std::string& v) {
  std::vector<std::string> out = {v, "x " + v, v + " y", "call " + v + " now", "(" + v + ")",
                                  "'" + v + "';"};
  for (size_t pad = 40; pad < 80; pad += 3)
    out.push_back(std::string(pad, 'z') + " " + v + " tail");
  return out;
}

event make_event(const std::string& attrs_json, const std::string& device) {
  auto b = decode_json(R"({"type":"play","device_id":")" + device + R"(","ts":1)" + attrs_json
                         + "}",
                       5);
  EXPECT_TRUE(b.ok()) << b.error;
  return b.events.empty() ? event{} : b.events.front();
}

TEST(pii_prefilter, every_value_the_exact_scan_finds_passes_the_prefilter_wherever_it_is) {
  std::string err;
  auto d = pii_detector::make(pii_options{}, err);
  ASSERT_TRUE(d) << err;
  pii_scanner scanner{d};
  for (auto* s : samples) {
    for (auto& text : contexts(s)) {
      std::vector<pii_span> spans;
      scanner.find(text, spans);
      ASSERT_FALSE(spans.empty()) << "not PII by the exact scan: " << text;
      // In a top-level attribute, nested deeper, in an array, and as the device id.
      auto top = make_event(R"(,"note":")" + text + R"(")", "tv-1");
      auto nested = make_event(R"(,"a":{"b":{"c":")" + text + R"("}},"n":12345678901)", "tv-1");
      auto listed = make_event(R"(,"l":[1,")" + text + R"(",2.5])", "tv-1");
      auto device = make_event("", text);
      EXPECT_TRUE(scanner.maybe(top)) << text;
      EXPECT_TRUE(scanner.maybe(nested)) << text;
      EXPECT_TRUE(scanner.maybe(listed)) << text;
      EXPECT_TRUE(scanner.maybe(device)) << text;
    }
  }
}

TEST(pii_prefilter, each_kind_passes_only_when_enabled) {
  struct row {
    const char* kind;
    const char* value;
  } rows[] = {{"card", "4111 1111 1111 1111"}, {"email", "a@b.io"}, {"phone", "+14155552671"},
              {"ipv4", "10.0.0.1"},            {"ipv6", "fe80::1"}};
  for (auto& r : rows) {
    pii_options opts;
    opts.kinds = {r.kind};
    std::string err;
    auto d = pii_detector::make(opts, err);
    ASSERT_TRUE(d) << err;
    pii_scanner scanner{d};
    for (auto& other : rows) {
      auto e = make_event(std::string{R"(,"note":"x )"} + other.value + R"( y")", "tv-1");
      // A card number has enough digits for a phone too; everything else passes only for its
      // own kind.
      bool expected = &other == &r || (std::string{r.kind} == "phone" && &other == &rows[0]);
      EXPECT_EQ(scanner.maybe(e), expected) << r.kind << " / " << other.value;
    }
  }
}

TEST(pii_prefilter, ordinary_events_do_not_pass) {
  std::string err;
  auto d = pii_detector::make(pii_options{}, err);
  ASSERT_TRUE(d) << err;
  pii_scanner scanner{d};
  const char* events[] = {
    R"({"id":"5f0c6a1e-3b7d-4c1a-9e2f-000000001234","type":"play","device_id":"tv-1234",
        "profile_id":"p-123","ts":1732233600000,"title_id":"t-42","position_ms":3600001,
        "country":"DE","player":{"codec":"h264","version":"2.4.1","live":false},
        "note":"playback resumed after buffering"})",
    R"({"type":"click","device_id":"web-77","ts":1,"at":"12:30:45","v":"1.2.3",
        "sku":"A-1234-XL","price":"19.99 EUR"})",
  };
  for (auto* json : events) {
    auto b = decode_json(json, 5);
    ASSERT_TRUE(b.ok()) << b.error;
    EXPECT_FALSE(scanner.maybe(b.events.front())) << json;
  }
}

} // namespace
