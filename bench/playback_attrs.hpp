#pragma once

// Event attributes shared by the aggregation and profile benchmarks.

#include <msgpack.hpp>

#include <cstdint>
#include <string>

namespace sluice::bench {

/// The msgpack attrs of a playback event: `{"title_id": title, "position_ms": position}`.
inline std::string playback_attrs(const std::string& title, int64_t position) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_map(2);
  pk.pack(std::string{"title_id"});
  pk.pack(title);
  pk.pack(std::string{"position_ms"});
  pk.pack(position);
  return std::string{buf.data(), buf.size()};
}

} // namespace sluice::bench
