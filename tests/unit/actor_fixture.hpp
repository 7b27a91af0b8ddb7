#pragma once

// Runs actors on CAF's deterministic test coordinator inside GoogleTest: nothing runs until the
// test says so, timers fire only when the test advances the clock.

#include "actors/ingest_log.hpp"
#include "actors/interfaces.hpp"
#include "actors/metrics.hpp"
#include "persistence/lmdb.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace sluice::testing {

struct test_config : caf::actor_system_config {
  test_config() {
    set("scheduler.policy", caf::atom("testing"));
    set("logger.console", caf::atom("none"));
  }
};

/// Captures what a consumer receives.
struct captured {
  std::vector<committed_batch> batches;
  size_t drains = 0;
  /// Report each batch `processed` to the log at once (flow control); tests of the window turn
  /// this off and report with `caf::send_as`.
  bool auto_process = true;
  size_t events() const {
    size_t n = 0;
    for (auto& b : batches)
      n += b.events.size();
    return n;
  }
};

inline consumer_actor::behavior_type capture_consumer(consumer_actor::pointer self,
                                                      std::shared_ptr<captured> out) {
  return {
    [self, out](dispatch_atom, committed_batch& b) {
      auto upto = b.upto;
      out->batches.push_back(std::move(b));
      if (out->auto_process)
        self->send(caf::actor_cast<ingest_log_actor>(self->current_sender()), processed_atom_v,
                   upto);
    },
    [out](drain_atom) {
      ++out->drains;
      return caf::ok_atom_v;
    },
  };
}

/// A temporary directory removed at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    char tmpl[] = "/tmp/sluice-actor-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

class actor_test : public ::testing::Test {
protected:
  actor_test() : sys_(cfg_), sched_(dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())) {
    open_env();
  }

  /// (Re)opens the environment; `map_bytes` > 0 fixes the map at that size (initial = max).
  void open_env(size_t map_bytes = 0) {
    env_.reset();
    persistence::env_options opts;
    opts.path = (dir_.path / "lmdb").string();
    opts.initial_map_bytes = size_t{64} << 20;
    if (map_bytes > 0)
      opts.initial_map_bytes = opts.max_map_bytes = map_bytes;
    opts.mode = persistence::durability::none;
    env_ = std::make_unique<persistence::environment>(opts);
  }

  ~actor_test() override {
    // Pending timers keep actors alive; stop everything so the actor system can shut down.
    for (auto& a : tracked_)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  /// Spawns `fn` on the test coordinator and stops it when the test ends.
  template <class F, class... Ts>
  auto spawn(F fn, Ts&&... xs) {
    auto handle = sys_.spawn(fn, std::forward<Ts>(xs)...);
    tracked_.push_back(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

  /// An ingest log over the test environment, dispatching at once to one consumer (`sink.a`,
  /// every event) that records into `out`.
  ingest_log_actor spawn_capturing_log(std::shared_ptr<captured> out) {
    ingest_log_deps deps;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.consumers.push_back({"sink.a", consumer_spec::slice::all, 0, 1});
    auto log = spawn(ingest_log, std::move(deps));
    caf::anon_send(log, connect_atom_v, std::vector<consumer_actor>{spawn(capture_consumer, out)});
    caf::anon_send(log, replay_atom_v);
    run();
    return log;
  }

  /// Runs every runnable actor until nothing is left.
  void run() {
    sched_.run();
  }
  /// Advances the clock by `d`, firing due timers, and runs.
  void advance(caf::timespan d) {
    sched_.advance_time(d);
    sched_.run();
  }

  temp_dir dir_;
  test_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  metrics_registry metrics_;
  std::unique_ptr<persistence::environment> env_;
  std::vector<caf::actor> tracked_;
};

/// An event with the envelope set and no attributes.
inline event make_event(std::string id, std::string type, std::string device, std::string profile,
                        int64_t ts) {
  event e;
  e.id = std::move(id);
  e.type = std::move(type);
  e.device_id = std::move(device);
  e.profile_id = std::move(profile);
  e.ts = ts;
  e.ingest_ts = ts;
  return e;
}

/// msgpack attrs `{"title_id": title, "position_ms": position[, "duration_ms": duration]}`.
inline std::string playback_attrs(const std::string& title, int64_t position, int64_t duration = 0) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_map(duration > 0 ? 3 : 2);
  pk.pack(std::string{"title_id"});
  pk.pack(title);
  pk.pack(std::string{"position_ms"});
  pk.pack(position);
  if (duration > 0) {
    pk.pack(std::string{"duration_ms"});
    pk.pack(duration);
  }
  return std::string{buf.data(), buf.size()};
}

} // namespace sluice::testing
