#pragma once

// Apache Parquet file reader for the subset that `parquet_writer.hpp` writes (plain C++, no
// CAF): what the lake needs to read its own files back, e.g. to compact small files into one.

#include "persistence/parquet_writer.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sluice::persistence::parquet {

/// One cell: null, or a value of the column's type (`string_view` for string, `int64_t` for
/// int64 and timestamp_ms, `double` for float64, `bool` for boolean).
using cell = std::variant<std::monostate, std::string_view, int64_t, double, bool>;

/// Reads a whole Parquet file held in memory.
///
/// Supported subset (what `writer` produces, and the same shapes from other writers): a flat
/// schema of REQUIRED/OPTIONAL leaf columns of type BYTE_ARRAY (UTF8/STRING, ENUM, JSON or
/// unannotated → string), INT64 (→ int64, or timestamp_ms with TIMESTAMP(MILLIS) /
/// TIMESTAMP_MILLIS), DOUBLE and BOOLEAN; data pages V1 with RLE definition levels; PLAIN values,
/// PLAIN dictionary pages with RLE_DICTIONARY / PLAIN_DICTIONARY data pages; codecs
/// uncompressed, snappy and zstd. Unknown Thrift fields are skipped. Anything else (nesting,
/// REPEATED, other physical or logical types, data pages V2, other codecs, encrypted footers)
/// throws std::runtime_error naming the column and what is not supported.
///
/// Lifecycle: the constructor validates the magics and decodes the footer (schema, row groups,
/// key_value_metadata); pages are decoded only by `for_each_row`, one row group at a time, so
/// corrupt pages are reported there. The reader owns the file's bytes and is immutable after
/// construction: concurrent `for_each_row` calls on one reader are safe.
/// Memory: the file's bytes, plus during `for_each_row` one decoded row group (one `cell` per
/// value and the decompressed pages its string cells point into).
/// Errors: std::runtime_error "parquet reader: <what> ..." for anything that is not a valid
/// Parquet file of the supported subset; it never reads outside the file's bytes.
class reader {
public:
  /// Opens a whole file held in memory (the lake's files are bounded by max-file-bytes); throws
  /// std::runtime_error naming what is wrong for anything that is not a valid Parquet file of
  /// the supported subset.
  explicit reader(std::string bytes);
  /// Reads the file at `path` into memory and opens it; throws std::runtime_error naming the
  /// path when it cannot be read.
  static reader open_file(const std::string& path);

  /// The columns: names, `column_type` (from physical + logical/converted type) and `required`.
  const std::vector<column_spec>& schema() const;
  /// Rows in the file (FileMetaData.num_rows, checked against the row groups).
  uint64_t rows() const;
  /// Row groups in the file.
  size_t row_groups() const;
  /// The footer's key_value_metadata, in file order (a key without value has an empty value).
  const std::vector<std::pair<std::string, std::string>>& key_value_metadata() const;

  /// Calls fn(row) for each row in order; `row[i]` is column i's cell, valid during the call.
  /// Throws std::runtime_error on a corrupt or unsupported page (rows before it were delivered);
  /// exceptions thrown by `fn` propagate.
  void for_each_row(const std::function<void(const std::vector<cell>&)>& fn) const;

private:
  /// Where one column chunk's pages lie in the file, from the footer.
  struct chunk_location {
    uint64_t start = 0; ///< first page (the dictionary page, if any)
    uint64_t end = 0;   ///< one past the chunk's last byte
    uint64_t num_values = 0;
    codec compression = codec::none;
  };
  /// One row group: its row count and one chunk per column, in schema order.
  struct row_group_location {
    uint64_t rows = 0;
    std::vector<chunk_location> chunks;
  };

  void parse_footer();
  void decode_row_group(size_t index, const std::function<void(const std::vector<cell>&)>& fn)
    const;

  std::string bytes_;
  std::vector<column_spec> schema_;
  std::vector<row_group_location> groups_;
  std::vector<std::pair<std::string, std::string>> key_value_metadata_;
  uint64_t rows_ = 0;
};

/// Copies every row of `from` into `to` (columns matched by name, in `to`'s order). Both must have
/// the same columns by name and type, else std::invalid_argument naming the column; a column
/// REQUIRED in `to` must be REQUIRED in `from` too. Does not copy key_value_metadata (set it in
/// `to`'s writer_options). Errors of the reader or writer propagate.
void copy_rows(const reader& from, writer& to);

} // namespace sluice::persistence::parquet
