// The compliance suite every sink kind passes (STYLE.md): it delivers a batch that is then
// observable at the target, survives a transient failure (retry, then the same batch once), refuses
// a permanent failure with a reason (`error`, or per-event rejections), reports its health, and —
// driven by the real sink runner — ends in dead letters with the reason and counts what it drops.
//
// Adding a kind: write a `sink_under_test` for it (a sink factory over a private target, a reader
// of what the target durably holds, and real fault injectors) and add one entry to `kinds()`.

#include "actor_fixture.hpp"

#include "actors/ingest_log.hpp"
#include "actors/route_table.hpp"
#include "actors/sink_runner.hpp"
#include "actors/sinks/dead_letter/dead_letter_sink.hpp"
#include "actors/sinks/file/file_sink.hpp"
#include "actors/sinks/lake/lake_sink.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <functional>
#include <regex>

#include <sys/resource.h>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

/// One sink kind as the suite drives it. Fault injectors must act on the real target (the file
/// system, the object store), never on the sink object.
class sink_under_test {
public:
  virtual ~sink_under_test() = default;
  /// A new sink over this test's target.
  virtual std::unique_ptr<sink> make() = 0;
  /// Ids of the events durably held by the target, read from the target itself.
  virtual std::vector<std::string> delivered_ids() = 0;
  /// Makes writes of an open sink fail transiently until `heal`.
  virtual void break_transiently() = 0;
  virtual void heal() = 0;
  /// Where a kind's permanent failures come from.
  enum class fault_site {
    target, ///< the target refuses everything (status `error`, unhealthy)
    events, ///< the target is fine but refuses these events (per-event `rejected`, healthy)
  };
  /// Makes the delivery of `events` fail for good, before the sink starts: by breaking the
  /// target, or by making the events unacceptable to this kind (a kind whose target faults are
  /// all transient, such as the lake, which opens its circuit instead). Returns which.
  virtual fault_site break_permanently(event_batch& events) = 0;
};

/// Lowers the process's file-size limit so the next write past `size` bytes of any file fails
/// with EFBIG, the way a full disk or quota does (SIGXFSZ ignored so the write returns the error);
/// `restore` undoes it.
class file_size_fault {
public:
  ~file_size_fault() {
    restore();
  }
  void apply(uint64_t size) {
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved_), 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(size);
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lowered), 0);
    active_ = true;
  }
  void restore() {
    if (!active_)
      return;
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
    active_ = false;
  }

private:
  rlimit saved_{};
  void (*old_handler_)(int) = SIG_DFL;
  bool active_ = false;
};

/// `file`: NDJSON under a temporary directory. Transient fault: the file-size limit at the file's
/// current size (the next write fails with EFBIG). Permanent fault: the sink's path is a directory
/// (EISDIR).
class file_under_test : public sink_under_test {
public:
  explicit file_under_test(std::filesystem::path dir) : path_(dir / "out" / "events.ndjson") {
  }
  std::unique_ptr<sink> make() override {
    file_sink_config cfg;
    cfg.path = path_.string();
    return std::make_unique<file_sink>(cfg, "n1");
  }
  std::vector<std::string> delivered_ids() override {
    std::vector<std::string> out;
    std::ifstream in{path_};
    static const std::regex id_field{R"re(^\{"id":"([^"]*)")re"};
    std::smatch m;
    for (std::string line; std::getline(in, line);) {
      EXPECT_TRUE(std::regex_search(line, m, id_field)) << "not an event line: " << line;
      out.push_back(m[1]);
    }
    return out;
  }
  void break_transiently() override {
    std::error_code ec;
    auto size = std::filesystem::exists(path_) ? std::filesystem::file_size(path_, ec) : 0;
    fault_.apply(size);
  }
  void heal() override {
    fault_.restore();
  }
  fault_site break_permanently(event_batch&) override {
    std::filesystem::create_directories(path_);
    return fault_site::target;
  }

private:
  std::filesystem::path path_;
  file_size_fault fault_;
};

/// `lake`: a local table. What the target holds is read from the committed snapshot (`current`):
/// its files and the log offsets each holds (the suite's event at offset N has id `ev-N`), so a
/// file committed twice shows up as duplicate ids. Transient fault: the file-size limit (staging
/// files cannot be written). Permanent fault: events whose declared column has the wrong type
/// (every store fault is `retry` for the lake: its circuit opens rather than dead-lettering).
/// Files close at `max_file_rows` = 2 so that the runner's batches (2 events) commit at once: the
/// lake's age-based flush follows the wall clock, which the test coordinator does not advance.
class lake_under_test : public sink_under_test {
public:
  static constexpr size_t small_file_rows = 2;
  explicit lake_under_test(std::filesystem::path dir) : dir_(std::move(dir)) {
    cfg_.root = (dir_ / "lake").string();
    cfg_.table = "events";
    cfg_.staging_dir = (dir_ / "staging").string();
    cfg_.max_file_rows = small_file_rows;
    cfg_.columns = {"title_id:string", "position_ms:int64"};
  }
  std::unique_ptr<sink> make() override {
    return std::make_unique<lake_sink>(cfg_);
  }
  std::vector<std::string> delivered_ids() override {
    std::vector<std::string> out;
    if (!std::filesystem::is_directory(cfg_.root))
      return out;
    auto store = persistence::open_object_store(lake_store_config(cfg_));
    lake::table t{*store, cfg_.table};
    t.open();
    for (auto& f : t.current().files) {
      EXPECT_EQ(f.rows, f.max_offset - f.min_offset + 1) << f.path;
      for (auto off = f.min_offset; off <= f.max_offset; ++off)
        out.push_back("ev-" + std::to_string(off));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  void break_transiently() override {
    fault_.apply(0);
  }
  void heal() override {
    fault_.restore();
  }
  fault_site break_permanently(event_batch& events) override {
    // `position_ms` is declared int64: a string there is refused, event by event, for good.
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk{buf};
    pk.pack_map(1);
    pk.pack(std::string{"position_ms"});
    pk.pack(std::string{"not a number"});
    for (auto& e : events)
      e.attrs.assign(buf.data(), buf.size());
    return fault_site::events;
  }

private:
  std::filesystem::path dir_;
  lake_sink_config cfg_;
  file_size_fault fault_;
};

/// A named factory of one kind's `sink_under_test` over a fresh directory.
struct sink_kind {
  std::string name;
  std::function<std::unique_ptr<sink_under_test>(const std::filesystem::path&)> make;
};

/// Names the kind in gtest's output instead of dumping its bytes.
void PrintTo(const sink_kind& kind, std::ostream* os) {
  *os << kind.name;
}

std::vector<sink_kind> kinds() {
  return {
    {"file", [](const auto& dir) { return std::make_unique<file_under_test>(dir); }},
    {"lake", [](const auto& dir) { return std::make_unique<lake_under_test>(dir); }},
  };
}

event_batch events(log_offset first, size_t n) {
  event_batch out;
  for (size_t i = 0; i < n; ++i) {
    auto e = make_event("ev-" + std::to_string(first + i), "play", "dev-1", "p-1",
                        1732233600000 + static_cast<int64_t>(i));
    e.attrs = playback_attrs("t-42", static_cast<int64_t>(i) * 1000);
    e.offset = first + i;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> ids_of(const event_batch& xs) {
  std::vector<std::string> out;
  for (auto& e : xs)
    out.push_back(e.id);
  return out;
}

/// Makes everything a (possibly buffering) sink accepted durable, as the runner does at drain.
void make_durable(sink& s, log_offset upto) {
  std::string error;
  ASSERT_EQ(s.flush(true, error), sink_status::ok) << error;
  EXPECT_EQ(s.durable_upto(upto), upto) << "after flush(final) everything accepted is durable";
}

class sink_compliance : public actor_test, public ::testing::WithParamInterface<sink_kind> {
protected:
  sink_compliance() : target_(GetParam().make(dir_.path / "target")) {
  }

  std::unique_ptr<sink_under_test> target_;
};

TEST_P(sink_compliance, delivers_a_batch_that_is_then_observable_at_the_target) {
  auto s = target_->make();
  std::string error;
  ASSERT_EQ(s->start(error), sink_status::ok) << error;
  auto batch = events(1, 3);
  write_report report;
  ASSERT_EQ(s->write(batch, report), sink_status::ok) << report.error;
  EXPECT_TRUE(report.rejected.empty());
  make_durable(*s, 3);
  EXPECT_TRUE(s->healthy());
  s->stop();
  EXPECT_EQ(target_->delivered_ids(), ids_of(batch));
  EXPECT_FALSE(s->guarantee().empty()) << "every sink states its delivery guarantee";
}

TEST_P(sink_compliance, a_transient_failure_asks_for_a_retry_and_the_same_batch_then_lands_once) {
  auto s = target_->make();
  std::string error;
  ASSERT_EQ(s->start(error), sink_status::ok) << error;
  write_report first;
  ASSERT_EQ(s->write(events(1, 2), first), sink_status::ok) << first.error;
  make_durable(*s, 2);

  target_->break_transiently();
  auto batch = events(3, 2);
  write_report failed;
  auto st = s->write(batch, failed);
  if (st == sink_status::ok) // a buffering sink meets the target only when it flushes
    st = s->flush(true, failed.error);
  EXPECT_EQ(st, sink_status::retry);
  EXPECT_FALSE(failed.error.empty()) << "a failure carries its reason";
  EXPECT_FALSE(s->healthy()) << "health reports the failure";
  EXPECT_EQ(s->durable_upto(2), log_offset{2}) << "the failure loses nothing made durable before";

  target_->heal();
  write_report retried;
  ASSERT_EQ(s->write(batch, retried), sink_status::ok) << retried.error;
  make_durable(*s, 4);
  EXPECT_TRUE(s->healthy()) << "health recovers with the target";
  s->stop();
  EXPECT_EQ(target_->delivered_ids(), (std::vector<std::string>{"ev-1", "ev-2", "ev-3", "ev-4"}))
    << "the retried batch is at the target exactly once";
}

TEST_P(sink_compliance, a_permanent_failure_is_refused_with_a_reason_and_nothing_lands) {
  auto batch = events(1, 2);
  auto site = target_->break_permanently(batch);
  auto s = target_->make();
  std::string error;
  auto st = s->start(error);
  write_report report;
  if (st == sink_status::ok) {
    st = s->write(batch, report);
    if (st == sink_status::ok && report.rejected.empty())
      st = s->flush(true, report.error);
  } else {
    report.error = error;
  }
  if (site == sink_under_test::fault_site::target) {
    EXPECT_EQ(st, sink_status::error);
    EXPECT_FALSE(report.error.empty()) << "a failure carries its reason";
    EXPECT_FALSE(s->healthy()) << "health reports the broken target";
  } else {
    EXPECT_EQ(st, sink_status::ok) << "the target is fine: only the events are refused";
    ASSERT_EQ(report.rejected.size(), batch.size()) << "every refused event is named";
    for (size_t i = 0; i < batch.size(); ++i) {
      EXPECT_EQ(report.rejected[i].first, i);
      EXPECT_FALSE(report.rejected[i].second.empty()) << "each refusal carries its reason";
    }
    EXPECT_TRUE(s->healthy()) << "refused events do not make the target unhealthy";
    make_durable(*s, 2);
  }
  s->stop();
  EXPECT_TRUE(target_->delivered_ids().empty());
}

/// The same kinds driven by the real sink runner with a real ingest log (offsets) and the real
/// dead-letter sink.
class sink_compliance_runner : public sink_compliance {
protected:
  static constexpr uint32_t max_attempts = 3;

  void spawn_runner() {
    ingest_log_deps ldeps;
    ldeps.env = env_.get();
    ldeps.metrics = &metrics_;
    ldeps.consumers = {{"sink.s", consumer_spec::slice::all, 0, 1}};
    log_ = spawn(ingest_log, std::move(ldeps));
    dlq_ = spawn(dead_letter_sink, dead_letter_file(), std::string{"n1"}, &metrics_,
                 std::shared_ptr<const pii_detector>{});
    auto routes = std::make_shared<route_table>();
    routes->unmatched_sinks = {0};
    sink_runner_deps deps;
    deps.name = "s";
    deps.cfg.max_attempts = max_attempts;
    deps.cfg.flush_interval = 50ms;
    deps.cfg.max_batch_events = 2;
    deps.cfg.backoff_initial = 100ms;
    deps.cfg.backoff_max = 200ms;
    deps.target = target_->make();
    deps.log = log_;
    deps.dead_letters = dlq_;
    deps.metrics = &metrics_;
    deps.routes = routes;
    runner_ = spawn(sink_runner, std::move(deps));
    run();
  }

  void dispatch(log_offset first, size_t n) {
    dispatch(events(first, n));
  }

  void dispatch(event_batch xs) {
    committed_batch b;
    b.upto = xs.back().offset;
    b.events = std::move(xs);
    caf::anon_send(runner_, dispatch_atom_v, std::move(b));
    run();
  }

  std::string dead_letter_file() const {
    return (dir_.path / "dead-letters" / "dead-letters.ndjson").string();
  }

  log_offset stored_offset() {
    persistence::read_txn txn{*env_};
    auto v = txn.get(persistence::db::offsets, "sink.s");
    return v ? persistence::decode_be64(*v) : 0;
  }

  double metric(const char* name) {
    return metrics_.value(name, {{"sink", "s"}});
  }

  /// Advances the clock (backoffs, flush interval) until `done` holds or a bound of steps passes.
  template <class F>
  bool advance_until(F done) {
    constexpr int max_steps = 200;
    for (int i = 0; i < max_steps && !done(); ++i)
      advance(50ms);
    return done();
  }

  ingest_log_actor log_;
  dead_letter_admin_actor dlq_;
  sink_actor runner_;
};

TEST_P(sink_compliance_runner, a_transient_failure_is_retried_then_delivered_and_health_recovers) {
  spawn_runner();
  dispatch(1, 2);
  ASSERT_TRUE(advance_until([&] { return stored_offset() == 2; }));
  target_->break_transiently();
  dispatch(3, 2);
  ASSERT_TRUE(advance_until([&] { return metric("sluice_sink_retries_total") >= 1; }));
  EXPECT_EQ(metric("sluice_sink_healthy"), 0.0);
  EXPECT_EQ(stored_offset(), 2u) << "the offset does not move past an undelivered batch";
  target_->heal();
  ASSERT_TRUE(advance_until([&] { return stored_offset() == 4; }));
  EXPECT_EQ(metric("sluice_sink_healthy"), 1.0);
  EXPECT_EQ(metric("sluice_sink_dropped_total"), 0.0);
  caf::anon_send_exit(runner_, caf::exit_reason::user_shutdown); // stops the sink
  run();
  EXPECT_EQ(target_->delivered_ids(), (std::vector<std::string>{"ev-1", "ev-2", "ev-3", "ev-4"}));
}

TEST_P(sink_compliance_runner, a_permanent_failure_ends_in_dead_letters_and_is_counted_as_dropped) {
  auto batch = events(1, 2);
  auto site = target_->break_permanently(batch);
  spawn_runner();
  dispatch(std::move(batch));
  ASSERT_TRUE(advance_until([&] { return metric("sluice_sink_dropped_total") == 2; }));
  EXPECT_EQ(metric("sluice_sink_healthy"), site == sink_under_test::fault_site::target ? 0.0 : 1.0);
  EXPECT_TRUE(advance_until([&] { return stored_offset() == 2; }))
    << "dead-lettered events are done for the sink";
  run();
  dead_letter_store store{dead_letter_file()};
  ASSERT_EQ(store.open(), "");
  ASSERT_EQ(store.size(), 2u);
  dead_letter_query q;
  q.limit = 10;
  std::string page;
  std::string error;
  ASSERT_TRUE(store.list(q, page, error)) << error;
  EXPECT_NE(page.find("\"origin\":\"sink.s\""), std::string::npos) << page;
  EXPECT_NE(page.find("\"id\":\"ev-1\""), std::string::npos) << page;
  EXPECT_NE(page.find("\"reason\":\"sink s"), std::string::npos) << page;
  EXPECT_TRUE(target_->delivered_ids().empty());
}

std::string kind_name(const ::testing::TestParamInfo<sink_kind>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(every_sink_kind, sink_compliance, ::testing::ValuesIn(kinds()), kind_name);
INSTANTIATE_TEST_SUITE_P(every_sink_kind, sink_compliance_runner, ::testing::ValuesIn(kinds()),
                         kind_name);

} // namespace
