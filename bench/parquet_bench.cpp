// sluice_parquet_bench: Parquet writer throughput and file size against NDJSON, per codec.
//
//   sluice_parquet_bench [--rows N] [--repeat R] [--dir DIR] [--keep yes]
//
// Generates N (default 1,000,000) realistic ~200-byte playback events (uuid-ish id, 6 event
// types, 10k devices and profiles, increasing ms timestamps with jitter, ingest_ts, log offset,
// 500 titles, position_ms, a small JSON attrs string), renders them as NDJSON to size the
// equivalent input, then writes them as Parquet with zstd, snappy and none (best of R runs, to a
// file in DIR, default /tmp, removed unless --keep yes) and prints rows/s, MB/s of equivalent NDJSON and the size ratio.
// Built by default, not run by ctest.

#include "persistence/parquet_writer.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace pq = sluice::persistence::parquet;

namespace {

constexpr uint64_t default_rows = 1000000;
constexpr int default_repeat = 3;
constexpr uint64_t device_count = 10000;
constexpr uint64_t title_count = 500;
/// 2024-11-22T00:00:00Z.
constexpr int64_t base_ts_ms = 1732233600000;
/// Device clocks disagree with arrival order by up to this much.
constexpr int64_t ts_jitter_ms = 50;
/// Ingest happens this long after the device timestamp, at most.
constexpr int64_t max_ingest_delay_ms = 500;
/// Heartbeats advance a device's playback position by about this much.
constexpr int64_t heartbeat_ms = 10000;
/// zstd level of the NDJSON reference (the same level as the Parquet default).
constexpr int ndjson_zstd_level = 3;
/// 1 MB for MB/s (decimal, as throughput is usually quoted).
constexpr double mb = 1e6;

const char* const event_types[] = {"play", "heartbeat", "pause", "stop", "click", "error"};
/// Heartbeats dominate real playback telemetry.
constexpr unsigned type_weights[] = {8, 70, 6, 6, 8, 2};
const char* const cdns[] = {"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"};
const int bitrates[] = {1500, 3000, 4500, 8000};

/// splitmix64: a small, fast, deterministic generator.
struct rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) {
    return next() % n;
  }
};

struct event {
  std::string id, type, device_id, profile_id, title_id, attrs;
  int64_t ts = 0, ingest_ts = 0, offset = 0, position_ms = 0;
  bool has_profile = true, has_title = true, has_position = true;
};

std::string hex(uint64_t v, int digits) {
  static const char* d = "0123456789abcdef";
  std::string s(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4)
    s[static_cast<size_t>(i)] = d[v & 0xF];
  return s;
}

std::string padded(const char* prefix, uint64_t n, int width) {
  std::string digits = std::to_string(n);
  return prefix + std::string(static_cast<size_t>(std::max(0, width - static_cast<int>(digits.size()))), '0')
         + digits;
}

std::vector<event> generate(uint64_t n) {
  rng r{42};
  std::vector<int64_t> positions(device_count, 0);
  std::vector<uint64_t> titles(device_count);
  for (auto& t : titles)
    t = r.below(title_count);
  unsigned weight_sum = 0;
  for (unsigned w : type_weights)
    weight_sum += w;
  std::vector<event> events(n);
  for (uint64_t i = 0; i < n; ++i) {
    event& e = events[i];
    const uint64_t a = r.next(), b = r.next();
    e.id = hex(a >> 32, 8) + "-" + hex(a >> 16, 4) + "-4" + hex(a, 3) + "-" + hex(b >> 48, 4) + "-"
           + hex(b, 12);
    unsigned pick = static_cast<unsigned>(r.below(weight_sum));
    size_t t = 0;
    while (pick >= type_weights[t])
      pick -= type_weights[t++];
    e.type = event_types[t];
    const uint64_t device = r.below(device_count);
    e.device_id = padded("tv-", device, 5);
    e.has_profile = device % 20 != 0; // 5 % of devices are not signed in
    e.profile_id = padded("p-", (device * 7919) % device_count, 5);
    e.ts = base_ts_ms + static_cast<int64_t>(i) - static_cast<int64_t>(r.below(ts_jitter_ms));
    e.ingest_ts = e.ts + 20 + static_cast<int64_t>(r.below(max_ingest_delay_ms));
    e.offset = static_cast<int64_t>(i);
    if (e.type == "stop") {
      titles[device] = r.below(title_count);
      positions[device] = 0;
    } else {
      positions[device] += heartbeat_ms / 2 + static_cast<int64_t>(r.below(heartbeat_ms));
    }
    e.has_title = e.type != "click";
    e.title_id = padded("t-", titles[device], 4);
    e.has_position = e.type != "click" && e.type != "error";
    e.position_ms = positions[device];
    e.attrs = "{\"bitrate\":" + std::to_string(bitrates[r.below(4)]) + ",\"cdn\":\""
              + cdns[device % 8] + "\""
              + (e.type == "error" ? ",\"code\":\"E" + std::to_string(r.below(20)) + "\"" : "")
              + "}";
  }
  return events;
}

void ndjson(std::string& out, const event& e) {
  out += "{\"id\":\"" + e.id + "\",\"type\":\"" + e.type + "\",\"device_id\":\"" + e.device_id + "\"";
  if (e.has_profile)
    out += ",\"profile_id\":\"" + e.profile_id + "\"";
  out += ",\"ts\":" + std::to_string(e.ts) + ",\"ingest_ts\":" + std::to_string(e.ingest_ts)
         + ",\"offset\":" + std::to_string(e.offset);
  if (e.has_title)
    out += ",\"title_id\":\"" + e.title_id + "\"";
  if (e.has_position)
    out += ",\"position_ms\":" + std::to_string(e.position_ms);
  out += ",\"attrs\":" + e.attrs + "}\n";
}

enum col : size_t { c_id, c_type, c_device, c_profile, c_ts, c_ingest, c_offset, c_title, c_pos, c_attrs };

std::vector<pq::column_spec> schema() {
  return {{"id", pq::column_type::string, true},
          {"type", pq::column_type::string, true},
          {"device_id", pq::column_type::string, true},
          {"profile_id", pq::column_type::string, false},
          {"ts", pq::column_type::timestamp_ms, true},
          {"ingest_ts", pq::column_type::timestamp_ms, true},
          {"offset", pq::column_type::int64, true},
          {"title_id", pq::column_type::string, false},
          {"position_ms", pq::column_type::int64, false},
          {"attrs", pq::column_type::string, false}};
}

struct result {
  double seconds = 0;
  uint64_t bytes = 0;
};

result write_parquet(const std::vector<event>& events, pq::codec c, const std::string& path,
                     bool keep) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    std::exit(1);
  }
  pq::fd_sink sink{fd};
  pq::writer_options opts;
  opts.compression = c;
  const auto start = std::chrono::steady_clock::now();
  pq::writer w{schema(), opts, sink};
  for (const event& e : events) {
    w.set(c_id, e.id);
    w.set(c_type, e.type);
    w.set(c_device, e.device_id);
    if (e.has_profile)
      w.set(c_profile, e.profile_id);
    w.set(c_ts, e.ts);
    w.set(c_ingest, e.ingest_ts);
    w.set(c_offset, e.offset);
    if (e.has_title)
      w.set(c_title, e.title_id);
    if (e.has_position)
      w.set(c_pos, e.position_ms);
    w.set(c_attrs, e.attrs);
    w.end_row();
  }
  result r;
  r.bytes = w.close();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  if (!keep)
    ::unlink(path.c_str());
  return r;
}

} // namespace

int main(int argc, char** argv) {
  uint64_t rows = default_rows;
  int repeat = default_repeat;
  std::string dir = "/tmp";
  bool keep = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    if (arg == "--rows")
      rows = std::stoull(argv[i + 1]);
    else if (arg == "--repeat")
      repeat = std::max(1, std::stoi(argv[i + 1]));
    else if (arg == "--dir")
      dir = argv[i + 1];
    else if (arg == "--keep")
      keep = std::string{argv[i + 1]} == "yes";
    else {
      std::cerr << "usage: sluice_parquet_bench [--rows N] [--repeat R] [--dir DIR] [--keep yes]\n";
      return 2;
    }
  }

  std::cout << "generating " << rows << " events ...\n";
  const std::vector<event> events = generate(rows);
  std::string text;
  text.reserve(rows * 256);
  for (const event& e : events)
    ndjson(text, e);
  const double ndjson_bytes = static_cast<double>(text.size());
  std::string compressed(ZSTD_compressBound(text.size()), '\0');
  const auto zstart = std::chrono::steady_clock::now();
  const size_t zbytes = ZSTD_compress(compressed.data(), compressed.size(), text.data(), text.size(),
                                      ndjson_zstd_level);
  const double zseconds =
    std::chrono::duration<double>(std::chrono::steady_clock::now() - zstart).count();
  text.clear();
  text.shrink_to_fit();
  std::printf("NDJSON: %.0f bytes, %.1f bytes/event\n\n", ndjson_bytes, ndjson_bytes / rows);

  std::printf("%-22s %12s %14s %14s %10s %12s\n", "format", "rows/s", "MB/s (NDJSON)", "bytes",
              "bytes/row", "vs NDJSON");
  std::printf("%-22s %12s %14s %14.0f %10.1f %11.1fx\n", "ndjson", "-", "-", ndjson_bytes,
              ndjson_bytes / rows, 1.0);
  if (!ZSTD_isError(zbytes))
    std::printf("%-22s %12.0f %14.1f %14zu %10.1f %11.1fx\n", "ndjson + zstd-3 (whole)",
                rows / zseconds, ndjson_bytes / mb / zseconds, zbytes,
                static_cast<double>(zbytes) / rows, ndjson_bytes / static_cast<double>(zbytes));
  for (pq::codec c : {pq::codec::zstd, pq::codec::snappy, pq::codec::none}) {
    result best;
    for (int k = 0; k < repeat; ++k) {
      result r = write_parquet(events, c,
                               dir + "/sluice_parquet_bench_" + std::string{pq::to_string(c)}
                                 + ".parquet",
                               keep);
      if (k == 0 || r.seconds < best.seconds)
        best = r;
    }
    const std::string name = "parquet " + std::string{pq::to_string(c)};
    std::printf("%-22s %12.0f %14.1f %14llu %10.1f %11.1fx\n", name.c_str(), rows / best.seconds,
                ndjson_bytes / mb / best.seconds, static_cast<unsigned long long>(best.bytes),
                static_cast<double>(best.bytes) / rows, ndjson_bytes / static_cast<double>(best.bytes));
  }
  std::printf("\n(best of %d; row groups of %zu rows; writes to %s, page cache, no fsync)\n", repeat,
              pq::writer_options{}.row_group_rows, dir.c_str());
  return 0;
}
