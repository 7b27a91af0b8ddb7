#include "app/cmd_routes.hpp"

#include "actors/route_history.hpp"
#include "app/config.hpp"
#include "gateway/routes_api.hpp"
#include "messages/type_ids.hpp"

#include <caf/all.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace sluice {

namespace {

constexpr const char* usage
  = "Usage:\n"
    "  sluice routes check FILE [--config-file=conf/sluice.conf]\n"
    "      validate route INI text ([routes.<name>] sections) against the config's sinks;\n"
    "      prints FILE:LINE:COLUMN: message and exits 1 when invalid\n";

/// The message without its "line L, column C: " prefix (the position is printed in front).
std::string strip_position(const std::string& error) {
  auto at = error.find("line ");
  if (at == std::string::npos)
    return error;
  auto colon = error.find(": ", at);
  if (colon == std::string::npos || error.find(", column ", at) > colon)
    return error;
  return error.substr(0, at) + error.substr(colon + 2);
}

} // namespace

int run_routes_command(int argc, char** argv) {
  std::vector<std::string> args(argv + 2, argv + argc);
  if (args.empty() || args.front() != "check") {
    std::cerr << (args.empty() ? "" : "sluice routes: unknown subcommand '" + args.front() + "'\n")
              << usage;
    return 2;
  }
  std::string file;
  std::vector<std::string> rest;
  bool config_given = false;
  for (size_t i = 1; i < args.size(); ++i) {
    auto& a = args[i];
    if (a.rfind("--config-file=", 0) == 0) {
      config_given = true;
      if (!std::filesystem::exists(a.substr(14))) {
        std::cerr << "sluice routes: config file " << a.substr(14) << " does not exist\n";
        return 2;
      }
      rest.push_back(a);
    } else if (a.rfind("--", 0) == 0) {
      rest.push_back(a);
    } else if (file.empty()) {
      file = a;
    } else {
      std::cerr << "sluice routes check: one FILE only\n" << usage;
      return 2;
    }
  }
  if (file.empty()) {
    std::cerr << "sluice routes check: FILE is required\n" << usage;
    return 2;
  }
  if (!config_given && std::filesystem::exists("conf/sluice.conf"))
    rest.push_back("--config-file=conf/sluice.conf");
  std::ifstream in{file, std::ios::binary};
  if (!in) {
    std::cerr << "sluice routes: cannot read " << file << '\n';
    return 2;
  }
  std::ostringstream text;
  text << in.rdbuf();
  node_config cfg;
  register_message_types(cfg);
  if (auto err = cfg.parse(rest); err) {
    std::cerr << "sluice routes: invalid command line or config file: " << caf::to_string(err)
              << '\n';
    return 2;
  }
  if (auto err = cfg.finish(); !err.empty()) {
    std::cerr << "sluice routes: configuration error: " << err << '\n';
    return 2;
  }
  std::vector<std::string> sinks;
  for (auto& s : cfg.node.sinks)
    sinks.push_back(s.name);
  route_table table;
  auto err = compile_route_text(text.str(), sinks, table);
  if (err.empty()) // the node refuses hashing routes without a secret; so does the check
    err = check_route_secret(table, cfg.node.pii_secret_set);
  if (!err.empty()) {
    size_t line = 0, column = 0;
    if (gateway::error_position(err, line, column))
      std::cout << file << ':' << line << ':' << column << ": " << strip_position(err) << '\n';
    else
      std::cout << file << ": " << err << '\n';
    return 1;
  }
  std::cout << file << ": OK, " << table.routes.size() << " routes";
  for (size_t i = 0; i < table.routes.size(); ++i)
    std::cout << (i == 0 ? " (" : ", ") << table.routes[i].name
              << (i + 1 == table.routes.size() ? ")" : "");
  std::cout << (table.unmatched_sinks.empty() ? "; unmatched events go nowhere"
                                              : "; unmatched events have a route")
            << "; sinks: ";
  for (size_t i = 0; i < sinks.size(); ++i)
    std::cout << (i > 0 ? ", " : "") << sinks[i];
  std::cout << '\n';
  return 0;
}

} // namespace sluice
