// libFuzzer target: `decode_msgpack` (HTTP bodies with Content-Type application/msgpack and
// WebSocket binary frames) with the gateway's default limits, then the checks of fuzz_common.hpp;
// accepted events are also rendered as JSON and decoded again, which must give the same envelope.
// Seeds: tests/fuzz/corpus/msgpack (binary; tests/fuzz/make_seeds.py writes them).

#include "tests/fuzz/fuzz_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  std::string_view body{reinterpret_cast<const char*>(data), size};
  auto batch = decode_msgpack(body, fuzz::fixed_ingest_ts, decode_limits{});
  fuzz::check_decoded(batch);
  if (!batch.ok() && batch.error_offset > body.size())
    fuzz::fail("error offset beyond the body", batch.error);
  for (const auto& e : batch.events) {
    // In an array: a lone object with an `events` attribute would read as the batch wrapper.
    std::string json = "[";
    append_json(json, e);
    json += ']';
    auto again = decode_json(json, fuzz::fixed_ingest_ts, decode_limits{});
    if (!again.ok() || again.events.size() != 1)
      fuzz::fail("an accepted msgpack event does not decode from its JSON rendering", json);
    const auto& f = again.events.front();
    if (f.id != e.id || f.type != e.type || f.device_id != e.device_id
        || f.profile_id != e.profile_id || f.ts != e.ts)
      fuzz::fail("the JSON rendering changed the envelope", json);
  }
  return 0;
}
