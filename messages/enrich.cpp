// Enrichment: attribute appends, the device-type rule set (RE2::Set), the CIDR table (inet_pton,
// libcsv), and the per-event enricher.

#include "messages/enrich.hpp"

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <arpa/inet.h>
#include <csv.h>
#include <fmt/format.h>
#include <msgpack.hpp>
#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include "messages/text.hpp"

namespace sluice {

// -- attribute appends --------------------------------------------------------------------------

namespace {

/// Reads the map header at the front of `attrs`: its size in bytes and its count.
bool read_map_header(std::string_view attrs, size_t& header_size, uint32_t& count) {
  detail::mp_reader r{attrs};
  detail::mp_token t;
  if (!r.next(t) || t.type != detail::mp_type::map)
    return false;
  header_size = r.offset();
  count = t.count;
  return true;
}

/// Makes room for one more pair: rewrites the header of `attrs` with count + 1.
bool grow_map(std::string& attrs) {
  if (attrs.empty()) {
    attrs.push_back(static_cast<char>(0x81));
    return true;
  }
  size_t old_size = 0;
  uint32_t count = 0;
  if (!read_map_header(attrs, old_size, count) || count == std::numeric_limits<uint32_t>::max())
    return false;
  std::string header;
  header.reserve(detail::container_placeholder_size);
  detail::string_writer w{&header};
  msgpack::packer<detail::string_writer> packer{w};
  packer.pack_map(count + 1);
  if (header.size() == old_size)
    std::memcpy(attrs.data(), header.data(), old_size); // the usual case: same header size
  else
    attrs.replace(0, old_size, header); // 15 → 16 or 65535 → 65536 pairs: the header grows
  return true;
}

} // namespace

bool append_attr(std::string& attrs, std::string_view key, std::string_view value) {
  if (!grow_map(attrs))
    return false;
  detail::string_writer w{&attrs};
  msgpack::packer<detail::string_writer> packer{w};
  packer.pack_str(static_cast<uint32_t>(key.size()));
  packer.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
  packer.pack_str(static_cast<uint32_t>(value.size()));
  packer.pack_str_body(value.data(), static_cast<uint32_t>(value.size()));
  return true;
}

bool append_attr(std::string& attrs, std::string_view key, int64_t value) {
  if (!grow_map(attrs))
    return false;
  detail::string_writer w{&attrs};
  msgpack::packer<detail::string_writer> packer{w};
  packer.pack_str(static_cast<uint32_t>(key.size()));
  packer.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
  packer.pack_int64(value);
  return true;
}

bool has_attr(std::string_view attrs, std::string_view key) {
  if (attrs.empty() || key.empty())
    return false;
  if (attrs.find(key) == std::string_view::npos)
    return false; // the key's bytes do not occur anywhere: certainly absent
  detail::mp_reader r{attrs};
  detail::mp_token t;
  if (!r.next(t) || t.type != detail::mp_type::map)
    return false;
  for (uint32_t k = 0; k < t.count; ++k) {
    detail::mp_token name;
    if (!r.next(name))
      return false;
    if (name.type == detail::mp_type::str && name.bytes == key)
      return true;
    if (!r.skip())
      return false;
  }
  return false;
}

// -- device classifier --------------------------------------------------------------------------

struct device_classifier::impl {
  std::unique_ptr<re2::RE2::Set> set;
  std::vector<std::string> types;
};

device_classifier::device_classifier() = default;
device_classifier::~device_classifier() = default;
device_classifier::device_classifier(device_classifier&&) noexcept = default;
device_classifier& device_classifier::operator=(device_classifier&&) noexcept = default;

std::vector<std::string> device_classifier::default_rules() {
  return {
    "tv:SmartTV|SMART-TV|Tizen|Web0S|WebOS|webOS|Roku|AFT[A-Z]|BRAVIA|HbbTV|CrKey|AppleTV|"
    "GoogleTV|Android TV",
    "console:PlayStation|Xbox|Nintendo",
    "mobile:Android|iPhone|iPad|iPod|Mobile",
    "web:Mozilla",
  };
}

std::string device_classifier::compile(const std::vector<std::string>& rules) {
  auto d = std::make_unique<impl>();
  re2::RE2::Options opts;
  opts.set_log_errors(false);
  d->set = std::make_unique<re2::RE2::Set>(opts, re2::RE2::UNANCHORED);
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto& rule = rules[i];
    auto colon = rule.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == rule.size())
      return fmt::format("device rule {} (\"{}\") must look like \"<type>:<pattern>\", e.g. "
                         "\"tv:SmartTV|Tizen\"",
                         i + 1, rule);
    std::string error;
    if (d->set->Add(rule.substr(colon + 1), &error) < 0)
      return fmt::format("device rule {} (\"{}\"): invalid pattern: {}", i + 1, rule, error);
    d->types.push_back(rule.substr(0, colon));
  }
  if (!rules.empty() && !d->set->Compile())
    return "device rules: the patterns do not fit RE2's memory budget; use fewer or simpler ones";
  if (rules.empty())
    d->set.reset();
  impl_ = std::move(d);
  return {};
}

std::string_view device_classifier::classify(std::string_view text) const {
  if (!impl_ || !impl_->set || text.empty())
    return {};
  thread_local std::vector<int> hits;
  hits.clear();
  if (!impl_->set->Match(re2::StringPiece(text.data(), text.size()), &hits) || hits.empty())
    return {};
  return impl_->types[static_cast<size_t>(*std::min_element(hits.begin(), hits.end()))];
}

// -- CIDR table ---------------------------------------------------------------------------------

namespace {

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its IPv4 address.
bool mapped_v4(const unsigned char (&b)[16], uint32_t& out) {
  static constexpr unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, prefix, sizeof prefix) != 0)
    return false;
  out = (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15];
  return true;
}

struct parsed_ip {
  bool v6 = false;
  uint32_t v4 = 0;
  unsigned __int128 v6_value = 0;
};

bool parse_ip(std::string_view text, parsed_ip& out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf)
    return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  unsigned char bytes[16];
  if (inet_pton(AF_INET, buf, bytes) == 1) {
    out.v6 = false;
    out.v4 = (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8)
             | bytes[3];
    return true;
  }
  if (inet_pton(AF_INET6, buf, bytes) == 1) {
    if (mapped_v4(bytes, out.v4)) {
      out.v6 = false;
      return true;
    }
    out.v6 = true;
    out.v6_value = 0;
    for (auto b : bytes)
      out.v6_value = (out.v6_value << 8) | b;
    return true;
  }
  return false;
}

uint32_t mask4(unsigned len) {
  return len == 0 ? 0 : ~uint32_t{0} << (32 - len);
}

unsigned __int128 mask6(unsigned len) {
  return len == 0 ? 0 : ~static_cast<unsigned __int128>(0) << (128 - len);
}


} // namespace

uint16_t cidr_table::country_index(std::string_view country) {
  for (size_t i = 0; i < countries_.size(); ++i)
    if (countries_[i] == country)
      return static_cast<uint16_t>(i);
  countries_.emplace_back(country);
  return static_cast<uint16_t>(countries_.size() - 1);
}

std::string cidr_table::add(std::string_view cidr, std::string_view country) {
  cidr = trim_blanks(cidr);
  country = trim_blanks(country);
  if (country.empty())
    return fmt::format("network {} has no country", cidr);
  auto slash = cidr.find('/');
  auto addr = cidr.substr(0, slash);
  parsed_ip ip;
  if (!parse_ip(addr, ip))
    return fmt::format("'{}' is not an IPv4 or IPv6 network (expected e.g. 203.0.113.0/24 or "
                       "2001:db8::/32)",
                       cidr);
  unsigned max_len = ip.v6 ? 128 : 32;
  unsigned len = max_len;
  if (slash != std::string_view::npos) {
    auto digits = cidr.substr(slash + 1);
    if (digits.empty() || digits.size() > 3
        || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fmt::format("'{}': the prefix length must be a number", cidr);
    len = static_cast<unsigned>(std::stoul(std::string{digits}));
    // an IPv4-mapped network written as IPv6 keeps its IPv4 meaning
    if (!ip.v6 && addr.find(':') != std::string_view::npos) {
      if (len < 96)
        return fmt::format("'{}': an IPv4-mapped network needs a prefix of at least 96", cidr);
      len -= 96;
    }
    if (len > max_len)
      return fmt::format("'{}': the prefix length is above {}", cidr, max_len);
  }
  if (countries_.size() >= std::numeric_limits<uint16_t>::max())
    return "too many distinct countries in the table";
  auto c = country_index(country);
  if (ip.v6)
    v6_[len].push_back({ip.v6_value & mask6(len), c});
  else
    v4_[len].push_back({ip.v4 & mask4(len), c});
  ++entries_;
  return {};
}

namespace {

/// Sorts the networks of one prefix length and keeps the last entry of equal networks (a later
/// line of the table overrides an earlier one).
template <class Entry>
void sort_unique_networks(std::vector<Entry>& v) {
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.net < b.net; });
  std::vector<Entry> unique;
  for (auto& e : v) {
    if (!unique.empty() && unique.back().net == e.net)
      unique.back() = e;
    else
      unique.push_back(e);
  }
  v.swap(unique);
}

/// Sorts every non-empty prefix length of `by_len` and lists them longest first in `lengths`.
template <class Table>
void finish_lengths(Table& by_len, std::vector<uint8_t>& lengths) {
  lengths.clear();
  for (int len = static_cast<int>(by_len.size()) - 1; len >= 0; --len) {
    auto& v = by_len[static_cast<size_t>(len)];
    if (v.empty())
      continue;
    sort_unique_networks(v);
    lengths.push_back(static_cast<uint8_t>(len));
  }
}

} // namespace

void cidr_table::finish() {
  finish_lengths(v4_, v4_lengths_);
  finish_lengths(v6_, v6_lengths_);
}

std::string_view cidr_table::lookup(std::string_view text) const {
  parsed_ip ip;
  if (!parse_ip(trim_blanks(text), ip))
    return {};
  if (!ip.v6) {
    for (auto len : v4_lengths_) {
      auto& v = v4_[len];
      auto net = ip.v4 & mask4(len);
      auto it = std::lower_bound(v.begin(), v.end(), net,
                                 [](const v4_entry& e, uint32_t x) { return e.net < x; });
      if (it != v.end() && it->net == net)
        return countries_[it->country];
    }
    return {};
  }
  for (auto len : v6_lengths_) {
    auto& v = v6_[len];
    auto net = ip.v6_value & mask6(len);
    auto it = std::lower_bound(v.begin(), v.end(), net,
                               [](const v6_entry& e, unsigned __int128 x) { return e.net < x; });
    if (it != v.end() && it->net == net)
      return countries_[it->country];
  }
  return {};
}

std::string cidr_table::load_csv(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return fmt::format("cannot read the GeoIP table {}: {}", path, std::strerror(errno));
  struct row_state {
    std::vector<std::string> fields;
  } row;
  auto on_field = [](void* data, size_t n, void* ctx) {
    static_cast<row_state*>(ctx)->fields.emplace_back(static_cast<const char*>(data), n);
  };
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    auto text = trim_blanks(line);
    if (text.empty() || text.front() == '#')
      continue;
    csv_parser parser;
    if (csv_init(&parser, CSV_STRICT) != 0)
      return "cannot initialise the CSV parser";
    row.fields.clear();
    bool ok = csv_parse(&parser, text.data(), text.size(), on_field, nullptr, &row) == text.size()
              && csv_fini(&parser, on_field, nullptr, &row) == 0;
    std::string parse_error = ok ? "" : csv_strerror(csv_error(&parser));
    csv_free(&parser);
    if (!ok)
      return fmt::format("{}:{}: malformed CSV: {}", path, line_no, parse_error);
    if (row.fields.size() < 2)
      return fmt::format("{}:{}: expected network,country", path, line_no);
    auto first = trim_blanks(row.fields[0]);
    if (first == "network" || first == "cidr")
      continue; // header row
    if (auto err = add(row.fields[0], row.fields[1]); !err.empty())
      return fmt::format("{}:{}: {}", path, line_no, err);
  }
  finish();
  return {};
}

// -- enricher -----------------------------------------------------------------------------------

std::string enricher::init(const enrich_options& opts) {
  opts_ = opts;
  if (auto err = devices_.compile(opts.device_rules); !err.empty())
    return "enrich.device-rules: " + err;
  if (!opts.geoip_file.empty())
    if (auto err = countries_.load_csv(opts.geoip_file); !err.empty())
      return "enrich.geoip-file: " + err;
  return {};
}

std::string_view enricher::client_ip(const client_info& client) const {
  if (opts_.trust_forwarded_for && !client.forwarded_for.empty()) {
    auto first = client.forwarded_for.substr(0, client.forwarded_for.find(','));
    first = trim_blanks(first);
    if (!first.empty())
      return first;
  }
  return client.peer_ip;
}

enricher::batch_context enricher::prepare(const client_info& client) const {
  batch_context ctx;
  if (!opts_.enabled)
    return ctx;
  ctx.ua_device_type = devices_.classify(client.user_agent);
  if (countries_.size() > 0)
    ctx.country = countries_.lookup(client_ip(client));
  if (ctx.country.empty())
    ctx.country = opts_.unknown_country;
  return ctx;
}

bool enricher::apply(event& e, const batch_context& ctx, std::string_view version_attribute,
                     std::string_view schema_label) const {
  if (!version_attribute.empty() && !schema_label.empty()
      && !has_attr(e.attrs, version_attribute))
    append_attr(e.attrs, version_attribute, schema_label);
  if (!opts_.enabled)
    return false;
  if (!has_attr(e.attrs, opts_.device_type_attribute)) {
    std::string_view type;
    if (e.attrs.find(opts_.device_model_attribute) != std::string::npos) // cheap pre-check
      if (auto model = find_attr(e.attrs, opts_.device_model_attribute);
          model && model->type == attr_value::kind::string)
        type = devices_.classify(model->s);
    if (type.empty())
      type = ctx.ua_device_type;
    append_attr(e.attrs, opts_.device_type_attribute, type.empty() ? "other" : type);
  }
  if (!ctx.country.empty() && !has_attr(e.attrs, opts_.country_attribute))
    append_attr(e.attrs, opts_.country_attribute, ctx.country);
  if (opts_.max_clock_skew_ms >= 0 && e.ingest_ts > 0 && e.ts > e.ingest_ts
      && e.ts - e.ingest_ts > opts_.max_clock_skew_ms) {
    if (!has_attr(e.attrs, opts_.clock_skew_attribute))
      append_attr(e.attrs, opts_.clock_skew_attribute, e.ts - e.ingest_ts);
    return true;
  }
  return false;
}

} // namespace sluice
