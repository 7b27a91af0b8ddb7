// The gateway's plain helpers: endpoint matching, percent/query decoding, media types, replies.

#include "gateway/internal.hpp"

#include <gtest/gtest.h>

using namespace sluice;
using namespace sluice::gateway;
using namespace sluice::gateway::detail;

namespace {

endpoint ep(std::string method, std::string pattern) {
  return endpoint{std::move(method), std::move(pattern), scope::open, "", [](const http_request&, responder) {}};
}

} // namespace

TEST(gateway_routing, literal_and_named_segments_match_and_params_are_percent_decoded) {
  router r{{ep("GET", "/v1/profiles/{id}/continue-watching"), ep("GET", "/healthz")}};
  auto m = r.match("GET", "/v1/profiles/a%20b%2Fc/continue-watching");
  ASSERT_EQ(m.result, router::outcome::found);
  EXPECT_EQ(m.ep->pattern, "/v1/profiles/{id}/continue-watching");
  EXPECT_EQ(m.params.at("id"), "a b/c");
  EXPECT_EQ(r.match("GET", "/healthz").result, router::outcome::found);
  EXPECT_EQ(r.match("GET", "/healthz/").result, router::outcome::not_found);
  EXPECT_EQ(r.match("GET", "/v1/profiles//continue-watching").result, router::outcome::not_found);
  EXPECT_EQ(r.match("GET", "/v1/profiles/x/history").result, router::outcome::not_found);
}

TEST(gateway_routing, a_path_known_under_other_methods_is_method_not_allowed_listing_them) {
  router r{{ep("GET", "/v1/routes"), ep("PUT", "/v1/routes"), ep("GET", "/v1/routes")}};
  auto m = r.match("DELETE", "/v1/routes");
  EXPECT_EQ(m.result, router::outcome::method_not_allowed);
  EXPECT_EQ(m.allow, "GET, PUT");
}

TEST(gateway_routing, the_first_matching_entry_in_table_order_wins) {
  router r{{ep("GET", "/t/top"), ep("GET", "/t/{id}")}};
  EXPECT_EQ(r.match("GET", "/t/top").ep->pattern, "/t/top");
  EXPECT_EQ(r.match("GET", "/t/x").ep->pattern, "/t/{id}");
}

TEST(gateway_routing, query_strings_decode_plus_and_percent_and_keep_valueless_keys) {
  auto q = parse_query("a=1&b=x+y%21&c&&d=%zz&a=2");
  EXPECT_EQ(q.at("a"), "2");
  EXPECT_EQ(q.at("b"), "x y!");
  EXPECT_EQ(q.at("c"), "");
  EXPECT_EQ(q.at("d"), "%zz") << "invalid escapes are kept verbatim";
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("%4", false), "%4");
}

TEST(gateway_routing, media_types_ignore_parameters_case_and_spaces) {
  EXPECT_EQ(media_type("Application/JSON ; charset=utf-8"), "application/json");
  EXPECT_EQ(format_for(media_type("application/json")), wire_format::json);
  EXPECT_EQ(format_for(media_type("application/msgpack")), wire_format::msgpack);
  EXPECT_EQ(format_for(media_type("application/x-msgpack")), wire_format::msgpack);
  EXPECT_FALSE(format_for(media_type("text/plain")));
  EXPECT_FALSE(format_for(media_type("")));
}

TEST(gateway_routing, rejection_messages_are_classified_into_bounded_reasons) {
  EXPECT_EQ(classify_rejection("missing field 'device_id'"), reject_reason::missing_field);
  EXPECT_EQ(classify_rejection("field 'ts' must be epoch ms or RFC 3339"),
            reject_reason::invalid_field);
}

TEST(gateway_routing, ack_and_error_frames_have_the_documented_shapes) {
  std::vector<rejection> rej{{1, "missing field 'device_id'"}};
  EXPECT_EQ(ws_ack_frame("", 3, 2, rej),
            R"({"ack":3,"accepted":2,"rejected":[{"index":1,"error":"missing field 'device_id'"}]})");
  EXPECT_EQ(ws_ack_frame(R"("b1")", 3, 0, {}), R"({"ack":"b1","accepted":0,"rejected":[]})");
  EXPECT_EQ(ws_commit_failed_frame("7", 1, "log \"full\"", 2),
            R"({"ack":7,"error":"log \"full\"","retry_after_s":2})");
  EXPECT_EQ(ws_error_frame("bad", 12, "", 4), R"({"error":"bad","offset":12,"seq":4})");
  EXPECT_EQ(http_ack_body(1, {}, ""), R"({"accepted":1,"rejected":[]})");
  EXPECT_EQ(json_error("x"), R"({"error":"x"})");
}
