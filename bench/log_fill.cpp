// sluice_log_fill — writes N unconsumed events into a node's ingest log (node stopped), for the
// restart-replay scenario of bench/run.sh:
//
//   sluice_log_fill --data-dir=DIR --events=1000000 [--events-per-record=100]
//
// The events are those of the reference job (../shared/bench/reference-job.lua: ~200 bytes, 5%
// `error`, 1% with a card number, ~10,000 devices and profiles), decoded by the gateway's own JSON
// decoder and stored as the ingest log stores a client batch (one record per batch, `MDB_APPEND`,
// the records of one commit in one transaction). No consumer offset is written, so on its next
// start every consumer of the node (sink runners, shards, aggregator) has all of them to catch
// up on. Prints `filled events=N records=R first=F last=L seconds=S`.

#include "messages/codec.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/log_store.hpp"
#include "reference_event.hpp"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

namespace {

/// Events in reference-job.lua's pool per client thread: the ids and devices cycle through it.
constexpr uint64_t reference_pool_events = 10000;
/// Records written per LMDB transaction (a group commit of the running node gathers about this
/// many client batches under load).
constexpr uint64_t records_per_txn = 64;

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "sluice_log_fill: " << error << "\n"
            << "usage: sluice_log_fill --data-dir=DIR --events=N [--events-per-record=100]\n";
  std::exit(2);
}

uint64_t parse_count(const std::string& name, const std::string& value) {
  char* end = nullptr;
  auto v = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v == 0)
    usage("--" + name + " needs a positive integer, got '" + value + "'");
  return v;
}


} // namespace

int main(int argc, char** argv) {
  std::string data_dir;
  uint64_t events = 0;
  uint64_t per_record = 100;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos)
      usage("expected --name=value, got '" + arg + "'");
    auto name = arg.substr(2, eq - 2);
    auto value = arg.substr(eq + 1);
    if (name == "data-dir")
      data_dir = value;
    else if (name == "events")
      events = parse_count(name, value);
    else if (name == "events-per-record")
      per_record = parse_count(name, value);
    else
      usage("unknown option --" + name);
  }
  if (data_dir.empty() || events == 0)
    usage("--data-dir and --events are required");
  auto started = std::chrono::steady_clock::now();
  sluice::persistence::env_options opts;
  opts.path = data_dir + "/lmdb"; // where `sluice serve` keeps it (app/config.cpp)
  opts.mode = sluice::persistence::durability::none; // fsynced once at the end
  sluice::persistence::environment env{opts};
  sluice::persistence::log_store log{env};
  log.open();
  auto first = log.stats().next_offset;
  uint64_t k = 0;
  uint64_t written = 0;
  uint64_t records = 0;
  std::string body;
  std::string value;
  auto ingest_ts = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  while (written < events) {
    sluice::persistence::write_txn txn{env};
    for (uint64_t r = 0; r < records_per_txn && written < events; ++r) {
      auto n = std::min(per_record, events - written);
      body = "[";
      for (uint64_t i = 0; i < n; ++i) {
        if (i > 0)
          body += ',';
        sluice::bench::append_reference_event(body, k++ % reference_pool_events);
      }
      body += ']';
      auto batch = sluice::decode_json(body, ingest_ts);
      if (!batch.error.empty() || batch.events.size() != n) {
        std::cerr << "sluice_log_fill: generated batch does not decode: " << batch.error << "\n";
        return 1;
      }
      value.clear();
      sluice::encode_log_record(batch.events, value);
      log.append(txn, static_cast<uint32_t>(n), value);
      written += n;
      ++records;
    }
    try {
      txn.commit();
    } catch (const sluice::persistence::lmdb_error& e) {
      if (!e.map_full() || !env.grow())
        throw;
      std::cerr << "sluice_log_fill: map full; rerun with a larger storage.initial-map-bytes\n";
      return 1;
    }
  }
  env.flush();
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("filled events=%" PRIu64 " records=%" PRIu64 " first=%" PRIu64 " last=%" PRIu64
              " seconds=%.3f\n",
              written, records, first, first + written - 1, secs);
  return 0;
}
