// sluice_parquet_tool: writes a deterministic Parquet file with every column type, some nulls,
// low- and high-cardinality strings and timestamps, plus the same rows as NDJSON, so that
// independent readers (DuckDB, hyparquet) can be checked against what was written.
//
//   sluice_parquet_tool OUT.parquet [--rows N] [--codec zstd|snappy|none] [--row-group-rows K]
//                       [--max-dictionary-bytes B] [--data-page-bytes P]
//
// Writes OUT.parquet and OUT.expected.ndjson (one object per row; int64 columns as decimal
// strings, since they exceed 2^53; timestamps as epoch milliseconds; null for nulls). Prints
// one JSON line {"rows":N,"bytes":SIZE,"codec":"..."}.

#include "persistence/parquet_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace pq = sluice::persistence::parquet;

namespace {

/// 2024-11-22T00:00:00Z: the first row's timestamp.
constexpr int64_t base_ts_ms = 1732233600000;
/// Milliseconds between rows.
constexpr int64_t ts_step_ms = 250;
/// First offset: 2^53 + 1, which a double cannot hold, to prove int64 values survive exactly.
constexpr int64_t base_offset = 9007199254740993;
/// Distinct device ids (a mid-cardinality dictionary column).
constexpr uint64_t device_count = 500;

const char* const event_types[] = {"play", "pause", "stop", "click", "error", "billing"};
constexpr size_t event_type_count = sizeof(event_types) / sizeof(event_types[0]);

enum col : size_t { c_id, c_type, c_device, c_ts, c_offset, c_position, c_score, c_ok, c_note };

std::vector<pq::column_spec> schema() {
  return {{"id", pq::column_type::string, true},
          {"type", pq::column_type::string, false},
          {"device_id", pq::column_type::string, false},
          {"ts", pq::column_type::timestamp_ms, true},
          {"offset", pq::column_type::int64, false},
          {"position_ms", pq::column_type::int64, true},
          {"score", pq::column_type::float64, false},
          {"ok", pq::column_type::boolean, false},
          {"note", pq::column_type::string, false}};
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

[[noreturn]] void usage(const char* msg) {
  std::cerr << "sluice_parquet_tool: " << msg
            << "\nusage: sluice_parquet_tool OUT.parquet [--rows N] [--codec zstd|snappy|none]"
               " [--row-group-rows K] [--max-dictionary-bytes B] [--data-page-bytes P]\n";
  std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-')
    usage("missing OUT.parquet");
  std::string out_path = argv[1];
  uint64_t rows = 10000;
  pq::writer_options opts;
  opts.created_by = "sluice_parquet_tool";
  opts.key_value_metadata = {{"sluice.dataset", "parquet_write_tool"}};
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc)
      usage(("missing value after " + arg).c_str());
    std::string value = argv[++i];
    try {
      if (arg == "--rows") {
        rows = std::stoull(value);
      } else if (arg == "--codec") {
        auto c = pq::parse_codec(value);
        if (!c)
          usage(("unknown codec " + value).c_str());
        opts.compression = *c;
      } else if (arg == "--row-group-rows") {
        opts.row_group_rows = std::stoull(value);
      } else if (arg == "--max-dictionary-bytes") {
        opts.max_dictionary_bytes = std::stoull(value);
      } else if (arg == "--data-page-bytes") {
        opts.data_page_bytes = std::stoull(value);
      } else {
        usage(("unknown option " + arg).c_str());
      }
    } catch (const std::logic_error&) {
      usage(("not a number: " + value).c_str());
    }
  }

  int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    std::perror(out_path.c_str());
    return 1;
  }
  std::ofstream expected(out_path.substr(0, out_path.rfind(".parquet")) + ".expected.ndjson");
  try {
    pq::fd_sink sink{fd};
    pq::writer w{schema(), opts, sink};
    std::string line;
    for (uint64_t i = 0; i < rows; ++i) {
      line.clear();
      std::string id = "evt-" + std::to_string(i);
      w.set(c_id, id);
      line += "{\"id\":";
      json_string(line, id);

      line += ",\"type\":";
      if (i % 11 == 3) {
        line += "null";
      } else {
        std::string type = event_types[(i * 7) % event_type_count];
        w.set(c_type, type);
        json_string(line, type);
      }

      line += ",\"device_id\":";
      if (i % 13 == 5) {
        line += "null";
      } else {
        std::string device = "tv-" + std::to_string((i * 7919) % device_count);
        w.set(c_device, device);
        json_string(line, device);
      }

      const int64_t ts = base_ts_ms + static_cast<int64_t>(i) * ts_step_ms;
      w.set(c_ts, ts);
      line += ",\"ts\":" + std::to_string(ts);

      line += ",\"offset\":";
      if (i % 17 == 0) {
        line += "null";
      } else {
        const int64_t offset = base_offset + static_cast<int64_t>(i);
        w.set(c_offset, offset);
        line += "\"" + std::to_string(offset) + "\"";
      }

      const int64_t position = static_cast<int64_t>((i * 37) % 7200000) - 1000;
      w.set(c_position, position);
      line += ",\"position_ms\":" + std::to_string(position);

      line += ",\"score\":";
      if (i % 7 == 6) {
        line += "null";
      } else {
        const double score = static_cast<double>(i) * 0.5 - 100.25;
        w.set(c_score, score);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", score);
        line += buf;
      }

      line += ",\"ok\":";
      if (i % 19 == 4) {
        line += "null";
      } else {
        const bool ok = i % 3 != 0;
        w.set(c_ok, ok);
        line += ok ? "true" : "false";
      }

      line += ",\"note\":";
      if (i % 5 == 2) {
        line += "null";
      } else {
        std::string note = "note \xE2\x9C\x93 \xC3\xA9 " + std::to_string((i * i) % 100003);
        w.set(c_note, note);
        json_string(line, note);
      }
      line += "}\n";
      expected << line;
      w.end_row();
    }
    const uint64_t bytes = w.close();
    sink.sync();
    ::close(fd);
    expected.close();
    if (!expected)
      throw std::runtime_error("writing the expected NDJSON failed");
    std::cout << "{\"rows\":" << rows << ",\"bytes\":" << bytes << ",\"codec\":\""
              << pq::to_string(opts.compression) << "\"}" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "sluice_parquet_tool: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
