// The Thrift compact decoder and the Parquet reader: files written by the writer read back to the
// rows that went in (every type, nulls, codecs, dictionary and PLAIN fallback, several row groups
// and pages), copy_rows merges files, and corrupt input fails with a clear error.

#include "persistence/parquet_reader.hpp"
#include "persistence/parquet_writer.hpp"
#include "persistence/thrift_compact.hpp"

#include "parquet_test_helpers.hpp"
#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <variant>
#include <vector>

using namespace sluice::persistence::parquet;
namespace thrift = sluice::persistence::thrift;
using sluice::persistence::parquet_testing::event_schema;
using sluice::persistence::testing::temp_dir;

namespace {

/// An owning cell, so rows outlive the reader's callback.
using value = std::variant<std::monostate, std::string, int64_t, double, bool>;
using row_values = std::vector<value>;

value own(const cell& c) {
  if (auto s = std::get_if<std::string_view>(&c))
    return std::string{*s};
  if (auto i = std::get_if<int64_t>(&c))
    return *i;
  if (auto d = std::get_if<double>(&c))
    return *d;
  if (auto b = std::get_if<bool>(&c))
    return *b;
  return std::monostate{};
}

std::string write_file(const std::vector<column_spec>& schema, const writer_options& opts,
                       const std::vector<row_values>& rows) {
  string_sink sink;
  writer w{schema, opts, sink};
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      if (auto s = std::get_if<std::string>(&row[c]))
        w.set(c, std::string_view{*s});
      else if (auto i = std::get_if<int64_t>(&row[c]))
        w.set(c, *i);
      else if (auto d = std::get_if<double>(&row[c]))
        w.set(c, *d);
      else if (auto b = std::get_if<bool>(&row[c]))
        w.set(c, *b);
    }
    w.end_row();
  }
  w.close();
  return std::move(sink.buffer);
}

std::vector<row_values> read_rows(const reader& r) {
  std::vector<row_values> out;
  r.for_each_row([&](const std::vector<cell>& row) {
    row_values v;
    for (const auto& c : row)
      v.push_back(own(c));
    out.push_back(std::move(v));
  });
  return out;
}

/// Deterministic event rows with edge values and a different null pattern per column.
std::vector<row_values> event_rows(size_t n, int64_t first_ts = 1732233600000) {
  const char* types[] = {"play", "stop", "", "click"};
  const std::vector<int64_t> ints{0, -1, std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max(), 42};
  const std::vector<double> doubles{0.5, -0.0, std::numeric_limits<double>::infinity(), -1e300,
                                    std::numeric_limits<double>::denorm_min()};
  std::vector<row_values> rows;
  for (size_t i = 0; i < n; ++i) {
    row_values r(6);
    r[0] = "id-" + std::to_string(i) + (i % 17 == 0 ? std::string(300, 'x') : std::string{});
    r[1] = first_ts + static_cast<int64_t>(i);
    if (i % 3 != 1)
      r[2] = ints[i % ints.size()] + (i % 5 == 4 ? static_cast<int64_t>(i) : 0);
    if (i % 4 != 0)
      r[3] = doubles[i % doubles.size()];
    if (i % 5 != 2)
      r[4] = i % 2 == 0;
    if (i % 7 != 3)
      r[5] = i % 11 == 0 ? std::string("nul\0byte", 8) : std::string{types[i % 4]};
    rows.push_back(std::move(r));
  }
  return rows;
}

writer_options with_codec(codec c) {
  writer_options o;
  o.compression = c;
  return o;
}

/// Reads every row of `bytes`; "" on success, else the std::runtime_error's message. Any other
/// exception (or a crash) fails the test.
std::string read_outcome(std::string bytes) {
  try {
    reader r{std::move(bytes)};
    size_t n = 0;
    r.for_each_row([&](const std::vector<cell>& row) { n += row.size(); });
    return {};
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

} // namespace

// -- Thrift compact decoder -------------------------------------------------------------------------

TEST(thrift_compact_reader, decodes_what_the_encoder_writes_field_by_field) {
  std::string out;
  thrift::compact_writer w{out};
  w.field_i32(1, -7);
  w.field_i64(2, std::numeric_limits<int64_t>::min());
  w.field_binary(3, "hello");
  w.field_bool(4, true);
  w.field_bool(5, false);
  w.field_i16(40, -300); // long header form
  w.field_struct(41);
  w.field_i32(1, 9);
  w.end_struct();
  w.field_list(42, thrift::compact_type::i64, 20); // long list form
  for (int i = 0; i < 20; ++i)
    w.elem_i64(i * 1000);
  w.end_struct();

  thrift::compact_reader r{out};
  r.begin_struct();
  auto f = r.read_field();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->id, 1);
  EXPECT_EQ(r.read_i32(), -7);
  f = r.read_field();
  EXPECT_EQ(f->id, 2);
  EXPECT_EQ(r.read_i64(), std::numeric_limits<int64_t>::min());
  f = r.read_field();
  EXPECT_EQ(f->type, thrift::compact_type::binary);
  EXPECT_EQ(r.read_binary(), "hello");
  f = r.read_field();
  EXPECT_TRUE(f->is_bool());
  EXPECT_TRUE(f->bool_value());
  f = r.read_field();
  EXPECT_EQ(f->id, 5);
  EXPECT_FALSE(f->bool_value());
  f = r.read_field();
  EXPECT_EQ(f->id, 40);
  EXPECT_EQ(r.read_i16(), -300);
  f = r.read_field();
  EXPECT_EQ(f->id, 41);
  r.begin_struct();
  auto inner = r.read_field();
  EXPECT_EQ(inner->id, 1) << "field ids restart inside a nested struct";
  EXPECT_EQ(r.read_i32(), 9);
  EXPECT_FALSE(r.read_field());
  f = r.read_field();
  EXPECT_EQ(f->id, 42) << "the outer struct's delta base is restored";
  auto l = r.read_list();
  EXPECT_EQ(l.element, thrift::compact_type::i64);
  ASSERT_EQ(l.size, 20u);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(r.read_i64(), i * 1000);
  EXPECT_FALSE(r.read_field());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(thrift_compact_reader, skips_unknown_fields_of_every_type_including_maps_sets_and_doubles) {
  // Hand-assembled: fields a reader does not know, then field 20 (i32 5).
  const char raw[] = "\x17" "\x00\x00\x00\x00\x00\x00\xF0\x3F" // field 1: double 1.0
                     "\x1B" "\x02\x55" "\x01\x02" "\x03\x04"     // field 2: map<i32,i32>, 2 entries
                     "\x1A" "\x11" "\x01"                         // field 3: set<bool> {true}
                     "\x1C" "\x19\x28" "\x01" "a" "\x01" "b"         // field 4: struct {list<binary>,
                     "\x11" "\x00"                                 //   bool true}
                     "\x13" "\x7F"                                 // field 5: byte
                     "\x05\x28" "\x0A"                             // field 20 (long header): i32 5
                     "\x00";
  const std::string bytes{raw, sizeof raw - 1};
  thrift::compact_reader r{bytes};
  r.begin_struct();
  std::optional<int32_t> known;
  while (auto f = r.read_field()) {
    if (f->id == 20)
      known = r.read_i32();
    else
      r.skip(*f);
  }
  EXPECT_EQ(known, 5);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(thrift_compact_reader, every_truncation_of_a_valid_message_throws_a_runtime_error) {
  std::string out;
  thrift::compact_writer w{out};
  w.field_i64(1, 123456789);
  w.field_binary(2, "some text");
  w.field_list(3, thrift::compact_type::structure, 2);
  w.begin_struct();
  w.field_i32(1, 1);
  w.end_struct();
  w.begin_struct();
  w.end_struct();
  w.end_struct();
  for (size_t len = 0; len < out.size(); ++len) {
    thrift::compact_reader r{std::string_view{out}.substr(0, len)};
    auto skip_all = [&] {
      r.begin_struct();
      while (auto f = r.read_field())
        r.skip(*f);
    };
    EXPECT_THROW(skip_all(), std::runtime_error) << "prefix of " << len << " bytes";
  }
}

TEST(thrift_compact_reader, oversized_lists_overlong_varints_and_deep_nesting_are_rejected) {
  // A list claiming 2^28 elements in a few bytes is refused before anything is allocated.
  const std::string huge_list{"\x19\xF5\x80\x80\x80\x80\x01\x00", 8};
  thrift::compact_reader a{huge_list};
  a.begin_struct();
  auto f = a.read_field();
  EXPECT_THROW(a.skip(*f), std::runtime_error);

  const std::string long_varint{"\x16\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x01\x00", 13};
  thrift::compact_reader b{long_varint};
  b.begin_struct();
  f = b.read_field();
  EXPECT_THROW(b.read_i64(), std::runtime_error);

  std::string deep(thrift::compact_reader::max_depth * 2, '\x1C'); // struct field in struct ...
  deep.append(thrift::compact_reader::max_depth * 2 + 1, '\0');
  thrift::compact_reader c{deep};
  c.begin_struct();
  f = c.read_field();
  EXPECT_THROW(c.skip(*f), std::runtime_error);

  const std::string bad_type{"\x1E\x00", 2}; // type nibble 14 does not exist
  thrift::compact_reader d{bad_type};
  d.begin_struct();
  EXPECT_THROW(d.read_field(), std::runtime_error);
}

// -- reader: round trips ----------------------------------------------------------------------------

TEST(parquet_reader, the_schema_is_reconstructed_with_names_types_and_required) {
  const auto schema = event_schema();
  reader r{write_file(schema, with_codec(codec::none), {})};
  ASSERT_EQ(r.schema().size(), schema.size());
  for (size_t i = 0; i < schema.size(); ++i) {
    EXPECT_EQ(r.schema()[i].name, schema[i].name);
    EXPECT_EQ(r.schema()[i].type, schema[i].type) << schema[i].name;
    EXPECT_EQ(r.schema()[i].required, schema[i].required) << schema[i].name;
  }
  EXPECT_EQ(r.rows(), 0u);
  EXPECT_EQ(r.row_groups(), 0u);
  EXPECT_TRUE(read_rows(r).empty());
}

TEST(parquet_reader, every_type_and_null_round_trips_with_every_codec) {
  const auto rows = event_rows(500);
  for (codec c : {codec::none, codec::snappy, codec::zstd}) {
    SCOPED_TRACE(std::string{to_string(c)});
    reader r{write_file(event_schema(), with_codec(c), rows)};
    EXPECT_EQ(r.rows(), rows.size());
    EXPECT_EQ(r.row_groups(), 1u);
    EXPECT_EQ(read_rows(r), rows);
  }
}

TEST(parquet_reader, a_nan_double_reads_back_as_nan) {
  const std::vector<row_values> rows{{std::numeric_limits<double>::quiet_NaN()}, {1.5}};
  reader r{write_file({{"d", column_type::float64, true}}, with_codec(codec::zstd), rows)};
  auto back = read_rows(r);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_TRUE(std::isnan(std::get<double>(back[0][0])));
  EXPECT_EQ(back[1], rows[1]);
}

TEST(parquet_reader, all_null_and_single_value_dictionary_columns_round_trip) {
  std::vector<row_values> rows;
  for (int i = 0; i < 40; ++i)
    rows.push_back({std::monostate{}, std::string{"same"}, std::monostate{}});
  reader r{write_file({{"a", column_type::string, false},
                       {"b", column_type::string, true},
                       {"c", column_type::boolean, false}},
                      with_codec(codec::snappy), rows)};
  EXPECT_EQ(read_rows(r), rows);
}

TEST(parquet_reader, dictionary_pages_and_the_plain_fallback_past_max_dictionary_bytes_round_trip) {
  std::vector<row_values> rows;
  for (int i = 0; i < 300; ++i) // early rows repeat (dictionary), later ones are all distinct
    rows.push_back({i < 100 ? std::string{"k"} + std::to_string(i % 5)
                            : "unique-value-" + std::to_string(i),
                    i % 9 == 0 ? value{} : value{std::string{"v"} + std::to_string(i % 3)}});
  for (codec c : {codec::none, codec::zstd}) {
    writer_options o = with_codec(c);
    o.max_dictionary_bytes = 200;
    o.data_page_bytes = 256;
    reader r{write_file({{"key", column_type::string, true}, {"tag", column_type::string, false}},
                        o, rows)};
    EXPECT_EQ(read_rows(r), rows) << to_string(c);
  }
}

TEST(parquet_reader, several_row_groups_and_pages_read_back_in_order) {
  const auto rows = event_rows(1000);
  writer_options o = with_codec(codec::zstd);
  o.row_group_rows = 137;
  o.data_page_bytes = 200;
  reader r{write_file(event_schema(), o, rows)};
  EXPECT_EQ(r.row_groups(), (rows.size() + o.row_group_rows - 1) / o.row_group_rows);
  EXPECT_EQ(r.rows(), rows.size());
  EXPECT_EQ(read_rows(r), rows);
}

TEST(parquet_reader, key_value_metadata_reads_back_in_order) {
  writer_options o = with_codec(codec::none);
  o.key_value_metadata = {{"lake.first_offset", "42"}, {"lake.last_offset", "99"}, {"empty", ""}};
  reader r{write_file({{"n", column_type::int64, true}}, o, {{int64_t{1}}})};
  EXPECT_EQ(r.key_value_metadata(), o.key_value_metadata);
}

TEST(parquet_reader, open_file_reads_a_file_from_disk_and_names_a_missing_path) {
  temp_dir dir;
  const std::string path = dir.sub("f.parquet");
  const auto rows = event_rows(50);
  {
    std::ofstream out(path, std::ios::binary);
    out << write_file(event_schema(), with_codec(codec::zstd), rows);
  }
  EXPECT_EQ(read_rows(reader::open_file(path)), rows);
  try {
    reader::open_file(dir.sub("missing.parquet"));
    FAIL() << "opening a missing file did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string{e.what()}.find("missing.parquet"), std::string::npos) << e.what();
  }
}

// -- copy_rows -------------------------------------------------------------------------------------

TEST(parquet_reader, copy_rows_merges_two_files_into_one_whose_rows_are_their_concatenation) {
  const auto first = event_rows(300);
  const auto second = event_rows(200, 1800000000000);
  writer_options small = with_codec(codec::snappy);
  small.row_group_rows = 64;
  reader a{write_file(event_schema(), small, first)};
  reader b{write_file(event_schema(), with_codec(codec::zstd), second)};

  string_sink sink;
  writer merged{event_schema(), with_codec(codec::zstd), sink};
  copy_rows(a, merged);
  copy_rows(b, merged);
  merged.close();

  auto expected = first;
  expected.insert(expected.end(), second.begin(), second.end());
  reader m{std::move(sink.buffer)};
  EXPECT_EQ(m.rows(), expected.size());
  EXPECT_EQ(read_rows(m), expected);
}

TEST(parquet_reader, copy_rows_matches_columns_by_name_whatever_their_order) {
  const std::vector<row_values> rows{{std::string{"a"}, int64_t{1}}, {value{}, int64_t{2}}};
  reader from{write_file({{"s", column_type::string, false}, {"n", column_type::int64, true}},
                         with_codec(codec::none), rows)};
  string_sink sink;
  writer to{{{"n", column_type::int64, true}, {"s", column_type::string, false}},
            with_codec(codec::none), sink};
  copy_rows(from, to);
  to.close();
  std::vector<row_values> expected;
  for (const auto& r : rows)
    expected.push_back({r[1], r[0]});
  EXPECT_EQ(read_rows(reader{std::move(sink.buffer)}), expected);
}

TEST(parquet_reader, copy_rows_rejects_a_different_schema_and_names_the_column) {
  reader from{write_file(event_schema(), with_codec(codec::none), event_rows(3))};
  auto expect_rejected = [&](std::vector<column_spec> schema, const std::string& column) {
    string_sink sink;
    writer to{std::move(schema), with_codec(codec::none), sink};
    try {
      copy_rows(from, to);
      ADD_FAILURE() << "no error for column " << column;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string{e.what()}.find("'" + column + "'"), std::string::npos) << e.what();
    }
    EXPECT_EQ(to.rows(), 0u) << "nothing is copied when the schemas differ";
  };
  auto wrong_type = event_schema();
  wrong_type[2].type = column_type::float64;
  expect_rejected(wrong_type, "offset");
  auto missing = event_schema();
  missing.pop_back();
  expect_rejected(missing, "type");
  auto extra = event_schema();
  extra.push_back({"more", column_type::int64, false});
  expect_rejected(extra, "more");
  auto stricter = event_schema();
  stricter[3].required = true;
  expect_rejected(stricter, "score");
}

// -- corrupt input ---------------------------------------------------------------------------------

TEST(parquet_reader, a_bad_leading_magic_is_reported_as_not_parquet) {
  std::string file = write_file(event_schema(), with_codec(codec::none), event_rows(5));
  file[0] = 'X';
  EXPECT_NE(read_outcome(file).find("bad magic at the start"), std::string::npos);
  EXPECT_NE(read_outcome("PAR1").find("at least 12"), std::string::npos);
  EXPECT_NE(read_outcome("").find("at least 12"), std::string::npos);
}

TEST(parquet_reader, a_truncated_footer_is_reported_and_every_prefix_of_a_file_fails_cleanly) {
  const std::string file = write_file(event_schema(), with_codec(codec::zstd), event_rows(20));
  EXPECT_NE(read_outcome(file.substr(0, file.size() - 1)).find("bad magic at the end"),
            std::string::npos);
  // Cut inside the footer but keep a valid tail: the length then exceeds what is left.
  const std::string cut = file.substr(0, 8) + file.substr(file.size() - 8);
  EXPECT_NE(read_outcome(cut).find("footer length"), std::string::npos) << read_outcome(cut);
  for (size_t len = 0; len < file.size(); ++len)
    EXPECT_FALSE(read_outcome(file.substr(0, len)).empty()) << "prefix of " << len << " bytes";
}

TEST(parquet_reader, a_garbage_page_header_is_reported_with_column_and_row_group) {
  std::string file = write_file(event_schema(), with_codec(codec::none), event_rows(5));
  // The first column chunk's first page header follows the leading magic.
  for (size_t i = 4; i < 12; ++i)
    file[i] = '\xFF';
  const std::string error = read_outcome(file);
  EXPECT_NE(error.find("column 'id' of row group 0"), std::string::npos) << error;
  EXPECT_NE(error.find("page header"), std::string::npos) << error;
}

TEST(parquet_reader, a_garbage_footer_is_reported_as_corrupt) {
  std::string file = write_file(event_schema(), with_codec(codec::none), event_rows(5));
  constexpr size_t tail = 8; // footer length + magic
  uint32_t len;
  std::memcpy(&len, file.data() + file.size() - tail, sizeof len);
  const size_t start = file.size() - tail - len; // overwrite the head of the footer
  for (size_t i = start; i < start + 6; ++i)
    file[i] = '\xEE';
  const std::string error = read_outcome(file);
  EXPECT_NE(error.find("corrupt footer"), std::string::npos) << error;
}

TEST(parquet_reader, every_single_byte_corruption_reads_or_fails_with_a_runtime_error) {
  for (codec c : {codec::none, codec::snappy, codec::zstd}) {
    writer_options o = with_codec(c);
    o.row_group_rows = 7;
    const std::string file = write_file(event_schema(), o, event_rows(16));
    size_t failures = 0;
    for (size_t i = 0; i < file.size(); ++i) {
      std::string bad = file;
      bad[i] = static_cast<char>(bad[i] ^ 0x5A);
      if (!read_outcome(std::move(bad)).empty())
        ++failures;
    }
    // Most bytes are structure (headers, footer, compressed data): changing them must be noticed.
    EXPECT_GT(failures, file.size() / 4) << to_string(c);
  }
}
