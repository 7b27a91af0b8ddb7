#pragma once

// Helpers shared by the codec unit tests (tests/unit/codec_*.cpp).

#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <cstring>
#include <sstream>
#include <string>
#include <string_view>

namespace sluice::test {

/// An event with only its envelope set (id e1, type play, device d1, ts, ingest_ts, offset 42).
inline event envelope() {
  event e;
  e.id = "e1";
  e.type = "play";
  e.device_id = "d1";
  e.ts = 1700000000000;
  e.ingest_ts = 1700000000123;
  e.offset = 42;
  return e;
}

/// A msgpack-c stream appending to a std::string.
struct string_stream {
  std::string* out;
  void write(const char* data, size_t size) {
    out->append(data, size);
  }
};

/// Builds msgpack bytes with msgpack-c's packer: `mp_builder b; b.pk.pack_map(1); ...; b.bytes`.
struct mp_builder {
  std::string bytes;
  string_stream stream{&bytes};
  msgpack::packer<string_stream> pk{stream};

  mp_builder& str(std::string_view s) {
    pk.pack_str(static_cast<uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  template <class T>
  mp_builder& val(const T& v) {
    pk.pack(v);
    return *this;
  }
  mp_builder& map(uint32_t n) {
    pk.pack_map(n);
    return *this;
  }
  mp_builder& array(uint32_t n) {
    pk.pack_array(n);
    return *this;
  }
  /// A float64, even when integral (msgpack-c's `pack_double` would write 1.0 as an integer).
  mp_builder& f64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    bytes += static_cast<char>(0xcb);
    for (int k = 7; k >= 0; --k)
      bytes += static_cast<char>(bits >> (8 * k));
    return *this;
  }
  /// A float32, even when integral.
  mp_builder& f32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    bytes += static_cast<char>(0xca);
    for (int k = 3; k >= 0; --k)
      bytes += static_cast<char>(bits >> (8 * k));
    return *this;
  }
  mp_builder& nil() {
    pk.pack_nil();
    return *this;
  }
};

/// Renders msgpack bytes (e.g. an event's `attrs`) as msgpack-c's JSON-like text, for readable
/// comparisons; "<empty>" for no bytes.
inline std::string mp_text(std::string_view bytes) {
  if (bytes.empty())
    return "<empty>";
  msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
  std::ostringstream os;
  os << oh.get();
  return os.str();
}

/// The rejection reason for client index `index`, or "<accepted>".
inline std::string rejection_for(const decoded_batch& b, uint32_t index) {
  for (const auto& r : b.rejected)
    if (r.index == index)
      return r.error;
  return "<accepted>";
}

/// The msgpack attrs the JSON decoder makes of the one event in `json` (empty when it has none
/// or the body does not decode; a failed decode is a test failure).
inline std::string attrs_of(const std::string& json) {
  auto b = decode_json(json, 5);
  EXPECT_TRUE(b.ok()) << b.error;
  return b.events.empty() ? std::string{} : b.events.front().attrs;
}

} // namespace sluice::test
