#pragma once

// Sessions per device, assigned where the log is written. Plain C++ (no CAF).

#include "messages/event.hpp"

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace sluice::persistence {

class environment;
class write_txn;

/// Session settings (section `[sessions]`).
struct session_options {
  bool enabled = true;
  /// A device's next event more than this long (event time) after its last one starts a session.
  int64_t gap_ms = 30 * 60 * 1000;
  /// Devices whose session state stays in memory (least recently used go first; they are read
  /// back from LMDB when they return).
  size_t cache_devices = 100000;
  /// Attribute that carries the session id.
  std::string attribute = "session_id";
};

/// A device's current session.
struct device_session {
  /// Event time of the session's first event, epoch ms.
  int64_t start_ts = 0;
  /// Latest event time seen in the session, epoch ms.
  int64_t last_ts = 0;
  /// Hex of the first 16 bytes of SHA-256(device_id, 0, start_ts as 8 bytes big-endian).
  std::string id;
};

/// Assigns a `session_id` to every event appended to the log, per device, by event time.
///
/// Rules: a device's first event, or an event more than `gap_ms` after the latest event time of
/// the device's current session, starts a session at its `ts`; any other event joins the current
/// session, including late (out-of-order) events older than the session's start. Ids are
/// deterministic: the same device and start time always give the same id.
///
/// Lifecycle: owned by the ingest log (the single LMDB writer). Per group commit: `begin`, then
/// `assign` for each batch (it appends the attribute to the events and stages the new states),
/// `write` puts the staged states into the commit's transaction (same transaction as the log
/// records: exactly-once across restarts), then `commit` after the transaction committed, or
/// nothing when it failed (the next `begin` drops the staged states). Concurrency: one thread.
/// Limits: `cache_devices` states in memory (LRU); one LMDB record per device ever seen (~60
/// bytes; not expired).
class session_tracker {
public:
  session_tracker(environment& env, session_options opts);

  /// Drops the states staged by a commit that did not happen.
  void begin();

  /// Assigns sessions to `events` in order; events that already carry the attribute (a dead
  /// letter replayed) keep it and do not move their device's session.
  void assign(event_batch& events);

  /// Puts the staged states into `txn`.
  void write(write_txn& txn) const;

  /// The staged states become the current ones (after the transaction committed).
  void commit();

  /// Sessions started since construction (staged ones included).
  uint64_t started() const noexcept {
    return started_;
  }

  const session_options& options() const noexcept {
    return opts_;
  }

  /// The session id of `device_id` starting at `start_ts`.
  static std::string session_id(std::string_view device_id, int64_t start_ts);

  /// The stored encoding of a state, and back (false when corrupt).
  static std::string encode(const device_session& s);
  static bool decode(std::string_view bytes, device_session& out);

private:
  /// The current state of `device` (staged, cached, or stored), or nullptr.
  device_session* current(const std::string& device);
  void remember(const std::string& device, const device_session& s);

  environment& env_;
  session_options opts_;
  using lru_list = std::list<std::pair<std::string, device_session>>;
  lru_list lru_; // most recent first
  std::unordered_map<std::string, lru_list::iterator> cache_;
  std::unordered_map<std::string, device_session> staged_;
  uint64_t started_ = 0;
};

} // namespace sluice::persistence
