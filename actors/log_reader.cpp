#include "actors/log_reader.hpp"
#include "actors/log.hpp"

#include "actors/ingest_log.hpp"
#include "actors/metrics.hpp"
#include "actors/placement.hpp"
#include "messages/codec.hpp"
#include "persistence/log_store.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace sluice {

namespace {

/// A consumer that gets few of the events (one shard of many) must not scan the whole log for one
/// answer: a read stops after this many times `max_events` scanned events.
constexpr uint64_t max_scan_factor = 4;

} // namespace

log_reader_actor::behavior_type
log_reader(log_reader_actor::stateful_pointer<log_reader_state> self,
           persistence::environment* env, metrics_registry* metrics) {
  auto& st = self->state;
  st.env = env;
  st.log = std::make_unique<persistence::log_store>(*env);
  st.unreadable = &metrics->get_counter("sluice_log_unreadable_records_total",
                                        "Stored log records that could not be decoded (skipped)");
  return {
    [self](read_atom, log_offset from, uint8_t filter, uint64_t index, uint64_t count,
           uint64_t max_events) -> committed_batch {
      auto& st = self->state;
      auto slice = static_cast<consumer_spec::slice>(filter);
      committed_batch out;
      out.upto = from > 0 ? from - 1 : 0;
      uint64_t scanned = 0;
      log_filter keep;
      if (slice != consumer_spec::slice::all)
        keep = [k = consumer_spec::placement(slice), index, count](std::string_view device,
                                                                    std::string_view profile) {
          auto key = key_of(k, device, profile);
          return !key.empty() && shard_index(key, count) == index;
        };
      // Counting first (record headers only) lets the answer be decoded in place into a vector
      // of its final size: no growth by doubling (up to twice the memory, and every event moved
      // on each growth) and no intermediate batch per record.
      uint64_t stored = 0;
      st.log->read(from, [&](uint64_t first, uint32_t n, std::string_view) {
        stored += n - std::min<uint64_t>(n, from > first ? from - first : 0);
        scanned += n;
        return stored < max_events && scanned < max_scan_factor * max_events;
      });
      out.events.reserve(slice == consumer_spec::slice::all ? stored : stored / count + 1);
      scanned = 0;
      st.log->read(from, [&](uint64_t first, uint32_t n, std::string_view bytes) {
        auto before = out.events.size();
        if (!decode_log_record_if(bytes, first, out.events, keep)) {
          st.unreadable->inc();
          log_json("error", "stored log record unreadable; skipped",
                   {{"offset", std::to_string(first)}, {"events", std::to_string(n)}});
        } else if (first < from) { // the record holding `from` starts before it
          auto it = out.events.begin() + static_cast<std::ptrdiff_t>(before);
          auto end = it;
          while (end != out.events.end() && end->offset < from)
            ++end;
          out.events.erase(it, end);
        }
        out.upto = first + n - 1;
        scanned += n;
        return out.events.size() < max_events && scanned < max_scan_factor * max_events;
      });
      return out;
    },
  };
}

} // namespace sluice
