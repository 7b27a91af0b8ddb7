#pragma once

// What the Parquet writer and reader tests share: the schema of their event files.

#include "persistence/parquet_writer.hpp"

#include <vector>

namespace sluice::persistence::parquet_testing {

/// A flat event schema with every column type, REQUIRED (`id`, `ts`) and OPTIONAL columns, and
/// two string columns (`id` mostly distinct, `type` with few values for dictionary encoding).
inline std::vector<parquet::column_spec> event_schema() {
  using parquet::column_type;
  return {{"id", column_type::string, true},
          {"ts", column_type::timestamp_ms, true},
          {"offset", column_type::int64, false},
          {"score", column_type::float64, false},
          {"ok", column_type::boolean, false},
          {"type", column_type::string, false}};
}

} // namespace sluice::persistence::parquet_testing
