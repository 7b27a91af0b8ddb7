// Validation and enrichment of decoded batches at the gateway: client indexes of schema
// rejections among envelope rejections, what goes to the dead letters, what is counted.

#include "actors/metrics.hpp"
#include "gateway/quality.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sluice::gateway::detail {
namespace {

ingest_quality play_quality() {
  ingest_quality q;
  event_schema s;
  s.type = "play";
  s.version = 3;
  field_rule pos;
  pos.name = "position_ms";
  pos.type = field_type::integer;
  pos.required = true;
  pos.min = 0;
  s.fields.push_back(pos);
  EXPECT_EQ(q.schemas.add(s), "");
  enrich_options o;
  EXPECT_EQ(q.enrich.init(o), "");
  return q;
}

TEST(gateway_quality, schema_rejections_keep_client_indexes_among_envelope_rejections) {
  auto q = play_quality();
  auto batch = decode_json(R"([
    {"type":"play","device_id":"d","ts":1,"position_ms":-1},
    {"type":"play","ts":1},
    {"type":"play","device_id":"d","ts":1,"position_ms":5},
    {"type":"play","device_id":"d","ts":"bad"},
    {"type":"play","device_id":"d","ts":1},
    {"type":"click","device_id":"d","ts":1}
  ])",
                           1000);
  ASSERT_TRUE(batch.ok());
  metrics_registry metrics;
  std::vector<quarantined> invalid;
  auto n = apply_quality(batch, q, {"Roku/9", "127.0.0.1", ""}, invalid, metrics);
  EXPECT_EQ(n, 2u);
  ASSERT_EQ(batch.rejected.size(), 4u);
  std::vector<uint32_t> indexes;
  for (auto& r : batch.rejected)
    indexes.push_back(r.index);
  EXPECT_EQ(indexes, (std::vector<uint32_t>{0, 1, 3, 4}));
  EXPECT_EQ(batch.rejected[0].error, "schema play@3: field position_ms: below minimum 0");
  EXPECT_EQ(batch.rejected[3].error, "schema play@3: field position_ms: missing (required)");
  ASSERT_EQ(invalid.size(), 2u);
  EXPECT_EQ(invalid[0].reason, batch.rejected[0].error);
  EXPECT_EQ(find_attr(invalid[0].ev.attrs, "position_ms")->i, -1);
  EXPECT_FALSE(find_attr(invalid[0].ev.attrs, "schema_version")) << "dead letters stay as sent";
  ASSERT_EQ(batch.events.size(), 2u);
  EXPECT_EQ(find_attr(batch.events[0].attrs, "schema_version")->s, "play@3");
  EXPECT_EQ(find_attr(batch.events[0].attrs, "device_type")->s, "tv");
  EXPECT_FALSE(find_attr(batch.events[1].attrs, "schema_version")) << "click has no schema";
  EXPECT_EQ(metrics.value("sluice_schema_violations_total", {{"type", "play"}, {"rule", "min"}}),
            1.0);
  EXPECT_EQ(
    metrics.value("sluice_schema_violations_total", {{"type", "play"}, {"rule", "required"}}),
    1.0);
}

TEST(gateway_quality, rejected_unknown_types_are_counted_under_one_label) {
  auto q = play_quality();
  q.schemas.unknown_types = schema_registry::unknown_policy::reject;
  auto batch = decode_json(R"([{"type":"zap","device_id":"d","ts":1}])", 1000);
  metrics_registry metrics;
  std::vector<quarantined> invalid;
  EXPECT_EQ(apply_quality(batch, q, {}, invalid, metrics), 1u);
  EXPECT_TRUE(batch.events.empty());
  EXPECT_EQ(metrics.value("sluice_schema_violations_total",
                          {{"type", "_unknown"}, {"rule", "unknown-type"}}),
            1.0);
}

struct plain_port : ingest_port {
  void submit(event_batch, commit_callback done) override {
    done(commit_result{});
  }
};

TEST(gateway_quality, a_port_without_a_dead_letter_store_refuses_invalid_events) {
  plain_port port;
  commit_result got;
  std::vector<quarantined> invalid(1);
  port.submit_with_quarantine({event{}}, std::move(invalid),
                              [&](commit_result r) { got = std::move(r); });
  EXPECT_NE(got.error.find("no dead-letter store"), std::string::npos);
  port.submit_with_quarantine({event{}}, {}, [&](commit_result r) { got = std::move(r); });
  EXPECT_EQ(got.error, "");
}

} // namespace
} // namespace sluice::gateway::detail
