// The console's live feed: totals, rates against the previous sample, ack-latency quantiles over
// the interval, and the per-sink, per-consumer and per-kind groups, from a registry the test fills.

#include "gateway/console_live.hpp"

#include "actors/metrics.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

using namespace sluice;
using namespace sluice::gateway;
using namespace std::chrono_literals;

namespace {

struct console_live_feed : ::testing::Test {
  metrics_registry metrics;
  console_live live{metrics, console_node_info{"node-7", "0.1.0", 1'000'000, [] { return std::string{"ready"}; }}};
  console_live::clock::time_point t0 = console_live::clock::time_point{} + 100s;
  simdjson::dom::parser parser;

  simdjson::dom::element parse(const std::string& json) {
    simdjson::dom::element doc;
    auto err = parser.parse(json).get(doc);
    EXPECT_EQ(err, simdjson::SUCCESS) << json;
    return doc;
  }
  static double number(simdjson::dom::element e) {
    double d = 0;
    if (e.is_int64())
      return static_cast<double>(int64_t(e));
    if (e.is_uint64())
      return static_cast<double>(uint64_t(e));
    EXPECT_EQ(e.get(d), simdjson::SUCCESS);
    return d;
  }
};

} // namespace

TEST_F(console_live_feed, rates_are_the_counter_increase_over_the_time_between_two_samples) {
  auto& received = metrics.get_counter("sluice_events_received_total", "h");
  auto& accepted = metrics.get_counter("sluice_events_accepted_total", "h");
  auto& delivered_a = metrics.get_counter("sluice_sink_delivered_total", "h", {{"sink", "a"}});
  auto& delivered_b = metrics.get_counter("sluice_sink_delivered_total", "h", {{"sink", "b"}});
  received.inc(1000);
  accepted.inc(990);
  auto first = parse(live.sample(t0, 2'000'000));
  EXPECT_EQ(number(first["interval_s"]), 0);
  EXPECT_EQ(number(first["ingest"]["received"]), 1000);
  EXPECT_EQ(number(first["ingest"]["in_per_s"]), 0) << "no rate before a second sample";

  received.inc(500);
  accepted.inc(400);
  delivered_a.inc(300);
  delivered_b.inc(100);
  auto second = parse(live.sample(t0 + 2s, 2'002'000));
  EXPECT_EQ(number(second["interval_s"]), 2);
  EXPECT_EQ(number(second["ingest"]["received"]), 1500);
  EXPECT_EQ(number(second["ingest"]["in_per_s"]), 250);
  EXPECT_EQ(number(second["ingest"]["accepted_per_s"]), 200);
  EXPECT_EQ(number(second["out"]["delivered"]), 400);
  EXPECT_EQ(number(second["out"]["per_s"]), 200) << "events out is the sum over sinks";
  EXPECT_EQ(number(second["node"]["uptime_s"]), 1002);
  EXPECT_EQ(std::string_view(second["node"]["id"]), "node-7");
}

TEST_F(console_live_feed, ack_latency_quantiles_cover_only_the_observations_since_the_previous_sample) {
  auto& h = metrics.get_histogram("sluice_gateway_ack_latency_seconds", "h", {0.001, 0.01, 0.1});
  for (int i = 0; i < 100; ++i)
    h.observe(0.05); // an old slow period: all in (0.01, 0.1]
  live.sample(t0, 1);
  for (int i = 0; i < 100; ++i)
    h.observe(0.0005); // now: all in (0, 0.001]
  auto doc = parse(live.sample(t0 + 1s, 1001));
  auto lat = doc["ack_latency_ms"];
  // p50 of 100 observations in the first bucket: halfway through [0, 1 ms].
  EXPECT_DOUBLE_EQ(number(lat["p50"]), 0.5);
  EXPECT_DOUBLE_EQ(number(lat["p99"]), 0.99);
  EXPECT_EQ(number(lat["window_count"]), 100);
  EXPECT_EQ(number(lat["count"]), 200);
  // No observation in the next interval: no quantile (the chart shows a gap, not a stale value).
  auto idle = parse(live.sample(t0 + 2s, 2001));
  EXPECT_TRUE(idle["ack_latency_ms"]["p50"].is_null());
}

TEST(console_live_quantile, interpolates_inside_the_bucket_and_caps_at_the_last_bound) {
  std::vector<double> bounds{1, 2, 4};
  EXPECT_DOUBLE_EQ(histogram_quantile(0.5, bounds, {0, 10, 0, 0}), 1.5);
  EXPECT_DOUBLE_EQ(histogram_quantile(0.75, bounds, {5, 0, 5, 0}), 3.0);
  EXPECT_DOUBLE_EQ(histogram_quantile(0.99, bounds, {0, 0, 0, 7}), 4.0);
  EXPECT_LT(histogram_quantile(0.5, bounds, {0, 0, 0, 0}), 0);
}

TEST_F(console_live_feed, sinks_consumers_rejections_and_actors_are_grouped_by_their_label) {
  metric_labels files{{"sink", "files"}};
  metrics.get_gauge("sluice_sink_healthy", "h", files).set(1);
  metrics.get_gauge("sluice_sink_circuit_open", "h", files).set(0);
  metrics.get_gauge("sluice_sink_queued_events", "h", files).set(42);
  metrics.get_counter("sluice_sink_retries_total", "h", files).inc(3);
  metrics.get_counter("sluice_sink_dropped_total", "h", files).inc(2);
  metrics.get_gauge("sluice_sink_healthy", "h", {{"sink", "lake"}}).set(0);
  metrics.get_gauge("sluice_sink_circuit_open", "h", {{"sink", "lake"}}).set(1);
  metrics.get_gauge("sluice_consumer_lag_events", "h", {{"consumer", "files"}}).set(1234);
  metrics.get_gauge("sluice_consumer_lagging", "h", {{"consumer", "files"}}).set(1);
  metrics.get_counter("sluice_events_rejected_total", "h", {{"reason", "schema"}}).inc(5);
  metrics.get_counter("sluice_events_rejected_total", "h", {{"reason", "missing_field"}});
  metrics.get_gauge("sluice_actors_active", "h", {{"kind", "device"}, {"shard", "0"}}).set(3);
  metrics.get_gauge("sluice_actors_active", "h", {{"kind", "device"}, {"shard", "1"}}).set(4);
  metrics.get_counter("sluice_actors_passivated_total", "h", {{"kind", "device"}, {"shard", "1"}})
    .inc(9);
  metrics.get_counter("sluice_actors_restored_total", "h", {{"kind", "device"}, {"shard", "0"}})
    .inc(2);
  live.set_address("127.0.0.1:8080");
  auto doc = parse(live.sample(t0, 5));

  auto sinks = doc["sinks"].get_array();
  ASSERT_EQ(sinks.size(), 2u);
  auto f = sinks.at(0).value();
  EXPECT_EQ(std::string_view(f["name"]), "files");
  EXPECT_TRUE(bool(f["healthy"]));
  EXPECT_FALSE(bool(f["circuit_open"]));
  EXPECT_EQ(number(f["queued"]), 42);
  EXPECT_EQ(number(f["retries"]), 3);
  EXPECT_EQ(number(f["dropped"]), 2);
  auto l = sinks.at(1).value();
  EXPECT_EQ(std::string_view(l["name"]), "lake");
  EXPECT_FALSE(bool(l["healthy"]));
  EXPECT_TRUE(bool(l["circuit_open"]));

  auto consumer = doc["consumers"].at(0).value();
  EXPECT_EQ(std::string_view(consumer["name"]), "files");
  EXPECT_EQ(number(consumer["lag_events"]), 1234);
  EXPECT_TRUE(bool(consumer["lagging"]));

  auto rejections = doc["rejections"].get_array();
  ASSERT_EQ(rejections.size(), 1u) << "reasons that never happened are left out";
  EXPECT_EQ(std::string_view(rejections.at(0)["reason"]), "schema");
  EXPECT_EQ(number(rejections.at(0)["total"]), 5);

  auto device = doc["actors"].at(0).value();
  EXPECT_EQ(std::string_view(device["kind"]), "device");
  EXPECT_EQ(number(device["shards"]), 2);
  EXPECT_EQ(number(device["active"]), 7) << "summed over shards";
  EXPECT_EQ(number(device["passivated"]), 9);
  EXPECT_EQ(number(device["resting"]), 7);
  EXPECT_EQ(std::string_view(doc["node"]["address"]), "127.0.0.1:8080");
}

TEST_F(console_live_feed, snapshots_closer_than_the_minimum_interval_share_one_sample) {
  console_live slow{metrics, console_node_info{"n", "v", 0, nullptr}, std::chrono::hours{1}};
  auto& received = metrics.get_counter("sluice_events_received_total", "h");
  auto a = slow.snapshot();
  received.inc(10);
  auto b = slow.snapshot();
  EXPECT_EQ(a, b) << "a second open console must not shorten the rate interval";
  EXPECT_EQ(number(parse(b)["ingest"]["received"]), 0);
  EXPECT_EQ(std::string_view(parse(b)["node"]["health"]), "ready");
}

TEST_F(console_live_feed, the_cluster_view_is_embedded_verbatim_and_left_out_without_one) {
  EXPECT_EQ(parse(live.sample(t0, 1)).at_key("cluster").error(), simdjson::NO_SUCH_FIELD)
    << "a node without a cluster view has no \"cluster\" key";
  const std::string view
    = R"({"enabled":true,"self":"node-1","ring_version":5,"replicas":2,)"
      R"("members":[{"name":"node-1","address":"127.0.0.1:7101","http":"http://127.0.0.1:8081",)"
      R"("state":"up","self":true,"last_heard_ms":0,"share":0.334},)"
      R"({"name":"node-2","address":"127.0.0.1:7102","http":"http://127.0.0.1:8082",)"
      R"("state":"down","self":false,"last_heard_ms":4200,"share":0}],)"
      R"("forwarders":[{"peer":"node-2","state":"down","acked_upto":123,"sent_upto":130,)"
      R"("head":140,"backlog_events":17,"in_flight_events":7,"resent_events":0}],)"
      R"("replication":{"pending_batches":0,"last_lag_ms":2}})";
  console_live clustered{metrics, console_node_info{"node-1", "v", 0, nullptr, [&] { return view; }}};
  auto json = clustered.sample(t0, 1);
  EXPECT_NE(json.find(",\"cluster\":" + view + ","), std::string::npos) << json;
  auto doc = parse(json);
  auto cluster = doc["cluster"];
  EXPECT_EQ(bool(cluster["enabled"]), true);
  EXPECT_EQ(number(cluster["ring_version"]), 5);
  auto members = simdjson::dom::array(cluster["members"]);
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(std::string_view(members.at(1)["state"]), "down");
  EXPECT_EQ(number(cluster["forwarders"].at(0)["backlog_events"]), 17);
  EXPECT_EQ(std::string_view(doc["node"]["id"]), "node-1") << "the rest of the snapshot is intact";
}

TEST_F(console_live_feed, a_cluster_view_that_is_not_a_json_object_is_named_and_the_snapshot_stays_valid) {
  std::string view = R"({"enabled":true,"members":[)"; // cut short
  console_live clustered{metrics, console_node_info{"node-1", "v", 0, nullptr, [&] { return view; }}};
  auto doc = parse(clustered.sample(t0, 1));
  EXPECT_EQ(doc.at_key("cluster").error(), simdjson::NO_SUCH_FIELD);
  EXPECT_NE(std::string_view(doc["cluster_error"]).find("not JSON"), std::string_view::npos);
  view = "[1,2]";
  doc = parse(clustered.sample(t0 + 1s, 2));
  EXPECT_EQ(std::string_view(doc["cluster_error"]), "the cluster view is not a JSON object");
  view = "";
  doc = parse(clustered.sample(t0 + 2s, 3));
  EXPECT_EQ(doc.at_key("cluster").error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(doc.at_key("cluster_error").error(), simdjson::NO_SUCH_FIELD) << "empty: no view yet";
}

TEST_F(console_live_feed, the_cluster_view_is_asked_once_per_sample_not_once_per_open_console) {
  int calls = 0;
  console_live slow{metrics,
                    console_node_info{"n", "v", 0, nullptr,
                                      [&] {
                                        ++calls;
                                        return std::string{R"({"enabled":false})"};
                                      }},
                    std::chrono::hours{1}};
  auto a = slow.snapshot();
  auto b = slow.snapshot();
  auto c = slow.snapshot();
  EXPECT_EQ(calls, 1) << "three open consoles within one interval share one cluster view";
  EXPECT_EQ(a, c);
  EXPECT_EQ(bool(parse(b)["cluster"]["enabled"]), false);
}
