#include "actors/device_model.hpp"

#include "messages/codec.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace sluice {

namespace {

struct stored_device {
  uint64_t applied_upto = 0;
  uint64_t events = 0;
  int64_t first_ts = 0;
  int64_t last_ts = 0;
  uint64_t out_of_order = 0;
  uint64_t duplicates = 0;
  std::string last_type;
  std::vector<std::string> recent_ids;
  uint64_t recent_next = 0;
  MSGPACK_DEFINE(applied_upto, events, first_ts, last_ts, out_of_order, duplicates, last_type,
                 recent_ids, recent_next)
};

} // namespace

bool device_model::apply(const event_batch& events) {
  bool changed = false;
  for (auto& e : events) {
    if (e.offset != 0 && e.offset <= applied_upto_)
      continue;
    applied_upto_ = std::max(applied_upto_, e.offset);
    changed = true;
    if (std::find(recent_ids_.begin(), recent_ids_.end(), e.id) != recent_ids_.end()) {
      ++duplicates_;
      continue;
    }
    if (recent_ids_.size() < recent_id_window) {
      recent_ids_.push_back(e.id);
    } else {
      recent_ids_[recent_next_] = e.id;
      recent_next_ = (recent_next_ + 1) % recent_id_window;
    }
    ++events_;
    if (events_ == 1)
      first_ts_ = e.ts;
    if (e.ts < last_ts_)
      ++out_of_order_;
    last_ts_ = std::max(last_ts_, e.ts);
    last_type_ = e.type;
  }
  return changed;
}

std::string device_model::encode() const {
  stored_device sd{applied_upto_, events_, first_ts_, last_ts_, out_of_order_,
                   duplicates_,   last_type_, recent_ids_, recent_next_};
  msgpack::sbuffer buf;
  msgpack::pack(buf, sd);
  return std::string{buf.data(), buf.size()};
}

bool device_model::decode(std::string_view bytes) {
  try {
    auto handle = msgpack::unpack(bytes.data(), bytes.size());
    stored_device sd;
    handle.get().convert(sd);
    applied_upto_ = sd.applied_upto;
    events_ = sd.events;
    first_ts_ = sd.first_ts;
    last_ts_ = sd.last_ts;
    out_of_order_ = sd.out_of_order;
    duplicates_ = sd.duplicates;
    last_type_ = std::move(sd.last_type);
    recent_ids_ = std::move(sd.recent_ids);
    recent_next_ = recent_ids_.empty() ? 0 : sd.recent_next % recent_id_window;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string device_model::json(std::string_view device_id) const {
  std::string out = "{\"device_id\":";
  append_json_string(out, device_id);
  fmt::format_to(std::back_inserter(out),
                 ",\"events\":{},\"first_ts\":{},\"last_ts\":{},\"out_of_order\":{},"
                 "\"duplicates\":{},\"last_type\":",
                 events_, first_ts_, last_ts_, out_of_order_, duplicates_);
  append_json_string(out, last_type_);
  out += '}';
  return out;
}

} // namespace sluice
