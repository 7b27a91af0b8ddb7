#include "app/client_token.hpp"

#include "messages/text.hpp"

#include <cstdlib>
#include <fstream>

namespace sluice {

std::string client_token(const std::optional<std::string>& token_file, std::string& error) {
  if (token_file) {
    std::ifstream in{*token_file};
    std::string line;
    if (!in || !std::getline(in, line)) {
      error = "cannot read a token from --token-file " + *token_file;
      return {};
    }
    auto token = std::string{trim_blanks(line)};
    if (token.empty())
      error = "--token-file " + *token_file + " holds no token on its first line";
    return token;
  }
  if (const char* env = std::getenv("SLUICE_TOKEN"); env != nullptr)
    return std::string{trim_blanks(env)};
  return {};
}

} // namespace sluice
