// The gateway server: acceptor, io threads, HTTP/1.1 sessions (POST /v1/events and the endpoint
// table), the TLS handshake when gateway.tls-cert is set, and the hand-over of `/v1/stream`
// and `/v1/admin/live` upgrades to ws_session.cpp.

#include "gateway/server.hpp"

#include "gateway/quality.hpp"
#include "gateway/session.hpp"
#include "gateway/tls.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <condition_variable>
#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <thread>

namespace sluice::gateway {

using namespace detail;

namespace {

/// Largest request header block; larger ones get 431.
constexpr uint32_t header_limit_bytes = 16 * 1024;
/// The most buffer space a request body gets for one socket read (see `read_body`).
constexpr uint64_t max_body_read_bytes = 64 * 1024;
/// How long a connection being closed after an error reply keeps draining what the client still
/// sends, so that the client reads the reply instead of a TCP reset.
constexpr std::chrono::seconds linger_timeout{2};
/// How long `stop` waits for connections to wind down before it stops the io_context outright.
constexpr std::chrono::seconds stop_grace{5};
/// How long a new TLS connection has to complete its handshake.
constexpr std::chrono::seconds tls_handshake_timeout{10};

const std::string continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

endpoint_label label_for(std::string_view path) {
  if (path == events_path)
    return endpoint_label::events;
  if (path == stream_path)
    return endpoint_label::stream;
  return endpoint_label::other;
}

const beast::error_code& http_category_probe() {
  static const beast::error_code ec = http::make_error_code(http::error::bad_target);
  return ec;
}

// -- HTTP session -------------------------------------------------------------------------------

/// One HTTP/1.1 connection over `Stream`: `beast::tcp_stream` (plain) or `tls_stream` (HTTPS).
///
/// Lifecycle: a TLS connection first completes its handshake within `tls_handshake_timeout`
/// (failures are counted in `sluice_gateway_tls_handshake_failures_total` and end the connection).
/// Then it reads one request at a time (keep-alive, `idle_timeout_s` to read the next one),
/// answers it (possibly later, from a commit callback or an endpoint responder, both of which post
/// back onto its io_context), then reads the next. A `/v1/stream` or `/v1/admin/live` upgrade hands
/// the stream to a WebSocket session. Errors that leave the stream unsynchronised (413, 431,
/// malformed) reply and close after draining the client's remaining bytes. Concurrency: everything
/// runs on the connection's io thread; only `shutdown` and the callbacks come from other threads.
template <class Stream>
class http_session final : public session_base {
public:
  /// Plain: `(st, socket)`; TLS: `(st, socket, ssl_context)`.
  template <class... Args>
  explicit http_session(server_state& st, Args&&... stream_args)
    : st_(st), stream_(std::forward<Args>(stream_args)...), token_(st.metrics.connections) {
  }

  auto executor() {
    return stream_.get_executor();
  }

  void start() {
    net::dispatch(executor(), [self = self_ptr()] {
      if constexpr (is_tls)
        self->handshake();
      else
        self->do_read();
    });
  }

  void shutdown() override {
    net::post(executor(), [self = self_ptr()] { self->finish(); });
  }

private:
  enum class phase { reading, waiting, writing, done };
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  std::shared_ptr<http_session> self_ptr() {
    return std::static_pointer_cast<http_session>(shared_from_this());
  }

  /// The TCP layer (timeouts, socket).
  beast::tcp_stream& tcp_layer() {
    return beast::get_lowest_layer(stream_);
  }

  void handshake() {
    tcp_layer().expires_after(tls_handshake_timeout);
    stream_.async_handshake(net::ssl::stream_base::server,
                            [self = self_ptr()](beast::error_code ec) {
                              self->guarded([&] {
                                if (self->closed_)
                                  return;
                                if (ec) {
                                  self->st_.tls_handshake_failures.inc();
                                  return self->finish();
                                }
                                self->do_read();
                              });
                            });
  }

  void do_read() {
    if (phase_ == phase::done)
      return;
    phase_ = phase::reading;
    parser_.emplace();
    parser_->body_limit(st_.cfg.max_body_bytes);
    parser_->header_limit(header_limit_bytes);
    tcp_layer().expires_after(std::chrono::seconds(st_.cfg.idle_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = self_ptr()](beast::error_code ec, size_t n) {
                              self->guarded([&] { self->on_header(ec, n); });
                            });
  }

  void on_header(beast::error_code ec, size_t n) {
    if (closed_)
      return; // shut down while this read was completing
    st_.metrics.bytes_received.inc(n);
    if (ec)
      return on_read_error(ec);
    if (parser_->is_done())
      return on_request();
    auto expect = parser_->get()[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      net::async_write(stream_, net::buffer(continue_100),
                       [self = self_ptr()](beast::error_code ec, size_t) {
                         self->guarded([&] {
                           if (ec)
                             return self->finish();
                           self->read_body();
                         });
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    // Beast reads at most the buffer's free capacity per recv (512 bytes when it is empty): a
    // 20 KB batch took ~40 recvmsg calls. Room for the whole body (up to one 64 KB read) makes
    // it one or two; the connection keeps that capacity for its next requests.
    if (auto len = parser_->content_length()) {
      if (*len > buffer_.capacity() - buffer_.size())
        buffer_.reserve(buffer_.size() + std::min<uint64_t>(*len, max_body_read_bytes));
      // spare room after the body lets a JSON batch be parsed where it is (decode_json_in_place)
      if (*len <= st_.cfg.max_body_bytes)
        parser_->get().body().reserve(*len + json_padding);
    }
    tcp_layer().expires_after(std::chrono::seconds(st_.cfg.idle_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     [self = self_ptr()](beast::error_code ec, size_t n) {
                       self->guarded([&] { self->on_body(ec, n); });
                     });
  }

  void on_body(beast::error_code ec, size_t n) {
    if (closed_)
      return; // shut down while this read was completing
    st_.metrics.bytes_received.inc(n);
    if (ec)
      return on_read_error(ec);
    on_request();
  }

  void on_read_error(beast::error_code ec) {
    t0_ = clock::now();
    if (ec == http::error::body_limit) {
      // the request line is parsed before the limit trips (even when it trips on Content-Length
      // while the header is being finished), so the target is known here
      auto label = label_for(path_of(parser_->get().target()));
      if (label == endpoint_label::events)
        st_.metrics.rejected(reject_reason::body_too_large).inc();
      phase_ = phase::waiting;
      return reply(413,
                   json_error("body exceeds gateway.max-body-bytes ("
                              + std::to_string(st_.cfg.max_body_bytes) + " bytes)"),
                   label, {}, true);
    }
    if (ec == http::error::header_limit) {
      phase_ = phase::waiting;
      return reply(431,
                   json_error("request headers exceed " + std::to_string(header_limit_bytes)
                              + " bytes"),
                   endpoint_label::other, {}, true);
    }
    if (ec.category() == http_category_probe().category() && ec != http::error::end_of_stream
        && ec != http::error::partial_message) {
      phase_ = phase::waiting;
      return reply(400, json_error("malformed HTTP request: " + ec.message()),
                   endpoint_label::other, {}, true);
    }
    // end of stream, idle timeout, reset, shutdown: nothing to answer
    finish();
  }

  void on_request() {
    t0_ = clock::now();
    ++generation_;
    phase_ = phase::waiting;
    tcp_layer().expires_never(); // the answer may take a while (durable commit); not an idle wait
    req_ = parser_->release();
    parser_.reset();
    auto target = std::string_view{req_.target().data(), req_.target().size()};
    auto path = path_of(target);
    if (path == stream_path && beast::websocket::is_upgrade(req_)) {
      if (!authorize(path, scope::ingest, endpoint_label::stream))
        return;
      st_.metrics.requests(endpoint_label::stream, 101).inc();
      auto self = self_ptr(); // keeps *this alive past remove()
      phase_ = phase::done;
      st_.remove(this);
      start_ws_session(st_, std::move(stream_), std::move(req_), std::move(token_),
                       std::move(principal_));
      return;
    }
    if (path == events_path) {
      if (req_.method() != http::verb::post)
        return reply(405, json_error("method not allowed: /v1/events accepts POST"),
                     endpoint_label::events, {{"Allow", "POST"}});
      if (!authorize(path, scope::ingest, endpoint_label::events))
        return;
      return handle_events();
    }
    if (path == stream_path)
      return reply(426, json_error("/v1/stream is a WebSocket endpoint: send an upgrade request"),
                   endpoint_label::stream, {{"Upgrade", "websocket"}});
    if (path == live_path)
      return handle_live(path);
    handle_table(target, path);
  }

  // -- GET /v1/admin/live (WebSocket) ------------------------------------------------------------

  void handle_live(std::string_view path) {
    if (!authorize(path, scope::admin, endpoint_label::other))
      return;
    if (!st_.cfg.live_snapshot)
      return reply(404, json_error("no live feed on this node"), endpoint_label::other);
    if (!beast::websocket::is_upgrade(req_))
      return reply(426,
                   json_error("/v1/admin/live is a WebSocket endpoint: send an upgrade request"),
                   endpoint_label::other, {{"Upgrade", "websocket"}});
    st_.metrics.requests(endpoint_label::other, 101).inc();
    auto self = self_ptr(); // keeps *this alive past remove()
    phase_ = phase::done;
    st_.remove(this);
    start_live_session(st_, std::move(stream_), std::move(req_), std::move(token_));
  }

  // -- access -------------------------------------------------------------------------------------

  /// A view of the current request for the access policy (valid while `req_` and `peer` live).
  request_head make_head(std::string_view path, std::string_view peer) const {
    auto header = [this](auto field) {
      auto v = req_[field];
      return std::string_view{v.data(), v.size()};
    };
    request_head head;
    head.method = {req_.method_string().data(), req_.method_string().size()};
    head.path = path;
    head.authorization = header(http::field::authorization);
    head.cookie = header(http::field::cookie);
    head.csrf_token = header("x-csrf-token");
    head.origin = header(http::field::origin);
    head.host = header(http::field::host);
    head.peer = peer;
    return head;
  }

  /// Asks the access policy (if any) whether this request may reach something that needs
  /// `required`; answers its refusal and returns false when not. Sets `principal_`.
  bool authorize(std::string_view path, scope required, endpoint_label label) {
    principal_ = "anonymous";
    if (!st_.cfg.access)
      return true;
    const auto& peer = peer_address();
    auto d = st_.cfg.access->authorize(make_head(path, peer), required);
    if (d.allowed) {
      principal_ = std::move(d.principal);
      return true;
    }
    reply(d.refusal.status, std::move(d.refusal.body), label, std::move(d.refusal.headers), false,
          d.refusal.content_type);
    return false;
  }

  // -- POST /v1/events ----------------------------------------------------------------------------

  void handle_events() {
    auto ct = req_[http::field::content_type];
    auto mt = media_type({ct.data(), ct.size()});
    auto fmt = format_for(mt);
    if (!fmt) {
      st_.metrics.rejected(reject_reason::unsupported_media_type).inc();
      return reply(415,
                   json_error("unsupported Content-Type '" + std::string{mt}
                              + "': send application/json or application/msgpack"
                                " (application/x-msgpack is accepted too)"),
                   endpoint_label::events);
    }
    decode_limits limits;
    limits.max_events = st_.cfg.max_batch_events;
    auto& body = req_.body();
    auto batch = *fmt == wire_format::json ? decode_json_in_place(body, now_epoch_ms(), limits)
                                           : decode_msgpack(body, now_epoch_ms(), limits);
    if (!batch.ok()) {
      if (is_too_many_events(batch, limits.max_events)) {
        st_.metrics.rejected(reject_reason::body_too_large).inc();
        std::string out = "{\"error\":";
        append_json_string(out, batch.error + " (gateway.max-batch-events is "
                                  + std::to_string(limits.max_events) + ")");
        out += ",\"max_events\":" + std::to_string(limits.max_events) + "}";
        return reply(413, std::move(out), endpoint_label::events);
      }
      st_.metrics.rejected(reject_reason::malformed_batch).inc();
      std::string out = "{\"error\":";
      append_json_string(out, batch.error);
      out += ",\"offset\":" + std::to_string(batch.error_offset) + "}";
      return reply(400, std::move(out), endpoint_label::events);
    }
    st_.metrics.events_received.inc(batch.total);
    if (st_.cfg.access) {
      if (auto refusal = st_.cfg.access->limit(principal_, batch)) {
        st_.metrics.count_rejections(batch.rejected);
        st_.metrics.rejected(reject_reason::rate_limited).inc(batch.events.size());
        return reply(refusal->status, std::move(refusal->body), endpoint_label::events,
                     std::move(refusal->headers), false, refusal->content_type);
      }
    }
    st_.metrics.count_rejections(batch.rejected);
    std::vector<quarantined> invalid;
    if (st_.cfg.quality) {
      auto ua = req_[http::field::user_agent];
      auto xff = req_["x-forwarded-for"];
      const auto& peer = peer_address();
      client_info client{{ua.data(), ua.size()}, peer, {xff.data(), xff.size()}};
      auto n = apply_quality(batch, *st_.cfg.quality, client, invalid, st_.metrics.registry());
      st_.metrics.rejected(reject_reason::schema).inc(n);
    }
    if (batch.events.empty() && invalid.empty())
      return reply(200, http_ack_body(0, batch.rejected, batch.batch_id), endpoint_label::events);
    std::string reason;
    uint32_t retry_after = 0;
    if (!st_.ingest.admitting(reason, retry_after)) {
      st_.metrics.rejected(reject_reason::overloaded).inc(batch.events.size());
      retry_after = retry_after != 0 ? retry_after : default_retry_after_s;
      std::string out = "{\"error\":";
      append_json_string(out, reason);
      out += ",\"retry_after_s\":" + std::to_string(retry_after) + "}";
      return reply(503, std::move(out), endpoint_label::events,
                   {{"Retry-After", std::to_string(retry_after)}});
    }
    pending_accepted_ = batch.events.size();
    pending_rejected_ = std::move(batch.rejected);
    pending_batch_id_ = std::move(batch.batch_id);
    std::weak_ptr<http_session> weak = self_ptr();
    auto g = st_.gate_ptr;
    auto gen = generation_;
    try {
      commit_callback done = [weak, g, gen](commit_result res) {
        post_to_session(g, weak, [gen, res = std::move(res)](http_session& s) mutable {
          s.guarded([&] { s.on_commit(gen, std::move(res)); });
        });
      };
      if (invalid.empty())
        st_.ingest.submit(std::move(batch.events), std::move(done));
      else
        st_.ingest.submit_with_quarantine(std::move(batch.events), std::move(invalid),
                                          std::move(done));
    } catch (const std::exception& e) {
      on_commit(gen, commit_result{std::string{"ingest log refused the batch: "} + e.what()});
    }
  }

  /// The socket peer's address as text (empty when the socket is gone). Looked up once per
  /// connection: access checks, enrichment and the audit hook all ask for it on every request.
  const std::string& peer_address() {
    if (!peer_) {
      beast::error_code ec;
      auto ep = tcp_layer().socket().remote_endpoint(ec);
      peer_ = ec ? std::string{} : ep.address().to_string();
    }
    return *peer_;
  }

  void on_commit(uint64_t gen, commit_result res) {
    if (gen != generation_ || phase_ != phase::waiting)
      return;
    if (!res.error.empty()) {
      st_.metrics.rejected(reject_reason::commit_failed).inc(pending_accepted_);
      auto retry = res.retry_after_s != 0 ? res.retry_after_s : default_retry_after_s;
      std::string out = "{\"error\":";
      append_json_string(out, res.error);
      out += ",\"retry_after_s\":" + std::to_string(retry) + "}";
      return reply(503, std::move(out), endpoint_label::events,
                   {{"Retry-After", std::to_string(retry)}});
    }
    st_.metrics.events_accepted.inc(pending_accepted_);
    reply(200, http_ack_body(pending_accepted_, pending_rejected_, pending_batch_id_),
          endpoint_label::events);
  }

  // -- endpoint table -----------------------------------------------------------------------------

  /// Calls back exactly once: on the first call, or with a 500 when dropped uncalled.
  struct responder_state {
    std::weak_ptr<http_session> weak;
    std::shared_ptr<gate> g;
    uint64_t gen = 0;
    std::atomic<bool> done{false};

    void respond(http_response r) {
      if (done.exchange(true))
        return;
      auto gen_copy = gen;
      post_to_session(g, weak, [gen_copy, r = std::move(r)](http_session& s) mutable {
        s.guarded([&] { s.on_handler_response(gen_copy, std::move(r)); });
      });
    }
    ~responder_state() {
      if (done.load())
        return;
      try {
        http_response r;
        r.status = 500;
        r.body = json_error("the endpoint handler finished without answering");
        respond(std::move(r));
      } catch (...) {
        // nop: out of memory while answering; the connection idles out
      }
    }
  };

  void handle_table(std::string_view target, std::string_view path) {
    auto m = st_.routes.match({req_.method_string().data(), req_.method_string().size()}, path);
    if (m.result == router::outcome::not_found)
      return reply(404, json_error("no endpoint at " + std::string{path}), endpoint_label::other);
    if (m.result == router::outcome::method_not_allowed)
      return reply(405,
                   json_error("method " + std::string{req_.method_string()} + " not allowed on "
                              + std::string{path} + "; allowed: " + m.allow),
                   endpoint_label::other, {{"Allow", m.allow}});
    if (!authorize(path, m.ep->required, endpoint_label::other))
      return;
    required_ = m.ep->required;
    auto hr = make_http_request(req_, target, path, std::move(m.params));
    hr.peer = peer_address();
    auto state = std::make_shared<responder_state>();
    state->weak = self_ptr();
    state->g = st_.gate_ptr;
    state->gen = generation_;
    responder respond = [state](http_response r) { state->respond(std::move(r)); };
    try {
      m.ep->fn(hr, std::move(respond));
    } catch (const std::exception& e) {
      reply(500, json_error(std::string{"endpoint handler failed: "} + e.what()),
            endpoint_label::other);
    } catch (...) {
      reply(500, json_error("endpoint handler failed"), endpoint_label::other);
    }
  }

  void on_handler_response(uint64_t gen, http_response r) {
    if (gen != generation_ || phase_ != phase::waiting)
      return;
    if (st_.cfg.access) {
      auto target = std::string_view{req_.target().data(), req_.target().size()};
      const auto& peer = peer_address();
      st_.cfg.access->completed(make_head(path_of(target), peer), principal_, required_, r.status);
    }
    reply(r.status, std::move(r.body), endpoint_label::other, std::move(r.headers), false,
          r.content_type);
  }

  // -- writing ------------------------------------------------------------------------------------

  void reply(unsigned status, std::string body, endpoint_label label,
             std::vector<std::pair<std::string, std::string>> headers = {}, bool close = false,
             const std::string& content_type = "application/json") {
    if (phase_ != phase::waiting)
      return;
    phase_ = phase::writing;
    res_ = {};
    res_.version(11);
    if (status < 100 || status > 599)
      status = 500;
    res_.result(status);
    res_.set(http::field::server, "sluice");
    res_.set(http::field::content_type, content_type);
    for (auto& [k, v] : headers)
      res_.set(k, v);
    res_.body() = std::move(body);
    close_after_ = close || !req_.keep_alive();
    res_.keep_alive(!close_after_);
    res_.prepare_payload();
    st_.metrics.requests(label, status).inc();
    if (label != endpoint_label::other) // acks of ingest requests only, not queries or logins
      st_.metrics.observe_ack(t0_);
    tcp_layer().expires_after(std::chrono::seconds(st_.cfg.idle_timeout_s));
    http::async_write(stream_, res_, [self = self_ptr()](beast::error_code ec, size_t) {
      self->guarded([&] { self->on_write(ec); });
    });
  }

  void on_write(beast::error_code ec) {
    if (ec)
      return finish();
    if (close_after_)
      return linger_close();
    req_ = {};
    do_read();
  }

  /// Half-closes and discards what the client still sends (up to `linger_timeout`) so that the
  /// reply is read rather than lost to a reset. TLS has no half-close below its own close_notify
  /// (which would wait for the client's): it only drains; the client closes after the reply,
  /// which it reads by its Content-Length.
  void linger_close() {
    phase_ = phase::done;
    if constexpr (!is_tls) {
      beast::error_code ignored;
      tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    tcp_layer().expires_after(linger_timeout);
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(drain_buf_), [self = self_ptr()](beast::error_code ec,
                                                                         size_t) {
      self->guarded([&] {
        if (ec)
          return self->finish();
        self->drain();
      });
    });
  }

  void finish() {
    auto self = self_ptr();
    if (closed_)
      return;
    closed_ = true;
    phase_ = phase::done;
    close_socket(stream_);
    st_.remove(this);
  }

  /// Runs `fn`, turning any exception into the end of this connection (never out of a handler).
  template <class Fn>
  void guarded(Fn&& fn) noexcept {
    try {
      fn();
    } catch (...) {
      try {
        if (phase_ == phase::waiting)
          reply(500, json_error("internal error"), endpoint_label::other, {}, true);
        else
          finish();
      } catch (...) {
        // nop: the socket is gone or going
      }
    }
  }

  server_state& st_;
  Stream stream_;
  connection_token token_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  phase phase_ = phase::reading;
  bool close_after_ = false;
  bool closed_ = false;
  uint64_t generation_ = 0;
  clock::time_point t0_ = clock::now();
  size_t pending_accepted_ = 0;
  std::vector<rejection> pending_rejected_;
  std::string pending_batch_id_;
  /// Who sent the current request, as the access policy named them.
  std::string principal_ = "anonymous";
  /// The peer's address, once looked up (see `peer_address`).
  std::optional<std::string> peer_;
  /// The scope of the table endpoint being answered.
  scope required_ = scope::open;
  std::array<char, 4096> drain_buf_{};
};

} // namespace

// -- server -------------------------------------------------------------------------------------

struct server::impl {
  impl(config cfg, ingest_port& ingest, metrics_registry& metrics, std::vector<endpoint> eps)
    : state(std::move(cfg), ingest, metrics, std::move(eps)) {
  }

  // Declared first so it is destroyed last: sessions destroyed with the io_context use it.
  server_state state;
  /// Set when gateway.tls-cert is: every connection is TLS. Outlives the io_context (sessions
  /// hold references to it).
  std::unique_ptr<net::ssl::context> tls;
  /// One io_context per io thread, each run by its thread alone: a connection lives on one of
  /// them (round robin), so its handlers never run concurrently without needing a strand, and its
  /// executor is a plain pointer (a strand per connection cost ~5% of the node's CPU in shared
  /// pointer and executor bookkeeping). The acceptor runs on the first.
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  /// The io_context the next accepted connection goes to.
  size_t next_ioc = 0;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::mutex run_mtx;
  std::condition_variable run_cv;
  size_t running = 0;
  bool started = false;
  bool stopped = false;

  net::io_context& next_context() {
    return *iocs[next_ioc++ % iocs.size()];
  }

  bool running_in_this_thread() const {
    for (auto& ioc : iocs)
      if (ioc->get_executor().running_in_this_thread())
        return true;
    return false;
  }

  void do_accept() {
    acceptor->async_accept(next_context(), [this](beast::error_code ec, tcp::socket sock) {
      if (ec == net::error::operation_aborted || !acceptor->is_open())
        return;
      if (!ec) {
        try {
          if (tls)
            start_session(std::make_shared<http_session<tls_stream>>(state, std::move(sock), *tls));
          else
            start_session(
              std::make_shared<http_session<beast::tcp_stream>>(state, std::move(sock)));
        } catch (...) {
          // nop: the socket is closed with the session; keep accepting
        }
      }
      do_accept();
    });
  }

  template <class Session>
  void start_session(const std::shared_ptr<Session>& s) {
    if (state.add(s))
      s->start();
  }
};

server::server(config cfg, ingest_port& ingest, metrics_registry& metrics,
               std::vector<endpoint> endpoints)
  : impl_(std::make_unique<impl>(std::move(cfg), ingest, metrics, std::move(endpoints))) {
}

server::~server() {
  stop();
}

uint16_t server::start() {
  auto& d = *impl_;
  if (d.started)
    throw std::logic_error("gateway server started twice");
  if (tls_enabled(d.state.cfg))
    d.tls = make_tls_context(d.state.cfg); // throws naming the option at fault
  auto addr = net::ip::make_address(d.state.cfg.host);
  tcp::endpoint ep{addr, d.state.cfg.port};
  auto n = std::max<size_t>(1, d.state.cfg.io_threads);
  for (size_t i = 0; i < n; ++i) {
    d.iocs.push_back(std::make_unique<net::io_context>(1));
    d.work.push_back(net::make_work_guard(*d.iocs.back()));
  }
  d.acceptor.emplace(*d.iocs.front());
  d.acceptor->open(ep.protocol());
  d.acceptor->set_option(net::socket_base::reuse_address(true));
  d.acceptor->bind(ep);
  d.acceptor->listen(net::socket_base::max_listen_connections);
  auto port = d.acceptor->local_endpoint().port();
  d.started = true;
  d.do_accept();
  d.running = n;
  for (size_t i = 0; i < n; ++i)
    d.threads.emplace_back([&d, &ioc = *d.iocs[i]] {
      for (;;) {
        try {
          ioc.run();
          break;
        } catch (...) {
          // nop: a handler threw past its guard; keep serving
        }
      }
      std::lock_guard<std::mutex> guard{d.run_mtx};
      --d.running;
      d.run_cv.notify_all();
    });
  return port;
}

void server::stop_accepting() {
  auto& d = *impl_;
  if (!d.acceptor)
    return;
  if (d.threads.empty()) { // never started: nothing runs on the acceptor's thread
    beast::error_code ignored;
    d.acceptor->close(ignored);
    return;
  }
  auto close = [&d] {
    beast::error_code ignored;
    d.acceptor->close(ignored);
  };
  if (d.running_in_this_thread()) {
    net::post(d.acceptor->get_executor(), close); // from a handler: cannot wait for ourselves
    return;
  }
  std::promise<void> done;
  net::post(d.acceptor->get_executor(), [&close, &done] {
    close();
    done.set_value();
  });
  done.get_future().wait();
}

void server::stop() {
  auto& d = *impl_;
  if (d.stopped || !d.started) {
    d.stopped = true;
    return;
  }
  d.stopped = true;
  {
    std::unique_lock<std::shared_mutex> lock{d.state.gate_ptr->mtx};
    d.state.gate_ptr->stopped = true;
  }
  stop_accepting();
  std::vector<std::shared_ptr<session_base>> live;
  {
    std::lock_guard<std::mutex> guard{d.state.mtx};
    d.state.closing = true;
    for (auto& [ptr, s] : d.state.sessions)
      live.push_back(s);
  }
  for (auto& s : live)
    s->shutdown();
  live.clear();
  d.work.clear();
  {
    std::unique_lock<std::mutex> lock{d.run_mtx};
    if (!d.run_cv.wait_for(lock, stop_grace, [&d] { return d.running == 0; }))
      for (auto& ioc : d.iocs)
        ioc->stop();
  }
  for (auto& t : d.threads)
    t.join();
  d.threads.clear();
  std::unordered_map<session_base*, std::shared_ptr<session_base>> rest;
  {
    std::lock_guard<std::mutex> guard{d.state.mtx};
    rest.swap(d.state.sessions);
  }
  rest.clear(); // destroyed here, while the io_contexts are still alive
}

} // namespace sluice::gateway
