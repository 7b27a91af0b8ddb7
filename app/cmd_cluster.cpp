// `sluice cluster up|status|down`: start, inspect and stop a local cluster of `sluice serve`
// processes (docs/cluster.md, "Running a cluster"). The derived layout, the argument parsing and
// the status verdict are in app/cmd_cluster_plan.cpp; this file holds the processes (fork/exec,
// signals, /proc) and the HTTP probes (libcurl).

#include "app/cmd_cluster.hpp"

#include "app/client_token.hpp"
#include "app/cmd_cluster_plan.hpp"
#include "gateway/access.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace sluice {

namespace {

namespace fs = std::filesystem;
using namespace cluster_cli;
using clock_type = std::chrono::steady_clock;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
/// The [tokens.<name>] section every node of a `cluster up` gets (one admin token for all).
constexpr const char* token_section = "sluice-cluster-up";
constexpr const char* manifest_name = "cluster.tsv";
constexpr const char* token_name = "admin-token";
constexpr auto poll_interval = std::chrono::milliseconds{200};
/// After SIGKILL, how long `down` waits for the kernel to end a process.
constexpr auto kill_grace = std::chrono::seconds{5};

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::nullopt;
  return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// Writes `text` to `path` through a temporary file and a rename; false on any error.
bool write_file(const fs::path& path, const std::string& text, mode_t mode = 0644) {
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return false;
  size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  if (::close(fd) != 0)
    return false;
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return !ec;
}

/// The last `n` lines of a log file, indented, for error messages.
std::string log_tail(const std::string& path, size_t n = 12) {
  auto text = read_file(path);
  if (!text || text->empty())
    return "  (the log is empty)\n";
  std::vector<std::string> lines;
  std::istringstream in{*text};
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += "  | " + lines[i] + "\n";
  return out;
}

// ---- processes -------------------------------------------------------------------------------

/// The state letter of a process from /proc/<pid>/stat; 0 when there is no such process.
char process_state(pid_t pid) {
  auto stat = read_file(fmt::format("/proc/{}/stat", pid));
  return stat ? proc_stat_state(*stat) : 0;
}

/// True when `pid` is alive and is the `sluice serve` of `node` (its command line names the
/// node's generated config file), so that a stale pid file never makes us signal a stranger.
bool is_node_process(pid_t pid, const node_plan& node) {
  if (!state_alive(process_state(pid)))
    return false;
  auto cmdline = read_file(fmt::format("/proc/{}/cmdline", pid));
  if (!cmdline)
    return false;
  auto want = "--config-file=" + node.conf_file;
  bool serve = false;
  bool conf = false;
  for (size_t start = 0; start < cmdline->size();) {
    auto end = cmdline->find('\0', start);
    if (end == std::string::npos)
      end = cmdline->size();
    auto arg = std::string_view{*cmdline}.substr(start, end - start);
    serve = serve || arg == "serve";
    conf = conf || arg == want;
    start = end + 1;
  }
  return serve && conf;
}

std::optional<pid_t> read_pid(const std::string& pid_file) {
  auto text = read_file(pid_file);
  if (!text)
    return std::nullopt;
  try {
    auto pid = std::stol(*text);
    if (pid > 0)
      return static_cast<pid_t>(pid);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

/// The pid of `node` when its pid file names a live process that is this node.
std::optional<pid_t> running_pid(const node_plan& node) {
  auto pid = read_pid(node.pid_file);
  if (pid && is_node_process(*pid, node))
    return pid;
  return std::nullopt;
}

/// Starts `exe args...` detached: a new session (no terminal signals reach it), stdin from
/// /dev/null, stdout and stderr appended to the node's log. Returns the pid or sets `error`.
pid_t start_node(const std::string& exe, const node_plan& node,
                 const std::vector<std::string>& args, std::string& error) {
  int log = ::open(node.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    error = "cannot open " + node.log_file + ": " + std::strerror(errno);
    return -1;
  }
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string header = fmt::format("---- sluice cluster up {}: {}", stamp, exe);
  for (auto& a : args)
    header += " " + a;
  header += "\n";
  if (::write(log, header.data(), header.size()) < 0) {
    // The log still receives the node's output; a missing header is not worth failing for.
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = ::fork();
  if (pid < 0) {
    error = std::string{"fork failed: "} + std::strerror(errno);
    ::close(log);
    return -1;
  }
  if (pid == 0) {
    ::setsid();
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      if (devnull != 0)
        ::close(devnull);
    }
    ::dup2(log, 1);
    ::dup2(log, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(exe.c_str(), argv.data());
    auto msg = fmt::format("sluice cluster: cannot exec {}: {}\n", exe, std::strerror(errno));
    if (::write(2, msg.data(), msg.size()) < 0) {
    }
    ::_exit(127);
  }
  ::close(log);
  return pid;
}

/// The outcome of stopping one node.
struct stop_result {
  std::string name;
  std::string outcome;
  bool stopped = true; ///< false: still running after SIGKILL
};

/// SIGTERM to every running node of `nodes`, SIGKILL to those still alive after `timeout`; removes
/// the pid files of nodes that are gone. Processes started by another `sluice` are not our
/// children: their end shows as a missing /proc entry or a zombie (state Z) until init reaps them.
std::vector<stop_result> stop_nodes(const std::vector<node_plan>& nodes,
                                    std::chrono::milliseconds timeout) {
  struct target {
    const node_plan* node;
    pid_t pid;
    bool done = false;
    std::string outcome;
  };
  std::vector<stop_result> out;
  std::vector<target> targets;
  for (auto& n : nodes) {
    auto pid = read_pid(n.pid_file);
    if (!pid) {
      out.push_back(
        {n.name, fs::exists(n.pid_file) ? "unreadable pid file removed" : "not running"});
      std::error_code ec;
      fs::remove(n.pid_file, ec);
      continue;
    }
    if (!is_node_process(*pid, n)) {
      out.push_back({n.name, process_state(*pid) == 'Z'
                               ? fmt::format("pid {} had exited", *pid)
                               : fmt::format("not running (stale pid file for pid {} removed)",
                                             *pid)});
      std::error_code ec;
      fs::remove(n.pid_file, ec);
      continue;
    }
    ::kill(*pid, SIGTERM);
    targets.push_back(target{&n, *pid, false, {}});
  }
  auto start = clock_type::now();
  auto wait_until = [&](clock_type::time_point deadline, const char* how) {
    for (;;) {
      bool all = true;
      for (auto& t : targets) {
        if (t.done)
          continue;
        if (!state_alive(process_state(t.pid))) {
          t.done = true;
          auto s = std::chrono::duration<double>(clock_type::now() - start).count();
          t.outcome = fmt::format("pid {} {} after {:.1f} s", t.pid, how, s);
        } else {
          all = false;
        }
      }
      if (all || clock_type::now() >= deadline)
        return all;
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
  };
  if (!wait_until(start + timeout, "stopped (SIGTERM)")) {
    for (auto& t : targets)
      if (!t.done)
        ::kill(t.pid, SIGKILL);
    wait_until(clock_type::now() + kill_grace,
               fmt::format("killed (SIGKILL: no exit within {} ms of SIGTERM)", timeout.count())
                 .c_str());
  }
  for (auto& t : targets) {
    stop_result r{t.node->name, t.outcome, t.done};
    if (t.done) {
      std::error_code ec;
      fs::remove(t.node->pid_file, ec);
    } else {
      r.outcome = fmt::format("pid {} still running after SIGKILL", t.pid);
    }
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const stop_result& a, const stop_result& b) { return a.name < b.name; });
  return out;
}

/// True when something listens on host:port (a quick bind test, with SO_REUSEADDR so that
/// connections in TIME_WAIT from a previous run do not count). Non-IPv4 hosts are not checked.
bool port_in_use(const std::string& host, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    return false;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  bool used = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
              && errno == EADDRINUSE;
  ::close(fd);
  return used;
}

// ---- HTTP ------------------------------------------------------------------------------------

struct http_answer {
  long status = 0;    ///< 0: no answer (see error)
  std::string body;
  std::string error;
};

size_t collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

/// One GET with libcurl; `token` as the bearer when not empty.
http_answer http_get(const std::string& url, const std::string& token,
                     std::chrono::milliseconds timeout) {
  http_answer out;
  CURL* e = curl_easy_init();
  if (e == nullptr) {
    out.error = "curl_easy_init failed";
    return out;
  }
  curl_slist* headers = nullptr;
  if (!token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "sluice-cluster");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_NOPROXY, "*"); // a loopback cluster: never through a proxy
  auto code = curl_easy_perform(e);
  if (code == CURLE_OK)
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out.status);
  else
    out.error = curl_easy_strerror(code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(e);
  return out;
}

/// Probes one node: its process, /readyz and /v1/cluster.
node_probe probe(const node_plan& node, const std::string& token) {
  node_probe p;
  p.node = node;
  if (auto pid = read_pid(node.pid_file)) {
    p.pid_file = true;
    p.pid = *pid;
    p.alive = is_node_process(*pid, node);
  }
  auto ready = http_get(node.gateway_url() + "/readyz", token, std::chrono::seconds{3});
  p.ready_status = static_cast<int>(ready.status);
  p.ready_body = ready.status ? ready.body : ready.error;
  if (ready.status == 0) {
    p.error = ready.error;
    return p;
  }
  // The first request with a token costs the node one PBKDF2 verification (~0.3 s).
  auto answer = http_get(node.gateway_url() + "/v1/cluster", token, std::chrono::seconds{10});
  if (answer.status == 0) {
    p.error = answer.error;
  } else if (answer.status != 200) {
    p.error = fmt::format("HTTP {}: {}", answer.status, answer.body.substr(0, 200));
  } else {
    cluster_view v;
    if (auto err = parse_cluster_view(answer.body, v); !err.empty())
      p.error = err;
    else
      p.view = std::move(v);
  }
  return p;
}

// ---- the cluster directory -------------------------------------------------------------------

/// The nodes of DIR from its manifest; sets `error` when there is none or it is malformed.
std::vector<node_plan> load_manifest(const fs::path& dir, std::string& error) {
  auto path = dir / manifest_name;
  auto text = read_file(path);
  if (!text) {
    error = "no cluster in " + dir.string() + " (no " + manifest_name
            + "; `sluice cluster up --dir " + dir.string() + "` makes one)";
    return {};
  }
  auto nodes = parse_manifest(*text, error);
  if (!error.empty())
    error = path.string() + ": " + error;
  return nodes;
}

std::string token_of(const fs::path& dir, std::string& error) {
  auto file = dir / token_name;
  if (!fs::exists(file))
    return client_token(std::nullopt, error); // SLUICE_TOKEN, else anonymous
  return client_token(file.string(), error);
}

// ---- the commands ----------------------------------------------------------------------------

int cluster_up(options opts) {
  std::error_code ec;
  auto dir = fs::absolute(opts.dir, ec).lexically_normal();
  if (dir.has_filename() == false)
    dir = dir.parent_path();
  opts.dir = dir.string();
  std::string error;
  auto nodes = plan_nodes(opts, error);
  if (!error.empty()) {
    std::cerr << "sluice cluster up: " << error << '\n';
    return exit_usage;
  }
  auto base_text = read_file(opts.config);
  if (!base_text) {
    std::cerr << "sluice cluster up: cannot read the config file " << opts.config
              << " (--config; relative paths start at the working directory)\n";
    return exit_usage;
  }
  fs::create_directories(dir, ec);
  if (ec) {
    std::cerr << "sluice cluster up: cannot create " << dir.string() << ": " << ec.message()
              << '\n';
    return exit_failed;
  }
  // Refuse to start over a running cluster: every node the old manifest lists, and every node
  // the new layout would start.
  {
    std::string ignored;
    auto old = load_manifest(dir, ignored);
    old.insert(old.end(), nodes.begin(), nodes.end());
    std::vector<std::string> running;
    for (auto& n : old)
      if (auto pid = running_pid(n))
        running.push_back(fmt::format("{} (pid {})", n.name, *pid));
    std::sort(running.begin(), running.end());
    running.erase(std::unique(running.begin(), running.end()), running.end());
    if (!running.empty()) {
      std::string list;
      for (auto& r : running)
        list += (list.empty() ? "" : ", ") + r;
      std::cerr << "sluice cluster up: a cluster is already running in " << dir.string() << ": "
                << list << "\n  `sluice cluster status --dir " << dir.string()
                << "` shows it, `sluice cluster down --dir " << dir.string()
                << "` stops it\n";
      return exit_failed;
    }
    for (auto& n : old)
      fs::remove(n.pid_file, ec); // stale: their processes are gone
  }
  for (auto& n : nodes)
    for (auto [port, what] : {std::pair{n.gateway_port, "gateway"},
                              std::pair{n.cluster_port, "cluster port"}})
      if (port_in_use(n.host, port)) {
        std::cerr << fmt::format("sluice cluster up: port {} ({} of {}) is in use on {}; pick "
                                 "other ports with --base-port (node i uses P+i and P+{}+i)\n",
                                 port, what, n.name, n.host, cluster_port_offset);
        return exit_failed;
      }
  // One admin token for the whole cluster, made on the first up and reused afterwards.
  auto token_file = dir / token_name;
  std::string token;
  bool new_token = false;
  if (fs::exists(token_file)) {
    token = client_token(token_file.string(), error);
    if (!error.empty()) {
      std::cerr << "sluice cluster up: " << error << " (delete it to make a new token)\n";
      return exit_failed;
    }
  } else {
    token = gateway::generate_token();
    new_token = true;
    if (!write_file(token_file, token + "\n", 0600)) {
      std::cerr << "sluice cluster up: cannot write " << token_file.string() << '\n';
      return exit_failed;
    }
  }
  auto hash = gateway::make_kdf_hash(token);
  std::array<char, 4096> self_path{};
  auto len = ::readlink("/proc/self/exe", self_path.data(), self_path.size() - 1);
  if (len <= 0) {
    std::cerr << "sluice cluster up: cannot find this executable (/proc/self/exe)\n";
    return exit_failed;
  }
  std::string exe{self_path.data(), static_cast<size_t>(len)};
  if (!write_file(dir / manifest_name, manifest_text(nodes))) {
    std::cerr << "sluice cluster up: cannot write " << (dir / manifest_name).string() << '\n';
    return exit_failed;
  }
  std::vector<pid_t> pids;
  for (auto& n : nodes) {
    auto args = serve_args(n, nodes, opts.serve_args);
    fs::create_directories(n.data_dir, ec);
    if (ec || !write_file(n.conf_file, node_conf_text(n, args, opts.config, *base_text,
                                                      token_section, hash))) {
      std::cerr << "sluice cluster up: cannot write " << n.conf_file << " or create "
                << n.data_dir << '\n';
      stop_nodes(std::vector<node_plan>(nodes.begin(), nodes.begin() + pids.size()),
                 opts.timeout);
      return exit_failed;
    }
    auto pid = start_node(exe, n, args, error);
    if (pid < 0 || !write_file(n.pid_file, fmt::format("{}\n", pid))) {
      std::cerr << "sluice cluster up: cannot start " << n.name << ": "
                << (error.empty() ? "cannot write " + n.pid_file : error) << '\n';
      if (pid > 0)
        ::kill(pid, SIGKILL);
      stop_nodes(std::vector<node_plan>(nodes.begin(), nodes.begin() + pids.size()),
                 opts.timeout);
      return exit_failed;
    }
    pids.push_back(pid);
  }
  std::cout << "started " << nodes.size() << " nodes in " << dir.string()
            << "; waiting for them to be ready and to see each other (up to "
            << opts.timeout.count() / 1000.0 << " s)" << std::endl;
  // Wait: every node ready and every node's view lists all nodes up.
  auto fail = [&](const node_plan& n, const std::string& why) {
    std::cerr << "sluice cluster up: " << n.name << " " << why << "\n  its log " << n.log_file
              << " ends with:\n"
              << log_tail(n.log_file) << "stopping the cluster's nodes\n";
    for (auto& r : stop_nodes(nodes, std::chrono::seconds{30}))
      std::cerr << "  " << r.name << ": " << r.outcome << '\n';
    return exit_failed;
  };
  auto deadline = clock_type::now() + opts.timeout;
  std::vector<std::string> waiting_for(nodes.size());
  for (;;) {
    bool all = true;
    for (size_t i = 0; i < nodes.size(); ++i) {
      auto& n = nodes[i];
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        std::error_code ignored;
        fs::remove(n.pid_file, ignored);
        return fail(n, WIFEXITED(status)
                         ? fmt::format("exited with code {} before it was ready",
                                       WEXITSTATUS(status))
                         : fmt::format("was killed by signal {} before it was ready",
                                       WTERMSIG(status)));
      }
      auto ready = http_get(n.gateway_url() + "/readyz", {}, std::chrono::seconds{2});
      if (ready.status != 200) {
        waiting_for[i] = ready.status ? fmt::format("/readyz answers {}: {}", ready.status,
                                                    ready.body)
                                      : "its gateway " + n.gateway_url()
                                          + " does not answer yet (" + ready.error + ")";
        all = false;
        continue;
      }
      auto answer = http_get(n.gateway_url() + "/v1/cluster", token, std::chrono::seconds{10});
      if (answer.status == 404)
        return fail(n, "has no GET /v1/cluster (a build without cluster support?)");
      if (answer.status == 401 || answer.status == 403)
        return fail(n, fmt::format("refuses the cluster's admin token on /v1/cluster ({}): {}",
                                   answer.status, answer.body));
      cluster_view view;
      std::string err = answer.status != 200
                          ? fmt::format("/v1/cluster answers {}: {}", answer.status,
                                        answer.status ? answer.body : answer.error)
                          : parse_cluster_view(answer.body, view);
      if (!err.empty()) {
        waiting_for[i] = err;
        all = false;
        continue;
      }
      std::vector<std::string> missing;
      for (auto& other : nodes) {
        auto it = std::find_if(view.members.begin(), view.members.end(),
                               [&](const member_view& m) { return m.name == other.name; });
        if (it == view.members.end())
          missing.push_back(other.name + " unknown");
        else if (it->state != "up")
          missing.push_back(other.name + " " + it->state);
      }
      if (!missing.empty()) {
        std::string list;
        for (auto& m : missing)
          list += (list.empty() ? "" : ", ") + m;
        waiting_for[i] = "its view of the cluster: " + list;
        all = false;
        continue;
      }
      waiting_for[i].clear();
    }
    if (all)
      break;
    if (clock_type::now() >= deadline) {
      for (size_t i = 0; i < nodes.size(); ++i)
        if (!waiting_for[i].empty())
          return fail(nodes[i], fmt::format("is not ready after {} ms: {}", opts.timeout.count(),
                                            waiting_for[i]));
    }
    std::this_thread::sleep_for(poll_interval);
  }
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < nodes.size(); ++i)
    rows.push_back({nodes[i].name, fmt::format("{}", pids[i]), nodes[i].gateway_url(),
                    nodes[i].cluster_address(), nodes[i].data_dir, nodes[i].log_file});
  std::cout << "cluster up: " << nodes.size() << " nodes, all members up\n"
            << format_table({"node", "pid", "gateway", "cluster", "data dir", "log"}, rows);
  if (new_token)
    std::cout << "admin token (shown once; kept in " << token_file.string()
              << ", mode 0600): " << token << '\n';
  else
    std::cout << "admin token: reused, in " << token_file.string() << '\n';
  std::cout << "  export SLUICE_TOKEN=$(cat " << token_file.string() << ")\n"
            << "  sluice cluster status --dir " << dir.string() << "    sluice cluster down --dir "
            << dir.string() << '\n';
  return exit_ok;
}

int cluster_status(const options& opts) {
  fs::path dir = opts.dir;
  std::string error;
  auto nodes = load_manifest(dir, error);
  if (!error.empty()) {
    std::cerr << "sluice cluster status: " << error << '\n';
    return exit_failed;
  }
  auto token = token_of(dir, error);
  if (!error.empty()) {
    std::cerr << "sluice cluster status: " << error << '\n';
    return exit_failed;
  }
  std::vector<node_probe> probes;
  for (auto& n : nodes)
    probes.push_back(probe(n, token));
  auto report = summarize(probes);
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < report.rows.size(); ++i) {
    auto& r = report.rows[i];
    rows.push_back({r.name, r.process, nodes[i].gateway_url(), r.state, r.share, r.backlog,
                    r.health});
  }
  std::cout << format_table(
    {"node", "process", "gateway", "state", "share", "forward backlog", "health"}, rows);
  for (auto& p : probes)
    if (p.view) {
      std::cout << "ring version " << p.view->ring_version << " (as seen by " << p.node.name
                << ")\n";
      break;
    }
  if (report.all_up) {
    std::cout << "all " << nodes.size() << " nodes up\n";
    return exit_ok;
  }
  for (auto& problem : report.problems)
    std::cout << "problem: " << problem << '\n';
  return exit_failed;
}

int cluster_down(const options& opts) {
  fs::path dir = opts.dir;
  std::string error;
  auto nodes = load_manifest(dir, error);
  if (!error.empty()) {
    std::cerr << "sluice cluster down: " << error << '\n';
    return exit_failed;
  }
  auto results = stop_nodes(nodes, opts.timeout);
  bool all = true;
  for (auto& r : results) {
    std::cout << r.name << ": " << r.outcome << '\n';
    all = all && r.stopped;
  }
  std::cout << (all ? "cluster down; data dirs kept in " + dir.string()
                        + " (`sluice cluster up` reuses them)"
                    : std::string{"some nodes could not be stopped"})
            << '\n';
  return all ? exit_ok : exit_failed;
}

} // namespace

int run_cluster_command(int argc, char** argv) {
  std::vector<std::string> args(argv + 2, argv + argc);
  for (auto& a : args)
    if (a == "--help" || a == "-h" || a == "help") {
      std::cout << usage;
      return exit_ok;
    }
    else if (a == "--")
      break;
  options opts;
  if (auto err = parse_args(args, opts); !err.empty()) {
    std::cerr << "sluice cluster: " << err << '\n' << usage;
    return exit_usage;
  }
  if (opts.command == "up")
    return cluster_up(opts);
  if (opts.command == "status")
    return cluster_status(opts);
  return cluster_down(opts);
}

} // namespace sluice
