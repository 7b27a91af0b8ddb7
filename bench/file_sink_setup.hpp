#pragma once

// Setup shared by the sink benchmarks: the sink runner's view of a batch (pointers to its events)
// and a started file sink that writes to /dev/null.

#include "actors/sinks/file/file_sink.hpp"

#include <memory>
#include <stdexcept>
#include <string>

namespace sluice::bench {

/// Pointers to `events`, as the sink runner hands them to a sink.
inline event_refs refs_of(const event_batch& events) {
  event_refs refs;
  refs.reserve(events.size());
  for (auto& e : events)
    refs.push_back(&e);
  return refs;
}

/// A started file sink writing to /dev/null without fsync: rendering and the write path, no disk.
/// Throws std::runtime_error when it does not start.
inline std::unique_ptr<file_sink> dev_null_file_sink() {
  file_sink_config cfg;
  cfg.path = "/dev/null";
  cfg.fsync = false;
  auto sink = std::make_unique<file_sink>(cfg, "node-1");
  std::string error;
  if (sink->start(error) != sink_status::ok)
    throw std::runtime_error(error);
  return sink;
}

} // namespace sluice::bench
