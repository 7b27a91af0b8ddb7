#include "actors/aggregate_model.hpp"

#include "actors/catalog.hpp"
#include "messages/attr_paths.hpp"
#include "messages/codec.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <limits>
#include <tuple>

namespace sluice {

namespace {

constexpr int64_t ms_per_day = 86'400'000;

/// Version of the stored layout (in the meta entry).
constexpr int stored_format = 1;

// Stored keys in the `aggregates` database: a one-byte kind, then the key's parts packed as
// msgpack values one after the other (msgpack strings carry their length, so any id is safe).
constexpr char meta_key_kind = 'm';     // "m" → [format, has_max, max_ts]
constexpr char trending_key_kind = 't'; // title, profile → newest bucket
constexpr char genres_key_kind = 'g';   // day, profile → [genres]
constexpr char completed_key_kind = 'p'; // profile → [completed titles, oldest first]
constexpr char pair_key_kind = 'c';     // title, other → profiles that completed both

int64_t floor_div(int64_t a, int64_t b) {
  auto q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

bool is_playback(std::string_view type) {
  return type == "play" || type == "pause" || type == "stop" || type == "heartbeat";
}

/// The attributes a playback event is counted by, read in one pass (`read_attrs`).
const std::vector<std::string> playback_paths{"title_id", "position_ms"};

template <class... Ts>
std::string make_key(char kind, const Ts&... parts) {
  msgpack::sbuffer buf;
  buf.write(&kind, 1);
  (msgpack::pack(buf, parts), ...);
  return std::string{buf.data(), buf.size()};
}

template <class T>
std::string pack_value(const T& v) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, v);
  return std::string{buf.data(), buf.size()};
}

// Reads the packed parts after the kind byte of `key`; throws on malformed input.
template <class... Ts>
void read_key(std::string_view key, Ts&... parts) {
  size_t off = 1;
  auto next = [&](auto& part) {
    auto h = msgpack::unpack(key.data(), key.size(), off);
    h.get().convert(part);
  };
  (next(parts), ...);
  if (off != key.size())
    throw std::runtime_error("trailing bytes in key");
}

template <class T>
T read_value(std::string_view value) {
  auto h = msgpack::unpack(value.data(), value.size());
  T out;
  h.get().convert(out);
  return out;
}

// Best first: score descending, then id ascending (byte order).
void rank(std::vector<ranked>& items, size_t k) {
  auto better = [](const ranked& a, const ranked& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  };
  if (items.size() > k) {
    std::partial_sort(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(k), items.end(),
                      better);
    items.resize(k);
  } else {
    std::sort(items.begin(), items.end(), better);
  }
}

} // namespace

int64_t utc_day_number(int64_t ts_ms) {
  return floor_div(ts_ms, ms_per_day);
}

std::string aggregate_options::validate() const {
  if (bucket_ms <= 0)
    return "trending.bucket must be positive";
  if (window_ms < bucket_ms || window_ms % bucket_ms != 0)
    return "trending.window must be a positive multiple of trending.bucket";
  if (allowed_lateness_ms < 0 || allowed_lateness_ms > window_ms - bucket_ms)
    return "trending.allowed-lateness must be between 0 and trending.window minus one "
           "trending.bucket (an event on time must land in a bucket of the window)";
  if (genre_days == 0)
    return "genres.retention-days must be at least 1";
  if (max_completions < 2)
    return "cowatch.max-completions must be at least 2";
  if (top_n == 0 || max_neighbors < top_n)
    return "cowatch.top-n must be positive and not above cowatch.max-neighbors";
  return {};
}

aggregate_model::aggregate_model(aggregate_options opts)
  : opts_(opts),
    first_bucket_(std::numeric_limits<int64_t>::min()),
    first_day_(std::numeric_limits<int64_t>::min()) {
}

apply_outcome aggregate_model::apply(const event& e, const catalog& cat) {
  if (e.profile_id.empty() || !is_playback(e.type))
    return apply_outcome::ignored;
  // A playback event as docs/profiles.md defines it: a string title_id and a number position_ms
  // (a float is truncated, a negative value counts as 0).
  attr_slot_buffer<2> storage;
  auto* attrs = storage.get();
  read_attrs(e.attrs, playback_paths, attrs);
  auto& title_attr = attrs[0];
  if (!title_attr.found || title_attr.value.type != attr_value::kind::string
      || title_attr.value.s.empty())
    return apply_outcome::ignored;
  auto& pos = attrs[1].value;
  if (!attrs[1].found
      || (pos.type != attr_value::kind::integer && pos.type != attr_value::kind::floating))
    return apply_outcome::ignored;
  int64_t position = pos.type == attr_value::kind::integer ? pos.i : static_cast<int64_t>(pos.d);
  position = std::max<int64_t>(0, position);
  auto* info = cat.find(title_attr.value.s);
  if (info == nullptr)
    return apply_outcome::unknown_title;
  if (!has_max_ || e.ts > max_ts_) {
    has_max_ = true;
    max_ts_ = e.ts;
    dirty_.meta = true;
    evict_trending();
    evict_days();
  }
  // Popular genres: every event of a kept day, late or not (a day is not a sliding window).
  if (auto day = utc_day_number(e.ts); day >= first_day_)
    add_genres(info->genres, e.profile_id, day);
  // Co-watch: completions do not depend on time (the same rule as continue watching).
  if (static_cast<double>(position)
      >= opts_.completion_ratio * static_cast<double>(info->duration_ms))
    add_completion(info->id, e.profile_id);
  auto bucket = floor_div(e.ts, opts_.bucket_ms);
  // Late: the event's bucket ended at or before the watermark (closed).
  if ((bucket + 1) * opts_.bucket_ms <= watermark() || bucket < first_bucket_)
    return apply_outcome::late;
  add_trending(info->id, e.profile_id, bucket);
  return apply_outcome::counted;
}

void aggregate_model::add_trending(const std::string& title, const std::string& profile,
                                   int64_t bucket) {
  auto& profiles = last_bucket_[title];
  auto [it, inserted] = profiles.try_emplace(profile, bucket);
  if (!inserted) {
    if (it->second >= bucket)
      return; // already counted in this or a newer bucket
    if (auto b = buckets_.find(it->second); b != buckets_.end())
      if (auto t = b->second.find(title); t != b->second.end()) {
        t->second.erase(profile);
        if (t->second.empty())
          b->second.erase(t);
      }
    it->second = bucket;
  }
  buckets_[bucket][title].insert(profile);
  dirty_.trending.emplace(title, profile);
}

void aggregate_model::evict_trending() {
  auto newest = floor_div(max_ts_, opts_.bucket_ms);
  auto first = newest - opts_.window_ms / opts_.bucket_ms + 1;
  if (first <= first_bucket_)
    return;
  first_bucket_ = first;
  auto end = buckets_.lower_bound(first);
  for (auto b = buckets_.begin(); b != end; ++b) {
    for (auto& [title, profiles] : b->second) {
      auto t = last_bucket_.find(title);
      for (auto& profile : profiles) {
        dirty_.trending.emplace(title, profile);
        if (t != last_bucket_.end())
          t->second.erase(profile);
      }
      if (t != last_bucket_.end() && t->second.empty())
        last_bucket_.erase(t);
    }
  }
  buckets_.erase(buckets_.begin(), end);
}

void aggregate_model::add_genres(const std::vector<std::string>& genres,
                                 const std::string& profile, int64_t day) {
  if (genres.empty())
    return;
  auto& seen = day_genres_[day][profile];
  bool changed = false;
  for (auto& g : genres) {
    auto pos = std::lower_bound(seen.begin(), seen.end(), g);
    if (pos != seen.end() && *pos == g)
      continue;
    seen.insert(pos, g);
    ++genre_counts_[day][g];
    changed = true;
  }
  if (changed)
    dirty_.genres.emplace(day, profile);
}

void aggregate_model::evict_days() {
  auto first = utc_day_number(max_ts_) - static_cast<int64_t>(opts_.genre_days) + 1;
  if (first <= first_day_)
    return;
  first_day_ = first;
  auto end = day_genres_.lower_bound(first);
  for (auto d = day_genres_.begin(); d != end; ++d)
    for (auto& [profile, genres] : d->second)
      dirty_.genres.emplace(d->first, profile);
  day_genres_.erase(day_genres_.begin(), end);
  genre_counts_.erase(genre_counts_.begin(), genre_counts_.lower_bound(first));
}

void aggregate_model::add_completion(const std::string& title, const std::string& profile) {
  auto& titles = completed_[profile];
  if (std::find(titles.begin(), titles.end(), title) != titles.end())
    return; // completing again changes nothing
  for (auto& other : titles) {
    bump_pair(title, other);
    bump_pair(other, title);
  }
  titles.push_back(title);
  if (titles.size() > opts_.max_completions)
    titles.erase(titles.begin());
  dirty_.completions.insert(profile);
}

void aggregate_model::bump_pair(const std::string& a, const std::string& b) {
  auto& neighbors = pairs_[a];
  ++neighbors[b];
  dirty_.pairs.emplace(a, b);
  if (neighbors.size() <= opts_.max_neighbors)
    return;
  // Over the cap: drop the weakest (lowest count, then the largest id).
  auto weakest = neighbors.begin();
  for (auto i = neighbors.begin(); i != neighbors.end(); ++i)
    if (i->second < weakest->second || (i->second == weakest->second && i->first > weakest->first))
      weakest = i;
  dirty_.pairs.emplace(a, weakest->first);
  neighbors.erase(weakest);
}

std::vector<ranked> aggregate_model::trending(int64_t window_ms, size_t k,
                                              std::string_view exclude) const {
  std::vector<ranked> out;
  if (!has_max_ || k == 0)
    return out;
  auto newest = floor_div(max_ts_, opts_.bucket_ms);
  auto first = newest - window_ms / opts_.bucket_ms + 1;
  std::unordered_map<std::string_view, uint64_t> sums;
  for (auto b = buckets_.lower_bound(first); b != buckets_.end(); ++b)
    for (auto& [title, profiles] : b->second)
      if (title != exclude)
        sums[title] += profiles.size();
  out.reserve(sums.size());
  for (auto& [title, n] : sums)
    if (n > 0)
      out.push_back({std::string{title}, n});
  rank(out, k);
  return out;
}

std::vector<ranked> aggregate_model::popular_genres(int64_t day, size_t k) const {
  std::vector<ranked> out;
  auto d = genre_counts_.find(day);
  if (d == genre_counts_.end())
    return out;
  for (auto& [genre, n] : d->second)
    out.push_back({genre, n});
  rank(out, k);
  return out;
}

std::vector<ranked> aggregate_model::also_watched(std::string_view title, size_t k) const {
  std::vector<ranked> out;
  auto t = pairs_.find(std::string{title});
  if (t == pairs_.end())
    return out;
  for (auto& [other, n] : t->second)
    out.push_back({other, n});
  rank(out, k);
  return out;
}

size_t aggregate_model::trending_entries() const noexcept {
  size_t n = 0;
  for (auto& [title, profiles] : last_bucket_)
    n += profiles.size();
  return n;
}

size_t aggregate_model::pair_count() const noexcept {
  size_t n = 0;
  for (auto& [title, neighbors] : pairs_)
    n += neighbors.size();
  return n;
}

std::vector<std::pair<std::string, std::string>> aggregate_model::collect(aggregate_dirty& taken) {
  taken = std::move(dirty_);
  dirty_ = aggregate_dirty{};
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(taken.size());
  for (auto& [title, profile] : taken.trending) {
    std::string value;
    if (auto t = last_bucket_.find(title); t != last_bucket_.end())
      if (auto p = t->second.find(profile); p != t->second.end())
        value = pack_value(p->second);
    out.emplace_back(make_key(trending_key_kind, title, profile), std::move(value));
  }
  for (auto& [day, profile] : taken.genres) {
    std::string value;
    if (auto d = day_genres_.find(day); d != day_genres_.end())
      if (auto p = d->second.find(profile); p != d->second.end())
        value = pack_value(p->second);
    out.emplace_back(make_key(genres_key_kind, day, profile), std::move(value));
  }
  for (auto& profile : taken.completions) {
    std::string value;
    if (auto p = completed_.find(profile); p != completed_.end())
      value = pack_value(p->second);
    out.emplace_back(make_key(completed_key_kind, profile), std::move(value));
  }
  for (auto& [a, b] : taken.pairs) {
    std::string value;
    if (auto t = pairs_.find(a); t != pairs_.end())
      if (auto n = t->second.find(b); n != t->second.end())
        value = pack_value(n->second);
    out.emplace_back(make_key(pair_key_kind, a, b), std::move(value));
  }
  if (taken.meta)
    out.emplace_back(std::string(1, meta_key_kind),
                     pack_value(std::make_tuple(stored_format, has_max_, max_ts_)));
  return out;
}

void aggregate_model::requeue(aggregate_dirty&& keys) {
  dirty_.trending.merge(keys.trending);
  dirty_.genres.merge(keys.genres);
  dirty_.completions.merge(keys.completions);
  dirty_.pairs.merge(keys.pairs);
  dirty_.meta = dirty_.meta || keys.meta;
}

bool aggregate_model::load(std::string_view key, std::string_view value) {
  if (key.empty())
    return false;
  try {
    switch (key[0]) {
      case meta_key_kind: {
        auto [format, has, ts] = read_value<std::tuple<int, bool, int64_t>>(value);
        if (format != stored_format)
          return false;
        has_max_ = has;
        max_ts_ = ts;
        return true;
      }
      case trending_key_kind: {
        std::string title, profile;
        read_key(key, title, profile);
        last_bucket_[title][profile] = read_value<int64_t>(value);
        return true;
      }
      case genres_key_kind: {
        int64_t day = 0;
        std::string profile;
        read_key(key, day, profile);
        auto genres = read_value<std::vector<std::string>>(value);
        std::sort(genres.begin(), genres.end());
        day_genres_[day][profile] = std::move(genres);
        return true;
      }
      case completed_key_kind: {
        std::string profile;
        read_key(key, profile);
        completed_[profile] = read_value<std::vector<std::string>>(value);
        return true;
      }
      case pair_key_kind: {
        std::string a, b;
        read_key(key, a, b);
        pairs_[a][b] = read_value<uint32_t>(value);
        return true;
      }
      default:
        return false;
    }
  } catch (const std::exception&) {
    if (key[0] == completed_key_kind || key[0] == pair_key_kind)
      cowatch_ok_ = false; // a partial co-watch state would answer wrong: fall back to trending
    return false;
  }
}

void aggregate_model::finish_load() {
  buckets_.clear();
  genre_counts_.clear();
  if (has_max_) {
    // Entries older than the window or the kept days are dropped by the next checkpoint.
    first_bucket_ = std::numeric_limits<int64_t>::min();
    first_day_ = std::numeric_limits<int64_t>::min();
    for (auto& [title, profiles] : last_bucket_)
      for (auto& [profile, bucket] : profiles)
        buckets_[bucket][title].insert(profile);
    for (auto& [day, profiles] : day_genres_)
      for (auto& [profile, genres] : profiles)
        for (auto& g : genres)
          ++genre_counts_[day][g];
    evict_trending();
    evict_days();
  }
}

} // namespace sluice
