#pragma once

// Test doubles and Beast clients for the gateway unit tests: a fake ingest port that records
// batches and completes them when told (from another thread), and HTTP/WebSocket clients whose
// every wait has a deadline.

#include "actors/metrics.hpp"
#include "gateway/server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::gateway::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

/// Default deadline of every wait in these tests.
inline constexpr std::chrono::milliseconds deadline = 10s;
/// Window in which something must *not* happen (a reply before the commit, a read past the
/// in-flight limit). Long enough for loopback I/O to have happened many times over.
inline constexpr std::chrono::milliseconds quiet_window = 300ms;

/// Records every submitted batch; completes them only when the test says so (or at once in
/// `auto_commit` mode), always on a thread other than the gateway's io threads.
class fake_ingest : public ingest_port {
public:
  struct batch {
    event_batch events;
    commit_callback done;
    bool completed = false;
  };

  ~fake_ingest() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      quit_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable())
      worker_.join();
  }

  /// Completes each batch as it arrives with `result`, from a worker thread.
  void auto_commit(commit_result result = {}) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto_result_ = std::move(result);
    if (!worker_.joinable())
      worker_ = std::thread([this] { run_worker(); });
  }

  void submit(event_batch events, commit_callback done) override {
    std::lock_guard<std::mutex> guard{mtx_};
    batches_.push_back(batch{std::move(events), std::move(done)});
    cv_.notify_all();
  }

  /// Waits until at least `n` batches arrived.
  bool wait_for_batches(size_t n, std::chrono::milliseconds limit = deadline) {
    std::unique_lock<std::mutex> lock{mtx_};
    return cv_.wait_for(lock, limit, [&] { return batches_.size() >= n; });
  }

  size_t batch_count() {
    std::lock_guard<std::mutex> guard{mtx_};
    return batches_.size();
  }

  event_batch events_of(size_t i) {
    std::lock_guard<std::mutex> guard{mtx_};
    return batches_.at(i).events;
  }

  /// Completes batch `i` on a fresh thread and waits for that thread.
  void complete(size_t i, commit_result result = {}) {
    commit_callback cb;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto& b = batches_.at(i);
      if (b.completed)
        return;
      b.completed = true;
      cb = std::move(b.done);
    }
    std::thread t{[cb = std::move(cb), result = std::move(result)]() mutable {
      cb(std::move(result));
    }};
    t.join();
  }

private:
  void run_worker() {
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      cv_.wait(lock, [&] {
        if (quit_)
          return true;
        for (auto& b : batches_)
          if (!b.completed)
            return true;
        return false;
      });
      if (quit_)
        return;
      for (auto& b : batches_) {
        if (b.completed)
          continue;
        b.completed = true;
        auto cb = std::move(b.done);
        auto res = auto_result_;
        lock.unlock();
        cb(std::move(res));
        lock.lock();
      }
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<batch> batches_;
  bool quit_ = false;
  commit_result auto_result_;
  std::thread worker_;
};

/// Runs the client io_context until `done()` or the deadline; false on timeout.
inline bool pump(net::io_context& ioc, const std::function<bool()>& done,
                 std::chrono::milliseconds limit = deadline) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    if (ioc.stopped())
      ioc.restart();
    if (ioc.run_one_until(until) == 0 && !done()) {
      // no work queued: nothing can change done() except another thread; yield briefly
      std::this_thread::yield();
    }
  }
  return true;
}

/// A keep-alive HTTP/1.1 client connection.
class http_client {
public:
  explicit http_client(uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
  }

  static http::request<http::string_body>
  make(http::verb method, std::string target, std::string body = {},
       std::string content_type = "application/json") {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty() || method == http::verb::post)
      req.set(http::field::content_type, content_type);
    req.body() = std::move(body);
    req.prepare_payload();
    req.keep_alive(true);
    return req;
  }

  void send(http::request<http::string_body>& req) {
    http::write(stream_, req);
  }

  /// Starts reading the next response; `ready()` tells when it arrived.
  void start_read() {
    done_ = false;
    ec_ = {};
    res_ = {};
    http::async_read(stream_, buf_, res_, [this](beast::error_code ec, size_t) {
      ec_ = ec;
      done_ = true;
    });
  }

  /// Pumps until the pending response arrived (true) or the window passed (false).
  bool wait(std::chrono::milliseconds limit = deadline) {
    return pump(ioc_, [this] { return done_; }, limit);
  }

  /// Sends `req` and returns the response (fails the test on timeout or error).
  http::response<http::string_body> call(http::request<http::string_body> req) {
    send(req);
    start_read();
    if (!wait())
      throw std::runtime_error("no HTTP response within the deadline");
    if (ec_)
      throw std::runtime_error("HTTP read failed: " + ec_.message());
    return res_;
  }

  http::response<http::string_body> post(const std::string& target, std::string body,
                                         std::string content_type = "application/json") {
    return call(make(http::verb::post, target, std::move(body), std::move(content_type)));
  }

  http::response<http::string_body>& response() {
    return res_;
  }
  beast::error_code error() const {
    return ec_;
  }

  /// Whether the server closed the connection (a read sees EOF) within the deadline.
  bool closed_by_server() {
    bool got = false;
    beast::error_code ec;
    stream_.socket().async_read_some(net::buffer(scratch_), [&](beast::error_code e, size_t) {
      ec = e;
      got = true;
    });
    if (!pump(ioc_, [&] { return got; }))
      return false;
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

  tcp::socket& socket() {
    return stream_.socket();
  }
  net::io_context& io() {
    return ioc_;
  }

private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  http::response<http::string_body> res_;
  beast::error_code ec_;
  bool done_ = false;
  std::array<char, 4096> scratch_{};
};

/// A WebSocket client on `/v1/stream` (or on `target`).
class ws_client {
public:
  explicit ws_client(uint16_t port, const std::string& target = "/v1/stream") : ws_(ioc_) {
    beast::get_lowest_layer(ws_).connect(
      tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
    ws_.handshake("127.0.0.1", target);
  }

  void send_text(const std::string& s) {
    ws_.text(true);
    ws_.write(net::buffer(s));
  }

  void send_binary(const std::string& s) {
    ws_.binary(true);
    ws_.write(net::buffer(s));
  }

  /// Writes asynchronously (for messages too large to trust to socket buffers).
  bool send_binary_async(const std::string& s, beast::error_code& ec) {
    bool done = false;
    ws_.binary(true);
    ws_.async_write(net::buffer(s), [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    return pump(ioc_, [&] { return done; });
  }

  /// Reads one message; nullopt on error (see `error()`) or timeout.
  std::optional<std::string> read(std::chrono::milliseconds limit = deadline) {
    if (!reading_) {
      reading_ = true;
      got_ = false;
      buf_.clear();
      ws_.async_read(buf_, [this](beast::error_code ec, size_t) {
        ec_ = ec;
        got_ = true;
      });
    }
    if (!pump(ioc_, [this] { return got_; }, limit))
      return std::nullopt; // the read stays pending; a later read() continues it
    reading_ = false;
    if (ec_)
      return std::nullopt;
    return beast::buffers_to_string(buf_.data());
  }

  beast::error_code error() const {
    return ec_;
  }
  websocket::close_reason reason() const {
    return ws_.reason();
  }
  websocket::stream<beast::tcp_stream>& stream() {
    return ws_;
  }

private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  beast::error_code ec_;
  bool reading_ = false;
  bool got_ = false;
};

/// A running gateway with a fake ingest port and its own metrics registry.
struct gateway_fixture {
  explicit gateway_fixture(config cfg = {}, std::vector<endpoint> endpoints = {}) {
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    srv = std::make_unique<server>(cfg, ingest, metrics, std::move(endpoints));
    port = srv->start();
  }
  ~gateway_fixture() {
    srv->stop();
  }

  metrics_registry metrics;
  fake_ingest ingest;
  std::unique_ptr<server> srv;
  uint16_t port = 0;
};

inline http_response make_response(unsigned status, std::string content_type, std::string body) {
  http_response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

/// A ~100-byte valid JSON event for device `dev`.
inline std::string json_event(const std::string& id, const std::string& dev = "dev-1",
                              const std::string& type = "play") {
  return R"({"id":")" + id + R"(","type":")" + type + R"(","device_id":")" + dev
         + R"(","profile_id":"p-1","ts":1700000000000,"title_id":"t-42","position_ms":1000})";
}

} // namespace sluice::gateway::testing
