// The file sink's own behaviour beyond the compliance suite.

#include "actors/sinks/file/file_sink.hpp"
#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace sluice;

namespace {

struct file_sink_test : ::testing::Test {
  std::filesystem::path dir;
  file_sink_test() {
    char tmpl[] = "/tmp/sluice-file-sink-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~file_sink_test() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string path() const {
    return (dir / "events.ndjson").string();
  }
  void put(const std::string& content) {
    std::ofstream{path(), std::ios::binary} << content;
  }
  std::string content() const {
    std::ifstream in{path(), std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::unique_ptr<file_sink> started() {
    file_sink_config cfg;
    cfg.path = path();
    auto s = std::make_unique<file_sink>(cfg, "node-1");
    std::string error;
    EXPECT_EQ(s->start(error), sink_status::ok) << error;
    return s;
  }
};

TEST_F(file_sink_test, a_partial_last_line_left_by_a_power_loss_is_cut_at_start) {
  put("{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\",\"ty");
  auto s = started();
  EXPECT_EQ(content(), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
  // The replayed batch then starts on a line of its own.
  auto d = decode_json(R"({"id":"c","type":"play","device_id":"d","ts":1})", 1);
  ASSERT_TRUE(d.ok());
  d.events[0].offset = 3;
  write_report report;
  ASSERT_EQ(s->write(d.events, report), sink_status::ok) << report.error;
  auto text = content();
  EXPECT_EQ(text.rfind("{\"id\":\"a\"}\n{\"id\":\"b\"}\n{", 0), 0u) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
}

TEST_F(file_sink_test, a_file_of_whole_lines_is_left_as_it_is) {
  put("{\"id\":\"a\"}\n");
  auto s = started();
  EXPECT_EQ(content(), "{\"id\":\"a\"}\n");
}

TEST_F(file_sink_test, a_file_holding_only_a_partial_line_is_emptied) {
  put(std::string(10000, 'x'));
  auto s = started();
  EXPECT_EQ(content(), "");
}

TEST_F(file_sink_test, a_batch_larger_than_a_write_chunk_is_written_whole_in_order_by_both_entry_points) {
  // Batches are written in chunks of whole lines; by value or by pointer, the bytes are the same.
  event_batch events;
  std::string expected;
  for (size_t i = 0; i < 3000; ++i) { // ~600 KB: more than two chunks
    auto d = decode_json(R"({"id":"e)" + std::to_string(i)
                           + R"(","type":"play","device_id":"d","ts":1,"note":")"
                           + std::string(150, 'a' + static_cast<char>(i % 26)) + "\"}",
                         7);
    ASSERT_TRUE(d.ok());
    d.events[0].offset = i + 1;
    append_json(expected, d.events[0], "node-1");
    expected += '\n';
    events.push_back(std::move(d.events[0]));
  }
  auto s = started();
  write_report report;
  ASSERT_EQ(s->write(events, report), sink_status::ok) << report.error;
  EXPECT_EQ(content(), expected);
  event_refs refs;
  for (auto& e : events)
    refs.push_back(&e);
  ASSERT_EQ(s->write_refs(refs, report), sink_status::ok) << report.error;
  EXPECT_EQ(content(), expected + expected);
}

} // namespace
