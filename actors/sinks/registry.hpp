#pragma once

#include "actors/sinks/sink.hpp"

#include <caf/settings.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice {

/// A configured sink: its name, kind, engine options and a factory for the implementation.
struct sink_spec {
  std::string name;
  std::string kind;
  sink_runner_config runner;
  std::function<std::unique_ptr<sink>()> make;
};

/// Reads every `[sinks.<name>]` section (each with `kind = "<kind>"` and that kind's options plus
/// the engine options). Relative paths resolve under `data_dir`. Returns an error text naming the
/// offending section and key, or empty on success.
std::string load_sinks(const caf::settings& sinks, const std::string& data_dir,
                       const std::string& node, std::vector<sink_spec>& out);

/// `path` as given when absolute, else `path` under `data_dir`: where sinks keep relative paths.
std::string resolve_data_path(const std::string& data_dir, const std::string& path);

/// `--help` text for every sink kind and the engine options.
std::string sinks_help();

} // namespace sluice
