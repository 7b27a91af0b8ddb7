#include "actors/sinks/registry.hpp"

#include "actors/sinks/file/file_sink.hpp"
#include "actors/sinks/lake/lake_sink.hpp"

#include <caf/config_value.hpp>

#include <filesystem>

#include <fmt/format.h>

namespace sluice {

const option_table<sink_runner_config>& sink_runner_config::options() {
  static const auto table = [] {
    option_table<sink_runner_config> t;
    t.add(&sink_runner_config::max_batch_bytes, "max-batch-bytes",
          "flush when this many bytes of events are buffered")
      .add(&sink_runner_config::max_batch_events, "max-batch-events",
           "flush when this many events are buffered")
      .add(&sink_runner_config::max_queued_events, "max-queued-events",
           "events held (buffered or awaiting a retry) before the sink stops taking more from "
           "the log; the rest waits in the log, not in memory")
      .add(&sink_runner_config::flush_interval, "flush-interval", "flush at least this often")
      .add(&sink_runner_config::max_attempts, "max-attempts",
           "attempts per batch before it goes to the dead-letter sink")
      .add(&sink_runner_config::backoff_initial, "backoff-initial",
           "first retry delay; doubles per attempt, with jitter")
      .add(&sink_runner_config::backoff_max, "backoff-max", "upper bound of the retry delay");
    return t;
  }();
  return table;
}

std::string sink_runner_config::validate() const {
  if (max_batch_bytes == 0 || max_batch_events == 0)
    return "'max-batch-bytes' and 'max-batch-events' must be positive";
  if (max_queued_events < max_batch_events)
    return "'max-queued-events' must be at least 'max-batch-events'";
  if (flush_interval.count() <= 0)
    return "'flush-interval' must be positive";
  if (max_attempts == 0)
    return "'max-attempts' must be at least 1";
  if (backoff_initial.count() <= 0 || backoff_max < backoff_initial)
    return "'backoff-initial' must be positive and not above 'backoff-max'";
  return {};
}

namespace {

// Splits a sink section into engine keys and kind keys, so each table validates its own.
void split(const caf::settings& section, caf::settings& engine, caf::settings& kind) {
  for (auto& [key, value] : section) {
    if (key == "kind")
      continue;
    bool is_engine = false;
    for (auto& e : sink_runner_config::options().entries())
      is_engine = is_engine || e.name == key;
    (is_engine ? engine : kind)[key] = value;
  }
}

} // namespace

std::string resolve_data_path(const std::string& data_dir, const std::string& path) {
  std::filesystem::path p{path};
  if (p.is_absolute())
    return path;
  return (std::filesystem::path{data_dir} / p).string();
}


std::string load_sinks(const caf::settings& sinks, const std::string& data_dir,
                       const std::string& node, std::vector<sink_spec>& out) {
  for (auto& [name, value] : sinks) {
    auto where = "sinks." + name;
    auto section = caf::get_if<caf::settings>(&value);
    if (section == nullptr)
      return fmt::format("'{}' must be a section [{}] with kind = \"file\" and its options",
                         where, where);
    auto kind_value = section->find("kind");
    if (kind_value == section->end() || !caf::holds_alternative<std::string>(kind_value->second))
      return fmt::format("'{}.kind' is missing; set kind = \"file\"", where);
    sink_spec spec;
    spec.name = name;
    spec.kind = caf::get<std::string>(kind_value->second);
    caf::settings engine, kind;
    split(*section, engine, kind);
    if (auto err = sink_runner_config::options().load(spec.runner, engine, where); !err.empty())
      return err;
    if (auto err = spec.runner.validate(); !err.empty())
      return where + ": " + err;
    if (spec.kind == "file") {
      file_sink_config cfg;
      if (auto err = file_sink_config::options().load(cfg, kind, where); !err.empty())
        return err;
      if (auto err = cfg.validate(); !err.empty())
        return where + ": " + err;
      cfg.path = resolve_data_path(data_dir, cfg.path);
      spec.make = [cfg, node] { return std::make_unique<file_sink>(cfg, node); };
    } else if (spec.kind == "lake") {
      lake_sink_config cfg;
      if (auto err = load_lake_config(kind, where, name, data_dir, cfg); !err.empty())
        return err;
      cfg.writer_id = node; // watermark, files and lease are per node in a shared table
      spec.make = [cfg] { return std::make_unique<lake_sink>(cfg); };
    } else {
      return fmt::format("'{}.kind' is \"{}\", which is not a sink kind (known: file, lake)", where,
                         spec.kind);
    }
    out.push_back(std::move(spec));
  }
  return {};
}

std::string sinks_help() {
  std::string out = "Sinks ([sinks.<name>] sections; kind = \"file\"):\n";
  out += " engine options (every sink kind):\n";
  out += sink_runner_config::options().help("sinks.<name>");
  out += " kind \"file\":\n";
  out += file_sink_config::options().help("sinks.<name>");
  out += " kind \"lake\" (actors/sinks/lake/README.md):\n";
  out += lake_sink_config::options().help("sinks.<name>");
  return out;
}

} // namespace sluice
