#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sluice {

/// Writes one JSON log line to stderr: `{"ts":…,"level":…,"msg":…, <fields>}`.
void log_json(std::string_view level, std::string_view msg,
              std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

} // namespace sluice
