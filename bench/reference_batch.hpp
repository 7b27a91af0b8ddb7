#pragma once

// The reference job's events as the ingest log hands them to the sinks, and the routes of
// conf/reference.conf: shared by the sink and routing benchmarks.

#include "bench/reference_event.hpp"
#include "messages/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace sluice::bench {

/// Reference events `first..first+n-1` as the log hands them to the sinks (offsets set).
inline event_batch reference_events(uint64_t first, size_t n) {
  std::string body = "[";
  for (size_t k = 0; k < n; ++k) {
    if (k > 0)
      body += ',';
    append_reference_event(body, first + k);
  }
  body += ']';
  auto decoded = decode_json(body, 1732233600123);
  if (!decoded.error.empty() || decoded.events.size() != n)
    throw std::runtime_error("reference events did not decode: " + decoded.error);
  for (size_t k = 0; k < n; ++k)
    decoded.events[k].offset = 1000000 + first + k;
  return std::move(decoded.events);
}

/// The routes of conf/reference.conf.
inline constexpr const char* reference_routes = R"(
[routes.errors]
when = "type == \"error\""
sinks = ["errors"]
mask = ["card"]
pii = "off"
[routes._unmatched]
sinks = ["events"]
mask = ["card"]
pii = "off"
)";

} // namespace sluice::bench
