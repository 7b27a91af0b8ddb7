#include "persistence/parquet_writer.hpp"

#include "persistence/parquet_encoding.hpp"
#include "persistence/parquet_format.hpp"
#include "persistence/thrift_compact.hpp"

#include <snappy-c.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

namespace sluice::persistence::parquet {

namespace {

using thrift::compact_type;
using thrift::compact_writer;
namespace enc = encoding;
namespace format = parquet::format;
using format::codec_id;
using format::magic;
using format::physical_type;

/// FileMetaData.version for format 2.x files.
constexpr int32_t file_format_version = 2;
/// Min/max of a string column chunk longer than this are left out of the footer (as Arrow's
/// default `max_statistics_size` does) so that one huge value cannot bloat every footer.
constexpr size_t max_statistics_bytes = 4096;
/// Definition levels of a flat schema take one bit each once encoded (approx_bytes' estimate).
constexpr size_t levels_per_byte = 8;
/// Name of the schema's root group (what Arrow and parquet-mr write).
constexpr std::string_view root_name = "schema";

int32_t checked_i32(size_t n, const char* what) {
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw std::length_error(std::string{"parquet writer: "} + what + " exceeds 2 GiB");
  return static_cast<int32_t>(n);
}

std::string plain_i64(int64_t v) {
  std::string out;
  enc::put_le64(out, static_cast<uint64_t>(v));
  return out;
}

std::string plain_double(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return plain_i64(static_cast<int64_t>(bits));
}

/// Min/max/null count of one column over a chunk or a file.
struct value_stats {
  uint64_t nulls = 0;
  /// Whether min/max hold a value (some non-null, non-NaN value was seen).
  bool has = false;
  int64_t imin = 0, imax = 0; // int64, timestamp_ms, boolean (0/1)
  double dmin = 0, dmax = 0;
  std::string smin, smax;

  void add_int(int64_t v) {
    if (!has) {
      imin = imax = v;
      has = true;
    } else if (v < imin) {
      imin = v;
    } else if (v > imax) {
      imax = v;
    }
  }
  void add_double(double v) {
    if (std::isnan(v)) // NaN has no place in an order; the spec says to leave it out
      return;
    if (!has) {
      dmin = dmax = v;
      has = true;
    } else if (v < dmin) {
      dmin = v;
    } else if (v > dmax) {
      dmax = v;
    }
  }
  // std::string_view compares bytes as unsigned char: the UNSIGNED byte order Parquet uses.
  void add_string(std::string_view v) {
    if (!has) {
      smin.assign(v);
      smax.assign(v);
      has = true;
    } else if (v < std::string_view{smin}) {
      smin.assign(v);
    } else if (v > std::string_view{smax}) {
      smax.assign(v);
    }
  }
  void merge(const value_stats& o, column_type t) {
    nulls += o.nulls;
    if (!o.has)
      return;
    switch (t) {
      case column_type::string:
        add_string(o.smin);
        add_string(o.smax);
        break;
      case column_type::float64:
        add_double(o.dmin);
        add_double(o.dmax);
        break;
      default:
        add_int(o.imin);
        add_int(o.imax);
    }
  }
  std::string plain_min(column_type t) const {
    switch (t) {
      case column_type::string:
        return smin;
      case column_type::float64:
        return plain_double(dmin == 0.0 ? -0.0 : dmin); // spec: a zero min is written as -0.0
      case column_type::boolean:
        return std::string(1, static_cast<char>(imin));
      default:
        return plain_i64(imin);
    }
  }
  std::string plain_max(column_type t) const {
    switch (t) {
      case column_type::string:
        return smax;
      case column_type::float64:
        return plain_double(dmax == 0.0 ? 0.0 : dmax); // ... and a zero max as +0.0
      case column_type::boolean:
        return std::string(1, static_cast<char>(imax));
      default:
        return plain_i64(imax);
    }
  }
};

/// Compresses page bodies with the file's codec; reuses its zstd context and output buffer.
class compressor {
public:
  compressor(codec c, int level) : codec_(c), level_(level) {
    if (c == codec::zstd && (zctx_ = ZSTD_createCCtx()) == nullptr)
      throw std::runtime_error("parquet writer: ZSTD_createCCtx failed");
  }
  ~compressor() {
    ZSTD_freeCCtx(zctx_);
  }
  compressor(const compressor&) = delete;
  compressor& operator=(const compressor&) = delete;

  /// The compressed bytes of `in` (a view of `in` itself for codec::none), valid until the
  /// next call.
  std::string_view compress(const std::string& in) {
    switch (codec_) {
      case codec::none:
        return in;
      case codec::zstd: {
        out_.resize(ZSTD_compressBound(in.size()));
        size_t n = ZSTD_compressCCtx(zctx_, out_.data(), out_.size(), in.data(), in.size(), level_);
        if (ZSTD_isError(n))
          throw std::runtime_error(std::string{"parquet writer: zstd: "} + ZSTD_getErrorName(n));
        return {out_.data(), n};
      }
      case codec::snappy: {
        size_t n = snappy_max_compressed_length(in.size());
        out_.resize(n);
        if (snappy_compress(in.data(), in.size(), out_.data(), &n) != SNAPPY_OK)
          throw std::runtime_error("parquet writer: snappy_compress failed");
        return {out_.data(), n};
      }
    }
    return in;
  }

private:
  codec codec_;
  int level_;
  ZSTD_CCtx* zctx_ = nullptr;
  std::string out_;
};

/// Serialized PageHeader for a data page V1 or a dictionary page.
std::string page_header(int32_t type, size_t uncompressed, size_t compressed, size_t num_values,
                        int32_t encoding) {
  std::string out;
  compact_writer w{out};
  w.field_i32(1, type);
  w.field_i32(2, checked_i32(uncompressed, "a page"));
  w.field_i32(3, checked_i32(compressed, "a compressed page"));
  if (type == format::page_dictionary) {
    w.field_struct(7); // DictionaryPageHeader
    w.field_i32(1, checked_i32(num_values, "a page's value count"));
    w.field_i32(2, encoding);
    w.end_struct();
  } else {
    w.field_struct(5); // DataPageHeader
    w.field_i32(1, checked_i32(num_values, "a page's value count"));
    w.field_i32(2, encoding);
    w.field_i32(3, format::encoding_rle); // definition levels
    w.field_i32(4, format::encoding_rle); // repetition levels (none in a flat schema)
    w.end_struct();
  }
  w.end_struct();
  return out;
}

/// Footer metadata of one column chunk.
struct chunk_meta {
  std::vector<int32_t> encodings;
  uint64_t num_values = 0;
  uint64_t total_uncompressed = 0;
  uint64_t total_compressed = 0;
  uint64_t chunk_offset = 0;
  uint64_t data_page_offset = 0;
  std::optional<uint64_t> dictionary_page_offset;
  value_stats stats;
  /// (page type, encoding) → number of pages.
  std::map<std::pair<int32_t, int32_t>, int32_t> page_encodings;
};

/// Footer metadata of one row group.
struct row_group_meta {
  std::vector<chunk_meta> columns;
  uint64_t num_rows = 0;
  uint64_t file_offset = 0;
  uint64_t total_byte_size = 0;
  uint64_t total_compressed_size = 0;
};

/// One column's buffers: the value staged for the current row, the open page, the string
/// dictionary of the row group, and the finished (compressed) pages of the row group.
struct column_buffer {
  column_spec spec;
  // Current row.
  bool staged = false;
  std::string staged_string;
  int64_t staged_int = 0;
  double staged_double = 0;
  bool staged_bool = false;
  // Open page.
  std::vector<uint8_t> levels;   // definition levels (OPTIONAL columns only)
  std::string plain;             // PLAIN values
  std::vector<uint32_t> indices; // dictionary indices (dictionary mode)
  size_t page_rows = 0;
  size_t page_non_null = 0;
  size_t page_bytes = 0; // uncompressed estimate that closes the page
  size_t page_bools = 0; // booleans bit-packed into `plain`
  // Dictionary of the row group (string columns).
  bool dictionary_mode = false;
  enc::string_dictionary dictionary;
  // Finished pages of the row group.
  std::string pages;
  chunk_meta chunk;
  // Whole file.
  value_stats file_stats;

  bool optional() const {
    return !spec.required;
  }
  void reset_chunk() {
    dictionary_mode = spec.type == column_type::string;
    dictionary.clear();
    pages.clear();
    chunk = chunk_meta{};
  }
};

const char* type_error(column_type expected) {
  switch (expected) {
    case column_type::string:
      return "a string";
    case column_type::int64:
      return "an int64";
    case column_type::timestamp_ms:
      return "an int64 (epoch milliseconds)";
    case column_type::float64:
      return "a double";
    case column_type::boolean:
      return "a bool";
  }
  return "a value";
}

} // namespace

std::optional<codec> parse_codec(std::string_view name) {
  for (codec c : {codec::none, codec::snappy, codec::zstd})
    if (to_string(c) == name)
      return c;
  return std::nullopt;
}

std::optional<column_type> parse_column_type(std::string_view name) {
  for (column_type t : {column_type::string, column_type::int64, column_type::float64,
                        column_type::boolean, column_type::timestamp_ms})
    if (to_string(t) == name)
      return t;
  return std::nullopt;
}

std::string_view to_string(codec c) {
  switch (c) {
    case codec::none:
      return "none";
    case codec::snappy:
      return "snappy";
    case codec::zstd:
      return "zstd";
  }
  return "?";
}

std::string_view to_string(column_type t) {
  switch (t) {
    case column_type::string:
      return "string";
    case column_type::int64:
      return "int64";
    case column_type::float64:
      return "float64";
    case column_type::boolean:
      return "boolean";
    case column_type::timestamp_ms:
      return "timestamp_ms";
  }
  return "?";
}

// -- writer::impl ---------------------------------------------------------------------------------

struct writer::impl {
  impl(std::vector<column_spec> schema, writer_options opts, byte_sink& out)
    : schema_(std::move(schema)),
      opts_(std::move(opts)),
      out_(out),
      compressor_(opts_.compression, opts_.zstd_level) {
    if (schema_.empty())
      throw std::invalid_argument("parquet writer: the schema has no column");
    std::set<std::string_view> names;
    for (const auto& spec : schema_) {
      if (spec.name.empty())
        throw std::invalid_argument("parquet writer: a column has an empty name");
      if (!names.insert(spec.name).second)
        throw std::invalid_argument("parquet writer: column '" + spec.name + "' appears twice");
    }
    if (opts_.row_group_rows == 0 || opts_.data_page_bytes == 0)
      throw std::invalid_argument("parquet writer: row_group_rows and data_page_bytes must be > 0");
    columns_.resize(schema_.size());
    for (size_t i = 0; i < schema_.size(); ++i) {
      columns_[i].spec = schema_[i];
      columns_[i].reset_chunk();
    }
    emit(magic.data(), magic.size());
  }

  column_buffer& column_for_set(size_t index, column_type a, column_type b) {
    if (closed_)
      throw std::logic_error("parquet writer: set after close");
    if (index >= columns_.size())
      throw std::out_of_range("parquet writer: column index " + std::to_string(index)
                              + " out of range (schema has " + std::to_string(columns_.size())
                              + " columns)");
    auto& col = columns_[index];
    if (col.spec.type != a && col.spec.type != b)
      throw std::invalid_argument("parquet writer: column '" + col.spec.name + "' is "
                                  + std::string{to_string(col.spec.type)} + " and takes "
                                  + type_error(col.spec.type));
    col.staged = true;
    return col;
  }

  void end_row() {
    if (closed_)
      throw std::logic_error("parquet writer: end_row after close");
    for (auto& col : columns_) {
      if (col.spec.required && !col.staged) {
        for (auto& c : columns_)
          c.staged = false;
        throw std::invalid_argument("parquet writer: required column '" + col.spec.name
                                    + "' was not set; the row was dropped");
      }
    }
    for (auto& col : columns_)
      commit(col);
    ++rows_;
    ++group_rows_;
    if (group_rows_ >= opts_.row_group_rows || group_bytes_ >= opts_.row_group_bytes)
      flush_row_group();
  }

  void commit(column_buffer& col) {
    ++col.page_rows;
    ++col.chunk.num_values;
    if (!col.staged) {
      col.levels.push_back(0); // only OPTIONAL columns get here
      ++col.chunk.stats.nulls;
      col.page_bytes += 1;
    } else {
      col.staged = false;
      if (col.optional())
        col.levels.push_back(1);
      ++col.page_non_null;
      append_value(col);
    }
    if (col.page_bytes >= opts_.data_page_bytes)
      finish_page(col);
  }

  void append_value(column_buffer& col) {
    auto& stats = col.chunk.stats;
    switch (col.spec.type) {
      case column_type::string: {
        const std::string& v = col.staged_string;
        const size_t plain_size = sizeof(uint32_t) + v.size();
        group_bytes_ += plain_size;
        if (!col.dictionary_mode) {
          enc::put_byte_array(col.plain, v.data(), v.size());
          stats.add_string(v);
          col.page_bytes += plain_size;
          return;
        }
        auto [id, added] = col.dictionary.insert(v);
        if (added)
          stats.add_string(v); // min/max over the distinct values is min/max over all of them
        col.indices.push_back(id);
        col.page_bytes += sizeof(uint32_t);
        if (col.dictionary.plain().size() > opts_.max_dictionary_bytes) {
          // Fall back to PLAIN for the rest of the row group; this page keeps the dictionary.
          finish_page(col);
          col.dictionary_mode = false;
        }
        return;
      }
      case column_type::int64:
      case column_type::timestamp_ms:
        enc::put_le64(col.plain, static_cast<uint64_t>(col.staged_int));
        stats.add_int(col.staged_int);
        col.page_bytes += sizeof(int64_t);
        group_bytes_ += sizeof(int64_t);
        return;
      case column_type::float64: {
        uint64_t bits;
        std::memcpy(&bits, &col.staged_double, sizeof bits);
        enc::put_le64(col.plain, bits);
        stats.add_double(col.staged_double);
        col.page_bytes += sizeof(double);
        group_bytes_ += sizeof(double);
        return;
      }
      case column_type::boolean: {
        constexpr size_t bits_per_byte = 8;
        const size_t bit = col.page_bools % bits_per_byte;
        if (bit == 0)
          col.plain.push_back('\0');
        if (col.staged_bool)
          col.plain.back() = static_cast<char>(col.plain.back() | (1 << bit));
        ++col.page_bools;
        stats.add_int(col.staged_bool ? 1 : 0);
        col.page_bytes += 1;
        group_bytes_ += 1;
        return;
      }
    }
  }

  /// Encodes and compresses the open page of `col` into its row group's page buffer.
  void finish_page(column_buffer& col) {
    if (col.page_rows == 0)
      return;
    std::string body;
    if (col.optional()) {
      std::string levels;
      enc::rle_hybrid(levels, col.levels, 1);
      enc::put_le32(body, static_cast<uint32_t>(levels.size()));
      body += levels;
    }
    int32_t encoding = format::encoding_plain;
    if (col.dictionary_mode && col.page_non_null > 0) {
      encoding = format::encoding_rle_dictionary;
      // Width 1 at least: some readers mishandle a zero bit width for one-entry dictionaries.
      const int width = std::max(1, enc::bit_width(col.dictionary.size() - 1));
      body.push_back(static_cast<char>(width));
      enc::rle_hybrid(body, col.indices, width);
    } else {
      body += col.plain;
    }
    append_page(col, col.pages, format::page_data, body, col.page_rows, encoding);
    if (col.optional())
      add_encoding(col.chunk, format::encoding_rle);
    col.levels.clear();
    col.plain.clear();
    col.indices.clear();
    col.page_rows = col.page_non_null = col.page_bytes = col.page_bools = 0;
  }

  void append_page(column_buffer& col, std::string& dst, int32_t type, const std::string& body,
                   size_t num_values, int32_t encoding) {
    std::string_view compressed = compressor_.compress(body);
    std::string header = page_header(type, body.size(), compressed.size(), num_values, encoding);
    dst += header;
    dst.append(compressed.data(), compressed.size());
    col.chunk.total_uncompressed += header.size() + body.size();
    col.chunk.total_compressed += header.size() + compressed.size();
    ++col.chunk.page_encodings[{type, encoding}];
    add_encoding(col.chunk, encoding);
  }

  static void add_encoding(chunk_meta& chunk, int32_t encoding) {
    for (int32_t e : chunk.encodings)
      if (e == encoding)
        return;
    chunk.encodings.push_back(encoding);
  }

  void flush_row_group() {
    if (group_rows_ == 0)
      return;
    row_group_meta group;
    group.num_rows = group_rows_;
    group.file_offset = offset_;
    for (auto& col : columns_) {
      finish_page(col);
      col.chunk.chunk_offset = offset_;
      if (!col.dictionary.empty()) {
        std::string page;
        append_page(col, page, format::page_dictionary, col.dictionary.plain(),
                    col.dictionary.size(), format::encoding_plain);
        col.chunk.dictionary_page_offset = offset_;
        emit(page.data(), page.size());
      }
      col.chunk.data_page_offset = offset_;
      emit(col.pages.data(), col.pages.size());
      group.total_byte_size += col.chunk.total_uncompressed;
      group.total_compressed_size += col.chunk.total_compressed;
      col.file_stats.merge(col.chunk.stats, col.spec.type);
      group.columns.push_back(std::move(col.chunk));
      col.reset_chunk();
    }
    row_groups_.push_back(std::move(group));
    group_rows_ = 0;
    group_bytes_ = 0;
  }

  void emit(const void* data, size_t size) {
    if (size == 0)
      return;
    out_.write(data, size);
    offset_ += size;
  }

  uint64_t close() {
    if (closed_)
      return offset_;
    for (auto& c : columns_)
      c.staged = false; // a row without end_row is not part of the file
    flush_row_group();
    std::string footer = file_metadata();
    emit(footer.data(), footer.size());
    std::string tail;
    enc::put_le32(tail, static_cast<uint32_t>(checked_i32(footer.size(), "the footer")));
    tail += magic;
    emit(tail.data(), tail.size());
    closed_ = true;
    return offset_;
  }

  std::string file_metadata() const {
    std::string out;
    compact_writer w{out};
    w.field_i32(1, file_format_version);
    w.field_list(2, compact_type::structure, schema_.size() + 1);
    w.begin_struct(); // root
    w.field_binary(4, root_name);
    w.field_i32(5, static_cast<int32_t>(schema_.size()));
    w.end_struct();
    for (const auto& spec : schema_)
      schema_element(w, spec);
    w.field_i64(3, static_cast<int64_t>(rows_));
    w.field_list(4, compact_type::structure, row_groups_.size());
    for (size_t g = 0; g < row_groups_.size(); ++g)
      row_group(w, row_groups_[g], static_cast<int16_t>(g));
    if (!opts_.key_value_metadata.empty()) {
      w.field_list(5, compact_type::structure, opts_.key_value_metadata.size());
      for (const auto& [key, value] : opts_.key_value_metadata) {
        w.begin_struct();
        w.field_binary(1, key);
        w.field_binary(2, value);
        w.end_struct();
      }
    }
    w.field_binary(6, opts_.created_by);
    // column_orders: TypeDefinedOrder for every leaf, so readers trust min_value/max_value.
    w.field_list(7, compact_type::structure, schema_.size());
    for (size_t i = 0; i < schema_.size(); ++i) {
      w.begin_struct();
      w.field_struct(1);
      w.end_struct();
      w.end_struct();
    }
    w.end_struct();
    return out;
  }

  static void schema_element(compact_writer& w, const column_spec& spec) {
    w.begin_struct();
    w.field_i32(1, physical_type(spec.type));
    w.field_i32(3, spec.required ? format::repetition_required : format::repetition_optional);
    w.field_binary(4, spec.name);
    if (spec.type == column_type::string) {
      w.field_i32(6, format::converted_utf8);
      w.field_struct(10); // LogicalType
      w.field_struct(1);  // STRING
      w.end_struct();
      w.end_struct();
    } else if (spec.type == column_type::timestamp_ms) {
      w.field_i32(6, format::converted_timestamp_millis);
      w.field_struct(10); // LogicalType
      w.field_struct(8);  // TIMESTAMP
      w.field_bool(1, true); // isAdjustedToUTC
      w.field_struct(2);     // unit: TimeUnit
      w.field_struct(1);     // MILLIS
      w.end_struct();
      w.end_struct();
      w.end_struct();
      w.end_struct();
    }
    w.end_struct();
  }

  void row_group(compact_writer& w, const row_group_meta& g, int16_t ordinal) const {
    w.begin_struct();
    w.field_list(1, compact_type::structure, g.columns.size());
    for (size_t i = 0; i < g.columns.size(); ++i) {
      const auto& c = g.columns[i];
      const auto& spec = schema_[i];
      w.begin_struct(); // ColumnChunk
      w.field_i64(2, static_cast<int64_t>(c.chunk_offset));
      w.field_struct(3); // ColumnMetaData
      w.field_i32(1, physical_type(spec.type));
      w.field_list(2, compact_type::i32, c.encodings.size());
      for (int32_t e : c.encodings)
        w.elem_i32(e);
      w.field_list(3, compact_type::binary, 1);
      w.elem_binary(spec.name);
      w.field_i32(4, codec_id(opts_.compression));
      w.field_i64(5, static_cast<int64_t>(c.num_values));
      w.field_i64(6, static_cast<int64_t>(c.total_uncompressed));
      w.field_i64(7, static_cast<int64_t>(c.total_compressed));
      w.field_i64(9, static_cast<int64_t>(c.data_page_offset));
      if (c.dictionary_page_offset)
        w.field_i64(11, static_cast<int64_t>(*c.dictionary_page_offset));
      statistics(w, c.stats, spec.type);
      w.field_list(13, compact_type::structure, c.page_encodings.size());
      for (const auto& [key, count] : c.page_encodings) {
        w.begin_struct(); // PageEncodingStats
        w.field_i32(1, key.first);
        w.field_i32(2, key.second);
        w.field_i32(3, count);
        w.end_struct();
      }
      w.end_struct(); // ColumnMetaData
      w.end_struct(); // ColumnChunk
    }
    w.field_i64(2, static_cast<int64_t>(g.total_byte_size));
    w.field_i64(3, static_cast<int64_t>(g.num_rows));
    w.field_i64(5, static_cast<int64_t>(g.file_offset));
    w.field_i64(6, static_cast<int64_t>(g.total_compressed_size));
    w.field_i16(7, ordinal);
    w.end_struct();
  }

  static void statistics(compact_writer& w, const value_stats& s, column_type t) {
    w.field_struct(12);
    std::string min, max;
    bool min_max = s.has;
    if (min_max) {
      min = s.plain_min(t);
      max = s.plain_max(t);
      min_max = min.size() <= max_statistics_bytes && max.size() <= max_statistics_bytes;
    }
    // The legacy fields are defined by signed comparison: right for numbers and booleans,
    // wrong for strings (unsigned byte order), which therefore get min_value/max_value only.
    if (min_max && t != column_type::string) {
      w.field_binary(1, max);
      w.field_binary(2, min);
    }
    w.field_i64(3, static_cast<int64_t>(s.nulls));
    if (min_max) {
      w.field_binary(5, max);
      w.field_binary(6, min);
    }
    w.end_struct();
  }

  std::vector<column_summary> summary() const {
    std::vector<column_summary> result;
    for (const auto& col : columns_) {
      value_stats s = col.file_stats;
      s.merge(col.chunk.stats, col.spec.type);
      column_summary cs;
      cs.name = col.spec.name;
      cs.null_count = s.nulls;
      if (s.has) {
        cs.min = s.plain_min(col.spec.type);
        cs.max = s.plain_max(col.spec.type);
      }
      result.push_back(std::move(cs));
    }
    return result;
  }

  uint64_t approx_bytes() const {
    uint64_t n = offset_;
    for (const auto& col : columns_)
      n += col.pages.size() + col.plain.size() + col.indices.size() * sizeof(uint32_t)
           + col.levels.size() / levels_per_byte + col.dictionary.plain().size();
    return n;
  }

  std::vector<column_spec> schema_;
  writer_options opts_;
  byte_sink& out_;
  compressor compressor_;
  std::vector<column_buffer> columns_;
  std::vector<row_group_meta> row_groups_;
  uint64_t offset_ = 0;
  uint64_t rows_ = 0;
  uint64_t group_rows_ = 0;
  uint64_t group_bytes_ = 0;
  bool closed_ = false;
};

// -- writer ---------------------------------------------------------------------------------------

writer::writer(std::vector<column_spec> schema, writer_options opts, byte_sink& out)
  : impl_(std::make_unique<impl>(std::move(schema), std::move(opts), out)) {
  // nop
}

writer::~writer() = default;

const std::vector<column_spec>& writer::schema() const {
  return impl_->schema_;
}

void writer::set(size_t column, std::string_view value) {
  impl_->column_for_set(column, column_type::string, column_type::string)
    .staged_string.assign(value.data(), value.size());
}

void writer::set(size_t column, int64_t value) {
  impl_->column_for_set(column, column_type::int64, column_type::timestamp_ms).staged_int = value;
}

void writer::set(size_t column, double value) {
  impl_->column_for_set(column, column_type::float64, column_type::float64).staged_double = value;
}

void writer::set(size_t column, bool value) {
  impl_->column_for_set(column, column_type::boolean, column_type::boolean).staged_bool = value;
}

void writer::clear(size_t column) {
  if (column >= impl_->columns_.size())
    throw std::out_of_range("parquet writer: column index " + std::to_string(column)
                            + " out of range");
  impl_->columns_[column].staged = false;
}

void writer::end_row() {
  impl_->end_row();
}

uint64_t writer::rows() const {
  return impl_->rows_;
}

uint64_t writer::approx_bytes() const {
  return impl_->approx_bytes();
}

uint64_t writer::close() {
  return impl_->close();
}

std::vector<column_summary> writer::summary() const {
  return impl_->summary();
}

// -- sinks ----------------------------------------------------------------------------------------

void fd_sink::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw std::runtime_error(std::string{"parquet fd_sink: write failed: "}
                               + std::strerror(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void fd_sink::sync() {
  if (::fsync(fd_) != 0)
    throw std::runtime_error(std::string{"parquet fd_sink: fsync failed: "}
                             + std::strerror(errno));
}

} // namespace sluice::persistence::parquet
