// The `sluice` executable: `serve` runs a node, `check` validates a config file.

#include "actors/metrics.hpp"
#include "actors/node.hpp"
#include "app/cmd_cluster.hpp"
#include "app/cmd_dlq.hpp"
#include "app/cmd_replay.hpp"
#include "app/cmd_lake.hpp"
#include "app/cmd_routes.hpp"
#include "app/cmd_token.hpp"
#include "app/config.hpp"
#include "actors/log.hpp"
#include "gateway/access.hpp"
#include "gateway/actor_bridge.hpp"
#include "gateway/auth_api.hpp"
#include "gateway/console_api.hpp"
#include "gateway/console_live.hpp"
#include "gateway/quality.hpp"
#include "gateway/server.hpp"
#include "messages/type_ids.hpp"
#include "persistence/lmdb.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <pthread.h>

namespace sluice {
namespace {

void write_port_file(const std::string& data_dir, uint16_t port) {
  auto path = std::filesystem::path{data_dir} / "gateway.port";
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out{tmp};
    out << port << '\n';
  }
  std::filesystem::rename(tmp, path);
}

int serve(node_config& cfg) {
  // Block the stop signals before any thread starts; every thread inherits the mask and the main
  // thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP); // reloads the title catalog
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) {
    log_json("error", "cannot create data dir", {{"path", cfg.data_dir}, {"reason", ec.message()}});
    return 1;
  }
  metrics_registry metrics;
  // Access control (docs/access.md): tokens, console sessions, rate limits, the audit log.
  std::shared_ptr<gateway::access_control> access;
  try {
    std::string shown_once;
    if (cfg.auth_bootstrap_token)
      if (auto err = gateway::ensure_bootstrap_token(cfg.access, cfg.data_dir, shown_once);
          !err.empty()) {
        log_json("error", "cannot set up the admin token", {{"reason", err}});
        return 1;
      }
    if (!shown_once.empty())
      std::cerr << "admin token (shown once): " << shown_once << "\n"
                << "  (only its hash is kept, in " << cfg.data_dir
                << "/admin-token.hash; delete that file to make a new one)" << std::endl;
    cfg.access.secure_cookie = !cfg.gateway.tls_cert.empty();
    auto audit = std::make_shared<gateway::audit_log>(cfg.data_dir + "/audit.log");
    access = std::make_shared<gateway::access_control>(cfg.access, metrics, audit);
    cfg.gateway.access = access;
  } catch (const std::exception& e) {
    log_json("error", "cannot set up access control", {{"reason", e.what()}});
    return 1;
  }
  std::unique_ptr<persistence::environment> env;
  try {
    env = std::make_unique<persistence::environment>(cfg.storage);
  } catch (const std::exception& e) {
    log_json("error", "cannot open storage", {{"path", cfg.storage.path}, {"reason", e.what()}});
    return 1;
  }
  int rc = 0;
  {
    caf::actor_system sys{cfg};
    if (cfg.node.cluster.enabled && cfg.gateway.port != 0)
      cfg.node.http_url = std::string{cfg.gateway.tls_cert.empty() ? "http" : "https"} + "://"
                          + cfg.gateway.host + ':' + std::to_string(cfg.gateway.port);
    auto nodes = spawn_node(sys, *env, metrics, cfg.node);
    caf::scoped_actor self{sys};
    auto stop_actors = [&] {
      self->send_exit(nodes.log, caf::exit_reason::user_shutdown);
      for (auto& s : nodes.device_shards)
        self->send_exit(s, caf::exit_reason::user_shutdown);
      for (auto& s : nodes.profile_shards)
        self->send_exit(s, caf::exit_reason::user_shutdown);
      for (auto& s : nodes.sinks)
        self->send_exit(s, caf::exit_reason::user_shutdown);
      self->send_exit(nodes.dead_letters, caf::exit_reason::user_shutdown);
      self->send_exit(nodes.aggregator, caf::exit_reason::user_shutdown);
      if (nodes.cluster)
        self->send_exit(nodes.cluster, caf::exit_reason::user_shutdown);
    };
    if (nodes.cluster) {
      // Peers reach this node's cluster actor here; dispatching waits until the cluster settled,
      // so the shards apply the keys the cluster gives this node, not every key.
      auto published = sys.middleman().publish(nodes.cluster, cfg.node.cluster.port,
                                               cfg.node.cluster.host.c_str(), true);
      if (!published) {
        log_json("error", "cannot publish the cluster actor",
                 {{"option", "cluster.port"},
                  {"host", cfg.node.cluster.host},
                  {"port", std::to_string(cfg.node.cluster.port)},
                  {"reason", sys.render(published.error())}});
        self->send_exit(nodes.cluster, caf::exit_reason::user_shutdown);
        self->send_exit(nodes.log, caf::exit_reason::user_shutdown);
        return 1;
      }
      log_json("info", "cluster port published",
               {{"address", cfg.node.cluster.host + ':' + std::to_string(*published)}});
      self->request(nodes.cluster, caf::infinite, settle_atom_v).receive([](caf::ok_atom) {}, [](caf::error&) {});
    }
    uint64_t replayed = 0;
    self->request(nodes.log, caf::infinite, replay_atom_v)
      .receive([&](uint64_t n) { replayed = n; },
               [&](caf::error& err) {
                 log_json("error", "replay failed", {{"reason", caf::to_string(err)}});
               });
    log_json("info", "log replayed", {{"events", std::to_string(replayed)}});
    gateway::node_status status;
    gateway::actor_ingest_port port{nodes.log, nodes.gate, nodes.dead_letters};
    auto endpoints = gateway::node_endpoints(nodes, metrics, status);
    for (auto& ep : gateway::detail::schema_endpoints(cfg.quality)) // GET /v1/schemas[/{type}]
      endpoints.push_back(std::move(ep));
    // The admin console: its static files and its live feed (docs/console.md).
    auto console = std::make_shared<gateway::console_files>();
    for (auto& warning : console->load(cfg.console_dir))
      log_json("warning", "console", {{"reason", warning}});
    for (auto& ep : gateway::console_endpoints(console))
      endpoints.push_back(std::move(ep));
    auto live = std::make_shared<gateway::console_live>(
      metrics,
      gateway::console_node_info{
        cfg.node_name, SLUICE_VERSION,
        std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count(),
        [&status, gate = nodes.gate] {
          if (!status.ready.load())
            return std::string{"starting"};
          return gate && !gate->open.load() ? std::string{"overloaded"} : std::string{"ready"};
        },
        nodes.cluster_status},
      std::chrono::milliseconds{std::max<uint32_t>(1, cfg.gateway.live_interval_ms) / 2});
    cfg.gateway.live_snapshot = [live] { return live->snapshot(); };
    for (auto& ep : gateway::access_endpoints(access, endpoints)) // login, audit, endpoint list
      endpoints.push_back(std::move(ep));
    gateway::server server{cfg.gateway, port, metrics, std::move(endpoints)};
    uint16_t bound = 0;
    try {
      bound = server.start();
    } catch (const std::exception& e) {
      log_json("error", "cannot listen",
               {{"host", cfg.gateway.host},
                {"port", std::to_string(cfg.gateway.port)},
                {"reason", e.what()}});
      stop_actors();
      return 1;
    }
    write_port_file(cfg.data_dir, bound);
    live->set_address(cfg.gateway.host + ':' + std::to_string(bound));
    if (nodes.cluster) // the advertised gateway URL, now that the port is bound
      self->send(nodes.cluster, hello_atom_v,
                 std::string{cfg.gateway.tls_cert.empty() ? "http" : "https"} + "://"
                   + cfg.gateway.host + ':' + std::to_string(bound));
    status.ready = true;
    std::cout << "listening on " << cfg.gateway.host << ':' << bound << std::endl;
    int sig = 0;
    for (sigwait(&stop_signals, &sig); sig == SIGHUP; sigwait(&stop_signals, &sig)) {
      if (auto err = reload_catalog(*nodes.catalog, metrics); !err.empty())
        log_json("error", "title catalog reload failed, keeping the current one",
                 {{"reason", err}});
      else
        log_json("info", "title catalog reloaded",
                 {{"titles", std::to_string(nodes.catalog->get()->size())}});
    }
    log_json("info", "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    status.ready = false;
    server.stop_accepting();
    // Commit what is in flight (its acks go out), then let every consumer make its offset durable.
    self->request(nodes.log, caf::infinite, drain_atom_v)
      .receive([](caf::ok_atom) {},
               [&](caf::error& err) {
                 log_json("error", "drain failed", {{"reason", caf::to_string(err)}});
                 rc = 1;
               });
    server.stop();
    stop_actors();
  }
  env.reset();
  log_json("info", "stopped", {});
  return rc;
}

} // namespace
} // namespace sluice

int main(int argc, char** argv) {
  using namespace sluice;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args.front() == "lake")
    return run_lake_command(argc, argv);
  if (!args.empty() && args.front() == "dlq")
    return run_dlq_command(argc, argv);
  if (!args.empty() && args.front() == "routes")
    return run_routes_command(argc, argv);
  if (!args.empty() && args.front() == "replay")
    return run_replay_command(argc, argv);
  if (!args.empty() && args.front() == "token")
    return run_token_command(argc, argv);
  if (!args.empty() && args.front() == "cluster")
    return run_cluster_command(argc, argv);
  auto wants_help = [&] {
    for (auto& a : args)
      if (a == "--help" || a == "-h" || a == "help")
        return true;
    return false;
  };
  if (args.empty() || wants_help()) {
    node_config cfg;
    std::cout << cfg.help();
    return args.empty() ? 2 : 0;
  }
  auto command = args.front();
  args.erase(args.begin());
  if (command != "serve" && command != "check") {
    std::cerr << "sluice: unknown command '" << command
              << "'; use serve, check, lake, dlq, replay or cluster (sluice --help)\n";
    return 2;
  }
  for (auto& a : args) {
    if (a.rfind("--config-file=", 0) == 0) {
      auto path = a.substr(14);
      if (!std::filesystem::exists(path)) {
        std::cerr << "sluice: config file " << path << " does not exist\n";
        return 2;
      }
    }
  }
  node_config cfg;
  register_message_types(cfg);
  if (auto err = cfg.parse(args); err) {
    std::cerr << "sluice: invalid command line or config file: " << caf::to_string(err) << '\n';
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  if (auto err = cfg.finish(); !err.empty()) {
    std::cerr << "sluice: configuration error: " << err << '\n';
    return 2;
  }
  if (command == "check") {
    std::cout << "configuration ok: " << cfg.node.sinks.size() << " sinks, "
              << cfg.node.routes.routes.size() << " routes\n";
    return 0;
  }
  return serve(cfg);
}
