// The Parquet writer's file structure, checked by decoding its footer with a small Thrift
// compact decoder written here from the spec (independent of the encoder under test). Reading
// the values back with real readers is tests/integration/parquet_readback.test.mjs.

#include "persistence/parquet_writer.hpp"

#include "parquet_test_helpers.hpp"
#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>
#include <snappy-c.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace sluice::persistence::parquet;
using sluice::persistence::parquet_testing::event_schema;
using sluice::persistence::testing::temp_dir;

namespace {

// -- a Thrift compact decoder (test-only) ---------------------------------------------------------

struct tvalue {
  int type = 0;
  int64_t i = 0;
  bool b = false;
  std::string bin;
  std::vector<tvalue> list;
  std::map<int, tvalue> fields;

  const tvalue& at(int id) const {
    auto it = fields.find(id);
    if (it == fields.end())
      throw std::out_of_range("no field " + std::to_string(id));
    return it->second;
  }
  bool has(int id) const {
    return fields.count(id) != 0;
  }
};

class tdecoder {
public:
  tdecoder(const char* p, size_t n) : p_(reinterpret_cast<const uint8_t*>(p)), end_(p_ + n) {}

  tvalue read_struct() {
    tvalue s;
    s.type = 12;
    int last = 0;
    for (;;) {
      uint8_t h = byte();
      if (h == 0)
        return s;
      int type = h & 0x0F;
      int delta = h >> 4;
      int id = delta != 0 ? last + delta : static_cast<int>(zz(uvarint()));
      last = id;
      tvalue v;
      if (type == 1 || type == 2) {
        v.type = type;
        v.b = type == 1;
      } else {
        v = read_value(type);
      }
      s.fields[id] = std::move(v);
    }
  }

  size_t consumed(const char* start) const {
    return static_cast<size_t>(reinterpret_cast<const char*>(p_) - start);
  }

private:
  tvalue read_value(int type) {
    tvalue v;
    v.type = type;
    switch (type) {
      case 3:
        v.i = static_cast<int8_t>(byte());
        break;
      case 4:
      case 5:
      case 6:
        v.i = zz(uvarint());
        break;
      case 8: {
        size_t n = uvarint();
        if (static_cast<size_t>(end_ - p_) < n)
          throw std::runtime_error("binary past the end");
        v.bin.assign(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        break;
      }
      case 9: {
        uint8_t h = byte();
        size_t n = h >> 4;
        if (n == 15)
          n = uvarint();
        int elem = h & 0x0F;
        for (size_t k = 0; k < n; ++k) {
          if (elem == 1 || elem == 2) {
            tvalue e;
            e.b = byte() == 1;
            v.list.push_back(e);
          } else {
            v.list.push_back(read_value(elem));
          }
        }
        break;
      }
      case 12:
        return read_struct();
      default:
        throw std::runtime_error("unexpected thrift type " + std::to_string(type));
    }
    return v;
  }
  uint8_t byte() {
    if (p_ == end_)
      throw std::runtime_error("thrift data ends early");
    return *p_++;
  }
  uint64_t uvarint() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      uint8_t b = byte();
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0)
        return v;
    }
  }
  static int64_t zz(uint64_t v) {
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }
  const uint8_t* p_;
  const uint8_t* end_;
};

uint32_t le32(const std::string& s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, sizeof v);
  return v;
}

/// Checks both magics and the footer length; returns the decoded FileMetaData.
tvalue footer(const std::string& file) {
  constexpr size_t magic_len = 4, len_len = 4;
  EXPECT_GE(file.size(), 2 * magic_len + len_len);
  EXPECT_EQ(file.substr(0, magic_len), "PAR1");
  EXPECT_EQ(file.substr(file.size() - magic_len), "PAR1");
  const uint32_t len = le32(file, file.size() - magic_len - len_len);
  const size_t start = file.size() - magic_len - len_len - len;
  EXPECT_GE(start, magic_len);
  tdecoder d{file.data() + start, len};
  tvalue meta = d.read_struct();
  EXPECT_EQ(d.consumed(file.data() + start), len) << "the footer length covers the metadata exactly";
  return meta;
}

std::string le64(int64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, sizeof v);
  return s;
}

std::string le_double(double d) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &d, sizeof d);
  return s;
}

// parquet.thrift field ids and enum values used below.
constexpr int fm_version = 1, fm_schema = 2, fm_num_rows = 3, fm_row_groups = 4, fm_kv = 5,
              fm_created_by = 6, fm_column_orders = 7;
constexpr int rg_columns = 1, rg_num_rows = 3;
constexpr int cc_meta = 3;
constexpr int cm_type = 1, cm_encodings = 2, cm_path = 3, cm_codec = 4, cm_num_values = 5,
              cm_uncompressed = 6, cm_compressed = 7, cm_data_page_offset = 9,
              cm_dictionary_page_offset = 11, cm_statistics = 12, cm_encoding_stats = 13;
constexpr int st_max = 1, st_min = 2, st_null_count = 3, st_max_value = 5, st_min_value = 6;
constexpr int enc_plain = 0, enc_rle = 3, enc_rle_dictionary = 8;
constexpr int page_data = 0, page_dictionary = 2;

const tvalue& chunk_meta(const tvalue& meta, size_t group, size_t column) {
  return meta.at(fm_row_groups).list.at(group).at(rg_columns).list.at(column).at(cc_meta);
}

/// (page type, encoding) → page count, from ColumnMetaData.encoding_stats.
std::map<std::pair<int, int>, int64_t> page_encodings(const tvalue& cm) {
  std::map<std::pair<int, int>, int64_t> out;
  for (const auto& s : cm.at(cm_encoding_stats).list)
    out[{static_cast<int>(s.at(1).i), static_cast<int>(s.at(2).i)}] += s.at(3).i;
  return out;
}

writer_options uncompressed() {
  writer_options o;
  o.compression = codec::none;
  return o;
}

} // namespace

TEST(parquet_writer, a_file_starts_and_ends_with_par1_and_its_footer_length_frames_the_metadata) {
  string_sink sink;
  writer w{event_schema(), uncompressed(), sink};
  w.set(0, "a");
  w.set(1, int64_t{1});
  w.end_row();
  const uint64_t size = w.close();
  EXPECT_EQ(size, sink.buffer.size());
  tvalue meta = footer(sink.buffer);
  EXPECT_EQ(meta.at(fm_version).i, 2);
  EXPECT_EQ(meta.at(fm_num_rows).i, 1);
  EXPECT_EQ(w.rows(), 1u);
}

TEST(parquet_writer, the_footer_describes_a_flat_schema_with_logical_types_and_column_orders) {
  string_sink sink;
  writer w{event_schema(), uncompressed(), sink};
  w.close();
  tvalue meta = footer(sink.buffer);
  const auto& schema = meta.at(fm_schema).list;
  ASSERT_EQ(schema.size(), 7u);
  EXPECT_EQ(schema[0].at(4).bin, "schema");
  EXPECT_EQ(schema[0].at(5).i, 6);
  EXPECT_FALSE(schema[0].has(1)) << "the root is a group, without a physical type";
  // id: BYTE_ARRAY, REQUIRED, UTF8, LogicalType STRING
  EXPECT_EQ(schema[1].at(1).i, 6);
  EXPECT_EQ(schema[1].at(3).i, 0);
  EXPECT_EQ(schema[1].at(4).bin, "id");
  EXPECT_EQ(schema[1].at(6).i, 0);
  EXPECT_TRUE(schema[1].at(10).has(1));
  // ts: INT64, REQUIRED, TIMESTAMP_MILLIS, TIMESTAMP(isAdjustedToUTC, MILLIS)
  EXPECT_EQ(schema[2].at(1).i, 2);
  EXPECT_EQ(schema[2].at(6).i, 9);
  const tvalue& ts = schema[2].at(10).at(8);
  EXPECT_TRUE(ts.at(1).b);
  EXPECT_TRUE(ts.at(2).has(1));
  // offset: INT64 OPTIONAL without logical type; score DOUBLE; ok BOOLEAN; type OPTIONAL string
  EXPECT_EQ(schema[3].at(1).i, 2);
  EXPECT_EQ(schema[3].at(3).i, 1);
  EXPECT_FALSE(schema[3].has(10));
  EXPECT_EQ(schema[4].at(1).i, 5);
  EXPECT_EQ(schema[5].at(1).i, 0);
  EXPECT_EQ(schema[6].at(3).i, 1);
  // One TypeDefinedOrder per leaf column.
  const auto& orders = meta.at(fm_column_orders).list;
  ASSERT_EQ(orders.size(), 6u);
  for (const auto& o : orders)
    EXPECT_TRUE(o.has(1));
  EXPECT_EQ(meta.at(fm_row_groups).list.size(), 0u) << "an empty file has no row group";
  EXPECT_EQ(meta.at(fm_num_rows).i, 0);
}

TEST(parquet_writer, chunk_statistics_hold_min_max_and_null_count_in_each_types_byte_order) {
  string_sink sink;
  writer w{event_schema(), uncompressed(), sink};
  const std::vector<std::string> ids{"b", "\xC3\xA9", "a", "ab"}; // é sorts after ASCII (unsigned)
  for (size_t i = 0; i < ids.size(); ++i) {
    w.set(0, ids[i]);
    w.set(1, int64_t{1000} - static_cast<int64_t>(i));
    if (i != 1)
      w.set(2, static_cast<int64_t>(i) - 2);
    if (i == 3)
      w.set(3, -0.0);
    else if (i == 0)
      w.set(3, std::numeric_limits<double>::quiet_NaN());
    else
      w.set(3, 0.0);
    if (i < 2)
      w.set(4, i == 1);
    w.end_row();
  }
  w.close();
  tvalue meta = footer(sink.buffer);

  const tvalue& id = chunk_meta(meta, 0, 0).at(cm_statistics);
  EXPECT_EQ(id.at(st_min_value).bin, "a");
  EXPECT_EQ(id.at(st_max_value).bin, "\xC3\xA9");
  EXPECT_FALSE(id.has(st_min)) << "signed legacy min/max would be wrong for strings";
  EXPECT_FALSE(id.has(st_max));
  EXPECT_EQ(id.at(st_null_count).i, 0);

  const tvalue& ts = chunk_meta(meta, 0, 1).at(cm_statistics);
  EXPECT_EQ(ts.at(st_min_value).bin, le64(997));
  EXPECT_EQ(ts.at(st_max_value).bin, le64(1000));
  EXPECT_EQ(ts.at(st_min).bin, le64(997));
  EXPECT_EQ(ts.at(st_max).bin, le64(1000));

  const tvalue& offset = chunk_meta(meta, 0, 2).at(cm_statistics);
  EXPECT_EQ(offset.at(st_min_value).bin, le64(-2));
  EXPECT_EQ(offset.at(st_max_value).bin, le64(1));
  EXPECT_EQ(offset.at(st_null_count).i, 1);

  const tvalue& score = chunk_meta(meta, 0, 3).at(cm_statistics);
  EXPECT_EQ(score.at(st_min_value).bin, le_double(-0.0)) << "NaN is left out; zero min is -0.0";
  EXPECT_EQ(score.at(st_max_value).bin, le_double(0.0)) << "zero max is +0.0";
  EXPECT_EQ(score.at(st_null_count).i, 0);

  const tvalue& ok = chunk_meta(meta, 0, 4).at(cm_statistics);
  EXPECT_EQ(ok.at(st_min_value).bin, std::string(1, '\0'));
  EXPECT_EQ(ok.at(st_max_value).bin, std::string(1, '\1'));
  EXPECT_EQ(ok.at(st_null_count).i, 2);

  const tvalue& type = chunk_meta(meta, 0, 5).at(cm_statistics);
  EXPECT_EQ(type.at(st_null_count).i, 4);
  EXPECT_FALSE(type.has(st_min_value)) << "an all-null chunk has no min/max";
}

TEST(parquet_writer, column_metadata_records_values_sizes_offsets_and_codec) {
  for (codec c : {codec::none, codec::snappy, codec::zstd}) {
    string_sink sink;
    writer_options o;
    o.compression = c;
    writer w{event_schema(), o, sink};
    for (int i = 0; i < 100; ++i) {
      w.set(0, "id-" + std::to_string(i));
      w.set(1, int64_t{i});
      w.set(5, i % 2 == 0 ? "play" : "stop");
      w.end_row();
    }
    w.close();
    tvalue meta = footer(sink.buffer);
    const int expected_codec = c == codec::none ? 0 : c == codec::snappy ? 1 : 6;
    for (size_t col = 0; col < 6; ++col) {
      const tvalue& cm = chunk_meta(meta, 0, col);
      SCOPED_TRACE(std::string{to_string(c)} + " column " + std::to_string(col));
      EXPECT_EQ(cm.at(cm_codec).i, expected_codec);
      EXPECT_EQ(cm.at(cm_num_values).i, 100);
      EXPECT_EQ(cm.at(cm_path).list.at(0).bin, event_schema()[col].name);
      EXPECT_GT(cm.at(cm_uncompressed).i, 0);
      // The first data page decodes and its body decompresses to the stated size.
      const size_t at = static_cast<size_t>(cm.at(cm_data_page_offset).i);
      tdecoder d{sink.buffer.data() + at, sink.buffer.size() - at};
      tvalue header = d.read_struct();
      EXPECT_EQ(header.at(1).i, page_data);
      const size_t body_at = at + d.consumed(sink.buffer.data() + at);
      const auto uncompressed_size = static_cast<size_t>(header.at(2).i);
      const auto compressed_size = static_cast<size_t>(header.at(3).i);
      EXPECT_EQ(header.at(5).at(1).i, 100) << "num_values of the page";
      std::string body(uncompressed_size, '\0');
      if (c == codec::zstd) {
        EXPECT_EQ(ZSTD_decompress(body.data(), body.size(), sink.buffer.data() + body_at,
                                  compressed_size),
                  uncompressed_size);
      } else if (c == codec::snappy) {
        size_t n = body.size();
        EXPECT_EQ(snappy_uncompress(sink.buffer.data() + body_at, compressed_size, body.data(), &n),
                  SNAPPY_OK);
        EXPECT_EQ(n, uncompressed_size);
      } else {
        EXPECT_EQ(compressed_size, uncompressed_size);
      }
    }
  }
}

TEST(parquet_writer, an_optional_column_page_holds_rle_definition_levels_then_plain_values) {
  string_sink sink;
  writer w{{{"n", column_type::int64, false}}, uncompressed(), sink};
  w.set(0, 5);
  w.end_row();
  w.end_row(); // null
  w.set(0, 7);
  w.end_row();
  w.close();
  tvalue meta = footer(sink.buffer);
  const tvalue& cm = chunk_meta(meta, 0, 0);
  const size_t at = static_cast<size_t>(cm.at(cm_data_page_offset).i);
  tdecoder d{sink.buffer.data() + at, sink.buffer.size() - at};
  tvalue header = d.read_struct();
  EXPECT_EQ(header.at(5).at(1).i, 3) << "num_values counts nulls";
  EXPECT_EQ(header.at(5).at(2).i, enc_plain);
  EXPECT_EQ(header.at(5).at(3).i, enc_rle);
  const size_t body_at = at + d.consumed(sink.buffer.data() + at);
  // 4-byte length 2, bit-packed header 0x03, levels 1,0,1 → 0b101; then 5 and 7 as LE int64.
  const std::string expected = std::string{"\x02\x00\x00\x00\x03\x05", 6} + le64(5) + le64(7);
  EXPECT_EQ(sink.buffer.substr(body_at, static_cast<size_t>(header.at(2).i)), expected);
}

TEST(parquet_writer, a_string_column_gets_a_plain_dictionary_page_and_rle_dictionary_data_pages) {
  string_sink sink;
  writer w{{{"type", column_type::string, true}}, uncompressed(), sink};
  const char* types[] = {"play", "stop", "click"};
  for (int i = 0; i < 300; ++i) {
    w.set(0, types[i % 3]);
    w.end_row();
  }
  w.close();
  tvalue meta = footer(sink.buffer);
  const tvalue& cm = chunk_meta(meta, 0, 0);
  ASSERT_TRUE(cm.has(cm_dictionary_page_offset));
  EXPECT_LT(cm.at(cm_dictionary_page_offset).i, cm.at(cm_data_page_offset).i);
  auto pages = page_encodings(cm);
  EXPECT_EQ((pages[{page_dictionary, enc_plain}]), 1);
  EXPECT_EQ((pages[{page_data, enc_rle_dictionary}]), 1);
  EXPECT_EQ(pages.count({page_data, enc_plain}), 0u);
  // The dictionary page holds the three distinct values in first-seen order.
  const size_t at = static_cast<size_t>(cm.at(cm_dictionary_page_offset).i);
  tdecoder d{sink.buffer.data() + at, sink.buffer.size() - at};
  tvalue header = d.read_struct();
  EXPECT_EQ(header.at(1).i, page_dictionary);
  EXPECT_EQ(header.at(7).at(1).i, 3);
  const size_t body_at = at + d.consumed(sink.buffer.data() + at);
  EXPECT_EQ(sink.buffer.substr(body_at, static_cast<size_t>(header.at(2).i)),
            std::string("\x04\0\0\0play\x04\0\0\0stop\x05\0\0\0click", 25));
}

TEST(parquet_writer, a_dictionary_over_max_dictionary_bytes_falls_back_to_plain_pages) {
  string_sink sink;
  writer_options o = uncompressed();
  o.max_dictionary_bytes = 100;
  writer w{{{"note", column_type::string, true}}, o, sink};
  for (int i = 0; i < 50; ++i) {
    w.set(0, "unique-value-" + std::to_string(i));
    w.end_row();
  }
  w.close();
  tvalue meta = footer(sink.buffer);
  const tvalue& cm = chunk_meta(meta, 0, 0);
  auto pages = page_encodings(cm);
  EXPECT_EQ((pages[{page_dictionary, enc_plain}]), 1);
  EXPECT_EQ((pages[{page_data, enc_rle_dictionary}]), 1);
  EXPECT_EQ((pages[{page_data, enc_plain}]), 1);
  // 18-byte PLAIN entries: the 6th crosses 100 bytes and is the last in the dictionary.
  const size_t at = static_cast<size_t>(cm.at(cm_dictionary_page_offset).i);
  tdecoder d{sink.buffer.data() + at, sink.buffer.size() - at};
  EXPECT_EQ(d.read_struct().at(7).at(1).i, 6);
  const tvalue& stats = cm.at(cm_statistics);
  EXPECT_EQ(stats.at(st_min_value).bin, "unique-value-0");
  EXPECT_EQ(stats.at(st_max_value).bin, "unique-value-9") << "over dictionary and plain pages";
}

TEST(parquet_writer, row_groups_close_after_row_group_rows) {
  string_sink sink;
  writer_options o = uncompressed();
  o.row_group_rows = 4;
  writer w{{{"n", column_type::int64, true}}, o, sink};
  for (int i = 0; i < 10; ++i) {
    w.set(0, i);
    w.end_row();
  }
  w.close();
  tvalue meta = footer(sink.buffer);
  const auto& groups = meta.at(fm_row_groups).list;
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].at(rg_num_rows).i, 4);
  EXPECT_EQ(groups[1].at(rg_num_rows).i, 4);
  EXPECT_EQ(groups[2].at(rg_num_rows).i, 2);
  EXPECT_EQ(meta.at(fm_num_rows).i, 10);
  EXPECT_EQ(chunk_meta(meta, 1, 0).at(cm_statistics).at(st_min_value).bin, le64(4));
  EXPECT_EQ(chunk_meta(meta, 2, 0).at(cm_statistics).at(st_max_value).bin, le64(9));
  // Chunks follow each other: each data page offset is past the previous chunk.
  EXPECT_LT(chunk_meta(meta, 0, 0).at(cm_data_page_offset).i,
            chunk_meta(meta, 1, 0).at(cm_data_page_offset).i);
}

TEST(parquet_writer, row_groups_close_after_row_group_bytes) {
  string_sink sink;
  writer_options o = uncompressed();
  o.row_group_bytes = 200;
  writer w{{{"s", column_type::string, true}}, o, sink};
  const std::string value(46, 'x'); // 50 plain bytes each: a group closes every 4 rows
  for (int i = 0; i < 9; ++i) {
    w.set(0, value);
    w.end_row();
  }
  w.close();
  tvalue meta = footer(sink.buffer);
  const auto& groups = meta.at(fm_row_groups).list;
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].at(rg_num_rows).i, 4);
  EXPECT_EQ(groups[2].at(rg_num_rows).i, 1);
}

TEST(parquet_writer, small_data_pages_split_a_chunk_into_several_pages) {
  string_sink sink;
  writer_options o = uncompressed();
  o.data_page_bytes = 80; // ten int64 values per page
  writer w{{{"n", column_type::int64, true}}, o, sink};
  for (int i = 0; i < 35; ++i) {
    w.set(0, i);
    w.end_row();
  }
  w.close();
  tvalue meta = footer(sink.buffer);
  auto pages = page_encodings(chunk_meta(meta, 0, 0));
  EXPECT_EQ((pages[{page_data, enc_plain}]), 4);
}

TEST(parquet_writer, a_required_column_left_unset_throws_and_drops_only_that_row) {
  string_sink sink;
  writer w{event_schema(), uncompressed(), sink};
  w.set(0, "x"); // ts (required) missing
  w.set(2, 3);
  EXPECT_THROW(w.end_row(), std::invalid_argument);
  EXPECT_EQ(w.rows(), 0u);
  w.set(0, "y");
  w.set(1, 5);
  w.end_row();
  w.close();
  tvalue meta = footer(sink.buffer);
  EXPECT_EQ(meta.at(fm_num_rows).i, 1);
  const tvalue& offset = chunk_meta(meta, 0, 2).at(cm_statistics);
  EXPECT_EQ(offset.at(st_null_count).i, 1) << "the dropped row's offset did not leak into the next";
}

TEST(parquet_writer, a_value_of_the_wrong_type_or_column_index_throws) {
  string_sink sink;
  writer w{event_schema(), uncompressed(), sink};
  EXPECT_THROW(w.set(0, int64_t{1}), std::invalid_argument);
  EXPECT_THROW(w.set(1, "text"), std::invalid_argument);
  EXPECT_THROW(w.set(3, true), std::invalid_argument);
  EXPECT_THROW(w.set(4, 1.5), std::invalid_argument);
  EXPECT_THROW(w.set(6, "x"), std::out_of_range);
  w.close();
  EXPECT_THROW(w.set(0, "late"), std::logic_error);
  EXPECT_THROW(w.end_row(), std::logic_error);
}

TEST(parquet_writer, an_invalid_schema_is_rejected_at_construction) {
  string_sink sink;
  EXPECT_THROW((writer{{}, uncompressed(), sink}), std::invalid_argument);
  EXPECT_THROW((writer{{{"a", column_type::int64}, {"a", column_type::string}}, uncompressed(), sink}),
               std::invalid_argument);
}

TEST(parquet_writer, key_value_metadata_and_created_by_reach_the_footer) {
  string_sink sink;
  writer_options o = uncompressed();
  o.created_by = "sluice test";
  o.key_value_metadata = {{"lake.first_offset", "42"}, {"lake.last_offset", "99"}};
  writer w{{{"n", column_type::int64, true}}, o, sink};
  w.close();
  tvalue meta = footer(sink.buffer);
  EXPECT_EQ(meta.at(fm_created_by).bin, "sluice test");
  const auto& kv = meta.at(fm_kv).list;
  ASSERT_EQ(kv.size(), 2u);
  EXPECT_EQ(kv[0].at(1).bin, "lake.first_offset");
  EXPECT_EQ(kv[0].at(2).bin, "42");
  EXPECT_EQ(kv[1].at(2).bin, "99");
}

TEST(parquet_writer, summary_merges_statistics_over_all_row_groups) {
  string_sink sink;
  writer_options o = uncompressed();
  o.row_group_rows = 3;
  writer w{{{"s", column_type::string, false}, {"n", column_type::int64, false}}, o, sink};
  const std::vector<std::string> values{"m", "z", "", "c", "q", "k", "zz"};
  for (size_t i = 0; i < values.size(); ++i) {
    if (i % 3 != 2)
      w.set(0, values[i]);
    w.set(1, static_cast<int64_t>(i) * 10 - 20);
    w.end_row();
  }
  w.close();
  auto s = w.summary();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "s");
  EXPECT_EQ(s[0].null_count, 2u);
  EXPECT_EQ(s[0].min, "c");
  EXPECT_EQ(s[0].max, "zz");
  EXPECT_EQ(s[1].null_count, 0u);
  EXPECT_EQ(s[1].min, le64(-20));
  EXPECT_EQ(s[1].max, le64(40));
}

TEST(parquet_writer, fd_sink_writes_the_same_bytes_as_string_sink) {
  temp_dir dir;
  const std::string path = dir.sub("f.parquet");
  auto write = [](byte_sink& out) {
    writer w{event_schema(), writer_options{}, out};
    for (int i = 0; i < 1000; ++i) {
      w.set(0, "id-" + std::to_string(i));
      w.set(1, 1732233600000 + i);
      w.set(5, i % 7 == 0 ? "error" : "play");
      w.end_row();
    }
    return w.close();
  };
  string_sink mem;
  const uint64_t size = write(mem);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  fd_sink file{fd};
  EXPECT_EQ(write(file), size);
  file.sync();
  ::close(fd);
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), mem.buffer);
  footer(content.str());
}

TEST(parquet_writer, approx_bytes_grows_with_buffered_rows_before_anything_is_flushed) {
  string_sink sink;
  writer w{{{"s", column_type::string, true}}, uncompressed(), sink};
  const uint64_t empty = w.approx_bytes();
  for (int i = 0; i < 100; ++i) {
    w.set(0, std::string(100, static_cast<char>('a' + i % 26)) + std::to_string(i));
    w.end_row();
  }
  EXPECT_EQ(sink.buffer.size(), 4u) << "only the magic is written before the row group closes";
  EXPECT_GT(w.approx_bytes(), empty + 100 * 100);
}

TEST(parquet_writer, codec_and_column_type_names_round_trip) {
  for (codec c : {codec::none, codec::snappy, codec::zstd})
    EXPECT_EQ(parse_codec(to_string(c)), c);
  for (column_type t : {column_type::string, column_type::int64, column_type::float64,
                        column_type::boolean, column_type::timestamp_ms})
    EXPECT_EQ(parse_column_type(to_string(t)), t);
  EXPECT_FALSE(parse_codec("gzip"));
  EXPECT_FALSE(parse_column_type("int32"));
}
