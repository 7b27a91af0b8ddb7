#include "gateway/access.hpp"

#include "actors/metrics.hpp"
#include "actors/option_table.hpp"
#include "gateway/internal.hpp"
#include "messages/codec.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace sluice::gateway {

namespace {

constexpr std::string_view kdf_scheme = "pbkdf2-sha256";
/// Longest bearer token considered (longer ones are malformed): bounds the KDF's input.
constexpr size_t max_token_bytes = 4096;
/// Burst of the verification budget, in seconds of `verifications_per_s`.
constexpr double verification_burst_s = 5;
/// Burst of the failure-audit budget, in seconds of `audited_failures_per_s`.
constexpr double audit_burst_s = 5;
/// WebSocket endpoints: a cookie-authenticated upgrade must come from the node's own origin.
constexpr std::array<std::string_view, 2> websocket_paths = {"/v1/stream", "/v1/admin/live"};
/// Name of the bootstrap admin token and the file holding its hash under the data dir.
constexpr std::string_view bootstrap_name = "admin";
constexpr std::string_view bootstrap_file = "admin-token.hash";

std::string b64_encode(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  auto len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

std::optional<std::string> b64_decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0)
    return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  auto len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(in.data()),
                             static_cast<int>(in.size()));
  if (len < 0)
    return std::nullopt;
  size_t pad = 0;
  for (auto i = in.rbegin(); i != in.rend() && *i == '='; ++i)
    ++pad;
  out.resize(static_cast<size_t>(len) - pad);
  return out;
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// The token of `Bearer <token>` (nullopt when the header is something else).
std::optional<std::string_view> bearer_token(std::string_view header) {
  header = trim(header);
  constexpr std::string_view scheme = "bearer";
  if (header.size() <= scheme.size() || !ieq(header.substr(0, scheme.size()), scheme)
      || header[scheme.size()] != ' ')
    return std::nullopt;
  auto token = trim(header.substr(scheme.size() + 1));
  if (token.empty() || token.size() > max_token_bytes)
    return std::nullopt;
  return token;
}

/// The value of cookie `name` in a `Cookie` header (empty when absent).
std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    auto pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name)
      return trim(pair.substr(eq + 1));
  }
  return {};
}

bool state_changing(std::string_view method) {
  return !(method == "GET" || method == "HEAD" || method == "OPTIONS");
}

bool is_websocket_path(std::string_view path) {
  return std::find(websocket_paths.begin(), websocket_paths.end(), path) != websocket_paths.end();
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port as the `Host` header.
bool same_origin(std::string_view origin, std::string_view host) {
  auto sep = origin.find("://");
  if (sep == std::string_view::npos || host.empty())
    return false;
  auto scheme = origin.substr(0, sep);
  auto authority = origin.substr(sep + 3);
  while (!authority.empty() && authority.back() == '/')
    authority.remove_suffix(1);
  auto strip_default = [&](std::string_view a) {
    if (ieq(scheme, "http") && a.size() > 3 && a.substr(a.size() - 3) == ":80")
      a.remove_suffix(3);
    else if (ieq(scheme, "https") && a.size() > 4 && a.substr(a.size() - 4) == ":443")
      a.remove_suffix(4);
    return a;
  };
  return ieq(strip_default(authority), strip_default(trim(host)));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

uint32_t retry_after_s(double wait_s) {
  return static_cast<uint32_t>(std::max(1.0, std::ceil(wait_s)));
}

std::string error_body(std::string_view message) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  return out;
}

} // namespace

// -- token hashes ---------------------------------------------------------------------------------

std::optional<kdf_hash> parse_kdf_hash(std::string_view text, std::string& err) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    auto d = text.find('$', start);
    parts.push_back(text.substr(start, d == std::string_view::npos ? d : d - start));
    if (d == std::string_view::npos)
      break;
    start = d + 1;
  }
  if (parts.size() != 4 || parts[0] != kdf_scheme) {
    err = "expected pbkdf2-sha256$<iterations>$<salt base64>$<hash base64> (make one with "
          "`sluice token hash`)";
    return std::nullopt;
  }
  kdf_hash out;
  auto [p, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), out.iterations);
  if (ec != std::errc{} || p != parts[1].data() + parts[1].size()
      || out.iterations < min_kdf_iterations) {
    err = "iterations must be a number of at least " + std::to_string(min_kdf_iterations);
    return std::nullopt;
  }
  auto salt = b64_decode(parts[2]);
  if (!salt || salt->size() < 8) {
    err = "the salt is not base64 of at least 8 bytes";
    return std::nullopt;
  }
  auto hash = b64_decode(parts[3]);
  if (!hash || hash->size() != kdf_hash_bytes) {
    err = "the hash is not base64 of " + std::to_string(kdf_hash_bytes) + " bytes";
    return std::nullopt;
  }
  out.salt = std::move(*salt);
  out.hash = std::move(*hash);
  return out;
}

namespace {

std::string pbkdf2(std::string_view token, std::string_view salt, uint32_t iterations) {
  std::string out(kdf_hash_bytes, '\0');
  if (PKCS5_PBKDF2_HMAC(token.data(), static_cast<int>(token.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(out.size()), reinterpret_cast<unsigned char*>(out.data()))
      != 1)
    throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return out;
}

} // namespace

std::string make_kdf_hash(std::string_view token, uint32_t iterations) {
  auto salt = random_bytes(kdf_salt_bytes);
  auto hash = pbkdf2(token, salt, iterations);
  return std::string{kdf_scheme} + "$" + std::to_string(iterations) + "$"
         + b64_encode(reinterpret_cast<const unsigned char*>(salt.data()), salt.size()) + "$"
         + b64_encode(reinterpret_cast<const unsigned char*>(hash.data()), hash.size());
}

bool kdf_verify(std::string_view token, const kdf_hash& stored) {
  auto got = pbkdf2(token, stored.salt, stored.iterations);
  return got.size() == stored.hash.size()
         && CRYPTO_memcmp(got.data(), stored.hash.data(), got.size()) == 0;
}

std::string random_base64url(size_t bytes) {
  auto raw = random_bytes(bytes);
  auto out = b64_encode(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  for (auto& c : out)
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string generate_token() {
  return "sluice_" + random_base64url(32);
}

// -- configuration --------------------------------------------------------------------------------

std::optional<scope_set> parse_scopes(const std::vector<std::string>& names, std::string& err) {
  scope_set out = 0;
  for (auto& n : names) {
    if (n == "ingest")
      out |= scope_bit(scope::ingest);
    else if (n == "read")
      out |= scope_bit(scope::read);
    else if (n == "admin")
      out |= scope_bit(scope::admin) | scope_bit(scope::read);
    else {
      err = "unknown scope \"" + n + "\"; use ingest, read or admin";
      return std::nullopt;
    }
  }
  return out;
}

std::string scopes_json(scope_set s) {
  std::string out = "[";
  for (auto sc : {scope::ingest, scope::read, scope::admin})
    if (s & scope_bit(sc)) {
      if (out.size() > 1)
        out += ',';
      out += '"';
      out += to_string(sc);
      out += '"';
    }
  return out + "]";
}

namespace {

const option_table<token_spec>& token_options() {
  static const option_table<token_spec> table = [] {
    option_table<token_spec> t;
    t.add(&token_spec::hash, "hash",
          "the token's hash: pbkdf2-sha256$<iterations>$<salt>$<hash> (`sluice token hash`); "
          "the token itself is never stored")
      .add(&token_spec::scopes, "scopes",
           "what the token may do: ingest (POST /v1/events, /v1/stream), read (queries, "
           "/metrics), admin (/v1/admin/*, the console; implies read)")
      .add(&token_spec::events_per_s, "events-per-s",
           "this token's rate limit in events per second (overrides limits.token-events-per-s; "
           "-1: that default, 0: unlimited)")
      .add(&token_spec::burst, "burst",
           "this token's burst in events (overrides limits.token-burst; -1: that default)");
    return t;
  }();
  return table;
}

} // namespace

std::string load_token_sections(const caf::settings& tokens, std::vector<token_spec>& out) {
  out.clear();
  for (auto& [name, value] : tokens) {
    auto where = "tokens." + name;
    auto section = caf::get_if<caf::settings>(&value);
    if (section == nullptr)
      return "'" + where + "' must be a section [" + where + "] with hash and scopes";
    token_spec spec;
    spec.name = name;
    if (auto err = token_options().load(spec, *section, where); !err.empty())
      return err;
    std::string err;
    if (spec.hash.empty())
      return "'" + where + ".hash' is missing (make one with `sluice token hash`)";
    if (!parse_kdf_hash(spec.hash, err))
      return "invalid value for '" + where + ".hash': " + err;
    if (spec.scopes.empty())
      return "'" + where + ".scopes' is missing: name at least one of ingest, read, admin";
    if (!parse_scopes(spec.scopes, err))
      return "invalid value for '" + where + ".scopes': " + err;
    if (name == "anonymous")
      return "'tokens.anonymous': the name anonymous is reserved (auth.anonymous grants scopes "
             "without a token)";
    out.push_back(std::move(spec));
  }
  return {};
}

std::string token_sections_help() {
  return token_options().help("tokens.<name>");
}

std::string ensure_bootstrap_token(access_options& opts, const std::string& data_dir,
                                   std::string& shown_once) {
  shown_once.clear();
  std::string err;
  auto anon = parse_scopes(opts.anonymous, err);
  if (!opts.tokens.empty() || (anon && (*anon & scope_bit(scope::admin))))
    return {};
  auto path = std::filesystem::path{data_dir} / bootstrap_file;
  std::string hash;
  if (std::ifstream in{path}; in) {
    std::getline(in, hash);
    if (!parse_kdf_hash(hash, err))
      return path.string() + ": " + err + " (delete the file to make a new admin token)";
  } else {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    shown_once = generate_token();
    hash = make_kdf_hash(shown_once);
    auto tmp = path;
    tmp += ".tmp";
    {
      std::ofstream out{tmp, std::ios::trunc};
      out << hash << '\n';
      if (!out)
        return "cannot write " + tmp.string();
    }
    ::chmod(tmp.c_str(), 0600);
    std::filesystem::rename(tmp, path, ec);
    if (ec)
      return "cannot write " + path.string() + ": " + ec.message();
  }
  opts.tokens.push_back({std::string{bootstrap_name}, hash, {"ingest", "read", "admin"}, -1, -1});
  return {};
}

// -- the policy -----------------------------------------------------------------------------------

struct access_control::mac_template {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* keyed = nullptr; // initialised with the key; only ever duplicated
  ~mac_template() {
    EVP_MAC_CTX_free(keyed);
    EVP_MAC_free(mac);
  }
};

const char* access_control::to_string(failure f) noexcept {
  switch (f) {
    case failure::missing_credentials:
      return "missing_credentials";
    case failure::malformed_header:
      return "malformed_header";
    case failure::invalid_token:
      return "invalid_token";
    case failure::invalid_session:
      return "invalid_session";
    case failure::scope:
      return "scope";
    case failure::csrf:
      return "csrf";
    case failure::origin:
      return "origin";
    case failure::login:
      return "login";
    case failure::verification_budget:
      return "verification_budget";
  }
  return "other";
}

access_control::access_control(access_options opts, metrics_registry& metrics,
                               std::shared_ptr<audit_log> audit)
  : opts_(std::move(opts)), audit_(std::move(audit)),
    devices_(opts_.device_limit, std::max<size_t>(1, opts_.max_devices)) {
  if (!audit_)
    audit_ = std::make_shared<audit_log>("");
  std::string err;
  auto anon = parse_scopes(opts_.anonymous, err);
  if (!anon)
    throw std::invalid_argument("auth.anonymous: " + err);
  anonymous_ = *anon;
  for (auto& spec : opts_.tokens) {
    token_entry t;
    t.name = spec.name;
    auto s = parse_scopes(spec.scopes, err);
    auto h = parse_kdf_hash(spec.hash, err);
    if (!s || !h)
      throw std::invalid_argument("tokens." + spec.name + ": " + err);
    t.scopes = *s;
    t.hash = std::move(*h);
    t.limit = opts_.token_limit;
    if (spec.events_per_s >= 0)
      t.limit.rate = static_cast<double>(spec.events_per_s);
    if (spec.burst >= 0)
      t.limit.burst = static_cast<double>(spec.burst);
    if (t.limit.burst < 1 && !t.limit.unlimited())
      t.limit.burst = std::max(1.0, t.limit.rate);
    principal_index_.emplace(t.name, tokens_.size());
    tokens_.push_back(std::move(t));
  }
  for (auto& t : tokens_) {
    auto b = std::make_unique<locked_bucket>();
    b->limit = t.limit;
    principal_buckets_.push_back(std::move(b));
  }
  auto anon_bucket = std::make_unique<locked_bucket>();
  anon_bucket->limit = opts_.token_limit;
  if (anon_bucket->limit.burst < 1 && !anon_bucket->limit.unlimited())
    anon_bucket->limit.burst = std::max(1.0, anon_bucket->limit.rate);
  principal_buckets_.push_back(std::move(anon_bucket));
  if (RAND_bytes(process_key_.data(), static_cast<int>(process_key_.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
  mac_ = std::make_unique<mac_template>();
  mac_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  mac_->keyed = mac_->mac ? EVP_MAC_CTX_new(mac_->mac) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!mac_->keyed
      || EVP_MAC_init(mac_->keyed, process_key_.data(), process_key_.size(), params) != 1)
    throw std::runtime_error("cannot initialise HMAC-SHA256");
  for (size_t i = 0; i < failure_count; ++i)
    failures_[i] = &metrics.get_counter(
      "sluice_auth_failures_total",
      "Requests refused by authentication or authorisation (401, 403, 429 on token "
      "verification), by reason",
      {{"reason", to_string(static_cast<failure>(i))}});
  limited_token_ = &metrics.get_counter("sluice_rate_limited_total",
                                        "Events refused by rate limits (whole batches over "
                                        "their token's bucket, events over their device's)",
                                        {{"kind", "token"}});
  limited_device_ = &metrics.get_counter("sluice_rate_limited_total", "", {{"kind", "device"}});
  audit_suppressed_ = &metrics.get_counter(
    "sluice_audit_suppressed_total",
    "Access failures not written to the audit log because auth.audited-failures-per-s was "
    "exceeded (they are still counted in sluice_auth_failures_total)");
}

access_control::~access_control() = default;

std::string access_control::keyed_digest(std::string_view secret) const {
  std::unique_ptr<EVP_MAC_CTX, void (*)(EVP_MAC_CTX*)> ctx{EVP_MAC_CTX_dup(mac_->keyed),
                                                          EVP_MAC_CTX_free};
  std::string out(EVP_MAX_MD_SIZE, '\0');
  size_t len = 0;
  if (!ctx
      || EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                        secret.size())
           != 1
      || EVP_MAC_final(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, out.size())
           != 1)
    throw std::runtime_error("HMAC-SHA256 failed");
  out.resize(len);
  return out;
}

int access_control::resolve_token(std::string_view token) {
  auto key = keyed_digest(token);
  {
    std::shared_lock<std::shared_mutex> lock{cache_mtx_};
    if (auto i = cache_.find(key); i != cache_.end())
      return i->second;
  }
  std::lock_guard<std::mutex> serial{verify_mtx_}; // one KDF at a time; others wait, then hit
  {
    std::shared_lock<std::shared_mutex> lock{cache_mtx_};
    if (auto i = cache_.find(key); i != cache_.end())
      return i->second;
  }
  bucket_limit budget{opts_.verifications_per_s,
                      std::max(1.0, opts_.verifications_per_s * verification_burst_s)};
  if (!budget.unlimited() && verify_budget_.take(1, budget, monotonic_ns(), false) == 0)
    return token_budget;
  int found = token_invalid;
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (kdf_verify(token, tokens_[i].hash)) {
      found = static_cast<int>(i);
      break;
    }
  std::unique_lock<std::shared_mutex> lock{cache_mtx_};
  if (cache_.size() >= std::max<size_t>(1, opts_.token_cache_entries)) {
    for (auto i = cache_.begin(); i != cache_.end();)
      i = i->second < 0 ? cache_.erase(i) : std::next(i);
    if (cache_.size() >= std::max<size_t>(1, opts_.token_cache_entries))
      cache_.clear();
  }
  cache_.emplace(std::move(key), found);
  return found;
}

void access_control::record_failure(std::string_view reason, const audit_record& rec) {
  for (size_t i = 0; i < failure_count; ++i)
    if (reason == to_string(static_cast<failure>(i)))
      failures_[i]->inc();
  bool write = true;
  if (opts_.audited_failures_per_s > 0) {
    bucket_limit lim{opts_.audited_failures_per_s,
                     std::max(1.0, opts_.audited_failures_per_s * audit_burst_s)};
    std::lock_guard<std::mutex> guard{audit_budget_mtx_};
    write = audit_budget_.take(1, lim, monotonic_ns(), false) == 1;
  }
  if (write)
    audit_->append(rec);
  else
    audit_suppressed_->inc();
}

access_decision access_control::refuse(failure why, unsigned status, std::string body,
                                       const request_head& req, std::string_view principal) {
  access_decision d;
  d.allowed = false;
  d.principal = std::string{principal};
  d.refusal.status = status;
  d.refusal.body = std::move(body);
  if (status == 401)
    d.refusal.headers.emplace_back(
      "WWW-Authenticate", why == failure::invalid_token ? "Bearer realm=\"sluice\", error=\"invalid_token\""
                                                        : "Bearer realm=\"sluice\"");
  if (status == 429)
    d.refusal.headers.emplace_back("Retry-After", "1");
  audit_record rec;
  rec.principal = d.principal;
  rec.peer = std::string{req.peer};
  rec.action = status == 401 ? "auth.denied" : status == 403 ? "auth.forbidden" : "auth.throttled";
  rec.method = std::string{req.method};
  rec.path = std::string{req.path};
  rec.status = status;
  rec.summary = to_string(why);
  record_failure(to_string(why), rec);
  return d;
}

std::optional<access_control::session_view> access_control::find_session(std::string_view id,
                                                                         int64_t now_ns) {
  auto key = keyed_digest(id);
  std::lock_guard<std::mutex> guard{sessions_mtx_};
  auto i = sessions_.find(key);
  if (i == sessions_.end())
    return std::nullopt;
  if (i->second.expires_ns <= now_ns) {
    sessions_.erase(i);
    return std::nullopt;
  }
  auto& t = tokens_[i->second.token];
  return session_view{t.name, t.scopes, i->second.csrf};
}

access_decision access_control::authorize(const request_head& req, scope required) {
  access_decision d;
  if (required == scope::open)
    return d;
  const auto need = scope_bit(required);
  const std::string scope_name = gateway::to_string(required);
  auto forbidden = [&](const std::string& who, scope_set has) {
    auto body = error_body((who == "anonymous" ? std::string{"anonymous access"}
                                               : "token '" + who + "'")
                           + " lacks scope '" + scope_name + "' needed by " + std::string{req.method}
                           + " " + std::string{req.path});
    body += ",\"required\":\"" + scope_name + "\",\"principal\":";
    append_json_string(body, who);
    body += ",\"scopes\":" + scopes_json(has) + "}";
    return refuse(failure::scope, 403, std::move(body), req, who);
  };
  if (!req.authorization.empty()) {
    auto token = bearer_token(req.authorization);
    if (!token)
      return refuse(failure::malformed_header, 401,
                    error_body("malformed Authorization header: send Authorization: Bearer "
                               "<token>")
                      + ",\"required\":\"" + scope_name + "\",\"invalid\":\"Authorization\"}",
                    req, "anonymous");
    auto idx = resolve_token(*token);
    if (idx == token_budget)
      return refuse(failure::verification_budget, 429,
                    error_body("too many new tokens to verify right now (auth.max-verifications-"
                               "per-s); retry shortly")
                      + ",\"retry_after_s\":1}",
                    req, "anonymous");
    if (idx < 0)
      return refuse(failure::invalid_token, 401,
                    error_body("invalid token: no configured token matches it")
                      + ",\"required\":\"" + scope_name + "\",\"invalid\":\"token\"}",
                    req, "anonymous");
    auto& t = tokens_[static_cast<size_t>(idx)];
    if (((t.scopes | anonymous_) & need) == 0)
      return forbidden(t.name, t.scopes);
    d.principal = t.name;
    return d;
  }
  if (auto id = cookie_value(req.cookie, session_cookie_name); !id.empty()) {
    auto s = find_session(id, monotonic_ns());
    if (s) {
      if (state_changing(req.method)) {
        if (req.csrf_token.empty() || !constant_time_equal(req.csrf_token, s->csrf))
          return refuse(failure::csrf, 403,
                        error_body(std::string{req.csrf_token.empty() ? "missing" : "wrong"}
                                   + " X-CSRF-Token header: requests authenticated by the "
                                     "session cookie that change state must send the csrf "
                                     "value of POST /v1/auth/login")
                          + ",\"missing\":\"X-CSRF-Token\"}",
                        req, s->principal);
      } else if (is_websocket_path(req.path) && !same_origin(req.origin, req.host)) {
        std::string msg = "cross-origin WebSocket upgrade refused: Origin '";
        msg += req.origin;
        msg += "' does not match Host '";
        msg += req.host;
        msg += "'";
        return refuse(failure::origin, 403, error_body(msg) + ",\"invalid\":\"Origin\"}", req,
                      s->principal);
      }
      if (((s->scopes | anonymous_) & need) == 0)
        return forbidden(s->principal, s->scopes);
      d.principal = s->principal;
      return d;
    }
    if ((anonymous_ & need) == 0)
      return refuse(failure::invalid_session, 401,
                    error_body("the session expired or is unknown: log in again (POST "
                               "/v1/auth/login) or send Authorization: Bearer <token>")
                      + ",\"required\":\"" + scope_name + "\",\"invalid\":\"session\"}",
                    req, "anonymous");
  }
  if (anonymous_ & need)
    return d;
  return refuse(failure::missing_credentials, 401,
                error_body("authentication required: send Authorization: Bearer <token> with "
                           "scope '" + scope_name + "' (or log in for a session cookie)")
                  + ",\"required\":\"" + scope_name + "\",\"missing\":\"token\"}",
                req, "anonymous");
}

std::optional<http_response> access_control::limit(const std::string& principal,
                                                   decoded_batch& batch) {
  const size_t n = batch.events.size();
  if (n == 0)
    return std::nullopt;
  const auto now = monotonic_ns();
  auto pi = principal_index_.find(principal);
  auto& pb = *principal_buckets_[pi != principal_index_.end() ? pi->second
                                                               : principal_buckets_.size() - 1];
  if (!pb.limit.unlimited()) {
    std::unique_lock<std::mutex> guard{pb.mtx};
    if (pb.bucket.take(n, pb.limit, now, false) == 0) {
      auto wait = retry_after_s(pb.bucket.wait_s(n, pb.limit));
      guard.unlock();
      limited_token_->inc(n);
      auto rate = static_cast<uint64_t>(pb.limit.rate);
      auto body = error_body("rate limited: " + (principal == "anonymous" ? std::string{"anonymous access"}
                                                                          : "token '" + principal + "'")
                             + " is over " + std::to_string(rate) + " events/s (burst "
                             + std::to_string(static_cast<uint64_t>(pb.limit.burst))
                             + "); nothing of this batch was taken, retry after "
                             + std::to_string(wait) + " s");
      body += ",\"kind\":\"token\",\"principal\":";
      append_json_string(body, principal);
      body += ",\"limit_events_per_s\":" + std::to_string(rate)
              + ",\"retry_after_s\":" + std::to_string(wait) + "}";
      auto res = json_response(429, std::move(body));
      res.headers.emplace_back("Retry-After", std::to_string(wait));
      return res;
    }
  }
  if (devices_.limit().unlimited())
    return std::nullopt;
  // Group the batch by device (a batch usually holds one or a few devices): one bucket lookup per
  // device, not per event.
  struct group {
    std::string_view device;
    size_t count = 0;
    size_t granted = 0;
  };
  // Beyond this many devices in one batch a hash index finds groups (below, comparing a few
  // string views is cheaper than hashing).
  constexpr size_t linear_groups = 16;
  // Per io thread, reused: no allocation per batch once warm. Cleared before use; the views
  // point into `batch` only during this call.
  thread_local std::vector<group> groups;
  thread_local std::vector<uint32_t> group_of;
  thread_local std::unordered_map<std::string_view, uint32_t> index;
  groups.clear();
  index.clear();
  group_of.resize(n);
  for (size_t i = 0; i < n; ++i) {
    std::string_view dev = batch.events[i].device_id;
    auto g = static_cast<uint32_t>(groups.size());
    if (index.empty()) {
      for (uint32_t k = 0; k < groups.size(); ++k)
        if (groups[k].device == dev) {
          g = k;
          break;
        }
    } else if (auto f = index.find(dev); f != index.end()) {
      g = f->second;
    }
    if (g == groups.size()) {
      groups.push_back({dev, 0, 0});
      if (!index.empty())
        index.emplace(dev, g);
      else if (groups.size() > linear_groups)
        for (uint32_t k = 0; k < groups.size(); ++k)
          index.emplace(groups[k].device, k);
    }
    ++groups[g].count;
    group_of[i] = g;
  }
  bool all_granted = true;
  for (auto& g : groups) {
    g.granted = devices_.take(g.device, g.count, now);
    all_granted = all_granted && g.granted == g.count;
  }
  if (all_granted)
    return std::nullopt;
  // Reject the events past each device's grant, by their client index. The device names are
  // copied first: moving events below invalidates views into them.
  std::vector<std::string> names;
  names.reserve(groups.size());
  for (auto& g : groups)
    names.emplace_back(g.device);
  const auto rate = static_cast<uint64_t>(devices_.limit().rate);
  std::vector<rejection> limited;
  std::vector<size_t> used(groups.size(), 0);
  const size_t envelope_rejected = batch.rejected.size();
  uint32_t client = 0;
  size_t next_rejected = 0;
  size_t kept = 0;
  double wait = 0;
  for (size_t i = 0; i < n; ++i) {
    while (next_rejected < envelope_rejected && batch.rejected[next_rejected].index == client) {
      ++next_rejected;
      ++client;
    }
    auto this_index = client++;
    auto g = group_of[i];
    if (used[g] < groups[g].granted) {
      ++used[g];
      if (kept != i)
        batch.events[kept] = std::move(batch.events[i]);
      ++kept;
      continue;
    }
    if (used[g] == groups[g].granted) { // first refused event of this device
      ++used[g];
      wait = std::max(wait, devices_.wait_s(names[g], 1, now));
    }
    limited.push_back({this_index, "rate limited: device '" + names[g]
                                     + "' over " + std::to_string(rate) + " events/s"});
  }
  limited_device_->inc(limited.size());
  batch.events.resize(kept);
  batch.rejected.insert(batch.rejected.end(), std::make_move_iterator(limited.begin()),
                        std::make_move_iterator(limited.end()));
  std::inplace_merge(batch.rejected.begin(),
                     batch.rejected.begin() + static_cast<ptrdiff_t>(envelope_rejected),
                     batch.rejected.end(),
                     [](const rejection& a, const rejection& b) { return a.index < b.index; });
  if (kept > 0)
    return std::nullopt;
  auto secs = retry_after_s(wait);
  auto body = error_body("rate limited: every event of the batch is over its device's limit ("
                         + std::to_string(rate) + " events/s); retry after "
                         + std::to_string(secs) + " s");
  body += ",\"kind\":\"device\",\"retry_after_s\":" + std::to_string(secs);
  detail::append_rejected(body, batch.rejected);
  auto res = json_response(429, body + "}");
  res.headers.emplace_back("Retry-After", std::to_string(secs));
  return res;
}

void access_control::completed(const request_head& req, const std::string& principal,
                               scope required, unsigned status) {
  if (required == scope::open || required == scope::ingest || !state_changing(req.method))
    return;
  audit_record rec;
  rec.principal = principal;
  rec.peer = std::string{req.peer};
  rec.method = std::string{req.method};
  rec.path = std::string{req.path};
  rec.status = status;
  const auto& p = rec.path;
  if (p == "/v1/admin/routes")
    rec.action = "routes.update";
  else if (p == "/v1/admin/routes/rollback")
    rec.action = "routes.rollback";
  else if (p == "/v1/admin/dead-letters/replay")
    rec.action = "dead_letters.replay";
  else if (p == "/v1/admin/catalog/reload")
    rec.action = "catalog.reload";
  else
    rec.action = "admin.request";
  rec.summary = status < 300 ? "done" : status < 500 ? "refused by the endpoint" : "failed";
  audit_->append(rec);
}

std::optional<http_response> access_control::login(std::string_view token, session_view& out,
                                                   std::string& session_id) {
  if (token.empty() || token.size() > max_token_bytes)
    return json_response(401, error_body("the body must be {\"token\":\"...\"} with a token")
                                + ",\"invalid\":\"token\"}");
  auto idx = resolve_token(token);
  if (idx == token_budget) {
    auto res = json_response(429, error_body("too many new tokens to verify right now; retry "
                                             "shortly")
                                    + ",\"retry_after_s\":1}");
    res.headers.emplace_back("Retry-After", "1");
    return res;
  }
  if (idx < 0)
    return json_response(401, error_body("invalid token: no configured token matches it")
                                + ",\"invalid\":\"token\"}");
  auto& t = tokens_[static_cast<size_t>(idx)];
  session s;
  s.token = static_cast<size_t>(idx);
  s.csrf = random_base64url(32);
  auto now = monotonic_ns();
  s.expires_ns = now + std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.session_ttl).count();
  session_id = random_base64url(32);
  auto key = keyed_digest(session_id);
  {
    std::lock_guard<std::mutex> guard{sessions_mtx_};
    if (sessions_.size() >= std::max<size_t>(1, opts_.max_sessions)) {
      for (auto i = sessions_.begin(); i != sessions_.end();)
        i = i->second.expires_ns <= now ? sessions_.erase(i) : std::next(i);
      if (sessions_.size() >= std::max<size_t>(1, opts_.max_sessions)) {
        auto oldest = std::min_element(sessions_.begin(), sessions_.end(),
                                       [](const auto& a, const auto& b) {
                                         return a.second.expires_ns < b.second.expires_ns;
                                       });
        sessions_.erase(oldest);
      }
    }
    sessions_.emplace(std::move(key), s);
  }
  out = session_view{t.name, t.scopes, s.csrf};
  return std::nullopt;
}

std::optional<access_control::session_view>
access_control::session_of(std::string_view cookie_header) {
  auto id = cookie_value(cookie_header, session_cookie_name);
  if (id.empty())
    return std::nullopt;
  return find_session(id, monotonic_ns());
}

std::string access_control::logout(std::string_view cookie_header) {
  auto id = cookie_value(cookie_header, session_cookie_name);
  if (id.empty())
    return {};
  auto key = keyed_digest(id);
  std::lock_guard<std::mutex> guard{sessions_mtx_};
  auto i = sessions_.find(key);
  if (i == sessions_.end())
    return {};
  auto name = tokens_[i->second.token].name;
  sessions_.erase(i);
  return name;
}

std::string access_control::session_cookie(std::string_view session_id) const {
  std::string out{session_cookie_name};
  out += '=';
  out += session_id;
  out += "; HttpOnly; SameSite=Strict; Path=/";
  if (opts_.secure_cookie)
    out += "; Secure";
  return out;
}

std::string access_control::clear_cookie() const {
  std::string out{session_cookie_name};
  out += "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";
  if (opts_.secure_cookie)
    out += "; Secure";
  return out;
}

size_t access_control::session_count() {
  std::lock_guard<std::mutex> guard{sessions_mtx_};
  return sessions_.size();
}

} // namespace sluice::gateway
