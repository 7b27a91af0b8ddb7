// `sluice cluster up|status|down` without processes: argument parsing, the derived ports and
// paths, the serve command line, the manifest, /proc/<pid>/stat states, the /v1/cluster answer
// and the status verdict (app/cmd_cluster_plan.hpp).

#include "app/cmd_cluster_plan.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sluice::cluster_cli;

namespace {

std::string parse(std::vector<std::string> args, options& out) {
  out = {};
  return parse_args(args, out);
}

node_probe live_probe(const node_plan& n, const std::string& view_json) {
  node_probe p;
  p.node = n;
  p.pid_file = true;
  p.pid = 100;
  p.alive = true;
  p.ready_status = 200;
  cluster_view v;
  EXPECT_EQ(parse_cluster_view(view_json, v), "");
  p.view = v;
  return p;
}

std::vector<node_plan> three_nodes() {
  options o;
  o.nodes = 3;
  o.dir = "/tmp/c";
  std::string err;
  return plan_nodes(o, err);
}

const char* all_up_view(const char* self) {
  static std::string text;
  text = std::string{R"({"enabled":true,"self":")"} + self + R"(","ring_version":3,"replicas":2,
    "members":[
      {"name":"node-1","address":"127.0.0.1:8181","http":"http://127.0.0.1:8081","state":"up","self":false,"last_heard_ms":5,"share":0.334},
      {"name":"node-2","address":"127.0.0.1:8182","http":"http://127.0.0.1:8082","state":"up","self":false,"last_heard_ms":5,"share":0.333},
      {"name":"node-3","address":"127.0.0.1:8183","http":"http://127.0.0.1:8083","state":"up","self":false,"last_heard_ms":5,"share":0.333}],
    "forwarders":[{"peer":"node-2","state":"up","acked_upto":1,"sent_upto":2,"head":20,
                   "backlog_events":17,"in_flight_events":1,"resent_events":0}],
    "replication":{"pending_batches":0,"last_lag_ms":2}})";
  return text.c_str();
}

} // namespace

TEST(cluster_cli, up_takes_its_defaults_when_given_no_options) {
  options o;
  ASSERT_EQ(parse({"up"}, o), "");
  EXPECT_EQ(o.command, "up");
  EXPECT_EQ(o.nodes, 3u);
  EXPECT_EQ(o.dir, "cluster");
  EXPECT_EQ(o.base_port, 8080);
  EXPECT_EQ(o.config, "conf/sluice.conf");
  EXPECT_EQ(o.timeout, std::chrono::seconds{60});
  ASSERT_EQ(parse({"down"}, o), "");
  EXPECT_EQ(o.timeout, std::chrono::seconds{30});
}

TEST(cluster_cli, options_accept_a_separate_value_or_an_equals_sign) {
  options o;
  ASSERT_EQ(parse({"up", "--nodes", "5", "--dir=/x/y", "--base-port", "9000", "--config=a.conf",
                   "--timeout", "90s"},
                  o),
            "");
  EXPECT_EQ(o.nodes, 5u);
  EXPECT_EQ(o.dir, "/x/y");
  EXPECT_EQ(o.base_port, 9000);
  EXPECT_EQ(o.config, "a.conf");
  EXPECT_EQ(o.timeout, std::chrono::seconds{90});
}

TEST(cluster_cli, options_after_a_double_dash_go_to_every_serve) {
  options o;
  ASSERT_EQ(parse({"up", "--nodes=2", "--", "--storage.durability=none", "--nodes=7"}, o), "");
  EXPECT_EQ(o.nodes, 2u);
  EXPECT_EQ(o.serve_args,
            (std::vector<std::string>{"--storage.durability=none", "--nodes=7"}));
  EXPECT_NE(parse({"down", "--", "--x=1"}, o), "");
}

TEST(cluster_cli, bad_arguments_are_refused_naming_the_argument) {
  options o;
  EXPECT_NE(parse({}, o).find("missing subcommand"), std::string::npos);
  EXPECT_NE(parse({"start"}, o).find("'start'"), std::string::npos);
  EXPECT_NE(parse({"up", "--nodes", "0"}, o).find("--nodes must be between 1 and 99"),
            std::string::npos);
  EXPECT_NE(parse({"up", "--nodes", "100"}, o).find("--nodes"), std::string::npos);
  EXPECT_NE(parse({"up", "--nodes", "three"}, o).find("--nodes must be a number"),
            std::string::npos);
  EXPECT_NE(parse({"up", "--nodes"}, o).find("--nodes needs a value"), std::string::npos);
  EXPECT_NE(parse({"up", "--base-port=70000"}, o).find("--base-port"), std::string::npos);
  EXPECT_NE(parse({"up", "--timeout=soon"}, o).find("--timeout"), std::string::npos);
  EXPECT_NE(parse({"up", "--timeout=0s"}, o).find("--timeout"), std::string::npos);
  EXPECT_NE(parse({"up", "--colour"}, o).find("unknown option '--colour'"), std::string::npos);
  EXPECT_NE(parse({"status", "--nodes=3"}, o).find("not an option of `cluster status`"),
            std::string::npos);
  EXPECT_NE(parse({"up", "--dir=a", "--dir=b"}, o).find("given twice"), std::string::npos);
  EXPECT_NE(parse({"up", "stray"}, o).find("'stray'"), std::string::npos);
}

TEST(cluster_cli, durations_take_caf_units_or_plain_seconds) {
  EXPECT_EQ(parse_duration("30"), std::chrono::milliseconds{30000});
  EXPECT_EQ(parse_duration("30s"), std::chrono::milliseconds{30000});
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds{250});
  EXPECT_EQ(parse_duration("2min"), std::chrono::milliseconds{120000});
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("abc"));
}

TEST(cluster_cli, node_i_gets_ports_base_plus_i_and_base_plus_100_plus_i) {
  options o;
  o.nodes = 3;
  o.dir = "/tmp/c/";
  std::string err;
  auto nodes = plan_nodes(o, err);
  ASSERT_EQ(err, "");
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].name, "node-1");
  EXPECT_EQ(nodes[0].gateway_url(), "http://127.0.0.1:8081");
  EXPECT_EQ(nodes[0].cluster_address(), "127.0.0.1:8181");
  EXPECT_EQ(nodes[2].name, "node-3");
  EXPECT_EQ(nodes[2].gateway_port, 8083);
  EXPECT_EQ(nodes[2].cluster_port, 8183);
  EXPECT_EQ(nodes[1].data_dir, "/tmp/c/node-2");
  EXPECT_EQ(nodes[1].conf_file, "/tmp/c/node-2.conf");
  EXPECT_EQ(nodes[1].log_file, "/tmp/c/node-2.log");
  EXPECT_EQ(nodes[1].pid_file, "/tmp/c/node-2.pid");
}

TEST(cluster_cli, a_layout_past_port_65535_is_refused) {
  options o;
  o.nodes = 10;
  o.base_port = 65426; // 65426 + 100 + 10 = 65536
  std::string err;
  EXPECT_TRUE(plan_nodes(o, err).empty());
  EXPECT_NE(err.find("65536"), std::string::npos) << err;
  o.base_port = 65425;
  err.clear();
  EXPECT_EQ(plan_nodes(o, err).size(), 10u);
  EXPECT_EQ(err, "");
}

TEST(cluster_cli, every_serve_names_its_node_ports_data_dir_and_all_seeds) {
  auto nodes = three_nodes();
  auto args = serve_args(nodes[1], nodes, {"--storage.durability=none"});
  std::vector<std::string> want{"serve",
                                "--config-file=/tmp/c/node-2.conf",
                                "--sluice.node=node-2",
                                "--sluice.data-dir=/tmp/c/node-2",
                                "--gateway.host=127.0.0.1",
                                "--gateway.port=8082",
                                "--cluster.host=127.0.0.1",
                                "--cluster.port=8182",
                                R"(--cluster.seeds=["127.0.0.1:8181","127.0.0.1:8182","127.0.0.1:8183"])",
                                "--storage.durability=none"};
  EXPECT_EQ(args, want);
}

TEST(cluster_cli, the_node_conf_is_the_base_file_plus_the_token_section) {
  auto nodes = three_nodes();
  auto text = node_conf_text(nodes[0], serve_args(nodes[0], nodes, {}), "conf/sluice.conf",
                             "[sluice]\nnode = \"x\"", "sluice-cluster-up", "pbkdf2-sha256$1$a$b");
  EXPECT_NE(text.find("--gateway.port=8081"), std::string::npos); // the command, in a comment
  EXPECT_NE(text.find("[sluice]\nnode = \"x\"\n"), std::string::npos);
  EXPECT_NE(text.find("[tokens.sluice-cluster-up]\nhash = \"pbkdf2-sha256$1$a$b\"\n"
                      "scopes = [\"admin\"]\n"),
            std::string::npos);
  for (size_t pos = 0; pos < text.find("[sluice]"); pos = text.find('\n', pos) + 1)
    EXPECT_TRUE(text[pos] == ';' || text[pos] == '\n') << "header line not a comment at " << pos;
}

TEST(cluster_cli, the_manifest_reads_back_what_up_wrote) {
  auto nodes = three_nodes();
  std::string err;
  auto back = parse_manifest(manifest_text(nodes), err);
  ASSERT_EQ(err, "");
  ASSERT_EQ(back.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back[i].name, nodes[i].name);
    EXPECT_EQ(back[i].gateway_url(), nodes[i].gateway_url());
    EXPECT_EQ(back[i].cluster_address(), nodes[i].cluster_address());
    EXPECT_EQ(back[i].data_dir, nodes[i].data_dir);
    EXPECT_EQ(back[i].conf_file, nodes[i].conf_file);
    EXPECT_EQ(back[i].log_file, nodes[i].log_file);
    EXPECT_EQ(back[i].pid_file, nodes[i].pid_file);
  }
  EXPECT_TRUE(parse_manifest("# header\nnode-1\thttp://h:1\th:2\td\tl\n", err).empty());
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
  err.clear();
  EXPECT_TRUE(parse_manifest("node-1\tftp://h:1\th:2\td\tl\tp\n", err).empty());
  EXPECT_NE(err.find("line 1"), std::string::npos) << err;
}

TEST(cluster_cli, the_process_state_follows_the_last_parenthesis) {
  EXPECT_EQ(proc_stat_state("1234 (sluice) S 1 1234 1234 0 -1"), 'S');
  EXPECT_EQ(proc_stat_state("1234 (a) b) (c) Z 1 1234"), 'Z');
  EXPECT_EQ(proc_stat_state("garbage"), 0);
  EXPECT_EQ(proc_stat_state("1 (x)"), 0);
  EXPECT_TRUE(state_alive('S'));
  EXPECT_TRUE(state_alive('R'));
  EXPECT_TRUE(state_alive('D'));
  EXPECT_FALSE(state_alive('Z'));
  EXPECT_FALSE(state_alive('X'));
  EXPECT_FALSE(state_alive(0));
}

TEST(cluster_cli, the_cluster_answer_is_read_with_members_shares_and_backlogs) {
  cluster_view v;
  ASSERT_EQ(parse_cluster_view(all_up_view("node-1"), v), "");
  EXPECT_TRUE(v.enabled);
  EXPECT_EQ(v.self, "node-1");
  EXPECT_EQ(v.ring_version, 3u);
  ASSERT_EQ(v.members.size(), 3u);
  EXPECT_EQ(v.members[1].name, "node-2");
  EXPECT_EQ(v.members[1].state, "up");
  EXPECT_DOUBLE_EQ(v.members[0].share, 0.334);
  ASSERT_EQ(v.forwarders.size(), 1u);
  EXPECT_EQ(v.forwarders[0].peer, "node-2");
  EXPECT_EQ(v.forwarders[0].backlog_events, 17u);
  // A single node: share 1 written as an integer.
  ASSERT_EQ(parse_cluster_view(R"({"enabled":false,"self":"node-1","members":[{"name":"node-1",
                                   "state":"up","self":true,"share":1}],"forwarders":[]})",
                               v),
            "");
  EXPECT_DOUBLE_EQ(v.members[0].share, 1.0);
  EXPECT_NE(parse_cluster_view("{", v), "");
  EXPECT_NE(parse_cluster_view(R"({"members":7})", v), "");
}

TEST(cluster_cli, status_is_all_up_only_when_every_node_runs_and_every_view_says_up) {
  auto nodes = three_nodes();
  std::vector<node_probe> probes;
  for (auto& n : nodes)
    probes.push_back(live_probe(n, all_up_view(n.name.c_str())));
  auto report = summarize(probes);
  EXPECT_TRUE(report.all_up);
  EXPECT_TRUE(report.problems.empty());
  ASSERT_EQ(report.rows.size(), 3u);
  EXPECT_EQ(report.rows[0].state, "up");
  EXPECT_EQ(report.rows[0].share, "33.4%");
  EXPECT_EQ(report.rows[1].share, "33.3%");
  EXPECT_EQ(report.rows[0].backlog, "node-2:17");
  EXPECT_EQ(report.rows[0].health, "ready");
  EXPECT_EQ(report.rows[0].process, "pid 100");
}

TEST(cluster_cli, a_dead_node_makes_status_fail_and_shows_how_the_others_see_it) {
  auto nodes = three_nodes();
  std::string down_view = all_up_view("x");
  auto at = down_view.find(R"("state":"up","self":false,"last_heard_ms":5,"share":0.333},
      {"name":"node-3")");
  ASSERT_NE(at, std::string::npos);
  down_view.replace(at, 12, R"("state":"down")");
  std::vector<node_probe> probes{live_probe(nodes[0], down_view),
                                 live_probe(nodes[1], all_up_view("node-2"))};
  node_probe dead;
  dead.node = nodes[2];
  probes.push_back(dead);
  probes[1].ready_status = 503;
  probes[1].ready_body = R"({"status":"overloaded","reason":"log"})";
  auto report = summarize(probes);
  EXPECT_FALSE(report.all_up);
  EXPECT_EQ(report.rows[2].process, "not running");
  EXPECT_EQ(report.rows[2].health, "unreachable");
  EXPECT_EQ(report.rows[1].health, "overloaded");
  EXPECT_EQ(report.rows[1].state, "mixed (down: node-1; up: node-2)");
  EXPECT_EQ(report.rows[2].state, "up"); // the live views still say up: not timed out yet
  bool names_dead = false;
  for (auto& p : report.problems)
    names_dead = names_dead || p.find("node-3 is not running") != std::string::npos;
  EXPECT_TRUE(names_dead);
}

TEST(cluster_cli, no_live_node_means_unknown_states_and_failure) {
  auto nodes = three_nodes();
  std::vector<node_probe> probes;
  for (auto& n : nodes) {
    node_probe p;
    p.node = n;
    probes.push_back(p);
  }
  auto report = summarize(probes);
  EXPECT_FALSE(report.all_up);
  for (auto& r : report.rows) {
    EXPECT_EQ(r.state, "unknown");
    EXPECT_EQ(r.share, "-");
    EXPECT_EQ(r.process, "not running");
  }
  EXPECT_FALSE(summarize({}).all_up);
}

TEST(cluster_cli, tables_align_their_columns) {
  EXPECT_EQ(format_table({"a", "bb"}, {{"xyz", "1"}, {"q", "22"}}),
            "a    bb\nxyz  1\nq    22\n");
}
