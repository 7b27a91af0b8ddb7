#pragma once

// The console's live feed: a compact JSON snapshot of a node's metrics, pushed by the gateway over
// the WebSocket `/v1/admin/live` every `gateway::config::live_interval_ms`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {
class metrics_registry;
}

namespace sluice::gateway {

/// What the live feed says about the node itself and its cluster (the console's cluster page).
struct console_node_info {
  std::string id;        ///< `sluice.node`
  std::string version;   ///< the build's version
  int64_t started_ms = 0; ///< wall-clock start, epoch ms
  /// `ready`, `starting`, `stopping` or `overloaded` (null: always `ready`).
  std::function<std::string()> health;
  /// The `GET /v1/cluster` document (docs/cluster.md), embedded as the snapshot's `"cluster"`
  /// (null: omitted). Called once per sample, under the feed's mutex, from an io thread: it must
  /// answer quickly (a cached view, or a short bounded request) and never call back into the feed.
  std::function<std::string()> cluster = {};
};

/// The quantile `q` (0..1) of the observations counted in `buckets` (non-cumulative, one per bound
/// plus the +Inf bucket last), interpolated linearly inside the bucket that holds it as Prometheus'
/// `histogram_quantile` does; the last finite bound when it falls into +Inf; -1 without
/// observations.
double histogram_quantile(double q, const std::vector<double>& bounds,
                          const std::vector<uint64_t>& buckets);

/// Turns the metrics registry into the live feed's JSON.
///
/// Each sample reads every metric once (`metrics_registry::snapshot`) and renders totals, per-second
/// rates against the previous sample (counters only; the first sample has rates 0 and
/// `"interval_s":0`), ack-latency quantiles over the observations since the previous sample, events
/// rejected by reason, per-consumer backlog, per-sink health and counts, entity actors per kind,
/// the node (id, address, uptime, health) and, when `console_node_info::cluster` is set, the
/// cluster view verbatim (checked to be one JSON object; anything else is left out and named in
/// `"cluster_error"`, so one bad document cannot break the console's parse of the whole snapshot).
///
/// Lifecycle: one per node, made before the gateway starts; `set_address` once the port is bound.
/// Concurrency: `snapshot` is called from io threads (once per open live socket per interval): a
/// mutex serialises sampling, and calls closer than `min_interval` to the previous sample get the
/// cached JSON, so several open consoles neither distort the rates nor multiply the work. Limits:
/// memory holds the previous value of every counter (bounded by the registry's label sets).
class console_live {
public:
  using clock = std::chrono::steady_clock;

  console_live(metrics_registry& metrics, console_node_info node,
               std::chrono::milliseconds min_interval = std::chrono::milliseconds{500});

  /// The address the gateway listens on (`host:port`), shown in the cluster panel.
  void set_address(std::string address);

  /// The current snapshot (or the cached one when the previous sample is younger than
  /// `min_interval`). Thread-safe.
  std::string snapshot();

  /// Takes a sample at `now` with wall-clock `now_ms` (tests pass both; never cached).
  std::string sample(clock::time_point now, int64_t now_ms);

private:
  std::string sample_locked(clock::time_point now, int64_t now_ms);

  metrics_registry& metrics_;
  console_node_info node_;
  std::chrono::milliseconds min_interval_;
  std::mutex mtx_;
  std::string address_;
  bool sampled_ = false;
  clock::time_point last_;
  std::string cached_;
  /// Counter values of the previous sample, by name and rendered labels.
  std::map<std::string, double> previous_;
  /// Histogram buckets of the previous sample, by name and rendered labels.
  std::map<std::string, std::vector<uint64_t>> previous_buckets_;
};

} // namespace sluice::gateway
