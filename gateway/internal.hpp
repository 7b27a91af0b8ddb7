#pragma once

// Internals of the gateway shared by its translation units. No Beast and no CAF here: routing,
// JSON reply bodies, metric handles and the shutdown gate are plain C++ (see routing.cpp).

#include "actors/metrics.hpp"
#include "gateway/server.hpp"
#include "messages/codec.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::gateway::detail {

using clock = std::chrono::steady_clock;

/// The path of the ingest endpoint.
inline constexpr std::string_view events_path = "/v1/events";
/// The path of the WebSocket stream endpoint.
inline constexpr std::string_view stream_path = "/v1/stream";

/// Endpoint label of `sluice_gateway_requests_total`.
enum class endpoint_label { events, stream, other };

/// Reason label of `sluice_events_rejected_total` (a closed set: cardinality stays bounded).
enum class reject_reason {
  missing_field,
  invalid_field,
  malformed_batch,
  body_too_large,
  unsupported_media_type,
  frame_too_large,
  commit_failed,
  overloaded, ///< refused before the log because it pushes back (503 + Retry-After)
  schema,     ///< failed its type's schema; recorded in the dead-letter store
  rate_limited, ///< over its token's or its device's rate limit (429, or refused by index)
};
inline constexpr size_t reject_reason_count = 10;

/// Metric handles of one server, registered once at construction.
///
/// Concurrency: every member is safe to use from any thread; `requests` registers a (endpoint,
/// code) pair on first use (one mutex acquisition in the registry) and caches it lock-free.
class gateway_metrics {
public:
  explicit gateway_metrics(metrics_registry& registry);

  /// The `sluice_gateway_requests_total` counter for this endpoint and status code.
  counter& requests(endpoint_label ep, unsigned code);
  counter& rejected(reject_reason r) {
    return *rejected_[static_cast<size_t>(r)];
  }
  /// Counts per-event rejections by classifying their messages.
  void count_rejections(const std::vector<rejection>& rejected);
  /// Records one ack latency measured from `t0`.
  void observe_ack(clock::time_point t0);
  /// The registry, for metrics with open label sets (schema violations by type and rule).
  metrics_registry& registry() noexcept {
    return registry_;
  }

  counter& events_received;
  counter& events_accepted;
  histogram& ack_latency;
  gauge& connections;
  counter& bytes_received;
  counter& ws_paused;

private:
  static constexpr unsigned min_code = 100;
  static constexpr unsigned max_code = 599;
  static constexpr size_t codes = max_code - min_code + 1;
  metrics_registry& registry_;
  std::array<counter*, reject_reason_count> rejected_{};
  std::unique_ptr<std::atomic<counter*>[]> requests_;
};

/// Classifies one per-event rejection message into a metric reason.
reject_reason classify_rejection(std::string_view message);

/// Whether a whole-batch decode error means "too many events" (413) rather than malformed (400).
bool is_too_many_events(const decoded_batch& batch, size_t max_events);

/// Keeps callbacks arriving from foreign threads from touching the io_context once `stop` began.
///
/// A commit callback or responder takes the shared lock, checks `stopped`, and posts onto the
/// connection's io thread while holding it; `stop` takes the exclusive lock to set `stopped`, so no
/// post can race with the io_context's destruction.
struct gate {
  std::shared_mutex mtx;
  bool stopped = false;
};

/// The endpoint table with pre-split patterns.
class router {
public:
  explicit router(std::vector<endpoint> endpoints);

  enum class outcome { found, method_not_allowed, not_found };
  struct match_result {
    outcome result = outcome::not_found;
    const endpoint* ep = nullptr;
    std::map<std::string, std::string> params;
    /// Comma-separated methods that do match the path (for `Allow` on 405).
    std::string allow;
  };

  /// Finds the first entry (in table order) whose pattern and method match.
  match_result match(std::string_view method, std::string_view path) const;

private:
  struct entry {
    endpoint ep;
    std::vector<std::string> segments; // "{name}" segments keep their braces
  };
  std::vector<entry> entries_;
};

/// Splits a path into its segments (`/a/b` → `a`, `b`; a trailing slash yields an empty last one).
std::vector<std::string_view> split_path(std::string_view path);

/// Percent-decodes `in`; `plus_is_space` for query strings. Invalid escapes are kept verbatim.
std::string percent_decode(std::string_view in, bool plus_is_space);

/// Parses `a=1&b=x%20y` into decoded pairs (later duplicates win).
std::map<std::string, std::string> parse_query(std::string_view query);

/// The lower-cased media type of a Content-Type value without its parameters.
std::string media_type(std::string_view content_type);

/// Wire format of a batch by media type.
enum class wire_format { json, msgpack };
std::optional<wire_format> format_for(std::string_view media_type);

/// `{"error":"..."}`.
std::string json_error(std::string_view message);

/// Appends `,"rejected":[{"index":i,"error":"..."},...]`.
void append_rejected(std::string& out, const std::vector<rejection>& rejected);

/// The HTTP 200 body: `{"accepted":N,"rejected":[...]}` (plus `"batch"` when the client gave one).
std::string http_ack_body(size_t accepted, const std::vector<rejection>& rejected,
                          std::string_view batch_id);

/// The WebSocket ack frame: `{"ack":<batch id or seq>,"accepted":N,"rejected":[...]}`.
std::string ws_ack_frame(std::string_view batch_id, uint64_t seq, size_t accepted,
                         const std::vector<rejection>& rejected);

/// The WebSocket ack frame of a failed commit: `{"ack":..,"error":"..","retry_after_s":n}`.
std::string ws_commit_failed_frame(std::string_view batch_id, uint64_t seq,
                                   std::string_view error, uint32_t retry_after_s);

/// The WebSocket error frame of an undecodable frame:
/// `{"error":"..","offset":n,"batch":<id if known>,"seq":n}`.
std::string ws_error_frame(std::string_view error, size_t offset, std::string_view batch_id,
                           uint64_t seq);

/// The WebSocket ack frame of a frame the access policy refused (rate limits):
/// `{"ack":..,"status":429,"refused":<the refusal's JSON body>}`; a client retries the frame later.
std::string ws_refusal_frame(const http_response& refusal, std::string_view batch_id, uint64_t seq);

/// Current wall-clock time, epoch milliseconds.
int64_t now_epoch_ms();

/// Seconds a client is told to wait after a failed commit that named no delay.
inline constexpr uint32_t default_retry_after_s = 1;

} // namespace sluice::gateway::detail
