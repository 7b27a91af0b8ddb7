// libFuzzer target: `decode_log_record` and `decode_log_record_if` over arbitrary bytes (a corrupt
// or foreign LMDB value must be refused, never crash), then `find_attr` on the attributes of what
// was decoded, and the log round trip of fuzz_common.hpp. Seeds: tests/fuzz/corpus/log_record.

#include "tests/fuzz/fuzz_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  std::string_view bytes{reinterpret_cast<const char*>(data), size};
  event_batch out;
  event sentinel;
  sentinel.id = "kept";
  out.push_back(sentinel);
  bool ok = decode_log_record(bytes, 1, out);
  if (!ok && out.size() != 1)
    fuzz::fail("a refused record changed the output batch");
  event_batch filtered;
  size_t calls = 0;
  bool ok_if = decode_log_record_if(bytes, 1, filtered,
                                    [&](std::string_view device, std::string_view) {
                                      return (calls++ % 2) == 0 && !device.empty();
                                    });
  if (ok != ok_if)
    fuzz::fail("decode_log_record and decode_log_record_if disagree on validity");
  if (!ok)
    return 0;
  for (size_t i = 1; i < out.size(); ++i) {
    const auto& e = out[i];
    if (e.offset != i)
      fuzz::fail("offsets are not dense from the first one");
    for (auto path : {"a", "player.codec", "a.b.c", "", "."})
      (void) find_attr(e.attrs, path);
    std::string json;
    append_json(json, e);
    fuzz::require_valid_json(json, "append_json rendered a decoded log event as invalid JSON");
  }
  // What was decoded must encode to a record that decodes to the same events.
  event_batch events(out.begin() + 1, out.end());
  if (!events.empty()) {
    std::string record;
    encode_log_record(events, record);
    event_batch back;
    if (!decode_log_record(record, 1, back) || !(back == events))
      fuzz::fail("re-encoding a decoded log record changed it");
  }
  return 0;
}
