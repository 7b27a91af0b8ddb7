#include "app/config.hpp"

#include "actors/log.hpp"
#include "actors/route_history.hpp"
#include "actors/route_table.hpp"
#include "actors/schema_config.hpp"
#include "actors/sinks/registry.hpp"
#include "gateway/tls.hpp"

#include <caf/all.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <caf/io/middleman.hpp>

#include <fstream>
#include <sstream>

namespace sluice {

node_config::node_config() {
  // Sharing scales to many runnable actors (work stealing stalls walking its lists, see STACK.md);
  // two workers leave the io threads a core on small machines. Both can be overridden.
  set("scheduler.policy", caf::atom("sharing"));
  // CAF's middleman carries the cluster's messages (`[cluster]`); idle on a single node.
  load<caf::io::middleman>();
  set("scheduler.max-threads", 2);
  // CAF 0.17 lets an actor drain its whole mailbox per turn; under load a shard flooded with
  // entity answers would hold a worker indefinitely. A bounded turn keeps actors fair.
  set("scheduler.max-throughput", 64);
  opt_group{custom_options_, "sluice"}
    .add(node_name, "node", "name of this node, written into every event as `node`")
    .add(data_dir, "data-dir", "directory holding LMDB, sink files, dead letters, gateway.port")
    .add(routes_file, "routes-file",
         "file holding the [routes.<name>] sections (e.g. conf/routes.conf, relative to the "
         "working directory) instead of this file; empty: routes are in this file");
  opt_group{custom_options_, "pii"}
    .add(pii_kinds, "kinds", "PII kinds detected in string values: card, email, phone, ipv4, ipv6")
    .add(pii_fields, "fields",
         "paths scanned for PII (id, device_id, profile_id or attributes such as attrs.comment; "
         "a map covers everything below it); empty: every string value")
    .add(pii_secret, "secret",
         "HMAC-SHA256 key of pseudonyms (hash actions, pii = \"hash\"), at least 16 bytes; "
         "empty: the environment variable SLUICE_PII_SECRET; hashing without one refuses to start")
    .add(pii_hash_encoding, "hash-encoding", "pseudonym text: hex (64 chars) or base64url (43)");
  opt_group{custom_options_, "gateway"}
    .add(gateway_host, "host", "address the HTTP/WebSocket gateway binds to")
    .add(gateway_port, "port", "TCP port of the gateway; 0 picks a free port")
    .add(gateway_io_threads, "io-threads", "threads running the gateway's sockets")
    .add(max_body_bytes, "max-body-bytes", "largest accepted HTTP body in bytes (larger: 413)")
    .add(max_frame_bytes, "max-frame-bytes",
         "largest accepted WebSocket message in bytes (larger: close code 1009)")
    .add(max_inflight_frames, "max-inflight-frames",
         "WebSocket frames awaiting their ack before the gateway stops reading that socket")
    .add(max_batch_events, "max-batch-events", "most events in one batch (more: 413)")
    .add(gateway_tls_cert, "tls-cert",
         "PEM certificate chain; with tls-key set the gateway serves only HTTPS and WSS (a plain "
         "request fails its TLS handshake); both empty: plain HTTP for local development")
    .add(gateway_tls_key, "tls-key", "PEM private key (unencrypted) of tls-cert")
    .add(gateway_tls_min_version, "tls-min-version", "lowest TLS version accepted: 1.2 or 1.3")
    .add(gateway_idle_timeout, "idle-timeout", "close idle HTTP keep-alive connections after this")
    .add(console_dir, "console-dir",
         "directory of the admin console served at /console (index.html, its modules and "
         "node_modules/uplot), relative to the working directory; read once at start");
  opt_group{custom_options_, "storage"}
    .add(durability, "durability",
         "when commits reach the disk: sync (fsync per group commit, before any ack), periodic "
         "(fsync every sync-interval; a power loss loses up to that much acked data), none (no "
         "fsync; survives a process crash, not a power loss)")
    .add(sync_interval, "sync-interval", "fsync period with durability = periodic")
    .add(initial_map_bytes, "initial-map-bytes", "initial LMDB map size in bytes")
    .add(max_map_bytes, "max-map-bytes",
         "upper bound of the LMDB map in bytes; the map doubles on demand up to this")
    .add(max_log_bytes, "max-log-bytes",
         "while the stored log (what some consumer has not made durable yet) exceeds this, the "
         "gateway refuses batches with 503 and Retry-After, and /readyz names the lagging "
         "consumers; 0 disables the limit")
    .add(max_pending_events, "max-pending-events",
         "events waiting for the next group commit before the gateway refuses more (503)")
    .add(checkpoint_entries_per_commit, "checkpoint-entries-per-commit",
         "device and profile states one group commit writes at most; a larger checkpoint lands "
         "over several commits (at most 16, in larger slices if need be), so the batches acked "
         "by a commit do not wait for thousands of state writes; 0: no bound")
    .add(trim_records_per_commit, "trim-records-per-commit",
         "log records one group commit deletes at most once every consumer is done with them; "
         "the rest go in the next commits; 0: no bound");
  opt_group{custom_options_, "actors"}
    .add(device_shards, "device-shards", "shards owning the devices (hash of device_id)")
    .add(profile_shards, "profile-shards", "shards owning the profiles (hash of profile_id)")
    .add(idle_timeout, "idle-timeout", "devices and profiles idle this long are passivated")
    .add(checkpoint_interval, "checkpoint-interval",
         "device and profile state is committed with its log offset at least this often")
    .add(consumer_window_events, "consumer-window-events",
         "dispatched events a consumer (sink, shard) may have unprocessed; one further behind "
         "catches up from the stored log, so memory stays bounded")
    .add(catch_up_events, "catch-up-events",
         "events per catch-up read of the stored log, shared by every consumer at that position "
         "(restart replay, lagging consumers); larger is faster and holds more memory (up to 3 "
         "decoded chunks); 0: 65536, at most twice and at least half consumer-window-events");
  opt_group{custom_options_, "cluster"}
    .add(cluster_port, "port",
         "TCP port this node publishes its cluster actor on (CAF middleman); 0: a single node, "
         "no cluster (docs/cluster.md)")
    .add(cluster_host, "host", "address peers reach this node's cluster port at (bound and "
                               "advertised)")
    .add(cluster_seeds, "seeds",
         "host:port of cluster ports to contact at start, e.g. [\"10.0.0.1:7101\", "
         "\"10.0.0.2:7101\"]; may include this node; members learn the rest from each other")
    .add(cluster_heartbeat_interval, "heartbeat-interval",
         "how often a node tells every peer it is alive (and which members it knows)")
    .add(cluster_failure_timeout, "failure-timeout",
         "a peer not heard from for this long is down: its keys move to their replicas")
    .add(cluster_vnodes, "vnodes",
         "points per node on the consistent-hash ring (the same on every node); more evens out "
         "shares")
    .add(cluster_forward_window_events, "forward-window-events",
         "events sent to a peer and not yet acknowledged, per peer (bounds memory and BASP "
         "buffers)");
  opt_group{custom_options_, "profiles"}
    .add(completion_ratio, "completion-ratio",
         "a title watched to this fraction of its duration_ms leaves continue-watching")
    .add(max_titles, "max-titles", "titles remembered per profile; least recent go first")
    .add(heartbeat_timeout, "heartbeat-timeout",
         "an interval between two events of a title longer than this is a gap (missing stop), "
         "not watching (docs/profiles.md)")
    .add(seek_tolerance, "seek-tolerance",
         "an interval whose position advanced differently from its event time by more than this "
         "is a seek, not watching")
    .add(reorder_horizon, "reorder-horizon",
         "playback events older than their profile's newest event minus this do not count in "
         "watch time (counted in sluice_profile_late_events_total)")
    .add(watch_time_days, "watch-time-days", "days of watch time kept per profile");
  opt_group{custom_options_, "trending"}
    .add(trending_window, "window",
         "longest trending window (event time); GET /v1/trending?window= may ask for less")
    .add(trending_bucket, "bucket", "trending bucket width; windows are whole multiples of it")
    .add(trending_allowed_lateness, "allowed-lateness",
         "the watermark trails the newest event time by this much; events for a bucket that "
         "ended at or before it are late (excluded from trending, counted in "
         "sluice_aggregate_late_events_total, still delivered to sinks); at most window - bucket");
  opt_group{custom_options_, "genres"}
    .add(genres_retention_days, "retention-days",
         "UTC days of popular genres kept, counting the day of the newest event");
  opt_group{custom_options_, "cowatch"}
    .add(cowatch_top_n, "top-n", "most also-watched titles served per title (largest k)")
    .add(cowatch_max_completions, "max-completions",
         "completed titles remembered per profile (the most recent) for co-occurrence")
    .add(cowatch_max_neighbors, "max-neighbors",
         "co-completed titles counted per title; beyond it the lowest count is dropped");
  opt_group{custom_options_, "schemas"}
    .add(schemas_unknown_types, "unknown-types",
         "events of a type without a [schemas.<type>] section: \"accept\" or \"reject\" (sent "
         "to the dead letters like a schema violation)")
    .add(schemas_version_attribute, "version-attribute",
         "attribute carrying \"<type>@<version>\" on every accepted event that has a schema");
  opt_group{custom_options_, "enrich"}
    .add(enrich_enabled, "enabled",
         "add device_type, country and the clock-skew flag to accepted events at ingest")
    .add(enrich_device_rules, "device-rules",
         "ordered \"<type>:<RE2 pattern>\" rules, tried on the device_model attribute, then on "
         "the User-Agent; the first match wins, none gives \"other\"")
    .add(enrich_geoip_file, "geoip-file",
         "CSV of network,country (CIDR, IPv4 and IPv6; longest prefix wins), relative to the "
         "working directory; empty: no country. A missing file at the default path is skipped")
    .add(enrich_trust_forwarded_for, "trust-forwarded-for",
         "take the client address from the first X-Forwarded-For entry (only behind a proxy "
         "you trust); otherwise the socket peer")
    .add(enrich_max_clock_skew, "max-clock-skew",
         "an event whose ts is more than this ahead of ingest_ts gets the clock-skew attribute "
         "(its ts minus ingest_ts, ms) and is counted")
    .add(enrich_device_model_attribute, "device-model-attribute",
         "attribute the device rules read before the User-Agent")
    .add(enrich_device_type_attribute, "device-type-attribute", "attribute set to the device type")
    .add(enrich_country_attribute, "country-attribute", "attribute set to the country")
    .add(enrich_clock_skew_attribute, "clock-skew-attribute",
         "attribute flagging clock skew (milliseconds ahead)")
    .add(enrich_unknown_country, "unknown-country",
         "country written when the table has no match; empty: no attribute");
  opt_group{custom_options_, "sessions"}
    .add(sessions_enabled, "enabled",
         "assign a session id per device when events are appended to the log")
    .add(sessions_gap, "gap",
         "a device's event more than this (event time) after its previous one starts a session")
    .add(sessions_cache_devices, "cache-devices",
         "device sessions kept in memory (LRU); others are read back from LMDB")
    .add(sessions_attribute, "attribute", "attribute carrying the session id");
  opt_group{custom_options_, "auth"}
    .add(auth_anonymous, "anonymous",
         "scopes granted without a token (ingest, read, admin); for development only: "
         "[\"ingest\"] lets devices send without a token (conf/dev.conf)")
    .add(auth_session_ttl, "session-ttl", "console sessions (POST /v1/auth/login) end after this")
    .add(auth_max_sessions, "max-sessions",
         "console sessions kept; a login beyond it ends the oldest session")
    .add(auth_max_verifications_per_s, "max-verifications-per-s",
         "new tokens verified per second (one PBKDF2 run per configured token each, on an io "
         "thread; verdicts are cached); beyond it 429. Protects against random-token floods")
    .add(auth_audited_failures_per_s, "audited-failures-per-s",
         "401/403 answers written to the audit log per second at most (all are counted in "
         "sluice_auth_failures_total); 0: every one")
    .add(auth_bootstrap_token, "bootstrap-token",
         "with no [tokens.<name>] and no anonymous admin: make an admin token on first start, "
         "print it once on stderr and keep only its hash in <data-dir>/admin-token.hash");
  opt_group{custom_options_, "limits"}
    .add(limits_token_events_per_s, "token-events-per-s",
         "events per second per token (and for anonymous senders together); a batch over it is "
         "refused whole with 429 and Retry-After; 0: unlimited ([tokens.<name>] events-per-s "
         "overrides it)")
    .add(limits_token_burst, "token-burst",
         "events a token may send at once above its rate (0: one second's worth)")
    .add(limits_device_events_per_s, "device-events-per-s",
         "events per second per device_id; events over it are rejected by index (the rest of "
         "the batch goes through; 429 when none does); 0: unlimited")
    .add(limits_device_burst, "device-burst",
         "events a device may send at once above its rate (e.g. its offline buffer)")
    .add(limits_max_devices, "max-devices",
         "device buckets kept in memory (about 150 bytes each); beyond it the least recently "
         "seen device is forgotten (counted when it was not idle long enough to refill)");
  opt_group{custom_options_, "catalog"}
    .add(titles_file, "titles-file",
         "title catalog CSV (id,name,genres,duration), relative to the working directory; "
         "reloaded on SIGHUP and POST /v1/admin/catalog/reload; empty: no catalog. A missing "
         "file at the default path starts with an empty catalog, any other error fails start-up");
}

namespace {

// Collects the dotted names of every leaf in `s`.
void leaves(const caf::settings& s, const std::string& prefix, std::vector<std::string>& out) {
  for (auto& [key, value] : s) {
    auto name = prefix.empty() ? key : prefix + "." + key;
    if (auto sub = caf::get_if<caf::settings>(&value))
      leaves(*sub, name, out);
    else
      out.push_back(name);
  }
}

} // namespace

std::string node_config::load_catalog() {
  node.catalog = std::make_shared<catalog_holder>(
    titles_file.empty() ? titles_file : std::filesystem::absolute(titles_file).string());
  if (titles_file.empty())
    return {};
  if (titles_file == "conf/titles.csv" && !std::filesystem::exists(titles_file)) {
    log_json("warning", "title catalog not found, starting with an empty catalog",
             {{"path", titles_file}});
    return {};
  }
  std::string err;
  if (!node.catalog->reload(err))
    return "catalog.titles-file: " + err;
  return {};
}

std::string node_config::load_quality() {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  auto q = std::make_shared<ingest_quality>();
  caf::settings none;
  auto it = content.find("schemas");
  auto& schemas = it != content.end() && caf::holds_alternative<caf::settings>(it->second)
                    ? caf::get<caf::settings>(it->second)
                    : none;
  if (auto err = load_schemas(schemas, q->schemas); !err.empty())
    return err;
  enrich_options eo;
  eo.enabled = enrich_enabled;
  eo.device_rules = enrich_device_rules;
  eo.geoip_file = enrich_geoip_file;
  if (enrich_geoip_file == "conf/geoip.csv" && !std::filesystem::exists(enrich_geoip_file)) {
    log_json("warning", "GeoIP table not found, events get no country",
             {{"path", enrich_geoip_file}});
    eo.geoip_file.clear();
  }
  eo.trust_forwarded_for = enrich_trust_forwarded_for;
  eo.max_clock_skew_ms = duration_cast<milliseconds>(enrich_max_clock_skew).count();
  eo.device_model_attribute = enrich_device_model_attribute;
  eo.device_type_attribute = enrich_device_type_attribute;
  eo.country_attribute = enrich_country_attribute;
  eo.clock_skew_attribute = enrich_clock_skew_attribute;
  eo.unknown_country = enrich_unknown_country;
  if (eo.device_type_attribute.empty() || eo.country_attribute.empty()
      || eo.clock_skew_attribute.empty())
    return "enrich.*-attribute options must not be empty";
  if (auto err = q->enrich.init(eo); !err.empty())
    return err;
  quality = q;
  gateway.quality = q;
  if (sessions_enabled && (sessions_attribute.empty() || sessions_gap.count() <= 0))
    return "sessions.attribute must not be empty and sessions.gap must be positive";
  node.sessions.enabled = sessions_enabled;
  node.sessions.gap_ms = duration_cast<milliseconds>(sessions_gap).count();
  node.sessions.cache_devices = std::max<size_t>(1, sessions_cache_devices);
  node.sessions.attribute = sessions_attribute;
  return {};
}

std::string node_config::read_routes_file(caf::settings& routes, std::string& source) {
  if (routes_file.empty()) {
    // The config file's text, so that route errors name its line and column.
    if (!config_file_path.empty())
      if (std::ifstream in{config_file_path}; in)
        source.assign(std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{});
    return {};
  }
  if (content.count("routes") > 0)
    return fmt::format("routes are configured twice: in [routes.*] sections of {} and in "
                       "sluice.routes-file = \"{}\"; keep one",
                       config_file_path, routes_file);
  std::ifstream in{routes_file};
  if (!in)
    return fmt::format("sluice.routes-file: cannot read \"{}\" (relative paths start at the "
                       "working directory)",
                       routes_file);
  source.assign(std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{});
  std::istringstream text{source};
  auto parsed = caf::actor_system_config::parse_config(text);
  if (!parsed) {
    route_table unused; // compile_routes_text words the INI error with its line and column
    return routes_file + ": " + compile_routes_text(source, {}, unused);
  }
  if (auto i = parsed->find("routes"); i != parsed->end())
    if (auto r = caf::get_if<caf::settings>(&i->second))
      routes = *r;
  return {};
}

std::string node_config::load_pii() {
  pii_options opts;
  opts.kinds = pii_kinds;
  opts.fields = pii_fields;
  opts.secret = pii_secret;
  opts.hash_encoding = pii_hash_encoding;
  std::string err;
  node.pii = pii_detector::make(opts, err);
  if (!node.pii)
    return err;
  auto secret = resolve_pii_secret(opts);
  if (!secret.empty() && secret.size() < min_pii_secret_bytes)
    return fmt::format("the PII secret (pii.secret or {}) has {} bytes; use at least {} random "
                       "bytes (e.g. openssl rand -hex 32)",
                       pii_secret_env, secret.size(), min_pii_secret_bytes);
  return check_route_secret(node.routes, !secret.empty());
}

std::string node_config::load_access() {
  access = {};
  caf::settings none;
  auto it = content.find("tokens");
  auto& tokens = it != content.end() && caf::holds_alternative<caf::settings>(it->second)
                   ? caf::get<caf::settings>(it->second)
                   : none;
  if (auto err = gateway::load_token_sections(tokens, access.tokens); !err.empty())
    return err;
  std::string err;
  if (!gateway::parse_scopes(auth_anonymous, err))
    return "auth.anonymous: " + err;
  access.anonymous = auth_anonymous;
  access.session_ttl = std::chrono::duration_cast<std::chrono::milliseconds>(auth_session_ttl);
  if (access.session_ttl.count() <= 0 || auth_max_sessions == 0)
    return "auth.session-ttl and auth.max-sessions must be positive";
  access.max_sessions = auth_max_sessions;
  access.verifications_per_s = auth_max_verifications_per_s;
  access.audited_failures_per_s = auth_audited_failures_per_s;
  auto burst = [](size_t rate, size_t b) { return static_cast<double>(b > 0 ? b : rate); };
  access.token_limit = {static_cast<double>(limits_token_events_per_s),
                        burst(limits_token_events_per_s, limits_token_burst)};
  access.device_limit = {static_cast<double>(limits_device_events_per_s),
                         burst(limits_device_events_per_s, limits_device_burst)};
  access.max_devices = std::max<size_t>(1, limits_max_devices);
  return {};
}

std::string node_config::finish() {
  // CAF 0.17 silently ignores unknown keys in the config file: reject them here.
  std::vector<std::string> keys;
  for (auto& [section, value] : content) {
    if (section == "sinks" || section == "routes")
      continue; // validated by their own option tables below
    if (section == "schemas")
      continue; // validated by load_schemas
    if (section == "tokens")
      continue; // validated by gateway::load_token_sections (load_access)
    if (auto sub = caf::get_if<caf::settings>(&value))
      leaves(*sub, section, keys);
    else
      keys.push_back(section);
  }
  for (auto& key : keys) {
    if (key == "config-file" || key.rfind("global.", 0) == 0)
      continue;
    if (custom_options_.qualified_name_lookup(key) == nullptr)
      return fmt::format("unknown option '{}' (see sluice --help for every option)", key);
  }
  auto mode = persistence::parse_durability(durability);
  if (!mode)
    return fmt::format("storage.durability is \"{}\"; use sync, periodic or none", durability);
  if (device_shards == 0 || profile_shards == 0)
    return "actors.device-shards and actors.profile-shards must be at least 1";
  if (completion_ratio <= 0 || completion_ratio > 1)
    return "profiles.completion-ratio must be in (0, 1]";
  if (consumer_window_events < 2 || max_pending_events == 0)
    return "actors.consumer-window-events must be at least 2 and storage.max-pending-events "
           "positive";
  if (max_log_bytes > max_map_bytes)
    return "storage.max-log-bytes must not exceed storage.max-map-bytes";
  if (initial_map_bytes == 0 || max_map_bytes < initial_map_bytes)
    return "storage.initial-map-bytes must be positive and not above storage.max-map-bytes";
  if (max_body_bytes == 0 || max_frame_bytes == 0 || max_inflight_frames == 0
      || max_batch_events == 0)
    return "gateway limits (max-body-bytes, max-frame-bytes, max-inflight-frames, "
           "max-batch-events) must be positive";

  storage.path = data_dir + "/lmdb";
  storage.mode = *mode;
  storage.initial_map_bytes = initial_map_bytes;
  storage.max_map_bytes = max_map_bytes;

  gateway.host = gateway_host;
  gateway.port = gateway_port;
  gateway.io_threads = std::max<size_t>(1, gateway_io_threads);
  gateway.max_body_bytes = max_body_bytes;
  gateway.max_frame_bytes = max_frame_bytes;
  gateway.max_inflight_frames = max_inflight_frames;
  gateway.max_batch_events = max_batch_events;
  gateway.idle_timeout_s = static_cast<uint32_t>(
    std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(gateway_idle_timeout)
                           .count()));
  gateway.tls_cert = gateway_tls_cert;
  gateway.tls_key = gateway_tls_key;
  gateway.tls_min_version = gateway_tls_min_version;
  if (auto err = gateway::check_tls(gateway); !err.empty())
    return err;

  node.node_name = node_name;
  node.data_dir = data_dir;
  node.cluster.enabled = cluster_port != 0;
  node.cluster.host = cluster_host;
  node.cluster.port = cluster_port;
  node.cluster.seeds = cluster_seeds;
  node.cluster.heartbeat_interval = cluster_heartbeat_interval;
  node.cluster.failure_timeout = cluster_failure_timeout;
  node.cluster.vnodes = cluster_vnodes;
  node.cluster.forward_window_events = cluster_forward_window_events;
  if (node.cluster.enabled) {
    if (cluster_host.empty())
      return "cluster.host must name the address peers reach this node at";
    for (auto& seed : cluster_seeds) {
      auto colon = seed.rfind(':');
      unsigned long p = 0;
      try {
        p = colon == std::string::npos ? 0 : std::stoul(seed.substr(colon + 1));
      } catch (const std::exception&) {
        p = 0;
      }
      if (colon == 0 || colon == std::string::npos || p == 0 || p > 65535)
        return fmt::format("cluster.seeds: \"{}\" is not host:port", seed);
    }
    if (cluster_vnodes == 0 || cluster_vnodes > 65536)
      return "cluster.vnodes must be in 1..65536";
    if (cluster_forward_window_events == 0)
      return "cluster.forward-window-events must be positive";
    if (cluster_heartbeat_interval <= caf::timespan{0}
        || cluster_failure_timeout <= cluster_heartbeat_interval)
      return "cluster.failure-timeout must be longer than cluster.heartbeat-interval (> 0)";
  }
  node.device_shards = device_shards;
  node.profile_shards = profile_shards;
  node.idle_timeout = idle_timeout;
  node.checkpoint_interval = checkpoint_interval;
  node.sync_interval = sync_interval;
  node.consumer_window_events = consumer_window_events;
  node.catch_up_events = catch_up_events;
  node.max_log_bytes = max_log_bytes;
  node.max_pending_events = max_pending_events;
  node.checkpoint_entries_per_commit = checkpoint_entries_per_commit;
  node.trim_records_per_commit = trim_records_per_commit;
  node.profiles.completion_ratio = completion_ratio;
  node.profiles.max_titles = max_titles;
  auto ms = [](caf::timespan x) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
  };
  node.profiles.heartbeat_timeout_ms = ms(heartbeat_timeout);
  node.profiles.seek_tolerance_ms = ms(seek_tolerance);
  node.profiles.reorder_horizon_ms = ms(reorder_horizon);
  node.profiles.watch_time_days = static_cast<int64_t>(watch_time_days);
  if (node.profiles.heartbeat_timeout_ms <= 0 || node.profiles.seek_tolerance_ms < 0
      || node.profiles.reorder_horizon_ms < 0 || watch_time_days == 0)
    return "profiles.heartbeat-timeout and profiles.watch-time-days must be positive, "
           "profiles.seek-tolerance and profiles.reorder-horizon not negative";
  {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    auto& agg = node.aggregates;
    agg.window_ms = duration_cast<milliseconds>(trending_window).count();
    agg.bucket_ms = duration_cast<milliseconds>(trending_bucket).count();
    agg.allowed_lateness_ms = duration_cast<milliseconds>(trending_allowed_lateness).count();
    agg.genre_days = genres_retention_days;
    agg.top_n = cowatch_top_n;
    agg.max_completions = cowatch_max_completions;
    agg.max_neighbors = cowatch_max_neighbors;
    if (auto err = agg.validate(); !err.empty())
      return err;
  }
  if (auto err = load_catalog(); !err.empty())
    return err;
  if (auto err = load_quality(); !err.empty())
    return err;
  node.sinks.clear();
  caf::settings empty;
  auto sinks_it = content.find("sinks");
  auto& sinks = sinks_it != content.end() && caf::holds_alternative<caf::settings>(sinks_it->second)
                  ? caf::get<caf::settings>(sinks_it->second)
                  : empty;
  if (auto err = load_sinks(sinks, data_dir, node_name, node.sinks); !err.empty())
    return err;
  std::vector<std::string> sink_names;
  for (auto& s : node.sinks)
    sink_names.push_back(s.name);
  auto routes_it = content.find("routes");
  caf::settings file_routes;
  std::string routes_source;
  if (auto err = read_routes_file(file_routes, routes_source); !err.empty())
    return err;
  auto& routes = !routes_file.empty() ? file_routes
                 : routes_it != content.end()
                     && caf::holds_alternative<caf::settings>(routes_it->second)
                   ? caf::get<caf::settings>(routes_it->second)
                   : empty;
  if (auto err = load_routes(routes, sink_names, node.routes, routes_source); !err.empty()) {
    auto& file = routes_file.empty() ? config_file_path : routes_file;
    return file.empty() ? err : file + ": " + err;
  }
  if (auto err = load_pii(); !err.empty())
    return err;
  if (auto err = load_access(); !err.empty())
    return err;
  node.versioned_routes = true; // hot reload; the config's routes are the first version
  // The routes file's own text (comments kept); routes in the config file are rendered.
  node.routes_text = !routes_file.empty() ? routes_source : render_routes_ini(routes);
  {
    pii_options secret_opts;
    secret_opts.secret = pii_secret;
    node.pii_secret_set = !resolve_pii_secret(secret_opts).empty(); // for swapped routes
  }
  return {};
}

std::string node_config::help() const {
  std::string out = "Usage:\n"
                    "  sluice serve [--config-file=PATH] [--section.key=value ...]\n"
                    "  sluice check --config-file=PATH   validate a config file and exit\n"
                    "  sluice lake snapshots|files|compact|expire --config-file=PATH --table=T ...\n"
                    "                                    the lake's history, files, compaction\n"
                    "  sluice dlq list|replay [--url=URL | --config-file=PATH] ...\n"
                    "                                    dead letters of a running node\n"
                    "  sluice routes check FILE [--config-file=PATH]\n"
                    "                                    validate route INI text offline\n"
                    "  sluice token hash [--generate] [--name=N] [--scopes=a,b]\n"
                    "                                    hash an access token for [tokens.N]\n"
                    "  sluice cluster up|status|down [--nodes N] [--dir DIR] [--base-port P] ...\n"
                    "                                    a local cluster (docs/cluster.md)\n"
                    "  sluice --help\n\n"
                    "Options (config file section [section], key; or --section.key=value):\n";
  std::string current;
  for (auto& opt : custom_options_) {
    auto category = std::string{opt.category().begin(), opt.category().end()};
    bool ours = category == "sluice" || category == "gateway" || category == "storage"
                || category == "actors" || category == "profiles" || category == "catalog"
                || category == "trending" || category == "genres" || category == "cowatch"
                || category == "schemas" || category == "enrich" || category == "sessions"
                || category == "pii" || category == "auth" || category == "limits";
    if (!ours)
      continue;
    if (category != current) {
      out += "\n [" + category + "]\n";
      current = category;
    }
    auto value = opt.get();
    out += fmt::format("  --{}=<{}> (default: {})\n      {}\n",
                       std::string{opt.full_name().begin(), opt.full_name().end()},
                       std::string{opt.type_name().begin(), opt.type_name().end()},
                       value ? caf::to_string(*value) : std::string{"none"},
                       std::string{opt.description().begin(), opt.description().end()});
  }
  out += "\n" + sinks_help();
  out += "\nTokens ([tokens.<name>] sections; docs/access.md; `sluice token hash` makes one):\n"
         + gateway::token_sections_help();
  out += "\nSchemas ([schemas.<type>] sections; docs/schemas.md):\n" + schemas_help();
  out += "\nRoutes ([routes.<name>] sections; [routes._unmatched] takes what no route matched):\n";
  out += route_config::options().help("routes.<name>");
  out += "\nCAF runtime options (scheduler.*, logger.*, middleman.*, ...): sluice serve "
         "--long-help\n";
  return out;
}

} // namespace sluice
