#pragma once

#include "messages/type_ids.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice {

/// Page size of `GET /v1/admin/dead-letters` when the client names none.
inline constexpr uint32_t dead_letter_default_page = 100;
/// Largest page a client may ask for: one page is rendered in memory and sent in one response.
inline constexpr uint32_t dead_letter_max_page = 1000;

/// Reads the query parameters of `GET /v1/admin/dead-letters` (`after`, `limit`, `reason`) into
/// `out`. Returns an empty string when valid, otherwise a JSON error body naming the parameter
/// (`{"error":"…","parameter":"limit"}`) for a 400.
std::string parse_dead_letter_list_params(const std::map<std::string, std::string>& query,
                                          dead_letter_query& out);

/// Checks a replay selection (exactly one of `ids`, `reason`, `all`). Returns an empty string
/// when valid, otherwise a JSON error body naming the field for a 400.
std::string validate_dead_letter_selection(const dead_letter_query& q);

/// The durable record of dead letters: one NDJSON file plus a file of replayed ids.
///
/// Layout: the NDJSON file (`<data-dir>/dead-letters/dead-letters.ndjson`) holds one line per
/// dead letter, `{"id":N,"at":MS,"reason":"…","origin":"…","event":{…},"record":"<hex>"}`: `id`
/// is dense from 1 (the line number), `at` the time it was written (epoch ms), `event` the event
/// as sinks render it (for people), `record` the event's exact log encoding in hex (what a replay
/// sends back, so msgpack-only values survive). `replayed.ids` beside it holds one id per line for
/// every dead letter that a replay committed to the ingest log.
///
/// Lifecycle: `open` scans both files and builds the index (a torn last line from a crash is cut
/// off); `append` writes lines and fdatasyncs before it returns, so a dead letter is durable before
/// the sink that gave up on it records its offset; `mark_replayed` fdatasyncs the same way.
/// Concurrency: not thread-safe; owned by the dead-letter actor. Limits: memory holds an index of
/// 24 bytes per dead letter plus each distinct reason once; no rotation (the files grow until an
/// operator moves them away while the node is stopped); a replay is at-least-once: a crash after
/// the log committed the events but before `mark_replayed` lets them be replayed again.
class dead_letter_store {
public:
  /// `path` names the NDJSON file; its directory is created by `open` when missing.
  explicit dead_letter_store(std::string path);
  ~dead_letter_store();
  dead_letter_store(const dead_letter_store&) = delete;
  dead_letter_store& operator=(const dead_letter_store&) = delete;

  /// Opens (creating) both files and indexes them. Returns an error text naming the file (and line)
  /// and what to do, empty on success. Until it succeeds every other call fails.
  std::string open();

  /// Appends `letters` with time `now_ms` (events rendered with `node`) and fdatasyncs. On failure
  /// the file is cut back to its size before the call, nothing is indexed, and the error is
  /// returned; empty on success.
  std::string append(const std::vector<dead_letter>& letters, int64_t now_ms,
                     std::string_view node);

  /// Renders one page for `q` (`after`, `limit`, `reason`) as
  /// `{"items":[{id,at,reason,origin,event,replayed}],"next":<id or null>,"total":<matches>}`:
  /// items have `id > after` and a reason containing `q.reason`, in id order; `next` is the cursor
  /// for the next page (null on the last page); `total` counts every match regardless of `after`.
  /// Returns false and sets `error` when the file cannot be read.
  bool list(const dead_letter_query& q, std::string& out, std::string& error) const;

  /// What a replay selection resolves to.
  struct selection {
    /// Ids to replay now (known, not replayed, not already being replayed), ascending.
    std::vector<uint64_t> ids;
    /// Requested ids that do not exist.
    std::vector<uint64_t> unknown;
    /// Requested or matching ids skipped because they were replayed (or are being replayed).
    size_t skipped = 0;
  };

  /// Resolves `q` (`ids`, `reason` or `all`) against the index.
  selection select(const dead_letter_query& q) const;

  /// Reads the stored events of `ids` (offsets reset to 0) into `out`, in order. Returns an
  /// error text, empty on success.
  std::string load(const std::vector<uint64_t>& ids, event_batch& out) const;

  /// Marks `ids` as being replayed (selected by no other replay until `finish_replay`).
  void begin_replay(const std::vector<uint64_t>& ids);

  /// Ends a replay of `ids`: with `committed`, records them in `replayed.ids` (fdatasync) so they
  /// are never replayed again; otherwise they become selectable again. Returns an error text when
  /// the record could not be written (the ids stay marked in memory), empty on success.
  std::string finish_replay(const std::vector<uint64_t>& ids, bool committed);

  /// Number of dead letters stored.
  size_t size() const noexcept {
    return entries_.size();
  }

  /// Whether dead letter `id` was replayed (false for unknown ids).
  bool replayed(uint64_t id) const noexcept;

  /// Path of the NDJSON file.
  const std::string& path() const noexcept {
    return path_;
  }

private:
  enum class entry_state : uint8_t { stored, replaying, replayed };
  /// One line of the file; `id` is the index + 1.
  struct entry {
    uint64_t offset = 0;   ///< byte offset of the line
    uint32_t shown = 0;    ///< bytes of the line up to `,"record":` (what the API shows)
    uint32_t length = 0;   ///< bytes of the line without its newline
    uint32_t reason = 0;   ///< index into `reasons_`
    entry_state state = entry_state::stored;
  };

  const entry* find(uint64_t id) const noexcept;
  uint32_t intern(std::string reason);
  bool read_at(uint64_t offset, size_t length, std::string& out, std::string& error) const;
  std::string index_line(std::string_view line, uint64_t offset, size_t line_no);

  std::string dir_;
  std::string path_;
  std::string replayed_path_;
  int fd_ = -1;
  int replayed_fd_ = -1;
  uint64_t size_ = 0;
  std::vector<entry> entries_;
  std::vector<std::string> reasons_;
  std::unordered_map<std::string, uint32_t> reason_ids_;
  std::string buffer_;
};

} // namespace sluice
