#include "persistence/parquet_reader.hpp"

#include "persistence/parquet_format.hpp"
#include "persistence/thrift_compact.hpp"

#include <snappy-c.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

namespace sluice::persistence::parquet {

namespace {

using thrift::compact_reader;
using thrift::compact_type;
using thrift::field_header;
namespace format = parquet::format;
using format::magic;
using format::physical_type;

/// "PARE" ends a Parquet file with an encrypted footer (where `format::magic` ends a plain one).
constexpr std::string_view encrypted_magic = "PARE";
/// The footer's length precedes the trailing magic as a little-endian u32.
constexpr size_t footer_length_bytes = 4;
/// Leading magic, footer length and trailing magic: the smallest possible file (no footer).
constexpr size_t min_file_bytes = 2 * magic.size() + footer_length_bytes;
constexpr int bits_per_byte = 8;
/// Bit-packed runs of the RLE / bit-packed hybrid hold groups of 8 values.
constexpr size_t hybrid_group = 8;
/// Widest value of the hybrid encoding (dictionary indices are u32).
constexpr int max_bit_width = 32;
/// A flat OPTIONAL column's definition levels are 0 (null) or 1 (value): one bit each.
constexpr int definition_level_width = 1;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("parquet reader: " + what);
}

/// A structural error inside Thrift metadata; the caller adds where (footer, page header).
[[noreturn]] void corrupt(const std::string& what) {
  throw std::runtime_error(what);
}

const char* physical_name(int32_t type) {
  switch (type) {
    case format::type_boolean:
      return "BOOLEAN";
    case format::type_int32:
      return "INT32";
    case format::type_int64:
      return "INT64";
    case format::type_int96:
      return "INT96";
    case format::type_float:
      return "FLOAT";
    case format::type_double:
      return "DOUBLE";
    case format::type_byte_array:
      return "BYTE_ARRAY";
    case format::type_fixed_len_byte_array:
      return "FIXED_LEN_BYTE_ARRAY";
  }
  return "an unknown physical type";
}

uint32_t le32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8)
         | (static_cast<uint32_t>(u[2]) << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

uint64_t le64(const char* p) {
  return static_cast<uint64_t>(le32(p)) | (static_cast<uint64_t>(le32(p + 4)) << 32);
}

void expect(const field_header& f, compact_type type, const char* what) {
  if (f.type != type)
    corrupt(std::string{what} + " has compact type " + std::to_string(static_cast<int>(f.type))
            + ", expected " + std::to_string(static_cast<int>(type)));
}

int64_t read_i64_field(compact_reader& r, const field_header& f, const char* what) {
  expect(f, compact_type::i64, what);
  return r.read_i64();
}

int32_t read_i32_field(compact_reader& r, const field_header& f, const char* what) {
  expect(f, compact_type::i32, what);
  return r.read_i32();
}

thrift::list_header read_list_field(compact_reader& r, const field_header& f,
                                    compact_type element, const char* what) {
  expect(f, compact_type::list, what);
  auto l = r.read_list();
  if (l.element != element && l.size > 0)
    corrupt(std::string{what} + " holds elements of compact type "
            + std::to_string(static_cast<int>(l.element)));
  return l;
}

// -- footer (as decoded, before validation) -------------------------------------------------------

struct schema_element {
  std::optional<int32_t> type, repetition, converted, num_children;
  std::string name;
  int16_t logical = 0;   // LogicalType union member, 0: none
  int16_t time_unit = 0; // TIMESTAMP's TimeUnit member
  int8_t int_bits = 0;   // INTEGER's bitWidth
  bool int_signed = true;
};

struct raw_chunk {
  bool has_meta = false;
  bool external = false; // ColumnChunk.file_path: pages in another file
  int32_t type = -1;
  int32_t codec = format::codec_uncompressed;
  std::vector<std::string> path;
  int64_t num_values = -1;
  int64_t total_compressed = -1;
  int64_t data_page_offset = -1;
  std::optional<int64_t> dictionary_page_offset;
};

struct raw_group {
  std::vector<raw_chunk> chunks;
  int64_t rows = -1;
};

struct raw_footer {
  std::vector<schema_element> schema;
  std::optional<int64_t> rows;
  std::vector<raw_group> groups;
  bool has_groups = false;
  std::vector<std::pair<std::string, std::string>> kv;
};

void parse_logical_type(compact_reader& r, schema_element& e) {
  r.begin_struct();
  while (auto f = r.read_field()) {
    e.logical = f->id;
    if (f->id == format::logical_timestamp && f->type == compact_type::structure) {
      r.begin_struct();
      while (auto t = r.read_field()) {
        if (t->id == 2 && t->type == compact_type::structure) { // unit: TimeUnit
          r.begin_struct();
          while (auto u = r.read_field()) {
            e.time_unit = u->id;
            r.skip(*u);
          }
        } else {
          r.skip(*t);
        }
      }
    } else if (f->id == format::logical_integer && f->type == compact_type::structure) {
      r.begin_struct();
      while (auto t = r.read_field()) {
        if (t->id == 1 && t->type == compact_type::byte)
          e.int_bits = r.read_byte();
        else if (t->id == 2 && t->is_bool())
          e.int_signed = t->bool_value();
        else
          r.skip(*t);
      }
    } else {
      r.skip(*f);
    }
  }
}

schema_element parse_schema_element(compact_reader& r) {
  schema_element e;
  r.begin_struct();
  while (auto f = r.read_field()) {
    switch (f->id) {
      case 1:
        e.type = read_i32_field(r, *f, "SchemaElement.type");
        break;
      case 3:
        e.repetition = read_i32_field(r, *f, "SchemaElement.repetition_type");
        break;
      case 4:
        expect(*f, compact_type::binary, "SchemaElement.name");
        e.name = std::string{r.read_binary()};
        break;
      case 5:
        e.num_children = read_i32_field(r, *f, "SchemaElement.num_children");
        break;
      case 6:
        e.converted = read_i32_field(r, *f, "SchemaElement.converted_type");
        break;
      case 10:
        expect(*f, compact_type::structure, "SchemaElement.logicalType");
        parse_logical_type(r, e);
        break;
      default:
        r.skip(*f);
    }
  }
  return e;
}

void parse_column_meta(compact_reader& r, raw_chunk& c) {
  c.has_meta = true;
  r.begin_struct();
  while (auto f = r.read_field()) {
    switch (f->id) {
      case 1:
        c.type = read_i32_field(r, *f, "ColumnMetaData.type");
        break;
      case 3: {
        auto l = read_list_field(r, *f, compact_type::binary, "ColumnMetaData.path_in_schema");
        for (size_t i = 0; i < l.size; ++i)
          c.path.emplace_back(r.read_binary());
        break;
      }
      case 4:
        c.codec = read_i32_field(r, *f, "ColumnMetaData.codec");
        break;
      case 5:
        c.num_values = read_i64_field(r, *f, "ColumnMetaData.num_values");
        break;
      case 7:
        c.total_compressed = read_i64_field(r, *f, "ColumnMetaData.total_compressed_size");
        break;
      case 9:
        c.data_page_offset = read_i64_field(r, *f, "ColumnMetaData.data_page_offset");
        break;
      case 11:
        c.dictionary_page_offset = read_i64_field(r, *f, "ColumnMetaData.dictionary_page_offset");
        break;
      default:
        r.skip(*f);
    }
  }
}

raw_group parse_row_group(compact_reader& r) {
  raw_group g;
  r.begin_struct();
  while (auto f = r.read_field()) {
    if (f->id == 1) {
      auto l = read_list_field(r, *f, compact_type::structure, "RowGroup.columns");
      for (size_t i = 0; i < l.size; ++i) {
        raw_chunk c;
        r.begin_struct();
        while (auto cf = r.read_field()) {
          if (cf->id == 1) {
            c.external = true;
            r.skip(*cf);
          } else if (cf->id == 3) {
            expect(*cf, compact_type::structure, "ColumnChunk.meta_data");
            parse_column_meta(r, c);
          } else {
            r.skip(*cf);
          }
        }
        g.chunks.push_back(std::move(c));
      }
    } else if (f->id == 3) {
      g.rows = read_i64_field(r, *f, "RowGroup.num_rows");
    } else {
      r.skip(*f);
    }
  }
  return g;
}

raw_footer parse_file_metadata(std::string_view footer) {
  raw_footer out;
  compact_reader r{footer};
  r.begin_struct();
  while (auto f = r.read_field()) {
    switch (f->id) {
      case 2: {
        auto l = read_list_field(r, *f, compact_type::structure, "FileMetaData.schema");
        for (size_t i = 0; i < l.size; ++i)
          out.schema.push_back(parse_schema_element(r));
        break;
      }
      case 3:
        out.rows = read_i64_field(r, *f, "FileMetaData.num_rows");
        break;
      case 4: {
        out.has_groups = true;
        auto l = read_list_field(r, *f, compact_type::structure, "FileMetaData.row_groups");
        for (size_t i = 0; i < l.size; ++i)
          out.groups.push_back(parse_row_group(r));
        break;
      }
      case 5: {
        auto l = read_list_field(r, *f, compact_type::structure, "FileMetaData.key_value_metadata");
        for (size_t i = 0; i < l.size; ++i) {
          std::pair<std::string, std::string> kv;
          r.begin_struct();
          while (auto k = r.read_field()) {
            if (k->id == 1 && k->type == compact_type::binary)
              kv.first = std::string{r.read_binary()};
            else if (k->id == 2 && k->type == compact_type::binary)
              kv.second = std::string{r.read_binary()};
            else
              r.skip(*k);
          }
          out.kv.push_back(std::move(kv));
        }
        break;
      }
      default:
        r.skip(*f);
    }
  }
  return out;
}

/// The column_type of a leaf, from its physical and logical (or else converted) type.
column_type resolve_type(const schema_element& e) {
  const std::string col = "column '" + e.name + "'";
  const int32_t type = *e.type;
  auto unsupported_annotation = [&]() -> column_type {
    fail(col + " is " + physical_name(type) + " with logical type "
         + std::to_string(e.logical) + " / converted type "
         + (e.converted ? std::to_string(*e.converted) : std::string{"none"})
         + ", which sluice does not read");
  };
  switch (type) {
    case format::type_boolean:
      return column_type::boolean;
    case format::type_double:
      return column_type::float64;
    case format::type_byte_array:
      if (e.logical != 0) {
        if (e.logical == format::logical_string || e.logical == format::logical_enum
            || e.logical == format::logical_json)
          return column_type::string;
        return unsupported_annotation();
      }
      if (!e.converted || *e.converted == format::converted_utf8
          || *e.converted == format::converted_enum || *e.converted == format::converted_json)
        return column_type::string;
      return unsupported_annotation();
    case format::type_int64:
      if (e.logical == format::logical_timestamp) {
        if (e.time_unit != format::unit_millis)
          fail(col + " is a TIMESTAMP in micro- or nanoseconds; sluice reads milliseconds only");
        return column_type::timestamp_ms;
      }
      if (e.logical == format::logical_integer) {
        if (e.int_bits != format::int64_bits || !e.int_signed)
          return unsupported_annotation();
        return column_type::int64;
      }
      if (e.logical != 0)
        return unsupported_annotation();
      if (!e.converted || *e.converted == format::converted_int_64)
        return column_type::int64;
      if (*e.converted == format::converted_timestamp_millis)
        return column_type::timestamp_ms;
      return unsupported_annotation();
    default:
      fail(col + " has physical type " + physical_name(type) + ", which sluice does not read");
  }
}

// -- pages ------------------------------------------------------------------------------------------

/// What a page header says (data page V1 and dictionary page fields only).
struct page_header {
  int32_t type = -1;
  int32_t uncompressed = -1;
  int32_t compressed = -1;
  int32_t num_values = -1;
  int32_t encoding = -1;
  int32_t definition_encoding = format::encoding_rle;
};

page_header parse_page_header(compact_reader& r) {
  page_header h;
  r.begin_struct();
  while (auto f = r.read_field()) {
    switch (f->id) {
      case 1:
        h.type = read_i32_field(r, *f, "PageHeader.type");
        break;
      case 2:
        h.uncompressed = read_i32_field(r, *f, "PageHeader.uncompressed_page_size");
        break;
      case 3:
        h.compressed = read_i32_field(r, *f, "PageHeader.compressed_page_size");
        break;
      case 5:   // DataPageHeader
      case 7: { // DictionaryPageHeader
        expect(*f, compact_type::structure, "PageHeader's page-type header");
        const bool data = f->id == 5;
        r.begin_struct();
        while (auto d = r.read_field()) {
          if (d->id == 1)
            h.num_values = read_i32_field(r, *d, "num_values");
          else if (d->id == 2)
            h.encoding = read_i32_field(r, *d, "encoding");
          else if (data && d->id == 3)
            h.definition_encoding = read_i32_field(r, *d, "definition_level_encoding");
          else
            r.skip(*d);
        }
        break;
      }
      default:
        r.skip(*f);
    }
  }
  if (h.uncompressed < 0 || h.compressed < 0)
    corrupt("page header without valid page sizes");
  return h;
}

/// Decompresses page bodies; reuses one zstd context. Not thread-safe (one per for_each_row).
class decompressor {
public:
  decompressor() = default;
  ~decompressor() {
    ZSTD_freeDCtx(zctx_);
  }
  decompressor(const decompressor&) = delete;
  decompressor& operator=(const decompressor&) = delete;

  /// The `size` uncompressed bytes of `in`: a view of `in` itself for codec::none, else a
  /// buffer appended to `keep`. Throws std::runtime_error (without prefix) on a mismatch.
  std::string_view run(codec c, std::string_view in, size_t size, std::deque<std::string>& keep) {
    switch (c) {
      case codec::none:
        if (in.size() != size)
          corrupt("an uncompressed page of " + std::to_string(in.size())
                  + " bytes declares " + std::to_string(size));
        return in;
      case codec::snappy: {
        size_t n = 0;
        if (snappy_uncompressed_length(in.data(), in.size(), &n) != SNAPPY_OK || n != size)
          corrupt("snappy data does not decompress to the declared " + std::to_string(size)
                  + " bytes");
        std::string& out = keep.emplace_back(size, '\0');
        if (snappy_uncompress(in.data(), in.size(), out.data(), &n) != SNAPPY_OK || n != size)
          corrupt("snappy data is corrupt");
        return out;
      }
      case codec::zstd: {
        const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
        if (declared == ZSTD_CONTENTSIZE_ERROR)
          corrupt("the page is not a zstd frame");
        if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != size)
          corrupt("the zstd frame holds " + std::to_string(declared) + " bytes, the page declares "
                  + std::to_string(size));
        if (zctx_ == nullptr && (zctx_ = ZSTD_createDCtx()) == nullptr)
          throw std::runtime_error("ZSTD_createDCtx failed");
        std::string& out = keep.emplace_back(size, '\0');
        const size_t n = ZSTD_decompressDCtx(zctx_, out.data(), out.size(), in.data(), in.size());
        if (ZSTD_isError(n))
          corrupt(std::string{"zstd: "} + ZSTD_getErrorName(n));
        if (n != size)
          corrupt("zstd data decompresses to " + std::to_string(n) + " bytes, not the declared "
                  + std::to_string(size));
        return out;
      }
    }
    return in;
  }

private:
  ZSTD_DCtx* zctx_ = nullptr;
};

/// Reads the RLE / bit-packed hybrid encoding (without length prefix), bounds-checked.
/// Returns the bytes consumed; throws std::runtime_error (without prefix) on corrupt input.
size_t decode_hybrid(std::string_view data, int width, size_t count, std::vector<uint32_t>& out) {
  out.clear();
  out.reserve(std::min(count, data.size() * hybrid_group));
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t pos = 0;
  auto uvarint = [&]() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= data.size())
        corrupt("RLE/bit-packed data ends early");
      const unsigned char b = p[pos++];
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0)
        return v;
    }
    corrupt("RLE/bit-packed run header is not a varint");
  };
  const uint64_t mask = width == max_bit_width ? 0xFFFFFFFFull : ((1ull << width) - 1);
  while (out.size() < count) {
    const uint64_t header = uvarint();
    const size_t wanted = count - out.size();
    const size_t avail = data.size() - pos;
    if (header & 1) { // bit-packed: (header >> 1) groups of 8 values
      const uint64_t groups = header >> 1;
      const uint64_t run_values = groups > avail ? std::numeric_limits<uint64_t>::max()
                                                 : groups * hybrid_group;
      const size_t take = static_cast<size_t>(std::min<uint64_t>(run_values, wanted));
      const size_t need = (take * static_cast<size_t>(width) + bits_per_byte - 1) / bits_per_byte;
      if (need > avail)
        corrupt("bit-packed run of " + std::to_string(take) + " values needs " + std::to_string(need)
                + " bytes, " + std::to_string(avail) + " left");
      for (size_t i = 0; i < take; ++i) {
        const size_t bit = i * static_cast<size_t>(width);
        const size_t first = bit / bits_per_byte;
        const int shift = static_cast<int>(bit % bits_per_byte);
        const size_t last = std::min((bit + static_cast<size_t>(width) + bits_per_byte - 1)
                                       / bits_per_byte,
                                     need);
        uint64_t acc = 0;
        for (size_t b = first; b < last; ++b)
          acc |= static_cast<uint64_t>(p[pos + b]) << ((b - first) * bits_per_byte);
        out.push_back(static_cast<uint32_t>((acc >> shift) & mask));
      }
      // A full run's bytes; the last run of a page may stop after its last needed byte.
      const uint64_t run_bytes = groups > avail ? avail : groups * static_cast<uint64_t>(width);
      pos += static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(run_bytes, need), avail));
    } else { // RLE: (header >> 1) repetitions of one value in ceil(width / 8) bytes
      const uint64_t run = header >> 1;
      const size_t value_bytes = (static_cast<size_t>(width) + bits_per_byte - 1) / bits_per_byte;
      if (value_bytes > avail)
        corrupt("RLE run value needs " + std::to_string(value_bytes) + " bytes, "
                + std::to_string(avail) + " left");
      uint64_t value = 0;
      for (size_t b = 0; b < value_bytes; ++b)
        value |= static_cast<uint64_t>(p[pos + b]) << (b * bits_per_byte);
      pos += value_bytes;
      if (value > mask)
        corrupt("RLE run value " + std::to_string(value) + " exceeds bit width "
                + std::to_string(width));
      const size_t take = static_cast<size_t>(std::min<uint64_t>(run, wanted));
      out.insert(out.end(), take, static_cast<uint32_t>(value));
    }
  }
  return pos;
}

/// Appends `count` PLAIN values of `type` from `data` to `out`.
void decode_plain(column_type type, std::string_view data, size_t count, std::vector<cell>& out) {
  switch (type) {
    case column_type::string: {
      size_t pos = 0;
      for (size_t i = 0; i < count; ++i) {
        if (data.size() - pos < sizeof(uint32_t))
          corrupt("PLAIN byte array " + std::to_string(i) + " of " + std::to_string(count)
                  + ": its length is past the end of the page");
        const uint32_t len = le32(data.data() + pos);
        pos += sizeof(uint32_t);
        if (len > data.size() - pos)
          corrupt("PLAIN byte array " + std::to_string(i) + " of " + std::to_string(len)
                  + " bytes runs past the end of the page");
        out.emplace_back(data.substr(pos, len));
        pos += len;
      }
      return;
    }
    case column_type::int64:
    case column_type::timestamp_ms:
    case column_type::float64: {
      if (count > data.size() / sizeof(int64_t))
        corrupt(std::to_string(count) + " PLAIN 8-byte values do not fit in "
                + std::to_string(data.size()) + " bytes");
      for (size_t i = 0; i < count; ++i) {
        const uint64_t bits = le64(data.data() + i * sizeof(int64_t));
        if (type == column_type::float64) {
          double d;
          std::memcpy(&d, &bits, sizeof d);
          out.emplace_back(d);
        } else {
          out.emplace_back(static_cast<int64_t>(bits));
        }
      }
      return;
    }
    case column_type::boolean: {
      if (count > data.size() * bits_per_byte)
        corrupt(std::to_string(count) + " PLAIN booleans do not fit in "
                + std::to_string(data.size()) + " bytes");
      for (size_t i = 0; i < count; ++i)
        out.emplace_back(((static_cast<unsigned char>(data[i / bits_per_byte]) >> (i % bits_per_byte))
                          & 1)
                         != 0);
      return;
    }
  }
}

/// Decodes one column chunk's pages into one cell per row (nulls as monostate).
class chunk_decoder {
public:
  chunk_decoder(const column_spec& spec, std::string_view chunk, uint64_t num_values, codec c,
                decompressor& dec, std::deque<std::string>& keep)
    : spec_(spec), chunk_(chunk), num_values_(num_values), codec_(c), dec_(dec), keep_(keep) {}

  void run(std::vector<cell>& out) {
    out.clear();
    size_t pos = 0;
    while (out.size() < num_values_) {
      if (pos >= chunk_.size())
        corrupt("the column chunk ends after " + std::to_string(out.size()) + " of "
                + std::to_string(num_values_) + " values");
      compact_reader r{chunk_.substr(pos)};
      page_header h;
      try {
        h = parse_page_header(r);
      } catch (const std::runtime_error& e) {
        corrupt("corrupt page header at chunk byte " + std::to_string(pos) + ": " + e.what());
      }
      pos += r.position();
      const auto compressed = static_cast<size_t>(h.compressed);
      if (compressed > chunk_.size() - pos)
        corrupt("a page of " + std::to_string(compressed) + " bytes runs past the column chunk");
      const std::string_view raw = chunk_.substr(pos, compressed);
      pos += compressed;
      switch (h.type) {
        case format::page_dictionary:
          dictionary_page(h, raw);
          break;
        case format::page_data:
          data_page(h, raw, out);
          break;
        case format::page_index:
          break; // nothing for a reader in it
        case format::page_data_v2:
          corrupt("data pages V2 are not supported (sluice writes V1)");
        default:
          corrupt("unknown page type " + std::to_string(h.type));
      }
    }
  }

private:
  void dictionary_page(const page_header& h, std::string_view raw) {
    if (dictionary_)
      corrupt("a second dictionary page");
    if (h.encoding != format::encoding_plain && h.encoding != format::encoding_plain_dictionary)
      corrupt("dictionary page encoding " + std::to_string(h.encoding) + " is not PLAIN");
    if (h.num_values < 0)
      corrupt("dictionary page without num_values");
    const std::string_view body = dec_.run(codec_, raw, static_cast<size_t>(h.uncompressed), keep_);
    dictionary_.emplace();
    decode_plain(spec_.type, body, static_cast<size_t>(h.num_values), *dictionary_);
  }

  void data_page(const page_header& h, std::string_view raw, std::vector<cell>& out) {
    if (h.num_values < 0)
      corrupt("data page without a DataPageHeader");
    const auto n = static_cast<size_t>(h.num_values);
    if (n > num_values_ - out.size())
      corrupt("a data page holds " + std::to_string(n) + " values, more than the "
              + std::to_string(num_values_ - out.size()) + " left in the column chunk");
    std::string_view body = dec_.run(codec_, raw, static_cast<size_t>(h.uncompressed), keep_);
    size_t non_null = n;
    if (!spec_.required) {
      if (h.definition_encoding != format::encoding_rle)
        corrupt("definition level encoding " + std::to_string(h.definition_encoding)
                + " is not RLE");
      if (body.size() < sizeof(uint32_t))
        corrupt("the page is too short for its definition levels' length");
      const uint32_t len = le32(body.data());
      body.remove_prefix(sizeof(uint32_t));
      if (len > body.size())
        corrupt("definition levels of " + std::to_string(len) + " bytes run past the page");
      decode_hybrid(body.substr(0, len), definition_level_width, n, levels_);
      body.remove_prefix(len);
      non_null = static_cast<size_t>(std::count(levels_.begin(), levels_.end(), 1u));
    }
    values_.clear();
    switch (h.encoding) {
      case format::encoding_plain:
        decode_plain(spec_.type, body, non_null, values_);
        break;
      case format::encoding_rle_dictionary:
      case format::encoding_plain_dictionary: {
        if (!dictionary_)
          corrupt("a dictionary-encoded page without a dictionary page");
        if (non_null == 0)
          break;
        if (body.empty())
          corrupt("a dictionary-encoded page without its bit width");
        const int width = static_cast<unsigned char>(body[0]);
        if (width > max_bit_width)
          corrupt("dictionary index bit width " + std::to_string(width) + " exceeds 32");
        decode_hybrid(body.substr(1), width, non_null, indices_);
        values_.reserve(non_null);
        for (uint32_t i : indices_) {
          if (i >= dictionary_->size())
            corrupt("dictionary index " + std::to_string(i) + " out of range (dictionary of "
                    + std::to_string(dictionary_->size()) + ")");
          values_.push_back((*dictionary_)[i]);
        }
        break;
      }
      default:
        corrupt("value encoding " + std::to_string(h.encoding) + " is not supported");
    }
    if (spec_.required) {
      out.insert(out.end(), values_.begin(), values_.end());
      return;
    }
    size_t k = 0;
    for (uint32_t level : levels_)
      out.push_back(level != 0 ? values_[k++] : cell{});
  }

  const column_spec& spec_;
  std::string_view chunk_;
  uint64_t num_values_;
  codec codec_;
  decompressor& dec_;
  std::deque<std::string>& keep_;
  std::optional<std::vector<cell>> dictionary_;
  std::vector<uint32_t> levels_, indices_;
  std::vector<cell> values_;
};

} // namespace

// -- reader ---------------------------------------------------------------------------------------

reader::reader(std::string bytes) : bytes_(std::move(bytes)) {
  parse_footer();
}

reader reader::open_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("cannot open '" + path + "': " + std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad())
    fail("cannot read '" + path + "'");
  try {
    return reader{std::move(content).str()};
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string{e.what()} + " (file '" + path + "')");
  }
}

void reader::parse_footer() {
  const size_t size = bytes_.size();
  if (size < min_file_bytes)
    fail("the file is " + std::to_string(size) + " bytes; a Parquet file has at least "
         + std::to_string(min_file_bytes) + " (magic, footer length, magic)");
  if (std::string_view{bytes_}.substr(0, magic.size()) != magic)
    fail("bad magic at the start: not a Parquet file");
  const std::string_view tail = std::string_view{bytes_}.substr(size - magic.size());
  if (tail == encrypted_magic)
    fail("the footer is encrypted (PARE), which sluice does not read");
  if (tail != magic)
    fail("bad magic at the end: the file is truncated or not Parquet");
  const uint32_t footer_len = le32(bytes_.data() + size - magic.size() - footer_length_bytes);
  if (footer_len > size - min_file_bytes)
    fail("the footer length " + std::to_string(footer_len) + " exceeds the file ("
         + std::to_string(size) + " bytes): truncated or corrupt");
  const size_t footer_start = size - magic.size() - footer_length_bytes - footer_len;

  raw_footer raw;
  try {
    raw = parse_file_metadata(std::string_view{bytes_}.substr(footer_start, footer_len));
  } catch (const std::runtime_error& e) {
    fail(std::string{"corrupt footer: "} + e.what());
  }

  // Schema: a root group whose children are all leaves.
  if (raw.schema.empty())
    fail("the footer has no schema");
  const auto& root = raw.schema.front();
  const size_t leaves = raw.schema.size() - 1;
  if (!root.num_children || static_cast<size_t>(*root.num_children) != leaves)
    fail("the schema root has " + std::to_string(root.num_children.value_or(0))
         + " children but " + std::to_string(leaves)
         + " elements follow: nested schemas are not supported");
  std::set<std::string> names;
  for (size_t i = 1; i < raw.schema.size(); ++i) {
    const auto& e = raw.schema[i];
    const std::string col = "column '" + e.name + "'";
    if (e.num_children && *e.num_children > 0)
      fail(col + " is a group: nested schemas are not supported");
    if (!e.type)
      fail(col + " has no physical type");
    if (!e.repetition)
      fail(col + " has no repetition type");
    if (*e.repetition != format::repetition_required
        && *e.repetition != format::repetition_optional)
      fail(col + " is REPEATED, which sluice does not read");
    if (!names.insert(e.name).second)
      fail(col + " appears twice in the schema");
    schema_.push_back(
        column_spec{e.name, resolve_type(e), *e.repetition == format::repetition_required});
  }
  if (schema_.empty())
    fail("the schema has no column");

  // Row groups: one chunk per column, each inside the file's data area.
  if (!raw.rows || *raw.rows < 0)
    fail("the footer has no valid num_rows");
  if (!raw.has_groups)
    fail("the footer has no row_groups");
  uint64_t total = 0;
  for (size_t g = 0; g < raw.groups.size(); ++g) {
    const auto& rg = raw.groups[g];
    const std::string where = "row group " + std::to_string(g);
    if (rg.rows < 0)
      fail(where + " has no valid num_rows");
    if (rg.chunks.size() != schema_.size())
      fail(where + " has " + std::to_string(rg.chunks.size()) + " column chunks for "
           + std::to_string(schema_.size()) + " columns");
    row_group_location loc;
    loc.rows = static_cast<uint64_t>(rg.rows);
    total += loc.rows;
    for (size_t c = 0; c < rg.chunks.size(); ++c) {
      const auto& rc = rg.chunks[c];
      const auto& spec = schema_[c];
      const std::string at = "column '" + spec.name + "' of " + where;
      if (rc.external)
        fail(at + " lives in another file (file_path), which sluice does not read");
      if (!rc.has_meta)
        fail(at + " has no meta_data");
      if (rc.path.size() != 1 || rc.path[0] != spec.name)
        fail("column chunk " + std::to_string(c) + " of " + where + " is not for column '"
             + spec.name + "'");
      if (rc.type != physical_type(spec.type))
        fail(at + " has physical type " + physical_name(rc.type) + " in its chunk and "
             + physical_name(physical_type(spec.type)) + " in the schema");
      chunk_location chunk;
      if (auto compression = format::codec_from_id(rc.codec))
        chunk.compression = *compression;
      else
        fail(at + " uses compression codec " + std::to_string(rc.codec)
             + "; sluice reads uncompressed, snappy (1) and zstd (6)");
      if (rc.num_values < 0 || static_cast<uint64_t>(rc.num_values) != loc.rows)
        fail(at + " has " + std::to_string(rc.num_values) + " values for "
             + std::to_string(loc.rows) + " rows");
      int64_t start = rc.data_page_offset;
      if (rc.dictionary_page_offset && *rc.dictionary_page_offset > 0
          && *rc.dictionary_page_offset < start)
        start = *rc.dictionary_page_offset;
      if (start < static_cast<int64_t>(magic.size())
          || static_cast<uint64_t>(start) >= footer_start)
        fail(at + " starts at byte " + std::to_string(start) + ", outside the data area [4, "
             + std::to_string(footer_start) + ")");
      if (rc.total_compressed < 0
          || static_cast<uint64_t>(rc.total_compressed) > footer_start - static_cast<uint64_t>(start))
        fail(at + " (" + std::to_string(rc.total_compressed) + " bytes from byte "
             + std::to_string(start) + ") runs into the footer");
      chunk.start = static_cast<uint64_t>(start);
      chunk.end = chunk.start + static_cast<uint64_t>(rc.total_compressed);
      chunk.num_values = static_cast<uint64_t>(rc.num_values);
      loc.chunks.push_back(chunk);
    }
    groups_.push_back(std::move(loc));
  }
  if (total != static_cast<uint64_t>(*raw.rows))
    fail("the footer says " + std::to_string(*raw.rows) + " rows but its row groups hold "
         + std::to_string(total));
  rows_ = total;
  key_value_metadata_ = std::move(raw.kv);
}

const std::vector<column_spec>& reader::schema() const {
  return schema_;
}

uint64_t reader::rows() const {
  return rows_;
}

size_t reader::row_groups() const {
  return groups_.size();
}

const std::vector<std::pair<std::string, std::string>>& reader::key_value_metadata() const {
  return key_value_metadata_;
}

void reader::for_each_row(const std::function<void(const std::vector<cell>&)>& fn) const {
  for (size_t g = 0; g < groups_.size(); ++g)
    decode_row_group(g, fn);
}

void reader::decode_row_group(size_t index,
                              const std::function<void(const std::vector<cell>&)>& fn) const {
  const auto& group = groups_[index];
  decompressor dec;
  std::deque<std::string> keep; // decompressed pages that string cells point into
  std::vector<std::vector<cell>> columns(schema_.size());
  for (size_t c = 0; c < schema_.size(); ++c) {
    const auto& loc = group.chunks[c];
    const std::string_view chunk = std::string_view{bytes_}.substr(loc.start, loc.end - loc.start);
    chunk_decoder d{schema_[c], chunk, loc.num_values, loc.compression, dec, keep};
    try {
      d.run(columns[c]);
    } catch (const std::runtime_error& e) {
      fail("column '" + schema_[c].name + "' of row group " + std::to_string(index) + ": "
           + e.what());
    }
  }
  std::vector<cell> row(schema_.size());
  for (uint64_t r = 0; r < group.rows; ++r) {
    for (size_t c = 0; c < columns.size(); ++c)
      row[c] = columns[c][r];
    fn(row);
  }
}

// -- copy_rows --------------------------------------------------------------------------------------

void copy_rows(const reader& from, writer& to) {
  const auto& src = from.schema();
  const auto& dst = to.schema();
  std::vector<size_t> source_of(dst.size());
  for (size_t j = 0; j < dst.size(); ++j) {
    auto it = std::find_if(src.begin(), src.end(),
                           [&](const column_spec& s) { return s.name == dst[j].name; });
    if (it == src.end())
      throw std::invalid_argument("parquet copy_rows: column '" + dst[j].name
                                  + "' of the destination is not in the source file");
    if (it->type != dst[j].type)
      throw std::invalid_argument("parquet copy_rows: column '" + dst[j].name + "' is "
                                  + std::string{to_string(it->type)} + " in the source and "
                                  + std::string{to_string(dst[j].type)} + " in the destination");
    if (dst[j].required && !it->required)
      throw std::invalid_argument("parquet copy_rows: column '" + dst[j].name
                                  + "' is optional in the source and required in the destination");
    source_of[j] = static_cast<size_t>(it - src.begin());
  }
  if (src.size() != dst.size()) {
    for (const auto& s : src)
      if (std::none_of(dst.begin(), dst.end(), [&](const column_spec& d) { return d.name == s.name; }))
        throw std::invalid_argument("parquet copy_rows: column '" + s.name
                                    + "' of the source is not in the destination");
  }
  from.for_each_row([&](const std::vector<cell>& row) {
    for (size_t j = 0; j < source_of.size(); ++j) {
      const cell& v = row[source_of[j]];
      if (auto s = std::get_if<std::string_view>(&v))
        to.set(j, *s);
      else if (auto i = std::get_if<int64_t>(&v))
        to.set(j, *i);
      else if (auto d = std::get_if<double>(&v))
        to.set(j, *d);
      else if (auto b = std::get_if<bool>(&v))
        to.set(j, *b);
    }
    to.end_row();
  });
}

} // namespace sluice::persistence::parquet
