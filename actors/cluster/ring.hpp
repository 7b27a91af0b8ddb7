#pragma once

// Consistent hashing of device and profile keys onto cluster nodes.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::cluster {

/// A consistent-hash ring with virtual nodes: maps a key to the node owning it and to the nodes
/// that follow it (its replicas and successors).
///
/// Lifecycle: immutable once built; a membership change builds a new ring. Two rings built from
/// the same set of node names and the same `vnodes` are identical whatever the order of the names,
/// so every node computes the same owners from the same membership view. Hashing is XXH3 (stable
/// across platforms and releases by specification). Concurrency: const after construction, safe to
/// share between threads. Limits: `vnodes` points per node; a lookup is one hash and one binary
/// search over `nodes * vnodes` points.
class hash_ring {
public:
  /// Points per node unless given: a node's share deviates from the mean by about 1/sqrt(vnodes),
  /// 3% here.
  static constexpr size_t default_vnodes = 1024;

  hash_ring() = default;
  explicit hash_ring(std::vector<std::string> nodes, size_t vnodes = default_vnodes);

  /// Whether the ring has no node.
  bool empty() const noexcept {
    return nodes_.empty();
  }

  /// The node names, sorted.
  const std::vector<std::string>& nodes() const noexcept {
    return nodes_;
  }

  /// The node owning `key`. Precondition: `!empty()`.
  const std::string& owner(std::string_view key) const;

  /// The owner of `key` followed by the next distinct nodes clockwise, at most `n` in all (fewer
  /// when the ring has fewer nodes): the owner, its replica, then further successors.
  std::vector<std::string> owners(std::string_view key, size_t n) const;

  /// Like `owners`, without allocating: writes the indexes (into `nodes()`) of at most `n` nodes
  /// to `out` and returns how many it wrote.
  size_t owner_indices(std::string_view key, size_t n, uint32_t* out) const noexcept;

  /// The index of `name` in `nodes()`, or -1.
  int index_of(std::string_view name) const noexcept;

  /// Fraction of the hash space each node owns (sums to 1).
  std::map<std::string, double> shares() const;

  /// The 64-bit hash placing `key` on the ring.
  static uint64_t hash(std::string_view key) noexcept;

private:
  /// Index into `points_` of the first point at or after `h` (wrapping around).
  size_t successor(uint64_t h) const noexcept;

  std::vector<std::string> nodes_;
  /// (position, index into nodes_), sorted by position.
  std::vector<std::pair<uint64_t, uint32_t>> points_;
};

} // namespace sluice::cluster
