#pragma once

// A reference-job event as the gateway decodes it, built directly (no JSON): for the benchmarks
// of what the shards and models do per event.

#include "bench/playback_attrs.hpp"
#include "messages/event.hpp"

#include <fmt/format.h>

#include <cstdint>

namespace sluice::bench {

/// Reference-job event `k` of wrk thread `tid` (../shared/bench/reference-job.lua) as the gateway
/// decodes it: the envelope fields, and `title_id`, `position_ms` in the attrs.
inline event reference_event(uint64_t k, unsigned tid) {
  static const char* const types[] = {"play",      "pause",     "seek",      "stop",
                                      "heartbeat", "heartbeat", "heartbeat", "heartbeat",
                                      "bitrate_change", "heartbeat"};
  event e;
  e.id = fmt::format("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", k, tid, k % 4096, (k * 7) % 4096,
                     k * uint64_t{2654435761} % uint64_t{281474976710656});
  e.type = k % 20 == 0 ? "error" : types[k % 10];
  e.device_id = fmt::format("dev-{:016x}", (k * 40503) % uint64_t{18446744073709});
  e.profile_id = fmt::format("prof-{:010}", k % 9999991);
  e.ts = static_cast<int64_t>(uint64_t{1732233600000} + k);
  e.attrs = sluice::bench::playback_attrs(fmt::format("title-{:08}", k % 99991),
                                          static_cast<int64_t>((k * 1337) % 7200000));
  return e;
}

} // namespace sluice::bench
