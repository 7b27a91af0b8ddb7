#pragma once

// The object store on an S3-compatible bucket, over libcurl with its AWS SigV4 signing (plain C++,
// no CAF).

#include "persistence/object_store.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace sluice::persistence {

/// Empty when `root` is a valid `s3://bucket[/prefix]`, else what is wrong with it.
std::string validate_s3_root(const std::string& root);

/// Objects in an S3 bucket under an optional key prefix: key `k` of store `s3://b/p` is the S3
/// object `p/k` of bucket `b`.
///
/// Addressing: path-style `<endpoint>/<bucket>/<prefix>/<key>` when `endpoint` is configured (MinIO,
/// s3rver, ...), virtual-host `https://<bucket>.s3.<region>.amazonaws.com/<prefix>/<key>` otherwise.
/// Requests are signed by libcurl (`CURLOPT_AWS_SIGV4`); the payload hash is always sent and
/// signed (`x-amz-content-sha256`: the body's SHA-256), so S3 rejects a corrupted upload.
///
/// Operations: PutObject (below `multipart_threshold`, streamed from the file), multipart upload
/// above it (parts of `part_bytes`, grown if the file would need more than 10 000 parts; an upload
/// that fails is aborted), GetObject (404 → nullopt), ListObjectsV2 (pages of `list_page_keys`,
/// following continuation tokens), DeleteObject.
///
/// Errors: every request is tried up to `max_attempts` times with exponential backoff (from
/// `retry_backoff`, doubling, with jitter) when the failure is transient: a curl transport error,
/// HTTP 5xx, 429, or the S3 codes SlowDown / RequestTimeout / InternalError. Anything else
/// (403 SignatureDoesNotMatch or AccessDenied, NoSuchBucket, ...) is a permanent store_error whose
/// message carries the S3 error code and message.
///
/// Lifecycle and concurrency: the constructor resolves credentials and region (config, else
/// environment) and creates one CURL easy handle, reused by every request (keep-alive); the
/// destructor frees it. **Not thread-safe**: use one instance per thread. Memory: a multipart
/// upload holds one part in memory; `get` holds the whole object.
class s3_store final : public object_store {
public:
  /// Throws store_error when the root is invalid, no credentials are found, or curl cannot start.
  explicit s3_store(const object_store_config& cfg);
  ~s3_store() override;
  s3_store(const s3_store&) = delete;
  s3_store& operator=(const s3_store&) = delete;

  void put_file(const std::string& key, const std::string& local_path) override;
  void put(const std::string& key, std::string_view bytes) override;
  /// PutObject with `If-None-Match: *` (S3 conditional writes, AWS since 2024-08; MinIO, R2, ...):
  /// 412 PreconditionFailed and 409 ConditionalRequestConflict answer false. A server that
  /// ignores the header overwrites instead: the lake probes for that once per table
  /// (`lake::table::probe_exclusive_create`).
  bool put_if_absent(const std::string& key, std::string_view bytes) override;
  std::optional<std::string> get(const std::string& key) override;
  std::vector<object_info> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  std::string url(const std::string& key) const override;
  bool healthy() const override;

  /// The bucket and the key prefix (no leading or trailing '/', may be empty).
  const std::string& bucket() const noexcept {
    return bucket_;
  }
  const std::string& prefix() const noexcept {
    return prefix_;
  }

private:
  /// One HTTP request (method, URL with canonical query, body, payload hash, accepted statuses).
  struct request;
  /// One HTTP response.
  struct response {
    long status = 0;
    std::string body;
    std::string etag;
  };

  /// The S3 key of store key `key`.
  std::string full_key(const std::string& key) const;
  std::string object_url(const std::string& full_key) const;
  std::string bucket_url() const;
  /// Sends `req` with retries; returns 2xx responses (and 404 when `req` allows it); throws
  /// store_error otherwise.
  response perform(const request& req);
  /// One attempt; fills `res`, returns curl's result code and sets `curl_error`.
  int attempt(const request& req, response& res, std::string& curl_error);
  void put_multipart(const std::string& key, int fd, uint64_t size);

  object_store_config cfg_;
  std::string bucket_;
  std::string prefix_;
  std::string host_url_;    ///< scheme://host[:port][/path of the endpoint]
  std::string bucket_path_; ///< "/bucket" (path-style) or "" (virtual-host)
  std::string sigv4_;       ///< "aws:amz:<region>:s3"
  void* curl_ = nullptr;    ///< CURL*, kept opaque to keep curl.h out of this header
  bool healthy_ = true;     ///< kept by track_health around every public operation
  std::minstd_rand jitter_;
};

} // namespace sluice::persistence
