// Plain C++ parts of the gateway: endpoint table, query/percent decoding, reply bodies, metrics.

#include "gateway/internal.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include "messages/text.hpp"

namespace sluice::gateway::detail {

namespace {

constexpr std::array<const char*, reject_reason_count> reason_names = {
  "missing_field",   "invalid_field",          "malformed_batch", "body_too_large",
  "unsupported_media_type", "frame_too_large", "commit_failed", "overloaded", "schema", "rate_limited",
};

constexpr std::array<const char*, 3> endpoint_names = {"events", "stream", "other"};

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}


bool is_param(std::string_view seg) {
  return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}

void append_ack_id(std::string& out, std::string_view batch_id, uint64_t seq) {
  if (batch_id.empty())
    out += std::to_string(seq);
  else
    out += batch_id;
}

} // namespace

// -- metrics ------------------------------------------------------------------------------------

gateway_metrics::gateway_metrics(metrics_registry& registry)
  : events_received(registry.get_counter("sluice_events_received_total",
                                         "Events seen in decoded client batches.")),
    events_accepted(registry.get_counter("sluice_events_accepted_total",
                                         "Events handed to the ingest log and committed.")),
    ack_latency(registry.get_histogram(
      "sluice_gateway_ack_latency_seconds",
      "Time from an ingest request or frame fully read to its ack written or queued.",
      latency_buckets())),
    connections(registry.get_gauge("sluice_gateway_connections",
                                   "Open HTTP and WebSocket connections.")),
    bytes_received(registry.get_counter("sluice_gateway_bytes_received_total",
                                        "Bytes of requests and frames read by the gateway.")),
    ws_paused(registry.get_counter("sluice_gateway_ws_paused_total",
                                   "Times a WebSocket stopped reading because the log pushed back.")),
    registry_(registry),
    requests_(new std::atomic<counter*>[endpoint_names.size() * codes]) {
  for (size_t i = 0; i < reject_reason_count; ++i)
    rejected_[i] = &registry.get_counter(
      "sluice_events_rejected_total",
      "Events (or whole batches, when their events are unknown) refused, by reason.",
      {{"reason", reason_names[i]}});
  for (size_t i = 0; i < endpoint_names.size() * codes; ++i)
    requests_[i].store(nullptr, std::memory_order_relaxed);
}

counter& gateway_metrics::requests(endpoint_label ep, unsigned code) {
  if (code < min_code || code > max_code)
    code = 500; // keeps the label set bounded; handlers cannot produce other codes anyway
  auto& slot = requests_[static_cast<size_t>(ep) * codes + (code - min_code)];
  auto* c = slot.load(std::memory_order_acquire);
  if (c == nullptr) {
    c = &registry_.get_counter(
      "sluice_gateway_requests_total",
      "HTTP requests and WebSocket frames answered, by endpoint and status code.",
      {{"endpoint", endpoint_names[static_cast<size_t>(ep)]}, {"code", std::to_string(code)}});
    slot.store(c, std::memory_order_release);
  }
  return *c;
}

void gateway_metrics::count_rejections(const std::vector<rejection>& rejected) {
  std::array<size_t, reject_reason_count> n{};
  for (const auto& r : rejected)
    ++n[static_cast<size_t>(classify_rejection(r.error))];
  for (size_t i = 0; i < reject_reason_count; ++i)
    if (n[i] > 0)
      rejected_[i]->inc(n[i]);
}

void gateway_metrics::observe_ack(clock::time_point t0) {
  ack_latency.observe(std::chrono::duration<double>(clock::now() - t0).count());
}

reject_reason classify_rejection(std::string_view message) {
  if (message.rfind("rate limited", 0) == 0)
    return reject_reason::rate_limited;
  return lower(message).find("missing field") != std::string::npos ? reject_reason::missing_field
                                                                   : reject_reason::invalid_field;
}

bool is_too_many_events(const decoded_batch& batch, size_t max_events) {
  if (batch.ok())
    return false;
  auto msg = lower(batch.error);
  return msg.find("too many events") != std::string::npos
         || msg.find("max_events") != std::string::npos
         || msg.find("max-batch-events") != std::string::npos
         || msg.find("more than " + std::to_string(max_events)) != std::string::npos;
}

// -- routing ------------------------------------------------------------------------------------

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/')
    path.remove_prefix(1);
  if (path.empty())
    return out;
  for (;;) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos)
      break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

router::router(std::vector<endpoint> endpoints) {
  entries_.reserve(endpoints.size());
  for (auto& ep : endpoints) {
    entry e;
    for (auto seg : split_path(ep.pattern))
      e.segments.emplace_back(seg);
    e.ep = std::move(ep);
    entries_.push_back(std::move(e));
  }
}

router::match_result router::match(std::string_view method, std::string_view path) const {
  match_result res;
  auto segs = split_path(path);
  for (const auto& e : entries_) {
    if (e.segments.size() != segs.size())
      continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const auto& pat = e.segments[i];
      if (is_param(pat)) {
        if (segs[i].empty())
          ok = false;
        else
          params[pat.substr(1, pat.size() - 2)] = percent_decode(segs[i], false);
      } else {
        ok = pat == segs[i];
      }
    }
    if (!ok)
      continue;
    if (e.ep.method == method) {
      res.result = outcome::found;
      res.ep = &e.ep;
      res.params = std::move(params);
      return res;
    }
    if (res.allow.find(e.ep.method) == std::string::npos) {
      if (!res.allow.empty())
        res.allow += ", ";
      res.allow += e.ep.method;
    }
    res.result = outcome::method_not_allowed;
  }
  return res;
}

std::string percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && c == '+') ? ' ' : c;
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      auto key = percent_decode(pair.substr(0, eq), true);
      auto value = eq == std::string_view::npos ? std::string{}
                                                : percent_decode(pair.substr(eq + 1), true);
      out[std::move(key)] = std::move(value);
    }
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string media_type(std::string_view content_type) {
  return lower(trim_blanks(content_type.substr(0, content_type.find(';'))));
}

std::optional<wire_format> format_for(std::string_view mt) {
  if (mt == "application/json")
    return wire_format::json;
  if (mt == "application/msgpack" || mt == "application/x-msgpack")
    return wire_format::msgpack;
  return std::nullopt;
}

// -- reply bodies -------------------------------------------------------------------------------

std::string json_error(std::string_view message) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

void append_rejected(std::string& out, const std::vector<rejection>& rejected) {
  out += ",\"rejected\":[";
  for (size_t i = 0; i < rejected.size(); ++i) {
    if (i > 0)
      out += ',';
    out += "{\"index\":";
    out += std::to_string(rejected[i].index);
    out += ",\"error\":";
    append_json_string(out, rejected[i].error);
    out += '}';
  }
  out += ']';
}

std::string http_ack_body(size_t accepted, const std::vector<rejection>& rejected,
                          std::string_view batch_id) {
  std::string out = "{\"accepted\":";
  out += std::to_string(accepted);
  append_rejected(out, rejected);
  if (!batch_id.empty()) {
    out += ",\"batch\":";
    out += batch_id;
  }
  out += '}';
  return out;
}

std::string ws_ack_frame(std::string_view batch_id, uint64_t seq, size_t accepted,
                         const std::vector<rejection>& rejected) {
  std::string out = "{\"ack\":";
  append_ack_id(out, batch_id, seq);
  out += ",\"accepted\":";
  out += std::to_string(accepted);
  append_rejected(out, rejected);
  out += '}';
  return out;
}

std::string ws_commit_failed_frame(std::string_view batch_id, uint64_t seq,
                                   std::string_view error, uint32_t retry_after_s) {
  std::string out = "{\"ack\":";
  append_ack_id(out, batch_id, seq);
  out += ",\"error\":";
  append_json_string(out, error);
  out += ",\"retry_after_s\":";
  out += std::to_string(retry_after_s);
  out += '}';
  return out;
}

std::string ws_error_frame(std::string_view error, size_t offset, std::string_view batch_id,
                           uint64_t seq) {
  std::string out = "{\"error\":";
  append_json_string(out, error);
  out += ",\"offset\":";
  out += std::to_string(offset);
  if (!batch_id.empty()) {
    out += ",\"batch\":";
    out += batch_id;
  }
  out += ",\"seq\":";
  out += std::to_string(seq);
  out += '}';
  return out;
}

std::string ws_refusal_frame(const http_response& refusal, std::string_view batch_id,
                             uint64_t seq) {
  std::string out = "{\"ack\":";
  append_ack_id(out, batch_id, seq);
  out += ",\"status\":";
  out += std::to_string(refusal.status);
  out += ",\"refused\":";
  if (refusal.content_type == "application/json" && !refusal.body.empty())
    out += refusal.body;
  else
    append_json_string(out, refusal.body);
  out += '}';
  return out;
}

int64_t now_epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace sluice::gateway::detail

namespace sluice::gateway {

const char* to_string(scope s) noexcept {
  switch (s) {
    case scope::open:
      return "open";
    case scope::ingest:
      return "ingest";
    case scope::read:
      return "read";
    case scope::admin:
      return "admin";
  }
  return "admin";
}

} // namespace sluice::gateway
