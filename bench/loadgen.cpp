// sluice_loadgen — drives a gateway over WebSocket (JSON or msgpack frames) or HTTP, measures
// throughput and per-batch ack latency, and prints one summary line.
//
//   sluice_loadgen --host=127.0.0.1 --port=8080 --mode=ws-msgpack --connections=4
//                  --events-per-batch=100 --duration-s=10 --inflight=8 --devices-per-connection=1
//
// Each connection plays `devices-per-connection` devices (one device per batch, round robin), with
// events of ~200 bytes of JSON: id, type cycling play/heartbeat/pause/stop, device_id, profile_id,
// ts, title_id, position_ms and a few player attributes. WebSocket connections keep `inflight`
// frames outstanding (acks come back in order, so a FIFO of send times gives each frame's
// latency); HTTP connections send one keep-alive request at a time. Only acks received within
// the run window count towards the rates; outstanding frames are drained (up to a grace period)
// before exit.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <msgpack.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

/// How long outstanding batches may take to be acked after the run window.
constexpr std::chrono::seconds drain_grace{5};
/// Distinct titles the generated events cycle through.
constexpr uint64_t title_count = 500;
/// Milliseconds of playback between two events of one device.
constexpr int64_t position_step_ms = 10000;

enum class mode { ws_msgpack, ws_json, http_json };

struct options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  mode m = mode::ws_msgpack;
  std::string mode_name = "ws-msgpack";
  size_t connections = 4;
  size_t events_per_batch = 100;
  size_t duration_s = 10;
  size_t inflight = 8;
  size_t devices_per_connection = 1;
  size_t threads = 1;
};

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "sluice_loadgen: " << error << "\n"
            << "usage: sluice_loadgen [--host=H] [--port=P] "
               "[--mode=ws-msgpack|ws-json|http-json]\n"
               "  [--connections=N] [--events-per-batch=N] [--duration-s=N]\n"
               "  [--inflight=N (per WebSocket)] [--devices-per-connection=N] "
               "[--threads=N (client io threads)]\n";
  std::exit(2);
}

size_t parse_count(std::string_view name, const std::string& value) {
  char* end = nullptr;
  auto v = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v == 0)
    usage("--" + std::string{name} + " needs a positive integer, got '" + value + "'");
  return static_cast<size_t>(v);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h")
      usage("help");
    if (arg.rfind("--", 0) != 0)
      usage("unexpected argument '" + arg + "'");
    auto eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usage("--" + name + " needs a value");
    }
    if (name == "host") {
      o.host = value;
    } else if (name == "port") {
      auto p = parse_count(name, value);
      if (p > 65535)
        usage("--port out of range");
      o.port = static_cast<uint16_t>(p);
    } else if (name == "mode") {
      o.mode_name = value;
      if (value == "ws-msgpack")
        o.m = mode::ws_msgpack;
      else if (value == "ws-json")
        o.m = mode::ws_json;
      else if (value == "http-json")
        o.m = mode::http_json;
      else
        usage("--mode must be ws-msgpack, ws-json or http-json, got '" + value + "'");
    } else if (name == "connections") {
      o.connections = parse_count(name, value);
    } else if (name == "events-per-batch") {
      o.events_per_batch = parse_count(name, value);
    } else if (name == "duration-s") {
      o.duration_s = parse_count(name, value);
    } else if (name == "inflight") {
      o.inflight = parse_count(name, value);
    } else if (name == "devices-per-connection") {
      o.devices_per_connection = parse_count(name, value);
    } else if (name == "threads") {
      o.threads = parse_count(name, value);
    } else {
      usage("unknown option --" + name);
    }
  }
  return o;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

const char* const event_types[] = {"play", "heartbeat", "pause", "stop"};

/// One simulated device: its ids and playback state.
struct device {
  std::string device_id;
  std::string profile_id;
  uint64_t n = 0;
  int64_t position_ms = 0;
};

/// Builds batches of events for the devices of one connection.
class batch_maker {
public:
  batch_maker(size_t conn, size_t devices, size_t per_batch) : conn_(conn), per_batch_(per_batch) {
    for (size_t d = 0; d < devices; ++d)
      devices_.push_back(device{"dev-" + std::to_string(conn) + "-" + std::to_string(d),
                                "prof-" + std::to_string(conn) + "-" + std::to_string(d)});
  }

  /// A JSON frame/body `{"batch":N,"events":[...]}`.
  std::string json(uint64_t batch_no) {
    auto& dev = next_device();
    std::string out;
    out.reserve(per_batch_ * 240 + 32);
    out += "{\"batch\":";
    out += std::to_string(batch_no);
    out += ",\"events\":[";
    auto ts = now_ms();
    for (size_t i = 0; i < per_batch_; ++i) {
      if (i > 0)
        out += ',';
      auto n = dev.n++;
      dev.position_ms += position_step_ms;
      out += "{\"id\":\"";
      out += dev.device_id;
      out += '-';
      out += std::to_string(n);
      out += "\",\"type\":\"";
      out += event_types[n % 4];
      out += "\",\"device_id\":\"";
      out += dev.device_id;
      out += "\",\"profile_id\":\"";
      out += dev.profile_id;
      out += "\",\"ts\":";
      out += std::to_string(ts);
      out += ",\"title_id\":\"title-";
      out += std::to_string((conn_ * 7 + n / 16) % title_count);
      out += "\",\"position_ms\":";
      out += std::to_string(dev.position_ms);
      out += ",\"app_version\":\"4.12.0\",\"os\":\"tvOS 17.2\",\"country\":\"DE\","
             "\"player\":{\"codec\":\"h264\",\"cdn\":\"edge-3\",\"bitrate_kbps\":5800}}";
    }
    out += "]}";
    return out;
  }

  /// The same batch as a msgpack map.
  std::string msgpack(uint64_t batch_no) {
    auto& dev = next_device();
    msgpack::sbuffer sb(per_batch_ * 200 + 32);
    msgpack::packer<msgpack::sbuffer> pk(&sb);
    auto ts = now_ms();
    pk.pack_map(2);
    pk.pack(std::string_view{"batch"});
    pk.pack(batch_no);
    pk.pack(std::string_view{"events"});
    pk.pack_array(static_cast<uint32_t>(per_batch_));
    for (size_t i = 0; i < per_batch_; ++i) {
      auto n = dev.n++;
      dev.position_ms += position_step_ms;
      pk.pack_map(11);
      pk.pack(std::string_view{"id"});
      pk.pack(dev.device_id + "-" + std::to_string(n));
      pk.pack(std::string_view{"type"});
      pk.pack(std::string_view{event_types[n % 4]});
      pk.pack(std::string_view{"device_id"});
      pk.pack(dev.device_id);
      pk.pack(std::string_view{"profile_id"});
      pk.pack(dev.profile_id);
      pk.pack(std::string_view{"ts"});
      pk.pack(ts);
      pk.pack(std::string_view{"title_id"});
      pk.pack("title-" + std::to_string((conn_ * 7 + n / 16) % title_count));
      pk.pack(std::string_view{"position_ms"});
      pk.pack(dev.position_ms);
      pk.pack(std::string_view{"app_version"});
      pk.pack(std::string_view{"4.12.0"});
      pk.pack(std::string_view{"os"});
      pk.pack(std::string_view{"tvOS 17.2"});
      pk.pack(std::string_view{"country"});
      pk.pack(std::string_view{"DE"});
      pk.pack(std::string_view{"player"});
      pk.pack_map(3);
      pk.pack(std::string_view{"codec"});
      pk.pack(std::string_view{"h264"});
      pk.pack(std::string_view{"cdn"});
      pk.pack(std::string_view{"edge-3"});
      pk.pack(std::string_view{"bitrate_kbps"});
      pk.pack(5800);
    }
    return {sb.data(), sb.size()};
  }

private:
  device& next_device() {
    auto& d = devices_[next_ % devices_.size()];
    ++next_;
    return d;
  }

  size_t conn_;
  size_t per_batch_;
  size_t next_ = 0;
  std::vector<device> devices_;
};

/// Shared run state.
struct run_state {
  explicit run_state(net::io_context& ioc)
    : timers(net::make_strand(ioc)), window(timers), grace(timers) {
  }
  steady::time_point start;
  steady::time_point end;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> live{0};
  net::strand<net::io_context::executor_type> timers;
  net::steady_timer window; // end of the measured run
  net::steady_timer grace;  // end of the drain after it

  /// Called once by each connection when it is finished; the last one lets `run()` return.
  void conn_done() {
    if (live.fetch_sub(1) == 1)
      net::post(timers, [this] {
        stopping = true;
        window.cancel();
        grace.cancel();
      });
  }
};

/// What one connection measured (touched only on its strand until the io threads joined).
struct conn_stats {
  uint64_t batches = 0;    // acked in the window
  uint64_t events = 0;     // accepted events acked in the window
  uint64_t rejected = 0;   // per-event rejections seen
  uint64_t errors = 0;     // error acks, non-200 replies, connection failures
  std::vector<uint32_t> latencies_us;
  std::string first_error;
};

/// Reads `"accepted":N` and counts `"index":` entries of an ack body.
void account_ack(std::string_view body, bool ok, steady::time_point sent, const run_state& rs,
                 conn_stats& st, size_t expected_events) {
  auto now = steady::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count();
  bool error = !ok || body.find("\"error\"") != std::string_view::npos;
  if (error) {
    ++st.errors;
    if (st.first_error.empty())
      st.first_error = std::string{body.substr(0, 200)};
  }
  uint64_t accepted = 0;
  if (auto p = body.find("\"accepted\":"); p != std::string_view::npos)
    accepted = std::strtoull(body.data() + p + 11, nullptr, 10);
  size_t rejected = 0;
  for (auto p = body.find("\"index\":"); p != std::string_view::npos;
       p = body.find("\"index\":", p + 1))
    ++rejected;
  st.rejected += rejected;
  (void)expected_events;
  if (now <= rs.end) {
    ++st.batches;
    st.events += accepted;
    st.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
  }
}

// -- WebSocket client ---------------------------------------------------------------------------

class ws_conn : public std::enable_shared_from_this<ws_conn> {
public:
  ws_conn(net::io_context& ioc, const options& o, run_state& rs, size_t idx, conn_stats& st)
    : o_(o), rs_(rs), st_(st), resolver_(net::make_strand(ioc)),
      ws_(resolver_.get_executor()), maker_(idx, o.devices_per_connection, o.events_per_batch) {
  }

  void start() {
    resolver_.async_resolve(o_.host, std::to_string(o_.port),
                            [self = shared_from_this()](beast::error_code ec,
                                                        tcp::resolver::results_type r) {
                              if (ec)
                                return self->fail("resolve", ec);
                              self->connect(r);
                            });
  }

private:
  void connect(const tcp::resolver::results_type& r) {
    beast::get_lowest_layer(ws_).async_connect(
      r, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
        if (ec)
          return self->fail("connect", ec);
        beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true));
        self->ws_.async_handshake(self->o_.host + ":" + std::to_string(self->o_.port),
                                  "/v1/stream", [self](beast::error_code ec) {
                                    if (ec)
                                      return self->fail("handshake", ec);
                                    self->ws_.binary(self->o_.m == mode::ws_msgpack);
                                    self->do_read();
                                    self->pump();
                                  });
      });
  }

  /// Sends frames while fewer than `inflight` await their acks.
  void pump() {
    if (writing_ || done_ || rs_.stopping.load(std::memory_order_relaxed)
        || sent_.size() >= o_.inflight) {
      maybe_finish();
      return;
    }
    ++batch_no_;
    frame_ = o_.m == mode::ws_msgpack ? maker_.msgpack(batch_no_) : maker_.json(batch_no_);
    sent_.push_back(steady::now());
    writing_ = true;
    ws_.async_write(net::buffer(frame_), [self = shared_from_this()](beast::error_code ec,
                                                                     size_t) {
      self->writing_ = false;
      if (ec)
        return self->fail("write", ec);
      self->pump();
    });
  }

  void do_read() {
    ws_.async_read(rbuf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec)
        return self->fail("read", ec);
      auto data = self->rbuf_.data();
      std::string_view body{static_cast<const char*>(data.data()), data.size()};
      if (self->sent_.empty()) {
        ++self->st_.errors; // an ack for nothing
      } else {
        account_ack(body, true, self->sent_.front(), self->rs_, self->st_,
                    self->o_.events_per_batch);
        self->sent_.pop_front();
      }
      self->rbuf_.consume(self->rbuf_.size());
      self->pump();
      if (!self->done_)
        self->do_read();
    });
  }

  void maybe_finish() {
    if (done_ || !rs_.stopping.load(std::memory_order_relaxed) || !sent_.empty() || writing_)
      return;
    done_ = true;
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
      self->rs_.conn_done(); // the read loop ends with the close
    });
  }

  void fail(const char* what, beast::error_code ec) {
    if (done_)
      return;
    done_ = true;
    if (ec != websocket::error::closed && ec != net::error::operation_aborted) {
      ++st_.errors;
      if (st_.first_error.empty())
        st_.first_error = std::string{what} + ": " + ec.message();
    }
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    rs_.conn_done();
  }

  const options& o_;
  run_state& rs_;
  conn_stats& st_;
  tcp::resolver resolver_;
  websocket::stream<beast::tcp_stream> ws_;
  batch_maker maker_;
  beast::flat_buffer rbuf_;
  std::string frame_;
  std::deque<steady::time_point> sent_;
  uint64_t batch_no_ = 0;
  bool writing_ = false;
  bool done_ = false;
};

// -- HTTP client --------------------------------------------------------------------------------

class http_conn : public std::enable_shared_from_this<http_conn> {
public:
  http_conn(net::io_context& ioc, const options& o, run_state& rs, size_t idx, conn_stats& st)
    : o_(o), rs_(rs), st_(st), resolver_(net::make_strand(ioc)),
      stream_(resolver_.get_executor()),
      maker_(idx, o.devices_per_connection, o.events_per_batch) {
  }

  void start() {
    resolver_.async_resolve(o_.host, std::to_string(o_.port),
                            [self = shared_from_this()](beast::error_code ec,
                                                        tcp::resolver::results_type r) {
                              if (ec)
                                return self->fail("resolve", ec);
                              self->stream_.async_connect(
                                r, [self](beast::error_code ec, const tcp::endpoint&) {
                                  if (ec)
                                    return self->fail("connect", ec);
                                  self->stream_.socket().set_option(tcp::no_delay(true));
                                  self->send();
                                });
                            });
  }

private:
  void send() {
    if (rs_.stopping.load(std::memory_order_relaxed)) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.socket().close(ignored);
      rs_.conn_done();
      return;
    }
    req_ = {http::verb::post, "/v1/events", 11};
    req_.set(http::field::host, o_.host);
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(true);
    req_.body() = maker_.json(++batch_no_);
    req_.prepare_payload();
    sent_ = steady::now();
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec)
        return self->fail("write", ec);
      self->res_ = {};
      http::async_read(self->stream_, self->buf_, self->res_,
                       [self](beast::error_code ec, size_t) {
                         if (ec)
                           return self->fail("read", ec);
                         account_ack(self->res_.body(), self->res_.result_int() == 200,
                                     self->sent_, self->rs_, self->st_,
                                     self->o_.events_per_batch);
                         if (!self->res_.keep_alive())
                           return self->fail("server closed the connection",
                                             net::error::connection_aborted);
                         self->send();
                       });
    });
  }

  void fail(const char* what, beast::error_code ec) {
    ++st_.errors;
    if (st_.first_error.empty())
      st_.first_error = std::string{what} + ": " + ec.message();
    beast::error_code ignored;
    stream_.socket().close(ignored);
    rs_.conn_done();
  }

  const options& o_;
  run_state& rs_;
  conn_stats& st_;
  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  batch_maker maker_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  steady::time_point sent_;
  uint64_t batch_no_ = 0;
};

uint32_t percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty())
    return 0;
  auto i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  net::io_context ioc;
  run_state rs{ioc};
  std::vector<conn_stats> stats(o.connections);
  rs.start = steady::now();
  rs.end = rs.start + std::chrono::seconds(o.duration_s);
  rs.live = o.connections;
  rs.window.expires_at(rs.end);
  rs.window.async_wait([&rs, &ioc](beast::error_code ec) {
    rs.stopping = true;
    if (ec)
      return; // every connection finished early
    rs.grace.expires_after(drain_grace);
    rs.grace.async_wait([&ioc](beast::error_code ec) {
      if (!ec)
        ioc.stop(); // outstanding batches did not drain in time
    });
  });
  for (size_t i = 0; i < o.connections; ++i) {
    if (o.m == mode::http_json)
      std::make_shared<http_conn>(ioc, o, rs, i, stats[i])->start();
    else
      std::make_shared<ws_conn>(ioc, o, rs, i, stats[i])->start();
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < o.threads; ++i)
    threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads)
    t.join();

  conn_stats total;
  std::vector<uint32_t> lat;
  for (auto& s : stats) {
    total.batches += s.batches;
    total.events += s.events;
    total.rejected += s.rejected;
    total.errors += s.errors;
    if (total.first_error.empty())
      total.first_error = s.first_error;
    lat.insert(lat.end(), s.latencies_us.begin(), s.latencies_us.end());
  }
  std::sort(lat.begin(), lat.end());
  auto secs = static_cast<double>(o.duration_s);
  std::printf("events/s=%.0f batches/s=%.0f ack_p50_us=%u p99_us=%u p999_us=%u errors=%llu "
              "rejected=%llu mode=%s connections=%zu events_per_batch=%zu inflight=%zu "
              "devices_per_connection=%zu duration_s=%zu threads=%zu host=%s port=%u\n",
              static_cast<double>(total.events) / secs, static_cast<double>(total.batches) / secs,
              percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 0.999),
              static_cast<unsigned long long>(total.errors),
              static_cast<unsigned long long>(total.rejected), o.mode_name.c_str(), o.connections,
              o.events_per_batch, o.m == mode::http_json ? size_t{1} : o.inflight,
              o.devices_per_connection, o.duration_s, o.threads, o.host.c_str(),
              static_cast<unsigned>(o.port));
  if (!total.first_error.empty())
    std::fprintf(stderr, "first error: %s\n", total.first_error.c_str());
  return total.errors == 0 ? 0 : 1;
}
