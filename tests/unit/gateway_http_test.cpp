// The gateway's HTTP side against a fake ingest port: POST /v1/events and the endpoint table.

#include "gateway_test_support.hpp"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <atomic>

using namespace sluice;
using namespace sluice::gateway;
using namespace sluice::gateway::testing;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Polls `pred` until true or the deadline (for state that changes on the server's threads).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = deadline) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::string msgpack_events(size_t n) {
  msgpack::sbuffer sb;
  msgpack::packer<msgpack::sbuffer> pk(&sb);
  pk.pack_array(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) {
    pk.pack_map(6);
    pk.pack(std::string{"id"});
    pk.pack("m-" + std::to_string(i));
    pk.pack(std::string{"type"});
    pk.pack(std::string{"heartbeat"});
    pk.pack(std::string{"device_id"});
    pk.pack(std::string{"dev-m"});
    pk.pack(std::string{"profile_id"});
    pk.pack(std::string{"p-9"});
    pk.pack(std::string{"ts"});
    pk.pack(int64_t{1700000000000});
    pk.pack(std::string{"position_ms"});
    pk.pack(int64_t{5000});
  }
  return {sb.data(), sb.size()};
}

} // namespace

TEST(gateway_http, post_of_one_event_is_answered_only_after_the_ingest_port_commits_it) {
  gateway_fixture f;
  http_client c{f.port};
  auto req = http_client::make(http::verb::post, "/v1/events", json_event("e-1"));
  c.send(req);
  c.start_read();
  ASSERT_TRUE(f.ingest.wait_for_batches(1));
  EXPECT_FALSE(c.wait(quiet_window)) << "replied before the batch was durable";
  f.ingest.complete(0);
  ASSERT_TRUE(c.wait());
  ASSERT_FALSE(c.error()) << c.error().message();
  EXPECT_EQ(c.response().result_int(), 200);
  EXPECT_EQ(c.response().body(), R"({"accepted":1,"rejected":[]})");
  EXPECT_EQ(c.response()[http::field::content_type], "application/json");
  auto events = f.ingest.events_of(0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id, "e-1");
  EXPECT_EQ(events[0].device_id, "dev-1");
}

TEST(gateway_http, single_object_array_and_events_object_shapes_are_all_acked_with_their_counts) {
  gateway_fixture f;
  f.ingest.auto_commit();
  http_client c{f.port};
  auto one = c.post("/v1/events", json_event("a"));
  EXPECT_EQ(one.result_int(), 200);
  EXPECT_EQ(one.body(), R"({"accepted":1,"rejected":[]})");
  auto arr = c.post("/v1/events",
                    "[" + json_event("b") + "," + json_event("c") + "," + json_event("d") + "]");
  EXPECT_EQ(arr.result_int(), 200);
  EXPECT_EQ(arr.body(), R"({"accepted":3,"rejected":[]})");
  auto obj = c.post("/v1/events", R"({"batch":"b-7","events":[)" + json_event("e") + ","
                                    + json_event("f") + "]}");
  EXPECT_EQ(obj.result_int(), 200);
  EXPECT_TRUE(contains(obj.body(), R"("accepted":2)")) << obj.body();
  EXPECT_TRUE(contains(obj.body(), R"("batch":"b-7")")) << obj.body();
  EXPECT_EQ(f.ingest.batch_count(), 3u);
}

TEST(gateway_http, charset_parameters_and_both_msgpack_media_types_are_accepted) {
  gateway_fixture f;
  f.ingest.auto_commit();
  http_client c{f.port};
  auto json = c.post("/v1/events", json_event("a"), "application/json; charset=utf-8");
  EXPECT_EQ(json.result_int(), 200) << json.body();
  auto mp = c.post("/v1/events", msgpack_events(2), "application/msgpack");
  EXPECT_EQ(mp.result_int(), 200) << mp.body();
  EXPECT_EQ(mp.body(), R"({"accepted":2,"rejected":[]})");
  auto xmp = c.post("/v1/events", msgpack_events(3), "Application/X-Msgpack");
  EXPECT_EQ(xmp.result_int(), 200) << xmp.body();
  EXPECT_EQ(xmp.body(), R"({"accepted":3,"rejected":[]})");
  ASSERT_TRUE(f.ingest.wait_for_batches(3));
  auto events = f.ingest.events_of(1);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].id, "m-1");
  EXPECT_EQ(events[1].device_id, "dev-m");
}

TEST(gateway_http, invalid_events_are_rejected_by_index_while_the_others_are_committed) {
  gateway_fixture f;
  f.ingest.auto_commit();
  http_client c{f.port};
  auto res = c.post("/v1/events", "[" + json_event("a") + R"(,{"id":"b","type":"play","ts":1},)"
                                    + json_event("c") + "]");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_TRUE(contains(res.body(), R"("accepted":2)")) << res.body();
  EXPECT_TRUE(contains(res.body(), R"("rejected":[{"index":1,"error":)")) << res.body();
  EXPECT_TRUE(contains(res.body(), "device_id")) << res.body();
  ASSERT_TRUE(f.ingest.wait_for_batches(1));
  EXPECT_EQ(f.ingest.events_of(0).size(), 2u);
  EXPECT_EQ(f.metrics.value("sluice_events_rejected_total", {{"reason", "missing_field"}}), 1);
  EXPECT_EQ(f.metrics.value("sluice_events_received_total"), 3);
  EXPECT_EQ(f.metrics.value("sluice_events_accepted_total"), 2);
}

TEST(gateway_http, a_batch_with_no_valid_event_is_answered_at_once_without_reaching_the_port) {
  gateway_fixture f; // no auto commit: a submit would hang the reply
  http_client c{f.port};
  auto res = c.post("/v1/events", R"([{"id":"x","type":"play","ts":1}])");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_TRUE(contains(res.body(), R"("accepted":0)")) << res.body();
  EXPECT_TRUE(contains(res.body(), R"("index":0)")) << res.body();
  EXPECT_EQ(f.ingest.batch_count(), 0u);
}

TEST(gateway_http, malformed_json_is_a_400_naming_the_offset_and_the_connection_stays_usable) {
  gateway_fixture f;
  f.ingest.auto_commit();
  http_client c{f.port};
  auto bad = c.post("/v1/events", R"([{"id":"a","type":)");
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_TRUE(contains(bad.body(), R"({"error":")")) << bad.body();
  EXPECT_TRUE(contains(bad.body(), R"("offset":)")) << bad.body();
  EXPECT_EQ(f.metrics.value("sluice_events_rejected_total", {{"reason", "malformed_batch"}}), 1);
  auto good = c.post("/v1/events", json_event("a"));
  EXPECT_EQ(good.result_int(), 200);
}

TEST(gateway_http, a_body_over_max_body_bytes_is_a_413_and_then_the_connection_closes) {
  config cfg;
  cfg.max_body_bytes = 1024;
  gateway_fixture f{cfg};
  http_client c{f.port};
  auto res = c.post("/v1/events", "[" + std::string(4096, ' ') + "]");
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(res.body(), R"j({"error":"body exceeds gateway.max-body-bytes (1024 bytes)"})j");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(f.metrics.value("sluice_events_rejected_total", {{"reason", "body_too_large"}}), 1);
  EXPECT_EQ(f.ingest.batch_count(), 0u);
}

TEST(gateway_http, a_batch_over_max_batch_events_is_a_413) {
  config cfg;
  cfg.max_batch_events = 2;
  gateway_fixture f{cfg};
  http_client c{f.port};
  auto res = c.post("/v1/events",
                    "[" + json_event("a") + "," + json_event("b") + "," + json_event("c") + "]");
  EXPECT_EQ(res.result_int(), 413) << res.body();
  EXPECT_TRUE(contains(res.body(), R"("error":)")) << res.body();
  EXPECT_EQ(f.ingest.batch_count(), 0u);
}

TEST(gateway_http, an_unsupported_content_type_is_a_415_naming_the_accepted_types) {
  gateway_fixture f;
  http_client c{f.port};
  auto res = c.post("/v1/events", json_event("a"), "text/plain");
  EXPECT_EQ(res.result_int(), 415);
  EXPECT_TRUE(contains(res.body(), "application/json")) << res.body();
  EXPECT_TRUE(contains(res.body(), "application/msgpack")) << res.body();
  EXPECT_TRUE(contains(res.body(), "text/plain")) << res.body();
  EXPECT_EQ(f.metrics.value("sluice_events_rejected_total", {{"reason", "unsupported_media_type"}}),
            1);
}

TEST(gateway_http, a_failed_commit_is_a_503_with_retry_after) {
  gateway_fixture f;
  http_client c{f.port};
  auto req = http_client::make(http::verb::post, "/v1/events",
                               "[" + json_event("a") + "," + json_event("b") + "]");
  c.send(req);
  c.start_read();
  ASSERT_TRUE(f.ingest.wait_for_batches(1));
  commit_result failed;
  failed.error = "ingest log is full";
  failed.retry_after_s = 7;
  f.ingest.complete(0, failed);
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.response().result_int(), 503);
  EXPECT_EQ(c.response()[http::field::retry_after], "7");
  EXPECT_TRUE(contains(c.response().body(), R"("error":"ingest log is full")"))
    << c.response().body();
  EXPECT_EQ(f.metrics.value("sluice_events_rejected_total", {{"reason", "commit_failed"}}), 2);
  EXPECT_EQ(f.metrics.value("sluice_events_accepted_total"), 0);

  // a failure naming no delay still tells the client when to retry
  c.send(req);
  c.start_read();
  ASSERT_TRUE(f.ingest.wait_for_batches(2));
  f.ingest.complete(1, commit_result{"busy"});
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.response().result_int(), 503);
  EXPECT_EQ(c.response()[http::field::retry_after], "1");
}

TEST(gateway_http, unknown_paths_are_404_and_wrong_methods_are_405_with_allow) {
  std::vector<endpoint> eps{
    {"GET", "/v1/profiles/{id}/continue-watching", scope::read, "continue watching",
     [](const http_request&, responder r) { r(make_response(200, "application/json", "{}")); }}};
  gateway_fixture f{{}, eps};
  http_client c{f.port};
  auto nf = c.call(http_client::make(http::verb::get, "/nope"));
  EXPECT_EQ(nf.result_int(), 404);
  EXPECT_TRUE(contains(nf.body(), R"({"error":)")) << nf.body();
  auto ev = c.call(http_client::make(http::verb::get, "/v1/events"));
  EXPECT_EQ(ev.result_int(), 405);
  EXPECT_EQ(ev[http::field::allow], "POST");
  auto cw = c.call(http_client::make(http::verb::delete_, "/v1/profiles/p1/continue-watching"));
  EXPECT_EQ(cw.result_int(), 405);
  EXPECT_EQ(cw[http::field::allow], "GET");
  EXPECT_TRUE(contains(cw.body(), R"({"error":)")) << cw.body();
  auto ok = c.call(http_client::make(http::verb::get, "/v1/profiles/p1/continue-watching"));
  EXPECT_EQ(ok.result_int(), 200);
  auto short_path = c.call(http_client::make(http::verb::get, "/v1/profiles/p1"));
  EXPECT_EQ(short_path.result_int(), 404);
}

TEST(gateway_http, the_endpoint_table_fills_params_query_headers_and_body) {
  std::mutex mtx;
  http_request seen;
  std::vector<endpoint> eps{
    {"GET", "/v1/titles/top", scope::read, "literal wins over the pattern below when listed first",
     [](const http_request&, responder r) { r(make_response(200, "text/plain", "top")); }},
    {"GET", "/v1/titles/{title}", scope::read, "one title",
     [](const http_request& req, responder r) {
       r(make_response(200, "text/plain", "title=" + req.params.at("title")));
     }},
    {"POST", "/v1/profiles/{id}/continue-watching", scope::read, "continue watching",
     [&](const http_request& req, responder r) {
       {
         std::lock_guard<std::mutex> guard{mtx};
         seen = req;
       }
       http_response res;
       res.status = 201;
       res.body = R"({"ok":true})";
       res.headers.emplace_back("X-Sluice", "yes");
       r(std::move(res));
     }}};
  gateway_fixture f{{}, eps};
  http_client c{f.port};
  auto req = http_client::make(http::verb::post,
                               "/v1/profiles/p%2F1%20x/continue-watching?limit=5&q=a+b%21&flag",
                               "payload", "text/plain");
  req.set("X-Trace-Id", "abc");
  auto res = c.call(req);
  EXPECT_EQ(res.result_int(), 201);
  EXPECT_EQ(res.body(), R"({"ok":true})");
  EXPECT_EQ(res["X-Sluice"], "yes");
  {
    std::lock_guard<std::mutex> guard{mtx};
    EXPECT_EQ(seen.method, "POST");
    EXPECT_EQ(seen.path, "/v1/profiles/p%2F1%20x/continue-watching");
    EXPECT_EQ(seen.target, "/v1/profiles/p%2F1%20x/continue-watching?limit=5&q=a+b%21&flag");
    EXPECT_EQ(seen.params.at("id"), "p/1 x");
    EXPECT_EQ(seen.query.at("limit"), "5");
    EXPECT_EQ(seen.query.at("q"), "a b!");
    EXPECT_EQ(seen.query.count("flag"), 1u);
    EXPECT_EQ(seen.headers.at("x-trace-id"), "abc");
    EXPECT_EQ(seen.headers.at("content-type"), "text/plain");
    EXPECT_EQ(seen.body, "payload");
  }
  EXPECT_EQ(c.call(http_client::make(http::verb::get, "/v1/titles/top")).body(), "top");
  EXPECT_EQ(c.call(http_client::make(http::verb::get, "/v1/titles/t-9")).body(), "title=t-9");
}

TEST(gateway_http, a_responder_may_answer_later_from_another_thread_and_only_once) {
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<responder> parked;
  std::vector<endpoint> eps{{"GET", "/slow", scope::open, "answers later", [&](const http_request&, responder r) {
                               std::lock_guard<std::mutex> guard{mtx};
                               parked = std::move(r);
                               cv.notify_all();
                             }}};
  gateway_fixture f{{}, eps};
  http_client c{f.port};
  auto req = http_client::make(http::verb::get, "/slow");
  c.send(req);
  c.start_read();
  {
    std::unique_lock<std::mutex> lock{mtx};
    ASSERT_TRUE(cv.wait_for(lock, deadline, [&] { return parked.has_value(); }));
  }
  EXPECT_FALSE(c.wait(quiet_window));
  std::thread other{[&] {
    std::lock_guard<std::mutex> guard{mtx};
    (*parked)(make_response(202, "application/json", R"({"later":true})"));
    (*parked)(make_response(500, "application/json", R"({"twice":true})")); // ignored
  }};
  other.join();
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.response().result_int(), 202);
  EXPECT_EQ(c.response().body(), R"({"later":true})");
  // the connection is in sync: the second call did not produce a stray response
  f.ingest.auto_commit();
  EXPECT_EQ(c.post("/v1/events", json_event("a")).result_int(), 200);
}

TEST(gateway_http, a_handler_that_throws_or_drops_its_responder_gets_a_500) {
  std::vector<endpoint> eps{
    {"GET", "/throws", scope::open, "", [](const http_request&, responder) { throw std::runtime_error("boom"); }},
    {"GET", "/drops", scope::open, "", [](const http_request&, responder) {}}};
  gateway_fixture f{{}, eps};
  http_client c{f.port};
  auto thrown = c.call(http_client::make(http::verb::get, "/throws"));
  EXPECT_EQ(thrown.result_int(), 500);
  EXPECT_TRUE(contains(thrown.body(), "boom")) << thrown.body();
  auto dropped = c.call(http_client::make(http::verb::get, "/drops"));
  EXPECT_EQ(dropped.result_int(), 500);
  EXPECT_TRUE(contains(dropped.body(), R"({"error":)")) << dropped.body();
}

TEST(gateway_http, an_idle_keep_alive_connection_is_closed_after_idle_timeout) {
  config cfg;
  cfg.idle_timeout_s = 1;
  gateway_fixture f{cfg};
  http_client c{f.port};
  EXPECT_TRUE(c.closed_by_server());
}

TEST(gateway_http, metrics_count_requests_bytes_connections_and_latency) {
  gateway_fixture f;
  f.ingest.auto_commit();
  {
    http_client c{f.port};
    EXPECT_EQ(c.post("/v1/events", json_event("a")).result_int(), 200);
    EXPECT_EQ(c.post("/v1/events", "{", "application/json").result_int(), 400);
    EXPECT_EQ(c.call(http_client::make(http::verb::get, "/nope")).result_int(), 404);
    EXPECT_EQ(f.metrics.value("sluice_gateway_connections"), 1);
    EXPECT_EQ(f.metrics.value("sluice_gateway_requests_total",
                              {{"endpoint", "events"}, {"code", "200"}}),
              1);
    EXPECT_EQ(f.metrics.value("sluice_gateway_requests_total",
                              {{"endpoint", "events"}, {"code", "400"}}),
              1);
    EXPECT_EQ(f.metrics.value("sluice_gateway_requests_total",
                              {{"endpoint", "other"}, {"code", "404"}}),
              1);
    EXPECT_GT(f.metrics.value("sluice_gateway_bytes_received_total"), 200);
    EXPECT_EQ(f.metrics.value("sluice_events_accepted_total"), 1);
    auto text = f.metrics.render();
    // two ingest answers (200 and 400) are acks; the 404 of a query is not
    EXPECT_TRUE(contains(text, "sluice_gateway_ack_latency_seconds_count 2")) << text;
  }
  EXPECT_TRUE(eventually([&] { return f.metrics.value("sluice_gateway_connections") == 0; }));
}
