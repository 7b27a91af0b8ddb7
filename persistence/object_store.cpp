// Object store factory, configuration validation and key rules.

#include "persistence/object_store.hpp"

#include "persistence/local_store.hpp"
#include "persistence/s3_store.hpp"

#include <string>

namespace sluice::persistence {

namespace {

/// S3 refuses parts below 5 MiB (except the last) and above 5 GiB.
constexpr uint64_t s3_min_part_bytes = uint64_t{5} << 20;
constexpr uint64_t s3_max_part_bytes = uint64_t{5} << 30;
/// ListObjectsV2 returns at most 1000 keys per page.
constexpr uint32_t s3_max_list_keys = 1000;

constexpr std::string_view s3_scheme = "s3://";
constexpr std::string_view file_scheme = "file://";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

} // namespace

std::string object_store_config::validate() const {
  if (root.empty())
    return "root is empty: give a local directory, file:///dir or s3://bucket/prefix";
  if (max_attempts == 0)
    return "max-attempts must be at least 1";
  if (connect_timeout.count() <= 0 || request_timeout.count() <= 0)
    return "connect-timeout and request-timeout must be positive";
  if (retry_backoff.count() < 0)
    return "retry-backoff must not be negative";
  if (starts_with(root, s3_scheme)) {
    if (auto err = validate_s3_root(root); !err.empty())
      return err;
    if (!endpoint.empty() && !starts_with(endpoint, "http://") && !starts_with(endpoint, "https://"))
      return "endpoint '" + endpoint + "' must start with http:// or https://";
    if (part_bytes < s3_min_part_bytes || part_bytes > s3_max_part_bytes)
      return "part-bytes " + std::to_string(part_bytes)
             + " is outside S3's part size limits [5 MiB, 5 GiB]";
    if (list_page_keys == 0 || list_page_keys > s3_max_list_keys)
      return "list-page-keys " + std::to_string(list_page_keys) + " must be in [1, 1000]";
    return {};
  }
  if (starts_with(root, file_scheme)) {
    if (root.size() == file_scheme.size() || root[file_scheme.size()] != '/')
      return "root '" + root + "': a file URL needs an absolute path (file:///dir)";
    return {};
  }
  if (root.find("://") != std::string::npos)
    return "root '" + root + "': unsupported scheme (use a directory, file:// or s3://)";
  return {};
}

std::unique_ptr<object_store> open_object_store(const object_store_config& cfg) {
  if (auto err = cfg.validate(); !err.empty())
    throw store_error("object store: " + err, false);
  if (starts_with(cfg.root, s3_scheme))
    return std::make_unique<s3_store>(cfg);
  auto dir = starts_with(cfg.root, file_scheme) ? cfg.root.substr(file_scheme.size()) : cfg.root;
  return std::make_unique<local_store>(dir);
}

void check_object_key(std::string_view key) {
  auto fail = [&](const char* why) {
    throw store_error("invalid object key '" + std::string{key} + "': " + why, false);
  };
  if (key.empty())
    fail("empty");
  if (key.find('\0') != std::string_view::npos)
    fail("contains a NUL byte");
  size_t start = 0;
  for (;;) {
    auto end = key.find('/', start);
    auto segment = key.substr(start, end == std::string_view::npos ? end : end - start);
    if (segment.empty())
      fail("empty path segment (leading, trailing or double '/')");
    if (segment == "." || segment == "..")
      fail("'.' and '..' segments are not allowed");
    if (end == std::string_view::npos)
      return;
    start = end + 1;
  }
}

} // namespace sluice::persistence
