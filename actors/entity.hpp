#pragma once

#include "messages/event.hpp"

#include <string>

namespace sluice {

/// One device's or one profile's state, hosted by the shard its key hashes to (a virtual entity:
/// made on the key's first event or query, restored from LMDB, passivated when idle).
///
/// Lifecycle: made by its `entity_kind` from the stored state; `apply` is called for each of its
/// key's events in log order (per source), `end_batch` once after the events of one dispatched
/// batch; `encode` when the shard checkpoints it. Concurrency: called only from its shard's actor,
/// never concurrently. Limits: those of the model it wraps.
class entity {
public:
  virtual ~entity() = default;
  /// Applies one event of this entity's key; false when nothing changed (applied already).
  virtual bool apply(const event& e) = 0;
  /// After the events of one batch: enforces the model's bounds.
  virtual void end_batch() {
  }
  /// The state as stored in LMDB.
  virtual std::string encode() const = 0;
  /// Answers a query about this entity (`what` is kind-specific) with a JSON document.
  virtual std::string query(const std::string& what) const = 0;
};

} // namespace sluice
