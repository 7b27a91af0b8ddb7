// libFuzzer target: `decode_json` (HTTP bodies with Content-Type application/json and WebSocket
// text frames) with the gateway's default limits, then the checks of fuzz_common.hpp on the
// result. Seeds: tests/fuzz/corpus/json; dictionary: tests/fuzz/json.dict.

#include "tests/fuzz/fuzz_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  std::string_view body{reinterpret_cast<const char*>(data), size};
  auto batch = decode_json(body, fuzz::fixed_ingest_ts, decode_limits{});
  fuzz::check_decoded(batch);
  if (!batch.ok() && batch.error_offset > body.size())
    fuzz::fail("error offset beyond the body", batch.error);
  return 0;
}
