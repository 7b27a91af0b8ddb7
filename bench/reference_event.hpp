#pragma once

// The reference job's event `k` (../shared/bench/reference-job.lua's event(k), wrk thread id 0),
// for the benchmark programs that generate it without wrk.

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

namespace sluice::bench {

/// Appends the JSON object of reference event `k` to `out`.
inline void append_reference_event(std::string& out, uint64_t k) {
  static const char* const types[] = {"play",      "pause",     "seek",      "stop",
                                      "heartbeat", "heartbeat", "heartbeat", "heartbeat",
                                      "bitrate_change", "heartbeat"};
  const char* type = k % 20 == 0 ? "error" : types[k % 10];
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"id\":\"%08" PRIx64 "-%04x-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64
                "\",\"type\":\"%s\",\"device_id\":\"dev-%016" PRIx64 "\",\"profile_id\":\"prof-%010" PRIu64
                "\",\"title_id\":\"title-%08" PRIu64 "\",\"ts\":%" PRIu64 ",\"position_ms\":%" PRIu64
                "%s}",
                k, 0u, k % 4096, (k * 7) % 4096, k * uint64_t{2654435761} % uint64_t{281474976710656}, type,
                (k * 40503) % uint64_t{18446744073709}, k % 9999991, k % 99991, uint64_t{1732233600000} + k,
                (k * 1337) % 7200000, k % 100 == 7 ? ",\"card\":\"4111 1111 1111 1111\"" : "");
  out += buf;
}

} // namespace sluice::bench
