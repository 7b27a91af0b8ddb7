// `sluice replay` input and state: decompression, lines, NDJSON and CSV records with their line
// numbers and typing, resume positions, the state file.

#include "app/replay_input.hpp"
#include "app/replay_state.hpp"

#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice::replay;
using sluice::persistence::testing::temp_dir;

namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary};
  out << bytes;
}

std::string gzip(const std::string& text) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY); // gzip
  std::string out(deflateBound(&z, text.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd(const std::string& text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  auto n = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::string read_all(const std::string& path) {
  byte_source src{path};
  std::string out;
  char buf[4096];
  while (size_t n = src.read(buf, sizeof buf))
    out.append(buf, n);
  return out;
}

std::string sample_text(size_t lines) {
  std::string s;
  for (size_t i = 1; i <= lines; ++i)
    s += "{\"type\":\"play\",\"device_id\":\"d" + std::to_string(i % 7) + "\",\"ts\":" + std::to_string(i)
         + "}\n";
  return s;
}

std::vector<record> read_records(const std::string& path, format fmt, const csv_options& csv = {},
                                 position start = {}) {
  auto reader = open_reader(path, fmt, "0123456789abcdef0123", csv, start);
  std::vector<record> out;
  record r;
  while (reader->next(r))
    out.push_back(r);
  return out;
}

} // namespace

TEST(app_replay, compression_is_detected_by_magic_bytes_not_by_name) {
  EXPECT_EQ(detect_compression("\x1f\x8b\x08"), compression::gzip);
  EXPECT_EQ(detect_compression("\x28\xb5\x2f\xfd\x00"), compression::zstd);
  EXPECT_EQ(detect_compression("{\"a\":1}"), compression::none);
  EXPECT_EQ(detect_compression(""), compression::none);
  temp_dir dir;
  auto text = sample_text(100);
  write_file(dir.sub("named.ndjson"), zstd(text)); // a zstd file without .zst
  byte_source src{dir.sub("named.ndjson")};
  EXPECT_EQ(src.kind(), compression::zstd);
  EXPECT_EQ(read_all(dir.sub("named.ndjson")), text);
}

TEST(app_replay, gzip_round_trips_including_concatenated_members) {
  temp_dir dir;
  auto a = sample_text(50000);
  auto b = sample_text(10);
  write_file(dir.sub("x.gz"), gzip(a) + gzip(b));
  EXPECT_EQ(read_all(dir.sub("x.gz")), a + b);
  byte_source src{dir.sub("x.gz")};
  EXPECT_EQ(src.kind(), compression::gzip);
}

TEST(app_replay, zstd_round_trips_including_several_frames) {
  temp_dir dir;
  auto a = sample_text(50000);
  auto b = sample_text(3);
  write_file(dir.sub("x.zst"), zstd(a) + zstd(b));
  EXPECT_EQ(read_all(dir.sub("x.zst")), a + b);
}

TEST(app_replay, truncated_compressed_files_are_errors_naming_the_file) {
  temp_dir dir;
  auto text = sample_text(20000);
  auto gz = gzip(text);
  auto zs = zstd(text);
  write_file(dir.sub("t.gz"), gz.substr(0, gz.size() / 2));
  write_file(dir.sub("t.zst"), zs.substr(0, zs.size() / 2));
  for (auto name : {"t.gz", "t.zst"}) {
    try {
      read_all(dir.sub(name));
      FAIL() << name << " read without error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string{e.what()}.find(name), std::string::npos) << e.what();
      EXPECT_NE(std::string{e.what()}.find("truncated"), std::string::npos) << e.what();
    }
  }
}

TEST(app_replay, lines_have_numbers_and_byte_offsets_across_buffer_boundaries) {
  temp_dir dir;
  std::string long_line(3 << 20, 'x'); // longer than the 1 MiB read buffer
  write_file(dir.sub("l.txt"), "a\n\n" + long_line + "\nlast");
  byte_source src{dir.sub("l.txt")};
  line_reader lines{src};
  std::string_view l;
  uint64_t n = 0;
  ASSERT_TRUE(lines.next(l, n));
  EXPECT_EQ(l, "a");
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(lines.offset(), 2u);
  ASSERT_TRUE(lines.next(l, n));
  EXPECT_EQ(l, "");
  EXPECT_EQ(n, 2u);
  ASSERT_TRUE(lines.next(l, n));
  EXPECT_EQ(l.size(), long_line.size());
  EXPECT_EQ(n, 3u);
  ASSERT_TRUE(lines.next(l, n));
  EXPECT_EQ(l, "last");
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(lines.offset(), 3 + long_line.size() + 1 + 4);
  EXPECT_FALSE(lines.next(l, n));
}

TEST(app_replay, ndjson_records_carry_line_numbers_and_local_errors) {
  temp_dir dir;
  write_file(dir.sub("e.ndjson"),
             "{\"type\":\"play\",\"device_id\":\"a\",\"ts\":1,\"id\":\"mine\"}\n"
             "\n"
             "   \n"
             "{\"type\":\"play\",\"device_id\":\"a\",\"ts\":2}\r\n"
             "{\"type\":\"play\",\"device_id\":\n"
             "[1,2]\n"
             "{\"type\":\"play\",\"device_id\":\"a\",\"ts\":3,\"id\":null}\n"
             "{}");
  auto recs = read_records(dir.sub("e.ndjson"), format::ndjson);
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_EQ(recs[0].line, 1u);
  EXPECT_EQ(recs[0].json, "{\"type\":\"play\",\"device_id\":\"a\",\"ts\":1,\"id\":\"mine\"}");
  EXPECT_EQ(recs[1].line, 4u);
  EXPECT_EQ(recs[1].json, "{\"type\":\"play\",\"device_id\":\"a\",\"ts\":2,"
                          "\"id\":\"replay-0123456789abcdef-4\"}");
  EXPECT_EQ(recs[2].line, 5u);
  EXPECT_NE(recs[2].error.find("malformed JSON"), std::string::npos) << recs[2].error;
  EXPECT_EQ(recs[2].raw, "{\"type\":\"play\",\"device_id\":");
  EXPECT_EQ(recs[3].line, 6u);
  EXPECT_EQ(recs[3].error, "the line is not a JSON object");
  EXPECT_EQ(recs[4].line, 7u);
  // A later key wins in the node's decoder: the derived id replaces the null one.
  EXPECT_EQ(recs[4].json, "{\"type\":\"play\",\"device_id\":\"a\",\"ts\":3,\"id\":null,"
                          "\"id\":\"replay-0123456789abcdef-7\"}");
  EXPECT_EQ(recs[5].line, 8u);
  EXPECT_EQ(recs[5].json, "{\"id\":\"replay-0123456789abcdef-8\"}");
}

TEST(app_replay, derived_ids_depend_on_content_and_line_only) {
  temp_dir dir;
  write_file(dir.sub("a.ndjson"), sample_text(3));
  write_file(dir.sub("b.ndjson"), sample_text(3));
  write_file(dir.sub("c.ndjson"), sample_text(4));
  auto ka = file_content_key(dir.sub("a.ndjson"));
  EXPECT_EQ(ka.size(), 64u);
  EXPECT_EQ(ka, file_content_key(dir.sub("b.ndjson")));
  EXPECT_NE(ka, file_content_key(dir.sub("c.ndjson")));
  EXPECT_EQ(derived_id(ka, 12), "replay-" + ka.substr(0, 16) + "-12");
}

TEST(app_replay, csv_follows_rfc_4180_and_reports_the_first_line_of_a_record) {
  temp_dir dir;
  write_file(dir.sub("q.csv"),
             "type,device_id,ts,note\r\n"
             "play,tv-1,1,\"say \"\"hi\"\", then\r\nleave\"\r\n"
             "\r\n"
             "play,tv-2,2,plain\r\n"
             "play,tv-3,3\r\n"
             "play,tv-4,4,a,b\n"
             "play,tv\"5,5,x\n"
             "play,tv-6,6,\"unterminated\n");
  auto recs = read_records(dir.sub("q.csv"), format::csv);
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_EQ(recs[0].line, 2u);
  EXPECT_EQ(recs[0].error, "");
  EXPECT_EQ(recs[0].json, "{\"type\":\"play\",\"device_id\":\"tv-1\",\"ts\":1,"
                          "\"note\":\"say \\\"hi\\\", then\\r\\nleave\","
                          "\"id\":\"replay-0123456789abcdef-2\"}");
  EXPECT_EQ(recs[0].raw, "play,tv-1,1,\"say \"\"hi\"\", then\nleave\"");
  EXPECT_EQ(recs[1].line, 5u);
  EXPECT_EQ(recs[1].error, "");
  EXPECT_EQ(recs[2].line, 6u);
  EXPECT_EQ(recs[2].error, "wrong column count: 3 cells, the header has 4");
  EXPECT_EQ(recs[3].line, 7u);
  EXPECT_EQ(recs[3].error, "wrong column count: 5 cells, the header has 4");
  EXPECT_EQ(recs[4].line, 8u);
  EXPECT_NE(recs[4].error.find("malformed CSV"), std::string::npos) << recs[4].error;
  EXPECT_EQ(recs[5].line, 9u);
  EXPECT_NE(recs[5].error.find("unterminated"), std::string::npos) << recs[5].error;
}

TEST(app_replay, csv_cells_are_typed_unless_csv_strings) {
  temp_dir dir;
  write_file(dir.sub("t.csv"),
             "id,type,device_id,ts,n,f,b,zip,empty,quoted_empty,player.codec,player.bitrate\n"
             ",play,42,2024-11-22T00:00:00Z,-12,1.5e3,true,007,,\"\",h264,\n"
             "x-1,play,d,1732233600000,12abc,.5,False,0,,,,\n");
  auto recs = read_records(dir.sub("t.csv"), format::csv);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].json,
            "{\"type\":\"play\",\"device_id\":\"42\",\"ts\":\"2024-11-22T00:00:00Z\",\"n\":-12,"
            "\"f\":1.5e3,\"b\":true,\"zip\":\"007\",\"quoted_empty\":\"\","
            "\"player\":{\"codec\":\"h264\"},\"id\":\"replay-0123456789abcdef-2\"}");
  // An empty id cell is absent (an id is derived); a wholly empty nested object is left out.
  EXPECT_EQ(recs[1].json, "{\"id\":\"x-1\",\"type\":\"play\",\"device_id\":\"d\","
                          "\"ts\":1732233600000,\"n\":\"12abc\",\"f\":\".5\",\"b\":\"False\","
                          "\"zip\":0}");
  csv_options strings;
  strings.strings = true;
  strings.flat = true;
  auto s = read_records(dir.sub("t.csv"), format::csv, strings);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].json,
            "{\"type\":\"play\",\"device_id\":\"42\",\"ts\":\"2024-11-22T00:00:00Z\",\"n\":\"-12\","
            "\"f\":\"1.5e3\",\"b\":\"true\",\"zip\":\"007\",\"quoted_empty\":\"\","
            "\"player.codec\":\"h264\",\"id\":\"replay-0123456789abcdef-2\"}");
  EXPECT_NE(s[1].json.find("\"ts\":1732233600000"), std::string::npos) << s[1].json;
}

TEST(app_replay, bad_csv_headers_are_refused_with_the_column) {
  temp_dir dir;
  auto expect_error = [&](const std::string& header, const std::string& words) {
    write_file(dir.sub("h.csv"), header + "\n1,2,3\n");
    try {
      read_records(dir.sub("h.csv"), format::csv);
      FAIL() << header << " accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string{e.what()}.find(words), std::string::npos) << e.what();
    }
  };
  expect_error("a,b,a", "columns 1 and 3 are both named 'a'");
  expect_error("a,a.b,c", "header column 2 'a.b' conflicts");
  expect_error("a,,c", "header column 2 is empty");
  expect_error("a,b..c,d", "empty path segment");
}

TEST(app_replay, readers_resume_at_a_saved_position_with_the_same_lines_and_ids) {
  temp_dir dir;
  std::string csv = "type,device_id,ts\n";
  for (int i = 1; i <= 300; ++i)
    csv += "play,\"d\n" + std::to_string(i) + "\"," + std::to_string(i) + "\n"; // 2 lines each
  write_file(dir.sub("r.csv"), csv);
  write_file(dir.sub("r.csv.gz"), gzip(csv));
  write_file(dir.sub("r.ndjson.zst"), zstd(sample_text(300)));
  for (auto [name, fmt] : {std::pair{"r.csv", format::csv}, std::pair{"r.csv.gz", format::csv},
                           std::pair{"r.ndjson.zst", format::ndjson}}) {
    EXPECT_EQ(guess_format(dir.sub(name)), fmt) << name;
    auto all = read_records(dir.sub(name), fmt);
    ASSERT_EQ(all.size(), 300u) << name;
    auto reader = open_reader(dir.sub(name), fmt, "0123456789abcdef0123");
    record r;
    for (int i = 0; i < 117; ++i)
      ASSERT_TRUE(reader->next(r));
    auto at = reader->after();
    auto rest = read_records(dir.sub(name), fmt, {}, at);
    ASSERT_EQ(rest.size(), 300u - 117u) << name;
    for (size_t i = 0; i < rest.size(); ++i) {
      EXPECT_EQ(rest[i].line, all[117 + i].line) << name;
      EXPECT_EQ(rest[i].json, all[117 + i].json) << name;
    }
  }
}

TEST(app_replay, the_state_file_round_trips_and_refuses_foreign_content) {
  temp_dir dir;
  auto path = dir.sub("s.replay-state");
  EXPECT_TRUE(load_state(path).files.empty()); // absent: nothing acknowledged yet
  replay_state s;
  s.files.push_back({"in/a \"q\".csv", "abc", {1234, 57}, 50, 48, 2, false});
  s.files.push_back({"b.ndjson.gz", "def", {99, 10}, 9, 9, 0, true});
  save_state(path, s);
  auto back = load_state(path);
  ASSERT_EQ(back.files.size(), 2u);
  EXPECT_EQ(back.files[0].path, "in/a \"q\".csv");
  EXPECT_EQ(back.files[0].next.byte, 1234u);
  EXPECT_EQ(back.files[0].next.line, 57u);
  EXPECT_EQ(back.files[0].records, 50u);
  EXPECT_EQ(back.files[0].accepted, 48u);
  EXPECT_EQ(back.files[0].rejected, 2u);
  EXPECT_FALSE(back.files[0].done);
  EXPECT_TRUE(back.files[1].done);
  ASSERT_NE(back.find("b.ndjson.gz"), nullptr);
  EXPECT_EQ(back.find("c"), nullptr);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  write_file(path, "{\"not\":\"state\"}");
  EXPECT_THROW(load_state(path), std::runtime_error);
  EXPECT_EQ(state_path("", "", "d/x.csv"), "d/x.csv.replay-state");
  EXPECT_EQ(state_path("", "/s", "d/x.csv"), "/s/x.csv.replay-state");
  EXPECT_EQ(state_path("f", "/s", "d/x.csv"), "f");
}
