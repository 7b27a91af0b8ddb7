#include "actors/profile_model.hpp"

#include "actors/catalog.hpp"
#include "actors/metrics.hpp"
#include "messages/attr_paths.hpp"
#include "messages/codec.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <tuple>
#include <vector>

#include <fmt/format.h>

namespace sluice {

namespace {

constexpr int64_t ms_per_day = 86'400'000;
constexpr uint32_t format_version = 2;

// Rank of a playback type in the order key; -1 for other types.
int rank_of(std::string_view type) {
  if (type == "play")
    return 0;
  if (type == "heartbeat")
    return 1;
  if (type == "pause")
    return 2;
  if (type == "stop")
    return 3;
  return -1;
}

/// The attributes of a playback event, read in one pass (`read_attrs`).
const std::vector<std::string> playback_paths{"title_id", "position_ms", "duration_ms"};

bool is_playing(const playback_point& p) {
  return p.rank <= 1; // play or heartbeat
}

std::optional<int64_t> as_int(const attr_slot& v) {
  if (!v.found)
    return std::nullopt;
  if (v.value.type == attr_value::kind::integer)
    return v.value.i;
  if (v.value.type == attr_value::kind::floating)
    return static_cast<int64_t>(v.value.d);
  return std::nullopt;
}

auto key(const playback_point& p) {
  return std::make_tuple(p.ts, p.rank, p.pos);
}

bool key_less(const playback_point& a, const playback_point& b) {
  return key(a) < key(b);
}

// The on-disk layout (msgpack array). `applied` is a bare uint (the local log's offset: the only
// form before the cluster, and still the form of a profile that only saw local events) or a map
// source → offset; a reader that predates the map refuses it (a type error) rather than misread it.
struct stored_profile {
  uint32_t version = 0;
  source_offsets applied;
  uint64_t events = 0;
  uint64_t late = 0;
  bool has_newest = false;
  int64_t newest_ts = 0;
  std::map<std::string, title_progress> titles;
  std::map<int32_t, std::map<std::string, int64_t>> watch;
  MSGPACK_DEFINE(version, applied, events, late, has_newest, newest_ts, titles, watch)
};

} // namespace

int32_t utc_day(int64_t ts_ms) noexcept {
  auto d = ts_ms / ms_per_day;
  if (ts_ms % ms_per_day < 0)
    --d;
  return static_cast<int32_t>(d);
}

std::string format_utc_day(int32_t day) {
  std::time_t t = static_cast<std::time_t>(day) * 86'400;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

std::optional<int32_t> parse_utc_day(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-')
    return std::nullopt;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (text[i] < '0' || text[i] > '9')
      return std::nullopt;
  auto num = [&](size_t pos, size_t len) { return std::atoi(std::string{text.substr(pos, len)}.c_str()); };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  auto want = tm;
  auto t = timegm(&tm);
  // timegm normalizes (2024-02-30 → March 1st): a real date round-trips.
  if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday)
    return std::nullopt;
  return utc_day(static_cast<int64_t>(t) * 1000);
}

std::string_view title_progress::last_event() const noexcept {
  static constexpr std::string_view names[] = {"play", "heartbeat", "pause", "stop"};
  return last_rank < 4 ? names[last_rank] : std::string_view{"play"};
}

bool profile_model::apply(const event_batch& events) {
  bool changed = false;
  for (auto& e : events)
    changed |= apply_one(e);
  end_batch();
  return changed;
}

bool profile_model::apply_one(const event& e) {
  if (!applied_.admit(e))
    return false; // replayed after a restart, or resent by its origin: already reflected
  ++events_;
  auto rank = rank_of(e.type);
  if (rank < 0)
    return true;
  attr_slot_buffer<3> storage;
  auto* attrs = storage.get();
  read_attrs(e.attrs, playback_paths, attrs);
  auto& title = attrs[0];
  auto position = as_int(attrs[1]);
  if (!title.found || title.value.type != attr_value::kind::string || title.value.s.empty()
      || !position) {
    if (opts_.invalid_playback != nullptr)
      opts_.invalid_playback->inc();
    return true;
  }
  auto duration = as_int(attrs[2]);
  playback_point p{e.ts, std::max<int64_t>(0, *position), static_cast<uint8_t>(rank)};
  apply_playback(std::string{title.value.s}, p, duration ? *duration : 0);
  return true;
}

void profile_model::end_batch() {
  while (titles_.size() > opts_.max_titles) {
    auto oldest = std::min_element(titles_.begin(), titles_.end(), [](auto& a, auto& b) {
      return a.second.updated_ts < b.second.updated_ts;
    });
    titles_.erase(oldest);
  }
  prune();
}

void profile_model::apply_playback(const std::string& title, const playback_point& p,
                                   int64_t duration) {
  auto [it, fresh] = titles_.try_emplace(title);
  auto& tp = it->second;
  // Continue watching: the newest event by order key, whatever the arrival order.
  if (fresh
      || key(p) >= std::make_tuple(tp.updated_ts, tp.last_rank, tp.position_ms)) {
    tp.position_ms = p.pos;
    tp.updated_ts = p.ts;
    tp.last_rank = p.rank;
  }
  if (duration > 0 && (tp.duration_ms == 0 || p.ts >= tp.duration_ts)) {
    tp.duration_ms = duration;
    tp.duration_ts = p.ts;
  }
  // Watch time: only inside the reorder horizon.
  if (has_newest_ && p.ts < newest_ts_ - opts_.reorder_horizon_ms) {
    ++late_;
    if (opts_.late_events != nullptr)
      opts_.late_events->inc();
    return;
  }
  has_newest_ = true;
  newest_ts_ = std::max(newest_ts_, p.ts);
  auto& recent = tp.recent;
  auto pos = std::lower_bound(recent.begin(), recent.end(), p, key_less);
  if (pos != recent.end() && key(*pos) == key(p))
    return; // a duplicate
  const playback_point* a = pos != recent.begin() ? &*std::prev(pos) : nullptr;
  const playback_point* b = pos != recent.end() ? &*pos : nullptr;
  if (a != nullptr && b != nullptr)
    add_watch(utc_day(a->ts), title, -credit(*a, *b));
  if (a != nullptr)
    add_watch(utc_day(a->ts), title, credit(*a, p));
  if (b != nullptr)
    add_watch(utc_day(p.ts), title, credit(p, *b));
  recent.insert(pos, p);
}

int64_t profile_model::credit(const playback_point& a, const playback_point& b) const noexcept {
  if (!is_playing(a)) // after pause or stop
    return 0;
  auto dt = b.ts - a.ts;
  auto dp = b.pos - a.pos;
  if (dt > opts_.heartbeat_timeout_ms || std::llabs(dp - dt) > opts_.seek_tolerance_ms)
    return 0;
  return dt;
}

void profile_model::add_watch(int32_t day, const std::string& title, int64_t ms) {
  if (ms == 0)
    return;
  auto& titles = watch_[day];
  auto& v = titles[title];
  v += ms;
  if (v <= 0)
    titles.erase(title);
  if (titles.empty())
    watch_.erase(day);
}

void profile_model::prune() {
  if (!has_newest_)
    return;
  auto boundary = newest_ts_ - opts_.reorder_horizon_ms;
  for (auto& [id, tp] : titles_) {
    auto& recent = tp.recent;
    if (recent.size() < 2 || recent[1].ts >= boundary)
      continue;
    // Keep every event at or after the boundary and the newest one before it.
    auto first_kept = std::lower_bound(recent.begin(), recent.end(), boundary,
                                       [](const playback_point& x, int64_t b) { return x.ts < b; });
    recent.erase(recent.begin(), std::prev(first_kept));
  }
  auto oldest_day = static_cast<int64_t>(utc_day(newest_ts_)) - opts_.watch_time_days;
  while (!watch_.empty() && watch_.begin()->first < oldest_day)
    watch_.erase(watch_.begin());
}

int64_t profile_model::watch_ms(const std::string& title, int32_t day) const {
  auto d = watch_.find(day);
  if (d == watch_.end())
    return 0;
  auto t = d->second.find(title);
  return t == d->second.end() ? 0 : t->second;
}

int64_t profile_model::watch_ms(const std::string& title) const {
  int64_t sum = 0;
  for (auto& [day, titles] : watch_)
    if (auto t = titles.find(title); t != titles.end())
      sum += t->second;
  return sum;
}

std::string profile_model::encode() const {
  stored_profile sp{format_version, applied_, events_, late_, has_newest_, newest_ts_,
                    titles_, watch_};
  msgpack::sbuffer buf;
  msgpack::pack(buf, sp);
  return std::string{buf.data(), buf.size()};
}

bool profile_model::decode(std::string_view bytes) {
  try {
    auto handle = msgpack::unpack(bytes.data(), bytes.size());
    stored_profile sp;
    handle.get().convert(sp);
    if (sp.version != format_version)
      return false;
    applied_ = std::move(sp.applied);
    events_ = sp.events;
    late_ = sp.late;
    has_newest_ = sp.has_newest;
    newest_ts_ = sp.newest_ts;
    titles_ = std::move(sp.titles);
    watch_ = std::move(sp.watch);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

namespace {

void append_name(std::string& out, const catalog* cat, const std::string& title) {
  if (cat == nullptr)
    return;
  if (auto* t = cat->find(title)) {
    out += ",\"name\":";
    append_json_string(out, t->name);
  }
}

} // namespace

std::string profile_model::continue_watching_json(std::string_view profile_id,
                                                  const catalog* cat) const {
  struct item {
    const std::string* id;
    const title_progress* tp;
    int64_t duration;
  };
  std::vector<item> items;
  for (auto& [id, tp] : titles_) {
    const title_info* info = cat != nullptr ? cat->find(id) : nullptr;
    auto duration = info != nullptr ? info->duration_ms : tp.duration_ms;
    bool completed = duration > 0
                     && static_cast<double>(tp.position_ms)
                          >= opts_.completion_ratio * static_cast<double>(duration);
    if (!completed)
      items.push_back({&id, &tp, duration});
  }
  std::sort(items.begin(), items.end(), [](const item& a, const item& b) {
    return a.tp->updated_ts != b.tp->updated_ts ? a.tp->updated_ts > b.tp->updated_ts
                                                : *a.id < *b.id;
  });
  std::string out = "{\"profile_id\":";
  append_json_string(out, profile_id);
  out += ",\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    auto& it = items[i];
    if (i > 0)
      out += ',';
    out += "{\"title_id\":";
    append_json_string(out, *it.id);
    fmt::format_to(std::back_inserter(out),
                   ",\"position_ms\":{},\"duration_ms\":{},\"updated_ts\":{},\"last_event\":",
                   it.tp->position_ms, it.duration, it.tp->updated_ts);
    append_json_string(out, it.tp->last_event());
    append_name(out, cat, *it.id);
    out += '}';
  }
  out += "]}";
  return out;
}

std::string profile_model::watch_time_json(std::string_view profile_id,
                                           std::optional<int32_t> from, std::optional<int32_t> to,
                                           const catalog* cat) const {
  if (!to) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
    to = utc_day(has_newest_ ? newest_ts_ : now);
    if (from)
      to = std::clamp(*to, *from, *from + 365);
  }
  if (!from)
    from = *to - 29;
  std::map<std::string, int64_t> totals;
  int64_t total = 0;
  std::string days;
  auto append_titles = [&](std::string& out, const std::map<std::string, int64_t>& titles) {
    out += "\"titles\":[";
    bool first = true;
    for (auto& [id, ms] : titles) {
      if (!first)
        out += ',';
      first = false;
      out += "{\"title_id\":";
      append_json_string(out, id);
      append_name(out, cat, id);
      fmt::format_to(std::back_inserter(out), ",\"watch_ms\":{}}}", ms);
    }
    out += ']';
  };
  for (auto d = watch_.lower_bound(*from); d != watch_.end() && d->first <= *to; ++d) {
    int64_t day_total = 0;
    for (auto& [id, ms] : d->second) {
      day_total += ms;
      totals[id] += ms;
    }
    total += day_total;
    if (!days.empty())
      days += ',';
    fmt::format_to(std::back_inserter(days), "{{\"date\":\"{}\",\"total_ms\":{},",
                   format_utc_day(d->first), day_total);
    append_titles(days, d->second);
    days += '}';
  }
  std::string out = "{\"profile_id\":";
  append_json_string(out, profile_id);
  fmt::format_to(std::back_inserter(out), ",\"from\":\"{}\",\"to\":\"{}\",\"total_ms\":{},",
                 format_utc_day(*from), format_utc_day(*to), total);
  append_titles(out, totals);
  out += ",\"days\":[" + days + "]}";
  return out;
}

} // namespace sluice
