// Ingest-time data quality: validation, dead-letter hand-off and enrichment of decoded batches.

#include "gateway/quality.hpp"

#include "actors/metrics.hpp"

#include <algorithm>

namespace sluice::gateway::detail {

namespace {

/// Label of violations for types without a schema (keeps the label set bounded by the config).
constexpr std::string_view unknown_type_label = "_unknown";

std::string json_error_body(std::string_view message) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  return out + "}";
}

} // namespace

size_t apply_quality(decoded_batch& batch, const ingest_quality& quality, const client_info& client,
                     std::vector<quarantined>& invalid, metrics_registry& metrics) {
  const auto& schemas = quality.schemas;
  const auto& enrich = quality.enrich;
  const bool validate = !schemas.empty()
                        || schemas.unknown_types == schema_registry::unknown_policy::reject;
  if (!validate && !enrich.options().enabled)
    return 0; // nothing to check or add (no schema means no schema version either)
  auto ctx = enrich.prepare(client);
  size_t violations = 0;
  size_t skewed = 0;
  // The client index of each decoded event: the indexes the envelope check did not reject, in
  // order (`rejected` is sorted by index).
  uint32_t index = 0;
  size_t next_rejected = 0;
  const size_t envelope_rejected = batch.rejected.size();
  auto next_index = [&] {
    while (next_rejected < envelope_rejected && batch.rejected[next_rejected].index == index) {
      ++next_rejected;
      ++index;
    }
    return index++;
  };
  size_t kept = 0;
  for (size_t i = 0; i < batch.events.size(); ++i) {
    auto& e = batch.events[i];
    auto client_index = next_index();
    const event_schema* schema = nullptr;
    if (validate) {
      schema_violation v;
      if (!schemas.validate(e, schema, v)) {
        ++violations;
        metrics
          .get_counter("sluice_schema_violations_total",
                       "Events refused by their type's schema (sent to the dead-letter store), "
                       "by event type and rule",
                       {{"type", schema != nullptr ? e.type : std::string{unknown_type_label}},
                        {"rule", std::string{v.rule}}})
          .inc();
        batch.rejected.push_back({client_index, v.message});
        invalid.push_back({std::move(e), std::move(v.message)});
        continue;
      }
    }
    if (enrich.apply(e, ctx, schemas.version_attribute,
                     schema != nullptr ? std::string_view{schema->label} : std::string_view{}))
      ++skewed;
    if (kept != i)
      batch.events[kept] = std::move(e);
    ++kept;
  }
  batch.events.resize(kept);
  if (violations > 0)
    std::inplace_merge(batch.rejected.begin(),
                       batch.rejected.begin() + static_cast<ptrdiff_t>(envelope_rejected),
                       batch.rejected.end(),
                       [](const rejection& a, const rejection& b) { return a.index < b.index; });
  if (skewed > 0)
    metrics
      .get_counter("sluice_events_clock_skewed_total",
                   "Accepted events whose ts lies more than enrich.max-clock-skew ahead of "
                   "ingest_ts (flagged with the clock-skew attribute)")
      .inc(skewed);
  return violations;
}

std::vector<endpoint> schema_endpoints(std::shared_ptr<const ingest_quality> quality) {
  std::vector<endpoint> out;
  out.push_back({"GET", "/v1/schemas", scope::read,
                 "every event schema (type, version, fields and rules) and the unknown-type policy",
                 [quality](const http_request&, responder respond) {
                   http_response res;
                   res.body = quality ? quality->schemas.to_json()
                                      : schema_registry{}.to_json();
                   respond(std::move(res));
                 }});
  out.push_back({"GET", "/v1/schemas/{type}", scope::read, "the schema of one event type (404 when it has none)",
                 [quality](const http_request& req, responder respond) {
                   http_response res;
                   auto i = req.params.find("type");
                   const event_schema* s = nullptr;
                   if (quality && i != req.params.end())
                     s = quality->schemas.find(i->second);
                   if (s == nullptr) {
                     res.status = 404;
                     res.body = json_error_body(
                       "no schema for event type '" + (i != req.params.end() ? i->second : "")
                       + "' (GET /v1/schemas lists them)");
                   } else {
                     res.body = schema_registry::to_json(*s);
                   }
                   respond(std::move(res));
                 }});
  return out;
}

} // namespace sluice::gateway::detail
