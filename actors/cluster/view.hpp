#pragma once

// The cluster's current ownership, as every component of a node reads it.

#include "actors/cluster/ring.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::cluster {

/// Copies of a key's state the cluster keeps: its owner and one replica.
inline constexpr size_t replicas = 2;

/// One immutable ownership snapshot: the ring over the members that are up, and this node's place
/// in it. A membership change publishes a new one (see `view_holder`).
struct view {
  std::string self;
  hash_ring ring;
  /// Index of `self` in `ring.nodes()` (-1 when this node is not in the ring).
  int self_index = -1;
  /// Bumped by every membership change.
  uint64_t version = 0;

  view() = default;
  view(std::string self_name, hash_ring r, uint64_t v)
    : self(std::move(self_name)), ring(std::move(r)), version(v) {
    self_index = ring.index_of(self);
  }

  /// Where the node at `node_index` (in `ring.nodes()`) stands for `key`: 1 its owner, 2 its
  /// replica, 0 neither.
  int rank(std::string_view key, int node_index) const noexcept {
    uint32_t idx[replicas];
    auto n = ring.owner_indices(key, replicas, idx);
    for (size_t i = 0; i < n; ++i)
      if (static_cast<int>(idx[i]) == node_index)
        return static_cast<int>(i) + 1;
    return 0;
  }

  /// Whether this node keeps the state of `key`: it is its owner or its replica.
  bool holds(std::string_view key) const noexcept {
    return ring.empty() || rank(key, self_index) != 0;
  }

  /// Whether this node owns `key` (answers its queries).
  bool owns(std::string_view key) const noexcept {
    return ring.empty() || rank(key, self_index) == 1;
  }
};

/// The current `view`, shared by the cluster actor (the only writer) and its readers: the shards
/// (which keys they apply), the forwarders and the query router.
///
/// Concurrency: `get` and `set` are atomic (`std::atomic_load`/`store` on the shared pointer); a
/// reader keeps the snapshot it loaded for a whole batch. Limits: none; one pointer.
class view_holder {
public:
  std::shared_ptr<const view> get() const {
    return std::atomic_load(&current_);
  }
  void set(std::shared_ptr<const view> v) {
    std::atomic_store(&current_, std::move(v));
  }

private:
  std::shared_ptr<const view> current_;
};

} // namespace sluice::cluster
