#pragma once

// PII detection (Hyperscan) and keyed pseudonyms (HMAC-SHA256, OpenSSL) for the route actions.

#include "messages/event.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct hs_database;
struct hs_scratch;
struct evp_mac_ctx_st;

namespace sluice {

/// Kinds of personal data the detector finds.
enum class pii_kind : uint8_t { card, email, phone, ipv4, ipv6 };

/// Number of `pii_kind` values.
inline constexpr size_t pii_kind_count = 5;

/// `card`, `email`, `phone`, `ipv4`, `ipv6`.
std::string_view to_string(pii_kind k) noexcept;

/// Node-wide PII options (`[pii]` in the config; not reloadable with the routes).
struct pii_options {
  /// Kinds to detect; empty detects none.
  std::vector<std::string> kinds = {"card", "email", "phone", "ipv4", "ipv6"};
  /// Paths scanned (envelope `id`, `device_id`, `profile_id` or attribute paths, `attrs.` prefix
  /// optional; a map path covers everything below it). Empty: every string value except the
  /// event `id` (scanned only when listed).
  std::vector<std::string> fields;
  /// HMAC-SHA256 key for `hash` actions and `pii = "hash"`; when empty, the environment variable
  /// `SLUICE_PII_SECRET` is used. Hashing without a secret refuses to start.
  std::string secret;
  /// Pseudonym encoding: `hex` (64 characters) or `base64url` (43 characters).
  std::string hash_encoding = "hex";
};

/// Environment variable read when `pii.secret` is empty.
inline constexpr const char* pii_secret_env = "SLUICE_PII_SECRET";

/// Shortest accepted secret, in bytes: a short key makes pseudonyms guessable by brute force.
inline constexpr size_t min_pii_secret_bytes = 16;

/// Text that replaces a masked field.
inline constexpr std::string_view masked_marker = "[masked]";

/// One detected value: bytes `[begin, end)` of the scanned string.
struct pii_span {
  pii_kind kind = pii_kind::card;
  uint32_t begin = 0;
  uint32_t end = 0;
};

/// The quick necessary condition for PII in a byte string (the conditions are listed in
/// `pii.cpp`): false means the text holds no value of the enabled kinds; true may be a false
/// alarm that the exact scan rejects. One pass over the bytes with byte-class bit masks (SSE2,
/// 16 bytes a step; a scalar table elsewhere), no regex engine, no allocation.
///
/// Lifecycle: set up once by `init` inside the detector, then immutable; `hit` is const and safe
/// from many threads. Works on raw bytes of any encoding (msgpack headers and keys included).
class pii_prefilter {
public:
  /// Enables the conditions of the kinds in `kinds_mask` (bit `1 << kind`).
  void init(uint32_t kinds_mask) noexcept;
  /// Whether `text` may hold PII of an enabled kind.
  bool hit(std::string_view text) const noexcept;

private:
  uint32_t min_digits_ = UINT32_MAX;
  bool ipv4_ = false;
  bool ipv6_ = false;
  bool email_ = false;
};

/// The compiled detector of a node: one Hyperscan multi-pattern database for exact spans
/// (`HS_FLAG_SOM_LEFTMOST`, block mode), a `pii_prefilter` run before it (over a whole event and
/// over each string), plus the validation that patterns cannot express: Luhn and
/// issuer digit for cards, digit counts for phones, octet ranges for IPv4, `inet_pton` for IPv6,
/// and word boundaries.
///
/// Lifecycle: built once at start by `make`, then immutable and shared by every sink runner;
/// scanning needs a `pii_scanner` per thread (Hyperscan scratch). Limits: strings longer than
/// 4 GiB are not scanned.
class pii_detector {
public:
  ~pii_detector();
  pii_detector(const pii_detector&) = delete;
  pii_detector& operator=(const pii_detector&) = delete;

  /// Compiles the patterns of the enabled kinds. Returns null and sets `error` on an unknown kind
  /// or encoding, or when Hyperscan fails.
  static std::shared_ptr<const pii_detector> make(const pii_options& opts, std::string& error);

  const pii_options& options() const noexcept {
    return opts_;
  }
  bool any_kind() const noexcept {
    return block_db_ != nullptr;
  }
  /// Whether `path` (envelope name or attribute path without `attrs.`) is scanned; `id` only when
  /// `fields` names it.
  bool scans(std::string_view path) const noexcept;
  bool scans_all() const noexcept {
    return attr_fields_.empty() && envelope_fields_.empty();
  }

private:
  pii_detector() = default;
  friend class pii_scanner;
  pii_options opts_;
  uint32_t kinds_mask_ = 0;
  std::vector<std::string> attr_fields_;
  std::vector<std::string> envelope_fields_;
  bool scans_id_ = false;
  hs_database* block_db_ = nullptr;
  pii_prefilter prefilter_;
  /// Pattern id → kind.
  std::vector<pii_kind> pattern_kinds_;
};

/// The per-thread part of detection: Hyperscan scratch and reusable candidate buffers.
///
/// Lifecycle: one per sink runner (or benchmark thread), bound to one detector; never shared
/// between threads. Steady state allocates nothing.
class pii_scanner {
public:
  explicit pii_scanner(std::shared_ptr<const pii_detector> detector);
  ~pii_scanner();
  pii_scanner(const pii_scanner&) = delete;
  pii_scanner& operator=(const pii_scanner&) = delete;

  const pii_detector& detector() const noexcept {
    return *detector_;
  }

  /// Quick pre-filter: false means no string of `e` holds PII (`pii_prefilter` over the raw
  /// envelope strings and attribute bytes). True may be a false alarm; `find` decides.
  bool maybe(const event& e) const noexcept;

  /// Appends the PII values found in `text` to `out`, sorted, non-overlapping.
  void find(std::string_view text, std::vector<pii_span>& out);

  /// Candidate match reported by Hyperscan (public for the match callback).
  struct candidate {
    uint32_t id;
    uint32_t from;
    uint32_t to;
  };

private:
  void validate(std::string_view text, pii_kind kind, uint32_t from, uint32_t to,
                std::vector<pii_span>& out) const;
  std::shared_ptr<const pii_detector> detector_;
  hs_scratch* scratch_ = nullptr;
  std::vector<candidate> candidates_;
  std::vector<pii_span> found_;
};

/// Keyed pseudonyms: HMAC-SHA256 of a value under the node's secret, hex or base64url. Equal
/// inputs under one secret give equal pseudonyms (joins keep working); another secret gives
/// unrelated ones; without the secret a pseudonym cannot be reversed by hashing guesses.
///
/// Lifecycle: one per sink runner (an OpenSSL MAC context keyed once); not thread-safe.
class keyed_hasher {
public:
  /// `secret` must not be empty (callers check `min_pii_secret_bytes` at start).
  keyed_hasher(std::string_view secret, bool base64url);
  ~keyed_hasher();
  keyed_hasher(const keyed_hasher&) = delete;
  keyed_hasher& operator=(const keyed_hasher&) = delete;

  /// Appends the pseudonym of `value` to `out`.
  void append(std::string_view value, std::string& out);

private:
  evp_mac_ctx_st* ctx_ = nullptr;
  bool base64url_ = false;
};

/// The value hashed for a detected PII span: cards and phones keep only digits (and the leading
/// `+`), e-mail addresses and IPv6 addresses are lowercased, so that one value written two ways
/// gets one pseudonym. Writes into `out` (cleared first).
void normalize_pii(pii_kind kind, std::string_view value, std::string& out);

/// The secret in effect for `opts`: `opts.secret`, else the environment variable.
std::string resolve_pii_secret(const pii_options& opts);

/// Luhn checksum of a digit string (no separators).
bool luhn_valid(std::string_view digits) noexcept;

} // namespace sluice
