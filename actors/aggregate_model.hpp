#pragma once

// The live aggregates of a node as plain C++ (no CAF): trending titles over a sliding event-time
// window with a watermark, popular genres per UTC day, and "others also watched" co-completion.

#include "messages/event.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sluice {

class catalog;

/// Options of the aggregates (sections `trending`, `genres`, `cowatch`; the completion ratio is
/// `profiles.completion-ratio`, shared with continue watching).
struct aggregate_options {
  /// Longest trending window served; the state keeps this much event time.
  int64_t window_ms = 3'600'000;
  /// Width of one trending bucket; windows are whole multiples of it.
  int64_t bucket_ms = 60'000;
  /// The watermark trails the newest event time by this much; a bucket that ends at or before
  /// the watermark is closed and events for it are late. At most `window_ms - bucket_ms`.
  int64_t allowed_lateness_ms = 300'000;
  /// UTC days of popular genres kept, counting the day of the newest event.
  size_t genre_days = 31;
  /// A title is completed by a profile once an event's `position_ms` reaches this fraction of the
  /// catalog duration.
  double completion_ratio = 0.95;
  /// Completed titles remembered per profile (the most recent); older ones stop co-occurring.
  size_t max_completions = 200;
  /// Co-completed titles counted per title; beyond it the lowest count is dropped.
  size_t max_neighbors = 1000;
  /// Most co-completed titles served per title (the largest `k` of also-watched).
  size_t top_n = 20;

  /// Empty when consistent; otherwise what is wrong, naming the option.
  std::string validate() const;
};

/// One entry of a ranking: an id (title or genre) and its score, best first.
struct ranked {
  std::string id;
  uint64_t score = 0;
  friend bool operator==(const ranked& a, const ranked& b) {
    return a.id == b.id && a.score == b.score;
  }
};

/// What one event did to the aggregates.
enum class apply_outcome {
  ignored,       ///< not a playback event with profile_id and title_id
  unknown_title, ///< its title is not in the catalog: not aggregated
  counted,       ///< counted in trending (and genres, co-watch)
  late,          ///< its trending bucket was closed: excluded from trending (genres, co-watch still)
};

/// Keys of the state changed since the last checkpoint (see `aggregate_model::collect`).
struct aggregate_dirty {
  std::set<std::pair<std::string, std::string>> trending; ///< (title, profile)
  std::set<std::pair<int64_t, std::string>> genres;       ///< (day, profile)
  std::set<std::string> completions;                      ///< profile
  std::set<std::pair<std::string, std::string>> pairs;    ///< (title, other title)
  bool meta = false;
  bool empty() const noexcept {
    return trending.empty() && genres.empty() && completions.empty() && pairs.empty() && !meta;
  }
  size_t size() const noexcept {
    return trending.size() + genres.size() + completions.size() + pairs.size() + (meta ? 1 : 0);
  }
};

/// The aggregates: trending titles (distinct profiles per title over a sliding event-time window),
/// popular genres (distinct profiles per genre per UTC day) and co-completion counts ("others also
/// watched").
///
/// Counted events: playback events as docs/profiles.md defines them (`play`, `pause`, `stop`,
/// `heartbeat` with a `profile_id`, a string `title_id` and a numeric `position_ms`) whose title
/// is in the catalog. Every measure counts distinct profiles (or sets of titles), so applying an
/// event twice changes nothing: duplicates (the same event resent) are harmless without an id
/// index. Trending keeps, per (title, profile), the newest bucket the profile was seen in; the
/// window of `n` buckets ending with the newest bucket counts the pairs whose bucket falls in it.
/// The watermark is the newest event time minus `allowed_lateness_ms`; an event whose bucket
/// ends at or before it is late (excluded from trending). Buckets that fall out of the longest
/// window are evicted.
///
/// Lifecycle: created empty, or rebuilt by `load` of every stored entry then `finish_load`;
/// `apply` events in log order; `collect` the changed entries for a checkpoint (values computed
/// from the current state, so a failed checkpoint is retried with `requeue`). Concurrency: owned
/// by one actor. Limits: trending holds one entry per (title, profile) active in the window,
/// (twice: by title and by bucket), genres one per (day, profile) of the kept days, co-watch `max_completions` titles per profile
/// and `max_neighbors` counts per title.
class aggregate_model {
public:
  explicit aggregate_model(aggregate_options opts = {});

  /// Applies one committed event, looking its title up in `cat`.
  apply_outcome apply(const event& e, const catalog& cat);

  /// Top `k` titles by distinct profiles over the `window_ms` (a multiple of the bucket, at most
  /// the configured window) ending with the newest bucket; ties by title id. Skips `exclude`.
  std::vector<ranked> trending(int64_t window_ms, size_t k, std::string_view exclude = {}) const;
  /// Top `k` genres by distinct profiles on UTC day `day` (days since the epoch); ties by name.
  std::vector<ranked> popular_genres(int64_t day, size_t k) const;
  /// Top `k` titles co-completed with `title` (profiles that completed both); ties by title id.
  /// Empty when there is no data for the title.
  std::vector<ranked> also_watched(std::string_view title, size_t k) const;

  /// Newest event time seen (epoch ms); false before the first counted event.
  bool has_events() const noexcept {
    return has_max_;
  }
  int64_t max_event_ts() const noexcept {
    return max_ts_;
  }
  /// Newest event time minus allowed lateness.
  int64_t watermark() const noexcept {
    return max_ts_ - opts_.allowed_lateness_ms;
  }
  /// Whether the co-watch state is usable (false when stored entries could not be read).
  bool cowatch_ok() const noexcept {
    return cowatch_ok_;
  }
  const aggregate_options& options() const noexcept {
    return opts_;
  }
  /// (title, profile) entries in the trending window, co-completion counts (gauges).
  size_t trending_entries() const noexcept;
  size_t pair_count() const noexcept;

  /// Moves the changed keys into `taken` and returns their LMDB entries (key, value); an empty
  /// value deletes the key.
  std::vector<std::pair<std::string, std::string>> collect(aggregate_dirty& taken);
  /// Marks keys changed again after their checkpoint failed.
  void requeue(aggregate_dirty&& keys);
  /// Whether anything changed since the last `collect`.
  bool dirty() const noexcept {
    return !dirty_.empty();
  }

  /// Restores one stored entry; false (entry ignored) when it cannot be read.
  bool load(std::string_view key, std::string_view value);
  /// Rebuilds the derived counts after every `load`.
  void finish_load();

private:
  void add_trending(const std::string& title, const std::string& profile, int64_t bucket);
  void evict_trending();
  void add_genres(const std::vector<std::string>& genres, const std::string& profile, int64_t day);
  void evict_days();
  void add_completion(const std::string& title, const std::string& profile);
  void bump_pair(const std::string& a, const std::string& b);

  aggregate_options opts_;
  bool has_max_ = false;
  int64_t max_ts_ = 0;
  /// Buckets below this are evicted (trending), days below this too (genres).
  int64_t first_bucket_ = 0;
  int64_t first_day_ = 0;
  /// title → profile → newest bucket it was counted in.
  std::unordered_map<std::string, std::unordered_map<std::string, int64_t>> last_bucket_;
  /// bucket → title → profiles whose newest bucket for the title is this one (counts are the
  /// set sizes; eviction drops whole buckets).
  std::map<int64_t, std::unordered_map<std::string, std::unordered_set<std::string>>> buckets_;
  /// day → profile → genres it watched that day (sorted).
  std::map<int64_t, std::unordered_map<std::string, std::vector<std::string>>> day_genres_;
  /// day → genre → distinct profiles.
  std::map<int64_t, std::unordered_map<std::string, uint32_t>> genre_counts_;
  /// profile → completed titles, oldest first.
  std::unordered_map<std::string, std::vector<std::string>> completed_;
  /// title → co-completed title → profiles that completed both.
  std::unordered_map<std::string, std::unordered_map<std::string, uint32_t>> pairs_;
  bool cowatch_ok_ = true;
  aggregate_dirty dirty_;
};

/// Epoch milliseconds → UTC day number (floor).
int64_t utc_day_number(int64_t ts_ms);

} // namespace sluice
