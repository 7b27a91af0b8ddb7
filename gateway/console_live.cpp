#include "gateway/console_live.hpp"

#include "actors/metrics.hpp"
#include "messages/codec.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>

namespace sluice::gateway {

namespace {

/// Metric names the snapshot reads (declared by the components that own them).
constexpr std::string_view received_metric = "sluice_events_received_total";
constexpr std::string_view accepted_metric = "sluice_events_accepted_total";
constexpr std::string_view rejected_metric = "sluice_events_rejected_total";
constexpr std::string_view bytes_metric = "sluice_gateway_bytes_received_total";
constexpr std::string_view connections_metric = "sluice_gateway_connections";
constexpr std::string_view open_metric = "sluice_ingest_open";
constexpr std::string_view ack_metric = "sluice_gateway_ack_latency_seconds";
constexpr std::string_view sink_prefix = "sluice_sink_";
constexpr std::string_view consumer_prefix = "sluice_consumer_";
constexpr std::string_view actors_prefix = "sluice_actors_";
constexpr std::string_view actor_failures_metric = "sluice_actor_failures_total";
constexpr std::string_view dead_letters_metric = "sluice_dead_letters_total";
constexpr std::string_view replayed_metric = "sluice_dead_letters_replayed_total";
constexpr std::string_view routes_version_metric = "sluice_routes_version";
constexpr std::string_view log_prefix = "sluice_log_";

/// Quantiles of the ack latency the feed reports.
constexpr double quantiles[] = {0.5, 0.9, 0.99};
constexpr const char* quantile_names[] = {"p50", "p90", "p99"};

std::string label_of(const metric_labels& labels, std::string_view key) {
  for (auto& [k, v] : labels)
    if (k == key)
      return v;
  return {};
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

/// A JSON number: integers without a fraction, others with up to 3 decimals; never NaN or Inf.
std::string num(double v) {
  if (!std::isfinite(v))
    return "0";
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    return fmt::format("{}", static_cast<int64_t>(v));
  auto s = fmt::format("{:.3f}", v);
  while (s.back() == '0')
    s.pop_back();
  if (s.back() == '.')
    s.pop_back();
  return s;
}

/// One named group of metrics (a sink, a consumer, an actor kind): metric suffix → value / rate.
struct group {
  std::map<std::string, double> values;
  std::map<std::string, double> rates;
};

/// Appends `,"cluster":<doc>` when `doc` is one JSON object, else `,"cluster_error":"<why>"`
/// (empty: nothing, the node has no cluster view yet).
void append_cluster(std::string& out, const std::string& doc) {
  if (doc.empty())
    return;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto err = parser.parse(doc).get(root);
  if (err == simdjson::SUCCESS && root.is_object()) {
    out += ",\"cluster\":";
    out += doc;
    return;
  }
  out += ",\"cluster_error\":";
  append_json_string(out, err != simdjson::SUCCESS
                            ? fmt::format("the cluster view is not JSON: {}",
                                          simdjson::error_message(err))
                            : std::string{"the cluster view is not a JSON object"});
}

} // namespace

double histogram_quantile(double q, const std::vector<double>& bounds,
                          const std::vector<uint64_t>& buckets) {
  uint64_t total = 0;
  for (auto b : buckets)
    total += b;
  if (total == 0 || bounds.empty())
    return -1;
  q = std::clamp(q, 0.0, 1.0);
  double rank = q * static_cast<double>(total);
  uint64_t below = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i] == 0 || static_cast<double>(below + buckets[i]) < rank) {
      below += buckets[i];
      continue;
    }
    if (i >= bounds.size())
      return bounds.back(); // +Inf bucket: the largest finite bound is all we know
    double lower = i == 0 ? 0.0 : bounds[i - 1];
    double upper = bounds[i];
    double within = (rank - static_cast<double>(below)) / static_cast<double>(buckets[i]);
    return lower + (upper - lower) * std::clamp(within, 0.0, 1.0);
  }
  return bounds.back();
}

console_live::console_live(metrics_registry& metrics, console_node_info node,
                           std::chrono::milliseconds min_interval)
  : metrics_(metrics), node_(std::move(node)), min_interval_(min_interval) {
  // nop
}

void console_live::set_address(std::string address) {
  std::lock_guard<std::mutex> guard{mtx_};
  address_ = std::move(address);
}

std::string console_live::snapshot() {
  auto now = clock::now();
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  std::lock_guard<std::mutex> guard{mtx_};
  if (sampled_ && now - last_ < min_interval_)
    return cached_;
  return sample_locked(now, now_ms);
}

std::string console_live::sample(clock::time_point now, int64_t now_ms) {
  std::lock_guard<std::mutex> guard{mtx_};
  return sample_locked(now, now_ms);
}

std::string console_live::sample_locked(clock::time_point now, int64_t now_ms) {
  double dt = sampled_ ? std::chrono::duration<double>(now - last_).count() : 0.0;
  auto samples = metrics_.snapshot();
  std::map<std::string, double> current;
  std::map<std::string, std::vector<uint64_t>> current_buckets;
  // Counter rate since the previous sample (0 on the first one or after a reset).
  auto rate = [&](const metric_sample& s) {
    auto key = s.name + render_labels(s.labels);
    current[key] = s.value;
    auto i = previous_.find(key);
    double before = i != previous_.end() ? i->second : 0.0;
    if (dt <= 0 || s.value < before)
      return 0.0;
    return (s.value - before) / dt;
  };

  double received = 0, accepted = 0, rejected = 0, bytes = 0;
  double received_rate = 0, accepted_rate = 0, rejected_rate = 0, bytes_rate = 0;
  double connections = 0, open = 1, routes_version = 0;
  double dead_total = 0, dead_rate = 0, replayed = 0;
  std::map<std::string, group> rejections, sinks, consumers, actors, log;
  std::vector<uint64_t> ack_window;
  std::vector<double> ack_bounds;
  uint64_t ack_count = 0;
  double ack_sum = 0;

  for (auto& s : samples) {
    bool is_counter = s.kind == metric_sample::kind_t::counter;
    double r = is_counter ? rate(s) : 0.0;
    const std::string& n = s.name;
    if (n == received_metric) {
      received += s.value, received_rate += r;
    } else if (n == accepted_metric) {
      accepted += s.value, accepted_rate += r;
    } else if (n == rejected_metric) {
      rejected += s.value, rejected_rate += r;
      auto& g = rejections[label_of(s.labels, "reason")];
      g.values["total"] += s.value;
      g.rates["total"] += r;
    } else if (n == bytes_metric) {
      bytes += s.value, bytes_rate += r;
    } else if (n == connections_metric) {
      connections = s.value;
    } else if (n == open_metric) {
      open = s.value;
    } else if (n == routes_version_metric) {
      routes_version = s.value;
    } else if (n == dead_letters_metric) {
      dead_total += s.value, dead_rate += r;
    } else if (n == replayed_metric) {
      replayed += s.value;
    } else if (n == ack_metric && s.hist != nullptr) {
      auto& h = *s.hist;
      auto key = s.name + render_labels(s.labels);
      std::vector<uint64_t> now_buckets(h.bounds().size() + 1);
      for (size_t i = 0; i < now_buckets.size(); ++i)
        now_buckets[i] = h.bucket(i);
      auto prev = previous_buckets_.find(key);
      ack_window.resize(now_buckets.size());
      ack_bounds = h.bounds();
      for (size_t i = 0; i < now_buckets.size(); ++i) {
        uint64_t before = prev != previous_buckets_.end() && i < prev->second.size()
                            ? prev->second[i]
                            : 0;
        ack_window[i] += now_buckets[i] >= before ? now_buckets[i] - before : 0;
      }
      ack_count += h.count();
      ack_sum += h.sum();
      current_buckets[key] = std::move(now_buckets);
    } else if (starts_with(n, sink_prefix)) {
      auto& g = sinks[label_of(s.labels, "sink")];
      auto suffix = n.substr(sink_prefix.size());
      g.values[suffix] += s.value;
      g.rates[suffix] += r;
    } else if (starts_with(n, consumer_prefix)) {
      consumers[label_of(s.labels, "consumer")].values[n.substr(consumer_prefix.size())] = s.value;
    } else if (starts_with(n, actors_prefix) || n == actor_failures_metric) {
      auto& g = actors[label_of(s.labels, "kind")];
      auto suffix = n == actor_failures_metric ? std::string{"failures_total"}
                                               : n.substr(actors_prefix.size());
      g.values[suffix] += s.value;
      if (suffix == "active")
        g.values["shards"] += 1;
    } else if (starts_with(n, log_prefix) && s.labels.empty()) {
      auto& g = log[""];
      g.values[n.substr(log_prefix.size())] = s.value;
      g.rates[n.substr(log_prefix.size())] = r;
    }
  }

  double delivered = 0, delivered_rate = 0, dropped = 0;
  for (auto& [name, g] : sinks) {
    delivered += g.values["delivered_total"];
    delivered_rate += g.rates["delivered_total"];
    dropped += g.values["dropped_total"];
  }

  std::string out;
  out.reserve(4096);
  auto wall = [&](int64_t ms) { return std::to_string(ms); };
  out += "{\"v\":1,\"t\":" + wall(now_ms) + ",\"interval_s\":" + num(dt);
  // node
  out += ",\"node\":{\"id\":";
  append_json_string(out, node_.id);
  out += ",\"address\":";
  append_json_string(out, address_);
  out += ",\"version\":";
  append_json_string(out, node_.version);
  out += ",\"started_ms\":" + wall(node_.started_ms);
  out += ",\"uptime_s\":" + num(std::max<int64_t>(0, (now_ms - node_.started_ms) / 1000));
  out += ",\"health\":";
  append_json_string(out, node_.health ? node_.health() : std::string{"ready"});
  out += "}";
  // the cluster view (GET /v1/cluster), verbatim
  if (node_.cluster) {
    std::string doc;
    try {
      doc = node_.cluster();
    } catch (const std::exception& e) {
      out += ",\"cluster_error\":";
      append_json_string(out, fmt::format("the cluster view failed: {}", e.what()));
    }
    append_cluster(out, doc);
  }
  // ingest and delivery
  out += ",\"ingest\":{\"received\":" + num(received) + ",\"accepted\":" + num(accepted)
         + ",\"rejected\":" + num(rejected) + ",\"bytes\":" + num(bytes)
         + ",\"in_per_s\":" + num(received_rate) + ",\"accepted_per_s\":" + num(accepted_rate)
         + ",\"rejected_per_s\":" + num(rejected_rate) + ",\"bytes_per_s\":" + num(bytes_rate)
         + ",\"connections\":" + num(connections) + ",\"open\":" + (open != 0 ? "true" : "false")
         + "}";
  out += ",\"out\":{\"delivered\":" + num(delivered) + ",\"per_s\":" + num(delivered_rate)
         + ",\"dropped\":" + num(dropped) + "}";
  // ack latency over the interval, in ms
  out += ",\"ack_latency_ms\":{";
  for (size_t i = 0; i < std::size(quantiles); ++i) {
    auto v = histogram_quantile(quantiles[i], ack_bounds, ack_window);
    out += fmt::format("\"{}\":{},", quantile_names[i], v < 0 ? "null" : num(v * 1000));
  }
  uint64_t window_count = 0;
  for (auto b : ack_window)
    window_count += b;
  out += "\"window_count\":" + num(static_cast<double>(window_count)) + ",\"count\":"
         + num(static_cast<double>(ack_count)) + ",\"mean\":"
         + (ack_count > 0 ? num(ack_sum * 1000 / static_cast<double>(ack_count)) : "null") + "}";
  // rejections by reason (only reasons that happened)
  out += ",\"rejections\":[";
  bool first = true;
  for (auto& [reason, g] : rejections) {
    if (g.values["total"] == 0)
      continue;
    if (!first)
      out += ',';
    first = false;
    out += "{\"reason\":";
    append_json_string(out, reason);
    out += ",\"total\":" + num(g.values["total"]) + ",\"per_s\":" + num(g.rates["total"]) + "}";
  }
  out += "]";
  // per-consumer backlog
  out += ",\"consumers\":[";
  first = true;
  for (auto& [name, g] : consumers) {
    if (!first)
      out += ',';
    first = false;
    out += "{\"name\":";
    append_json_string(out, name);
    out += ",\"lag_events\":" + num(g.values["lag_events"]) + ",\"lag_bytes\":"
           + num(g.values["lag_bytes"]) + ",\"offset\":" + num(g.values["offset"])
           + ",\"lagging\":" + (g.values["lagging"] != 0 ? "true" : "false") + "}";
  }
  out += "]";
  // sinks
  out += ",\"sinks\":[";
  first = true;
  for (auto& [name, g] : sinks) {
    if (!first)
      out += ',';
    first = false;
    out += "{\"name\":";
    append_json_string(out, name);
    out += std::string{",\"healthy\":"} + (g.values["healthy"] != 0 ? "true" : "false")
           + ",\"circuit_open\":" + (g.values["circuit_open"] != 0 ? "true" : "false")
           + ",\"queued\":" + num(g.values["queued_events"])
           + ",\"received\":" + num(g.values["received_total"])
           + ",\"delivered\":" + num(g.values["delivered_total"])
           + ",\"dropped\":" + num(g.values["dropped_total"])
           + ",\"retries\":" + num(g.values["retries_total"])
           + ",\"errors\":" + num(g.values["errors_total"])
           + ",\"circuit_opened\":" + num(g.values["circuit_opened_total"])
           + ",\"delivered_per_s\":" + num(g.rates["delivered_total"])
           + ",\"retries_per_s\":" + num(g.rates["retries_total"]) + "}";
  }
  out += "]";
  // entities by kind (summed over shards)
  out += ",\"actors\":[";
  first = true;
  for (auto& [kind, g] : actors) {
    if (!first)
      out += ',';
    first = false;
    out += "{\"kind\":";
    append_json_string(out, kind);
    out += ",\"shards\":" + num(g.values["shards"]) + ",\"active\":" + num(g.values["active"])
           + ",\"spawned\":" + num(g.values["spawned_total"])
           + ",\"passivated\":" + num(g.values["passivated_total"])
           + ",\"restored\":" + num(g.values["restored_total"])
           + ",\"resting\":"
           + num(std::max(0.0, g.values["passivated_total"] - g.values["restored_total"]))
           + ",\"failures\":" + num(g.values["failures_total"]) + "}";
  }
  out += "]";
  // the log
  auto& lg = log[""];
  out += ",\"log\":{\"next_offset\":" + num(lg.values["next_offset"])
         + ",\"stored_bytes\":" + num(lg.values["stored_bytes"])
         + ",\"stored_records\":" + num(lg.values["stored_records"])
         + ",\"commits_per_s\":" + num(lg.rates["commits_total"]) + "}";
  out += ",\"dead_letters\":{\"total\":" + num(dead_total) + ",\"per_s\":" + num(dead_rate)
         + ",\"replayed\":" + num(replayed) + "}";
  out += ",\"routes\":{\"version\":" + num(routes_version) + "}}";

  previous_ = std::move(current);
  previous_buckets_ = std::move(current_buckets);
  last_ = now;
  sampled_ = true;
  cached_ = out;
  return out;
}

} // namespace sluice::gateway
