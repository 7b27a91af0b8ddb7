#include "app/cmd_token.hpp"

#include "gateway/access.hpp"

#include <charconv>
#include <optional>
#include <iostream>
#include <string>
#include <vector>

namespace sluice {

namespace {

constexpr const char* usage
  = "Usage:\n"
    "  sluice token hash [--generate] [--name=NAME] [--scopes=ingest,read,admin] "
    "[--iterations=N]\n"
    "      hashes the token on the first line of stdin (or a new random one with --generate,\n"
    "      printed once) and prints the [tokens.NAME] section to paste into the config file\n";

} // namespace

int run_token_command(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2 || args[1] != "hash") {
    std::cerr << usage;
    return 2;
  }
  bool generate = false;
  std::string name = "console";
  std::string scopes = "admin";
  uint32_t iterations = gateway::default_kdf_iterations;
  for (size_t i = 2; i < args.size(); ++i) {
    auto& a = args[i];
    auto value = [&](std::string_view key) -> std::optional<std::string> {
      if (a.rfind(key, 0) == 0 && a.size() > key.size() && a[key.size()] == '=')
        return a.substr(key.size() + 1);
      return std::nullopt;
    };
    if (a == "--generate") {
      generate = true;
    } else if (auto v = value("--name")) {
      name = *v;
    } else if (auto v = value("--scopes")) {
      scopes = *v;
    } else if (auto v = value("--iterations")) {
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), iterations);
      if (ec != std::errc{} || p != v->data() + v->size()
          || iterations < gateway::min_kdf_iterations) {
        std::cerr << "sluice token: --iterations must be a number of at least "
                  << gateway::min_kdf_iterations << "\n";
        return 2;
      }
    } else if (a == "--help" || a == "-h") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << "sluice token: unknown argument '" << a << "'\n" << usage;
      return 2;
    }
  }
  std::vector<std::string> scope_list;
  for (size_t start = 0; start <= scopes.size();) {
    auto comma = scopes.find(',', start);
    auto s = scopes.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!s.empty())
      scope_list.push_back(s);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  std::string err;
  if (scope_list.empty() || !gateway::parse_scopes(scope_list, err)) {
    std::cerr << "sluice token: --scopes: " << (err.empty() ? "name at least one scope" : err)
              << "\n";
    return 2;
  }
  std::string token;
  if (generate) {
    token = gateway::generate_token();
  } else {
    std::getline(std::cin, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == '\n'))
      token.pop_back();
    if (token.empty()) {
      std::cerr << "sluice token: no token on stdin (or pass --generate)\n";
      return 2;
    }
  }
  if (generate)
    std::cout << "token (shown once, keep it secret): " << token << "\n\n";
  std::cout << "[tokens." << name << "]\n"
            << "hash = \"" << gateway::make_kdf_hash(token, iterations) << "\"\n"
            << "scopes = [";
  for (size_t i = 0; i < scope_list.size(); ++i)
    std::cout << (i ? ", " : "") << '"' << scope_list[i] << '"';
  std::cout << "]\n";
  return 0;
}

} // namespace sluice
