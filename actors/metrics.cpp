#include "actors/metrics.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace sluice {

histogram::histogram(std::vector<double> bounds)
  : bounds_(std::move(bounds)),
    buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double v) noexcept {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i])
    ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0)
    sum_micro_.fetch_add(static_cast<uint64_t>(std::llround(v * 1e6)),
                         std::memory_order_relaxed);
}

double histogram::sum() const noexcept {
  return static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
}

std::vector<double> latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
          0.01,    0.025,  0.05,    0.1,    0.25,   0.5,    1,
          2.5,     5,      10};
}

std::string render_labels(const metric_labels& labels) {
  if (labels.empty())
    return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0)
      out += ',';
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
      }
    }
    out += '"';
  }
  out += '}';
  return out;
}

metrics_registry::family& metrics_registry::get_family(std::string_view name,
                                                       std::string_view help, kind type) {
  auto i = families_.find(name);
  if (i == families_.end())
    i = families_.emplace(std::string{name}, family{type, std::string{help}, {}, {}, {}, {}})
          .first;
  else if (i->second.type != type)
    throw std::logic_error(fmt::format("metric {} registered with two types", name));
  return i->second;
}

counter& metrics_registry::get_counter(std::string_view name, std::string_view help,
                                       metric_labels labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& fam = get_family(name, help, kind::counter);
  auto key = render_labels(labels);
  auto& slot = fam.counters[key];
  if (!slot) {
    fam.label_sets.emplace(std::move(key), labels);
    slot = std::make_unique<counter>();
  }
  return *slot;
}

gauge& metrics_registry::get_gauge(std::string_view name, std::string_view help,
                                   metric_labels labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& fam = get_family(name, help, kind::gauge);
  auto key = render_labels(labels);
  auto& slot = fam.gauges[key];
  if (!slot) {
    fam.label_sets.emplace(std::move(key), labels);
    slot = std::make_unique<gauge>();
  }
  return *slot;
}

histogram& metrics_registry::get_histogram(std::string_view name, std::string_view help,
                                           std::vector<double> bounds, metric_labels labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& fam = get_family(name, help, kind::histogram);
  auto key = render_labels(labels);
  auto& slot = fam.histograms[key];
  if (!slot) {
    fam.label_sets.emplace(std::move(key), labels);
    slot = std::make_unique<histogram>(std::move(bounds));
  }
  return *slot;
}

namespace {

std::string format_bound(double b) {
  return fmt::format("{}", b);
}

// Inserts an extra label into an already rendered label set.
std::string with_label(const std::string& rendered, const std::string& extra) {
  if (rendered.empty())
    return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

} // namespace

std::string metrics_registry::render() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string out;
  out.reserve(8192);
  for (auto& [name, fam] : families_) {
    const char* type = fam.type == kind::counter ? "counter"
                       : fam.type == kind::gauge ? "gauge"
                                                 : "histogram";
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, fam.help, name,
                   type);
    for (auto& [labels, c] : fam.counters)
      fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, labels, c->value());
    for (auto& [labels, g] : fam.gauges)
      fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, labels, g->value());
    for (auto& [labels, h] : fam.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        cumulative += h->bucket(i);
        fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", name,
                       with_label(labels, "le=\"" + format_bound(h->bounds()[i]) + "\""),
                       cumulative);
      }
      cumulative += h->bucket(h->bounds().size());
      fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", name,
                     with_label(labels, "le=\"+Inf\""), cumulative);
      fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n", name, labels, h->sum());
      fmt::format_to(std::back_inserter(out), "{}_count{} {}\n", name, labels, cumulative);
    }
  }
  return out;
}

double metrics_registry::value(std::string_view name, const metric_labels& labels) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = families_.find(name);
  if (i == families_.end())
    return 0;
  auto key = render_labels(labels);
  if (auto c = i->second.counters.find(key); c != i->second.counters.end())
    return static_cast<double>(c->second->value());
  if (auto g = i->second.gauges.find(key); g != i->second.gauges.end())
    return static_cast<double>(g->second->value());
  return 0;
}

std::vector<metric_sample> metrics_registry::snapshot() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<metric_sample> out;
  auto labels_of = [](const family& fam, const std::string& key) {
    auto i = fam.label_sets.find(key);
    return i != fam.label_sets.end() ? i->second : metric_labels{};
  };
  for (auto& [name, fam] : families_) {
    for (auto& [key, c] : fam.counters)
      out.push_back({name, labels_of(fam, key), metric_sample::kind_t::counter,
                     static_cast<double>(c->value()), nullptr});
    for (auto& [key, g] : fam.gauges)
      out.push_back({name, labels_of(fam, key), metric_sample::kind_t::gauge,
                     static_cast<double>(g->value()), nullptr});
    for (auto& [key, h] : fam.histograms)
      out.push_back({name, labels_of(fam, key), metric_sample::kind_t::histogram,
                     static_cast<double>(h->count()), h.get()});
  }
  return out;
}

} // namespace sluice
