#pragma once

// Token buckets for the gateway's rate limits: one per access token, one per device.

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::gateway {

/// A bucket's configuration: `rate` tokens (events) per second refill up to `burst`. A rate of 0
/// means unlimited.
struct bucket_limit {
  double rate = 0;
  double burst = 0;
  bool unlimited() const noexcept {
    return rate <= 0;
  }
};

/// One token bucket (plain value; callers synchronise). Starts full.
///
/// `take(n)` refills by the time elapsed since the last call, then grants `min(n, available)`
/// whole tokens (`partial`) or all-or-nothing. An all-or-nothing request larger than the burst is
/// granted in full only when the bucket is full, which leaves it in debt (negative), so a single
/// oversized batch cannot starve forever nor be repeated before the debt is paid back.
struct token_bucket {
  double tokens = 0;
  int64_t last_ns = 0;
  bool initialised = false;

  /// Refills to `now_ns` (monotonic nanoseconds).
  void refill(const bucket_limit& lim, int64_t now_ns) noexcept;
  /// Takes up to `n` tokens; returns how many were granted (all or some when `partial`, else all
  /// or none).
  size_t take(size_t n, const bucket_limit& lim, int64_t now_ns, bool partial) noexcept;
  /// Seconds until `n` tokens (at most the burst) are available (0 when they are now).
  double wait_s(size_t n, const bucket_limit& lim) const noexcept;
  /// Whether the bucket refilled completely by `now_ns` (so forgetting it changes nothing).
  bool full_at(const bucket_limit& lim, int64_t now_ns) const noexcept;
};

/// Token buckets keyed by a string (device ids), bounded in count.
///
/// Lifecycle: buckets are created on first use (full) and evicted least-recently-used once a shard
/// holds `max_keys / shards` of them; a bucket that has refilled completely is indistinguishable
/// from a new one, so eviction only ever forgives devices that were over their limit and then
/// stayed quiet the longest (counted in `evictions_of_active()`). Concurrency: `shards` independent
/// mutexes, chosen by the key's hash; a call locks one shard. Limits: at most `max_keys` buckets
/// (about 150 bytes each).
class bucket_map {
public:
  bucket_map(bucket_limit lim, size_t max_keys, size_t shards = default_shards);

  /// Takes up to `n` tokens from `key`'s bucket (partial grants); returns how many were granted.
  size_t take(std::string_view key, size_t n, int64_t now_ns);
  /// Seconds until `key` may send `n` events again.
  double wait_s(std::string_view key, size_t n, int64_t now_ns);

  const bucket_limit& limit() const noexcept {
    return limit_;
  }
  size_t size() const;
  size_t max_keys() const noexcept {
    return per_shard_ * shards_.size();
  }
  /// Buckets evicted before they had refilled (their devices got a fresh burst).
  uint64_t evictions_of_active() const;

  static constexpr size_t default_shards = 64;

private:
  struct node {
    std::string key;
    token_bucket bucket;
  };
  struct shard {
    std::mutex mtx;
    std::list<node> lru; // front: most recently used
    std::unordered_map<std::string_view, std::list<node>::iterator> index;
    uint64_t active_evictions = 0;
  };
  token_bucket& find_or_add(shard& s, std::string_view key, int64_t now_ns);

  bucket_limit limit_;
  size_t per_shard_;
  std::vector<std::unique_ptr<shard>> shards_;
};

/// Monotonic clock in nanoseconds (what the buckets are driven with).
int64_t monotonic_ns() noexcept;

} // namespace sluice::gateway
