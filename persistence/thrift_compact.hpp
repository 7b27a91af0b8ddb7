#pragma once

// Encoder and decoder for the Thrift compact protocol, enough for Parquet's footer (FileMetaData)
// and page headers. Reference: Apache Thrift, doc/specs/thrift-compact-protocol.md.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::persistence::thrift {

/// Compact-protocol type codes, as written in field and list headers.
enum class compact_type : uint8_t {
  stop = 0,
  boolean_true = 1,
  boolean_false = 2,
  byte = 3,
  i16 = 4,
  i32 = 5,
  i64 = 6,
  double_ = 7,
  binary = 8,
  list = 9,
  set = 10,
  map = 11,
  structure = 12,
};

/// Appends unsigned LEB128 (the compact protocol's varint) to `out`.
void put_uvarint(std::string& out, uint64_t value);
/// Zigzag-maps a signed value so that small magnitudes encode into few varint bytes.
constexpr uint64_t zigzag(int64_t value) noexcept {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}

/// Writes one Thrift value in the compact protocol into a caller-owned string.
///
/// Lifecycle: construct over an output string, then write a sequence of fields; every
/// `begin_struct` / `field_struct` is closed by `end_struct`, which writes the stop byte. The
/// writer is itself the top-level struct's frame: a Thrift message (e.g. a Parquet
/// `FileMetaData`) is written as fields followed by one final `end_struct()`. Lists are written by
/// `field_list` followed by exactly `size` elements (`elem_*` calls, or `begin_struct` ...
/// `end_struct` per struct element). Field ids must increase within a struct only for the short
/// (delta) header form; other orders fall back to the long form, as the spec allows.
/// Not thread-safe; no validation that list sizes match the elements written.
class compact_writer {
public:
  /// Writes into `out` (appending).
  explicit compact_writer(std::string& out);

  /// Field header (delta or long form) for a non-bool field.
  void field_header(int16_t id, compact_type type);
  /// A bool field: the value lives in the field header's type nibble.
  void field_bool(int16_t id, bool value);
  /// An i16 field (zigzag varint).
  void field_i16(int16_t id, int16_t value);
  /// An i32 field (zigzag varint); also used for Thrift enums.
  void field_i32(int16_t id, int32_t value);
  /// An i64 field (zigzag varint).
  void field_i64(int16_t id, int64_t value);
  /// A binary/string field (varint length + bytes).
  void field_binary(int16_t id, std::string_view value);
  /// Opens a struct-valued field; close it with `end_struct`.
  void field_struct(int16_t id);
  /// A list field header; follow it with `size` elements of `element`.
  void field_list(int16_t id, compact_type element, size_t size);

  /// Opens a struct that is a list element (no field header); close it with `end_struct`.
  void begin_struct();
  /// Writes the stop byte and returns to the enclosing struct's field-id context.
  void end_struct();

  /// List elements.
  void elem_i32(int32_t value);
  void elem_i64(int64_t value);
  void elem_binary(std::string_view value);

  /// Current nesting depth (1 = top-level struct open); 0 after the top-level `end_struct`.
  size_t depth() const noexcept {
    return last_ids_.size();
  }

private:
  void put_i32_value(int32_t value);
  std::string& out_;
  /// Last field id written in each open struct (the delta base of short field headers).
  std::vector<int16_t> last_ids_;
};

/// Inverse of `zigzag`.
constexpr int64_t unzigzag(uint64_t value) noexcept {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

/// One field header read by `compact_reader::read_field`.
struct field_header {
  int16_t id = 0;
  compact_type type = compact_type::stop;
  /// Bool fields carry their value in the header (`boolean_true` / `boolean_false`).
  bool is_bool() const noexcept {
    return type == compact_type::boolean_true || type == compact_type::boolean_false;
  }
  /// The value of a bool field.
  bool bool_value() const noexcept {
    return type == compact_type::boolean_true;
  }
};

/// A list (or set) header: element type and element count.
struct list_header {
  compact_type element = compact_type::stop;
  size_t size = 0;
};

/// Reads Thrift compact-protocol values from a byte range it does not own.
///
/// Lifecycle: construct over the bytes (which must outlive the reader and every view that
/// `read_binary` returns); `begin_struct()` enters the top-level struct; then `read_field()` until
/// it returns nullopt (the stop byte, which also leaves the struct). Read each field's value with
/// the `read_*` call of its type, `begin_struct()` for a struct-valued field or struct list
/// element, or `skip(field)` for fields the caller does not know (so data from writers with newer
/// or extra fields decodes). Bool fields carry their value in the header (`bool_value()`); bool
/// list elements are read with `read_bool()`.
/// Limits: every read is bounds-checked and throws std::runtime_error ("thrift: ...", with the
/// byte position) on truncated or malformed input, never reading outside the range; nesting of
/// structs and containers is limited to `max_depth` so that hostile input cannot exhaust the
/// stack; a list announcing more elements than bytes remain is rejected before anything is
/// allocated. Not thread-safe.
class compact_reader {
public:
  /// Deepest nesting of structs/containers accepted; Parquet metadata nests at most 6 deep.
  static constexpr size_t max_depth = 64;

  /// Reads `in` from its first byte.
  explicit compact_reader(std::string_view in);

  /// Enters a struct: the top-level one, a struct-valued field, or a struct list element.
  void begin_struct();
  /// The next field header of the innermost open struct; nullopt at its stop byte, which closes
  /// the struct (returning to the enclosing struct's field ids).
  std::optional<field_header> read_field();

  /// Values (of fields or list elements).
  int8_t read_byte();
  int16_t read_i16();
  int32_t read_i32();
  int64_t read_i64();
  double read_double();
  /// A binary/string value: a view into the input.
  std::string_view read_binary();
  /// A bool list element (one byte; 1 is true).
  bool read_bool();
  /// A list or set header; follow it with `size` reads of `element` values.
  list_header read_list();

  /// Skips the value of `field` (nothing for bool fields, whose value is in the header).
  void skip(const field_header& field);
  /// Skips one value of `type` in list-element form (a bool takes one byte).
  void skip(compact_type type);

  /// Bytes consumed so far.
  size_t position() const noexcept {
    return pos_;
  }
  /// Bytes left.
  size_t remaining() const noexcept {
    return in_.size() - pos_;
  }

private:
  [[noreturn]] void fail(const std::string& what) const;
  void need(size_t n, const char* what) const;
  uint8_t next_byte(const char* what);
  uint64_t read_uvarint(const char* what);
  compact_type checked_type(uint8_t nibble) const;
  void skip_value(compact_type type, size_t depth);

  std::string_view in_;
  size_t pos_ = 0;
  /// Last field id read in each open struct (the delta base of short field headers).
  std::vector<int16_t> last_ids_;
};

} // namespace sluice::persistence::thrift
