#pragma once

// The access policy of a node: hashed tokens with scopes, console sessions (cookie + CSRF),
// rate limits per token and per device, and the audit of admin actions and access failures.
// See docs/access.md.

#include "gateway/audit.hpp"
#include "gateway/rate_limit.hpp"
#include "gateway/server.hpp"

#include <caf/settings.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice {
class counter;
class metrics_registry;
} // namespace sluice

namespace sluice::gateway {

// -- token hashes ---------------------------------------------------------------------------------

/// A stored token hash: `pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>`.
struct kdf_hash {
  uint32_t iterations = 0;
  std::string salt; ///< raw bytes
  std::string hash; ///< raw bytes (32)
};

/// Iterations `sluice token hash` uses (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
inline constexpr uint32_t default_kdf_iterations = 600000;
/// Fewest iterations a stored hash may name (tests use few; production should use the default).
inline constexpr uint32_t min_kdf_iterations = 1000;
inline constexpr size_t kdf_salt_bytes = 16;
inline constexpr size_t kdf_hash_bytes = 32;

/// Parses a stored hash; on failure returns nullopt and sets `err` to what is wrong.
std::optional<kdf_hash> parse_kdf_hash(std::string_view text, std::string& err);
/// Hashes `token` with a fresh random salt: the string to store in `[tokens.<name>] hash`.
std::string make_kdf_hash(std::string_view token, uint32_t iterations = default_kdf_iterations);
/// Whether `token` matches `stored` (PBKDF2 once, constant-time comparison).
bool kdf_verify(std::string_view token, const kdf_hash& stored);
/// `bytes` random bytes (OpenSSL's CSPRNG), base64url without padding.
std::string random_base64url(size_t bytes);
/// A new token: `sluice_` and 256 random bits (base64url).
std::string generate_token();

// -- configuration --------------------------------------------------------------------------------

/// Scope bits (`admin` implies `read`).
using scope_set = uint8_t;
inline constexpr scope_set scope_bit(scope s) noexcept {
  return static_cast<scope_set>(1u << static_cast<unsigned>(s));
}
/// Parses scope names (`ingest`, `read`, `admin`); adds `read` when `admin` is named.
std::optional<scope_set> parse_scopes(const std::vector<std::string>& names, std::string& err);
/// `["ingest","read","admin"]` (the scopes in `s`, in that order).
std::string scopes_json(scope_set s);

/// One `[tokens.<name>]` section.
struct token_spec {
  std::string name;
  std::string hash;                ///< `pbkdf2-sha256$...` (see `make_kdf_hash`)
  std::vector<std::string> scopes; ///< `ingest`, `read`, `admin`
  int64_t events_per_s = -1;       ///< per-token override of `limits.token-events-per-s` (-1: none)
  int64_t burst = -1;              ///< per-token override of `limits.token-burst` (-1: none)
};

/// Loads every `[tokens.<name>]` section of `tokens` (validated by their option table: unknown
/// keys, bad hashes and unknown scopes are errors naming the key). Returns an error text.
std::string load_token_sections(const caf::settings& tokens, std::vector<token_spec>& out);
/// `--help` lines of a `[tokens.<name>]` section.
std::string token_sections_help();

/// Everything the access policy is configured with (`[auth]`, `[limits]`, `[tokens.*]`).
struct access_options {
  std::vector<token_spec> tokens;
  std::vector<std::string> anonymous; ///< scopes granted without a token (development only)
  std::chrono::milliseconds session_ttl{std::chrono::hours{12}};
  size_t max_sessions = 10000;
  /// Token verifications (a KDF each) allowed per second for tokens not seen before; protects the
  /// io threads from being kept busy with random tokens.
  double verifications_per_s = 4;
  /// Distinct presented tokens whose verification outcome is remembered.
  size_t token_cache_entries = 4096;
  bool secure_cookie = false; ///< `; Secure` on the session cookie (the gateway runs TLS)
  bucket_limit token_limit{0, 0};       ///< default per token (0: unlimited)
  bucket_limit device_limit{100, 10000}; ///< per device_id
  size_t max_devices = 262144;          ///< device buckets kept (LRU beyond)
  /// Access failures (401/403) written to the audit log per second at most; the rest are counted
  /// only, so a flood of unauthenticated requests cannot turn into a flood of disk writes.
  double audited_failures_per_s = 20;
};

/// If no token is configured and anonymous access does not include admin, makes sure there is a
/// bootstrap admin token: reads its hash from `<data_dir>/admin-token.hash`, or generates one,
/// stores only its hash there (mode 0600) and returns the token in `shown_once` (to print once).
/// Adds it as token `admin` with every scope. Returns an error text.
std::string ensure_bootstrap_token(access_options& opts, const std::string& data_dir,
                                   std::string& shown_once);

// -- the policy -----------------------------------------------------------------------------------

/// The name of the console's session cookie.
inline constexpr std::string_view session_cookie_name = "sluice_session";

/// Authentication (bearer tokens, session cookies), scopes, CSRF, rate limits and audit.
///
/// Lifecycle: built once from `access_options` at start-up; tokens are fixed for the life of the
/// process. Concurrency: every member is thread-safe and called from the io threads; the token
/// cache is read under a shared lock (the hot path: one HMAC and one hash lookup per request),
/// verification of an unseen token (a PBKDF2 run per configured token) is serialised and budgeted
/// (`verifications_per_s`), sessions sit behind one mutex, device buckets behind sharded mutexes.
/// Limits: `token_cache_entries` cached verdicts, `max_sessions` sessions (the oldest go first),
/// `max_devices` device buckets (LRU), `audited_failures_per_s` failure records per second.
class access_control final : public access_policy {
public:
  access_control(access_options opts, metrics_registry& metrics, std::shared_ptr<audit_log> audit);
  ~access_control() override;

  access_decision authorize(const request_head& req, scope required) override;
  std::optional<http_response> limit(const std::string& principal, decoded_batch& batch) override;
  void completed(const request_head& req, const std::string& principal, scope required,
                 unsigned status) override;

  /// A console session.
  struct session_view {
    std::string principal;
    scope_set scopes = 0;
    std::string csrf;
  };
  /// Verifies `token` and opens a session: fills `out` and `session_id`; or returns an error
  /// response (401 bad token, 429 verification budget spent, 503 too many sessions).
  std::optional<http_response> login(std::string_view token, session_view& out,
                                     std::string& session_id);
  /// The live session named by the `Cookie` header, if any.
  std::optional<session_view> session_of(std::string_view cookie_header);
  /// Ends the session named by the `Cookie` header; returns its principal (empty when none).
  std::string logout(std::string_view cookie_header);
  /// `sluice_session=<id>; HttpOnly; SameSite=Strict; Path=/` (+ `; Secure`).
  std::string session_cookie(std::string_view session_id) const;
  /// The cookie that clears the session (`Max-Age=0`).
  std::string clear_cookie() const;

  audit_log& audit() noexcept {
    return *audit_;
  }
  /// Counts an authentication failure (`sluice_auth_failures_total{reason}`) and audits it (within
  /// `audited_failures_per_s`).
  void record_failure(std::string_view reason, const audit_record& rec);
  const access_options& options() const noexcept {
    return opts_;
  }
  /// Live console sessions (for tests and metrics).
  size_t session_count();
  bucket_map& devices() noexcept {
    return devices_;
  }

  /// Failure reasons (label values of `sluice_auth_failures_total`).
  enum class failure : uint8_t {
    missing_credentials,
    malformed_header,
    invalid_token,
    invalid_session,
    scope,
    csrf,
    origin,
    login,
    verification_budget,
  };
  static constexpr size_t failure_count = 9;
  static const char* to_string(failure f) noexcept;

private:
  struct token_entry {
    std::string name;
    scope_set scopes = 0;
    kdf_hash hash;
    bucket_limit limit;
  };
  struct session {
    size_t token = 0;
    std::string csrf;
    int64_t expires_ns = 0;
  };
  /// The bucket of one principal, behind its own mutex.
  struct locked_bucket {
    std::mutex mtx;
    token_bucket bucket;
    bucket_limit limit;
  };
  /// Outcome of resolving a presented token.
  static constexpr int token_invalid = -1;
  static constexpr int token_budget = -2;

  std::string keyed_digest(std::string_view secret) const;
  int resolve_token(std::string_view token);
  access_decision refuse(failure why, unsigned status, std::string body, const request_head& req,
                         std::string_view principal);
  std::optional<session_view> find_session(std::string_view id, int64_t now_ns);

  access_options opts_;
  std::shared_ptr<audit_log> audit_;
  std::vector<token_entry> tokens_;
  scope_set anonymous_ = 0;
  std::array<unsigned char, 32> process_key_{};
  /// HMAC-SHA256 keyed with `process_key_`, initialised once; each digest works on a copy (an
  /// OpenSSL 3 one-shot `HMAC()` fetches the algorithms by name on every call, under locks).
  struct mac_template;
  std::unique_ptr<mac_template> mac_;

  std::shared_mutex cache_mtx_;
  std::unordered_map<std::string, int> cache_; // keyed digest of a presented token → verdict
  std::mutex verify_mtx_;
  token_bucket verify_budget_;

  std::mutex sessions_mtx_;
  std::unordered_map<std::string, session> sessions_; // keyed digest of the session id

  std::unordered_map<std::string, size_t> principal_index_; // name → index in principal_buckets_
  std::vector<std::unique_ptr<locked_bucket>> principal_buckets_; // tokens, then anonymous
  bucket_map devices_;

  std::mutex audit_budget_mtx_;
  token_bucket audit_budget_;

  std::array<counter*, failure_count> failures_{};
  counter* limited_token_ = nullptr;
  counter* limited_device_ = nullptr;
  counter* audit_suppressed_ = nullptr;
};

} // namespace sluice::gateway
