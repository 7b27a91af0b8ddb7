#pragma once

// Enrichment at ingest: attributes appended to an event's `attrs` map without re-encoding it,
// device type from User-Agent / `device_model` rules, country from a CIDR table, clock-skew flag.
// Plain C++ (no CAF).

#include "messages/event.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace sluice {

/// Appends `key` → string `value` to the msgpack map `attrs` (empty = empty map): the map
/// header's count is rewritten and the pair appended; the existing pairs are not re-encoded.
/// Returns false (and leaves `attrs` unchanged) when `attrs` is not a map.
bool append_attr(std::string& attrs, std::string_view key, std::string_view value);

/// Like `append_attr`, with an integer value.
bool append_attr(std::string& attrs, std::string_view key, int64_t value);

/// Whether the top-level map `attrs` has a key `key` (a fast byte search first, then an exact
/// look-up only when the key's bytes occur).
bool has_attr(std::string_view attrs, std::string_view key);

/// Maps a User-Agent or a device model to a device type with an ordered rule table.
///
/// Lifecycle: `compile` once, then read-only (safe from every thread). The rules are compiled into
/// one RE2::Set, so a classification is one pass over the text whatever the number of rules; the
/// first rule (in table order) that matches wins.
class device_classifier {
public:
  device_classifier();
  ~device_classifier();
  device_classifier(device_classifier&&) noexcept;
  device_classifier& operator=(device_classifier&&) noexcept;

  /// Compiles rules `"<type>:<RE2 pattern>"` (e.g. `"tv:SmartTV|Tizen|Roku"`); returns an error
  /// text naming the rule, empty on success.
  std::string compile(const std::vector<std::string>& rules);

  /// The device type of `text`, or an empty view when no rule matches.
  std::string_view classify(std::string_view text) const;

  /// The default rules: tv, console, mobile, web (in that order).
  static std::vector<std::string> default_rules();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// CIDR → country table for IPv4 and IPv6, longest prefix match.
///
/// Lifecycle: loaded once (`load_csv` or `add` then `finish`), then read-only. Layout: one sorted
/// vector of network addresses per prefix length present; a lookup binary-searches the lengths
/// from the longest down, so the cost is O(lengths × log n) with no allocation.
class cidr_table {
public:
  /// Adds `cidr` (`203.0.113.0/24`, `2001:db8::/32`; a bare address is a /32 or /128) mapping to
  /// `country`. Returns an error text, empty on success. Call `finish` after the last add.
  std::string add(std::string_view cidr, std::string_view country);

  /// Reads a CSV file of `network,country` rows (a header row `network,country` and lines starting
  /// with `#` are skipped; further columns are ignored). Returns an error text naming the file and
  /// line, empty on success. Calls `finish`.
  std::string load_csv(const std::string& path);

  /// Sorts the table; `lookup` needs it.
  void finish();

  /// The country of the textual address `ip` (IPv4, IPv6 or IPv4-mapped IPv6); empty when no
  /// network contains it or `ip` is not an address.
  std::string_view lookup(std::string_view ip) const;

  size_t size() const noexcept {
    return entries_;
  }

private:
  using u128 = unsigned __int128;
  struct v4_entry {
    uint32_t net;
    uint16_t country;
  };
  struct v6_entry {
    u128 net;
    uint16_t country;
  };
  uint16_t country_index(std::string_view country);
  std::array<std::vector<v4_entry>, 33> v4_;
  std::array<std::vector<v6_entry>, 129> v6_;
  std::vector<uint8_t> v4_lengths_; // present lengths, longest first
  std::vector<uint8_t> v6_lengths_;
  std::vector<std::string> countries_;
  size_t entries_ = 0;
};

/// Enrichment settings (section `[enrich]`).
struct enrich_options {
  bool enabled = true;
  /// Ordered `"<type>:<RE2>"` rules applied to `device_model`, then to the User-Agent.
  std::vector<std::string> device_rules = device_classifier::default_rules();
  /// CSV of `network,country`; empty: no country.
  std::string geoip_file;
  /// Take the client address from the first X-Forwarded-For entry (behind a trusted proxy).
  bool trust_forwarded_for = false;
  /// An event whose `ts` is more than this far ahead of `ingest_ts` is flagged.
  int64_t max_clock_skew_ms = 5 * 60 * 1000;
  std::string device_model_attribute = "device_model";
  std::string device_type_attribute = "device_type";
  std::string country_attribute = "country";
  std::string clock_skew_attribute = "clock_skew_ms";
  /// Country written when the table has no match (empty: no attribute).
  std::string unknown_country = "ZZ";
};

/// What the gateway knows about the client of one batch.
struct client_info {
  std::string_view user_agent;
  /// The peer address of the socket.
  std::string_view peer_ip;
  /// The X-Forwarded-For header (may be empty).
  std::string_view forwarded_for;
};

/// Adds `device_type`, `country`, the schema version and the clock-skew flag to accepted events.
///
/// Lifecycle: `init` once (compiles rules, loads the CIDR table), then read-only and safe from
/// every io thread. Per batch, `prepare` classifies the User-Agent and resolves the country once;
/// per event, `apply` appends at most four attributes; attributes the client already sent are
/// left as they are.
class enricher {
public:
  /// Returns an error text (bad rule, unreadable GeoIP file), empty on success.
  std::string init(const enrich_options& opts);

  /// Per-batch values.
  struct batch_context {
    std::string_view ua_device_type;
    std::string_view country;
  };

  batch_context prepare(const client_info& client) const;

  /// The address enrichment attributes to `client` (the first X-Forwarded-For entry when trusted).
  std::string_view client_ip(const client_info& client) const;

  /// Enriches `e`; `schema_label` (`play@2`, may be empty) goes into `version_attribute`. Returns
  /// true when the event was flagged for clock skew.
  bool apply(event& e, const batch_context& ctx, std::string_view version_attribute,
             std::string_view schema_label) const;

  const enrich_options& options() const noexcept {
    return opts_;
  }
  const cidr_table& countries() const noexcept {
    return countries_;
  }

private:
  enrich_options opts_;
  device_classifier devices_;
  cidr_table countries_;
};

} // namespace sluice
