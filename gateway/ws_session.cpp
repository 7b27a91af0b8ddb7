// The WebSocket sessions: `/v1/stream` (pipelined batches, acks in frame order, bounded in-flight)
// and the console's live feed `/v1/admin/live` (push-only snapshots). Both are templates on the
// stream type, instantiated for plain and TLS here only: one translation unit shares the
// websocket::stream instantiations (measured: 64 s CPU in one TU against 103 s in two).

#include "gateway/quality.hpp"
#include "gateway/session.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffered_read_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <deque>
#include <exception>

namespace boost::beast {

// The WebSocket teardown (close handshake's end, read until EOF) of a buffered read stream is the
// one of the stream below it: the bytes still buffered belong to a connection being closed. Beast
// finds these by argument-dependent lookup, as it finds `ssl_stream`'s.

template <class NextLayer, class DynamicBuffer>
void teardown(role_type role, buffered_read_stream<NextLayer, DynamicBuffer>& stream,
              error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <class NextLayer, class DynamicBuffer, class TeardownHandler>
void async_teardown(role_type role, buffered_read_stream<NextLayer, DynamicBuffer>& stream,
                    TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

} // namespace boost::beast

namespace sluice::gateway::detail {

namespace websocket = beast::websocket;

namespace {

/// How often a WebSocket that stopped reading because the log pushed back looks at the gate again:
/// short against a client's retry timers, long against the cost of a timer wake-up.
constexpr auto gate_poll_interval = std::chrono::milliseconds{20};

/// Bytes a `/v1/stream` socket takes from the kernel per `recvmsg` at most. Beast's WebSocket
/// stream reads each frame header with its payload's first bytes into a 1536-byte buffer and the
/// rest of the frame with another read, so a message costs two `recvmsg` per frame (a client that
/// fragments, as Beast's does at 4 KiB, sends several frames per message): measured ~8 `recvmsg`
/// per 100-event msgpack message from `sluice_loadgen`. A buffered read stream under it takes
/// whatever the socket holds, up to this, in one call and serves those reads from memory (0.8
/// `recvmsg` per message). The buffer is allocated when the upgrade completes and kept for the
/// connection's life: 64 KiB per open `/v1/stream` socket.
constexpr size_t ws_read_chunk_bytes = 64 * 1024;

/// What both WebSocket sessions share (CRTP): a shared pointer to the session itself, `guarded`
/// handlers, and ending the connection once (`finish`: the session's `release` cancels its timers
/// and closes its socket, then the session leaves the server's registry). `Derived` defines
/// `release()` and makes this class a friend.
template <class Derived>
class ws_session_common : public session_base {
protected:
  explicit ws_session_common(server_state& st) : st_(st) {
  }

  std::shared_ptr<Derived> self_ptr() {
    return std::static_pointer_cast<Derived>(shared_from_this());
  }

  void finish() {
    auto self = self_ptr(); // alive until the end of this call, whoever dropped the last handler
    if (closed_)
      return;
    closed_ = true;
    static_cast<Derived&>(*this).release();
    st_.remove(this);
  }

  /// Runs `fn`; any exception ends this connection instead of escaping the handler.
  template <class Fn>
  void guarded(Fn&& fn) noexcept {
    try {
      fn();
    } catch (...) {
      try {
        finish();
      } catch (...) {
        // nop: the socket is gone
      }
    }
  }

  server_state& st_;
  bool closed_ = false; // socket closed, session unregistered
};

/// Creates a session, registers it with the server (which refuses it while stopping) and runs it
/// on the upgrade request.
template <class Session, class... Args>
void start_session(server_state& st, http::request<http::string_body> req, Args&&... args) {
  auto s = std::make_shared<Session>(st, std::forward<Args>(args)...);
  if (!st.add(s)) {
    s->shutdown();
    return;
  }
  s->run(std::move(req));
}

/// One WebSocket connection over `Stream` (`beast::tcp_stream`, or `tls_stream` for WSS).
///
/// Lifecycle: accepts the upgrade, then reads messages (each one a batch) and answers each with
/// one text frame, in the order the messages arrived. Each message read gets a slot at the tail of
/// `slots_`; a slot is filled at once (decode error, nothing to commit) or by the ingest port's
/// commit callback, which posts back onto this connection's io thread; filled slots are written from the head, one
/// `async_write` at a time, so acks never overtake each other. Limits: while
/// `max_inflight_frames` slots are unwritten the session stops reading (TCP pushes back); a message
/// larger than `max_frame_bytes` ends the connection with close code 1009 once the acks of the
/// messages before it are written. Undecodable messages get an error frame and reading goes on.
/// Concurrency: everything runs on the connection's io thread; commit callbacks and `shutdown` come
/// from other threads and only post. Reads go through a buffer of `ws_read_chunk_bytes` under the
/// WebSocket layer (one `recvmsg` takes every frame the socket holds, up to that).
template <class Stream>
class ws_session final : public ws_session_common<ws_session<Stream>> {
  using base = ws_session_common<ws_session<Stream>>;
  friend base;
  using base::closed_;
  using base::finish;
  using base::guarded;
  using base::self_ptr;
  using base::st_;

public:
  ws_session(server_state& st, Stream&& stream, connection_token token,
             std::string principal)
    : base(st), ws_(std::move(stream)), gate_timer_(ws_.get_executor()), token_(std::move(token)),
      principal_(std::move(principal)) {
    ws_.next_layer().capacity(ws_read_chunk_bytes);
  }

  auto executor() {
    return ws_.get_executor();
  }

  /// Runs on the io thread (called from the HTTP session's handler).
  void run(http::request<http::string_body> req) {
    beast::get_lowest_layer(ws_).expires_never(); // the websocket stream has its own timeouts
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "sluice"); }));
    // Beast's own limit fails the connection and then closes the socket while the rest of the
    // oversized message is still unread (Boost 1.74 teardown drains at most one read), so the
    // client gets a reset instead of the 1009 close frame. We count bytes ourselves instead and
    // close with `async_close`, which keeps reading (and discarding) until the client answers.
    ws_.read_message_max(0);
    ws_.auto_fragment(false);
    // The upgrade request describes the client of every batch on this socket (enrichment).
    user_agent_ = std::string{req[http::field::user_agent]};
    forwarded_for_ = std::string{req["x-forwarded-for"]};
    beast::error_code ec;
    auto peer = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
    if (!ec)
      peer_ip_ = peer.address().to_string();
    req_ = std::move(req);
    ws_.async_accept(req_, [self = self_ptr()](beast::error_code ec) {
      self->guarded([&] {
        self->req_ = {};
        if (ec)
          return self->finish();
        // `buffered_read_stream` asks the socket for what its buffer can hold without growing
        // (at least 512 bytes): room for a whole chunk from the start, or every read is 512 bytes.
        self->ws_.next_layer().buffer().reserve(ws_read_chunk_bytes);
        self->do_read();
      });
    });
  }

  void shutdown() override {
    net::post(executor(), [self = self_ptr()] { self->finish(); });
  }

private:
  struct slot {
    uint64_t seq = 0;
    clock::time_point t0;
    bool filled = false;
    std::string frame;
    // kept until the commit completes
    size_t accepted = 0;
    std::vector<rejection> rejected;
    std::string batch_id;
  };

  // -- reading ------------------------------------------------------------------------------------

  void do_read() {
    if (reading_ || closing_ || closed_ || gate_wait_)
      return;
    if (slots_.size() >= st_.cfg.max_inflight_frames)
      return; // resumed by on_write once the head slot is written
    std::string reason;
    uint32_t retry_after_s = 0;
    if (!st_.ingest.admitting(reason, retry_after_s)) {
      // The log pushes back: stop reading (TCP pushes back to the client) and look again shortly.
      st_.metrics.ws_paused.inc();
      gate_wait_ = true;
      gate_timer_.expires_after(gate_poll_interval);
      gate_timer_.async_wait([self = self_ptr()](beast::error_code) {
        self->guarded([&] {
          self->gate_wait_ = false;
          self->do_read();
        });
      });
      return;
    }
    reading_ = true;
    read_some();
  }

  void read_some() {
    // at most one byte past the limit, so an oversized message is detected without buffering it
    auto limit = st_.cfg.max_frame_bytes + 1 - rbuf_.size();
    ws_.async_read_some(rbuf_, limit, [self = self_ptr()](beast::error_code ec, size_t n) {
      self->guarded([&] { self->on_read_some(ec, n); });
    });
  }

  void on_read_some(beast::error_code ec, size_t n) {
    if (closed_)
      return;
    if (ec) {
      reading_ = false;
      return finish(); // closed by the client, reset, or shut down
    }
    st_.metrics.bytes_received.inc(n);
    if (rbuf_.size() > st_.cfg.max_frame_bytes) {
      reading_ = false;
      return too_big();
    }
    if (!ws_.is_message_done())
      return read_some();
    reading_ = false;
    on_message();
    do_read();
  }

  void on_message() {
    auto seq = next_seq_++;
    slots_.emplace_back();
    slots_.back().seq = seq;
    slots_.back().t0 = clock::now();
    auto data = rbuf_.data();
    std::string_view bytes{static_cast<const char*>(data.data()), data.size()};
    decode_limits limits;
    limits.max_events = st_.cfg.max_batch_events;
    auto batch = ws_.got_text() ? decode_json(bytes, now_epoch_ms(), limits)
                                : decode_msgpack(bytes, now_epoch_ms(), limits);
    rbuf_.consume(rbuf_.size());
    if (!batch.ok()) {
      unsigned code = 400;
      if (is_too_many_events(batch, limits.max_events)) {
        code = 413;
        st_.metrics.rejected(reject_reason::body_too_large).inc();
      } else {
        st_.metrics.rejected(reject_reason::malformed_batch).inc();
      }
      return fill(slots_.back(),
                  ws_error_frame(batch.error, batch.error_offset, batch.batch_id, seq), code);
    }
    st_.metrics.events_received.inc(batch.total);
    if (st_.cfg.access) {
      if (auto refusal = st_.cfg.access->limit(principal_, batch)) {
        st_.metrics.count_rejections(batch.rejected);
        st_.metrics.rejected(reject_reason::rate_limited).inc(batch.events.size());
        return fill(slots_.back(), ws_refusal_frame(*refusal, batch.batch_id, seq),
                    refusal->status);
      }
    }
    st_.metrics.count_rejections(batch.rejected);
    std::vector<quarantined> invalid;
    if (st_.cfg.quality) {
      client_info client{user_agent_, peer_ip_, forwarded_for_};
      auto n = apply_quality(batch, *st_.cfg.quality, client, invalid, st_.metrics.registry());
      st_.metrics.rejected(reject_reason::schema).inc(n);
    }
    if (batch.events.empty() && invalid.empty())
      return fill(slots_.back(), ws_ack_frame(batch.batch_id, seq, 0, batch.rejected), 200);
    auto& s = slots_.back();
    s.accepted = batch.events.size();
    s.rejected = std::move(batch.rejected);
    s.batch_id = std::move(batch.batch_id);
    std::weak_ptr<ws_session> weak = self_ptr();
    auto g = st_.gate_ptr;
    try {
      commit_callback done = [weak, g, seq](commit_result res) {
        post_to_session(g, weak, [seq, res = std::move(res)](ws_session& self) mutable {
          self.guarded([&] { self.on_commit(seq, std::move(res)); });
        });
      };
      if (invalid.empty())
        st_.ingest.submit(std::move(batch.events), std::move(done));
      else
        st_.ingest.submit_with_quarantine(std::move(batch.events), std::move(invalid),
                                          std::move(done));
    } catch (const std::exception& e) {
      on_commit(seq, commit_result{std::string{"ingest log refused the batch: "} + e.what()});
    }
  }

  void on_commit(uint64_t seq, commit_result res) {
    if (closed_ || slots_.empty() || seq < slots_.front().seq)
      return;
    auto idx = seq - slots_.front().seq;
    if (idx >= slots_.size())
      return;
    auto& s = slots_[idx];
    if (s.filled)
      return;
    if (!res.error.empty()) {
      st_.metrics.rejected(reject_reason::commit_failed).inc(s.accepted);
      auto retry = res.retry_after_s != 0 ? res.retry_after_s : default_retry_after_s;
      return fill(s, ws_commit_failed_frame(s.batch_id, seq, res.error, retry), 503);
    }
    st_.metrics.events_accepted.inc(s.accepted);
    fill(s, ws_ack_frame(s.batch_id, seq, s.accepted, s.rejected), 200);
  }

  void fill(slot& s, std::string frame, unsigned code) {
    s.frame = std::move(frame);
    s.filled = true;
    s.rejected = {};
    s.batch_id = {};
    st_.metrics.requests(endpoint_label::stream, code).inc();
    try_write();
  }

  // -- writing ------------------------------------------------------------------------------------

  void try_write() {
    if (writing_ || closed_ || close_sent_)
      return;
    if (slots_.empty() || !slots_.front().filled)
      return maybe_close();
    writing_ = true;
    auto& head = slots_.front();
    st_.metrics.observe_ack(head.t0);
    ws_.text(true);
    ws_.async_write(net::buffer(head.frame), [self = self_ptr()](beast::error_code ec, size_t) {
      self->guarded([&] { self->on_write(ec); });
    });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec)
      return finish();
    if (closed_ || slots_.empty())
      return; // finish() ran while this write was completing: slots_ is already cleared
    slots_.pop_front();
    do_read();
    try_write();
  }

  // -- closing ------------------------------------------------------------------------------------

  void too_big() {
    closing_ = true;
    rbuf_.consume(rbuf_.size());
    st_.metrics.rejected(reject_reason::frame_too_large).inc();
    st_.metrics.requests(endpoint_label::stream, 413).inc();
    try_write(); // acks before the oversized message go out first; then maybe_close
  }

  /// Sends close code 1009 once every earlier ack is written. `async_close` writes the close
  /// frame, then reads and discards the rest of the oversized message until the client's close
  /// frame arrives, so the client is never reset while it is still sending.
  void maybe_close() {
    if (!closing_ || close_sent_ || writing_ || !slots_.empty())
      return;
    close_sent_ = true;
    websocket::close_reason reason{websocket::close_code::too_big,
                                   "frame exceeds gateway.max-frame-bytes ("
                                     + std::to_string(st_.cfg.max_frame_bytes) + " bytes)"};
    ws_.async_close(reason, [self = self_ptr()](beast::error_code) {
      self->guarded([&] { self->finish(); });
    });
  }

  void release() {
    slots_.clear();
    gate_timer_.cancel();
    close_socket(ws_);
  }

  websocket::stream<beast::buffered_read_stream<Stream, beast::flat_buffer>> ws_;
  /// Wakes a session that stopped reading because the log pushed back.
  net::steady_timer gate_timer_;
  connection_token token_;
  http::request<http::string_body> req_;
  /// From the upgrade request: the client of every batch on this socket.
  /// Who opened this socket, as the access policy named them (keys the per-token rate limit).
  std::string principal_;
  std::string user_agent_;
  std::string forwarded_for_;
  std::string peer_ip_;
  beast::flat_buffer rbuf_;
  std::deque<slot> slots_;
  uint64_t next_seq_ = 1;
  bool reading_ = false;
  bool gate_wait_ = false; // stopped reading until the log takes batches again
  bool writing_ = false;
  bool closing_ = false;    // an oversized message was seen: no more reads
  bool close_sent_ = false; // async_close started
};

// -- /v1/admin/live ------------------------------------------------------------------------------

/// Largest message a live-feed client may send (the feed reads nothing; this only bounds what a
/// misbehaving client makes the server buffer before Beast closes with 1009).
constexpr size_t live_read_limit = 4096;
/// A live-feed client that answers no ping for this long is closed.
constexpr std::chrono::seconds live_idle_timeout{60};

/// One live-feed connection.
///
/// Lifecycle: accepts the upgrade, sends one snapshot at once, then one every `live_interval_ms`
/// (a steady timer on the io thread, re-armed after each tick, so consecutive frames are at least the
/// interval apart). Reads all the while, so Beast answers pings and the client's close; messages
/// the client sends are discarded. Pings the client when it was silent for half of
/// `live_idle_timeout` and closes it when silent for all of it (a dead peer). Ends on a read or
/// write error, the client's close, a snapshot function that throws (close code 1011) or
/// `shutdown` (server stop).
/// Limits: at most one frame exists at a time, the one being written; a tick that finds it still
/// in flight (a slow client) is skipped and counted in `sluice_gateway_live_skipped_total`, so a
/// slow reader costs one frame of memory, not a queue. Concurrency: everything runs on the
/// connection's io thread; `shutdown` posts. The snapshot function runs on the io thread.
template <class Stream>
class live_session final : public ws_session_common<live_session<Stream>> {
  using base = ws_session_common<live_session<Stream>>;
  friend base;
  using base::closed_;
  using base::finish;
  using base::guarded;
  using base::self_ptr;
  using base::st_;

public:
  live_session(server_state& st, Stream&& stream, connection_token token)
    : base(st), ws_(std::move(stream)), timer_(ws_.get_executor()), token_(std::move(token)),
      interval_(std::chrono::milliseconds{std::max<uint32_t>(1, st.cfg.live_interval_ms)}) {
  }

  auto executor() {
    return ws_.get_executor();
  }

  /// Runs on the io thread (called from the HTTP session's handler).
  void run(http::request<http::string_body> req) {
    beast::get_lowest_layer(ws_).expires_never(); // the websocket stream has its own timeouts
    // The client sends nothing, so the idle timeout (on reads) needs keep-alive pings: the server
    // pings after half of it and a live client's pong (browsers answer by themselves) counts as
    // read; a client that answers nothing for the whole timeout is closed.
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = live_idle_timeout;
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "sluice"); }));
    ws_.read_message_max(live_read_limit);
    req_ = std::move(req);
    ws_.async_accept(req_, [self = self_ptr()](beast::error_code ec) {
      self->guarded([&] {
        self->req_ = {};
        if (ec)
          return self->finish();
        self->do_read();
        self->tick();
      });
    });
  }

  void shutdown() override {
    net::post(executor(), [self = self_ptr()] { self->guarded([&] { self->finish(); }); });
  }

private:
  /// Sends a snapshot (unless the previous one is still being written) and arms the next tick.
  void tick() {
    if (closed_ || close_sent_)
      return;
    if (writing_) {
      st_.live_skipped.inc();
    } else {
      try {
        frame_ = st_.cfg.live_snapshot();
      } catch (const std::exception& e) {
        return fail(std::string{"live snapshot failed: "} + e.what());
      }
      writing_ = true;
      ws_.text(true);
      ws_.async_write(net::buffer(frame_), [self = self_ptr()](beast::error_code ec, size_t) {
        self->guarded([&] { self->on_write(ec); });
      });
    }
    timer_.expires_after(interval_);
    timer_.async_wait([self = self_ptr()](beast::error_code ec) {
      if (ec)
        return; // cancelled by finish
      self->guarded([&] { self->tick(); });
    });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    frame_.clear();
    if (ec)
      return finish();
  }

  void do_read() {
    ws_.async_read(rbuf_, [self = self_ptr()](beast::error_code ec, size_t) {
      self->guarded([&] {
        if (ec)
          return self->finish(); // the client's close (answered by Beast), reset, or too big
        self->rbuf_.consume(self->rbuf_.size()); // the feed takes no input
        self->do_read();
      });
    });
  }

  /// Closes with 1011 and `why`. Only called while no frame is being written (Beast allows one
  /// write at a time, and a close is a write).
  void fail(std::string why) {
    timer_.cancel();
    if (close_sent_ || closed_)
      return;
    close_sent_ = true;
    if (why.size() > 120) // a close reason must fit a control frame (125 bytes)
      why.resize(120);
    ws_.async_close(websocket::close_reason{websocket::close_code::internal_error, why},
                    [self = self_ptr()](beast::error_code) {
                      self->guarded([&] { self->finish(); });
                    });
  }

  void release() {
    timer_.cancel();
    close_socket(ws_);
  }

  websocket::stream<Stream> ws_;
  net::steady_timer timer_;
  connection_token token_;
  std::chrono::milliseconds interval_;
  http::request<http::string_body> req_;
  beast::flat_buffer rbuf_;
  /// The one frame in flight (empty when none).
  std::string frame_;
  bool writing_ = false;
  bool close_sent_ = false; // async_close started (snapshot failure)
};

} // namespace

void start_ws_session(server_state& st, beast::tcp_stream stream,
                      http::request<http::string_body> req, connection_token token,
                      std::string principal) {
  start_session<ws_session<decltype(stream)>>(st, std::move(req), std::move(stream),
                                              std::move(token), std::move(principal));
}

void start_ws_session(server_state& st, tls_stream stream, http::request<http::string_body> req,
                      connection_token token, std::string principal) {
  start_session<ws_session<decltype(stream)>>(st, std::move(req), std::move(stream),
                                              std::move(token), std::move(principal));
}

void start_live_session(server_state& st, beast::tcp_stream stream,
                        http::request<http::string_body> req, connection_token token) {
  start_session<live_session<decltype(stream)>>(st, std::move(req), std::move(stream),
                                                std::move(token));
}

void start_live_session(server_state& st, tls_stream stream, http::request<http::string_body> req,
                        connection_token token) {
  start_session<live_session<decltype(stream)>>(st, std::move(req), std::move(stream),
                                                std::move(token));
}

} // namespace sluice::gateway::detail
