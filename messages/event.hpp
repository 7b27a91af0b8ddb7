#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

/// Position of an event in the node's ingest log. Offsets are dense and start at 1; offset 0 means
/// "nothing yet" (a consumer at offset 0 has consumed nothing).
using log_offset = uint64_t;

/// One event: the envelope fields the pipeline relies on, plus every other field the client sent,
/// kept as one msgpack-encoded map in `attrs` so that the bytes decoded at the gateway are never
/// re-encoded per event on the way into the log.
struct event {
  /// Client-made unique id; the gateway generates one (UUID v4 text) only when absent.
  std::string id;
  /// Event type: `play`, `pause`, `stop`, `heartbeat`, `click`, `error`, `billing`, ...
  std::string type;
  /// The device that produced the event; never empty.
  std::string device_id;
  /// The viewer profile; empty when the event carries none.
  std::string profile_id;
  /// Event time on the device, epoch milliseconds UTC (the wire accepts epoch ms or RFC 3339).
  int64_t ts = 0;
  /// Time the gateway received the batch, epoch milliseconds UTC.
  int64_t ingest_ts = 0;
  /// Log offset, assigned by the ingest log at commit; 0 before that.
  log_offset offset = 0;
  /// msgpack map (str → any) of every field that is not part of the envelope. Empty string means an
  /// empty map.
  std::string attrs;
  /// Cluster: the node that accepted the event when another node forwarded it here (its state
  /// applies here, its sinks ran there); empty for an event this node accepted itself.
  std::string origin;
  /// With `origin`: the event's offset in the origin node's log (`offset` is the local one).
  log_offset origin_offset = 0;

  friend bool operator==(const event& a, const event& b) {
    return a.id == b.id && a.type == b.type && a.device_id == b.device_id
           && a.profile_id == b.profile_id && a.ts == b.ts && a.ingest_ts == b.ingest_ts
           && a.offset == b.offset && a.attrs == b.attrs && a.origin == b.origin
           && a.origin_offset == b.origin_offset;
  }
};

/// A batch of events travelling through the pipeline in one message.
using event_batch = std::vector<event>;

/// One event of a client batch that the gateway refused, by its index in the client's batch.
struct rejection {
  uint32_t index = 0;
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(x.id, x.type, x.device_id, x.profile_id, x.ts, x.ingest_ts, x.offset, x.attrs, x.origin,
           x.origin_offset);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rejection& x) {
  return f(x.index, x.error);
}

} // namespace sluice
