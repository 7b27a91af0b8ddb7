#pragma once

// The pure part of `sluice cluster up|status|down` (app/cmd_cluster.cpp): argument parsing, the
// derived node layout (names, ports, directories), the cluster manifest, the `GET /v1/cluster`
// answer and the status verdict. No processes, sockets or clocks here, so that
// tests/unit/app_cluster_cli_test.cpp checks all of it.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cluster_cli {

/// Ports: node i (1-based) gets gateway port base + i and cluster port base + cluster_port_offset
/// + i; so at most max_nodes nodes keep the two ranges apart (base 8080: 8081.. and 8181..).
inline constexpr uint16_t default_base_port = 8080;
inline constexpr uint16_t cluster_port_offset = 100;
inline constexpr size_t max_nodes = 99;
inline constexpr size_t default_nodes = 3;

/// What `sluice cluster ...` was asked to do.
struct options {
  std::string command;                 ///< up, status or down
  size_t nodes = default_nodes;        ///< up: how many nodes
  std::string dir = "cluster";         ///< the cluster's directory (node data, confs, logs, pids)
  uint16_t base_port = default_base_port;
  std::string config = "conf/sluice.conf"; ///< up: the config every node starts from
  std::string host = "127.0.0.1";      ///< up: the loopback address nodes bind and advertise
  /// up: how long to wait for every node to be ready and see all members up;
  /// down: how long to wait after SIGTERM before SIGKILL.
  std::chrono::milliseconds timeout{0};
  bool timeout_given = false;
  /// up: options after `--`, appended to every node's `sluice serve` command line.
  std::vector<std::string> serve_args;
};

/// Usage text of `sluice cluster`.
extern const char* const usage;

/// Parses the arguments after `cluster` (`--name VALUE` and `--name=VALUE` both work). Returns an
/// error text naming the argument, empty on success. Fills in the command's default timeout (up:
/// 60 s, down: 30 s) when none is given.
std::string parse_args(const std::vector<std::string>& args, options& out);

/// A duration such as `30s`, `500ms`, `2min` (CAF's timespan syntax) or a plain number of
/// seconds; nullopt when it is neither or negative.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// One node of a local cluster and where its files are.
struct node_plan {
  std::string name;         ///< node-<i>
  uint16_t gateway_port = 0;
  uint16_t cluster_port = 0;
  std::string host;         ///< address of the gateway and of the cluster port
  std::string data_dir;     ///< <dir>/node-<i>
  std::string conf_file;    ///< <dir>/node-<i>.conf (generated)
  std::string log_file;     ///< <dir>/node-<i>.log (stdout and stderr, appended)
  std::string pid_file;     ///< <dir>/node-<i>.pid

  std::string gateway_url() const;     ///< http://host:gateway_port
  std::string cluster_address() const; ///< host:cluster_port
};

/// The nodes `up` starts: names, ports and paths derived from `opts` (dir as given, made absolute
/// by the caller if wanted). Sets `error` (and returns empty) when the ports do not fit in 1..65535
/// or the node count is outside 1..max_nodes.
std::vector<node_plan> plan_nodes(const options& opts, std::string& error);

/// `["h:p1","h:p2",...]`: every node's cluster address, the value of `cluster.seeds`.
std::string seeds_value(const std::vector<node_plan>& nodes);

/// The `sluice serve` arguments (without the program name) of `node`: the generated config file
/// and the per-node options on the command line (which override the file), then `extra`.
std::vector<std::string> serve_args(const node_plan& node, const std::vector<node_plan>& all,
                                    const std::vector<std::string>& extra);

/// The text of `<dir>/node-<i>.conf`: a header explaining how it was made and the command line
/// that uses it, `base_text` (the --config file) unchanged, then the cluster's admin token section
/// (`token_hash` from `sluice token hash`) named `token_section`.
std::string node_conf_text(const node_plan& node, const std::vector<std::string>& args,
                           const std::string& base_file, const std::string& base_text,
                           const std::string& token_section, const std::string& token_hash);

/// The manifest `<dir>/cluster.tsv` that `status` and `down` read: one node per line, tab
/// separated (name, gateway URL, cluster address, data dir, log file, pid file), after a `#`
/// header line.
std::string manifest_text(const std::vector<node_plan>& nodes);
/// Parses a manifest; sets `error` naming the line when a line is malformed.
std::vector<node_plan> parse_manifest(std::string_view text, std::string& error);

/// The state letter of a `/proc/<pid>/stat` line (R, S, D, Z, X, ...), 0 when malformed. The
/// command name in parentheses may itself hold spaces and parentheses: the state follows the last
/// `)`.
char proc_stat_state(std::string_view stat_line);
/// Running (or sleeping): a known state that is neither zombie (Z) nor dead (X, x).
bool state_alive(char state);

/// The parts of `GET /v1/cluster` that status shows (docs/cluster.md).
struct member_view {
  std::string name;
  std::string address;
  std::string http;
  std::string state; ///< up, down or joining
  bool self = false;
  double share = 0;
};
struct forwarder_view {
  std::string peer;
  std::string state;
  uint64_t backlog_events = 0;
  uint64_t in_flight_events = 0;
};
struct cluster_view {
  bool enabled = false;
  std::string self;
  uint64_t ring_version = 0;
  std::vector<member_view> members;
  std::vector<forwarder_view> forwarders;
};
/// Parses the JSON answer of `GET /v1/cluster`; returns an error text (empty on success).
std::string parse_cluster_view(std::string_view json, cluster_view& out);

/// What status learned about one node of the manifest.
struct node_probe {
  node_plan node;
  bool pid_file = false;    ///< a pid file exists
  int64_t pid = 0;
  bool alive = false;       ///< that pid runs (not a zombie)
  int ready_status = 0;     ///< HTTP status of /readyz; 0 unreachable
  std::string ready_body;   ///< its body (names the reason when not ready)
  std::optional<cluster_view> view; ///< its /v1/cluster answer
  std::string error;        ///< why there is no view (unreachable, HTTP status, bad JSON)
};

/// One line of the status table.
struct status_row {
  std::string name;
  std::string process;      ///< "pid 123" or "not running"
  std::string state;        ///< as seen by the live nodes: up, down, joining, mixed (...), unknown
  std::string share;        ///< "33.4%" or "-"
  std::string backlog;      ///< "node-2:0 node-3:17" (this node's forwarders) or "-"
  std::string health;       ///< ready, overloaded, not ready, unreachable: ...
};
struct status_report {
  std::vector<status_row> rows;
  bool all_up = false;      ///< every node alive, ready, and up in every live node's view
  std::vector<std::string> problems; ///< why not, one sentence each
};
/// Combines the probes into the table and the verdict (exit 0 only when `all_up`).
status_report summarize(const std::vector<node_probe>& probes);

/// Formats rows as a left-aligned table with the given header.
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

} // namespace sluice::cluster_cli
