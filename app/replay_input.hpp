#pragma once

// Input side of `sluice replay`: files (plain, gzip, zstd) read as physical lines with line numbers
// and byte positions, and the two record formats (NDJSON, CSV with a header) turned into the JSON
// event objects that `POST /v1/events` takes. Plain C++ (no CAF); errors are std::runtime_error.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::replay {

/// How a file's bytes are compressed, decided by its first bytes (magic numbers), never by its
/// name alone.
enum class compression { none, gzip, zstd };

/// `gzip` for 1f 8b, `zstd` for 28 b5 2f fd, `none` otherwise.
compression detect_compression(std::string_view first_bytes) noexcept;

const char* to_string(compression c) noexcept;

/// Record formats.
enum class format { ndjson, csv };

/// Hex SHA-256 of the file's raw (possibly compressed) bytes; the key of a file in the state file
/// and the base of the ids derived for its events. Throws when the file cannot be read.
std::string file_content_key(const std::string& path);

/// The deterministic id of the record that starts on `line` of the file with `key`:
/// `replay-<first 16 hex digits of key>-<line>`. The same file replayed again (or resumed) gives
/// its events the same ids.
std::string derived_id(std::string_view key, uint64_t line);

/// Reads a file's decompressed bytes in chunks.
///
/// Lifecycle: opened by the constructor (throws when the file cannot be opened), read until
/// `read` returns 0. Not thread-safe. Memory: a 64 KiB raw buffer and the decoder's state.
/// A truncated or corrupt gzip/zstd stream throws from `read`, naming the file.
class byte_source {
public:
  explicit byte_source(std::string path);
  ~byte_source();
  byte_source(const byte_source&) = delete;
  byte_source& operator=(const byte_source&) = delete;

  /// Reads up to `n` decompressed bytes into `buf`; 0 at the end of the data.
  size_t read(char* buf, size_t n);

  /// Moves to decompressed offset `offset` (>= the current one): a seek for plain files, reading
  /// and discarding for compressed ones. Throws when the file is shorter.
  void skip_to(uint64_t offset);

  compression kind() const noexcept {
    return kind_;
  }
  /// Raw (compressed) bytes consumed from the file so far: the progress of reading it.
  uint64_t raw_read() const noexcept {
    return raw_read_ - (raw_end_ - raw_begin_);
  }
  uint64_t raw_size() const noexcept {
    return raw_size_;
  }
  /// Decompressed bytes returned (or skipped) so far.
  uint64_t position() const noexcept {
    return position_;
  }
  const std::string& path() const noexcept {
    return path_;
  }

private:
  struct codec;
  bool fill_raw();
  std::string path_;
  std::FILE* file_ = nullptr;
  compression kind_ = compression::none;
  uint64_t raw_size_ = 0;
  uint64_t raw_read_ = 0;
  uint64_t position_ = 0;
  std::vector<char> raw_;
  size_t raw_begin_ = 0;
  size_t raw_end_ = 0;
  bool raw_eof_ = false;
  bool stream_end_ = true; // no compressed frame open (a clean end is allowed here)
  std::unique_ptr<codec> codec_;
};

/// Splits a byte_source into physical lines (terminated by `\n`; a trailing `\r` stays in the
/// line). Line numbers start at 1. Not thread-safe.
class line_reader {
public:
  explicit line_reader(byte_source& src) : src_(src) {
  }

  /// The next line without its `\n` (valid until the next call) and its number; false at the end.
  bool next(std::string_view& line, uint64_t& number);

  /// Skips to decompressed byte `offset`, which must be the start of line `next_line`.
  void skip_to(uint64_t offset, uint64_t next_line);

  /// Decompressed byte offset just after the last line returned.
  uint64_t offset() const noexcept {
    return offset_;
  }
  /// Number the next line will get.
  uint64_t next_line() const noexcept {
    return line_ + 1;
  }

private:
  byte_source& src_;
  /// 256 KiB: lines are found with memchr over large spans; small enough that the read-ahead does
  /// not skew the progress of a compressed file much.
  std::vector<char> buf_ = std::vector<char>(256 << 10);
  size_t begin_ = 0;
  size_t end_ = 0;
  std::string long_line_;
  uint64_t line_ = 0;
  uint64_t offset_ = 0;
  bool eof_ = false;
};

/// One record read from a file.
struct record {
  /// The line on which the record starts (a CSV record may span lines).
  uint64_t line = 0;
  /// The record as it stands in the file (CSV: its lines joined with `\n`).
  std::string raw;
  /// The event object to send (`id` always set); empty when `error` is set.
  std::string json;
  /// Why the record cannot be sent (malformed JSON, wrong column count); empty when it can.
  std::string error;
};

/// Position in a file after a record: where a resumed replay continues.
struct position {
  /// Decompressed byte offset of the next line.
  uint64_t byte = 0;
  /// Number of the next line.
  uint64_t line = 1;
};

/// How CSV cells become JSON values.
struct csv_options {
  /// Every cell is a string (except an integer `ts`, which stays epoch milliseconds).
  bool strings = false;
  /// Dotted headers (`player.codec`) stay flat keys instead of nested objects.
  bool flat = false;
};

/// Reads the records of one file.
///
/// Lifecycle: `open_reader` reads the CSV header (if any) and positions at `start`; `next` until it
/// returns false. Not thread-safe. Memory: one record, one line buffer (CSV: one record's cells).
class record_reader {
public:
  virtual ~record_reader() = default;

  /// The next record (possibly one with `error` set); false at the end of the file.
  virtual bool next(record& out) = 0;

  /// Where the file continues after the last record returned.
  virtual position after() const = 0;

  /// The underlying bytes (for progress).
  virtual const byte_source& source() const = 0;
};

/// The format of `path`: by extension (`.csv`, `.ndjson`, `.jsonl`, `.json`, after `.gz`/`.zst`),
/// else `fallback`.
format guess_format(const std::string& path, format fallback = format::ndjson);

/// Opens `path` as `fmt`, deriving missing ids from `key`, continuing at `start` (default: the
/// beginning). Throws with a message naming the file on unreadable files, a bad CSV header, or a
/// `start` beyond the end.
std::unique_ptr<record_reader> open_reader(const std::string& path, format fmt,
                                           const std::string& key, const csv_options& csv = {},
                                           position start = {});

} // namespace sluice::replay
