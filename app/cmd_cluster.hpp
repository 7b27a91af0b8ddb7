#pragma once

namespace sluice {

/// `sluice cluster up|status|down`: a local cluster on loopback (docs/cluster.md, "Running a
/// cluster"). `up` starts N detached `sluice serve` processes (node-i: gateway port P+i, cluster
/// port P+100+i, data dir DIR/node-i, log DIR/node-i.log, pid file DIR/node-i.pid) sharing one
/// admin token (DIR/admin-token), and waits until every node is ready and sees all N members up;
/// `status` probes every node's /readyz and /v1/cluster; `down` stops them (SIGTERM, then SIGKILL
/// after a timeout). The layout and argument parsing are in app/cmd_cluster_plan.hpp. `argv[1]`
/// is "cluster". Returns the exit code (0 ok, 1 failed or not all up, 2 usage error).
int run_cluster_command(int argc, char** argv);

} // namespace sluice
