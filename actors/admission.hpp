#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {

/// Whether the ingest log takes new batches right now, published by the log and read by the
/// gateway on its io threads before it submits a batch (HTTP answers 503 with `Retry-After` at
/// once; a WebSocket stops reading until the gate opens again).
///
/// Lifecycle: created by `spawn_node`, shared by the log (the only writer) and the gateway.
/// Concurrency: lock-free atomics; a reader may see a state one commit old, which is harmless: the
/// log refuses a batch it cannot take anyway. Limits: none.
struct admission {
  /// False while the stored log exceeds `storage.max-log-bytes`, the log's pending queue is full,
  /// or the last commit failed for lack of space.
  std::atomic<bool> open{true};
  /// Advice for senders while closed.
  std::atomic<uint32_t> retry_after_s{1};
  /// Why the gate is closed (a static string; valid for the program's life).
  std::atomic<const char*> reason{""};

  /// Consumers whose unconsumed part of the log exceeds `storage.max-log-bytes` (for `/readyz`).
  std::vector<std::string> lagging() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return lagging_;
  }
  void set_lagging(std::vector<std::string> names) {
    std::lock_guard<std::mutex> guard{mtx_};
    lagging_ = std::move(names);
  }

private:
  mutable std::mutex mtx_;
  std::vector<std::string> lagging_;
};

} // namespace sluice
