// `sluice lake ...`: reads a lake table's snapshots through the same library the sink uses.

#include "app/cmd_lake.hpp"

#include "actors/sinks/lake/lake_compaction.hpp"
#include "actors/sinks/lake/lake_sink.hpp"
#include "actors/sinks/lake/lake_table.hpp"
#include "actors/sinks/registry.hpp"
#include "app/config.hpp"
#include "messages/codec.hpp"
#include "messages/type_ids.hpp"

#include <caf/config_value.hpp>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace sluice {

namespace {

constexpr const char* usage
  = "Usage:\n"
    "  sluice lake snapshots --config-file=FILE --table=T   history: id, time, writer, files\n"
    "                                                       added and removed, files, rows,\n"
    "                                                       watermark; then each writer's state\n"
    "  sluice lake files --config-file=FILE --table=T [--json]\n"
    "                                                       the current snapshot's files (URLs;\n"
    "                                                       --json: an array for read_parquet)\n"
    "  sluice lake expire --config-file=FILE --table=T      delete snapshots and files older than\n"
    "                                                       the table's retention now\n"
    "  sluice lake compact --config-file=FILE --table=T [--partition=date=YYYY-MM-DD/hour=HH]\n"
    "                      [--dry-run]                      merge each partition's small files\n"
    "                                                       (compact-min-files, compact-target-\n"
    "                                                       bytes) into one, in one new snapshot;\n"
    "                                                       only this node's (sluice.node) files;\n"
    "                                                       refused while this node writes it\n"
    "T is the table name (or the name of its [sinks.<name>] section). Other --section.key=value\n"
    "options (e.g. --sluice.data-dir=DIR) apply as for serve.\n";

std::string utc_text(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

/// Finds the lake sink section for `table` and loads its options.
std::string find_table(node_config& cfg, const std::string& table, lake_sink_config& out) {
  auto sinks_it = cfg.content.find("sinks");
  if (sinks_it == cfg.content.end() || !caf::holds_alternative<caf::settings>(sinks_it->second))
    return "the configuration declares no sinks";
  std::vector<std::string> known;
  for (auto& [name, value] : caf::get<caf::settings>(sinks_it->second)) {
    auto section = caf::get_if<caf::settings>(&value);
    if (section == nullptr)
      continue;
    auto kind = section->find("kind");
    if (kind == section->end() || !caf::holds_alternative<std::string>(kind->second)
        || caf::get<std::string>(kind->second) != "lake")
      continue;
    caf::settings own;
    for (auto& [key, v] : *section) {
      bool engine = key == "kind";
      for (auto& e : sink_runner_config::options().entries())
        engine = engine || e.name == key;
      if (!engine)
        own[key] = v;
    }
    lake_sink_config lake;
    if (auto err = load_lake_config(own, "sinks." + name, name, cfg.data_dir, lake); !err.empty())
      return err;
    if (lake.table == table || name == table) {
      out = lake;
      return {};
    }
    known.push_back(lake.table);
  }
  std::string names;
  for (auto& k : known)
    names += (names.empty() ? "" : ", ") + k;
  return fmt::format("no lake table '{}' in the configuration (lake tables: {})", table,
                     names.empty() ? "none" : names);
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// True for `date=YYYY-MM-DD/hour=HH` (digits where digits belong).
bool valid_partition(std::string_view p) {
  constexpr std::string_view shape = "date=0000-00-00/hour=00";
  if (p.size() != shape.size())
    return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (shape[i] == '0' ? !std::isdigit(static_cast<unsigned char>(p[i])) : p[i] != shape[i])
      return false;
  return true;
}

/// The files of one group as "a, b, c" (file names without their partition).
std::string file_names(const std::vector<lake::file_entry>& files) {
  std::string out;
  for (auto& f : files) {
    auto slash = f.path.rfind('/');
    out += (out.empty() ? "" : ", ") + f.path.substr(slash == std::string::npos ? 0 : slash + 1);
  }
  return out;
}

/// `sluice lake compact`: plans (`dry_run`) or runs one compaction of every partition (or one)
/// under the table's writer lock. Returns the exit code.
int compact_table(const lake_sink_config& lake, const std::string& partition, bool dry_run) {
  auto opts = lake_compact_options(lake);
  opts.partition = partition;
  opts.now_ms = now_ms();
  // Test hook, as in the sink: SIGKILL at a commit point (never set it in production).
  if (auto env = std::getenv("SLUICE_LAKE_CRASH_AT"); env != nullptr && *env != '\0') {
    std::string point = env;
    opts.hook = [point](std::string_view at) {
      if (at == point)
        ::raise(SIGKILL);
    };
  }
  std::optional<lake::writer_lock> lock;
  if (!dry_run) {
    std::string why;
    lock = lake::writer_lock::try_acquire(lake.staging_dir, "compact", why);
    if (!lock) {
      std::cerr << "sluice lake compact: table " << lake.table << ": " << why << '\n';
      return 1;
    }
  }
  auto store = persistence::open_object_store(lake_store_config(lake));
  // This node's writer id: compaction merges only this node's files (offsets are per node) and
  // commits with the same optimistic protocol as the sinks, so other nodes may keep writing.
  lake::table t{*store, lake.table, lake.writer_id};
  t.open();
  if (opts.hook)
    t.set_hook(opts.hook);
  auto describe = [](const lake::compaction_group& g) {
    return fmt::format("{}: {} files ({} rows, {} bytes) [{}]", g.partition, g.inputs.size(),
                       g.rows, g.bytes, file_names(g.inputs));
  };
  if (dry_run) {
    auto plan = lake::plan_compaction(t.current(), opts);
    for (auto& g : plan)
      std::cout << "would merge " << describe(g) << '\n';
    std::cout << fmt::format("dry run: {} merge(s) of writer {}'s files planned on snapshot {}; "
                             "nothing written\n",
                             plan.size(), lake.writer_id, t.current().id);
    return 0;
  }
  auto r = lake::compact(t, opts);
  size_t files_in = 0;
  for (auto& m : r.merged) {
    files_in += m.group.inputs.size();
    std::cout << fmt::format("merged {} -> {} ({} rows, {} bytes)\n", describe(m.group),
                             m.output.path, m.output.rows, m.output.bytes);
  }
  for (auto& [g, reason] : r.skipped)
    std::cout << "skipped " << describe(g) << ": " << reason << '\n';
  if (r.snapshot_id == 0)
    std::cout << fmt::format("nothing to compact{}: no partition has {} or more consecutive files "
                             "below {} bytes (snapshot {} unchanged)\n",
                             partition.empty() ? "" : " in " + partition, opts.min_files,
                             opts.target_file_bytes, t.current().id);
  else
    std::cout << fmt::format("compacted {} files into {} in snapshot {} (the old files stay "
                             "until retention, {}, expires them)\n",
                             files_in, r.merged.size(), r.snapshot_id,
                             render_timespan(lake.retention));
  return 0;
}

} // namespace

int run_lake_command(int argc, char** argv) {
  std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
  if (args.empty() || args.front() == "--help" || args.front() == "-h") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  auto sub = args.front();
  if (sub != "snapshots" && sub != "files" && sub != "expire" && sub != "compact") {
    std::cerr << "sluice lake: unknown command '" << sub << "'\n" << usage;
    return 2;
  }
  std::string table;
  std::string partition;
  bool json = false;
  bool dry_run = false;
  std::vector<std::string> rest;
  for (size_t i = 1; i < args.size(); ++i) {
    auto& a = args[i];
    if (a.rfind("--table=", 0) == 0)
      table = a.substr(8);
    else if (a == "--table" && i + 1 < args.size())
      table = args[++i];
    else if (a == "--json")
      json = true;
    else if (sub == "compact" && a.rfind("--partition=", 0) == 0)
      partition = a.substr(12);
    else if (sub == "compact" && a == "--partition" && i + 1 < args.size())
      partition = args[++i];
    else if (sub == "compact" && a == "--dry-run")
      dry_run = true;
    else if (a.rfind("--config-file=", 0) == 0 && !std::filesystem::exists(a.substr(14))) {
      std::cerr << "sluice lake: config file " << a.substr(14) << " does not exist\n";
      return 2;
    } else
      rest.push_back(a);
  }
  if (table.empty()) {
    std::cerr << "sluice lake: --table=T is required\n" << usage;
    return 2;
  }
  if (!partition.empty() && !valid_partition(partition)) {
    std::cerr << "sluice lake compact: --partition is \"" << partition
              << "\"; use date=YYYY-MM-DD/hour=HH (as in `sluice lake files`)\n";
    return 2;
  }
  node_config cfg;
  register_message_types(cfg);
  if (auto err = cfg.parse(rest); err) {
    std::cerr << "sluice lake: invalid command line or config file: " << caf::to_string(err)
              << '\n';
    return 2;
  }
  if (auto err = cfg.finish(); !err.empty()) {
    std::cerr << "sluice lake: configuration error: " << err << '\n';
    return 2;
  }
  lake_sink_config lake;
  if (auto err = find_table(cfg, table, lake); !err.empty()) {
    std::cerr << "sluice lake: " << err << '\n';
    return 2;
  }
  lake.writer_id = cfg.node_name;
  try {
    if (sub == "compact")
      return compact_table(lake, partition, dry_run);
    auto store = persistence::open_object_store(lake_store_config(lake));
    lake::table t{*store, lake.table};
    t.open();
    if (sub == "files") {
      auto& files = t.current().files;
      if (json) {
        std::string out = "[";
        for (size_t i = 0; i < files.size(); ++i) {
          out += i ? "," : "";
          append_json_string(out, t.url(files[i]));
        }
        std::cout << out << "]\n";
      } else {
        for (auto& f : files)
          std::cout << t.url(f) << '\n';
      }
    } else if (sub == "snapshots") {
      std::cout << fmt::format("{:>8}  {:<24}  {:<12}  {:>6}  {:>7}  {:>6}  {:>12}  {:>12}\n",
                               "snapshot", "committed (UTC)", "writer", "added", "removed",
                               "files", "rows", "watermark");
      for (auto& s : t.history()) {
        uint64_t rows = 0;
        for (auto& f : s.files)
          rows += f.rows;
        std::cout << fmt::format("{:>8}  {:<24}  {:<12}  {:>6}  {:>7}  {:>6}  {:>12}  {:>12}{}\n",
                                 s.id, utc_text(s.timestamp_ms), s.writer.empty() ? "-" : s.writer,
                                 s.added.size(), s.removed.size(), s.files.size(), rows,
                                 s.offset_watermark, s.id == t.current().id ? "  (current)" : "");
      }
      // Per-writer state of the newest snapshot: each node's watermark is in its own log.
      auto& cur = t.current();
      for (auto& [id, w] : cur.writers) {
        size_t files = 0;
        for (auto& f : cur.files)
          files += cur.owned_by(f, id);
        std::cout << fmt::format("writer {}: watermark {}, {} files, last commit {}\n",
                                 id.empty() ? "(unnamed, format 1)" : id, w.offset_watermark, files,
                                 utc_text(w.committed_ms));
      }
    } else {
      auto retention = std::chrono::duration_cast<std::chrono::milliseconds>(lake.retention);
      auto r = t.expire(retention, now_ms());
      std::cout << fmt::format("deleted {} snapshots and {} files ({} bytes) older than {}\n",
                               r.snapshots_deleted, r.files_deleted, r.bytes_deleted,
                               render_timespan(lake.retention));
    }
  } catch (const std::exception& e) {
    std::cerr << "sluice lake: table " << lake.table << " at " << lake.root << ": " << e.what()
              << '\n';
    return 1;
  }
  return 0;
}

} // namespace sluice
