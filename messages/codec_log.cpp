// The ingest log's encoding of an event batch.
//
// Each event is one msgpack array, concatenated with no batch header. An event this node accepted
// (empty `origin`) is an array of 7 elements:
//
//   [id: str, type: str, device_id: str, profile_id: str | nil, ts: int, ingest_ts: int, attrs: bin]
//
// An event another node accepted and forwarded here (cluster; `origin` set) is an array of 9: the
// same 7, then the accepting node and the event's offset in that node's log:
//
//   [..the 7 above.., origin: str (not empty), origin_offset: uint]
//
// so local events do not grow, and records written before the cluster existed read unchanged.
// `attrs` is stored as a bin holding the event's msgpack map bytes, so decoding hands them back
// as-is. Local offsets are not stored: the log key gives the first one and events are dense. A
// future layout would use a different array length, which old readers reject as corrupt rather
// than misread (a reader that predates the 9-element form refuses a record holding one).

#include "messages/codec.hpp"
#include "messages/codec_internal.hpp"

#include <msgpack.hpp>

#include <cstring>

namespace sluice {

namespace {

using detail::mp_reader;
using detail::mp_token;
using detail::mp_type;

/// Number of elements in the log array of a local event (empty `origin`).
constexpr uint32_t log_event_fields = 7;
/// Number of elements in the log array of a forwarded event: the local ones, `origin` and
/// `origin_offset`.
constexpr uint32_t log_forwarded_event_fields = 9;

template <class Writer>
void pack_string(msgpack::packer<Writer>& pk, const std::string& s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

/// A msgpack-c output stream over a reserved area of exactly the record's size: it never writes
/// past `end` (a size mismatch leaves `overflow` set instead).
struct area_writer {
  char* p;
  char* end;
  bool overflow = false;
  void write(const char* data, size_t size) {
    if (size > static_cast<size_t>(end - p)) {
      overflow = true;
      return;
    }
    std::memcpy(p, data, size);
    p += size;
  }
};

/// Encodes the `count` events at `events` with `pk` (the layout at the top of this file).
template <class Writer>
void pack_events(msgpack::packer<Writer>& pk, const event* events, size_t count) {
  for (const event* end = events + count; events != end; ++events) {
    const event& e = *events;
    const bool forwarded = !e.origin.empty();
    pk.pack_array(forwarded ? log_forwarded_event_fields : log_event_fields);
    pack_string(pk, e.id);
    pack_string(pk, e.type);
    pack_string(pk, e.device_id);
    if (e.profile_id.empty())
      pk.pack_nil();
    else
      pack_string(pk, e.profile_id);
    pk.pack_int64(e.ts);
    pk.pack_int64(e.ingest_ts);
    pk.pack_bin(static_cast<uint32_t>(e.attrs.size()));
    pk.pack_bin_body(e.attrs.data(), static_cast<uint32_t>(e.attrs.size()));
    if (forwarded) {
      pack_string(pk, e.origin);
      pk.pack_uint64(e.origin_offset);
    }
  }
}

// Sizes of msgpack-c's encodings (the smallest form of each), as `pack_events` writes them.
size_t str_size(size_t n) noexcept {
  return n + (n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5);
}

size_t bin_size(size_t n) noexcept {
  return n + (n < 256 ? 2 : n < 65536 ? 3 : 5);
}

size_t int64_size(int64_t d) noexcept {
  if (d < -(1LL << 5))
    return d < -(1LL << 31) ? 9 : d < -(1LL << 15) ? 5 : d < -(1LL << 7) ? 3 : 2;
  if (d < (1LL << 7))
    return 1;
  return d < (1LL << 8) ? 2 : d < (1LL << 16) ? 3 : d < (1LL << 32) ? 5 : 9;
}

size_t uint64_size(uint64_t d) noexcept {
  return d < (1ULL << 7) ? 1 : d < (1ULL << 8) ? 2 : d < (1ULL << 16) ? 3 : d < (1ULL << 32) ? 5 : 9;
}

bool read_int(mp_reader& r, int64_t& out) {
  mp_token t;
  if (!r.next(t))
    return false;
  if (t.type == mp_type::sint) {
    out = t.i;
    return true;
  }
  if (t.type == mp_type::uint && t.u <= static_cast<uint64_t>(INT64_MAX)) {
    out = static_cast<int64_t>(t.u);
    return true;
  }
  return false;
}

// True when `attrs` is empty or exactly one well-formed msgpack map.
bool valid_attrs(std::string_view attrs) {
  if (attrs.empty())
    return true;
  mp_reader probe{attrs};
  mp_token t;
  if (!probe.next(t) || t.type != mp_type::map)
    return false;
  mp_reader r{attrs};
  return r.skip() && r.at_end();
}

/// One event's fields as views into the record (valid while the record is).
struct event_view {
  std::string_view id, type, device_id, profile_id, attrs, origin;
  int64_t ts = 0, ingest_ts = 0;
  log_offset origin_offset = 0;
};

bool read_view(mp_reader& r, std::string_view& out) {
  mp_token t;
  if (!r.next(t) || t.type != mp_type::str)
    return false;
  out = t.bytes;
  return true;
}

bool decode_view(mp_reader& r, event_view& e) {
  mp_token t;
  if (!r.next(t) || t.type != mp_type::array
      || (t.count != log_event_fields && t.count != log_forwarded_event_fields))
    return false;
  const bool forwarded = t.count == log_forwarded_event_fields;
  if (!read_view(r, e.id) || !read_view(r, e.type) || !read_view(r, e.device_id))
    return false;
  if (!r.next(t))
    return false;
  if (t.type == mp_type::str)
    e.profile_id = t.bytes;
  else if (t.type == mp_type::nil)
    e.profile_id = {};
  else
    return false;
  if (!read_int(r, e.ts) || !read_int(r, e.ingest_ts))
    return false;
  if (!r.next(t) || t.type != mp_type::bin)
    return false;
  e.attrs = t.bytes;
  e.origin = {};
  e.origin_offset = 0;
  if (!forwarded)
    return true;
  // The writer uses the 9-element form only with an origin: an empty one is not a record it wrote
  // (and would not survive a re-encode), so it is corrupt.
  if (!read_view(r, e.origin) || e.origin.empty())
    return false;
  if (!r.next(t))
    return false;
  if (t.type == mp_type::uint)
    e.origin_offset = t.u;
  else if (t.type == mp_type::sint && t.i >= 0) // another writer's int form of the same number
    e.origin_offset = static_cast<log_offset>(t.i);
  else
    return false;
  return true;
}

void materialize(const event_view& v, event& e) {
  e.id.assign(v.id);
  e.type.assign(v.type);
  e.device_id.assign(v.device_id);
  e.profile_id.assign(v.profile_id);
  e.ts = v.ts;
  e.ingest_ts = v.ingest_ts;
  e.attrs.assign(v.attrs);
  e.origin.assign(v.origin);
  e.origin_offset = v.origin_offset;
}

} // namespace

void encode_log_record(const event_batch& events, std::string& out) {
  detail::string_writer w{&out};
  msgpack::packer<detail::string_writer> pk{w};
  pack_events(pk, events.data(), events.size());
}

size_t log_record_size(const event* events, size_t count) noexcept {
  size_t n = 0;
  for (const event* end = events + count; events != end; ++events) {
    const event& e = *events;
    n += 1; // the array header: 7 or 9 elements, a fixarray
    n += str_size(e.id.size()) + str_size(e.type.size()) + str_size(e.device_id.size());
    n += e.profile_id.empty() ? 1 : str_size(e.profile_id.size());
    n += int64_size(e.ts) + int64_size(e.ingest_ts) + bin_size(e.attrs.size());
    if (!e.origin.empty())
      n += str_size(e.origin.size()) + uint64_size(e.origin_offset);
  }
  return n;
}

bool write_log_record(const event* events, size_t count, char* dst, size_t size) {
  area_writer w{dst, dst + size};
  msgpack::packer<area_writer> pk{w};
  pack_events(pk, events, count);
  return !w.overflow && w.p == w.end;
}

bool decode_log_record(std::string_view bytes, log_offset first, event_batch& out) {
  return decode_log_record_if(bytes, first, out, nullptr);
}

bool decode_log_record_if(std::string_view bytes, log_offset first, event_batch& out,
                          const log_filter& keep) {
  const size_t old_size = out.size();
  mp_reader r{bytes};
  log_offset next_offset = first;
  event_view v;
  while (!r.at_end()) {
    if (!decode_view(r, v)) {
      out.resize(old_size);
      return false;
    }
    // Checked before the filter: whether a record is corrupt must not depend on which events a
    // reader keeps (found by fuzz_log_record).
    if (!valid_attrs(v.attrs)) {
      out.resize(old_size);
      return false;
    }
    auto offset = next_offset++;
    if (keep && !keep(v.device_id, v.profile_id))
      continue; // skipped events cost no allocation
    event& e = out.emplace_back();
    materialize(v, e);
    e.offset = offset;
  }
  return true;
}

} // namespace sluice
