#include "actors/pii.hpp"

#include <arpa/inet.h>
#include <hs/hs.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

namespace sluice {

std::string_view to_string(pii_kind k) noexcept {
  switch (k) {
    case pii_kind::card: return "card";
    case pii_kind::email: return "email";
    case pii_kind::phone: return "phone";
    case pii_kind::ipv4: return "ipv4";
    case pii_kind::ipv6: return "ipv6";
  }
  return "unknown";
}

namespace {

// The patterns find candidates; `pii_scanner::validate` decides (Hyperscan has no look-around,
// and Luhn or octet ranges are not regular-expression material anyway).
struct pattern {
  pii_kind kind;
  const char* regex;
};

constexpr pattern patterns[] = {
  // 13-19 digits with spaces or dashes: the validator takes the whole run of digits, spaces and
  // dashes around the match and looks for 13-19 digit windows on group boundaries whose first digit
  // is an issuer digit 2-6 (Mastercard 2/5, Amex and Diners 3, Visa 4, Discover and UnionPay 6;
  // a 13-digit epoch-ms timestamp starts with 1) and whose Luhn sum holds.
  {pii_kind::card, "[0-9][0-9 \\-]{11,36}[0-9]"},
  {pii_kind::email, "[A-Za-z0-9._%+\\-]+@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)*\\.[A-Za-z]{2,24}"},
  // E.164 with optional separators: +14155552671, +44 20 7946 0958, +1 (415) 555-2671.
  {pii_kind::phone, "\\+[1-9](?:[ .()\\-]{0,2}[0-9]){7,14}"},
  // North American national format; a separator is required: 415-555-2671, (415) 555 2671.
  {pii_kind::phone, "\\(?[2-9][0-9]{2}\\)?[ .\\-]?[2-9][0-9]{2}[ .\\-][0-9]{4}"},
  // National formats with a trunk 0 and separators: 07700 900123, 030 12345678, 06 12 34 56 78.
  {pii_kind::phone, "0[1-9][0-9]{0,4}[ \\-/][0-9]{2,8}(?:[ \\-][0-9]{2,8}){0,3}"},
  {pii_kind::ipv4, "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"},
  {pii_kind::ipv6, "[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}"},
  {pii_kind::ipv6, "[0-9A-Fa-f:]*::[0-9A-Fa-f:.]*"},
};

// The pre-filter over a whole event: cheaper supersets of the patterns above (single-class
// repeats, no start offsets, one match is enough). Each matches wherever the exact pattern's
// validated match is, so an event the pre-filter passes over holds no PII.
constexpr pattern prefilter_patterns[] = {
  {pii_kind::card, "[0-9][0-9 \\-]{11,36}[0-9]"},
  {pii_kind::email, "[A-Za-z0-9._%+\\-]@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)*\\.[A-Za-z]{2}"},
  // E.164, the last groups of a North American number, a national number with trunk 0.
  {pii_kind::phone, "\\+[1-9][0-9 .()\\-]{7}"},
  {pii_kind::phone, "[0-9]{3}[ .\\-][0-9]{4}"},
  {pii_kind::phone, "0[1-9][0-9]{0,4}[ \\-/][0-9]{2}"},
  {pii_kind::ipv4, "[0-9]\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]"},
  // "::", or four groups in a row (an address without "::" has eight): not a time 10:00:00.
  {pii_kind::ipv6, "::"},
  {pii_kind::ipv6, "[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}"},
};

bool is_alnum(char c) noexcept {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_hex_or_colon(char c) noexcept {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
}

// A separator inside a longer number (`1234 0510 5101`): the value around it is not a phone.
bool continues_number(std::string_view text, size_t sep, int dir) noexcept {
  auto next = static_cast<long>(sep) + dir;
  return next >= 0 && static_cast<size_t>(next) < text.size()
         && is_digit(text[static_cast<size_t>(next)]);
}

hs_database* compile_db(const std::vector<const char*>& exprs, unsigned flags, unsigned mode,
                        std::string& error) {
  std::vector<unsigned> flag_list(exprs.size(), flags);
  std::vector<unsigned> ids(exprs.size());
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<unsigned>(i);
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(exprs.data(), flag_list.data(), ids.data(),
                       static_cast<unsigned>(exprs.size()), mode, nullptr, &db, &err)
      != HS_SUCCESS) {
    error = fmt::format("PII patterns do not compile (pattern {}): {}", err ? err->expression : -1,
                        err && err->message ? err->message : "unknown Hyperscan error");
    hs_free_compile_error(err);
    return nullptr;
  }
  return db;
}

} // namespace

pii_detector::~pii_detector() {
  hs_free_database(block_db_);
  hs_free_database(vector_db_);
}

std::shared_ptr<const pii_detector> pii_detector::make(const pii_options& opts,
                                                       std::string& error) {
  std::shared_ptr<pii_detector> d{new pii_detector};
  d->opts_ = opts;
  for (auto& k : opts.kinds) {
    bool known = false;
    for (size_t i = 0; i < pii_kind_count; ++i) {
      if (k == to_string(static_cast<pii_kind>(i))) {
        d->kinds_mask_ |= 1u << i;
        known = true;
      }
    }
    if (!known) {
      error = fmt::format("pii.kinds names \"{}\"; use card, email, phone, ipv4 or ipv6", k);
      return nullptr;
    }
  }
  if (opts.hash_encoding != "hex" && opts.hash_encoding != "base64url") {
    error = fmt::format("pii.hash-encoding is \"{}\"; use hex or base64url", opts.hash_encoding);
    return nullptr;
  }
  static constexpr std::string_view envelope[] = {"id", "device_id", "profile_id"};
  for (auto f : opts.fields) {
    if (f.empty()) {
      error = "pii.fields holds an empty path; name a field such as attrs.email";
      return nullptr;
    }
    if (std::find(std::begin(envelope), std::end(envelope), f) != std::end(envelope)) {
      d->scans_id_ = d->scans_id_ || f == "id";
      d->envelope_fields_.push_back(f);
      continue;
    }
    if (f.rfind("attrs.", 0) == 0)
      f.erase(0, 6);
    d->attr_fields_.push_back(f);
  }
  std::vector<const char*> exprs;
  for (auto& p : patterns) {
    if ((d->kinds_mask_ & (1u << static_cast<unsigned>(p.kind))) == 0)
      continue;
    exprs.push_back(p.regex);
    d->pattern_kinds_.push_back(p.kind);
  }
  if (exprs.empty())
    return d;
  d->block_db_ = compile_db(exprs, HS_FLAG_SOM_LEFTMOST, HS_MODE_BLOCK, error);
  if (d->block_db_ == nullptr)
    return nullptr;
  std::vector<const char*> quick;
  for (auto& p : prefilter_patterns)
    if ((d->kinds_mask_ & (1u << static_cast<unsigned>(p.kind))) != 0)
      quick.push_back(p.regex);
  d->vector_db_ = compile_db(quick, HS_FLAG_SINGLEMATCH, HS_MODE_VECTORED, error);
  if (d->vector_db_ == nullptr)
    return nullptr;
  return d;
}

bool pii_detector::scans(std::string_view path) const noexcept {
  if (path == "id")
    return scans_id_;
  if (scans_all())
    return true;
  for (auto& f : envelope_fields_)
    if (f == path)
      return true;
  for (auto& f : attr_fields_) {
    if (path == f)
      return true;
    if (path.size() > f.size() && path[f.size()] == '.' && path.compare(0, f.size(), f) == 0)
      return true;
  }
  return false;
}

// -- scanner ------------------------------------------------------------------------------------

pii_scanner::pii_scanner(std::shared_ptr<const pii_detector> detector)
  : detector_(std::move(detector)) {
  if (detector_->block_db_ != nullptr) {
    if (hs_alloc_scratch(detector_->block_db_, &scratch_) != HS_SUCCESS
        || hs_alloc_scratch(detector_->vector_db_, &scratch_) != HS_SUCCESS)
      throw std::runtime_error("Hyperscan scratch allocation failed");
  }
  // Typical strings produce a handful of candidates; the buffers grow once if needed.
  constexpr size_t initial_candidates = 64;
  candidates_.reserve(initial_candidates);
  found_.reserve(initial_candidates);
}

pii_scanner::~pii_scanner() {
  hs_free_scratch(scratch_);
}

bool pii_scanner::maybe(const event& e) {
  if (scratch_ == nullptr)
    return false;
  // The event id is scanned only when pii.fields names it (it identifies the event; gateway ids
  // are UUIDs).
  bool with_id = detector_->scans_id_;
  const char* data[] = {e.device_id.data(), e.profile_id.data(), e.attrs.data(), e.id.data()};
  unsigned lengths[] = {static_cast<unsigned>(e.device_id.size()),
                        static_cast<unsigned>(e.profile_id.size()),
                        static_cast<unsigned>(e.attrs.size()),
                        static_cast<unsigned>(e.id.size())};
  bool hit = false;
  auto on_match = [](unsigned, unsigned long long, unsigned long long, unsigned,
                     void* ctx) -> int {
    *static_cast<bool*>(ctx) = true;
    return 1; // one is enough: stop scanning
  };
  hs_scan_vector(detector_->vector_db_, data, lengths, with_id ? 4 : 3, 0, scratch_, on_match,
                 &hit);
  return hit;
}

void pii_scanner::find(std::string_view text, std::vector<pii_span>& out) {
  if (scratch_ == nullptr || text.empty() || text.size() > UINT32_MAX)
    return;
  candidates_.clear();
  auto on_match = [](unsigned id, unsigned long long from, unsigned long long to, unsigned,
                     void* ctx) -> int {
    static_cast<std::vector<candidate>*>(ctx)->push_back(
      {id, static_cast<uint32_t>(from), static_cast<uint32_t>(to)});
    return 0;
  };
  hs_scan(detector_->block_db_, text.data(), static_cast<unsigned>(text.size()), 0, scratch_,
          on_match, &candidates_);
  if (candidates_.empty())
    return;
  // Per pattern and start, the longest match; then validate each.
  std::sort(candidates_.begin(), candidates_.end(), [](const candidate& a, const candidate& b) {
    return a.id != b.id ? a.id < b.id : (a.from != b.from ? a.from < b.from : a.to > b.to);
  });
  found_.clear();
  for (size_t i = 0; i < candidates_.size(); ++i) {
    auto& c = candidates_[i];
    if (i > 0 && candidates_[i - 1].id == c.id && candidates_[i - 1].from == c.from)
      continue;
    validate(text, detector_->pattern_kinds_[c.id], c.from, c.to, found_);
  }
  if (found_.empty())
    return;
  // Overlaps across kinds (an IPv4 inside an IPv6, a card inside an e-mail): the earlier, then
  // longer span wins.
  std::sort(found_.begin(), found_.end(), [](const pii_span& a, const pii_span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  uint32_t covered = 0;
  bool first = true;
  for (auto& s : found_) {
    if (!first && s.begin < covered)
      continue;
    out.push_back(s);
    covered = s.end;
    first = false;
  }
}

void pii_scanner::validate(std::string_view text, pii_kind kind, uint32_t from, uint32_t to,
                           std::vector<pii_span>& out) const {
  auto before = [&](size_t pos) { return pos == 0 ? '\0' : text[pos - 1]; };
  auto at = [&](size_t pos) { return pos < text.size() ? text[pos] : '\0'; };
  switch (kind) {
    case pii_kind::card: {
      // The whole run of digits, spaces and dashes around the match; windows of 13-19 digits on
      // group boundaries with a valid issuer digit and Luhn sum.
      size_t b = from, e = to;
      auto run_char = [](char c) { return is_digit(c) || c == ' ' || c == '-'; };
      while (b > 0 && run_char(text[b - 1]))
        --b;
      while (e < text.size() && run_char(text[e]))
        ++e;
      while (b < e && !is_digit(text[b]))
        ++b;
      while (e > b && !is_digit(text[e - 1]))
        --e;
      if (is_alnum(before(b)) || is_alnum(at(e)))
        return;
      // Every card found in this run is reported once: skip if already done.
      for (auto& s : out)
        if (s.kind == pii_kind::card && s.begin >= b && s.end <= e)
          return;
      constexpr size_t max_digits = 64;
      uint32_t pos[max_digits];
      char digits[max_digits];
      bool group_start[max_digits];
      size_t n = 0;
      for (size_t k = b; k < e && n < max_digits; ++k) {
        if (!is_digit(text[k]))
          continue;
        group_start[n] = n == 0 || !is_digit(text[k - 1]);
        pos[n] = static_cast<uint32_t>(k);
        digits[n++] = text[k];
      }
      constexpr size_t min_len = 13, max_len = 19;
      size_t s = 0;
      while (s + min_len <= n) {
        bool taken = false;
        if (group_start[s] && digits[s] >= '2' && digits[s] <= '6') {
          for (size_t len = std::min(max_len, n - s); len >= min_len; --len) {
            bool group_end = s + len == n || group_start[s + len];
            if (group_end && luhn_valid(std::string_view(digits + s, len))) {
              out.push_back({kind, pos[s], pos[s + len - 1] + 1});
              s += len;
              taken = true;
              break;
            }
          }
        }
        if (!taken)
          ++s;
      }
      return;
    }
    case pii_kind::email:
      out.push_back({kind, from, to});
      return;
    case pii_kind::phone: {
      char b = before(from);
      if (is_alnum(b) || b == '+' || b == '_'
          || ((b == '-' || b == '.' || b == ' ' || b == '/') && continues_number(text, from - 1, -1)))
        return;
      char a = at(to);
      if (is_alnum(a) || a == '_'
          || ((a == '-' || a == '.' || a == ' ' || a == '/') && continues_number(text, to, +1)))
        return;
      size_t n = 0;
      for (size_t k = from; k < to; ++k)
        n += is_digit(text[k]) ? 1 : 0;
      bool plus = text[from] == '+';
      bool nanp = !plus && text[from] != '0';
      constexpr size_t e164_min = 8, e164_max = 15, nanp_digits = 10, national_min = 9,
                       national_max = 12;
      bool ok = plus ? (n >= e164_min && n <= e164_max)
                     : (nanp ? n == nanp_digits : (n >= national_min && n <= national_max));
      if (ok)
        out.push_back({kind, from, to});
      return;
    }
    case pii_kind::ipv4: {
      char b = before(from), a = at(to);
      if (is_alnum(b) || b == '.' || is_alnum(a) || (a == '.' && is_digit(at(to + 1))))
        return;
      int octet = 0, digits = 0;
      for (size_t k = from; k <= to; ++k) {
        if (k == to || text[k] == '.') {
          constexpr int max_octet = 255;
          if (digits == 0 || octet > max_octet)
            return;
          octet = 0;
          digits = 0;
        } else {
          octet = octet * 10 + (text[k] - '0');
          ++digits;
        }
      }
      out.push_back({kind, from, to});
      return;
    }
    case pii_kind::ipv6: {
      size_t b = from, e = to;
      while (b > 0 && is_hex_or_colon(text[b - 1]))
        --b;
      while (e < text.size() && is_hex_or_colon(text[e]))
        ++e;
      while (e > b && text[e - 1] == '.')
        --e;
      if (is_alnum(before(b)) || is_alnum(at(e)))
        return;
      for (auto& s : out)
        if (s.kind == pii_kind::ipv6 && s.begin == b)
          return;
      constexpr size_t max_text = 45; // INET6_ADDRSTRLEN - 1
      if (e - b > max_text || std::count(text.begin() + b, text.begin() + e, ':') < 2)
        return;
      char buf[max_text + 1];
      std::copy(text.begin() + b, text.begin() + e, buf);
      buf[e - b] = '\0';
      unsigned char addr[16];
      if (inet_pton(AF_INET6, buf, addr) == 1)
        out.push_back({kind, static_cast<uint32_t>(b), static_cast<uint32_t>(e)});
      return;
    }
  }
}

// -- pseudonyms ---------------------------------------------------------------------------------

keyed_hasher::keyed_hasher(std::string_view secret, bool base64url) : base64url_(base64url) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr)
    throw std::runtime_error("OpenSSL has no HMAC");
  ctx_ = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac); // the context holds its own reference
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
    OSSL_PARAM_construct_end(),
  };
  if (ctx_ == nullptr
      || EVP_MAC_init(ctx_, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                      params)
           != 1)
    throw std::runtime_error("HMAC-SHA256 initialisation failed");
}

keyed_hasher::~keyed_hasher() {
  EVP_MAC_CTX_free(ctx_);
}

void keyed_hasher::append(std::string_view value, std::string& out) {
  constexpr size_t mac_bytes = 32;
  unsigned char mac[mac_bytes];
  size_t len = 0;
  // A null key re-initialises with the key set in the constructor.
  EVP_MAC_init(ctx_, nullptr, 0, nullptr);
  EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(value.data()), value.size());
  EVP_MAC_final(ctx_, mac, &len, sizeof mac);
  if (!base64url_) {
    static constexpr char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; ++i) {
      out += hex[mac[i] >> 4];
      out += hex[mac[i] & 0xf];
    }
    return;
  }
  unsigned char b64[((mac_bytes + 2) / 3) * 4 + 1];
  int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
  for (int i = 0; i < n; ++i) {
    char c = static_cast<char>(b64[i]);
    if (c == '=')
      break;
    out += c == '+' ? '-' : (c == '/' ? '_' : c);
  }
}

void normalize_pii(pii_kind kind, std::string_view value, std::string& out) {
  out.clear();
  switch (kind) {
    case pii_kind::card:
    case pii_kind::phone:
      for (char c : value)
        if (is_digit(c) || (c == '+' && out.empty()))
          out += c;
      return;
    case pii_kind::email:
    case pii_kind::ipv6:
      for (char c : value)
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return;
    case pii_kind::ipv4: out.assign(value); return;
  }
}

std::string resolve_pii_secret(const pii_options& opts) {
  if (!opts.secret.empty())
    return opts.secret;
  if (const char* env = std::getenv(pii_secret_env))
    return env;
  return {};
}

bool luhn_valid(std::string_view digits) noexcept {
  int sum = 0;
  bool twice = false;
  for (auto i = digits.rbegin(); i != digits.rend(); ++i) {
    int d = *i - '0';
    if (twice) {
      d *= 2;
      if (d > 9)
        d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return !digits.empty() && sum % 10 == 0;
}

} // namespace sluice
