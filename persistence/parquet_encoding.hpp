#pragma once

// Parquet value and level encodings used by the writer (internal to sluice::persistence, exposed
// for unit tests): the RLE / bit-packed hybrid, PLAIN helpers and bit widths.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::persistence::parquet::encoding {

/// Number of bits needed to represent `max_value` (0 for 0).
int bit_width(uint64_t max_value) noexcept;

/// Appends `values` in the RLE / bit-packed hybrid encoding with `width` bits per value (1..32),
/// without the 4-byte length prefix. Runs of at least `min_rle_run` equal values become RLE
/// runs; everything else is bit-packed in groups of 8 (the last group zero-padded).
void rle_hybrid(std::string& out, const std::vector<uint32_t>& values, int width);
/// The same for 8-bit inputs (definition levels).
void rle_hybrid(std::string& out, const std::vector<uint8_t>& values, int width);

/// Shortest run worth an RLE header: 8 equal values, i.e. exactly one bit-packed group.
inline constexpr size_t min_rle_run = 8;

/// The distinct values of a string column chunk, kept as the PLAIN body of its dictionary page
/// (4-byte length + bytes per entry) with an open-addressing index (linear probing, load <= 1/2)
/// that stores each slot's hash, so a lookup usually touches one slot and one entry.
/// Not thread-safe; grows without bound: the caller enforces its size limit.
class string_dictionary {
public:
  /// The index of `value`, added at the end if new; `.second` tells whether it was added.
  std::pair<uint32_t, bool> insert(std::string_view value);
  /// Number of distinct values.
  size_t size() const noexcept {
    return offsets_.size();
  }
  bool empty() const noexcept {
    return offsets_.empty();
  }
  /// The dictionary page body: every value PLAIN-encoded, in index order.
  const std::string& plain() const noexcept {
    return plain_;
  }
  /// Forgets every value (keeps the allocations).
  void clear();

private:
  struct slot {
    uint64_t hash = 0;
    uint32_t index_plus_one = 0; // 0: empty
  };
  std::string_view entry(uint32_t index) const;
  void grow();

  std::vector<slot> slots_;
  std::vector<uint32_t> offsets_; // start of each entry's length prefix in plain_
  std::string plain_;
};

/// Appends a little-endian 32-bit value.
inline void put_le32(std::string& out, uint32_t value) {
  const char bytes[] = {static_cast<char>(value), static_cast<char>(value >> 8),
                        static_cast<char>(value >> 16), static_cast<char>(value >> 24)};
  out.append(bytes, sizeof bytes);
}
/// Appends a little-endian 64-bit value.
inline void put_le64(std::string& out, uint64_t value) {
  put_le32(out, static_cast<uint32_t>(value));
  put_le32(out, static_cast<uint32_t>(value >> 32));
}
/// Appends a PLAIN BYTE_ARRAY value: 4-byte little-endian length, then the bytes.
void put_byte_array(std::string& out, const char* data, size_t size);

} // namespace sluice::persistence::parquet::encoding
