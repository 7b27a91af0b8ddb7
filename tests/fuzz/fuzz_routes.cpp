// libFuzzer target: the route language. The input is compiled twice: as route INI text
// (`compile_routes_text`, what PUT /v1/admin/routes and `sluice routes check` take) against fixed
// sinks, and as one `when` predicate. Whatever compiles is evaluated against fixed events (with
// and without the one-pass attribute slots, which must agree), and the actions of every matching
// route are applied to a copy (keep/drop/mask/hash/rename/PII), which must stay a valid event.
// Errors must name a line and column inside the input. Seeds: tests/fuzz/corpus/routes;
// dictionary: tests/fuzz/routes.dict.

#include "actors/pii.hpp"
#include "actors/route_actions.hpp"
#include "actors/route_table.hpp"
#include "tests/fuzz/fuzz_common.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace {

using namespace sluice;

const std::vector<std::string> sink_names = {"analytics", "archive", "errors", "lake"};

/// Events the compiled routes are evaluated against (decoded the way the gateway decodes).
const event_batch& fixed_events() {
  static const event_batch events = [] {
    auto batch = decode_json(
      R"([{"type":"play","device_id":"tv-1","profile_id":"p-1","ts":1732233600000,)"
      R"("title_id":"t-42","position_ms":0,"player":{"codec":"h264","bitrate":4500},)"
      R"("email":"a.b@example.com","tags":["x","y"],"ratio":0.5,"ok":true,"none":null},)"
      R"({"type":"error","device_id":"web-7","ts":"2024-11-22T00:00:05Z","code":"E42",)"
      R"("message":"card 4111 1111 1111 1111 from 10.1.2.3","items":[{"sku":"a"},{"sku":"b"}]},)"
      R"({"id":"e-3","type":"click","device_id":"phone-2","profile_id":"","ts":0}])",
      fuzz::fixed_ingest_ts);
    if (!batch.ok() || batch.events.size() != 3)
      fuzz::fail("fixed events do not decode", batch.error);
    for (size_t i = 0; i < batch.events.size(); ++i)
      batch.events[i].offset = i + 1;
    return batch.events;
  }();
  return events;
}

std::shared_ptr<const pii_detector> detector() {
  static const auto d = [] {
    pii_options opts;
    opts.secret = "fuzzing-secret-of-32-bytes-long!";
    std::string err;
    auto made = pii_detector::make(opts, err);
    if (!made)
      fuzz::fail("pii detector", err);
    return made;
  }();
  return d;
}

void check_error_position(const std::string& err) {
  if (err.rfind("line ", 0) != 0)
    fuzz::fail("a route error does not start with 'line L, column C:'", err);
}

void check_transformed(const event& e) {
  std::string json;
  append_json(json, e);
  fuzz::require_valid_json(json, "a transformed event renders as invalid JSON");
  event_batch one{e};
  std::string record;
  encode_log_record(one, record);
  event_batch back;
  if (!decode_log_record(record, e.offset, back) || back.size() != 1 || !(back[0] == e))
    fuzz::fail("a transformed event does not survive the log encoding", json);
}

void run_routes(std::string_view text) {
  route_table table;
  auto err = compile_routes_text(text, sink_names, table);
  if (!err.empty()) {
    check_error_position(err);
    return;
  }
  (void) check_route_secret(table, true);
  static route_transformer transformer{detector(), nullptr, "fuzz"};
  for (const auto& e : fixed_events()) {
    std::vector<size_t> matched;
    bool any = table.match(e, [&](size_t i) { matched.push_back(i); });
    if (any != !matched.empty())
      fuzz::fail("route_table::match's result disagrees with its callbacks");
    for (auto i : matched) {
      if (i >= table.routes.size())
        fuzz::fail("route index out of range");
      if (!table.routes[i].pred.eval(e))
        fuzz::fail("slot evaluation matched where plain evaluation does not", table.routes[i].when);
      for (auto s : table.routes[i].sinks)
        if (s >= sink_names.size())
          fuzz::fail("sink index out of range");
      auto copy = e;
      transformer.apply(table.routes[i].name, table.routes[i].actions, copy);
      check_transformed(copy);
    }
    if (!any) {
      auto copy = e;
      transformer.apply(unmatched_route, table.unmatched_actions, copy);
      check_transformed(copy);
    }
  }
}

void run_predicate(std::string_view text) {
  predicate p;
  std::string err;
  size_t at = 0;
  if (!p.compile(text, err, at)) {
    check_error_position(err);
    if (at > text.size())
      fuzz::fail("predicate error offset beyond the text", err);
    return;
  }
  std::vector<std::string> paths;
  p.assign_slots(paths);
  attr_slot_buffer<max_attr_slots> storage;
  auto* slots = storage.get();
  for (const auto& e : fixed_events()) {
    bool plain = p.eval(e);
    if (!paths.empty() && resolve_attr_slots(e.attrs, paths, slots)
        && p.eval(e, slots) != plain)
      fuzz::fail("slot and plain predicate evaluation disagree", text);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  run_predicate(text);
  run_routes(text);
  return 0;
}
