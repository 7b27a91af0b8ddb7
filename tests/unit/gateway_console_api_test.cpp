// The console's static files: only files read at start are served (no path reaches the disk),
// with their content type, caching and security headers; ETags give 304.

#include "gateway/console_api.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

using namespace sluice;
using namespace sluice::gateway;
namespace fs = std::filesystem;

namespace {

struct console_dir : ::testing::Test {
  fs::path root;
  fs::path dir;
  void SetUp() override {
    root = fs::temp_directory_path()
           / ("sluice-console-test-" + std::to_string(std::random_device{}()));
    dir = root / "console";
    fs::create_directories(dir / "js");
    fs::create_directories(dir / "node_modules/uplot/dist");
    fs::create_directories(dir / "deep/er");
    write(dir / "index.html", "<!doctype html><title>sluice</title>");
    write(dir / "app.css", "body{}");
    write(dir / "js/app.js", "export {};");
    write(dir / "deep/er/hidden.js", "nested too deep");
    write(dir / "package.json", "{}");
    write(dir / ".env", "SECRET=1");
    write(dir / "notes.md", "not a served type");
    write(dir / "node_modules/uplot/dist/uPlot.esm.js", "export default 1;");
    write(dir / "node_modules/uplot/dist/uPlot.min.css", ".u{}");
    write(dir / "node_modules/uplot/package.json", "{}");
    write(root / "secret.txt", "outside the console directory");
    fs::create_symlink(root / "secret.txt", dir / "link.txt");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  static void write(const fs::path& p, const std::string& text) {
    std::ofstream{p} << text;
  }

  /// Calls the endpoint of `path` as the server's router would (patterns matched by segments).
  static http_response get(const std::vector<endpoint>& eps, const std::string& path,
                           std::map<std::string, std::string> headers = {}) {
    std::vector<std::string> segs;
    size_t start = 1;
    for (;;) {
      auto slash = path.find('/', start);
      segs.push_back(path.substr(start, slash == std::string::npos ? slash : slash - start));
      if (slash == std::string::npos)
        break;
      start = slash + 1;
    }
    for (auto& ep : eps) {
      std::vector<std::string> pat;
      size_t s = 1;
      for (;;) {
        auto slash = ep.pattern.find('/', s);
        pat.push_back(ep.pattern.substr(s, slash == std::string::npos ? slash : slash - s));
        if (slash == std::string::npos)
          break;
        s = slash + 1;
      }
      if (pat.size() != segs.size())
        continue;
      http_request req;
      req.method = "GET";
      req.path = path;
      req.headers = headers;
      bool ok = true;
      for (size_t i = 0; i < pat.size() && ok; ++i) {
        if (pat[i].size() > 2 && pat[i].front() == '{')
          ok = !segs[i].empty(), req.params[pat[i].substr(1, pat[i].size() - 2)] = segs[i];
        else
          ok = pat[i] == segs[i];
      }
      if (!ok)
        continue;
      http_response out;
      ep.fn(req, [&out](http_response r) { out = std::move(r); });
      return out;
    }
    http_response none;
    none.status = 0;
    return none;
  }

  static std::string header(const http_response& r, const std::string& name) {
    for (auto& [k, v] : r.headers)
      if (k == name)
        return v;
    return {};
  }
};

} // namespace

TEST_F(console_dir, only_the_front_end_files_and_the_vendored_library_are_served) {
  auto files = std::make_shared<console_files>();
  auto warnings = files->load(dir.string());
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  std::vector<std::string> expected{"/console/app.css", "/console/index.html",
                                    "/console/js/app.js", "/console/vendor/uPlot.esm.js",
                                    "/console/vendor/uPlot.min.css"};
  EXPECT_EQ(files->paths(), expected)
    << "no package.json, dot-file, markdown, symlink, node_modules or third-level file";
}

TEST_F(console_dir, files_come_with_their_content_type_caching_and_security_headers) {
  auto files = std::make_shared<console_files>();
  files->load(dir.string());
  auto eps = console_endpoints(files);
  for (auto path : {"/console", "/console/", "/console/index.html"}) {
    auto r = get(eps, path);
    EXPECT_EQ(r.status, 200u) << path;
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8") << path;
    EXPECT_EQ(r.body, "<!doctype html><title>sluice</title>") << path;
    EXPECT_EQ(header(r, "Cache-Control"), "no-cache") << path;
    EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(header(r, "X-Frame-Options"), "DENY");
    auto csp = header(r, "Content-Security-Policy");
    EXPECT_EQ(csp.rfind("default-src 'self'; connect-src 'self' ws: wss:", 0), 0u) << csp;
  }
  auto js = get(eps, "/console/js/app.js");
  EXPECT_EQ(js.status, 200u);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  auto css = get(eps, "/console/vendor/uPlot.min.css");
  EXPECT_EQ(css.content_type, "text/css; charset=utf-8");
  EXPECT_EQ(header(css, "Cache-Control"), "public, max-age=86400");
}

TEST_F(console_dir, a_matching_etag_answers_304_without_a_body) {
  auto files = std::make_shared<console_files>();
  files->load(dir.string());
  auto eps = console_endpoints(files);
  auto first = get(eps, "/console/app.css");
  auto etag = header(first, "ETag");
  ASSERT_FALSE(etag.empty());
  auto again = get(eps, "/console/app.css", {{"if-none-match", "\"other\", " + etag}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
  auto changed = get(eps, "/console/app.css", {{"if-none-match", "\"other\""}});
  EXPECT_EQ(changed.status, 200u);
}

TEST_F(console_dir, no_path_leaves_the_table_of_files_read_at_start) {
  auto files = std::make_shared<console_files>();
  files->load(dir.string());
  auto eps = console_endpoints(files);
  // Decoded segments as the router hands them over (%2e%2e → .., %2f → /).
  for (auto path : {"/console/../secret.txt", "/console/js/../../secret.txt",
                    "/console/..", "/console/link.txt", "/console/package.json",
                    "/console/.env", "/console/notes.md", "/console/deep/er",
                    "/console/node_modules/uplot", "/console/js/..%2f..%2fsecret.txt",
                    "/console/vendor/..", "/console//etc", "/console/index.html/"}) {
    auto r = get(eps, path);
    EXPECT_TRUE(r.status == 404u || r.status == 0u) << path << " answered " << r.status;
    EXPECT_EQ(r.body.find("outside the console"), std::string::npos) << path;
  }
  // A file created after start is not served either: nothing is read per request.
  write(dir / "late.js", "export {};");
  EXPECT_EQ(get(eps, "/console/late.js").status, 404u);
}

TEST_F(console_dir, a_missing_directory_is_a_warning_and_the_console_answers_503) {
  auto files = std::make_shared<console_files>();
  auto warnings = files->load((root / "nope").string());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("gateway.console-dir"), std::string::npos);
  auto r = get(console_endpoints(files), "/console");
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.body.find("not installed"), std::string::npos);
}
