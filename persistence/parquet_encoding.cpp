#include "persistence/parquet_encoding.hpp"

#include "persistence/thrift_compact.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace sluice::persistence::parquet::encoding {

namespace {

/// Values per bit-packed group: the hybrid encoding packs in groups of 8.
constexpr size_t group_size = 8;
constexpr int max_width = 32;
constexpr int bits_per_byte = 8;

template <class T>
class hybrid_encoder {
public:
  hybrid_encoder(std::string& out, int width) : out_(out), width_(width) {
    if (width < 1 || width > max_width)
      throw std::invalid_argument("parquet rle_hybrid: bit width must be 1..32, got "
                                  + std::to_string(width));
  }

  void encode(const std::vector<T>& values) {
    size_t i = 0;
    const size_t n = values.size();
    while (i < n) {
      size_t run = 1;
      while (i + run < n && values[i + run] == values[i])
        ++run;
      if (run >= min_rle_run) {
        // Complete the pending literals to a whole group from this run: bit-packed runs in the
        // middle of a stream must hold a multiple of 8 values.
        if (!literals_.empty()) {
          while (literals_.size() % group_size != 0 && run > 0) {
            literals_.push_back(values[i]);
            ++i;
            --run;
          }
          if (literals_.size() % group_size == 0)
            flush_literals();
        }
        if (run >= min_rle_run) {
          put_rle(values[i], run);
          i += run;
          continue;
        }
      }
      for (size_t k = 0; k < run; ++k)
        literals_.push_back(values[i + k]);
      i += run;
    }
    flush_literals();
  }

private:
  void put_rle(uint64_t value, size_t count) {
    thrift::put_uvarint(out_, static_cast<uint64_t>(count) << 1);
    const int bytes = (width_ + bits_per_byte - 1) / bits_per_byte;
    for (int b = 0; b < bytes; ++b)
      out_.push_back(static_cast<char>((value >> (b * bits_per_byte)) & 0xFF));
  }

  void flush_literals() {
    if (literals_.empty())
      return;
    const size_t groups = (literals_.size() + group_size - 1) / group_size;
    thrift::put_uvarint(out_, (static_cast<uint64_t>(groups) << 1) | 1);
    const size_t bytes = groups * static_cast<size_t>(width_); // 8 values * width bits each
    const size_t start = out_.size();
    out_.append(bytes, '\0');
    auto* dst = reinterpret_cast<unsigned char*>(&out_[start]);
    size_t bit = 0;
    for (T v : literals_) {
      uint64_t value = static_cast<uint64_t>(v);
      int remaining = width_;
      while (remaining > 0) {
        const size_t byte = bit / bits_per_byte;
        const int offset = static_cast<int>(bit % bits_per_byte);
        const int take = std::min(remaining, bits_per_byte - offset);
        dst[byte] |= static_cast<unsigned char>((value & ((1u << take) - 1)) << offset);
        value >>= take;
        remaining -= take;
        bit += static_cast<size_t>(take);
      }
    }
    literals_.clear();
  }

  std::string& out_;
  int width_;
  std::vector<T> literals_;
};

} // namespace

int bit_width(uint64_t max_value) noexcept {
  int width = 0;
  while (max_value != 0) {
    ++width;
    max_value >>= 1;
  }
  return width;
}

void rle_hybrid(std::string& out, const std::vector<uint32_t>& values, int width) {
  hybrid_encoder<uint32_t>{out, width}.encode(values);
}

void rle_hybrid(std::string& out, const std::vector<uint8_t>& values, int width) {
  hybrid_encoder<uint8_t>{out, width}.encode(values);
}

namespace {
/// Initial slot count of a dictionary index (a power of two).
constexpr size_t initial_slots = 1024;
} // namespace

std::pair<uint32_t, bool> string_dictionary::insert(std::string_view value) {
  if (slots_.empty())
    slots_.resize(initial_slots);
  const uint64_t h = std::hash<std::string_view>{}(value);
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    slot& s = slots_[i];
    if (s.index_plus_one == 0) {
      const auto index = static_cast<uint32_t>(offsets_.size());
      offsets_.push_back(static_cast<uint32_t>(plain_.size()));
      put_byte_array(plain_, value.data(), value.size());
      s.hash = h;
      s.index_plus_one = index + 1;
      if (offsets_.size() * 2 > slots_.size())
        grow();
      return {index, true};
    }
    if (s.hash == h && entry(s.index_plus_one - 1) == value)
      return {s.index_plus_one - 1, false};
  }
}

void string_dictionary::clear() {
  std::fill(slots_.begin(), slots_.end(), slot{});
  offsets_.clear();
  plain_.clear();
}

std::string_view string_dictionary::entry(uint32_t index) const {
  const size_t at = offsets_[index];
  const auto* p = reinterpret_cast<const unsigned char*>(plain_.data() + at);
  const uint32_t len = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  return {plain_.data() + at + sizeof len, len};
}

void string_dictionary::grow() {
  std::vector<slot> bigger(slots_.size() * 2);
  const size_t mask = bigger.size() - 1;
  for (const slot& s : slots_) {
    if (s.index_plus_one == 0)
      continue;
    size_t i = s.hash & mask;
    while (bigger[i].index_plus_one != 0)
      i = (i + 1) & mask;
    bigger[i] = s;
  }
  slots_.swap(bigger);
}

void put_byte_array(std::string& out, const char* data, size_t size) {
  put_le32(out, static_cast<uint32_t>(size));
  out.append(data, size);
}

} // namespace sluice::persistence::parquet::encoding
