#pragma once

// Small text helpers shared by the config, catalog, CSV and header parsers.

#include <string_view>

namespace sluice {

/// `s` without leading and trailing blanks (space, tab, CR, LF).
inline std::string_view trim_blanks(std::string_view s) noexcept {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && blank(s.back()))
    s.remove_suffix(1);
  return s;
}

} // namespace sluice
