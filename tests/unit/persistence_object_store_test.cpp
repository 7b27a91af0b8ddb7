// The lake's object store: the local directory store, and the S3 store against a real S3 server
// (s3rver behind a proxy that verifies every request's AWS SigV4 signature, spawned from
// tests/integration/lib/s3.mjs).

#include "persistence/local_store.hpp"
#include "persistence/object_store.hpp"
#include "persistence/s3_store.hpp"

#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SLUICE_SOURCE_DIR
#  error "SLUICE_SOURCE_DIR must name the source root (tests/CMakeLists.txt sets it)"
#endif

namespace sp = sluice::persistence;
using sp::testing::temp_dir;
namespace fs = std::filesystem;

namespace {

/// s3rver's only account.
constexpr const char* s3rver_key = "S3RVER";
constexpr const char* bucket = "lake";
/// Startup of node + s3rver takes about a second; leave room for a loaded CI machine.
constexpr std::chrono::seconds server_start_deadline{30};
constexpr std::chrono::seconds server_stop_deadline{15};
constexpr uint64_t mib = uint64_t{1} << 20;
/// S3's smallest part; the multipart test uses it so the test would pass on real S3 too.
constexpr uint64_t min_part_bytes = 5 * mib;

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out)
    throw std::runtime_error("cannot write " + path);
}

/// Deterministic pseudo-random bytes (every byte value, NULs included).
std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng{seed};
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(rng() & 0xff);
  return out;
}

std::vector<std::string> keys_of(const std::vector<sp::object_info>& infos) {
  std::vector<std::string> out;
  for (auto& i : infos)
    out.push_back(i.key);
  return out;
}

std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// -- local store ---------------------------------------------------------------------------------

TEST(object_store, local_put_replaces_an_object_whole_and_leaves_no_temporary_file) {
  temp_dir dir;
  sp::local_store store{dir.sub("lake")};
  store.put("t/current", "snapshot-1");
  store.put("t/current", "snapshot-2");
  EXPECT_EQ(store.get("t/current"), std::optional<std::string>{"snapshot-2"});
  EXPECT_EQ(files_under(dir.sub("lake")), std::vector<std::string>{"current"});
  EXPECT_TRUE(store.healthy());
}

TEST(object_store, local_put_if_absent_creates_once_and_never_replaces) {
  temp_dir dir;
  sp::local_store a{dir.sub("lake")};
  sp::local_store b{dir.sub("lake")}; // another writer on the same directory
  EXPECT_TRUE(a.put_if_absent("t/_meta/snap-1", "from a"));
  EXPECT_FALSE(b.put_if_absent("t/_meta/snap-1", "from b"));
  EXPECT_FALSE(a.put_if_absent("t/_meta/snap-1", "from a again"));
  EXPECT_EQ(b.get("t/_meta/snap-1"), std::optional<std::string>{"from a"});
  EXPECT_EQ(files_under(dir.sub("lake")), std::vector<std::string>{"snap-1"}) << "no temp left";
}

TEST(object_store, local_put_file_moves_the_file_into_nested_directories_and_consumes_it) {
  temp_dir dir;
  sp::local_store store{dir.sub("lake")};
  auto bytes = random_bytes(100000, 1);
  write_file(dir.sub("staged.parquet"), bytes);
  store.put_file("events/dt=2024-11-22/part-0.parquet", dir.sub("staged.parquet"));
  EXPECT_FALSE(fs::exists(dir.sub("staged.parquet")));
  EXPECT_EQ(read_file(dir.sub("lake/events/dt=2024-11-22/part-0.parquet")), bytes);
  EXPECT_EQ(store.get("events/dt=2024-11-22/part-0.parquet"), bytes);
}

TEST(object_store, local_put_file_copies_across_file_systems_then_removes_the_source) {
  temp_dir dir;
  struct stat shm {}, tmp {};
  if (::stat("/dev/shm", &shm) != 0 || ::stat(dir.path().c_str(), &tmp) != 0 || shm.st_dev == tmp.st_dev)
    GTEST_SKIP() << "needs /dev/shm on another file system than " << dir.path() << " to get EXDEV";
  auto staged = "/dev/shm/sluice-object-store-test-" + std::to_string(::getpid());
  auto bytes = random_bytes(3 * mib + 17, 2); // several copy buffers
  write_file(staged, bytes);
  sp::local_store store{dir.sub("lake")};
  store.put_file("a/b.bin", staged);
  EXPECT_FALSE(fs::exists(staged));
  EXPECT_EQ(store.get("a/b.bin"), bytes);
  EXPECT_EQ(files_under(dir.sub("lake")), std::vector<std::string>{"b.bin"}); // no temporary left
}

TEST(object_store, local_list_is_recursive_sorted_and_filtered_by_key_prefix) {
  temp_dir dir;
  sp::local_store store{dir.sub("lake")};
  for (auto key : {"b/2", "a/sub/deeper/4", "a/1", "ab", "a/sub/3"})
    store.put(key, std::string(std::strlen(key), 'x'));
  EXPECT_EQ(keys_of(store.list("")),
            (std::vector<std::string>{"a/1", "a/sub/3", "a/sub/deeper/4", "ab", "b/2"}));
  EXPECT_EQ(keys_of(store.list("a")),
            (std::vector<std::string>{"a/1", "a/sub/3", "a/sub/deeper/4", "ab"}));
  EXPECT_EQ(keys_of(store.list("a/")), (std::vector<std::string>{"a/1", "a/sub/3", "a/sub/deeper/4"}));
  EXPECT_EQ(keys_of(store.list("a/sub/d")), std::vector<std::string>{"a/sub/deeper/4"});
  EXPECT_TRUE(store.list("zzz/").empty());
  auto all = store.list("");
  for (auto& info : all)
    EXPECT_EQ(info.size, info.key.size()) << info.key;
}

TEST(object_store, local_get_of_a_missing_key_is_nullopt) {
  temp_dir dir;
  sp::local_store store{dir.sub("lake")};
  EXPECT_EQ(store.get("nope"), std::nullopt);
  EXPECT_EQ(store.get("no/such/dir/file"), std::nullopt);
  store.put("dir/file", "x");
  EXPECT_EQ(store.get("dir"), std::nullopt); // a key prefix is not an object
}

TEST(object_store, local_remove_deletes_and_tolerates_missing_keys) {
  temp_dir dir;
  sp::local_store store{dir.sub("lake")};
  store.put("a/1", "one");
  store.put("a/2", "two");
  store.remove("a/1");
  store.remove("a/1");
  store.remove("never/was");
  EXPECT_EQ(store.get("a/1"), std::nullopt);
  EXPECT_EQ(keys_of(store.list("")), std::vector<std::string>{"a/2"});
}

TEST(object_store, local_url_is_an_absolute_file_url_even_for_a_relative_root) {
  temp_dir dir;
  auto cwd = fs::current_path();
  fs::current_path(dir.path());
  sp::object_store_config cfg;
  cfg.root = "rel/lake";
  auto store = sp::open_object_store(cfg);
  fs::current_path(cwd);
  EXPECT_EQ(store->url("t/current"), "file://" + dir.path() + "/rel/lake/t/current");
  sp::object_store_config by_url;
  by_url.root = "file://" + dir.sub("lake2");
  EXPECT_EQ(sp::open_object_store(by_url)->url("k"), "file://" + dir.sub("lake2") + "/k");
}

TEST(object_store, invalid_keys_are_permanent_errors_on_both_stores) {
  temp_dir dir;
  sp::local_store store{dir.sub("lake")};
  for (std::string key : {"", "/abs", "a//b", "a/", "../escape", "a/../../b", "./a"}) {
    try {
      store.put(key, "x");
      ADD_FAILURE() << "key '" << key << "' was accepted";
    } catch (const sp::store_error& e) {
      EXPECT_FALSE(e.transient()) << key;
      EXPECT_NE(std::string{e.what()}.find("invalid object key"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(store.healthy());
  EXPECT_FALSE(fs::exists(dir.sub("escape")));
}

TEST(object_store, a_root_that_is_a_file_is_refused_with_a_permanent_error_naming_it) {
  temp_dir dir;
  write_file(dir.sub("not-a-dir"), "x");
  try {
    sp::local_store store{dir.sub("not-a-dir")};
    FAIL() << "opened a store on a file";
  } catch (const sp::store_error& e) {
    EXPECT_FALSE(e.transient());
    EXPECT_NE(std::string{e.what()}.find(dir.sub("not-a-dir")), std::string::npos) << e.what();
  }
}

TEST(object_store, config_validation_names_the_wrong_option) {
  sp::object_store_config cfg;
  EXPECT_NE(cfg.validate().find("root"), std::string::npos);
  cfg.root = "/tmp/lake";
  EXPECT_EQ(cfg.validate(), "");
  cfg.root = "gs://bucket/x";
  EXPECT_NE(cfg.validate().find("unsupported scheme"), std::string::npos);
  cfg.root = "s3://Bad_Bucket/x";
  EXPECT_NE(cfg.validate().find("bucket"), std::string::npos);
  cfg.root = "s3://good-bucket/tenant/events";
  EXPECT_EQ(cfg.validate(), "");
  cfg.part_bytes = mib;
  EXPECT_NE(cfg.validate().find("part-bytes"), std::string::npos);
  cfg.part_bytes = min_part_bytes;
  cfg.endpoint = "127.0.0.1:9000";
  EXPECT_NE(cfg.validate().find("endpoint"), std::string::npos);
  cfg.endpoint = "http://127.0.0.1:9000";
  cfg.list_page_keys = 5000;
  EXPECT_NE(cfg.validate().find("list-page-keys"), std::string::npos);
  cfg.list_page_keys = 1000;
  cfg.max_attempts = 0;
  EXPECT_NE(cfg.validate().find("max-attempts"), std::string::npos);
  try {
    sp::open_object_store(cfg);
    FAIL() << "opened an invalid configuration";
  } catch (const sp::store_error& e) {
    EXPECT_FALSE(e.transient());
    EXPECT_NE(std::string{e.what()}.find("max-attempts"), std::string::npos);
  }
}

// -- S3 store against s3rver behind the SigV4-verifying proxy -----------------------------------

/// `node` from PATH, or empty.
std::string find_node() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    auto dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    auto candidate = (dir.empty() ? std::string{"."} : dir) + "/node";
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  return {};
}

/// One `node tests/integration/lib/s3.mjs` process: s3rver plus the verifying proxy. Stopped (and
/// waited for) by `stop()` or the destructor; it also exits by itself when its stdin (our pipe)
/// closes, e.g. when this test process dies.
class s3_server {
public:
  explicit s3_server(std::vector<std::string> extra_args = {}) {
    auto script = std::string{SLUICE_SOURCE_DIR} + "/tests/integration/lib/s3.mjs";
    auto s3rver = std::string{SLUICE_SOURCE_DIR} + "/tests/node/node_modules/s3rver/bin/s3rver.js";
    auto node = find_node();
    if (node.empty())
      throw std::runtime_error("node is not in PATH: run ./test.sh, which installs node and the npm "
                               "modules the S3 tests need");
    if (::access(s3rver.c_str(), R_OK) != 0)
      throw std::runtime_error(s3rver + " is missing: run ./test.sh, which installs the npm modules "
                                        "(tests/node) the S3 tests need");
    std::vector<std::string> args{node, script, "--bucket", bucket, "--watch-stdin"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
      throw std::runtime_error(std::string{"pipe: "} + std::strerror(errno));
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error(std::string{"fork: "} + std::strerror(errno));
    if (pid_ == 0) {
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    auto line = read_line(server_start_deadline);
    auto pos = line.find("\"endpoint\":\"");
    if (pos == std::string::npos)
      throw std::runtime_error("s3.mjs did not print its endpoint (its stderr is above); got: " + line);
    pos += std::strlen("\"endpoint\":\"");
    endpoint_ = line.substr(pos, line.find('"', pos) - pos);
  }
  ~s3_server() {
    stop();
  }
  s3_server(const s3_server&) = delete;
  s3_server& operator=(const s3_server&) = delete;

  const std::string& endpoint() const {
    return endpoint_;
  }

  /// A store on this server (bucket `lake`, optional key prefix).
  std::unique_ptr<sp::object_store> open(const std::string& secret = s3rver_key,
                                         const std::string& prefix = "",
                                         uint32_t max_attempts = 4) const {
    return sp::open_object_store(config(secret, prefix, max_attempts));
  }
  sp::object_store_config config(const std::string& secret = s3rver_key, const std::string& prefix = "",
                                 uint32_t max_attempts = 4) const {
    sp::object_store_config cfg;
    cfg.root = std::string{"s3://"} + bucket + (prefix.empty() ? "" : "/" + prefix);
    cfg.endpoint = endpoint_;
    cfg.region = "us-east-1";
    cfg.access_key = s3rver_key;
    cfg.secret_key = secret;
    cfg.max_attempts = max_attempts;
    cfg.retry_backoff = std::chrono::milliseconds{10};
    return cfg;
  }

  /// Makes the proxy fail the next `count` requests with HTTP `status` and S3 error `code`.
  void fail_next(int count, int status, const std::string& code) const {
    auto url = endpoint_ + "/__sluice/fail-next?count=" + std::to_string(count)
               + "&status=" + std::to_string(status) + "&code=" + code;
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
    auto rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK)
      throw std::runtime_error(std::string{"fail-next: "} + curl_easy_strerror(rc));
  }

  /// Stops the proxy and s3rver and waits until the process has exited (its port is closed).
  void stop() {
    if (pid_ <= 0)
      return;
    ::close(stdin_);
    ::kill(pid_, SIGTERM);
    // The process closes its stdout when it exits: wait for EOF with a deadline.
    auto deadline = std::chrono::steady_clock::now() + server_stop_deadline;
    char buf[256];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{stdout_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
        ::kill(pid_, SIGKILL);
        break;
      }
      if (::read(stdout_, buf, sizeof buf) <= 0)
        break;
    }
    ::close(stdout_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

private:
  std::string read_line(std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string line;
    char c;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{stdout_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0)
        throw std::runtime_error("s3.mjs printed no endpoint within " + std::to_string(timeout.count()) + " s");
      auto n = ::read(stdout_, &c, 1);
      if (n <= 0)
        throw std::runtime_error("s3.mjs exited before printing its endpoint (its stderr is above)");
      if (c == '\n')
        return line;
      line.push_back(c);
    }
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string endpoint_;
};

class s3_object_store : public ::testing::Test {
protected:
  void SetUp() override {
    try {
      server_ = std::make_unique<s3_server>(server_args());
    } catch (const std::exception& e) {
      FAIL() << "cannot start the S3 test server: " << e.what();
    }
  }
  virtual std::vector<std::string> server_args() const {
    return {};
  }
  std::unique_ptr<s3_server> server_;
};

TEST_F(s3_object_store, s3_put_if_absent_is_a_conditional_put_answered_412_when_the_key_exists) {
  auto store = server_->open();
  EXPECT_TRUE(store->put_if_absent("t/_meta/snap-1", "from a"));
  EXPECT_FALSE(store->put_if_absent("t/_meta/snap-1", "from b"));
  EXPECT_EQ(store->get("t/_meta/snap-1"), std::optional<std::string>{"from a"});
  EXPECT_TRUE(store->healthy()) << "a lost race is not a store failure";
}

TEST_F(s3_object_store, s3_put_get_list_remove_round_trip_through_the_signature_checking_proxy) {
  auto store = server_->open();
  auto binary = random_bytes(70000, 3);
  // Keys that need percent-encoding in the path and entity-escaping in the list XML.
  const std::string odd = "events/dt=2024-11-22/part 0+1&<x>'\"~.parquet";
  store->put(odd, binary);
  store->put("events/current", "snap-1");
  store->put("events/current", "snap-2");
  store->put("other/x", "");
  EXPECT_EQ(store->get(odd), binary);
  EXPECT_EQ(store->get("events/current"), std::optional<std::string>{"snap-2"});
  EXPECT_EQ(store->get("other/x"), std::optional<std::string>{""});
  EXPECT_EQ(store->get("events/missing"), std::nullopt);
  auto listed = store->list("events/");
  ASSERT_EQ(keys_of(listed), (std::vector<std::string>{"events/current", odd}));
  EXPECT_EQ(listed[0].size, 6u);
  EXPECT_EQ(listed[1].size, binary.size());
  store->remove("events/current");
  store->remove("events/current"); // absent: no error
  EXPECT_EQ(store->get("events/current"), std::nullopt);
  EXPECT_EQ(keys_of(store->list("")), (std::vector<std::string>{odd, "other/x"}));
  EXPECT_EQ(store->url("events/current"), "s3://lake/events/current");
  EXPECT_TRUE(store->healthy());
}

TEST_F(s3_object_store, s3_list_follows_continuation_tokens_and_strips_the_root_prefix) {
  auto cfg = server_->config(s3rver_key, "tenant-a/lake");
  cfg.list_page_keys = 2;
  auto store = sp::open_object_store(cfg);
  auto outside = server_->open(); // the whole bucket
  outside->put("tenant-b/lake/t/0", "not ours");
  std::vector<std::string> expected;
  for (int i = 6; i >= 0; --i) { // written out of order; 7 keys = 4 pages of 2
    auto key = "t/" + std::to_string(i);
    store->put(key, std::string(static_cast<size_t>(i), 'v'));
    expected.insert(expected.begin(), key);
  }
  auto listed = store->list("t/");
  EXPECT_EQ(keys_of(listed), expected);
  for (auto& info : listed)
    EXPECT_EQ(info.size, static_cast<uint64_t>(std::stoi(info.key.substr(2))));
  EXPECT_EQ(store->url("t/0"), "s3://lake/tenant-a/lake/t/0");
  EXPECT_EQ(outside->get("tenant-a/lake/t/3"), std::optional<std::string>{"vvv"});
}

class s3_object_store_without_big_puts : public s3_object_store {
protected:
  /// A single PutObject above 6 MiB is refused (EntityTooLarge): only multipart gets 11 MiB in.
  std::vector<std::string> server_args() const override {
    return {"--max-put-bytes", std::to_string(6 * mib)};
  }
};

TEST_F(s3_object_store_without_big_puts, s3_put_file_above_the_threshold_uses_multipart_and_reads_back_byte_exact) {
  temp_dir dir;
  auto cfg = server_->config();
  cfg.multipart_threshold = min_part_bytes;
  cfg.part_bytes = min_part_bytes;
  auto store = sp::open_object_store(cfg);
  auto bytes = random_bytes(11 * mib + 123, 4); // 3 parts: 5 + 5 + 1 MiB
  write_file(dir.sub("big.parquet"), bytes);
  store->put_file("events/big.parquet", dir.sub("big.parquet"));
  EXPECT_FALSE(fs::exists(dir.sub("big.parquet"))) << "put_file consumes the local file";
  auto back = store->get("events/big.parquet");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->size(), bytes.size());
  EXPECT_TRUE(*back == bytes) << "the object differs from the uploaded file";
  EXPECT_EQ(store->list("events/").at(0).size, bytes.size());
}

TEST_F(s3_object_store_without_big_puts, s3_a_single_put_above_the_servers_limit_is_a_permanent_error) {
  auto store = server_->open();
  try {
    store->put("too/big", std::string(6 * mib + 1, 'x'));
    FAIL() << "the proxy accepted an oversized PutObject";
  } catch (const sp::store_error& e) {
    EXPECT_FALSE(e.transient());
    EXPECT_NE(std::string{e.what()}.find("EntityTooLarge"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(store->healthy());
}

TEST_F(s3_object_store, s3_put_file_below_the_threshold_is_one_put_and_consumes_the_file) {
  temp_dir dir;
  auto bytes = random_bytes(200000, 5);
  write_file(dir.sub("small"), bytes);
  auto store = server_->open();
  store->put_file("s/small", dir.sub("small"));
  EXPECT_FALSE(fs::exists(dir.sub("small")));
  EXPECT_EQ(store->get("s/small"), bytes);
}

TEST_F(s3_object_store, s3_wrong_secret_is_a_permanent_error_naming_signature_does_not_match) {
  auto wrong = server_->open("not-the-secret");
  try {
    wrong->put("k", "v");
    FAIL() << "a request signed with the wrong secret was accepted";
  } catch (const sp::store_error& e) {
    EXPECT_FALSE(e.transient());
    std::string what = e.what();
    EXPECT_NE(what.find("SignatureDoesNotMatch"), std::string::npos) << what;
    EXPECT_NE(what.find("403"), std::string::npos) << what;
  }
  EXPECT_FALSE(wrong->healthy());
  EXPECT_THROW(wrong->get("k"), sp::store_error);
  auto right = server_->open();
  right->put("k", "v");
  EXPECT_EQ(right->get("k"), std::optional<std::string>{"v"});
}

TEST_F(s3_object_store, s3_credentials_and_region_come_from_the_environment_when_not_configured) {
  auto cfg = server_->config();
  cfg.access_key.clear();
  cfg.secret_key.clear();
  cfg.region.clear();
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  try {
    sp::open_object_store(cfg);
    FAIL() << "opened an S3 store without credentials";
  } catch (const sp::store_error& e) {
    EXPECT_FALSE(e.transient());
    EXPECT_NE(std::string{e.what()}.find("AWS_ACCESS_KEY_ID"), std::string::npos) << e.what();
  }
  ::setenv("AWS_ACCESS_KEY_ID", s3rver_key, 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", s3rver_key, 1);
  ::setenv("AWS_REGION", "eu-west-3", 1); // the proxy checks the signature with the sent scope
  auto store = sp::open_object_store(cfg);
  store->put("env/k", "from env");
  EXPECT_EQ(store->get("env/k"), std::optional<std::string>{"from env"});
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_REGION");
}

TEST_F(s3_object_store, s3_throttling_is_retried_with_backoff_until_attempts_run_out) {
  auto store = server_->open(s3rver_key, "", 4);
  server_->fail_next(3, 503, "SlowDown");
  store->put("r/k", "after three SlowDowns"); // attempts 1-3 throttled, the 4th succeeds
  EXPECT_TRUE(store->healthy());
  EXPECT_EQ(store->get("r/k"), std::optional<std::string>{"after three SlowDowns"});
  server_->fail_next(4, 503, "SlowDown");
  try {
    store->put("r/k2", "never");
    FAIL() << "four SlowDowns with four attempts succeeded";
  } catch (const sp::store_error& e) {
    EXPECT_TRUE(e.transient());
    EXPECT_NE(std::string{e.what()}.find("SlowDown"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(store->healthy());
  server_->fail_next(1, 403, "AccessDenied"); // permanent: not retried, so the next call works
  EXPECT_THROW(store->put("r/k3", "x"), sp::store_error);
  store->put("r/k3", "x");
  EXPECT_EQ(store->get("r/k3"), std::optional<std::string>{"x"});
}

TEST_F(s3_object_store, s3_a_stopped_server_gives_a_transient_error) {
  auto store = server_->open(s3rver_key, "", 2);
  store->put("k", "v");
  server_->stop();
  for (auto op : {0, 1, 2}) {
    try {
      if (op == 0)
        store->put("k", "v2");
      else if (op == 1)
        store->get("k");
      else
        store->list("");
      FAIL() << "operation " << op << " succeeded against a stopped server";
    } catch (const sp::store_error& e) {
      EXPECT_TRUE(e.transient()) << e.what();
      EXPECT_NE(std::string{e.what()}.find("after 2 attempts"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(store->healthy());
}

} // namespace
