// sluice_loadgen — drives a gateway over WebSocket (JSON or msgpack frames) or HTTP, measures
// throughput and per-batch ack latency, and prints one summary line.
//
//   sluice_loadgen --host=127.0.0.1 --port=8080 --mode=ws-msgpack --connections=4
//                  --events-per-batch=100 --duration-s=10 --inflight=8 --devices-per-connection=1
//                  [--payload=playback|reference] [--rate=EVENTS_PER_S] [--total-events=N]
//                  [--devices=per-connection|distinct] [--profiles=per-device|none]
//                  [--ports=P1,P2,... (instead of --port: connection i goes to port i mod n)]
//
// Payloads (`--payload`):
// - `playback` (default): each connection plays `devices-per-connection` devices (one device per
//   batch, round robin), events of ~200 bytes of JSON: id, type cycling play/heartbeat/pause/stop,
//   device_id, profile_id, ts, title_id, position_ms and a few player attributes.
// - `reference`: the events of ../shared/bench/reference-job.lua (the wrk reference job), byte for
//   byte the same fields: 10,000 events cycled per connection, 5% `type` "error", 1% with a card
//   number, ~10,000 distinct devices and profiles, many devices per batch.
// With `--devices=distinct` every event carries a device id never used before in this run (for the
// memory scenario: N events = N devices), `--device-offset` shifts them between runs, and
// `--profiles=none` leaves profile_id out (only device actors are made).
//
// WebSocket connections keep `inflight` frames outstanding (acks come back in order, so a FIFO of
// send times gives each frame's latency); HTTP connections send one keep-alive request at a time.
// `--rate` caps the offered load (events/s over all connections): each connection sends its
// batches on a fixed schedule, and latency is measured from the scheduled send time, so a server
// that falls behind is not hidden by the client waiting (no coordinated omission). Only acks
// received within the run window count towards the rates; outstanding frames are drained (up to a
// grace period) before exit. `--total-events` ends the run once that many events were acked
// (the rate is then over the time it took; `--duration-s` stays the upper bound).
// `--ports` spreads the connections round robin over several gateways (a local cluster, see
// bench/cluster.sh); the summary then covers all of them (one latency distribution).

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
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
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

/// Beast's write buffer of a WebSocket connection: large enough for a 100-event batch frame (~20
/// KB of msgpack, ~21 KB of JSON), which then goes out with one write.
constexpr size_t frame_write_buffer_bytes = 64 * 1024;

/// Events in the reference job's pool per client thread (reference-job.lua cycles this many).
constexpr uint64_t reference_pool_events = 10000;

enum class mode { ws_msgpack, ws_json, http_json, http_msgpack };
enum class payload { playback, reference };

struct options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  /// --ports: connection i talks to ports[i % size]; empty: every connection to `port`.
  std::vector<uint16_t> ports;
  mode m = mode::ws_msgpack;
  std::string mode_name = "ws-msgpack";
  size_t connections = 4;
  size_t events_per_batch = 100;
  size_t duration_s = 10;
  size_t inflight = 8;
  size_t devices_per_connection = 1;
  size_t threads = 1;
  payload p = payload::playback;
  /// Offered events/s over all connections; 0: as fast as acks allow.
  double rate = 0;
  /// Stop after this many events were sent (and acked); 0: run for duration-s.
  uint64_t total_events = 0;
  /// Every event a new device id (memory scenario).
  bool distinct_devices = false;
  /// First index of distinct device ids (so two runs can use disjoint devices).
  uint64_t device_offset = 0;
  bool profiles = true;

  bool http() const {
    return m == mode::http_json || m == mode::http_msgpack;
  }
  bool binary() const {
    return m == mode::ws_msgpack || m == mode::http_msgpack;
  }
  /// The gateway port of connection `idx`.
  uint16_t port_of(size_t idx) const {
    return ports.empty() ? port : ports[idx % ports.size()];
  }
};

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "sluice_loadgen: " << error << "\n"
            << "usage: sluice_loadgen [--host=H] [--port=P] "
               "[--mode=ws-msgpack|ws-json|http-json|http-msgpack]\n"
               "  [--connections=N] [--events-per-batch=N] [--duration-s=N]\n"
               "  [--inflight=N (per WebSocket)] [--devices-per-connection=N] "
               "[--threads=N (client io threads)]\n"
               "  [--payload=playback|reference] [--rate=EVENTS_PER_S (offered, all connections)]\n"
               "  [--total-events=N] [--devices=per-connection|distinct] [--device-offset=N]\n"
               "  [--profiles=per-device|none] [--ports=P1,P2,... (connections round robin)]\n";
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
    } else if (name == "ports") {
      o.ports.clear();
      size_t start = 0;
      while (start <= value.size()) {
        auto comma = value.find(',', start);
        auto item = value.substr(start, comma == std::string::npos ? std::string::npos
                                                                   : comma - start);
        auto p = parse_count(name, item);
        if (p > 65535)
          usage("--ports: port " + item + " out of range");
        o.ports.push_back(static_cast<uint16_t>(p));
        if (comma == std::string::npos)
          break;
        start = comma + 1;
      }
      o.port = o.ports.front();
    } else if (name == "mode") {
      o.mode_name = value;
      if (value == "ws-msgpack")
        o.m = mode::ws_msgpack;
      else if (value == "ws-json")
        o.m = mode::ws_json;
      else if (value == "http-json")
        o.m = mode::http_json;
      else if (value == "http-msgpack")
        o.m = mode::http_msgpack;
      else
        usage("--mode must be ws-msgpack, ws-json, http-json or http-msgpack, got '" + value
              + "'");
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
    } else if (name == "payload") {
      if (value == "playback")
        o.p = payload::playback;
      else if (value == "reference")
        o.p = payload::reference;
      else
        usage("--payload must be playback or reference, got '" + value + "'");
    } else if (name == "rate") {
      o.rate = static_cast<double>(parse_count(name, value));
    } else if (name == "total-events") {
      o.total_events = parse_count(name, value);
    } else if (name == "devices") {
      if (value != "per-connection" && value != "distinct")
        usage("--devices must be per-connection or distinct, got '" + value + "'");
      o.distinct_devices = value == "distinct";
    } else if (name == "device-offset") {
      o.device_offset = value == "0" ? 0 : parse_count(name, value);
    } else if (name == "profiles") {
      if (value != "per-device" && value != "none")
        usage("--profiles must be per-device or none, got '" + value + "'");
      o.profiles = value == "per-device";
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

/// One generated event, before it is written as JSON or msgpack.
struct gen_event {
  std::string id;
  std::string_view type;
  std::string device_id;
  std::string profile_id; ///< empty: left out
  std::string title_id;
  int64_t ts = 0;
  int64_t position_ms = 0;
  bool card = false;     ///< carries `card` (reference payload)
  bool player = false;   ///< carries app_version, os, country and player{} (playback payload)
};

const char* const reference_types[] = {"play",      "pause",     "seek",      "stop",
                                       "heartbeat", "heartbeat", "heartbeat", "heartbeat",
                                       "bitrate_change", "heartbeat"};
constexpr std::string_view card_number = "4111 1111 1111 1111";

void append_json_event(std::string& out, const gen_event& e) {
  out += "{\"id\":\"";
  out += e.id;
  out += "\",\"type\":\"";
  out += e.type;
  out += "\",\"device_id\":\"";
  out += e.device_id;
  out += '"';
  if (!e.profile_id.empty()) {
    out += ",\"profile_id\":\"";
    out += e.profile_id;
    out += '"';
  }
  out += ",\"title_id\":\"";
  out += e.title_id;
  out += "\",\"ts\":";
  out += std::to_string(e.ts);
  out += ",\"position_ms\":";
  out += std::to_string(e.position_ms);
  if (e.card) {
    out += ",\"card\":\"";
    out += card_number;
    out += '"';
  }
  if (e.player)
    out += ",\"app_version\":\"4.12.0\",\"os\":\"tvOS 17.2\",\"country\":\"DE\","
           "\"player\":{\"codec\":\"h264\",\"cdn\":\"edge-3\",\"bitrate_kbps\":5800}";
  out += '}';
}

void pack_event(msgpack::packer<msgpack::sbuffer>& pk, const gen_event& e) {
  uint32_t fields = 6 + (e.profile_id.empty() ? 0 : 1) + (e.card ? 1 : 0) + (e.player ? 4 : 0);
  pk.pack_map(fields);
  pk.pack(std::string_view{"id"});
  pk.pack(e.id);
  pk.pack(std::string_view{"type"});
  pk.pack(e.type);
  pk.pack(std::string_view{"device_id"});
  pk.pack(e.device_id);
  if (!e.profile_id.empty()) {
    pk.pack(std::string_view{"profile_id"});
    pk.pack(e.profile_id);
  }
  pk.pack(std::string_view{"title_id"});
  pk.pack(e.title_id);
  pk.pack(std::string_view{"ts"});
  pk.pack(e.ts);
  pk.pack(std::string_view{"position_ms"});
  pk.pack(e.position_ms);
  if (e.card) {
    pk.pack(std::string_view{"card"});
    pk.pack(card_number);
  }
  if (e.player) {
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
}

/// Builds batches of events for one connection (see the payloads in the file comment).
class batch_maker {
public:
  batch_maker(const options& o, size_t conn) : o_(o), conn_(conn) {
    for (size_t d = 0; d < o.devices_per_connection; ++d)
      devices_.push_back(device{"dev-" + std::to_string(conn) + "-" + std::to_string(d),
                                "prof-" + std::to_string(conn) + "-" + std::to_string(d)});
    // reference-job.lua starts each thread at a different place of its pool.
    k_ = (conn * 37 * o.events_per_batch) % reference_pool_events;
  }

  /// A JSON frame/body: `{"batch":N,"events":[...]}`, or the bare array for the reference
  /// payload (the body reference-job.lua sends).
  std::string json(uint64_t batch_no) {
    if (cycles_pool())
      return pooled(false, batch_no);
    fill();
    return render_json(batch_no);
  }

  /// The same batch as a msgpack map `{"batch":N,"events":[...]}`.
  std::string msgpack(uint64_t batch_no) {
    if (cycles_pool())
      return pooled(true, batch_no);
    fill();
    return pack_msgpack(batch_no);
  }

private:
  /// Whether frames repeat: the reference payload cycles a pool of events, as reference-job.lua
  /// does, and when the batch size divides the pool each frame starts at one of pool / batch
  /// places, so the frames are made once (2 MB per connection) and sent again, as wrk does, and
  /// the generator costs little CPU beside the node.
  bool cycles_pool() const {
    return o_.p == payload::reference && reference_pool_events % o_.events_per_batch == 0;
  }

  /// The frame starting at the pool's current place, made on its first use. A msgpack frame's
  /// batch number has a fixed 8-byte slot, written for each send.
  std::string pooled(bool binary, uint64_t batch_no) {
    auto place = k_ % reference_pool_events;
    auto i = frames_.find(place);
    if (i == frames_.end()) {
      fill();
      i = frames_.emplace(place, binary ? pack_msgpack(0, true) : render_json(0)).first;
    } else {
      k_ += o_.events_per_batch;
    }
    std::string out = i->second;
    if (binary)
      for (size_t b = 0; b < 8; ++b)
        out[batch_slot_ + b] = static_cast<char>(batch_no >> (56 - 8 * b));
    return out;
  }

  std::string render_json(uint64_t batch_no) {
    std::string out;
    out.reserve(o_.events_per_batch * 240 + 32);
    bool bare = o_.p == payload::reference;
    if (!bare) {
      out += "{\"batch\":";
      out += std::to_string(batch_no);
      out += ",\"events\":";
    }
    out += '[';
    for (size_t i = 0; i < events_.size(); ++i) {
      if (i > 0)
        out += ',';
      append_json_event(out, events_[i]);
    }
    out += ']';
    if (!bare)
      out += '}';
    return out;
  }

  /// `fixed_batch`: the batch number in 8 bytes (`batch_slot_` is where) rather than the fewest.
  std::string pack_msgpack(uint64_t batch_no, bool fixed_batch = false) {
    msgpack::sbuffer sb(o_.events_per_batch * 200 + 32);
    msgpack::packer<msgpack::sbuffer> pk(&sb);
    pk.pack_map(2);
    pk.pack(std::string_view{"batch"});
    if (fixed_batch) {
      batch_slot_ = sb.size() + 1; // after the 0xcf marker
      pk.pack_fix_uint64(batch_no);
    } else {
      pk.pack(batch_no);
    }
    pk.pack(std::string_view{"events"});
    pk.pack_array(static_cast<uint32_t>(events_.size()));
    for (auto& e : events_)
      pack_event(pk, e);
    return {sb.data(), sb.size()};
  }

  void fill() {
    events_.resize(o_.events_per_batch);
    if (o_.p == payload::reference) {
      for (auto& e : events_)
        reference_event(e, k_++ % reference_pool_events);
      return;
    }
    auto& dev = devices_[next_++ % devices_.size()];
    auto ts = now_ms();
    for (auto& e : events_) {
      auto n = dev.n++;
      dev.position_ms += position_step_ms;
      e.type = event_types[n % 4];
      if (o_.distinct_devices) {
        // Device ids unique over the run: connection c takes indices c, c + C, c + 2C, ...
        auto idx = o_.device_offset + conn_ + distinct_next_++ * o_.connections;
        e.device_id = "mdev-" + std::to_string(idx);
        e.profile_id = o_.profiles ? "mprof-" + std::to_string(idx) : std::string{};
      } else {
        e.device_id = dev.device_id;
        e.profile_id = o_.profiles ? dev.profile_id : std::string{};
      }
      e.id = e.device_id + "-" + std::to_string(n);
      e.title_id = "title-" + std::to_string((conn_ * 7 + n / 16) % title_count);
      e.ts = ts;
      e.position_ms = dev.position_ms;
      e.card = false;
      e.player = true;
    }
  }

  // reference-job.lua's event(k), with the connection index in place of wrk's thread id.
  void reference_event(gen_event& e, uint64_t k) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%08" PRIx64 "-%04zx-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64,
                  k, conn_, k % 4096, (k * 7) % 4096, k * uint64_t{2654435761} % uint64_t{281474976710656});
    e.id = buf;
    e.type = k % 20 == 0 ? std::string_view{"error"} : std::string_view{reference_types[k % 10]};
    std::snprintf(buf, sizeof buf, "dev-%016" PRIx64, (k * 40503) % uint64_t{18446744073709});
    e.device_id = buf;
    if (o_.profiles) {
      std::snprintf(buf, sizeof buf, "prof-%010" PRIu64, k % 9999991);
      e.profile_id = buf;
    } else {
      e.profile_id.clear();
    }
    std::snprintf(buf, sizeof buf, "title-%08" PRIu64, k % 99991);
    e.title_id = buf;
    e.ts = 1732233600000LL + static_cast<int64_t>(k);
    e.position_ms = static_cast<int64_t>((k * 1337) % 7200000);
    e.card = k % 100 == 7;
    e.player = false;
  }

  /// Frames of the reference pool by the place they start at (see `cycles_pool`).
  std::unordered_map<uint64_t, std::string> frames_;
  /// Where a pooled msgpack frame's batch number is.
  size_t batch_slot_ = 0;
  const options& o_;
  size_t conn_;
  size_t next_ = 0;
  uint64_t k_ = 0;
  uint64_t distinct_next_ = 0;
  std::vector<device> devices_;
  std::vector<gen_event> events_;
};

/// A connection's send schedule: `--rate` (a fixed interval between its batches, the connections
/// staggered over one interval) and `--total-events` (its share of the batches).
class pacer {
public:
  pacer(const options& o, size_t conn) {
    auto batches = o.total_events == 0
                     ? UINT64_MAX
                     : (o.total_events + o.events_per_batch - 1) / o.events_per_batch;
    quota_ = batches == UINT64_MAX ? batches
                                   : batches / o.connections + (conn < batches % o.connections);
    if (o.rate > 0) {
      auto secs = static_cast<double>(o.events_per_batch * o.connections) / o.rate;
      interval_ = std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(secs));
      offset_ = interval_ * static_cast<int64_t>(conn) / static_cast<int64_t>(o.connections);
    }
  }

  bool quota_left() const noexcept {
    return sent_ < quota_;
  }

  /// When the next batch is due: now when unpaced; otherwise its slot on the schedule (possibly
  /// in the past when the connection fell behind: the latency then counts from the slot).
  steady::time_point due(steady::time_point now) {
    if (interval_.count() == 0)
      return now;
    if (!started_) {
      started_ = true;
      next_ = now + offset_;
    }
    return next_;
  }

  void sent() noexcept {
    ++sent_;
    next_ += interval_;
  }

private:
  uint64_t quota_ = UINT64_MAX;
  uint64_t sent_ = 0;
  steady::duration interval_{0};
  steady::duration offset_{0};
  steady::time_point next_;
  bool started_ = false;
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
      ws_(resolver_.get_executor()), timer_(resolver_.get_executor()), maker_(o, idx),
      pacer_(o, idx), port_(o.port_of(idx)) {
  }

  void start() {
    resolver_.async_resolve(o_.host, std::to_string(port_),
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
        // A client masks its frames through Beast's write buffer, and writes each buffer's worth
        // with its own call: with the 4 KiB default, a 20 KB batch took 5 sendmsg calls (and 5
        // loopback packets, whose receive path runs on this thread): ~0.4 us of CPU per event, a
        // fifth of the machine, in the generator. One buffer that holds a whole batch frame
        // sends it with one call, as a browser does. Only settable before the handshake.
        self->ws_.write_buffer_bytes(frame_write_buffer_bytes);
        self->ws_.async_handshake(self->o_.host + ":" + std::to_string(self->port_),
                                  "/v1/stream", [self](beast::error_code ec) {
                                    if (ec)
                                      return self->fail("handshake", ec);
                                    self->ws_.binary(self->o_.m == mode::ws_msgpack);
                                    // One frame per message, as browsers and most clients send
                                    // them (Beast's client splits messages into 4 KiB frames).
                                    self->ws_.auto_fragment(false);
                                    self->do_read();
                                    self->pump();
                                  });
      });
  }

  /// Sends frames while fewer than `inflight` await their acks.
  void pump() {
    if (writing_ || done_ || rs_.stopping.load(std::memory_order_relaxed)
        || sent_.size() >= o_.inflight || !pacer_.quota_left()) {
      maybe_finish();
      return;
    }
    auto now = steady::now();
    auto due = pacer_.due(now);
    if (due > now) {
      if (!waiting_) {
        waiting_ = true;
        timer_.expires_at(due);
        timer_.async_wait([self = shared_from_this()](beast::error_code) {
          self->waiting_ = false;
          self->pump();
        });
      }
      return;
    }
    pacer_.sent();
    ++batch_no_;
    frame_ = o_.m == mode::ws_msgpack ? maker_.msgpack(batch_no_) : maker_.json(batch_no_);
    sent_.push_back(due);
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
    if (done_ || (!rs_.stopping.load(std::memory_order_relaxed) && pacer_.quota_left())
        || !sent_.empty() || writing_)
      return;
    done_ = true;
    timer_.cancel();
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
  net::steady_timer timer_;
  batch_maker maker_;
  pacer pacer_;
  uint16_t port_; ///< the gateway this connection talks to (--port or one of --ports)
  bool waiting_ = false;
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
      stream_(resolver_.get_executor()), timer_(resolver_.get_executor()), maker_(o, idx),
      pacer_(o, idx), port_(o.port_of(idx)) {
  }

  void start() {
    resolver_.async_resolve(o_.host, std::to_string(port_),
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
    if (rs_.stopping.load(std::memory_order_relaxed) || !pacer_.quota_left()) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.socket().close(ignored);
      rs_.conn_done();
      return;
    }
    auto now = steady::now();
    auto due = pacer_.due(now);
    if (due > now) {
      timer_.expires_at(due);
      timer_.async_wait([self = shared_from_this()](beast::error_code) { self->send(); });
      return;
    }
    pacer_.sent();
    req_ = {http::verb::post, "/v1/events", 11};
    req_.set(http::field::host, o_.host);
    req_.set(http::field::content_type,
             o_.binary() ? "application/msgpack" : "application/json");
    req_.keep_alive(true);
    req_.body() = o_.binary() ? maker_.msgpack(++batch_no_) : maker_.json(++batch_no_);
    req_.prepare_payload();
    sent_ = due;
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
  net::steady_timer timer_;
  batch_maker maker_;
  pacer pacer_;
  uint16_t port_; ///< the gateway this connection talks to (--port or one of --ports)
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
    if (o.http())
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
  // With --total-events the run ends when the last connection is done (or at duration-s).
  auto secs = std::chrono::duration<double>(std::min(steady::now(), rs.end) - rs.start).count();
  std::printf("events/s=%.0f batches/s=%.0f ack_p50_us=%u p99_us=%u p999_us=%u errors=%llu "
              "rejected=%llu mode=%s connections=%zu events_per_batch=%zu inflight=%zu "
              "devices_per_connection=%zu duration_s=%zu threads=%zu host=%s port=%u "
              "elapsed_s=%.3f acked_events=%llu payload=%s offered_rate=%.0f\n",
              static_cast<double>(total.events) / secs, static_cast<double>(total.batches) / secs,
              percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 0.999),
              static_cast<unsigned long long>(total.errors),
              static_cast<unsigned long long>(total.rejected), o.mode_name.c_str(), o.connections,
              o.events_per_batch, o.http() ? size_t{1} : o.inflight,
              o.devices_per_connection, o.duration_s, o.threads, o.host.c_str(),
              static_cast<unsigned>(o.port), secs, static_cast<unsigned long long>(total.events),
              o.p == payload::reference ? "reference" : "playback", o.rate);
  if (!total.first_error.empty())
    std::fprintf(stderr, "first error: %s\n", total.first_error.c_str());
  return total.errors == 0 ? 0 : 1;
}
