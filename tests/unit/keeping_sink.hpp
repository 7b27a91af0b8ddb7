#pragma once

// A sink for actor tests that accepts every write and keeps what it got.

#include "actors/sinks/sink.hpp"

#include <string>
#include <vector>

namespace sluice::testing {

/// A sink that keeps what it is given.
struct keeping_sink : sink {
  std::vector<event> written;
  sink_status start(std::string&) override {
    return sink_status::ok;
  }
  sink_status write(const event_batch& events, write_report&) override {
    written.insert(written.end(), events.begin(), events.end());
    return sink_status::ok;
  }
  bool healthy() const override {
    return true;
  }
  void stop() override {
  }
  std::string_view guarantee() const override {
    return "test";
  }
  std::vector<std::string> ids() const {
    std::vector<std::string> out;
    for (auto& e : written)
      out.push_back(e.id);
    return out;
  }
};

} // namespace sluice::testing
