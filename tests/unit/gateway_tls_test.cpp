// The gateway's TLS settings: which mistakes `check_tls` (start-up) reports, naming the option.
// The HTTPS/WSS round trips with a real certificate are in tests/integration/tls.test.mjs.

#include "gateway/tls.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

using namespace sluice::gateway;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// A file in the test's temporary directory, removed at the end.
struct temp_file {
  explicit temp_file(const std::string& content) {
    path = (std::filesystem::temp_directory_path()
            / ("sluice-tls-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n)))
             .string();
    std::ofstream{path} << content;
  }
  ~temp_file() {
    std::remove(path.c_str());
  }
  std::string path;
  static inline int n = 0;
};

} // namespace

TEST(gateway_tls, tls_is_off_and_fine_when_neither_file_is_set) {
  config cfg;
  EXPECT_FALSE(tls_enabled(cfg));
  EXPECT_EQ(check_tls(cfg), "");
}

TEST(gateway_tls, a_certificate_without_a_key_names_the_missing_option) {
  temp_file cert{"not used"};
  config cfg;
  cfg.tls_cert = cert.path;
  EXPECT_TRUE(tls_enabled(cfg));
  auto err = check_tls(cfg);
  EXPECT_TRUE(contains(err, "gateway.tls-key is empty")) << err;
  cfg.tls_cert.clear();
  cfg.tls_key = cert.path;
  err = check_tls(cfg);
  EXPECT_TRUE(contains(err, "gateway.tls-cert is empty")) << err;
}

TEST(gateway_tls, an_unreadable_certificate_file_names_the_option_the_path_and_the_reason) {
  config cfg;
  cfg.tls_cert = "/nonexistent/sluice/cert.pem";
  cfg.tls_key = "/nonexistent/sluice/key.pem";
  auto err = check_tls(cfg);
  EXPECT_TRUE(contains(err, "gateway.tls-cert: cannot read '/nonexistent/sluice/cert.pem'")) << err;
  EXPECT_TRUE(contains(err, "No such file or directory")) << err;
}

TEST(gateway_tls, a_file_that_is_no_pem_certificate_is_refused_naming_the_option) {
  temp_file junk{"hello, I am not a certificate\n"};
  config cfg;
  cfg.tls_cert = junk.path;
  cfg.tls_key = junk.path;
  auto err = check_tls(cfg);
  EXPECT_TRUE(contains(err, "gateway.tls-cert: '" + junk.path + "' is not a PEM certificate chain"))
    << err;
}

TEST(gateway_tls, an_unknown_minimum_version_is_refused_naming_the_choices) {
  temp_file junk{"x"};
  config cfg;
  cfg.tls_cert = junk.path;
  cfg.tls_key = junk.path;
  cfg.tls_min_version = "1.1";
  auto err = check_tls(cfg);
  EXPECT_TRUE(contains(err, "gateway.tls-min-version is \"1.1\"; use \"1.2\" or \"1.3\"")) << err;
}
