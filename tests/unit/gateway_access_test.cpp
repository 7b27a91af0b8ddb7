// The access policy's parts without a server: token hashes, token buckets, the bounded device map,
// authorisation decisions, console sessions with CSRF, rate limits of decoded batches, the audit log.

#include "gateway/access.hpp"

#include "actors/metrics.hpp"
#include "gateway/audit.hpp"
#include "gateway/rate_limit.hpp"
#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

using namespace sluice;
using namespace sluice::gateway;

namespace {

constexpr uint32_t test_iterations = 1000; // the minimum: keeps the tests fast
constexpr int64_t s_ns = 1000000000;

request_head head(std::string_view method, std::string_view path, std::string_view authorization = {},
                  std::string_view cookie = {}) {
  request_head h;
  h.method = method;
  h.path = path;
  h.authorization = authorization;
  h.cookie = cookie;
  h.peer = "127.0.0.1";
  h.host = "127.0.0.1:8080";
  return h;
}

struct policy_fixture {
  metrics_registry metrics;
  std::string ingest_token = "tok-ingest-1";
  std::string reader_token = "tok-read-1";
  std::string admin_token = "tok-admin-1";
  std::shared_ptr<audit_log> audit = std::make_shared<audit_log>("");
  std::unique_ptr<access_control> policy;

  explicit policy_fixture(access_options opts = {}) {
    opts.tokens.push_back({"devices", make_kdf_hash(ingest_token, test_iterations), {"ingest"}, -1, -1});
    opts.tokens.push_back({"dash", make_kdf_hash(reader_token, test_iterations), {"read"}, -1, -1});
    opts.tokens.push_back({"ops", make_kdf_hash(admin_token, test_iterations), {"admin"}, -1, -1});
    opts.audited_failures_per_s = 0; // audit every failure
    policy = std::make_unique<access_control>(std::move(opts), metrics, audit);
  }
  std::string bearer(const std::string& t) {
    return "Bearer " + t;
  }
};

decoded_batch batch_of(const std::vector<std::string>& devices) {
  std::string json = "[";
  for (size_t i = 0; i < devices.size(); ++i) {
    if (i > 0)
      json += ',';
    json += "{\"type\":\"play\",\"device_id\":\"" + devices[i] + "\",\"ts\":1}";
  }
  json += "]";
  return decode_json(json, 1);
}

} // namespace

// -- token hashes ---------------------------------------------------------------------------------

TEST(gateway_access, a_token_hash_is_pbkdf2_sha256_with_iterations_salt_and_hash_and_verifies) {
  auto text = make_kdf_hash("s3cret", test_iterations);
  ASSERT_EQ(text.rfind("pbkdf2-sha256$1000$", 0), 0u) << text;
  std::string err;
  auto parsed = parse_kdf_hash(text, err);
  ASSERT_TRUE(parsed) << err;
  EXPECT_EQ(parsed->iterations, 1000u);
  EXPECT_EQ(parsed->salt.size(), kdf_salt_bytes);
  EXPECT_EQ(parsed->hash.size(), kdf_hash_bytes);
  EXPECT_TRUE(kdf_verify("s3cret", *parsed));
  EXPECT_FALSE(kdf_verify("s3cres", *parsed));
  EXPECT_FALSE(kdf_verify("", *parsed));
  // a fresh salt per hash: the same token never hashes to the same text
  EXPECT_NE(make_kdf_hash("s3cret", test_iterations), text);
}

TEST(gateway_access, malformed_token_hashes_are_refused_naming_what_is_wrong) {
  std::string err;
  EXPECT_FALSE(parse_kdf_hash("s3cret", err));
  EXPECT_NE(err.find("pbkdf2-sha256$<iterations>"), std::string::npos);
  EXPECT_FALSE(parse_kdf_hash("sha256$1000$c2FsdHNhbHQ=$aGFzaA==", err));
  EXPECT_FALSE(parse_kdf_hash("pbkdf2-sha256$10$c2FsdHNhbHRzYWx0$aGFzaA==", err));
  EXPECT_NE(err.find("iterations"), std::string::npos);
  EXPECT_FALSE(parse_kdf_hash("pbkdf2-sha256$1000$!!!!$aGFzaA==", err));
  EXPECT_NE(err.find("salt"), std::string::npos);
  EXPECT_FALSE(parse_kdf_hash("pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$aGFzaA==", err));
  EXPECT_NE(err.find("hash"), std::string::npos);
}

TEST(gateway_access, generated_tokens_carry_256_random_bits) {
  auto a = generate_token();
  auto b = generate_token();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("sluice_", 0), 0u);
  EXPECT_EQ(a.size(), 7u + 43u); // 32 bytes in base64url without padding
}

TEST(gateway_access, token_sections_are_validated_by_their_option_table) {
  auto section = [](std::string hash, std::vector<std::string> scopes) {
    caf::settings s;
    s["hash"] = std::move(hash);
    caf::config_value::list l;
    for (auto& x : scopes)
      l.emplace_back(x);
    s["scopes"] = std::move(l);
    return s;
  };
  std::vector<token_spec> out;
  auto load_one = [&](const std::string& name, caf::settings section) {
    caf::settings tokens;
    tokens[name] = std::move(section);
    return load_token_sections(tokens, out);
  };
  EXPECT_EQ(load_one("ops", section(make_kdf_hash("x", test_iterations), {"admin"})), "");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "ops");
  EXPECT_NE(load_one("bad", section("plain-text-token", {"admin"})).find("tokens.bad.hash"),
            std::string::npos);
  EXPECT_NE(load_one("typo", section(make_kdf_hash("x", test_iterations), {"amdin"}))
              .find("unknown scope \"amdin\""),
            std::string::npos);
  auto extra = section(make_kdf_hash("x", test_iterations), {"read"});
  extra["scope"] = std::string{"read"};
  EXPECT_NE(load_one("extra", extra).find("unknown key 'tokens.extra.scope'"), std::string::npos);
}

TEST(gateway_access, admin_implies_read_and_ingest_stays_separate) {
  std::string err;
  auto s = parse_scopes({"admin"}, err);
  ASSERT_TRUE(s);
  EXPECT_TRUE(*s & scope_bit(scope::read));
  EXPECT_FALSE(*s & scope_bit(scope::ingest));
  EXPECT_EQ(scopes_json(*s), "[\"read\",\"admin\"]");
}

// -- token buckets --------------------------------------------------------------------------------

TEST(gateway_access, a_bucket_starts_full_refills_at_its_rate_and_caps_at_its_burst) {
  bucket_limit lim{10, 20};
  token_bucket b;
  EXPECT_EQ(b.take(20, lim, 0, false), 20u);
  EXPECT_EQ(b.take(1, lim, 0, false), 0u);
  EXPECT_DOUBLE_EQ(b.wait_s(5, lim), 0.5);
  EXPECT_EQ(b.take(5, lim, s_ns / 2, false), 5u); // 0.5 s at 10/s
  EXPECT_EQ(b.take(1, lim, s_ns / 2, false), 0u);
  EXPECT_EQ(b.take(100, lim, 100 * s_ns, true), 20u); // refilled to the burst, not beyond
  EXPECT_EQ(b.take(3, lim, 100 * s_ns + s_ns / 10, true), 1u); // partial grant: 1 of 3
}

TEST(gateway_access, a_request_over_the_burst_passes_only_on_a_full_bucket_and_leaves_debt) {
  bucket_limit lim{10, 20};
  token_bucket b;
  EXPECT_EQ(b.take(50, lim, 0, false), 50u); // full bucket: allowed, 30 in debt
  EXPECT_EQ(b.take(1, lim, 3 * s_ns, false), 0u); // 3 s repaid the debt only
  EXPECT_EQ(b.take(1, lim, 3 * s_ns + s_ns / 10, false), 1u);
  EXPECT_EQ(b.take(50, lim, 4 * s_ns, false), 0u); // not full: an oversized request waits
}

TEST(gateway_access, a_zero_rate_is_unlimited) {
  token_bucket b;
  EXPECT_EQ(b.take(1000000, bucket_limit{0, 0}, 0, false), 1000000u);
  bucket_map m{bucket_limit{0, 0}, 10};
  EXPECT_EQ(m.take("d", 1000000, 0), 1000000u);
  EXPECT_EQ(m.size(), 0u); // nothing remembered
}

TEST(gateway_access, the_device_map_stays_bounded_and_forgets_the_least_recently_seen) {
  bucket_map m{bucket_limit{1, 2}, 64, 4}; // 16 per shard
  for (int i = 0; i < 100000; ++i)
    m.take("device-" + std::to_string(i), 1, 0);
  EXPECT_LE(m.size(), m.max_keys());
  EXPECT_EQ(m.max_keys(), 64u);
  // every bucket above was evicted while still not full again (1 of 2 tokens left): counted
  EXPECT_GT(m.evictions_of_active(), 0u);
  // a device that keeps sending stays remembered (and limited) among many one-off devices
  bucket_map busy{bucket_limit{1, 2}, 64, 1};
  EXPECT_EQ(busy.take("hot", 2, 0), 2u);
  for (int i = 0; i < 1000; ++i) {
    busy.take("cold-" + std::to_string(i), 1, 0);
    EXPECT_EQ(busy.take("hot", 1, 0), 0u) << "hot device forgotten after " << i;
  }
}

TEST(gateway_access, buckets_are_safe_from_many_threads) {
  bucket_map m{bucket_limit{1, 1000}, 1000};
  std::atomic<size_t> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        granted += m.take("same-device", 1, 0);
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(granted.load(), 1000u); // exactly the burst, no more
}

// -- authorisation --------------------------------------------------------------------------------

TEST(gateway_access, no_token_is_401_a_wrong_scope_403_and_the_right_one_passes) {
  policy_fixture f;
  auto& p = *f.policy;
  auto none = p.authorize(head("GET", "/v1/trending"), scope::read);
  EXPECT_FALSE(none.allowed);
  EXPECT_EQ(none.refusal.status, 401u);
  EXPECT_NE(none.refusal.body.find("\"missing\":\"token\""), std::string::npos);
  ASSERT_FALSE(none.refusal.headers.empty());
  EXPECT_EQ(none.refusal.headers[0].first, "WWW-Authenticate");
  auto bad = p.authorize(head("GET", "/v1/trending", "Bearer nope"), scope::read);
  EXPECT_EQ(bad.refusal.status, 401u);
  EXPECT_NE(bad.refusal.body.find("invalid token"), std::string::npos);
  auto malformed = p.authorize(head("GET", "/v1/trending", "Basic abc"), scope::read);
  EXPECT_EQ(malformed.refusal.status, 401u);
  EXPECT_NE(malformed.refusal.body.find("malformed Authorization"), std::string::npos);
  auto wrong = p.authorize(head("GET", "/v1/trending", f.bearer(f.ingest_token)), scope::read);
  EXPECT_EQ(wrong.refusal.status, 403u);
  EXPECT_NE(wrong.refusal.body.find("\"required\":\"read\""), std::string::npos);
  EXPECT_NE(wrong.refusal.body.find("\"scopes\":[\"ingest\"]"), std::string::npos);
  auto right = p.authorize(head("GET", "/v1/trending", f.bearer(f.reader_token)), scope::read);
  EXPECT_TRUE(right.allowed);
  EXPECT_EQ(right.principal, "dash");
  auto admin_reads = p.authorize(head("GET", "/v1/trending", f.bearer(f.admin_token)), scope::read);
  EXPECT_TRUE(admin_reads.allowed);
  auto admin_ingests = p.authorize(head("POST", "/v1/events", f.bearer(f.admin_token)), scope::ingest);
  EXPECT_EQ(admin_ingests.refusal.status, 403u);
  EXPECT_TRUE(p.authorize(head("GET", "/healthz"), scope::open).allowed);
  EXPECT_EQ(f.metrics.value("sluice_auth_failures_total", {{"reason", "missing_credentials"}}), 1);
  EXPECT_EQ(f.metrics.value("sluice_auth_failures_total", {{"reason", "invalid_token"}}), 1);
  EXPECT_EQ(f.metrics.value("sluice_auth_failures_total", {{"reason", "scope"}}), 2);
  auto audited = f.audit->newest(10);
  ASSERT_EQ(audited.size(), 5u);
  EXPECT_NE(audited[0].find("\"action\":\"auth.forbidden\""), std::string::npos);
}

TEST(gateway_access, anonymous_scopes_are_granted_without_a_token_and_nothing_else) {
  access_options opts;
  opts.anonymous = {"ingest"};
  policy_fixture f{opts};
  EXPECT_TRUE(f.policy->authorize(head("POST", "/v1/events"), scope::ingest).allowed);
  EXPECT_EQ(f.policy->authorize(head("GET", "/metrics"), scope::read).refusal.status, 401u);
  // a token that is presented must be valid even where anonymous access would do
  EXPECT_EQ(f.policy->authorize(head("POST", "/v1/events", "Bearer wrong"), scope::ingest)
              .refusal.status,
            401u);
}

TEST(gateway_access, new_tokens_are_verified_within_a_budget_and_verdicts_are_cached) {
  access_options opts;
  opts.verifications_per_s = 0.001; // burst 1 (at least one)
  policy_fixture f{opts};
  EXPECT_TRUE(f.policy->authorize(head("GET", "/x", f.bearer(f.reader_token)), scope::read).allowed);
  // cached: no budget needed again
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(f.policy->authorize(head("GET", "/x", f.bearer(f.reader_token)), scope::read).allowed);
  auto over = f.policy->authorize(head("GET", "/x", "Bearer another"), scope::read);
  EXPECT_EQ(over.refusal.status, 429u);
  EXPECT_EQ(f.metrics.value("sluice_auth_failures_total", {{"reason", "verification_budget"}}), 1);
}

// -- sessions -------------------------------------------------------------------------------------

TEST(gateway_access, a_session_cookie_authenticates_and_state_changes_need_the_csrf_token) {
  policy_fixture f;
  auto& p = *f.policy;
  access_control::session_view s;
  std::string id;
  ASSERT_FALSE(p.login(f.admin_token, s, id));
  EXPECT_EQ(s.principal, "ops");
  EXPECT_EQ(id.size(), 43u);
  EXPECT_EQ(p.session_cookie(id), "sluice_session=" + id + "; HttpOnly; SameSite=Strict; Path=/");
  auto cookie = "theme=dark; sluice_session=" + id;
  EXPECT_TRUE(p.authorize(head("GET", "/v1/admin/routes", {}, cookie), scope::admin).allowed);
  auto put = head("PUT", "/v1/admin/routes", {}, cookie);
  auto missing = p.authorize(put, scope::admin);
  EXPECT_EQ(missing.refusal.status, 403u);
  EXPECT_NE(missing.refusal.body.find("X-CSRF-Token"), std::string::npos);
  put.csrf_token = "wrong";
  EXPECT_EQ(p.authorize(put, scope::admin).refusal.status, 403u);
  put.csrf_token = s.csrf;
  EXPECT_TRUE(p.authorize(put, scope::admin).allowed);
  // the WebSocket upgrade cannot carry the header: its Origin must match Host
  auto live = head("GET", "/v1/admin/live", {}, cookie);
  live.origin = "https://evil.example";
  EXPECT_EQ(p.authorize(live, scope::admin).refusal.status, 403u);
  live.origin = "http://127.0.0.1:8080";
  EXPECT_TRUE(p.authorize(live, scope::admin).allowed);
  EXPECT_EQ(p.logout(cookie), "ops");
  EXPECT_EQ(p.authorize(head("GET", "/v1/admin/routes", {}, cookie), scope::admin).refusal.status,
            401u);
  EXPECT_FALSE(p.session_of(cookie));
}

TEST(gateway_access, sessions_expire_after_their_ttl_and_stay_bounded) {
  access_options opts;
  opts.session_ttl = std::chrono::milliseconds{50};
  opts.max_sessions = 3;
  policy_fixture f{opts};
  access_control::session_view s;
  std::string id;
  ASSERT_FALSE(f.policy->login(f.reader_token, s, id));
  EXPECT_TRUE(f.policy->session_of("sluice_session=" + id));
  std::this_thread::sleep_for(std::chrono::milliseconds{80}); // the TTL itself is the subject
  EXPECT_FALSE(f.policy->session_of("sluice_session=" + id));
  for (int i = 0; i < 10; ++i)
    ASSERT_FALSE(f.policy->login(f.reader_token, s, id));
  EXPECT_LE(f.policy->session_count(), 3u);
  auto bad = f.policy->login("nope", s, id);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401u);
}

// -- rate limits of batches -----------------------------------------------------------------------

TEST(gateway_access, a_batch_over_its_tokens_bucket_is_refused_whole_with_retry_after) {
  access_options opts;
  opts.token_limit = {10, 10};
  opts.device_limit = {0, 0};
  policy_fixture f{opts};
  auto b = batch_of(std::vector<std::string>(8, "d"));
  EXPECT_FALSE(f.policy->limit("dash", b));
  auto again = batch_of(std::vector<std::string>(8, "d"));
  auto refused = f.policy->limit("dash", again);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429u);
  ASSERT_EQ(refused->headers.size(), 1u);
  EXPECT_EQ(refused->headers[0].first, "Retry-After");
  EXPECT_EQ(refused->headers[0].second, "1");
  EXPECT_NE(refused->body.find("\"kind\":\"token\""), std::string::npos);
  EXPECT_EQ(f.metrics.value("sluice_rate_limited_total", {{"kind", "token"}}), 8);
  // another token has its own bucket
  auto other = batch_of(std::vector<std::string>(8, "d"));
  EXPECT_FALSE(f.policy->limit("ops", other));
}

TEST(gateway_access, events_over_their_devices_bucket_are_rejected_by_index_and_the_rest_pass) {
  access_options opts;
  opts.device_limit = {1, 2};
  policy_fixture f{opts};
  // index 2 is an envelope rejection (no device_id); the limit must keep client indices
  auto b = decode_json(R"([{"type":"a","device_id":"hot","ts":1},{"type":"a","device_id":"cold","ts":1},
    {"type":"a","ts":1},{"type":"a","device_id":"hot","ts":1},{"type":"a","device_id":"hot","ts":1},
    {"type":"a","device_id":"hot","ts":1}])",
                       1);
  ASSERT_EQ(b.events.size(), 5u);
  EXPECT_FALSE(f.policy->limit("anonymous", b));
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(b.events[0].device_id, "hot");
  EXPECT_EQ(b.events[1].device_id, "cold");
  EXPECT_EQ(b.events[2].device_id, "hot");
  ASSERT_EQ(b.rejected.size(), 3u);
  EXPECT_EQ(b.rejected[0].index, 2u);
  EXPECT_EQ(b.rejected[1].index, 4u);
  EXPECT_EQ(b.rejected[2].index, 5u);
  EXPECT_EQ(b.rejected[1].error, "rate limited: device 'hot' over 1 events/s");
  EXPECT_EQ(f.metrics.value("sluice_rate_limited_total", {{"kind", "device"}}), 2);
  auto all = batch_of({"hot", "hot"});
  auto refused = f.policy->limit("anonymous", all);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429u);
  EXPECT_NE(refused->body.find("\"rejected\":[{\"index\":0"), std::string::npos);
}

TEST(gateway_access, many_devices_in_one_batch_are_grouped_correctly) {
  access_options opts;
  opts.device_limit = {1, 1};
  policy_fixture f{opts};
  std::vector<std::string> devices;
  for (int round = 0; round < 2; ++round)
    for (int d = 0; d < 20; ++d)
      devices.push_back("dev-" + std::to_string(d));
  auto b = batch_of(devices);
  EXPECT_FALSE(f.policy->limit("anonymous", b));
  EXPECT_EQ(b.events.size(), 20u); // the first event of each device
  ASSERT_EQ(b.rejected.size(), 20u);
  EXPECT_EQ(b.rejected.front().index, 20u);
  EXPECT_EQ(b.rejected.back().index, 39u);
}

// -- audit ----------------------------------------------------------------------------------------

TEST(gateway_access, admin_changes_are_audited_with_who_what_and_when_in_an_append_only_file) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-audit-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto file = (dir / "audit.log").string();
  {
    metrics_registry metrics;
    auto audit = std::make_shared<audit_log>(file);
    access_control p{access_options{}, metrics, audit};
    auto h = head("PUT", "/v1/admin/routes");
    p.completed(h, "ops", scope::admin, 200);
    p.completed(head("GET", "/v1/admin/routes"), "ops", scope::admin, 200); // reads: not audited
    ASSERT_EQ(audit->newest(10).size(), 1u);
  }
  {
    audit_log reopened{file}; // the tail of the file is read back
    auto lines = reopened.newest(10);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("\"principal\":\"ops\""), std::string::npos);
    EXPECT_NE(lines[0].find("\"action\":\"routes.update\""), std::string::npos);
    EXPECT_NE(lines[0].find("\"peer\":\"127.0.0.1\""), std::string::npos);
    EXPECT_NE(lines[0].find("\"time\":\"20"), std::string::npos);
    reopened.append({"x", "y", "auth.login", "POST", "/v1/auth/login", 200, "s"});
    EXPECT_NE(reopened.newest(1)[0].find("auth.login"), std::string::npos); // newest first
  }
  std::ifstream in{file};
  std::string line;
  size_t n = 0;
  while (std::getline(in, line))
    ++n;
  EXPECT_EQ(n, 2u);
  std::filesystem::remove_all(dir);
}

TEST(gateway_access, a_flood_of_failures_is_counted_but_audited_only_within_its_budget) {
  metrics_registry metrics;
  auto audit = std::make_shared<audit_log>("");
  access_options opts;
  opts.audited_failures_per_s = 1; // burst 5
  access_control p{opts, metrics, audit};
  for (int i = 0; i < 50; ++i)
    EXPECT_FALSE(p.authorize(head("GET", "/metrics"), scope::read).allowed);
  EXPECT_EQ(metrics.value("sluice_auth_failures_total", {{"reason", "missing_credentials"}}), 50);
  EXPECT_LE(audit->newest(100).size(), 6u);
  EXPECT_GE(metrics.value("sluice_audit_suppressed_total"), 44);
}
