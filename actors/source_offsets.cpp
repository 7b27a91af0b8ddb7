#include "actors/source_offsets.hpp"

#include <algorithm>

namespace sluice {

namespace {

/// The entry of `source` in the sorted `xs`, or where it would go.
template <class Entries>
auto find_source(Entries& xs, std::string_view source) {
  return std::lower_bound(xs.begin(), xs.end(), source,
                          [](const source_offsets::entry& x, std::string_view s) {
                            return std::string_view{x.first} < s;
                          });
}

} // namespace

bool source_offsets::admit_remote(const event& e) {
  auto offset = offset_of(e);
  if (offset == 0)
    return true;
  auto source = source_of(e);
  auto i = find_source(remote_, source);
  if (i != remote_.end() && i->first == source) {
    if (offset <= i->second)
      return false;
    i->second = offset;
    return true;
  }
  remote_.emplace(i, std::string{source}, offset);
  return true;
}

bool source_offsets::applied(const event& e) const noexcept {
  auto offset = offset_of(e);
  return offset != 0 && offset <= upto(source_of(e));
}

log_offset source_offsets::upto(std::string_view source) const noexcept {
  if (source.empty())
    return local_;
  auto i = find_source(remote_, source);
  return i != remote_.end() && i->first == source ? i->second : 0;
}

std::vector<source_offsets::entry> source_offsets::entries() const {
  std::vector<entry> out;
  out.reserve(size());
  if (local_ > 0)
    out.emplace_back(std::string{}, local_);
  out.insert(out.end(), remote_.begin(), remote_.end());
  return out;
}

void source_offsets::msgpack_unpack(const msgpack::object& o) {
  std::vector<entry> xs;
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    // Only the local source, or a state stored before the cluster (its scalar `applied_upto`).
    if (o.via.u64 > 0)
      xs.emplace_back(std::string{}, o.via.u64);
  } else if (o.type == msgpack::type::MAP) {
    xs.reserve(o.via.map.size);
    for (uint32_t k = 0; k < o.via.map.size; ++k) {
      auto& kv = o.via.map.ptr[k];
      if (kv.key.type != msgpack::type::STR || kv.val.type != msgpack::type::POSITIVE_INTEGER)
        throw msgpack::type_error{};
      if (kv.val.via.u64 > 0)
        xs.emplace_back(std::string{kv.key.via.str.ptr, kv.key.via.str.size}, kv.val.via.u64);
    }
    std::sort(xs.begin(), xs.end());
    // A source written twice (not by this encoder) keeps its highest offset.
    for (size_t k = 1; k < xs.size();) {
      if (xs[k].first == xs[k - 1].first)
        xs.erase(xs.begin() + static_cast<std::ptrdiff_t>(k - 1));
      else
        ++k;
    }
  } else {
    throw msgpack::type_error{};
  }
  local_ = 0;
  if (!xs.empty() && xs.front().first.empty()) { // "" sorts first
    local_ = xs.front().second;
    xs.erase(xs.begin());
  }
  remote_ = std::move(xs);
}

} // namespace sluice
