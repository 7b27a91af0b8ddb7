// libFuzzer target: the config loader, as `sluice check --config-file=PATH` runs it (app/main.cpp):
// the input is written to a file, CAF parses it (`node_config::parse`), and `node_config::finish`
// rejects unknown keys and checks values, sinks, schemas, enrichment, routes and PII. Runs in the
// source root so that the default conf/ paths resolve. Seeds: tests/fuzz/corpus/config
// (conf/sluice.conf among them); dictionary: tests/fuzz/config.dict.

#include "app/config.hpp"
#include "messages/type_ids.hpp"
#include "tests/fuzz/fuzz_common.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

namespace {

const std::string& config_path() {
  static const std::string path = [] {
    if (::chdir(SLUICE_SOURCE_DIR) != 0)
      sluice::fuzz::fail("cannot chdir to the source root", SLUICE_SOURCE_DIR);
    const char* tmp = std::getenv("TMPDIR");
    return std::string{tmp != nullptr && *tmp != '\0' ? tmp : "/tmp"} + "/sluice-fuzz-config-"
           + std::to_string(::getpid()) + ".conf";
  }();
  return path;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  std::string_view text{reinterpret_cast<const char*>(data), size};
  // File options (routes-file, titles-file, geoip-file) may name any file; device files would
  // only measure how long /dev/zero is.
  for (auto special : {"dev/", "proc/", "sys/"})
    if (text.find(special) != std::string_view::npos)
      return 0;
  {
    std::ofstream out{config_path(), std::ios::binary | std::ios::trunc};
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  node_config cfg;
  register_message_types(cfg);
  if (auto err = cfg.parse(caf::actor_system_config::string_list{"--config-file=" + config_path()});
      err)
    return 0;
  auto err = cfg.finish();
  if (!err.empty())
    return 0;
  // An accepted config gives the gateway and the storage sane limits.
  if (cfg.gateway.max_body_bytes == 0 || cfg.gateway.max_batch_events == 0
      || cfg.gateway.io_threads == 0 || cfg.node.device_shards == 0 || cfg.node.profile_shards == 0)
    fuzz::fail("finish accepted a zero limit");
  if (cfg.storage.initial_map_bytes == 0 || cfg.storage.max_map_bytes < cfg.storage.initial_map_bytes)
    fuzz::fail("finish accepted inconsistent map sizes");
  return 0;
}
