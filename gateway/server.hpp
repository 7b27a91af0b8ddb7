#pragma once

// The HTTP + WebSocket front door of a node (Boost.Beast on its own io_context threads).

#include "messages/event.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {
class metrics_registry;
struct ingest_quality;
struct decoded_batch;
}

namespace sluice::gateway {

/// Outcome of handing a batch to the ingest log.
struct commit_result {
  /// Empty on success. Otherwise why the batch was not committed; the gateway answers 503.
  std::string error;
  /// Seconds a client should wait before retrying when `error` is set (0: the gateway picks 1).
  uint32_t retry_after_s = 0;
  /// Offsets of the first and last committed event (0 when nothing was committed).
  log_offset first = 0;
  log_offset last = 0;
};

/// Called exactly once per submitted batch, on an arbitrary thread.
using commit_callback = std::function<void(commit_result)>;

/// An event its schema refused at the gateway, on its way to the dead-letter store.
struct quarantined {
  event ev;
  /// Names the schema, the field and the rule (`schema play@2: field position_ms: below minimum 0`).
  std::string reason;
};

/// Where the gateway hands decoded batches. Implemented over the ingest-log actor by the app; tests
/// may implement it directly.
class ingest_port {
public:
  virtual ~ingest_port() = default;
  /// Takes ownership of `events` (non-empty) and calls `done` once they are durable (or failed).
  virtual void submit(event_batch events, commit_callback done) = 0;
  /// Appends `events` (may be empty) and records `invalid` in the dead-letter store; calls `done`
  /// once both are durable, with the first error when either failed. The default (a port without
  /// a dead-letter store) refuses batches with invalid events.
  virtual void submit_with_quarantine(event_batch events, std::vector<quarantined> invalid,
                                      commit_callback done) {
    if (invalid.empty())
      return submit(std::move(events), std::move(done));
    done(commit_result{"this ingest port has no dead-letter store for schema violations", 0, 0,
                       0});
  }
  /// Whether batches are taken right now; when not, sets why and how long senders should wait.
  /// HTTP answers 503 at once; a WebSocket stops reading until this turns true. Thread-safe.
  virtual bool admitting(std::string& reason, uint32_t& retry_after_s) const {
    (void) reason;
    (void) retry_after_s;
    return true;
  }
};

/// A request as seen by an endpoint handler.
struct http_request {
  std::string method;            ///< "GET", "POST", ...
  std::string target;            ///< raw target including the query string
  std::string path;              ///< target without the query string
  std::map<std::string, std::string> query;  ///< decoded query parameters
  std::map<std::string, std::string> params; ///< `{name}` segments matched by the endpoint pattern
  std::map<std::string, std::string> headers; ///< lower-cased header names
  std::string body;
  std::string peer; ///< the socket peer's address (audit of logins)
};

/// A response produced by an endpoint handler.
struct http_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers; ///< extra headers (e.g. Retry-After)
};

/// A JSON response with `status`.
inline http_response json_response(unsigned status, std::string body) {
  http_response res;
  res.status = status;
  res.body = std::move(body);
  return res;
}

/// Sends the response; callable once, from any thread (it posts onto the connection's io thread).
using responder = std::function<void(http_response)>;

/// Handles one request; must not block (answer later through the responder if needed).
using handler = std::function<void(const http_request&, responder)>;

/// What a caller must hold to reach an endpoint. Every endpoint names one; there is no default, so
/// a new endpoint cannot skip the check.
enum class scope : uint8_t {
  open,   ///< anyone: liveness, readiness, the console's static files and its login
  ingest, ///< sending events: `POST /v1/events`, `/v1/stream`
  read,   ///< queries: profiles, devices, aggregates, schemas, metrics
  admin,  ///< `/v1/admin/*`, the console's data and its live feed
};

/// The scope's name as used in config and errors (`ingest`, `read`, `admin`, `open`).
const char* to_string(scope s) noexcept;

/// One entry of the endpoint table. Patterns are literal segments and `{name}` segments.
struct endpoint {
  std::string method;
  std::string pattern;
  scope required;
  std::string description;
  handler fn;
};

/// The parts of a request an access policy looks at (views into the request; valid during the call).
struct request_head {
  std::string_view method;
  std::string_view path;
  std::string_view authorization; ///< `Authorization` header (`Bearer <token>`)
  std::string_view cookie;        ///< `Cookie` header
  std::string_view csrf_token;    ///< `X-CSRF-Token` header
  std::string_view origin;        ///< `Origin` header
  std::string_view host;          ///< `Host` header
  std::string_view peer;          ///< the socket peer's address
};

/// An access policy's answer.
struct access_decision {
  bool allowed = true;
  /// Who is asking (a token's name, or "anonymous"); keys the per-token rate limit and the audit log.
  std::string principal = "anonymous";
  /// Sent instead of serving the request when `allowed` is false (401, 403 or 429 with a JSON body).
  http_response refusal;
};

/// Decides who may do what: authentication, scopes, CSRF and rate limits. The server consults it
/// before every endpoint, `POST /v1/events`, every WebSocket upgrade and every WebSocket frame.
/// Implementations must be thread-safe and must not block (they run on the io threads).
class access_policy {
public:
  virtual ~access_policy() = default;
  /// Whether `req` may reach an endpoint that needs `required`.
  virtual access_decision authorize(const request_head& req, scope required) = 0;
  /// Applies rate limits to a decoded batch of `principal` before it reaches the log: may move
  /// events to `batch.rejected`, or refuse the whole batch (429 with `Retry-After`).
  virtual std::optional<http_response> limit(const std::string& principal, decoded_batch& batch) {
    (void) principal;
    (void) batch;
    return std::nullopt;
  }
  /// Called once an endpoint of the table answered a request `authorize` allowed (the audit log
  /// hooks in here).
  virtual void completed(const request_head& req, const std::string& principal, scope required,
                         unsigned status) {
    (void) req;
    (void) principal;
    (void) required;
    (void) status;
  }
};

/// Gateway settings (declared as options of the `gateway` section by the app).
struct config {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;          ///< 0 picks a free port
  size_t io_threads = 1;
  size_t max_body_bytes = 8 << 20;      ///< larger HTTP bodies get 413
  size_t max_frame_bytes = 8 << 20;     ///< larger WebSocket messages get close code 1009
  size_t max_inflight_frames = 64;      ///< per WebSocket; reading pauses while this many await acks
  size_t max_batch_events = 100000;     ///< more events in one batch is a 413
  uint32_t idle_timeout_s = 60;         ///< HTTP keep-alive idle timeout
  /// Schemas and enrichment applied to every decoded batch (null: none).
  std::shared_ptr<const ingest_quality> quality;
  /// Authentication, scopes and rate limits (null: everything allowed, for tests and embedding).
  std::shared_ptr<access_policy> access;
  /// The console's live feed (`/v1/admin/live`, a WebSocket): a JSON snapshot pushed every
  /// `live_interval_ms` (null: no live feed; the upgrade gets 404).
  std::function<std::string()> live_snapshot;
  uint32_t live_interval_ms = 1000;
  /// PEM certificate chain and private key; both set: every connection is TLS (HTTPS, WSS) and a
  /// plain request fails its handshake; both empty: plain HTTP (local development). See tls.hpp.
  std::string tls_cert;
  std::string tls_key;
  /// Lowest TLS version accepted: "1.2" or "1.3".
  std::string tls_min_version = "1.2";
};

/// Accepts connections and serves `POST /v1/events`, the WebSocket `/v1/stream`, and every endpoint
/// of the table given at construction.
///
/// Lifecycle: `start` binds and begins accepting on `config.io_threads` threads and returns the bound
/// port; `stop_accepting` closes the listener (in-flight requests finish); `stop` closes every
/// connection and joins the threads. Concurrency: each io thread runs its own io_context, and each
/// connection lives on one of them (round robin), so its handlers run on one thread; handlers and
/// commit callbacks may complete from any thread. Limits: body size, frame size and in-flight
/// frames per WebSocket are bounded by `config`; a WebSocket stops reading while its in-flight limit
/// is reached, which pushes back through TCP.
class server {
public:
  server(config cfg, ingest_port& ingest, metrics_registry& metrics, std::vector<endpoint> endpoints);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  /// Binds and starts the io threads; returns the bound port. Throws on bind failure.
  uint16_t start();
  void stop_accepting();
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace sluice::gateway
