#pragma once

// Beast-level internals shared by server.cpp (acceptor, HTTP sessions) and ws_session.cpp
// (the WebSocket sessions: `/v1/stream` and the live feed `/v1/admin/live`).
//
// Every session is a template on its stream type: `beast::tcp_stream` (plain) or `tls_stream`
// (`beast::ssl_stream<beast::tcp_stream>`, when gateway.tls-cert is set). Each template is
// instantiated for both in exactly one translation unit (its own), behind the non-template entry
// points declared here, so the heavy SSL instantiations are compiled once.

#include "gateway/internal.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <cctype>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace sluice::gateway::detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

/// The stream of a TLS connection (HTTPS, WSS).
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

/// The path of the console's live feed (a push-only WebSocket, scope admin).
inline constexpr std::string_view live_path = "/v1/admin/live";

/// One client connection (HTTP or WebSocket), owned by the server's registry while it lives.
class session_base : public std::enable_shared_from_this<session_base> {
public:
  virtual ~session_base() = default;
  /// Closes the socket on the session's io thread (called by `server::stop`, any thread).
  virtual void shutdown() = 0;
};

/// Counts one open connection in `sluice_gateway_connections` for as long as it lives; moves from
/// the HTTP session into the WebSocket session on upgrade.
class connection_token {
public:
  connection_token() = default;
  explicit connection_token(gauge& g) : gauge_(&g) {
    gauge_->add(1);
  }
  connection_token(connection_token&& other) noexcept : gauge_(std::exchange(other.gauge_, nullptr)) {
  }
  connection_token& operator=(connection_token&& other) noexcept {
    if (this != &other) {
      release();
      gauge_ = std::exchange(other.gauge_, nullptr);
    }
    return *this;
  }
  connection_token(const connection_token&) = delete;
  connection_token& operator=(const connection_token&) = delete;
  ~connection_token() {
    release();
  }

private:
  void release() noexcept {
    if (gauge_ != nullptr)
      gauge_->add(-1);
    gauge_ = nullptr;
  }
  gauge* gauge_ = nullptr;
};

/// Everything sessions share. Owned by the server; outlives the io_context (and so every session
/// that a pending handler may still hold), except `gate_ptr`, which callbacks on foreign threads
/// share.
struct server_state {
  server_state(config c, ingest_port& in, metrics_registry& reg, std::vector<endpoint> eps)
    : cfg(std::move(c)), ingest(in), metrics(reg), routes(std::move(eps)),
      gate_ptr(std::make_shared<gate>()),
      tls_handshake_failures(reg.get_counter(
        "sluice_gateway_tls_handshake_failures_total",
        "TLS handshakes that failed or timed out (plain HTTP sent to a TLS port, untrusted or "
        "unsupported clients); 0 while gateway.tls-cert is unset.")),
      live_skipped(reg.get_counter(
        "sluice_gateway_live_skipped_total",
        "Live-feed snapshots not sent because the client had not read the previous one yet.")) {
  }

  config cfg;
  ingest_port& ingest;
  gateway_metrics metrics;
  router routes;
  std::shared_ptr<gate> gate_ptr;
  counter& tls_handshake_failures;
  counter& live_skipped;

  /// Adds a live session; returns false (and the caller closes it) once `stop` began.
  bool add(const std::shared_ptr<session_base>& s) {
    std::lock_guard<std::mutex> guard{mtx};
    if (closing)
      return false;
    sessions.emplace(s.get(), s);
    return true;
  }
  void remove(session_base* s) {
    std::shared_ptr<session_base> victim; // destroyed outside the lock
    std::lock_guard<std::mutex> guard{mtx};
    auto i = sessions.find(s);
    if (i != sessions.end()) {
      victim = std::move(i->second);
      sessions.erase(i);
    }
  }

  std::mutex mtx;
  bool closing = false;
  std::unordered_map<session_base*, std::shared_ptr<session_base>> sessions;
};

/// The endpoint handler's view of `req` (method, target, path, decoded query, the pattern's
/// `params`, lower-cased headers with repeated ones joined by ", "); moves the body out of `req`.
inline http_request make_http_request(http::request<http::string_body>& req,
                                      std::string_view target, std::string_view path,
                                      std::map<std::string, std::string> params) {
  http_request hr;
  hr.method = std::string{req.method_string()};
  hr.target = std::string{target};
  hr.path = std::string{path};
  if (auto q = target.find('?'); q != std::string_view::npos)
    hr.query = parse_query(target.substr(q + 1));
  hr.params = std::move(params);
  for (const auto& f : req) {
    std::string name{f.name_string()};
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto& slot = hr.headers[name];
    if (!slot.empty())
      slot += ", ";
    slot.append(f.value().data(), f.value().size());
  }
  hr.body = std::move(req.body());
  return hr;
}

/// Shuts down and closes the TCP socket under `stream` (plain, TLS or WebSocket); errors are
/// ignored: the connection is ending either way.
template <class Stream>
void close_socket(Stream& stream) {
  beast::error_code ignored;
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
  lowest.close();
}

/// Runs `fn(session)` on the session's io thread if the server is not stopping and the session still
/// lives; safe from any thread. `Session` must expose `executor()`.
template <class Session, class Fn>
void post_to_session(const std::shared_ptr<gate>& g, const std::weak_ptr<Session>& weak, Fn&& fn) {
  std::shared_lock<std::shared_mutex> lock{g->mtx};
  if (g->stopped)
    return;
  if (auto s = weak.lock()) {
    auto ex = s->executor();
    net::post(ex, [s, f = std::forward<Fn>(fn)]() mutable { f(*s); });
  } // `s` is released while the lock is held, so the io_context is still alive
}

/// Upgrades an HTTP connection that asked for `/v1/stream` to a WebSocket session.
/// `principal` (as the access policy named the client) keys the per-token rate limit of its frames.
void start_ws_session(server_state& st, beast::tcp_stream stream,
                      http::request<http::string_body> req, connection_token token,
                      std::string principal);
void start_ws_session(server_state& st, tls_stream stream, http::request<http::string_body> req,
                      connection_token token, std::string principal);

/// Upgrades an HTTP connection that asked for `/v1/admin/live` (already authorized, and
/// `st.cfg.live_snapshot` set) to a push-only live-feed session (ws_session.cpp).
void start_live_session(server_state& st, beast::tcp_stream stream,
                        http::request<http::string_body> req, connection_token token);
void start_live_session(server_state& st, tls_stream stream, http::request<http::string_body> req,
                        connection_token token);

} // namespace sluice::gateway::detail
