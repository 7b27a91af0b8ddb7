// The gateway's WebSocket `/v1/stream` against a fake ingest port.

#include "gateway_test_support.hpp"

#include <gtest/gtest.h>
#include <msgpack.hpp>

using namespace sluice;
using namespace sluice::gateway;
using namespace sluice::gateway::testing;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string frame(const std::string& batch_id_json, std::initializer_list<std::string> ids) {
  std::string out = "{";
  if (!batch_id_json.empty())
    out += R"("batch":)" + batch_id_json + ",";
  out += R"("events":[)";
  bool first = true;
  for (const auto& id : ids) {
    if (!first)
      out += ",";
    first = false;
    out += json_event(id);
  }
  out += "]}";
  return out;
}

/// One client-to-server WebSocket frame as on the wire: masked (key 0, so the payload reads as
/// is), `fin` set on a message's last frame; opcode 1 text, 2 binary, 0 continuation.
std::string wire_frame(unsigned opcode, bool fin, const std::string& payload) {
  std::string out;
  out += static_cast<char>((fin ? 0x80 : 0x00) | opcode);
  auto n = payload.size();
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n <= 0xffff) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8)
      out += static_cast<char>((n >> shift) & 0xff);
  }
  out += std::string(4, '\0'); // mask key
  return out + payload;
}

} // namespace

TEST(gateway_ws, many_messages_arriving_in_one_tcp_write_are_each_decoded_and_acked_in_order) {
  gateway_fixture f;
  f.ingest.auto_commit();
  ws_client ws{f.port};
  // 40 messages in one write: small ones, ones fragmented into frames of a few bytes, and one of
  // ~300 KB (larger than the gateway's read chunk) in the middle, so frames straddle every read.
  std::string wire;
  std::vector<size_t> sizes;
  for (int i = 0; i < 40; ++i) {
    std::string ids_batch = "[";
    size_t n = i == 20 ? 2500 : static_cast<size_t>(1 + i % 3);
    for (size_t k = 0; k < n; ++k)
      ids_batch += (k ? "," : "") + json_event("m" + std::to_string(i) + "-" + std::to_string(k));
    ids_batch += "]";
    auto msg = R"({"batch":)" + std::to_string(i) + R"(,"events":)" + ids_batch + "}";
    sizes.push_back(n);
    if (i % 4 == 1) {
      for (size_t pos = 0; pos < msg.size(); pos += 7) {
        bool last = pos + 7 >= msg.size();
        wire += wire_frame(pos == 0 ? 1 : 0, last, msg.substr(pos, 7));
      }
    } else {
      wire += wire_frame(1, true, msg);
    }
  }
  net::write(beast::get_lowest_layer(ws.stream()).socket(), net::buffer(wire));
  for (int i = 0; i < 40; ++i) {
    auto ack = ws.read();
    ASSERT_TRUE(ack) << "message " << i << ": " << ws.error().message();
    EXPECT_EQ(*ack, R"({"ack":)" + std::to_string(i) + R"(,"accepted":)"
                      + std::to_string(sizes[i]) + R"(,"rejected":[]})");
  }
  ASSERT_EQ(f.ingest.batch_count(), 40u);
  EXPECT_EQ(f.ingest.events_of(20).size(), 2500u);
  EXPECT_EQ(f.ingest.events_of(17).at(2).id, "m17-2") << "a message sent in 7-byte fragments";
}

TEST(gateway_ws, pipelined_frames_are_acked_in_frame_order_even_when_commits_complete_out_of_order) {
  gateway_fixture f;
  ws_client ws{f.port};
  ws.send_text(frame(R"("a")", {"e1"}));
  ws.send_text(frame("17", {"e2", "e3"}));
  ws.send_text(frame("", {"e4"}));
  ASSERT_TRUE(f.ingest.wait_for_batches(3));
  f.ingest.complete(2);
  f.ingest.complete(1);
  EXPECT_FALSE(ws.read(quiet_window)) << "an ack overtook the head of the line";
  f.ingest.complete(0);
  auto a1 = ws.read();
  auto a2 = ws.read();
  auto a3 = ws.read();
  ASSERT_TRUE(a1 && a2 && a3) << ws.error().message();
  EXPECT_EQ(*a1, R"({"ack":"a","accepted":1,"rejected":[]})");
  EXPECT_EQ(*a2, R"({"ack":17,"accepted":2,"rejected":[]})");
  EXPECT_EQ(*a3, R"({"ack":3,"accepted":1,"rejected":[]})") << "no batch id: 1-based frame number";
  EXPECT_TRUE(ws.stream().got_text());
}

TEST(gateway_ws, an_ack_arrives_only_after_the_ingest_port_commits) {
  gateway_fixture f;
  ws_client ws{f.port};
  ws.send_text(json_event("e1"));
  ASSERT_TRUE(f.ingest.wait_for_batches(1));
  EXPECT_FALSE(ws.read(quiet_window));
  f.ingest.complete(0);
  auto ack = ws.read();
  ASSERT_TRUE(ack);
  EXPECT_EQ(*ack, R"({"ack":1,"accepted":1,"rejected":[]})");
}

TEST(gateway_ws, an_invalid_frame_gets_an_error_frame_and_the_next_frame_still_works) {
  gateway_fixture f;
  f.ingest.auto_commit();
  ws_client ws{f.port};
  ws.send_text(R"({"batch":"x","events":[{"id":)");
  ws.send_text(frame(R"("y")", {"e1"}));
  auto err = ws.read();
  ASSERT_TRUE(err) << ws.error().message();
  EXPECT_TRUE(contains(*err, R"({"error":")")) << *err;
  EXPECT_TRUE(contains(*err, R"("offset":)")) << *err;
  EXPECT_TRUE(contains(*err, R"("seq":1)")) << *err;
  auto ack = ws.read();
  ASSERT_TRUE(ack) << ws.error().message();
  EXPECT_EQ(*ack, R"({"ack":"y","accepted":1,"rejected":[]})");
  EXPECT_EQ(f.metrics.value("sluice_gateway_requests_total",
                            {{"endpoint", "stream"}, {"code", "400"}}),
            1);
}

TEST(gateway_ws, per_event_rejections_are_listed_by_index_in_the_ack) {
  gateway_fixture f;
  f.ingest.auto_commit();
  ws_client ws{f.port};
  ws.send_text("[" + json_event("a") + R"(,{"id":"b","type":"play","ts":1}])");
  auto ack = ws.read();
  ASSERT_TRUE(ack);
  EXPECT_TRUE(contains(*ack, R"({"ack":1,"accepted":1,"rejected":[{"index":1,"error":)")) << *ack;
  // nothing valid: acked at once, nothing reaches the port
  ws.send_text(R"([{"id":"c","type":"play","ts":1}])");
  auto none = ws.read();
  ASSERT_TRUE(none);
  EXPECT_TRUE(contains(*none, R"({"ack":2,"accepted":0,"rejected":[{"index":0,)")) << *none;
  EXPECT_EQ(f.ingest.batch_count(), 1u);
}

TEST(gateway_ws, binary_frames_are_decoded_as_msgpack) {
  gateway_fixture f;
  f.ingest.auto_commit();
  ws_client ws{f.port};
  msgpack::sbuffer sb;
  msgpack::packer<msgpack::sbuffer> pk(&sb);
  pk.pack_map(2);
  pk.pack(std::string{"batch"});
  pk.pack(42);
  pk.pack(std::string{"events"});
  pk.pack_array(1);
  pk.pack_map(4);
  pk.pack(std::string{"id"});
  pk.pack(std::string{"m1"});
  pk.pack(std::string{"type"});
  pk.pack(std::string{"pause"});
  pk.pack(std::string{"device_id"});
  pk.pack(std::string{"dev-9"});
  pk.pack(std::string{"ts"});
  pk.pack(int64_t{1700000000000});
  ws.send_binary({sb.data(), sb.size()});
  auto ack = ws.read();
  ASSERT_TRUE(ack) << ws.error().message();
  EXPECT_EQ(*ack, R"({"ack":42,"accepted":1,"rejected":[]})");
  ASSERT_TRUE(f.ingest.wait_for_batches(1));
  EXPECT_EQ(f.ingest.events_of(0).at(0).device_id, "dev-9");
}

TEST(gateway_ws, an_oversized_frame_closes_the_connection_with_code_1009_after_earlier_acks) {
  config cfg;
  cfg.max_frame_bytes = 1024;
  gateway_fixture f{cfg};
  f.ingest.auto_commit();
  ws_client ws{f.port};
  ws.send_text(frame(R"("before")", {"e1"}));
  beast::error_code ec;
  // far larger than socket buffers: the server must keep draining for the client to finish
  ASSERT_TRUE(ws.send_binary_async(std::string(4 << 20, 'x'), ec));
  EXPECT_FALSE(ec) << ec.message();
  auto ack = ws.read();
  ASSERT_TRUE(ack) << ws.error().message();
  EXPECT_EQ(*ack, R"({"ack":"before","accepted":1,"rejected":[]})");
  auto next = ws.read();
  EXPECT_FALSE(next);
  EXPECT_EQ(ws.error(), websocket::error::closed) << ws.error().message();
  EXPECT_EQ(ws.reason().code, websocket::close_code::too_big);
  EXPECT_TRUE(contains(std::string{ws.reason().reason.c_str()}, "max-frame-bytes"));
  EXPECT_EQ(f.metrics.value("sluice_events_rejected_total", {{"reason", "frame_too_large"}}), 1);
}

TEST(gateway_ws, reading_stops_while_max_inflight_frames_await_their_acks) {
  config cfg;
  cfg.max_inflight_frames = 2;
  gateway_fixture f{cfg};
  ws_client ws{f.port};
  for (int i = 0; i < 5; ++i)
    ws.send_text(json_event("e" + std::to_string(i)));
  ASSERT_TRUE(f.ingest.wait_for_batches(2));
  EXPECT_FALSE(f.ingest.wait_for_batches(3, quiet_window)) << "read past the in-flight limit";
  f.ingest.complete(0);
  auto ack = ws.read();
  ASSERT_TRUE(ack);
  EXPECT_EQ(*ack, R"({"ack":1,"accepted":1,"rejected":[]})");
  ASSERT_TRUE(f.ingest.wait_for_batches(3));
  EXPECT_FALSE(f.ingest.wait_for_batches(4, quiet_window)) << "one ack written frees one slot";
  EXPECT_EQ(f.ingest.batch_count(), 3u);
}

TEST(gateway_ws, a_failed_commit_acks_with_the_error_and_retry_after) {
  gateway_fixture f;
  commit_result failed;
  failed.error = "disk full";
  failed.retry_after_s = 3;
  f.ingest.auto_commit(failed);
  ws_client ws{f.port};
  ws.send_text(frame(R"("z")", {"e1", "e2"}));
  ws.send_text(frame("", {"e3"}));
  auto a = ws.read();
  auto b = ws.read();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, R"({"ack":"z","error":"disk full","retry_after_s":3})");
  EXPECT_EQ(*b, R"({"ack":2,"error":"disk full","retry_after_s":3})");
  EXPECT_EQ(f.metrics.value("sluice_events_rejected_total", {{"reason", "commit_failed"}}), 3);
  EXPECT_EQ(f.metrics.value("sluice_gateway_requests_total",
                            {{"endpoint", "stream"}, {"code", "503"}}),
            2);
}

TEST(gateway_ws, stopping_the_server_closes_open_websockets) {
  gateway_fixture f;
  ws_client ws{f.port};
  ws.send_text(json_event("e1")); // never committed
  ASSERT_TRUE(f.ingest.wait_for_batches(1));
  EXPECT_EQ(f.metrics.value("sluice_gateway_connections"), 1);
  f.srv->stop();
  EXPECT_FALSE(ws.read());
  EXPECT_TRUE(ws.error()) << "read ended by the close, not by the deadline";
  EXPECT_EQ(f.metrics.value("sluice_gateway_connections"), 0);
  // a commit arriving after stop is dropped quietly
  f.ingest.complete(0);
}

TEST(gateway_ws, a_plain_get_on_the_stream_path_is_told_to_upgrade) {
  gateway_fixture f;
  http_client c{f.port};
  auto res = c.call(http_client::make(http::verb::get, "/v1/stream"));
  EXPECT_EQ(res.result_int(), 426);
  EXPECT_TRUE(contains(res.body(), "WebSocket")) << res.body();
}
