// `sluice dlq list|replay`: the dead-letter admin API of a running node, from the command line.

#include "app/cmd_dlq.hpp"

#include "app/config.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include "app/client_token.hpp"

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace sluice {

namespace {

namespace http = boost::beast::http;
namespace pt = boost::property_tree;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
/// HTTP/1.1 in Beast's version encoding.
constexpr unsigned http_version = 11;

constexpr const char* usage =
  "usage: sluice dlq list   [--url=http://HOST:PORT | --config-file=FILE] [--reason=TEXT] "
  "[--limit=N]\n"
  "       sluice dlq replay [--url=http://HOST:PORT | --config-file=FILE] "
  "(--ids=1,2,… | --reason=TEXT | --all)\n"
  "The node is reached at --url, or at gateway.host and <data-dir>/gateway.port of the config "
  "file (default conf: http://127.0.0.1:8080). A node with access control needs an admin token:\n"
  "--token-file=FILE, else the SLUICE_TOKEN environment variable.\n";

struct endpoint_address {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  /// Bearer token sent with every request (empty: anonymous).
  std::string token;
};

struct options {
  std::string command;
  std::optional<std::string> url;
  std::optional<std::string> config_file;
  std::optional<std::string> reason;
  std::optional<std::string> ids;
  std::optional<std::string> limit;
  std::optional<std::string> token_file;
  bool all = false;
};

/// Parses `argv[2..]`; returns an error text, empty on success.
std::string parse_options(int argc, char** argv, options& out) {
  if (argc < 3)
    return "missing subcommand (list or replay)";
  out.command = argv[2];
  if (out.command != "list" && out.command != "replay")
    return "unknown subcommand '" + out.command + "' (list or replay)";
  for (int i = 3; i < argc; ++i) {
    std::string arg = argv[i];
    auto value_of = [&](std::string_view key) -> std::optional<std::string> {
      if (arg.rfind(key, 0) == 0)
        return arg.substr(key.size());
      return std::nullopt;
    };
    if (auto v = value_of("--url="))
      out.url = *v;
    else if (auto v = value_of("--config-file="))
      out.config_file = *v;
    else if (auto v = value_of("--reason="))
      out.reason = *v;
    else if (auto v = value_of("--ids="))
      out.ids = *v;
    else if (auto v = value_of("--limit="))
      out.limit = *v;
    else if (auto v = value_of("--token-file="))
      out.token_file = *v;
    else if (arg == "--all")
      out.all = true;
    else
      return "unknown option '" + arg + "'";
  }
  if (out.url && out.config_file)
    return "give --url or --config-file, not both";
  if (out.command == "replay") {
    int given = (out.ids ? 1 : 0) + (out.reason ? 1 : 0) + (out.all ? 1 : 0);
    if (given != 1)
      return "replay needs exactly one of --ids, --reason, --all";
  } else if (out.ids || out.all) {
    return "--ids and --all are for replay";
  }
  return {};
}

/// Finds the node: `http://HOST:PORT` from --url, or the config file's host and port file.
std::string resolve_address(const options& opts, endpoint_address& out) {
  if (opts.url) {
    constexpr std::string_view scheme = "http://";
    std::string_view rest = *opts.url;
    if (rest.substr(0, scheme.size()) != scheme)
      return "--url must start with http:// (got '" + *opts.url + "')";
    rest.remove_prefix(scheme.size());
    if (auto slash = rest.find('/'); slash != std::string_view::npos)
      rest = rest.substr(0, slash);
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == rest.size())
      return "--url must name a port: http://HOST:PORT (got '" + *opts.url + "')";
    out.host = std::string{rest.substr(0, colon)};
    out.port = std::string{rest.substr(colon + 1)};
    return {};
  }
  if (!opts.config_file)
    return {};
  if (!std::filesystem::exists(*opts.config_file))
    return "config file " + *opts.config_file + " does not exist";
  node_config cfg;
  std::string arg = "--config-file=" + *opts.config_file;
  if (auto err = cfg.parse(std::vector<std::string>{arg}); err)
    return "cannot read " + *opts.config_file + ": " + caf::to_string(err);
  out.host = cfg.gateway_host;
  auto port_file = std::filesystem::path{cfg.data_dir} / "gateway.port";
  std::ifstream in{port_file};
  std::string port;
  if (!(in >> port))
    return "cannot read " + port_file.string() + " (is the node running with this config?)";
  out.port = port;
  return {};
}

struct http_result {
  unsigned status = 0;
  std::string body;
};

/// One request on a fresh connection; throws boost::system::system_error when unreachable.
http_result call(const endpoint_address& addr, http::verb verb, const std::string& target,
                 const std::string& body) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver{io};
  boost::asio::ip::tcp::socket socket{io};
  boost::asio::connect(socket, resolver.resolve(addr.host, addr.port));
  http::request<http::string_body> req{verb, target, http_version};
  req.set(http::field::host, addr.host);
  req.set(http::field::user_agent, "sluice-dlq");
  if (!addr.token.empty())
    req.set(http::field::authorization, "Bearer " + addr.token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  http::write(socket, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  boost::system::error_code ignored;
  socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  return {res.result_int(), res.body()};
}

/// Percent-encodes a query parameter value.
std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

/// `text` as a JSON string literal (UTF-8 passes through; quotes, backslashes and control
/// characters are escaped).
std::string json_string(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

int list(const endpoint_address& addr, const options& opts) {
  std::string after = "0";
  size_t shown = 0;
  std::string total = "0";
  std::cout << "id\tat\torigin\treplayed\tevent\treason\n";
  for (;;) {
    std::string target = "/v1/admin/dead-letters?after=" + after;
    if (opts.limit)
      target += "&limit=" + url_encode(*opts.limit);
    if (opts.reason)
      target += "&reason=" + url_encode(*opts.reason);
    auto res = call(addr, http::verb::get, target, {});
    if (res.status != 200) {
      std::cerr << "sluice dlq: the node answered " << res.status << ": " << res.body << '\n';
      return exit_failed;
    }
    pt::ptree page;
    std::istringstream in{res.body};
    pt::read_json(in, page);
    for (auto& [key, item] : page.get_child("items")) {
      std::cout << item.get<std::string>("id") << '\t' << item.get<std::string>("at") << '\t'
                << item.get<std::string>("origin") << '\t' << item.get<std::string>("replayed")
                << '\t' << item.get<std::string>("event.id", "") << '\t'
                << item.get<std::string>("reason") << '\n';
      ++shown;
    }
    total = page.get<std::string>("total");
    auto next = page.get<std::string>("next", "null");
    if (next == "null" || next.empty())
      break;
    after = next;
  }
  std::cout << shown << " of " << total << " dead letters\n";
  return exit_ok;
}

int replay(const endpoint_address& addr, const options& opts) {
  std::string body;
  if (opts.all) {
    body = "{\"all\":true}";
  } else if (opts.reason) {
    body = "{\"reason\":" + json_string(*opts.reason) + "}";
  } else {
    body = "{\"ids\":[";
    std::istringstream in{*opts.ids};
    bool first = true;
    for (std::string id; std::getline(in, id, ',');) {
      if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
        std::cerr << "sluice dlq: --ids must be dead-letter ids separated by commas (got '"
                  << *opts.ids << "')\n";
        return exit_usage;
      }
      body += (first ? "" : ",") + id;
      first = false;
    }
    body += "]}";
  }
  auto res = call(addr, http::verb::post, "/v1/admin/dead-letters/replay", body);
  if (res.status != 200) {
    std::cerr << "sluice dlq: the node answered " << res.status << ": " << res.body << '\n';
    return exit_failed;
  }
  std::cout << res.body << '\n';
  return exit_ok;
}

} // namespace

int run_dlq_command(int argc, char** argv) {
  options opts;
  if (auto err = parse_options(argc, argv, opts); !err.empty()) {
    std::cerr << "sluice dlq: " << err << '\n' << usage;
    return exit_usage;
  }
  endpoint_address addr;
  if (auto err = resolve_address(opts, addr); !err.empty()) {
    std::cerr << "sluice dlq: " << err << '\n';
    return exit_usage;
  }
  std::string token_error;
  addr.token = client_token(opts.token_file, token_error);
  if (!token_error.empty()) {
    std::cerr << "sluice dlq: " << token_error << '\n';
    return exit_usage;
  }
  try {
    return opts.command == "list" ? list(addr, opts) : replay(addr, opts);
  } catch (const boost::system::system_error& e) {
    std::cerr << "sluice dlq: cannot reach the node at http://" << addr.host << ':' << addr.port
              << ": " << e.what() << '\n';
  } catch (const pt::ptree_error& e) {
    std::cerr << "sluice dlq: the node's answer is not what this CLI expects: " << e.what()
              << '\n';
  }
  return exit_failed;
}

} // namespace sluice
