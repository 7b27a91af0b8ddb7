#pragma once

// The bridge between the Beast gateway and the actors: the ingest port over the ingest-log actor,
// and the endpoint table of a node.

#include "actors/node.hpp"
#include "gateway/server.hpp"

#include <atomic>
#include <vector>

namespace sluice {
class metrics_registry;
}

namespace sluice::gateway {

/// Hands decoded batches to the ingest-log actor; the log answers through the callback after the
/// commit. Events refused by their schema go to the dead-letter store at the same time; a batch
/// with such events is answered once both the log commit and the dead-letter fsync are done.
/// Thread-safe: called from any io thread (`anon_send` never blocks).
class actor_ingest_port : public ingest_port {
public:
  actor_ingest_port(ingest_log_actor log, std::shared_ptr<const admission> gate,
                    dead_letter_actor dead_letters = {})
    : log_(std::move(log)), gate_(std::move(gate)), dead_letters_(std::move(dead_letters)) {
  }
  void submit(event_batch events, commit_callback done) override;
  void submit_with_quarantine(event_batch events, std::vector<quarantined> invalid,
                              commit_callback done) override;
  bool admitting(std::string& reason, uint32_t& retry_after_s) const override;

private:
  ingest_log_actor log_;
  std::shared_ptr<const admission> gate_;
  dead_letter_actor dead_letters_;
};

/// Whether the node serves traffic: false until replay finished and again once shutdown began.
struct node_status {
  std::atomic<bool> ready{false};
};

/// Every endpoint of a node besides ingest: `/metrics`, `/healthz`, `/readyz`,
/// `/v1/profiles/{id}/continue-watching`, `/v1/devices/{id}`, `GET /v1/admin/dead-letters` and
/// `POST /v1/admin/dead-letters/replay`.
std::vector<endpoint> node_endpoints(const node_handles& nodes, metrics_registry& metrics,
                                     const node_status& status);

} // namespace sluice::gateway
