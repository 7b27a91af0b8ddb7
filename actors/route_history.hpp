#pragma once

// Hot reload of routes: the versions of the route table in effect, each from a log offset on.

#include "actors/route_table.hpp"
#include "messages/event.hpp"

#include <caf/fwd.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::persistence {
class environment;
}

namespace sluice {

class metrics_registry;
class counter;
class gauge;

/// The route versions a node may still need, oldest first: version `i` routes the events with
/// `entries[i].effective_from <= offset < entries[i+1].effective_from`. Every event is routed by
/// exactly one version in every sink, and a replay after a restart routes an event as before.
///
/// Lifecycle: immutable once published (a swap publishes a new history). Limits: holds the
/// version in effect at the lowest consumer offset and every later one; older versions are
/// dropped when the next swap publishes (so the length is bounded by the swaps made while the
/// slowest consumer was behind, plus one).
struct route_history {
  struct entry {
    uint64_t version = 0;
    log_offset effective_from = 0;
    int64_t created_ms = 0;
    std::string comment;
    std::string text;
    std::shared_ptr<const route_table> table;
  };
  /// Ascending `effective_from`; never empty once published.
  std::vector<entry> entries;

  /// The version routing the event at `offset`: the latest whose `effective_from <= offset` (the
  /// oldest kept one for an offset before every kept version).
  const entry& at(log_offset offset) const;
  const entry& latest() const {
    return entries.back();
  }
};

/// The node's shared view of its routes: the current `route_history`, the configured sink names
/// (routes cannot add sinks), and the LMDB environment the versions are stored in.
///
/// Concurrency: `current` and `publish` take a mutex around one shared_ptr copy; readers (sink
/// runners once per batch, the admin API) keep the immutable history they got. Only the ingest
/// log publishes (at start and when it handles a swap, before dispatching any event the new
/// version routes), so a sink runner that sees an event at offset O also sees every version
/// with `effective_from <= O`.
class route_registry {
public:
  /// `have_pii_secret`: routes that hash are accepted (see `check_route_secret`).
  route_registry(persistence::environment* env, std::vector<std::string> sink_names,
                 metrics_registry* metrics, bool have_pii_secret = false);

  std::shared_ptr<const route_history> current() const;
  /// Publishes `h` and sets the `sluice_routes_version` gauge.
  void publish(std::shared_ptr<const route_history> h);

  const std::vector<std::string>& sink_names() const {
    return sink_names_;
  }
  persistence::environment* env() const {
    return env_;
  }
  metrics_registry* metrics() const {
    return metrics_;
  }
  bool have_pii_secret() const {
    return have_pii_secret_;
  }
  /// `sluice_routes_reloads_total{result=ok|invalid}`.
  counter& reloads(bool ok) const {
    return ok ? *reloads_ok_ : *reloads_invalid_;
  }

private:
  persistence::environment* env_;
  std::vector<std::string> sink_names_;
  metrics_registry* metrics_;
  bool have_pii_secret_;
  gauge* version_ = nullptr;
  counter* reloads_ok_ = nullptr;
  counter* reloads_invalid_ = nullptr;
  mutable std::mutex mtx_;
  std::shared_ptr<const route_history> current_;
};

/// Compiles route INI text (`[routes.<name>]` sections) against the node's sinks
/// (`compile_routes_text`). Returns an error text with line and column, empty on success.
std::string compile_route_text(std::string_view text, const std::vector<std::string>& sink_names,
                               route_table& out);

/// Renders `[routes.<name>]` settings as INI text that `compile_route_text` reads back: the text
/// of the config file's routes (version 1 on the first start).
std::string render_routes_ini(const caf::settings& routes);

/// Result of making a new version.
struct route_swap_result {
  /// Empty on success; otherwise why nothing changed (a compile error names line and column).
  std::string error;
  /// The error is the operator's (invalid routes, HTTP 400) rather than storage's (500).
  bool invalid = false;
  uint64_t version = 0;
  log_offset effective_from = 0;
};

/// At start (on the ingest log's thread, before it dispatches anything): decides the routes in
/// effect and publishes the history. With no stored version, the config file's routes become
/// version 1 (effective from 0). When the config file's routes differ from the ones seen at the
/// previous start, the operator edited the file: they become a new version, effective from
/// `next_offset`. Otherwise the latest stored version stays in effect (also when it came from the
/// API). Versions in effect above `lowest_done` (the lowest consumer offset) are compiled; one
/// that no longer compiles (a sink was removed from the config) is replaced by the config's
/// routes, with a warning. Never fails: on storage errors the config's routes are used.
void open_route_history(route_registry& reg, const std::string& config_text,
                        log_offset next_offset, log_offset lowest_done);

/// On the ingest log's thread, between commits: compiles `text`, stores it as a new version
/// effective from `next_offset` (the offset the next appended event gets; durable per
/// `storage.durability` when this returns), and publishes the new history, dropping versions no
/// consumer above `lowest_done` needs.
route_swap_result swap_routes(route_registry& reg, const std::string& text,
                              const std::string& comment, log_offset next_offset,
                              log_offset lowest_done);

} // namespace sluice
