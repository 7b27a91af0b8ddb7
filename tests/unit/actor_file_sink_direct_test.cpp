// The file sink's block writes with O_DIRECT (`direct-io`): the file holds exactly the rendered
// NDJSON after every batch, with direct I/O on and off, across restarts and failed writes.

#include "actors/metrics.hpp"
#include "actors/sinks/file/file_sink.hpp"
#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

using namespace sluice;

namespace {

/// Whether files in `dir` can be opened with O_DIRECT (what the sink will find there).
bool direct_supported(const std::filesystem::path& dir) {
  auto probe = (dir / "odirect-probe").string();
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
  if (fd >= 0)
    ::close(fd);
  ::unlink(probe.c_str());
  return fd >= 0;
}

/// Events with offsets from `next_offset` on and a `note` of `note_len(rng)` bytes each.
template <class Len>
event_batch make_events(size_t n, uint64_t& next_offset, std::mt19937& rng, Len note_len) {
  std::string body = "[";
  for (size_t i = 0; i < n; ++i) {
    if (i > 0)
      body += ',';
    auto id = next_offset + i;
    body += R"({"id":"e)" + std::to_string(id) + R"(","type":"play","device_id":"d)"
            + std::to_string(id % 97) + R"(","ts":)" + std::to_string(1000 + id) + R"(,"note":")"
            + std::string(note_len(rng), static_cast<char>('a' + id % 26)) + "\"}";
  }
  body += ']';
  auto d = decode_json(body, 1732233600123);
  EXPECT_TRUE(d.ok()) << d.error;
  for (auto& e : d.events)
    e.offset = next_offset++;
  return std::move(d.events);
}

std::string render_all(const event_batch& events) {
  std::string out;
  for (auto& e : events) {
    append_json(out, e, "node-1");
    out += '\n';
  }
  return out;
}

struct file_sink_direct_test : ::testing::TestWithParam<bool> {
  std::filesystem::path dir;
  std::mt19937 rng{20261122};
  uint64_t next_offset = 1;

  file_sink_direct_test() : dir(make_dir("/tmp")) {
  }
  ~file_sink_direct_test() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  static std::filesystem::path make_dir(const std::string& parent) {
    std::string tmpl = parent + "/sluice-file-sink-direct-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      return {};
    return tmpl;
  }
  std::string path() const {
    return (dir / "events.ndjson").string();
  }
  std::string content() const {
    std::ifstream in{path(), std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void append_raw(const std::string& bytes) {
    std::ofstream{path(), std::ios::binary | std::ios::app} << bytes;
  }
  std::unique_ptr<file_sink> started(bool direct) {
    file_sink_config cfg;
    cfg.path = path();
    cfg.direct_io = direct;
    auto s = std::make_unique<file_sink>(cfg, "node-1");
    std::string error;
    EXPECT_EQ(s->start(error), sink_status::ok) << error;
    EXPECT_EQ(s->direct_io(), direct && direct_supported(dir));
    return s;
  }
  /// Writes `events` by pointer, as the sink runner does.
  sink_status write(file_sink& s, const event_batch& events, std::string* error = nullptr) {
    event_refs refs;
    for (auto& e : events)
      refs.push_back(&e);
    write_report report;
    auto st = s.write_refs(refs, report);
    if (error)
      *error = report.error;
    else
      EXPECT_EQ(st, sink_status::ok) << report.error;
    return st;
  }
  event_batch lines(size_t n, size_t min_note, size_t max_note) {
    std::uniform_int_distribution<size_t> len{min_note, max_note};
    return make_events(n, next_offset, rng, len);
  }
};

TEST_P(file_sink_direct_test, many_batches_of_random_events_give_the_concatenated_ndjson_and_a_whole_file_after_every_batch) {
  auto s = started(GetParam());
  std::string expected;
  std::uniform_int_distribution<size_t> batch_size{1, 400};
  for (int b = 0; b < 40; ++b) {
    event_batch events;
    if (b == 7)
      events = lines(1, 0, 0); // one tiny event
    else if (b == 20)
      events = lines(5000, 200, 800); // ~3 MB: more than a write chunk
    else if (b == 30)
      events = lines(4, 200000, 400000); // lines larger than the render buffer's spare room
    else
      events = lines(batch_size(rng), 0, b % 3 == 0 ? 9000 : 600); // lines crossing blocks
    expected += render_all(events);
    write(*s, events);
    ASSERT_EQ(std::filesystem::file_size(path()), expected.size()) << "after batch " << b;
    auto text = content();
    ASSERT_EQ(text.back(), '\n') << "after batch " << b;
    if (b % 10 == 0 || b == 20 || b == 30) {
      ASSERT_EQ(text, expected) << "after batch " << b;
    }
  }
  EXPECT_EQ(content(), expected);
  EXPECT_TRUE(s->healthy());
}

TEST_P(file_sink_direct_test, a_second_sink_on_the_same_file_appends_after_its_partial_last_block) {
  std::string expected;
  for (int run = 0; run < 3; ++run) {
    auto s = started(GetParam());
    for (int b = 0; b < 3; ++b) {
      auto events = lines(37 + run * 11 + b, 10, 700);
      expected += render_all(events);
      write(*s, events);
    }
    ASSERT_NE(expected.size() % file_sink::block_bytes, 0u); // the restart starts mid-block
    s->stop();
    EXPECT_EQ(content(), expected) << "after run " << run;
  }
}

TEST_P(file_sink_direct_test, a_torn_line_after_the_last_whole_line_is_cut_and_the_next_sink_appends_after_the_whole_lines) {
  std::string expected;
  {
    auto s = started(GetParam());
    auto events = lines(123, 10, 300);
    expected += render_all(events);
    write(*s, events);
  }
  append_raw(R"({"id":"e999","type":"pl)"); // a power loss mid-write
  auto s = started(GetParam());
  EXPECT_EQ(content(), expected);
  auto events = lines(200, 10, 300);
  expected += render_all(events);
  write(*s, events);
  EXPECT_EQ(content(), expected);
}

TEST_P(file_sink_direct_test, a_write_failing_half_way_leaves_no_part_of_the_batch_and_its_retry_writes_it_whole) {
  // The failure is real: a file size limit (RLIMIT_FSIZE) in the middle of the batch makes the
  // kernel refuse the write beyond it with EFBIG. The limit is block-aligned, so the direct path
  // writes up to it and then fails like the buffered one.
  auto s = started(GetParam());
  auto first = lines(300, 10, 600);
  std::string expected = render_all(first);
  write(*s, first);
  auto batch = lines(4000, 100, 400); // ~1.2 MB
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = old;
  limited.rlim_cur = (expected.size() / file_sink::block_bytes + 64) * file_sink::block_bytes;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  std::string error;
  auto st = write(*s, batch, &error);
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(st, sink_status::retry);
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  EXPECT_FALSE(s->healthy());
  EXPECT_EQ(content(), expected);
  // The retry (same sink, no restart) writes the batch whole after the lines before it.
  write(*s, batch);
  expected += render_all(batch);
  EXPECT_EQ(content(), expected);
  EXPECT_EQ(s->direct_io(), GetParam() && direct_supported(dir));
}

TEST_P(file_sink_direct_test, without_fsync_the_block_writes_and_the_cached_last_block_stay_coherent) {
  // With fsync = false the last partial block is still dirty in the page cache when the next
  // batch rewrites it with O_DIRECT (the kernel writes it back first): readers see every byte.
  file_sink_config cfg;
  cfg.path = path();
  cfg.fsync = false;
  cfg.direct_io = GetParam();
  file_sink s{cfg, "node-1"};
  std::string error;
  ASSERT_EQ(s.start(error), sink_status::ok) << error;
  std::string expected;
  for (int b = 0; b < 20; ++b) {
    auto events = lines(b % 4 == 0 ? 1 : 30 + b, 0, 900);
    expected += render_all(events);
    write(s, events);
    ASSERT_EQ(content(), expected) << "after batch " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(direct_io, file_sink_direct_test, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "direct_io_on" : "direct_io_off";
                         });

TEST_F(file_sink_direct_test, a_sink_on_tmpfs_writes_the_same_bytes_with_or_without_o_direct) {
  // tmpfs refused O_DIRECT before Linux 6.6 (the sink then writes buffered) and accepts it since;
  // either way the file holds exactly the rendered lines.
  if (!std::filesystem::is_directory("/dev/shm"))
    GTEST_SKIP() << "no /dev/shm here";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  dir = make_dir("/dev/shm");
  ASSERT_FALSE(dir.empty());
  auto s = started(true);
  std::string expected;
  for (int b = 0; b < 5; ++b) {
    auto events = lines(b == 2 ? 3000 : 50, 10, 800);
    expected += render_all(events);
    write(*s, events);
    ASSERT_EQ(content(), expected) << "after batch " << b;
  }
}

TEST_F(file_sink_direct_test, a_path_that_is_not_a_regular_file_is_written_through_the_page_cache) {
  file_sink_config cfg;
  cfg.path = "/dev/null";
  cfg.fsync = false; // /dev/null cannot be fsynced
  file_sink s{cfg, "node-1"};
  std::string error;
  ASSERT_EQ(s.start(error), sink_status::ok) << error;
  EXPECT_FALSE(s.direct_io());
  write(s, lines(100, 10, 600));
}

TEST_F(file_sink_direct_test, the_direct_io_gauge_says_whether_whole_blocks_bypass_the_page_cache) {
  metrics_registry metrics;
  metric_labels labels{{"sink", "events"}};
  for (bool direct : {true, false}) {
    file_sink_config cfg;
    cfg.path = path();
    cfg.direct_io = direct;
    file_sink s{cfg, "node-1"};
    s.attach_metrics(metrics, labels);
    EXPECT_EQ(metrics.value("sluice_file_sink_direct_io", labels), 0);
    std::string error;
    ASSERT_EQ(s.start(error), sink_status::ok) << error;
    EXPECT_EQ(metrics.value("sluice_file_sink_direct_io", labels),
              direct && direct_supported(dir) ? 1 : 0);
    s.stop();
    EXPECT_EQ(metrics.value("sluice_file_sink_direct_io", labels), 0);
  }
}

} // namespace
