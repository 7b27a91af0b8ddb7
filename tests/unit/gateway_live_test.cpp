// The console's live feed `/v1/admin/live`: a push-only WebSocket of `config::live_snapshot`.

#include "gateway_test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

using namespace sluice;
using namespace sluice::gateway;
using namespace sluice::gateway::testing;

namespace {

/// Records when the snapshot function was called (server side) and numbers the snapshots.
struct snapshot_source {
  std::mutex mtx;
  std::vector<std::chrono::steady_clock::time_point> calls;
  std::string padding;

  std::function<std::string()> fn() {
    return [this] {
      std::lock_guard<std::mutex> guard{mtx};
      calls.push_back(std::chrono::steady_clock::now());
      return R"({"n":)" + std::to_string(calls.size()) + R"(,"pad":")" + padding + "\"}";
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> guard{mtx};
    return calls.size();
  }
};

config live_config(snapshot_source& src, uint32_t interval_ms) {
  config cfg;
  cfg.live_snapshot = src.fn();
  cfg.live_interval_ms = interval_ms;
  return cfg;
}

/// Allows `Authorization: Bearer admin-token` (principal "ops"); refuses everything else with 401.
/// Records the scope and path of each question.
class token_policy : public access_policy {
public:
  access_decision authorize(const request_head& req, scope required) override {
    {
      std::lock_guard<std::mutex> guard{mtx};
      asked.emplace_back(std::string{req.path}, required);
    }
    access_decision d;
    if (req.authorization == "Bearer admin-token") {
      d.principal = "ops";
      return d;
    }
    d.allowed = false;
    d.refusal = json_response(401, R"({"error":"a token with scope admin is required"})");
    d.refusal.headers.emplace_back("WWW-Authenticate", "Bearer");
    return d;
  }
  std::mutex mtx;
  std::vector<std::pair<std::string, scope>> asked;
};

/// An upgrade request for `target`, as a browser's WebSocket would send it.
http::request<http::string_body> upgrade_request(const std::string& target) {
  auto req = http_client::make(http::verb::get, target);
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::sec_websocket_version, "13");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  return req;
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds limit = deadline) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  return true;
}

int64_t connections(gateway_fixture& f) {
  return f.metrics.get_gauge("sluice_gateway_connections", "").value();
}

} // namespace

TEST(gateway_live, the_first_snapshot_is_sent_at_once_on_connect) {
  snapshot_source src;
  gateway_fixture f{live_config(src, 3'600'000)}; // the next tick is an hour away
  ws_client ws{f.port, "/v1/admin/live"};
  auto frame = ws.read();
  ASSERT_TRUE(frame) << ws.error().message();
  EXPECT_EQ(*frame, R"({"n":1,"pad":""})");
  EXPECT_TRUE(ws.stream().got_text());
}

TEST(gateway_live, snapshots_follow_one_per_interval_and_never_closer_than_the_interval) {
  snapshot_source src;
  constexpr auto interval = std::chrono::milliseconds{40};
  gateway_fixture f{live_config(src, interval.count())};
  ws_client ws{f.port, "/v1/admin/live"};
  for (int i = 1; i <= 5; ++i) {
    auto frame = ws.read();
    ASSERT_TRUE(frame) << "frame " << i << ": " << ws.error().message();
    EXPECT_EQ(*frame, R"({"n":)" + std::to_string(i) + R"(,"pad":""})");
  }
  std::lock_guard<std::mutex> guard{src.mtx};
  ASSERT_GE(src.calls.size(), 5u);
  for (size_t i = 1; i < src.calls.size(); ++i)
    EXPECT_GE(src.calls[i] - src.calls[i - 1], interval) << "snapshots " << i << " and " << i + 1;
}

TEST(gateway_live, the_upgrade_gets_404_when_the_node_has_no_live_feed) {
  gateway_fixture f; // no live_snapshot
  http_client c{f.port};
  auto res = c.call(upgrade_request("/v1/admin/live"));
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_NE(res.body().find("no live feed"), std::string::npos) << res.body();
}

TEST(gateway_live, a_plain_get_gets_426_naming_the_websocket_upgrade) {
  snapshot_source src;
  gateway_fixture f{live_config(src, 1000)};
  http_client c{f.port};
  auto res = c.call(http_client::make(http::verb::get, "/v1/admin/live"));
  EXPECT_EQ(res.result_int(), 426);
  EXPECT_EQ(res[http::field::upgrade], "websocket");
  EXPECT_EQ(src.count(), 0u);
}

TEST(gateway_live, a_caller_the_access_policy_refuses_gets_its_401_before_any_upgrade) {
  snapshot_source src;
  auto policy = std::make_shared<token_policy>();
  auto cfg = live_config(src, 1000);
  cfg.access = policy;
  gateway_fixture f{cfg};
  http_client c{f.port};
  auto res = c.call(upgrade_request("/v1/admin/live"));
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(res[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(src.count(), 0u) << "no snapshot for a refused caller";
  std::lock_guard<std::mutex> guard{policy->mtx};
  ASSERT_EQ(policy->asked.size(), 1u);
  EXPECT_EQ(policy->asked[0].first, "/v1/admin/live");
  EXPECT_EQ(policy->asked[0].second, scope::admin);
}

TEST(gateway_live, a_caller_with_an_admin_token_gets_the_upgrade_and_the_snapshot) {
  snapshot_source src;
  auto policy = std::make_shared<token_policy>();
  auto cfg = live_config(src, 3'600'000);
  cfg.access = policy;
  gateway_fixture f{cfg};
  http_client c{f.port};
  auto req = upgrade_request("/v1/admin/live");
  req.set(http::field::authorization, "Bearer admin-token");
  c.send(req);
  c.start_read();
  ASSERT_TRUE(c.wait());
  ASSERT_FALSE(c.error()) << c.error().message();
  EXPECT_EQ(c.response().result_int(), 101);
  EXPECT_TRUE(wait_until([&] { return src.count() == 1; }));
}

TEST(gateway_live, open_feeds_count_as_connections_until_the_client_closes) {
  snapshot_source src;
  gateway_fixture f{live_config(src, 20)};
  {
    ws_client ws{f.port, "/v1/admin/live"};
    ASSERT_TRUE(ws.read());
    EXPECT_EQ(connections(f), 1);
    ws.stream().close(websocket::close_code::normal); // Beast answers the close during its read
  }
  EXPECT_TRUE(wait_until([&] { return connections(f) == 0; })) << connections(f);
}

TEST(gateway_live, pings_are_answered_and_client_messages_ignored) {
  snapshot_source src;
  gateway_fixture f{live_config(src, 3'600'000)};
  ws_client ws{f.port, "/v1/admin/live"};
  ASSERT_TRUE(ws.read());
  bool pong = false;
  ws.stream().control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong)
      pong = true;
  });
  ws.send_text("hello?");
  ws.stream().ping({});
  EXPECT_FALSE(ws.read(quiet_window)) << "the feed answered a message";
  EXPECT_TRUE(pong);
  EXPECT_EQ(connections(f), 1) << "the feed ended on a client message";
}

TEST(gateway_live, stopping_the_server_ends_the_feed) {
  snapshot_source src;
  gateway_fixture f{live_config(src, 10)};
  ws_client ws{f.port, "/v1/admin/live"};
  ASSERT_TRUE(ws.read());
  f.srv->stop();
  std::optional<std::string> frame;
  // frames already sent may still be read; then the read fails (the socket was closed)
  for (int i = 0; i < 1000 && (frame = ws.read()); ++i) {
  }
  EXPECT_FALSE(frame);
  EXPECT_TRUE(ws.error()) << "the read ended without an error";
  EXPECT_EQ(connections(f), 0);
}

TEST(gateway_live, a_client_that_does_not_read_makes_the_feed_skip_ticks_not_queue_frames) {
  snapshot_source src;
  // larger than every socket buffer on the way together: the first frame stays in flight until
  // the client reads
  src.padding.assign(40 << 20, 'x'); // tcp_rmem max 32 MiB + tcp_wmem max 4 MiB here
  gateway_fixture f{live_config(src, 5)};
  ws_client ws{f.port, "/v1/admin/live"};
  ws.stream().read_message_max(64 << 20);
  auto& skipped = f.metrics.get_counter("sluice_gateway_live_skipped_total", "");
  ASSERT_TRUE(wait_until([&] { return skipped.value() >= 10; })) << skipped.value();
  EXPECT_EQ(src.count(), 1u) << "a snapshot was taken while the previous one was unsent";
  auto first = ws.read();
  ASSERT_TRUE(first) << ws.error().message();
  EXPECT_EQ(first->size(), src.padding.size() + 16);
  EXPECT_EQ(first->substr(0, 7), R"({"n":1,)");
  auto second = ws.read(); // the feed goes on once the client reads
  ASSERT_TRUE(second) << ws.error().message();
  EXPECT_EQ(second->substr(0, 7), R"({"n":2,)");
}

TEST(gateway_live, a_snapshot_function_that_throws_closes_the_feed_with_1011) {
  config cfg;
  cfg.live_snapshot = []() -> std::string { throw std::runtime_error("console state gone"); };
  gateway_fixture f{cfg};
  ws_client ws{f.port, "/v1/admin/live"};
  EXPECT_FALSE(ws.read());
  EXPECT_EQ(ws.error(), websocket::error::closed) << ws.error().message();
  EXPECT_EQ(ws.reason().code, websocket::close_code::internal_error);
  EXPECT_NE(std::string{ws.reason().reason.c_str()}.find("console state gone"), std::string::npos);
}
