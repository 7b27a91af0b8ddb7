#pragma once

// The parts of the Parquet format (apache/parquet-format, parquet.thrift) that both the writer
// and the reader know: the file magic, Thrift enum values and the mappings from sluice's column
// types and codecs to them (internal to sluice::persistence).

#include "persistence/parquet_writer.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::persistence::parquet::format {

/// "PAR1": leads and ends every Parquet file.
inline constexpr std::string_view magic = "PAR1";

// Enum values of parquet.thrift.
inline constexpr int32_t type_boolean = 0;
inline constexpr int32_t type_int32 = 1;
inline constexpr int32_t type_int64 = 2;
inline constexpr int32_t type_int96 = 3;
inline constexpr int32_t type_float = 4;
inline constexpr int32_t type_double = 5;
inline constexpr int32_t type_byte_array = 6;
inline constexpr int32_t type_fixed_len_byte_array = 7;
inline constexpr int32_t converted_utf8 = 0;
inline constexpr int32_t converted_enum = 4;
inline constexpr int32_t converted_timestamp_millis = 9;
inline constexpr int32_t converted_int_64 = 18;
inline constexpr int32_t converted_json = 19;
inline constexpr int32_t repetition_required = 0;
inline constexpr int32_t repetition_optional = 1;
inline constexpr int32_t encoding_plain = 0;
inline constexpr int32_t encoding_plain_dictionary = 2;
inline constexpr int32_t encoding_rle = 3;
inline constexpr int32_t encoding_rle_dictionary = 8;
inline constexpr int32_t page_data = 0;
inline constexpr int32_t page_index = 1;
inline constexpr int32_t page_dictionary = 2;
inline constexpr int32_t page_data_v2 = 3;
inline constexpr int32_t codec_uncompressed = 0;
inline constexpr int32_t codec_snappy = 1;
inline constexpr int32_t codec_zstd = 6;
// LogicalType union members.
inline constexpr int16_t logical_string = 1;
inline constexpr int16_t logical_enum = 4;
inline constexpr int16_t logical_timestamp = 8;
inline constexpr int16_t logical_integer = 10;
inline constexpr int16_t logical_json = 12;
// TimeUnit union members.
inline constexpr int16_t unit_millis = 1;
/// IntType.bitWidth of a 64-bit integer.
inline constexpr int8_t int64_bits = 64;

/// The physical type (`type_*`) that stores a column of type `t`.
int32_t physical_type(column_type t) noexcept;

/// The CompressionCodec value (`codec_*`) of `c`.
int32_t codec_id(codec c) noexcept;

/// The codec with CompressionCodec value `id`; nullopt for one sluice does not read or write.
std::optional<codec> codec_from_id(int32_t id) noexcept;

} // namespace sluice::persistence::parquet::format
