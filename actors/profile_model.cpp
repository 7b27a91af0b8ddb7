#include "actors/profile_model.hpp"

#include "messages/codec.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace sluice {

namespace {

bool is_playback(std::string_view type) {
  return type == "play" || type == "pause" || type == "stop" || type == "heartbeat";
}

std::optional<int64_t> as_int(const std::optional<attr_value>& v) {
  if (!v)
    return std::nullopt;
  if (v->type == attr_value::kind::integer)
    return v->i;
  if (v->type == attr_value::kind::floating)
    return static_cast<int64_t>(v->d);
  return std::nullopt;
}

// The on-disk layout: [applied_upto, events, titles].
struct stored_profile {
  uint64_t applied_upto = 0;
  uint64_t events = 0;
  std::map<std::string, title_progress> titles;
  MSGPACK_DEFINE(applied_upto, events, titles)
};

} // namespace

bool profile_model::apply(const event_batch& events) {
  bool changed = false;
  for (auto& e : events) {
    if (e.offset != 0 && e.offset <= applied_upto_)
      continue; // replayed after a restart: already reflected
    applied_upto_ = std::max(applied_upto_, e.offset);
    ++events_;
    changed = true;
    if (!is_playback(e.type))
      continue;
    auto title = find_attr(e.attrs, "title_id");
    auto position = as_int(find_attr(e.attrs, "position_ms"));
    if (!title || title->type != attr_value::kind::string || title->s.empty() || !position)
      continue;
    auto& tp = titles_[std::string{title->s}];
    if (tp.title_id.empty())
      tp.title_id = std::string{title->s};
    if (auto duration = as_int(find_attr(e.attrs, "duration_ms")); duration && *duration > 0)
      tp.duration_ms = *duration;
    if (e.ts < tp.updated_ts)
      continue; // older than what we know: position stays
    tp.position_ms = std::max<int64_t>(0, *position);
    tp.updated_ts = e.ts;
    tp.last_event = e.type;
    tp.completed = tp.duration_ms > 0
                   && static_cast<double>(tp.position_ms)
                        >= opts_.completion_ratio * static_cast<double>(tp.duration_ms);
  }
  while (titles_.size() > opts_.max_titles) {
    auto oldest = std::min_element(titles_.begin(), titles_.end(), [](auto& a, auto& b) {
      return a.second.updated_ts < b.second.updated_ts;
    });
    titles_.erase(oldest);
  }
  return changed;
}

std::string profile_model::encode() const {
  stored_profile sp{applied_upto_, events_, titles_};
  msgpack::sbuffer buf;
  msgpack::pack(buf, sp);
  return std::string{buf.data(), buf.size()};
}

bool profile_model::decode(std::string_view bytes) {
  try {
    auto handle = msgpack::unpack(bytes.data(), bytes.size());
    stored_profile sp;
    handle.get().convert(sp);
    applied_upto_ = sp.applied_upto;
    events_ = sp.events;
    titles_ = std::move(sp.titles);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string profile_model::continue_watching_json(std::string_view profile_id) const {
  std::vector<const title_progress*> items;
  for (auto& [id, tp] : titles_)
    if (!tp.completed)
      items.push_back(&tp);
  std::sort(items.begin(), items.end(), [](auto* a, auto* b) {
    return a->updated_ts != b->updated_ts ? a->updated_ts > b->updated_ts
                                          : a->title_id < b->title_id;
  });
  std::string out = "{\"profile_id\":";
  append_json_string(out, profile_id);
  out += ",\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    auto* tp = items[i];
    if (i > 0)
      out += ',';
    out += "{\"title_id\":";
    append_json_string(out, tp->title_id);
    fmt::format_to(std::back_inserter(out),
                   ",\"position_ms\":{},\"duration_ms\":{},\"updated_ts\":{},\"last_event\":",
                   tp->position_ms, tp->duration_ms, tp->updated_ts);
    append_json_string(out, tp->last_event);
    out += '}';
  }
  out += "]}";
  return out;
}

} // namespace sluice
