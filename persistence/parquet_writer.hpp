#pragma once

// Apache Parquet file writer (plain C++, no CAF). Arrow is not packaged for Debian bookworm, so
// this one is ours. The Thrift compact encoding of the footer lives in `thrift_compact.hpp`.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice::persistence::parquet {

/// Logical type of a column. `string` is BYTE_ARRAY + STRING; `timestamp_ms` is INT64 +
/// TIMESTAMP(isAdjustedToUTC = true, MILLIS); `int64` INT64; `float64` DOUBLE; `boolean` BOOLEAN.
enum class column_type { string, int64, float64, boolean, timestamp_ms };

/// Page compression (zstd and snappy through libzstd and libsnappy).
enum class codec { none, snappy, zstd };

/// Parses "none" / "snappy" / "zstd"; nullopt otherwise.
std::optional<codec> parse_codec(std::string_view name);
/// Parses "string" / "int64" / "float64" / "boolean" / "timestamp_ms"; nullopt otherwise.
std::optional<column_type> parse_column_type(std::string_view name);
/// The name `parse_codec` accepts.
std::string_view to_string(codec c);
/// The name `parse_column_type` accepts.
std::string_view to_string(column_type t);

/// One column of a flat schema (no nesting).
struct column_spec {
  std::string name;
  column_type type = column_type::string;
  /// REQUIRED (no definition levels) instead of OPTIONAL.
  bool required = false;
};

/// Tuning of one `writer`; the defaults suit event data of a few hundred bytes per row.
struct writer_options {
  codec compression = codec::zstd;
  int zstd_level = 3;
  /// A row group is closed when it holds this many rows ...
  size_t row_group_rows = 128 * 1024;
  /// ... or this many bytes of (uncompressed) column data, whichever comes first.
  size_t row_group_bytes = 64u << 20;
  /// String columns use dictionary encoding while their dictionary stays below this size, and
  /// fall back to PLAIN for the rest of the row group beyond it.
  size_t max_dictionary_bytes = 1u << 20;
  /// A data page is closed when its (uncompressed) values reach this many bytes; 1 MiB is the
  /// page size most writers use (parquet-mr, Arrow), small enough for readers to stream.
  size_t data_page_bytes = 1u << 20;
  std::string created_by = "sluice";
  /// Written to the footer's key_value_metadata.
  std::vector<std::pair<std::string, std::string>> key_value_metadata;
};

/// Where the file's bytes go: written strictly in order, never read back or seeked.
class byte_sink {
public:
  virtual ~byte_sink() = default;
  /// Throws std::runtime_error on failure.
  virtual void write(const void* data, size_t size) = 0;
};

/// Per-column statistics of a whole file, as also written to the footer per row group.
struct column_summary {
  std::string name;
  uint64_t null_count = 0;
  /// Plain-encoded min/max (little-endian for numbers, raw bytes for strings); empty when the
  /// column has no non-null value.
  std::string min, max;
};

/// Writes one Parquet file row by row: set each column of the row (or leave it null), then
/// `end_row`. Column data is buffered per row group and written when the group is full; `close`
/// writes the last group and the footer (with min/max and null-count statistics per column
/// chunk). Not thread-safe. A `required` column left unset throws std::invalid_argument at
/// `end_row`, and that row is dropped (the writer stays usable).
///
/// Lifecycle: the constructor writes the leading `PAR1` magic; a row group's pages are kept in
/// memory (compressed) until `row_group_rows` / `row_group_bytes` closes it, then written to the
/// sink; `close` writes the footer. A writer destroyed without `close` leaves an incomplete file.
/// Memory: one row group of compressed pages, one open page per column and, per string column,
/// its dictionary (bounded by `max_dictionary_bytes`, then PLAIN for the rest of the group).
/// Errors: setting a column with a value of the wrong type throws std::invalid_argument; sink
/// failures propagate (std::runtime_error); using the writer after `close` throws std::logic_error.
/// File layout: Parquet format 2 with data pages V1, flat schema (root + leaf columns),
/// dictionary (PLAIN dictionary page + RLE_DICTIONARY data pages) for strings, PLAIN otherwise.
class writer {
public:
  writer(std::vector<column_spec> schema, writer_options opts, byte_sink& out);
  ~writer();
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  /// The columns, as given to the constructor.
  const std::vector<column_spec>& schema() const;

  /// Set a column of the current row (the value is copied). Setting it again replaces the value.
  void set(size_t column, std::string_view value); ///< string columns
  void set(size_t column, int64_t value);          ///< int64 and timestamp_ms columns
  void set(size_t column, double value);           ///< float64 columns
  void set(size_t column, bool value);             ///< boolean columns
  /// String literals go to the string overload (not to `bool` through pointer conversion).
  void set(size_t column, const char* value) {
    set(column, std::string_view{value});
  }
  /// Other integers go to the int64 overload (instead of being ambiguous).
  template <class Int, class = std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>
                                                && !std::is_same_v<Int, int64_t>>>
  void set(size_t column, Int value) {
    set(column, static_cast<int64_t>(value));
  }
  /// Leaves a column of the current row null again (after an earlier `set`).
  void clear(size_t column);
  /// Commits the current row; every column not set is null.
  void end_row();

  /// Rows written so far (including buffered ones).
  uint64_t rows() const;
  /// Approximate bytes of the file so far, including buffered (uncompressed) data.
  uint64_t approx_bytes() const;
  /// Flushes the last row group and writes the footer; returns the file's total size.
  uint64_t close();
  /// After `close`: whole-file statistics per column.
  std::vector<column_summary> summary() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Writes to a POSIX file descriptor opened (and closed) by the caller; `sync()` fsyncs it.
class fd_sink : public byte_sink {
public:
  /// Does not take ownership of `fd`.
  explicit fd_sink(int fd) : fd_(fd) {}
  /// Writes all bytes (retrying short writes and EINTR); throws std::runtime_error with errno's text.
  void write(const void* data, size_t size) override;
  /// fsync(2); throws std::runtime_error on failure.
  void sync();
private:
  int fd_;
};

/// Appends to a string (tests, small files).
class string_sink : public byte_sink {
public:
  /// Appends to `buffer`.
  void write(const void* data, size_t size) override {
    buffer.append(static_cast<const char*>(data), size);
  }
  /// The file's bytes so far.
  std::string buffer;
};

} // namespace sluice::persistence::parquet
