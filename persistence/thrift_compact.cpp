#include "persistence/thrift_compact.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace sluice::persistence::thrift {

namespace {

/// Field id deltas 1..15 fit in the high nibble of the short field header.
constexpr int max_short_delta = 15;
/// Lists with fewer elements carry their size in the high nibble of the list header.
constexpr size_t max_short_list_size = 14;
/// High nibble that announces a varint list size after the header byte.
constexpr uint8_t long_list_marker = 0xF0;

/// Varints of up to 64 bits take at most 10 bytes of 7 bits each.
constexpr int max_varint_bytes = 10;
constexpr int varint_payload_bits = 7;
constexpr uint8_t varint_more = 0x80;
constexpr uint8_t varint_mask = 0x7F;
/// The list-size nibble that announces a varint size.
constexpr size_t long_list_size = 15;
/// Type code 13 (UUID, 16 raw bytes) is newer than the compact_type enum; skipped only.
constexpr uint8_t uuid_code = 13;
constexpr size_t uuid_bytes = 16;
constexpr int nibble_bits = 4;
constexpr uint8_t low_nibble = 0x0F;

uint8_t code(compact_type t) {
  return static_cast<uint8_t>(t);
}

} // namespace

void put_uvarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

compact_writer::compact_writer(std::string& out) : out_(out) {
  last_ids_.push_back(0);
}

void compact_writer::field_header(int16_t id, compact_type type) {
  if (last_ids_.empty())
    throw std::logic_error("thrift compact_writer: field after the top-level struct ended");
  int delta = static_cast<int>(id) - static_cast<int>(last_ids_.back());
  if (delta > 0 && delta <= max_short_delta) {
    out_.push_back(static_cast<char>((delta << 4) | code(type)));
  } else {
    out_.push_back(static_cast<char>(code(type)));
    put_uvarint(out_, zigzag(id));
  }
  last_ids_.back() = id;
}

void compact_writer::field_bool(int16_t id, bool value) {
  field_header(id, value ? compact_type::boolean_true : compact_type::boolean_false);
}

void compact_writer::field_i16(int16_t id, int16_t value) {
  field_header(id, compact_type::i16);
  put_uvarint(out_, zigzag(value));
}

void compact_writer::field_i32(int16_t id, int32_t value) {
  field_header(id, compact_type::i32);
  put_i32_value(value);
}

void compact_writer::field_i64(int16_t id, int64_t value) {
  field_header(id, compact_type::i64);
  put_uvarint(out_, zigzag(value));
}

void compact_writer::field_binary(int16_t id, std::string_view value) {
  field_header(id, compact_type::binary);
  elem_binary(value);
}

void compact_writer::field_struct(int16_t id) {
  field_header(id, compact_type::structure);
  last_ids_.push_back(0);
}

void compact_writer::field_list(int16_t id, compact_type element, size_t size) {
  field_header(id, compact_type::list);
  if (size <= max_short_list_size) {
    out_.push_back(static_cast<char>((size << 4) | code(element)));
  } else {
    out_.push_back(static_cast<char>(long_list_marker | code(element)));
    put_uvarint(out_, size);
  }
}

void compact_writer::begin_struct() {
  last_ids_.push_back(0);
}

void compact_writer::end_struct() {
  if (last_ids_.empty())
    throw std::logic_error("thrift compact_writer: end_struct without an open struct");
  out_.push_back(static_cast<char>(code(compact_type::stop)));
  last_ids_.pop_back();
}

void compact_writer::elem_i32(int32_t value) {
  put_i32_value(value);
}

void compact_writer::elem_i64(int64_t value) {
  put_uvarint(out_, zigzag(value));
}

void compact_writer::elem_binary(std::string_view value) {
  put_uvarint(out_, value.size());
  out_.append(value.data(), value.size());
}

void compact_writer::put_i32_value(int32_t value) {
  put_uvarint(out_, zigzag(value));
}

// -- compact_reader -------------------------------------------------------------------------------

compact_reader::compact_reader(std::string_view in) : in_(in) {
  // nop
}

void compact_reader::fail(const std::string& what) const {
  throw std::runtime_error("thrift: " + what + " at byte " + std::to_string(pos_) + " of "
                           + std::to_string(in_.size()));
}

void compact_reader::need(size_t n, const char* what) const {
  if (n > remaining())
    fail(std::string{"truncated input: "} + what + " needs " + std::to_string(n)
         + " bytes, " + std::to_string(remaining()) + " left");
}

uint8_t compact_reader::next_byte(const char* what) {
  need(1, what);
  return static_cast<uint8_t>(in_[pos_++]);
}

uint64_t compact_reader::read_uvarint(const char* what) {
  uint64_t value = 0;
  for (int i = 0; i < max_varint_bytes; ++i) {
    const uint8_t b = next_byte(what);
    value |= static_cast<uint64_t>(b & varint_mask) << (i * varint_payload_bits);
    if ((b & varint_more) == 0)
      return value;
  }
  fail(std::string{"varint longer than 10 bytes in "} + what);
}

compact_type compact_reader::checked_type(uint8_t nibble) const {
  if (nibble == 0 || (nibble > code(compact_type::structure) && nibble != uuid_code))
    fail("unknown compact type " + std::to_string(nibble));
  return static_cast<compact_type>(nibble);
}

void compact_reader::begin_struct() {
  if (last_ids_.size() >= max_depth)
    fail("structs nested deeper than " + std::to_string(max_depth));
  last_ids_.push_back(0);
}

std::optional<field_header> compact_reader::read_field() {
  if (last_ids_.empty())
    throw std::logic_error("thrift compact_reader: read_field outside a struct");
  const uint8_t h = next_byte("a field header");
  if (h == code(compact_type::stop)) {
    last_ids_.pop_back();
    return std::nullopt;
  }
  field_header f;
  f.type = checked_type(h & low_nibble);
  const int delta = h >> nibble_bits;
  if (delta != 0) {
    const int id = last_ids_.back() + delta;
    if (id > std::numeric_limits<int16_t>::max())
      fail("field id overflows i16");
    f.id = static_cast<int16_t>(id);
  } else {
    f.id = read_i16();
  }
  last_ids_.back() = f.id;
  return f;
}

int8_t compact_reader::read_byte() {
  return static_cast<int8_t>(next_byte("a byte"));
}

int16_t compact_reader::read_i16() {
  const int64_t v = unzigzag(read_uvarint("an i16"));
  if (v < std::numeric_limits<int16_t>::min() || v > std::numeric_limits<int16_t>::max())
    fail("i16 value out of range");
  return static_cast<int16_t>(v);
}

int32_t compact_reader::read_i32() {
  const int64_t v = unzigzag(read_uvarint("an i32"));
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
    fail("i32 value out of range");
  return static_cast<int32_t>(v);
}

int64_t compact_reader::read_i64() {
  return unzigzag(read_uvarint("an i64"));
}

double compact_reader::read_double() {
  need(sizeof(double), "a double");
  uint64_t bits = 0;
  for (size_t i = 0; i < sizeof bits; ++i) // little-endian on the wire
    bits |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
  pos_ += sizeof bits;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

std::string_view compact_reader::read_binary() {
  const uint64_t n = read_uvarint("a binary length");
  need(n, "a binary value");
  std::string_view v = in_.substr(pos_, static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return v;
}

bool compact_reader::read_bool() {
  return next_byte("a bool") == code(compact_type::boolean_true);
}

list_header compact_reader::read_list() {
  const uint8_t h = next_byte("a list header");
  list_header l;
  l.element = checked_type(h & low_nibble);
  l.size = h >> nibble_bits;
  if (l.size == long_list_size) {
    const uint64_t n = read_uvarint("a list size");
    // Every element takes at least one byte: a larger count cannot be in the input.
    if (n > remaining())
      fail("list of " + std::to_string(n) + " elements in " + std::to_string(remaining())
           + " bytes");
    l.size = static_cast<size_t>(n);
  }
  return l;
}

void compact_reader::skip(const field_header& field) {
  if (!field.is_bool())
    skip_value(field.type, 0);
}

void compact_reader::skip(compact_type type) {
  skip_value(type, 0);
}

void compact_reader::skip_value(compact_type type, size_t depth) {
  if (depth + last_ids_.size() >= max_depth)
    fail("values nested deeper than " + std::to_string(max_depth));
  switch (type) {
    case compact_type::boolean_true:
    case compact_type::boolean_false:
    case compact_type::byte:
      next_byte("a byte");
      return;
    case compact_type::i16:
    case compact_type::i32:
    case compact_type::i64:
      read_uvarint("an integer");
      return;
    case compact_type::double_:
      need(sizeof(double), "a double");
      pos_ += sizeof(double);
      return;
    case compact_type::binary:
      read_binary();
      return;
    case compact_type::list:
    case compact_type::set: {
      const list_header l = read_list();
      for (size_t i = 0; i < l.size; ++i)
        skip_value(l.element, depth + 1);
      return;
    }
    case compact_type::map: {
      const uint64_t n = read_uvarint("a map size");
      if (n == 0)
        return;
      if (n > remaining())
        fail("map of " + std::to_string(n) + " entries in " + std::to_string(remaining())
             + " bytes");
      const uint8_t kv = next_byte("a map's key and value types");
      const compact_type key = checked_type(kv >> nibble_bits);
      const compact_type value = checked_type(kv & low_nibble);
      for (uint64_t i = 0; i < n; ++i) {
        skip_value(key, depth + 1);
        skip_value(value, depth + 1);
      }
      return;
    }
    case compact_type::structure: {
      begin_struct();
      while (auto f = read_field())
        if (!f->is_bool())
          skip_value(f->type, depth + 1);
      return;
    }
    case compact_type::stop:
      break;
  }
  if (code(type) == uuid_code) {
    need(uuid_bytes, "a uuid");
    pos_ += uuid_bytes;
    return;
  }
  fail("cannot skip a value of compact type " + std::to_string(code(type)));
}

} // namespace sluice::persistence::thrift
