#pragma once

// Encoder for the Thrift compact protocol, enough for Parquet's footer (FileMetaData) and page
// headers. Reference: Apache Thrift, doc/specs/thrift-compact-protocol.md.

#include <cstddef>
#include <cstdint>
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

} // namespace sluice::persistence::thrift
