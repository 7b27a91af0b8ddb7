#include "actors/cluster/ring.hpp"

#include <xxhash.h>

#include <algorithm>
#include <stdexcept>

namespace sluice::cluster {

hash_ring::hash_ring(std::vector<std::string> nodes, size_t vnodes) : nodes_(std::move(nodes)) {
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  if (vnodes == 0)
    throw std::invalid_argument("hash_ring: vnodes must be at least 1");
  points_.reserve(nodes_.size() * vnodes);
  std::string label;
  for (uint32_t n = 0; n < nodes_.size(); ++n) {
    for (size_t v = 0; v < vnodes; ++v) {
      label = nodes_[n];
      label += '#';
      label += std::to_string(v);
      points_.emplace_back(hash(label), n);
    }
  }
  // Ties (astronomically rare) break by node name, so the order never depends on input order.
  std::sort(points_.begin(), points_.end());
}

uint64_t hash_ring::hash(std::string_view key) noexcept {
  return XXH3_64bits(key.data(), key.size());
}

size_t hash_ring::successor(uint64_t h) const noexcept {
  auto i = std::lower_bound(points_.begin(), points_.end(), std::make_pair(h, uint32_t{0}));
  return i == points_.end() ? 0 : static_cast<size_t>(i - points_.begin());
}

const std::string& hash_ring::owner(std::string_view key) const {
  if (points_.empty())
    throw std::logic_error("hash_ring::owner on an empty ring");
  return nodes_[points_[successor(hash(key))].second];
}

std::vector<std::string> hash_ring::owners(std::string_view key, size_t n) const {
  std::vector<uint32_t> idx(std::min(n, nodes_.size()));
  idx.resize(owner_indices(key, idx.size(), idx.data()));
  std::vector<std::string> out;
  for (auto i : idx)
    out.push_back(nodes_[i]);
  return out;
}

size_t hash_ring::owner_indices(std::string_view key, size_t n, uint32_t* out) const noexcept {
  if (points_.empty() || n == 0)
    return 0;
  n = std::min(n, nodes_.size());
  size_t found = 0;
  auto i = successor(hash(key));
  for (size_t step = 0; step < points_.size() && found < n; ++step) {
    auto node = points_[(i + step) % points_.size()].second;
    if (std::find(out, out + found, node) == out + found)
      out[found++] = node;
  }
  return found;
}

int hash_ring::index_of(std::string_view name) const noexcept {
  auto i = std::lower_bound(nodes_.begin(), nodes_.end(), name);
  return i != nodes_.end() && *i == name ? static_cast<int>(i - nodes_.begin()) : -1;
}

std::map<std::string, double> hash_ring::shares() const {
  std::map<std::string, double> out;
  for (const auto& name : nodes_)
    out[name] = 0.0;
  if (points_.empty())
    return out;
  // A point owns the arc from its predecessor (exclusive) up to itself.
  constexpr double space = 18446744073709551616.0; // 2^64
  for (size_t i = 0; i < points_.size(); ++i) {
    uint64_t prev = i == 0 ? points_.back().first : points_[i - 1].first;
    uint64_t arc = points_[i].first - prev; // wraps around for i == 0, as it should
    if (points_.size() == 1)
      arc = UINT64_MAX;
    out[nodes_[points_[i].second]] += static_cast<double>(arc) / space;
  }
  return out;
}

} // namespace sluice::cluster
