#include "persistence/route_store.hpp"

namespace sluice::persistence {

namespace {

constexpr char version_prefix = 'v';
constexpr std::string_view config_text_key = "config-text";
/// Record format version, first byte of every record.
constexpr char record_format = 1;

std::string version_key(uint64_t n) {
  std::string key(1, version_prefix);
  key += encode_be64(n);
  return key;
}

void put_string(std::string& out, std::string_view s) {
  out += encode_be64(s.size());
  out.append(s.data(), s.size());
}

bool take_u64(std::string_view& in, uint64_t& out) {
  if (in.size() < 8)
    return false;
  out = decode_be64(in.substr(0, 8));
  in.remove_prefix(8);
  return true;
}

bool take_string(std::string_view& in, std::string& out) {
  uint64_t n = 0;
  if (!take_u64(in, n) || in.size() < n)
    return false;
  out.assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

} // namespace

std::string route_store::encode(const route_version& v) {
  std::string out(1, record_format);
  out += encode_be64(v.effective_from);
  out += encode_be64(static_cast<uint64_t>(v.created_ms));
  put_string(out, v.comment);
  put_string(out, v.text);
  return out;
}

std::optional<route_version> route_store::decode(uint64_t version, std::string_view bytes) {
  if (bytes.empty() || bytes.front() != record_format)
    return std::nullopt;
  bytes.remove_prefix(1);
  route_version v;
  v.version = version;
  uint64_t created = 0;
  if (!take_u64(bytes, v.effective_from) || !take_u64(bytes, created)
      || !take_string(bytes, v.comment) || !take_string(bytes, v.text) || !bytes.empty())
    return std::nullopt;
  v.created_ms = static_cast<int64_t>(created);
  return v;
}

std::vector<route_version> route_store::list(const read_txn& txn) {
  std::vector<route_version> out;
  txn.scan(db::routes, std::string(1, version_prefix), [&](std::string_view k, std::string_view v) {
    if (k.size() != 9 || k.front() != version_prefix)
      return false;
    if (auto rv = decode(decode_be64(k.substr(1)), v))
      out.push_back(std::move(*rv));
    return true;
  });
  return out;
}

std::optional<route_version> route_store::get(const read_txn& txn, uint64_t n) {
  if (auto v = txn.get(db::routes, version_key(n)))
    return decode(n, *v);
  return std::nullopt;
}

std::optional<route_version> route_store::latest(const read_txn& txn) {
  auto all = list(txn);
  if (all.empty())
    return std::nullopt;
  return std::move(all.back());
}

void route_store::put(write_txn& txn, const route_version& v) {
  txn.put(db::routes, version_key(v.version), encode(v));
}

std::optional<std::string> route_store::config_text(const read_txn& txn) {
  if (auto v = txn.get(db::routes, config_text_key))
    return std::string{*v};
  return std::nullopt;
}

void route_store::set_config_text(write_txn& txn, const std::string& text) {
  txn.put(db::routes, config_text_key, text);
}

} // namespace sluice::persistence
