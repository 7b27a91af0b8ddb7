#pragma once

// The admin console's static files: `GET /console`, `/console/{file}`, `/console/{dir}/{file}`,
// and the front-end libraries from npm under `/console/vendor/{file}`.

#include "gateway/server.hpp"

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::gateway {

/// Most bytes one console file may have (larger files are skipped with a warning).
inline constexpr size_t console_max_file_bytes = size_t{4} << 20;

/// Headers every console response carries: the content security policy (scripts, styles and
/// connections from this origin only; the live feed's WebSocket), `nosniff`, no framing.
std::vector<std::pair<std::string, std::string>> console_security_headers();

/// The content type of a console file by its extension (empty: not served).
std::string console_content_type(std::string_view path);

/// The console's files, read into memory once at start.
///
/// Lifecycle: `load` walks the console directory (the front-end: `index.html`, `*.js`, `*.css`,
/// images; at most two levels: `/console/{file}`, `/console/{dir}/{file}`) and the vendored npm
/// files (`node_modules/uplot/dist/uPlot.esm.js` and `uPlot.min.css` → `/console/vendor/…`), and
/// keeps each with its content type and an ETag. Nothing is read from disk afterwards: a request
/// can only name a file of this table, so no path (`..`, encoded slashes, symlinks out of the
/// directory) reaches the file system. Concurrency: immutable after `load`; shared by the handlers
/// on every io thread. Limits: files over `console_max_file_bytes`, other extensions,
/// `node_modules` (besides the vendored files), `package*.json` and dot-files are not served.
class console_files {
public:
  struct file {
    std::string content_type;
    std::string body;
    std::string etag;
    std::string cache_control;
  };

  /// Reads `dir`. Returns warnings (missing directory or vendored files, skipped files); the
  /// console answers 503 naming the directory when `index.html` is missing.
  std::vector<std::string> load(const std::string& dir);

  /// The file served at `url_path` (`/console/app.css`), or null.
  const file* find(std::string_view url_path) const;

  /// Every URL path served (sorted), for tests and `--help`.
  std::vector<std::string> paths() const;

  const std::string& dir() const noexcept {
    return dir_;
  }

private:
  std::string dir_;
  std::map<std::string, file, std::less<>> files_;
};

/// The console's endpoints (scope `open`: the files hold no data; data needs the login). Serves
/// `files` (304 on a matching `If-None-Match`), `/console` and `/console/` answer `index.html`.
std::vector<endpoint> console_endpoints(std::shared_ptr<const console_files> files);

} // namespace sluice::gateway
