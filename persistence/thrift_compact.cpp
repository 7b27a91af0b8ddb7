#include "persistence/thrift_compact.hpp"

#include <stdexcept>

namespace sluice::persistence::thrift {

namespace {

/// Field id deltas 1..15 fit in the high nibble of the short field header.
constexpr int max_short_delta = 15;
/// Lists with fewer elements carry their size in the high nibble of the list header.
constexpr size_t max_short_list_size = 14;
/// High nibble that announces a varint list size after the header byte.
constexpr uint8_t long_list_marker = 0xF0;

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

} // namespace sluice::persistence::thrift
