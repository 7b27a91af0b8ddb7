#include "gateway/console_api.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::gateway {

namespace {

namespace fs = std::filesystem;

/// URL prefix of the console.
constexpr std::string_view console_prefix = "/console";

/// Front-end files are revalidated on every load (ETag), so a node upgrade shows at once.
constexpr std::string_view app_cache_control = "no-cache";
/// Vendored libraries change only with `console/package.json`; a day is a safe bound.
constexpr std::string_view vendor_cache_control = "public, max-age=86400";

/// The npm files the console uses, served under `/console/vendor/`.
struct vendored {
  const char* source; ///< relative to the console directory
  const char* name;   ///< file name under /console/vendor/
};
constexpr vendored vendor_files[] = {
  {"node_modules/uplot/dist/uPlot.esm.js", "uPlot.esm.js"},
  {"node_modules/uplot/dist/uPlot.min.css", "uPlot.min.css"},
};

bool read_file(const fs::path& p, std::string& out, std::string& error) {
  std::ifstream in{p, std::ios::binary};
  if (!in) {
    error = fmt::format("cannot read {}", p.string());
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  out = std::move(ss).str();
  return true;
}

std::string etag_of(const fs::path& p, size_t size) {
  std::error_code ec;
  auto mtime = fs::last_write_time(p, ec);
  auto ticks = ec ? 0 : mtime.time_since_epoch().count();
  return fmt::format("\"{:x}-{:x}\"", size, static_cast<uint64_t>(ticks));
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Whether `If-None-Match` (a list of tags, or `*`) names `etag`.
bool etag_matches(const std::string& if_none_match, const std::string& etag) {
  if (if_none_match.find('*') != std::string::npos)
    return true;
  std::string_view list = if_none_match;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front())))
      item.remove_prefix(1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back())))
      item.remove_suffix(1);
    if (item.substr(0, 2) == "W/")
      item.remove_prefix(2);
    if (item == etag)
      return true;
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

/// Calls `add(path, url, cache)` for every servable regular file of `root` and of its direct
/// subdirectories (never following symlinks; `node_modules`, `vendor` and dot-directories
/// skipped). Throws `fs::filesystem_error` when the directory cannot be walked.
template <class Add, class Servable>
void scan_two_levels(const fs::path& root, Add& add, Servable& servable) {
  for (auto& entry : fs::directory_iterator{root}) {
    auto name = entry.path().filename().string();
    if (name.empty() || name.front() == '.' || name == "node_modules" || name == "vendor"
        || entry.is_symlink())
      continue;
    if (entry.is_regular_file()) {
      if (servable(name))
        add(entry.path(), fmt::format("{}/{}", console_prefix, name), app_cache_control);
    } else if (entry.is_directory()) {
      for (auto& sub : fs::directory_iterator{entry.path()}) {
        auto sub_name = sub.path().filename().string();
        if (!sub.is_symlink() && sub.is_regular_file() && servable(sub_name))
          add(sub.path(), fmt::format("{}/{}/{}", console_prefix, name, sub_name),
              app_cache_control);
      }
    }
  }
}

http_response not_found(std::string_view path) {
  auto res = json_response(404, fmt::format("{{\"error\":\"no console file at {}\"}}",
                                            std::string{path}.find('"') == std::string::npos
                                              ? std::string{path}
                                              : std::string{"this path"}));
  for (auto& h : console_security_headers())
    res.headers.push_back(h);
  return res;
}

} // namespace

std::vector<std::pair<std::string, std::string>> console_security_headers() {
  return {
    {"Content-Security-Policy",
     "default-src 'self'; connect-src 'self' ws: wss:; script-src 'self'; style-src 'self'; "
     "img-src 'self' data:; font-src 'self'; object-src 'none'; base-uri 'none'; "
     "form-action 'self'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
  };
}

std::string console_content_type(std::string_view path) {
  auto dot = path.rfind('.');
  if (dot == std::string_view::npos)
    return {};
  auto ext = lower(path.substr(dot + 1));
  static const std::map<std::string, std::string, std::less<>> types = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
  };
  auto i = types.find(ext);
  return i != types.end() ? i->second : std::string{};
}

std::vector<std::string> console_files::load(const std::string& dir) {
  std::vector<std::string> warnings;
  dir_ = dir;
  files_.clear();
  std::error_code ec;
  fs::path root = fs::path{dir};
  if (!fs::is_directory(root, ec)) {
    warnings.push_back(fmt::format("console directory {} not found (gateway.console-dir; relative "
                                   "to the working directory): /console answers 503",
                                   dir));
    return warnings;
  }
  auto add = [&](const fs::path& p, std::string url, std::string_view cache) {
    std::error_code size_ec;
    auto size = fs::file_size(p, size_ec);
    if (size_ec || size > console_max_file_bytes) {
      warnings.push_back(fmt::format("console file {} skipped: {}", p.string(),
                                     size_ec ? size_ec.message() : "larger than 4 MiB"));
      return;
    }
    file f;
    std::string error;
    if (!read_file(p, f.body, error)) {
      warnings.push_back(error);
      return;
    }
    f.content_type = console_content_type(url);
    f.etag = etag_of(p, f.body.size());
    f.cache_control = std::string{cache};
    files_.emplace(std::move(url), std::move(f));
  };
  auto servable = [](const std::string& name) {
    return !name.empty() && name.front() != '.' && name.rfind("package", 0) != 0
           && !console_content_type(name).empty();
  };
  // Two levels: the directory's files and those of its direct subdirectories (not node_modules).
  try {
    scan_two_levels(root, add, servable);
  } catch (const fs::filesystem_error& e) {
    warnings.push_back(fmt::format("console directory {} could not be read completely: {}", dir,
                                   e.what()));
  }
  for (auto& v : vendor_files) {
    auto p = root / v.source;
    if (!fs::is_regular_file(p, ec)) {
      warnings.push_back(fmt::format("console library {} missing: run scripts/install-deps.sh "
                                     "(npm ci in {})",
                                     p.string(), dir));
      continue;
    }
    add(p, fmt::format("{}/vendor/{}", console_prefix, v.name), vendor_cache_control);
  }
  if (files_.find(fmt::format("{}/index.html", console_prefix)) == files_.end())
    warnings.push_back(fmt::format("console directory {} has no index.html: /console answers 503",
                                   dir));
  return warnings;
}

const console_files::file* console_files::find(std::string_view url_path) const {
  auto i = files_.find(url_path);
  return i != files_.end() ? &i->second : nullptr;
}

std::vector<std::string> console_files::paths() const {
  std::vector<std::string> out;
  for (auto& [p, f] : files_)
    out.push_back(p);
  return out;
}

std::vector<endpoint> console_endpoints(std::shared_ptr<const console_files> files) {
  auto serve = [files](std::string path, const http_request& req, responder& respond) {
    auto* f = files->find(path);
    if (f == nullptr) {
      if (path == "/console/index.html") {
        auto res = json_response(
          503, fmt::format("{{\"error\":\"the console is not installed: no index.html in the "
                           "console directory (gateway.console-dir = '{}')\"}}",
                           files->dir().find('"') == std::string::npos ? files->dir() : "?"));
        for (auto& h : console_security_headers())
          res.headers.push_back(h);
        return respond(std::move(res));
      }
      return respond(not_found(req.path));
    }
    http_response res;
    res.headers = console_security_headers();
    res.headers.emplace_back("Cache-Control", f->cache_control);
    res.headers.emplace_back("ETag", f->etag);
    res.content_type = f->content_type;
    auto inm = req.headers.find("if-none-match");
    if (inm != req.headers.end() && etag_matches(inm->second, f->etag)) {
      res.status = 304;
      return respond(std::move(res));
    }
    res.body = f->body;
    respond(std::move(res));
  };
  auto index = [serve](const http_request& req, responder respond) {
    serve("/console/index.html", req, respond);
  };
  // Lookups go by the table key built from the decoded segments; a segment holding `/`, `..` or
  // anything else outside the table is simply not found.
  auto one = [serve](const http_request& req, responder respond) {
    auto f = req.params.find("file");
    serve(fmt::format("/console/{}", f != req.params.end() ? f->second : ""), req, respond);
  };
  auto two = [serve](const http_request& req, responder respond) {
    auto d = req.params.find("dir");
    auto f = req.params.find("file");
    serve(fmt::format("/console/{}/{}", d != req.params.end() ? d->second : "",
                      f != req.params.end() ? f->second : ""),
          req, respond);
  };
  std::vector<endpoint> out;
  out.push_back({"GET", "/console", scope::open, "the admin console (index.html)", index});
  out.push_back({"GET", "/console/", scope::open, "the admin console (index.html)", index});
  out.push_back({"GET", "/console/{file}", scope::open,
                 "the console's static files (no data: the data needs a login)", one});
  out.push_back({"GET", "/console/{dir}/{file}", scope::open,
                 "the console's static files and its npm libraries (/console/vendor/…)", two});
  return out;
}

} // namespace sluice::gateway
