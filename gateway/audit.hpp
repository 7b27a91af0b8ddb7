#pragma once

// The audit log of admin actions and access failures: an append-only NDJSON file plus the newest
// records in memory for `GET /v1/admin/audit`.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::gateway {

/// One audit record: who (principal, peer), what (action, method, path, status, summary), when.
struct audit_record {
  std::string principal;
  std::string peer;
  std::string action; ///< e.g. `routes.update`, `auth.login`, `auth.denied`
  std::string method;
  std::string path;
  unsigned status = 0;
  std::string summary;
};

/// Appends audit records to `<data dir>/audit.log` (one JSON object per line, written and flushed
/// with one `write` per record, never rewritten) and keeps the newest `memory_records` in memory.
///
/// Lifecycle: the constructor opens the file for appending (creating it) and reads the tail of an
/// existing file into memory, so the endpoint shows records from before a restart. Concurrency:
/// every member is thread-safe (one mutex; a record costs one `write` under it). Limits: memory
/// holds `memory_records` lines; the file grows until an operator rotates it (rename it; the next
/// start creates a new one). A failed write is counted (`write_failures`) and never throws.
class audit_log {
public:
  /// `path` empty: memory only (tests).
  explicit audit_log(std::string path, size_t memory_records = default_memory_records);
  ~audit_log();
  audit_log(const audit_log&) = delete;
  audit_log& operator=(const audit_log&) = delete;

  /// Stamps `rec` with the current time (RFC 3339, UTC, milliseconds) and appends it.
  void append(const audit_record& rec);
  /// The newest `limit` records (JSON lines), newest first.
  std::vector<std::string> newest(size_t limit) const;
  /// `{"records":[...],"file":"..."}` with the newest `limit` records.
  std::string newest_json(size_t limit) const;
  uint64_t write_failures() const;
  const std::string& path() const noexcept {
    return path_;
  }

  static constexpr size_t default_memory_records = 1000;
  /// How much of an existing file's tail is read back at start-up.
  static constexpr size_t tail_bytes = 512 * 1024;

  /// The JSON line of `rec` at `time_rfc3339` (without the newline).
  static std::string render(const audit_record& rec, std::string_view time_rfc3339);

private:
  std::string path_;
  size_t memory_records_;
  int fd_ = -1;
  mutable std::mutex mtx_;
  std::deque<std::string> recent_; // oldest first
  uint64_t write_failures_ = 0;
};

/// Current UTC time as RFC 3339 with milliseconds (`2026-11-22T08:15:33.123Z`).
std::string rfc3339_now();

} // namespace sluice::gateway
