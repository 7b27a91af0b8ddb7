// libFuzzer target: the WebSocket stream path. A fixed upgrade request to /v1/stream is followed by
// the fuzzer's bytes as what the client sends (masked frames: data, fragments, control frames);
// Beast's server-side WebSocket stream (over an in-memory test stream) accepts and reads messages
// the way ws_session.cpp does, and each message goes through sluice's frame payload path: text →
// decode_json, binary → decode_msgpack, the gateway's limits, quality, and the ack or error frame,
// which is written back. Every frame sluice sends must be valid JSON.
// Seeds: tests/fuzz/corpus/ws (binary; tests/fuzz/make_seeds.py writes them).

#include "tests/fuzz/gateway_fixture.hpp"

#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <cstddef>
#include <cstdint>

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

constexpr std::string_view upgrade_request = "GET /v1/stream HTTP/1.1\r\n"
                                             "Host: localhost\r\n"
                                             "Upgrade: websocket\r\n"
                                             "Connection: Upgrade\r\n"
                                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                             "Sec-WebSocket-Version: 13\r\n"
                                             "User-Agent: fuzz/1.0 SmartTV\r\n"
                                             "\r\n";

/// Largest message read here (the gateway's 8 MiB default would only make the fuzzer slower).
constexpr size_t max_message_bytes = 1 << 20;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  auto& fx = fuzz::gateway_fixture::get();
  net::io_context ioc;
  beast::test::stream client{ioc};
  websocket::stream<beast::test::stream> ws{ioc};
  ws.next_layer().connect(client); // the handshake reply and ack frames go to `client`
  ws.next_layer().append(upgrade_request);
  ws.next_layer().append({reinterpret_cast<const char*>(data), size});
  ws.next_layer().close_remote(); // reads end with eof once the input is consumed
  ws.read_message_max(max_message_bytes);
  ws.auto_fragment(false);
  beast::error_code ec;
  ws.accept(ec);
  if (ec)
    fuzz::fail("the fixed upgrade request was refused", ec.message());
  client_info peer{"fuzz/1.0 SmartTV", "127.0.0.1", {}};
  beast::flat_buffer buf;
  for (uint64_t seq = 0; seq < 64; ++seq) {
    ws.read(buf, ec);
    if (ec)
      break; // eof, close frame, protocol error or 1009: the session ends
    auto bytes = buf.data();
    std::string_view payload{static_cast<const char*>(bytes.data()), bytes.size()};
    fx.answer_batch(payload, ws.got_text(), peer, seq);
    buf.consume(buf.size());
    ws.text(true);
    ws.write(net::buffer(gateway::detail::ws_ack_frame({}, seq, 0, {})), ec);
    if (ec)
      break;
  }
  return 0;
}
