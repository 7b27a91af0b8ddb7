#include "actors/log.hpp"

#include "messages/codec.hpp"

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

namespace sluice {

void log_json(std::string_view level, std::string_view msg,
              std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  std::string line = fmt::format("{{\"ts\":{},\"level\":", now);
  append_json_string(line, level);
  line += ",\"msg\":";
  append_json_string(line, msg);
  for (auto& [k, v] : fields) {
    line += ',';
    append_json_string(line, k);
    line += ':';
    append_json_string(line, v);
  }
  line += "}\n";
  std::fputs(line.c_str(), stderr);
}

} // namespace sluice
