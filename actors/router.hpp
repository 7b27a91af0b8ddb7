#pragma once

#include "actors/interfaces.hpp"
#include "actors/route_table.hpp"

#include <caf/stateful_actor.hpp>

#include <string>
#include <vector>

namespace sluice {

class metrics_registry;
class counter;

/// State of the router.
///
/// Lifecycle: spawned with the compiled routes and one sink runner per configured sink. Receives
/// every committed batch from the ingest log in offset order, evaluates the routes per event
/// (an event may match several; unmatched events take `_unmatched`), and sends each sink one
/// batch per commit — also an empty one, so every sink's offset follows the log. Concurrency: one
/// actor, no shared state. Limits: route evaluation is allocation-free; batches are copied once
/// per extra sink an event goes to.
struct router_state {
  static inline const char* name = "router";
  route_table table;
  std::vector<std::string> sink_names;
  std::vector<sink_actor> sinks;
  std::vector<counter*> routed;
  counter* unmatched = nullptr;
  counter* unrouted = nullptr;
  std::vector<event_batch> per_sink;
  std::vector<uint8_t> marks;
};

consumer_actor::behavior_type router(consumer_actor::stateful_pointer<router_state> self,
                                     route_table table, std::vector<std::string> sink_names,
                                     std::vector<sink_actor> sinks, metrics_registry* metrics);

} // namespace sluice
