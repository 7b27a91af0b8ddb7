// Enrichment: attribute appends, the CIDR table, device-type rules, the per-event enricher.

#include "messages/codec.hpp"
#include "messages/enrich.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace sluice {
namespace {

event one(const std::string& json, int64_t ingest_ts = 1000) {
  auto b = decode_json(json, ingest_ts);
  EXPECT_TRUE(b.ok()) << b.error;
  EXPECT_EQ(b.events.size(), 1u) << json;
  return b.events.empty() ? event{} : b.events.front();
}

std::string render(const event& e) {
  std::string out;
  append_json(out, e);
  return out;
}

TEST(attr_append, appending_rewrites_the_count_and_keeps_the_pairs) {
  auto e = one(R"({"type":"t","device_id":"d","ts":1,"a":1,"b":"x"})");
  ASSERT_TRUE(append_attr(e.attrs, "c", std::string_view{"y"}));
  ASSERT_TRUE(append_attr(e.attrs, "n", int64_t{-5}));
  EXPECT_EQ(find_attr(e.attrs, "a")->i, 1);
  EXPECT_EQ(find_attr(e.attrs, "b")->s, "x");
  EXPECT_EQ(find_attr(e.attrs, "c")->s, "y");
  EXPECT_EQ(find_attr(e.attrs, "n")->i, -5);
  EXPECT_NE(render(e).find(R"("a":1,"b":"x","c":"y","n":-5)"), std::string::npos) << render(e);
}

TEST(attr_append, an_empty_map_and_a_growing_header_are_handled) {
  std::string attrs;
  for (int i = 0; i < 20; ++i) // crosses the fixmap limit (15) into map16
    ASSERT_TRUE(append_attr(attrs, "k" + std::to_string(i), int64_t{i}));
  for (int i = 0; i < 20; ++i) {
    auto v = find_attr(attrs, "k" + std::to_string(i));
    ASSERT_TRUE(v) << i;
    EXPECT_EQ(v->i, i);
  }
  std::string not_a_map = "\x91\x01";
  EXPECT_FALSE(append_attr(not_a_map, "k", int64_t{1}));
  EXPECT_EQ(not_a_map, "\x91\x01");
}

TEST(attr_append, has_attr_finds_top_level_keys_only) {
  auto e = one(R"({"type":"t","device_id":"d","ts":1,"player":{"country":"x"},"v":"country"})");
  EXPECT_TRUE(has_attr(e.attrs, "player"));
  EXPECT_FALSE(has_attr(e.attrs, "country"));
  EXPECT_FALSE(has_attr(e.attrs, "absent"));
  EXPECT_FALSE(has_attr("", "player"));
}

TEST(cidr_table, longest_prefix_wins_for_ipv4) {
  cidr_table t;
  ASSERT_EQ(t.add("10.0.0.0/8", "AA"), "");
  ASSERT_EQ(t.add("10.1.0.0/16", "BB"), "");
  ASSERT_EQ(t.add("10.1.2.0/24", "CC"), "");
  ASSERT_EQ(t.add("10.1.2.3", "DD"), ""); // a bare address is a /32
  ASSERT_EQ(t.add("0.0.0.0/0", "ZZ"), "");
  t.finish();
  EXPECT_EQ(t.lookup("10.9.9.9"), "AA");
  EXPECT_EQ(t.lookup("10.1.9.9"), "BB");
  EXPECT_EQ(t.lookup("10.1.2.4"), "CC");
  EXPECT_EQ(t.lookup("10.1.2.3"), "DD");
  EXPECT_EQ(t.lookup("11.0.0.1"), "ZZ");
  EXPECT_EQ(t.lookup("::ffff:10.1.2.4"), "CC"); // IPv4-mapped IPv6
  EXPECT_EQ(t.lookup("not an ip"), "");
  EXPECT_EQ(t.size(), 5u);
}

TEST(cidr_table, longest_prefix_wins_for_ipv6_and_families_do_not_mix) {
  cidr_table t;
  ASSERT_EQ(t.add("2001:db8::/32", "NL"), "");
  ASSERT_EQ(t.add("2001:db8:abcd::/48", "DE"), "");
  ASSERT_EQ(t.add("2001:db8:abcd:12::/64", "FR"), "");
  ASSERT_EQ(t.add("192.0.2.0/24", "US"), "");
  t.finish();
  EXPECT_EQ(t.lookup("2001:db8::1"), "NL");
  EXPECT_EQ(t.lookup("2001:db8:abcd:1::1"), "DE");
  EXPECT_EQ(t.lookup("2001:db8:abcd:12:ffff::1"), "FR");
  EXPECT_EQ(t.lookup("2001:db9::1"), "");
  EXPECT_EQ(t.lookup("192.0.2.77"), "US");
  EXPECT_EQ(t.lookup("::1"), "");
}

TEST(cidr_table, bad_networks_are_refused_with_a_reason) {
  cidr_table t;
  EXPECT_NE(t.add("10.0.0.0/33", "AA").find("above 32"), std::string::npos);
  EXPECT_NE(t.add("10.0.0/8", "AA").find("not an IPv4 or IPv6 network"), std::string::npos);
  EXPECT_NE(t.add("10.0.0.0/x", "AA").find("must be a number"), std::string::npos);
  EXPECT_NE(t.add("10.0.0.0/8", "").find("no country"), std::string::npos);
}

class csv_file {
public:
  explicit csv_file(const std::string& text) {
    char name[] = "/tmp/sluice-geoip-XXXXXX";
    int fd = mkstemp(name);
    ::close(fd);
    path_ = name;
    std::ofstream{path_} << text;
  }
  ~csv_file() {
    std::remove(path_.c_str());
  }
  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
};

TEST(cidr_table, a_csv_file_loads_with_header_comments_and_quotes) {
  csv_file f{"network,country\n# documentation ranges\n\n203.0.113.0/24,NZ\n"
             "\"2001:db8::/32\",\"NL\",extra column\n"};
  cidr_table t;
  ASSERT_EQ(t.load_csv(f.path()), "");
  EXPECT_EQ(t.lookup("203.0.113.9"), "NZ");
  EXPECT_EQ(t.lookup("2001:db8::9"), "NL");
}

TEST(cidr_table, a_bad_csv_row_names_the_file_and_line) {
  csv_file f{"network,country\n203.0.113.0/24,NZ\n300.1.1.1/8,XX\n"};
  cidr_table t;
  auto err = t.load_csv(f.path());
  EXPECT_NE(err.find(f.path() + ":3: '300.1.1.1/8' is not an IPv4 or IPv6 network"),
            std::string::npos)
    << err;
  EXPECT_NE(t.load_csv("/nonexistent/geoip.csv").find("cannot read"), std::string::npos);
}

TEST(device_classifier, the_default_rules_classify_common_user_agents) {
  device_classifier c;
  ASSERT_EQ(c.compile(device_classifier::default_rules()), "");
  struct row {
    const char* ua;
    const char* type;
  };
  const row rows[] = {
    {"Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36", "tv"},
    {"Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36", "tv"},
    {"Roku/DVP-9.10 (519.10E04111A)", "tv"},
    {"Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) AppleWebKit/537.36", "tv"},
    {"Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15", "console"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) Edge/44.18363.8131", "console"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", "mobile"},
    {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari/537.36",
     "mobile"},
    {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "web"},
    {"curl/8.0", ""},
    {"", ""},
  };
  for (auto& r : rows)
    EXPECT_EQ(c.classify(r.ua), r.type) << r.ua;
}

TEST(device_classifier, rules_apply_in_table_order_and_bad_rules_are_named) {
  device_classifier c;
  ASSERT_EQ(c.compile({"kiosk:Mozilla", "web:Mozilla"}), "");
  EXPECT_EQ(c.classify("Mozilla/5.0"), "kiosk");
  EXPECT_NE(c.compile({"tv:Roku", "nocolon"}).find("device rule 2"), std::string::npos);
  EXPECT_NE(c.compile({"tv:(Roku"}).find("invalid pattern"), std::string::npos);
}

enricher make_enricher(const std::string& geoip_path = {}) {
  enrich_options o;
  o.geoip_file = geoip_path;
  enricher en;
  EXPECT_EQ(en.init(o), "");
  return en;
}

TEST(enricher, device_type_country_and_schema_version_are_appended) {
  csv_file f{"203.0.113.0/24,NZ\n"};
  auto en = make_enricher(f.path());
  auto ctx = en.prepare({"Roku/DVP-9.10", "203.0.113.5", ""});
  auto e = one(R"({"type":"play","device_id":"d","ts":1000,"title_id":"t-1"})");
  EXPECT_FALSE(en.apply(e, ctx, "schema_version", "play@2"));
  auto json = render(e);
  EXPECT_NE(json.find(R"("title_id":"t-1","schema_version":"play@2","device_type":"tv",)"
                      R"("country":"NZ")"),
            std::string::npos)
    << json;
}

TEST(enricher, device_model_wins_over_the_user_agent_and_client_values_stay) {
  auto en = make_enricher();
  auto ctx = en.prepare({"Mozilla/5.0 (X11; Linux x86_64)", "127.0.0.1", ""});
  auto e = one(R"({"type":"play","device_id":"d","ts":1000,"device_model":"PlayStation 5"})");
  en.apply(e, ctx, "schema_version", "");
  EXPECT_EQ(find_attr(e.attrs, "device_type")->s, "console");
  EXPECT_EQ(find_attr(e.attrs, "country")->s, "ZZ"); // no table: the unknown country
  EXPECT_FALSE(find_attr(e.attrs, "schema_version"));
  auto kept = one(R"({"type":"play","device_id":"d","ts":1000,"device_type":"fridge"})");
  en.apply(kept, ctx, "schema_version", "");
  EXPECT_EQ(find_attr(kept.attrs, "device_type")->s, "fridge");
  auto none = one(R"({"type":"play","device_id":"d","ts":1000})");
  en.apply(none, en.prepare({"", "127.0.0.1", ""}), "schema_version", "");
  EXPECT_EQ(find_attr(none.attrs, "device_type")->s, "other");
}

TEST(enricher, forwarded_for_is_used_only_when_trusted) {
  enrich_options o;
  enricher plain;
  ASSERT_EQ(plain.init(o), "");
  client_info c{"", "10.0.0.1", "203.0.113.5, 10.0.0.1"};
  EXPECT_EQ(plain.client_ip(c), "10.0.0.1");
  o.trust_forwarded_for = true;
  enricher trusting;
  ASSERT_EQ(trusting.init(o), "");
  EXPECT_EQ(trusting.client_ip(c), "203.0.113.5");
}

TEST(enricher, events_too_far_in_the_future_are_flagged) {
  auto en = make_enricher(); // max skew 5 min
  auto ctx = en.prepare({});
  const int64_t now = 1732233600000;
  auto ok = one(R"({"type":"play","device_id":"d","ts":)" + std::to_string(now + 299000) + "}",
                now);
  EXPECT_FALSE(en.apply(ok, ctx, "", ""));
  EXPECT_FALSE(find_attr(ok.attrs, "clock_skew_ms"));
  auto skewed = one(R"({"type":"play","device_id":"d","ts":)" + std::to_string(now + 3600000)
                      + "}",
                    now);
  EXPECT_TRUE(en.apply(skewed, ctx, "", ""));
  EXPECT_EQ(find_attr(skewed.attrs, "clock_skew_ms")->i, 3600000);
  auto past = one(R"({"type":"play","device_id":"d","ts":1})", now);
  EXPECT_FALSE(en.apply(past, ctx, "", ""));
}

} // namespace
} // namespace sluice
