#include "gateway/rate_limit.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

namespace sluice::gateway {

namespace {

constexpr double ns_per_s = 1e9;

} // namespace

int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

void token_bucket::refill(const bucket_limit& lim, int64_t now_ns) noexcept {
  if (!initialised) {
    tokens = lim.burst;
    last_ns = now_ns;
    initialised = true;
    return;
  }
  if (now_ns <= last_ns)
    return;
  tokens = std::min(lim.burst, tokens + static_cast<double>(now_ns - last_ns) / ns_per_s * lim.rate);
  last_ns = now_ns;
}

size_t token_bucket::take(size_t n, const bucket_limit& lim, int64_t now_ns, bool partial) noexcept {
  if (lim.unlimited())
    return n;
  refill(lim, now_ns);
  auto want = static_cast<double>(n);
  if (tokens >= want) {
    tokens -= want;
    return n;
  }
  if (!partial && want > lim.burst && tokens >= lim.burst) { // oversized, full bucket: debt
    tokens -= want;
    return n;
  }
  if (!partial || tokens < 1)
    return 0;
  auto granted = static_cast<size_t>(tokens);
  tokens -= static_cast<double>(granted);
  return granted;
}

double token_bucket::wait_s(size_t n, const bucket_limit& lim) const noexcept {
  if (lim.unlimited())
    return 0;
  auto want = std::min(static_cast<double>(n), lim.burst);
  return tokens >= want ? 0 : (want - tokens) / lim.rate;
}

bool token_bucket::full_at(const bucket_limit& lim, int64_t now_ns) const noexcept {
  if (!initialised || lim.unlimited())
    return true;
  auto t = tokens + static_cast<double>(std::max<int64_t>(0, now_ns - last_ns)) / ns_per_s * lim.rate;
  return t >= lim.burst;
}

bucket_map::bucket_map(bucket_limit lim, size_t max_keys, size_t shards)
  : limit_(lim), per_shard_(std::max<size_t>(1, max_keys / std::max<size_t>(1, shards))) {
  shards = std::max<size_t>(1, shards);
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<shard>());
    if (!lim.unlimited())
      shards_.back()->index.reserve(per_shard_); // no rehash on the hot path
  }
}

token_bucket& bucket_map::find_or_add(shard& s, std::string_view key, int64_t now_ns) {
  if (auto i = s.index.find(key); i != s.index.end()) {
    if (i->second != s.lru.begin())
      s.lru.splice(s.lru.begin(), s.lru, i->second);
    return i->second->bucket;
  }
  if (s.index.size() >= per_shard_) { // evict the least recently used
    auto& victim = s.lru.back();
    if (!victim.bucket.full_at(limit_, now_ns))
      ++s.active_evictions;
    s.index.erase(victim.key);
    s.lru.pop_back();
  }
  s.lru.push_front(node{std::string{key}, {}});
  s.index.emplace(s.lru.front().key, s.lru.begin());
  return s.lru.front().bucket;
}

size_t bucket_map::take(std::string_view key, size_t n, int64_t now_ns) {
  if (limit_.unlimited())
    return n;
  auto& s = *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
  std::lock_guard<std::mutex> guard{s.mtx};
  return find_or_add(s, key, now_ns).take(n, limit_, now_ns, true);
}

double bucket_map::wait_s(std::string_view key, size_t n, int64_t now_ns) {
  if (limit_.unlimited())
    return 0;
  auto& s = *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
  std::lock_guard<std::mutex> guard{s.mtx};
  auto& b = find_or_add(s, key, now_ns);
  b.refill(limit_, now_ns);
  return b.wait_s(n, limit_);
}

size_t bucket_map::size() const {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> guard{s->mtx};
    n += s->index.size();
  }
  return n;
}

uint64_t bucket_map::evictions_of_active() const {
  uint64_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> guard{s->mtx};
    n += s->active_evictions;
  }
  return n;
}

} // namespace sluice::gateway
