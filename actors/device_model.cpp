#include "actors/device_model.hpp"

#include "messages/codec.hpp"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

namespace sluice {

namespace {

/// Fields of the stored state (a msgpack array, in this order). `f_applied` is a bare uint (the
/// local log's offset) in states stored before the cluster and in states that only ever saw local
/// events, else a map source → offset (`source_offsets`).
enum stored_field : uint32_t {
  f_applied,
  f_events,
  f_first_ts,
  f_last_ts,
  f_out_of_order,
  f_duplicates,
  f_last_type,
  f_recent_ids,
  f_recent_next,
  stored_fields
};

} // namespace

uint64_t device_model::id_hash(std::string_view id) noexcept {
  return std::hash<std::string_view>{}(id);
}

bool device_model::apply(const event_batch& events) {
  bool changed = false;
  for (auto& e : events)
    changed |= apply_one(e);
  return changed;
}

bool device_model::apply_one(const event& e) {
  if (!applied_.admit(e))
    return false; // applied already: replayed after a restart, or resent by its origin
  auto h = id_hash(e.id);
  if (std::find(recent_ids_.begin(), recent_ids_.end(), h) != recent_ids_.end()) {
    ++duplicates_;
    return true;
  }
  if (recent_ids_.size() < recent_id_window) {
    recent_ids_.push_back(h);
  } else {
    recent_ids_[recent_next_] = h;
    recent_next_ = (recent_next_ + 1) % recent_id_window;
  }
  ++events_;
  if (events_ == 1)
    first_ts_ = e.ts;
  if (e.ts < last_ts_)
    ++out_of_order_;
  last_ts_ = std::max(last_ts_, e.ts);
  last_type_ = e.type;
  return true;
}

std::string device_model::encode() const {
  msgpack::sbuffer buf{64 + 9 * recent_ids_.size() + last_type_.size()
                       + 16 * applied_.size()};
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_array(stored_fields);
  pk.pack(applied_);
  pk.pack(events_);
  pk.pack(first_ts_);
  pk.pack(last_ts_);
  pk.pack(out_of_order_);
  pk.pack(duplicates_);
  pk.pack(last_type_);
  pk.pack_array(static_cast<uint32_t>(recent_ids_.size()));
  for (auto h : recent_ids_)
    pk.pack(h);
  pk.pack(static_cast<uint64_t>(recent_next_));
  return std::string{buf.data(), buf.size()};
}

bool device_model::decode(std::string_view bytes) {
  try {
    auto handle = msgpack::unpack(bytes.data(), bytes.size());
    auto& obj = handle.get();
    if (obj.type != msgpack::type::ARRAY || obj.via.array.size != stored_fields)
      return false;
    auto* f = obj.via.array.ptr;
    f[f_applied].convert(applied_);
    events_ = f[f_events].as<uint64_t>();
    first_ts_ = f[f_first_ts].as<int64_t>();
    last_ts_ = f[f_last_ts].as<int64_t>();
    out_of_order_ = f[f_out_of_order].as<uint64_t>();
    duplicates_ = f[f_duplicates].as<uint64_t>();
    last_type_ = f[f_last_type].as<std::string>();
    auto& ids = f[f_recent_ids];
    if (ids.type != msgpack::type::ARRAY)
      return false;
    recent_ids_.clear();
    recent_ids_.reserve(ids.via.array.size);
    for (uint32_t i = 0; i < ids.via.array.size; ++i) {
      auto& id = ids.via.array.ptr[i];
      // Hashes, or the ids themselves in states stored before the hashes.
      recent_ids_.push_back(id.type == msgpack::type::STR
                              ? id_hash({id.via.str.ptr, id.via.str.size})
                              : id.as<uint64_t>());
    }
    if (recent_ids_.size() > recent_id_window)
      recent_ids_.resize(recent_id_window);
    recent_next_ = recent_ids_.empty() ? 0 : f[f_recent_next].as<uint64_t>() % recent_id_window;
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
