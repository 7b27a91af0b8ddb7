#pragma once

// Where the lake's files live: a local directory or an S3-compatible bucket (plain C++, no CAF).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice::persistence {

/// A failed store operation. `transient()` says whether trying again may succeed (network error,
/// 5xx, throttling) or not (403 bad credentials, 404 bucket, local I/O error other than ENOSPC...).
class store_error : public std::runtime_error {
public:
  /// `what` says what failed, where, and what to do; `transient` whether a retry may succeed.
  store_error(const std::string& what, bool transient)
    : std::runtime_error(what), transient_(transient) {}
  /// True when trying the operation again later may succeed.
  bool transient() const noexcept { return transient_; }
private:
  bool transient_;
};

/// One entry of `object_store::list`.
struct object_info {
  std::string key; ///< relative to the store's root/prefix, '/'-separated
  uint64_t size = 0;
};

/// Runs `op()` for a store and keeps the store's health flag: `healthy` becomes true when `op`
/// returns and false when it throws store_error (rethrown). Returns what `op` returns.
template <class F>
auto track_health(bool& healthy, F&& op) {
  try {
    if constexpr (std::is_void_v<decltype(op())>) {
      op();
      healthy = true;
    } else {
      auto result = op();
      healthy = true;
      return result;
    }
  } catch (const store_error&) {
    healthy = false;
    throw;
  }
}

/// Configuration of a store. `root` is a local path (absolute or relative, or `file://...`) or
/// `s3://bucket/prefix`.
struct object_store_config {
  std::string root;
  /// S3 only. `endpoint` like `http://127.0.0.1:4569` (path-style addressing) or empty for AWS
  /// (`https://<bucket>.s3.<region>.amazonaws.com`). Credentials fall back to the environment
  /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION) when empty.
  std::string endpoint;
  std::string region;
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  /// Files above this size use multipart upload, in parts of `part_bytes` (S3 minimum 5 MiB).
  uint64_t multipart_threshold = 16u << 20;
  uint64_t part_bytes = 8u << 20;
  /// Per-request attempts for transient failures (with exponential backoff starting at
  /// `retry_backoff`, doubling per attempt, with jitter), and timeouts.
  uint32_t max_attempts = 4;
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{30000};
  /// S3 only: keys per ListObjectsV2 page (`max-keys`, 1..1000; S3 never returns more than 1000).
  uint32_t list_page_keys = 1000;

  /// Empty when valid; otherwise what is wrong, naming the option.
  std::string validate() const;
};

/// A flat key → bytes store with atomic whole-object visibility: a reader sees a complete object
/// or none, never part of one. Locally, objects are written to a temporary name, fsynced, renamed
/// into place and the directory fsynced; on S3, PUT (or a completed multipart upload) is atomic and
/// S3 gives read-after-write consistency. Not thread-safe per instance.
class object_store {
public:
  virtual ~object_store() = default;
  /// Stores the local file at `local_path` as `key`. The local file is consumed: it may be renamed
  /// (local store, same file system) or deleted after upload.
  virtual void put_file(const std::string& key, const std::string& local_path) = 0;
  /// Stores `bytes` as `key` (replaces an existing object atomically).
  virtual void put(const std::string& key, std::string_view bytes) = 0;
  /// Stores `bytes` as `key` only if no object `key` exists, atomically with respect to every
  /// other `put_if_absent` of the same key (exclusive create: `link(2)` locally, a conditional
  /// PUT with `If-None-Match: *` on S3). Returns false, writing nothing, when `key` exists (or, on
  /// S3, while another conditional write of `key` is in progress: 409). A transport failure after
  /// the object was created can make a retried request answer false: a caller that must know
  /// reads the object back and compares. The lake commits snapshots with it.
  virtual bool put_if_absent(const std::string& key, std::string_view bytes) = 0;
  /// The object's bytes, or nullopt when it does not exist.
  virtual std::optional<std::string> get(const std::string& key) = 0;
  /// Every object whose key starts with `prefix`, sorted by key.
  virtual std::vector<object_info> list(const std::string& prefix) = 0;
  /// Deletes `key`; no error when it does not exist.
  virtual void remove(const std::string& key) = 0;
  /// `file:///abs/path` or `s3://bucket/prefix`: what readers should use to address `key`.
  virtual std::string url(const std::string& key) const = 0;
  /// Cheap reachability check (for health): true when the last operation succeeded.
  virtual bool healthy() const = 0;
};

/// Opens the store for `cfg.root` (throws store_error when it cannot, e.g. invalid root, invalid
/// options, or no S3 credentials in the config or the environment).
std::unique_ptr<object_store> open_object_store(const object_store_config& cfg);

/// Throws a permanent store_error unless `key` is a valid object key: non-empty, '/'-separated
/// segments that are neither empty, `.` nor `..`, no NUL byte. Both stores accept the same keys.
void check_object_key(std::string_view key);

} // namespace sluice::persistence
