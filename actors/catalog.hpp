#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice {

class metrics_registry;

/// One title of the catalog.
struct title_info {
  std::string id;
  std::string name;
  /// As written in the file (trimmed), in file order; may be empty.
  std::vector<std::string> genres;
  /// Always positive.
  int64_t duration_ms = 0;
};

/// The title catalog (`catalog.titles-file`, default `conf/titles.csv`).
///
/// Format: CSV (RFC 4180 quoting, parsed by libcsv) with a header naming the columns `id`, `name`,
/// `genres` and `duration` (in any order, each exactly once, no others). `genres` separates genres
/// with `|` (`Drama|Crime`; empty means none). `duration` is either whole seconds (`5520`) or
/// hours/minutes/seconds with units in that order (`1h32m`, `45m`, `2h`, `1h2m3s`, `90s`); it must
/// be positive. Ids must be non-empty and unique, names non-empty. Blank lines are skipped.
/// Errors name the 1-based line of the offending record (`line 7: duration "abc" ...`).
///
/// Lifecycle: immutable once loaded; share it through `catalog_holder`. Concurrency: any thread may
/// read it. Limits: the whole file is held in memory.
class catalog {
public:
  catalog() = default;
  catalog(const catalog&) = delete; // the index points into titles_
  catalog& operator=(const catalog&) = delete;

  /// Parses CSV text; on error returns nullptr and sets `error` (naming the line).
  static std::shared_ptr<const catalog> parse(std::string_view csv, std::string& error);
  /// Reads and parses a file; errors name the path (and the line).
  static std::shared_ptr<const catalog> load(const std::string& path, std::string& error);
  /// An empty catalog.
  static std::shared_ptr<const catalog> empty();

  /// nullptr if `id` is unknown.
  const title_info* find(std::string_view id) const;
  size_t size() const noexcept {
    return titles_.size();
  }
  /// In file order.
  const std::vector<title_info>& titles() const noexcept {
    return titles_;
  }

private:
  std::vector<title_info> titles_;
  std::unordered_map<std::string_view, size_t> index_;
};

/// Parses a catalog duration (`5520`, `1h32m`, `45m`, `90s`, `1h2m3s`) into milliseconds; false
/// if malformed or not positive.
bool parse_catalog_duration(std::string_view text, int64_t& ms);

/// Holds the current catalog; swapped as a whole on reload (SIGHUP, `POST
/// /v1/admin/catalog/reload`), so readers see the old or the new catalog, never a mix.
///
/// Concurrency: `get` and `set`/`reload` from any thread (std::atomic_load/store of the
/// shared_ptr); `reload` calls are serialized. A reader keeps the catalog it got alive for as long as
/// it holds the pointer.
class catalog_holder {
public:
  /// `path` is where `reload` reads from (empty: reload fails); starts with an empty catalog.
  explicit catalog_holder(std::string path = {});
  std::shared_ptr<const catalog> get() const;
  void set(std::shared_ptr<const catalog> next);
  /// Loads `path()` again; on success swaps it in and returns true, on error keeps the current
  /// catalog and sets `error`.
  bool reload(std::string& error);
  const std::string& path() const noexcept {
    return path_;
  }

private:
  std::string path_;
  std::mutex reload_mtx_;
  std::shared_ptr<const catalog> current_;
};

/// Reloads `holder` from its file and counts the outcome in `metrics`
/// (`sluice_catalog_reloads_total{result="ok|error"}`, `sluice_catalog_titles`); returns the error
/// (naming the line), empty on success. Used by SIGHUP and `POST /v1/admin/catalog/reload`.
std::string reload_catalog(catalog_holder& holder, metrics_registry& metrics);

} // namespace sluice
