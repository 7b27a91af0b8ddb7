#pragma once

// What the HTTP and WebSocket fuzz targets share: the gateway's request-side steps after Beast has
// parsed a request or a message, rebuilt from the plain-C++ helpers of gateway/internal.hpp and
// gateway/quality.hpp in the order server.cpp and ws_session.cpp call them, with the schemas and
// enrichment of conf/sluice.conf. Every reply body must be valid JSON.

#include "actors/metrics.hpp"
#include "actors/schema_config.hpp"
#include "gateway/internal.hpp"
#include "gateway/quality.hpp"
#include "tests/fuzz/fuzz_common.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/settings.hpp>

#include <unistd.h>

#include <memory>
#include <string>

namespace sluice::fuzz {

/// One process-wide gateway context (built on first use, then read-only like the server's).
struct gateway_fixture {
  gateway::config cfg;
  metrics_registry registry;
  gateway::detail::gateway_metrics metrics{registry};
  std::shared_ptr<ingest_quality> quality = std::make_shared<ingest_quality>();

  gateway_fixture() {
    if (::chdir(SLUICE_SOURCE_DIR) != 0) // conf/ paths are relative to the source root
      fail("cannot chdir to the source root", SLUICE_SOURCE_DIR);
    auto conf = caf::actor_system_config::parse_config_file("conf/sluice.conf");
    if (!conf)
      fail("conf/sluice.conf does not parse");
    caf::settings none;
    auto it = conf->find("schemas");
    auto& schemas = it != conf->end() && caf::holds_alternative<caf::settings>(it->second)
                      ? caf::get<caf::settings>(it->second)
                      : none;
    if (auto err = load_schemas(schemas, quality->schemas); !err.empty())
      fail("conf/sluice.conf: schemas", err);
    enrich_options eo;
    eo.enabled = true;
    eo.geoip_file = "conf/geoip.csv";
    if (auto err = quality->enrich.init(eo); !err.empty())
      fail("enrichment", err);
    cfg.quality = quality;
  }

  static gateway_fixture& get() {
    static gateway_fixture instance;
    return instance;
  }

  /// A decoded client batch as `POST /v1/events` and a WebSocket message treat it, up to the
  /// ingest port: limits, the 400/413 error bodies, quality (schemas + enrichment), the per-event
  /// rejection counts and the ack bodies. Returns the status the client would get.
  unsigned answer_batch(std::string_view bytes, bool json, const client_info& client,
                        uint64_t seq) {
    using namespace gateway::detail;
    decode_limits limits;
    limits.max_events = cfg.max_batch_events;
    auto batch = json ? decode_json(bytes, fixed_ingest_ts, limits)
                      : decode_msgpack(bytes, fixed_ingest_ts, limits);
    check_decoded(batch);
    if (!batch.ok()) {
      unsigned code = is_too_many_events(batch, limits.max_events) ? 413 : 400;
      std::string out = "{\"error\":";
      append_json_string(out, batch.error);
      out += ",\"offset\":" + std::to_string(batch.error_offset) + "}";
      require_valid_json(out, "HTTP 400 body is not JSON");
      require_valid_json(ws_error_frame(batch.error, batch.error_offset, batch.batch_id, seq),
                         "WebSocket error frame is not JSON");
      return code;
    }
    metrics.events_received.inc(batch.total);
    metrics.count_rejections(batch.rejected);
    std::vector<gateway::quarantined> invalid;
    auto total_before = batch.events.size() + batch.rejected.size();
    auto n = apply_quality(batch, *quality, client, invalid, registry);
    if (n != invalid.size())
      fail("apply_quality: violations != quarantined events");
    if (batch.events.size() + batch.rejected.size() != total_before)
      fail("apply_quality lost or invented events");
    for (size_t i = 1; i < batch.rejected.size(); ++i)
      if (batch.rejected[i].index <= batch.rejected[i - 1].index)
        fail("apply_quality: rejections not sorted by index");
    for (const auto& e : batch.events) {
      std::string out;
      append_json(out, e);
      require_valid_json(out, "an enriched event renders as invalid JSON");
    }
    for (const auto& q : invalid)
      require_valid_json(json_error(q.reason), "a quarantine reason breaks its JSON body");
    require_valid_json(http_ack_body(batch.events.size(), batch.rejected, batch.batch_id),
                       "HTTP ack body is not JSON");
    require_valid_json(ws_ack_frame(batch.batch_id, seq, batch.events.size(), batch.rejected),
                       "WebSocket ack frame is not JSON");
    require_valid_json(ws_commit_failed_frame(batch.batch_id, seq, "log full", 1),
                       "WebSocket commit-failed frame is not JSON");
    return 200;
  }
};

} // namespace sluice::fuzz
