#pragma once

// The bearer token the CLI's HTTP clients (`sluice replay`, `sluice dlq`) present to a node.

#include <optional>
#include <string>

namespace sluice {

/// The token from `token_file` (its first line, blanks trimmed) when given, else from the
/// environment variable `SLUICE_TOKEN`, else empty (no `Authorization` header: anonymous).
/// Tokens are never taken from the command line, where `ps` would show them. Sets `error` (and
/// returns empty) when the file cannot be read or holds no token.
std::string client_token(const std::optional<std::string>& token_file, std::string& error);

/// Help text for the option, shared by the commands' usage lines.
inline constexpr const char* client_token_help
  = "  --token-file=FILE          bearer token for a node with access control (default: the\n"
    "                             SLUICE_TOKEN environment variable; none: anonymous)\n";

} // namespace sluice
