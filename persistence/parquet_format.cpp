#include "persistence/parquet_format.hpp"

namespace sluice::persistence::parquet::format {

int32_t physical_type(column_type t) noexcept {
  switch (t) {
    case column_type::string:
      return type_byte_array;
    case column_type::int64:
    case column_type::timestamp_ms:
      return type_int64;
    case column_type::float64:
      return type_double;
    case column_type::boolean:
      return type_boolean;
  }
  return type_byte_array;
}

int32_t codec_id(codec c) noexcept {
  switch (c) {
    case codec::none:
      return codec_uncompressed;
    case codec::snappy:
      return codec_snappy;
    case codec::zstd:
      return codec_zstd;
  }
  return codec_uncompressed;
}

std::optional<codec> codec_from_id(int32_t id) noexcept {
  switch (id) {
    case codec_uncompressed:
      return codec::none;
    case codec_snappy:
      return codec::snappy;
    case codec_zstd:
      return codec::zstd;
    default:
      return std::nullopt;
  }
}

} // namespace sluice::persistence::parquet::format
