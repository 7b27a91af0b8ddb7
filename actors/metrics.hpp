#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

/// Prometheus label set, e.g. `{{"sink", "errors"}}`.
using metric_labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing count.
class counter {
public:
  void inc(uint64_t n = 1) noexcept {
    value_.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<uint64_t> value_{0};
};

/// A value that goes up and down.
class gauge {
public:
  void set(int64_t v) noexcept {
    value_.store(v, std::memory_order_relaxed);
  }
  void add(int64_t n) noexcept {
    value_.fetch_add(n, std::memory_order_relaxed);
  }
  int64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<int64_t> value_{0};
};

/// A cumulative histogram with fixed upper bounds (seconds for latencies).
class histogram {
public:
  explicit histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  const std::vector<double>& bounds() const noexcept {
    return bounds_;
  }
  /// Non-cumulative count of bucket `i` (`i == bounds().size()` is +Inf).
  uint64_t bucket(size_t i) const noexcept {
    return buckets_[i].load(std::memory_order_relaxed);
  }
  uint64_t count() const noexcept {
    return count_.load(std::memory_order_relaxed);
  }
  double sum() const noexcept;

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0}; // sum in millionths, lock-free
};

/// Latency buckets from 50 µs to 10 s, in seconds.
std::vector<double> latency_buckets();

/// One metric of a registry at the time of `metrics_registry::snapshot` (for the console).
struct metric_sample {
  enum class kind_t { counter, gauge, histogram };
  std::string name;
  metric_labels labels;
  kind_t kind = kind_t::counter;
  /// Counter or gauge value (a histogram's count).
  double value = 0;
  /// The live histogram (valid for the registry's lifetime); null for counters and gauges.
  const histogram* hist = nullptr;
};

/// Every metric of a node, rendered as Prometheus text at `/metrics`.
///
/// Lifecycle: one per node, created before any component and outliving all of them. Concurrency:
/// registration takes a mutex and returns a reference that stays valid for the registry's lifetime;
/// components register once and keep the reference, so the hot path is one relaxed atomic add.
/// `render` may run concurrently with updates. Limits: label sets must be bounded by configuration
/// (sink, route, reason names), never by client data.
class metrics_registry {
public:
  counter& get_counter(std::string_view name, std::string_view help, metric_labels labels = {});
  gauge& get_gauge(std::string_view name, std::string_view help, metric_labels labels = {});
  histogram& get_histogram(std::string_view name, std::string_view help,
                           std::vector<double> bounds, metric_labels labels = {});
  /// Prometheus text exposition format 0.0.4.
  std::string render() const;
  /// Current value of a counter or gauge (0 when absent); for tests and the console.
  double value(std::string_view name, const metric_labels& labels = {}) const;
  /// Every registered metric with its labels and current value, by name then label set.
  std::vector<metric_sample> snapshot() const;

private:
  enum class kind { counter, gauge, histogram };
  struct family {
    kind type;
    std::string help;
    std::map<std::string, std::unique_ptr<counter>> counters;
    std::map<std::string, std::unique_ptr<gauge>> gauges;
    std::map<std::string, std::unique_ptr<histogram>> histograms;
    /// Rendered label set → the labels themselves (for `snapshot`).
    std::map<std::string, metric_labels> label_sets;
  };
  family& get_family(std::string_view name, std::string_view help, kind type);
  mutable std::mutex mtx_;
  std::map<std::string, family, std::less<>> families_;
};

/// Renders a label set as `{a="x",b="y"}` (empty string for none), escaping values.
std::string render_labels(const metric_labels& labels);

} // namespace sluice
