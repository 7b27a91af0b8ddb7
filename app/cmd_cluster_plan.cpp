#include "app/cmd_cluster_plan.hpp"

#include <caf/config_value.hpp>
#include <caf/expected.hpp>

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

namespace sluice::cluster_cli {

const char* const usage
  = "Usage:\n"
    "  sluice cluster up [--nodes N] [--dir DIR] [--base-port P] [--config FILE] [--host ADDR]\n"
    "                    [--timeout 60s] [-- SERVE-OPTIONS...]\n"
    "      starts N local nodes (default 3) as background processes: node-i has the gateway\n"
    "      http://ADDR:(P+i), the cluster port ADDR:(P+100+i) (P default 8080, ADDR 127.0.0.1),\n"
    "      the data dir DIR/node-i (DIR default ./cluster), the config DIR/node-i.conf (FILE,\n"
    "      default conf/sluice.conf, plus the cluster's admin token), the log DIR/node-i.log and\n"
    "      the pid file DIR/node-i.pid. One admin token for all nodes is made on the first up,\n"
    "      printed once and kept in DIR/admin-token (mode 0600). Waits until every node is ready\n"
    "      and sees all N members up. SERVE-OPTIONS (e.g. --storage.durability=none) go to every\n"
    "      node. Refuses while a node of DIR runs; after `down` it reuses the data dirs.\n"
    "  sluice cluster status [--dir DIR]\n"
    "      every node of DIR: process, state as seen by the live nodes, ownership share,\n"
    "      forwarding backlog per peer, health. Exit 0 when all are up, 1 otherwise.\n"
    "  sluice cluster down [--dir DIR] [--timeout 30s]\n"
    "      SIGTERM to every node, SIGKILL to those still running after the timeout.\n";

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  uint64_t seconds = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc{} && p == text.data() + text.size())
    return std::chrono::milliseconds{seconds * 1000};
  auto value = caf::config_value::parse(caf::string_view{text.data(), text.size()});
  if (!value)
    return std::nullopt;
  auto span = caf::get_if<caf::timespan>(&*value);
  if (span == nullptr || span->count() < 0)
    return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*span);
}

std::string parse_args(const std::vector<std::string>& args, options& out) {
  if (args.empty())
    return "missing subcommand (up, status or down)";
  out.command = args.front();
  if (out.command != "up" && out.command != "status" && out.command != "down")
    return "unknown subcommand '" + out.command + "' (up, status or down)";
  std::set<std::string> given;
  for (size_t i = 1; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--") {
      if (out.command != "up")
        return "options after -- are for `cluster up` (they go to every node's sluice serve)";
      out.serve_args.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (a.rfind("--", 0) != 0)
      return "unexpected argument '" + a + "'";
    std::string name = a;
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    static const std::map<std::string, std::set<std::string>> allowed{
      {"--nodes", {"up"}},         {"--dir", {"up", "status", "down"}},
      {"--base-port", {"up"}},     {"--config", {"up"}},
      {"--host", {"up"}},          {"--timeout", {"up", "down"}}};
    auto it = allowed.find(name);
    if (it == allowed.end())
      return "unknown option '" + name + "'";
    if (it->second.count(out.command) == 0)
      return name + " is not an option of `cluster " + out.command + "`";
    if (!given.insert(name).second)
      return name + " is given twice";
    if (!value) {
      if (i + 1 >= args.size())
        return name + " needs a value";
      value = args[++i];
    }
    auto& v = *value;
    if (name == "--nodes" || name == "--base-port") {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec != std::errc{} || p != v.data() + v.size())
        return name + " must be a number (got '" + v + "')";
      if (name == "--nodes") {
        if (n < 1 || n > max_nodes)
          return fmt::format("--nodes must be between 1 and {} (got {})", max_nodes, n);
        out.nodes = n;
      } else {
        if (n < 1 || n > 65535)
          return fmt::format("--base-port must be between 1 and 65535 (got {})", n);
        out.base_port = static_cast<uint16_t>(n);
      }
    } else if (name == "--dir" || name == "--config" || name == "--host") {
      if (v.empty())
        return name + " must not be empty";
      (name == "--dir" ? out.dir : name == "--config" ? out.config : out.host) = v;
    } else if (name == "--timeout") {
      auto d = parse_duration(v);
      if (!d || d->count() == 0)
        return "--timeout must be a positive duration such as 30s, 500ms or 2min (got '" + v
               + "')";
      out.timeout = *d;
      out.timeout_given = true;
    }
  }
  if (!out.timeout_given)
    out.timeout = out.command == "up" ? std::chrono::seconds{60} : std::chrono::seconds{30};
  return {};
}

std::string node_plan::gateway_url() const {
  return fmt::format("http://{}:{}", host, gateway_port);
}

std::string node_plan::cluster_address() const {
  return fmt::format("{}:{}", host, cluster_port);
}

std::vector<node_plan> plan_nodes(const options& opts, std::string& error) {
  if (opts.nodes < 1 || opts.nodes > max_nodes) {
    error = fmt::format("--nodes must be between 1 and {}", max_nodes);
    return {};
  }
  auto last = static_cast<uint64_t>(opts.base_port) + cluster_port_offset + opts.nodes;
  if (last > 65535) {
    error = fmt::format("--base-port {} with {} nodes needs ports up to {}; the largest is 65535",
                        opts.base_port, opts.nodes, last);
    return {};
  }
  std::vector<node_plan> out;
  auto dir = opts.dir;
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  for (size_t i = 1; i <= opts.nodes; ++i) {
    node_plan n;
    n.name = fmt::format("node-{}", i);
    n.host = opts.host;
    n.gateway_port = static_cast<uint16_t>(opts.base_port + i);
    n.cluster_port = static_cast<uint16_t>(opts.base_port + cluster_port_offset + i);
    n.data_dir = dir + "/" + n.name;
    n.conf_file = n.data_dir + ".conf";
    n.log_file = n.data_dir + ".log";
    n.pid_file = n.data_dir + ".pid";
    out.push_back(std::move(n));
  }
  return out;
}

std::string seeds_value(const std::vector<node_plan>& nodes) {
  std::string out = "[";
  for (size_t i = 0; i < nodes.size(); ++i)
    out += (i ? ",\"" : "\"") + nodes[i].cluster_address() + "\"";
  return out + "]";
}

std::vector<std::string> serve_args(const node_plan& node, const std::vector<node_plan>& all,
                                    const std::vector<std::string>& extra) {
  std::vector<std::string> out{
    "serve",
    "--config-file=" + node.conf_file,
    "--sluice.node=" + node.name,
    "--sluice.data-dir=" + node.data_dir,
    "--gateway.host=" + node.host,
    fmt::format("--gateway.port={}", node.gateway_port),
    "--cluster.host=" + node.host,
    fmt::format("--cluster.port={}", node.cluster_port),
    "--cluster.seeds=" + seeds_value(all),
  };
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

std::string node_conf_text(const node_plan& node, const std::vector<std::string>& args,
                           const std::string& base_file, const std::string& base_text,
                           const std::string& token_section, const std::string& token_hash) {
  std::string out;
  out += fmt::format("; {} of a local cluster, written by `sluice cluster up` (rewritten on every "
                     "up: edit\n; {} or pass options after `--` instead). It is that file "
                     "unchanged plus the\n; cluster's admin token at the end; the per-node "
                     "options are on the command line,\n; which overrides this file:\n;  ",
                     node.name, base_file);
  for (auto& a : args)
    out += " " + a;
  out += "\n\n";
  out += base_text;
  if (!out.empty() && out.back() != '\n')
    out += '\n';
  out += fmt::format("\n; ---- added by sluice cluster up: one admin token for every node of the "
                     "cluster (the\n; token itself is in the cluster directory's admin-token "
                     "file, mode 0600) ----\n[tokens.{}]\nhash = \"{}\"\nscopes = [\"admin\"]\n",
                     token_section, token_hash);
  return out;
}

std::string manifest_text(const std::vector<node_plan>& nodes) {
  std::string out = "# sluice cluster up: name\tgateway\tcluster\tdata dir\tlog\tpid file\n";
  for (auto& n : nodes)
    out += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", n.name, n.gateway_url(), n.cluster_address(),
                       n.data_dir, n.log_file, n.pid_file);
  return out;
}

namespace {

/// Splits "host:port" (the port after the last colon); false when there is no valid port.
bool split_host_port(std::string_view text, std::string& host, uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return false;
  auto digits = text.substr(colon + 1);
  unsigned value = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc{} || p != digits.data() + digits.size() || value == 0
      || value > 65535)
    return false;
  host = std::string{text.substr(0, colon)};
  port = static_cast<uint16_t>(value);
  return true;
}

} // namespace

std::vector<node_plan> parse_manifest(std::string_view text, std::string& error) {
  std::vector<node_plan> out;
  size_t line_no = 0;
  while (!text.empty()) {
    auto eol = text.find('\n');
    auto line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    if (line.empty() || line.front() == '#')
      continue;
    std::vector<std::string> fields;
    for (size_t start = 0;;) {
      auto tab = line.find('\t', start);
      fields.emplace_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
      if (tab == std::string_view::npos)
        break;
      start = tab + 1;
    }
    node_plan n;
    std::string http_host;
    constexpr std::string_view scheme = "http://";
    if (fields.size() != 6 || fields[0].empty() || fields[1].rfind(scheme, 0) != 0
        || !split_host_port(std::string_view{fields[1]}.substr(scheme.size()), http_host,
                            n.gateway_port)
        || !split_host_port(fields[2], n.host, n.cluster_port)) {
      error = fmt::format("line {}: want 6 tab-separated fields: name, http://host:port, "
                          "host:port, data dir, log file, pid file",
                          line_no);
      return {};
    }
    n.name = fields[0];
    n.data_dir = fields[3];
    n.conf_file = n.data_dir + ".conf";
    n.log_file = fields[4];
    n.pid_file = fields[5];
    out.push_back(std::move(n));
  }
  return out;
}

char proc_stat_state(std::string_view stat_line) {
  auto paren = stat_line.rfind(')');
  if (paren == std::string_view::npos || paren + 2 >= stat_line.size()
      || stat_line[paren + 1] != ' ')
    return 0;
  return stat_line[paren + 2];
}

bool state_alive(char state) {
  return state != 0 && state != 'Z' && state != 'X' && state != 'x';
}

std::string parse_cluster_view(std::string_view json, cluster_view& out) {
  out = {};
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc); err)
    return std::string{"not JSON: "} + simdjson::error_message(err);
  auto str = [](simdjson::dom::element e, std::string_view key, std::string& to) {
    std::string_view s;
    if (e[key].get(s) == simdjson::SUCCESS)
      to = std::string{s};
  };
  simdjson::dom::array members;
  if (doc["members"].get(members) != simdjson::SUCCESS)
    return "the answer has no \"members\" array";
  bool enabled = false;
  if (doc["enabled"].get(enabled) == simdjson::SUCCESS)
    out.enabled = enabled;
  str(doc, "self", out.self);
  uint64_t version = 0;
  if (doc["ring_version"].get(version) == simdjson::SUCCESS)
    out.ring_version = version;
  for (auto m : members) {
    member_view v;
    str(m, "name", v.name);
    str(m, "address", v.address);
    str(m, "http", v.http);
    str(m, "state", v.state);
    bool self = false;
    if (m["self"].get(self) == simdjson::SUCCESS)
      v.self = self;
    double share = 0;
    if (m["share"].get(share) == simdjson::SUCCESS)
      v.share = share;
    else if (int64_t whole = 0; m["share"].get(whole) == simdjson::SUCCESS)
      v.share = static_cast<double>(whole);
    if (v.name.empty())
      return "a member has no \"name\"";
    out.members.push_back(std::move(v));
  }
  simdjson::dom::array forwarders;
  if (doc["forwarders"].get(forwarders) == simdjson::SUCCESS) {
    for (auto f : forwarders) {
      forwarder_view v;
      str(f, "peer", v.peer);
      str(f, "state", v.state);
      uint64_t n = 0;
      if (f["backlog_events"].get(n) == simdjson::SUCCESS)
        v.backlog_events = n;
      if (f["in_flight_events"].get(n) == simdjson::SUCCESS)
        v.in_flight_events = n;
      out.forwarders.push_back(std::move(v));
    }
  }
  return {};
}

status_report summarize(const std::vector<node_probe>& probes) {
  status_report report;
  report.all_up = !probes.empty();
  // Every live view's opinion of every member.
  // member → state → the live nodes that see it so
  std::map<std::string, std::map<std::string, std::vector<std::string>>> seen;
  for (auto& p : probes)
    if (p.view)
      for (auto& m : p.view->members)
        seen[m.name][m.state].push_back(p.node.name);
  for (auto& p : probes) {
    status_row row;
    row.name = p.node.name;
    row.process = p.alive ? fmt::format("pid {}", p.pid) : std::string{"not running"};
    if (!p.alive) {
      report.all_up = false;
      report.problems.push_back(p.node.name + " is not running (log: " + p.node.log_file + ")");
    }
    // Health: /readyz first, then whether /v1/cluster could be read.
    if (p.ready_status == 0) {
      row.health = "unreachable";
    } else if (p.ready_status == 200) {
      row.health = "ready";
    } else {
      row.health = p.ready_body.find("overloaded") != std::string::npos
                     ? "overloaded"
                     : fmt::format("not ready ({})", p.ready_status);
    }
    if (p.ready_status != 200) {
      report.all_up = false;
      if (p.alive)
        report.problems.push_back(p.node.name + " is " + row.health + " at "
                                  + p.node.gateway_url() + "/readyz");
    }
    if (p.ready_status != 0 && !p.view) {
      row.health += "; /v1/cluster: " + p.error;
      report.all_up = false;
      report.problems.push_back(p.node.name + ": /v1/cluster: " + p.error);
    }
    // State as the live nodes see it.
    auto it = seen.find(p.node.name);
    if (it == seen.end()) {
      row.state = "unknown";
      report.all_up = false;
      if (!seen.empty()) // else every node is unreachable, which the lines above say already
        report.problems.push_back("no live node lists " + p.node.name + " as a member");
    } else if (it->second.size() == 1) {
      row.state = it->second.begin()->first;
    } else {
      std::string text = "mixed (";
      bool first = true;
      for (auto& [state, by] : it->second) {
        text += (first ? "" : "; ") + state + ": ";
        first = false;
        for (size_t i = 0; i < by.size(); ++i)
          text += (i ? "," : "") + by[i];
      }
      row.state = text + ")";
    }
    if (it != seen.end() && (it->second.size() != 1 || it->second.count("up") == 0)) {
      report.all_up = false;
      report.problems.push_back(p.node.name + " is " + row.state + " in the live nodes' view");
    }
    // Share: what the node reports about itself, else what another view says.
    std::optional<double> share;
    if (p.view)
      for (auto& m : p.view->members)
        if (m.name == p.node.name)
          share = m.share;
    if (!share)
      for (auto& q : probes)
        if (q.view && !share)
          for (auto& m : q.view->members)
            if (m.name == p.node.name)
              share = m.share;
    row.share = share ? fmt::format("{:.1f}%", *share * 100) : std::string{"-"};
    if (p.view && !p.view->forwarders.empty()) {
      for (auto& f : p.view->forwarders)
        row.backlog += fmt::format("{}{}:{}", row.backlog.empty() ? "" : " ", f.peer,
                                   f.backlog_events);
    } else {
      row.backlog = "-";
    }
    report.rows.push_back(std::move(row));
  }
  // Members some live node knows that the manifest does not list (e.g. a node started by hand).
  for (auto& [name, states] : seen)
    if (std::none_of(probes.begin(), probes.end(),
                     [&](const node_probe& p) { return p.node.name == name; }))
      report.problems.push_back("the live nodes also list " + name
                                + ", which is not in this cluster directory");
  return report;
}

std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c)
    width[c] = header[c].size();
  for (auto& r : rows)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], r[c].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size() && c < width.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size())
        out += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    return out + "\n";
  };
  std::string out = line(header);
  for (auto& r : rows)
    out += line(r);
  return out;
}

} // namespace sluice::cluster_cli
