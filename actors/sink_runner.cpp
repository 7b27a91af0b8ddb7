#include "actors/sink_runner.hpp"

#include "actors/metrics.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace sluice {

sink_runner_state::~sink_runner_state() {
  if (deps.target)
    deps.target->stop();
}

namespace {

using self_ptr = sink_actor::stateful_pointer<sink_runner_state>;

size_t approx_bytes(const event& e) {
  return e.id.size() + e.type.size() + e.device_id.size() + e.profile_id.size() + e.attrs.size()
         + 64;
}

void maybe_finish_drains(self_ptr self) {
  auto& st = self->state;
  bool awaiting_retry = !st.inflight.empty();
  if (st.drains.empty() || st.checkpointing || (!st.buffer.empty() && !awaiting_retry))
    return;
  // A batch awaiting retry stays in the log (its offset is not committed): it is replayed after a
  // restart, so drain need not wait for an unreachable target.
  for (auto& rp : st.drains)
    rp.deliver(caf::ok_atom_v);
  st.drains.clear();
}

void commit_offset(self_ptr self, log_offset upto) {
  auto& st = self->state;
  if (upto <= st.deps.done_upto)
    return;
  if (st.checkpointing) {
    st.checkpoint_again = std::max(st.checkpoint_again, upto);
    return;
  }
  st.checkpointing = true;
  checkpoint cp;
  cp.consumer = "sink." + st.deps.name;
  cp.done_upto = upto;
  self->request(st.deps.log, caf::infinite, commit_atom_v, std::move(cp))
    .then(
      [self, upto](caf::ok_atom) {
        auto& st = self->state;
        st.checkpointing = false;
        st.deps.done_upto = std::max(st.deps.done_upto, upto);
        if (st.checkpoint_again > st.deps.done_upto) {
          auto next = st.checkpoint_again;
          st.checkpoint_again = 0;
          commit_offset(self, next);
          return;
        }
        maybe_finish_drains(self);
      },
      [self](caf::error& err) {
        self->state.checkpointing = false;
        self->state.errors->inc();
        aout(self) << "sink " << self->state.deps.name
                   << ": offset commit failed: " << to_string(err) << '\n';
        maybe_finish_drains(self);
      });
}

void give_up(self_ptr self, const std::string& reason) {
  auto& st = self->state;
  std::vector<dead_letter> letters;
  letters.reserve(st.inflight.size());
  for (auto& e : st.inflight)
    letters.push_back(dead_letter{std::move(e), reason, "sink." + st.deps.name});
  st.dead_lettered->inc(letters.size());
  self->send(st.deps.dead_letters, dead_atom_v, std::move(letters));
  st.inflight.clear();
  st.attempts = 0;
  commit_offset(self, st.inflight_upto);
}

void flush(self_ptr self);

void attempt(self_ptr self) {
  auto& st = self->state;
  write_report report;
  auto& error = report.error;
  auto status = sink_status::ok;
  if (!st.started) {
    status = st.deps.target->start(error);
    st.started = status == sink_status::ok;
  }
  if (status == sink_status::ok)
    status = st.deps.target->write(st.inflight, report);
  st.healthy->set(st.deps.target->healthy() ? 1 : 0);
  switch (status) {
    case sink_status::ok:
      st.delivered->inc(st.inflight.size());
      st.inflight.clear();
      st.attempts = 0;
      commit_offset(self, st.inflight_upto);
      break;
    case sink_status::retry: {
      ++st.attempts;
      st.retries->inc();
      if (st.attempts >= st.deps.cfg.max_attempts) {
        give_up(self, "sink " + st.deps.name + " gave up after "
                        + std::to_string(st.attempts) + " attempts: " + error);
        break;
      }
      // Exponential backoff with full jitter, bounded by backoff-max.
      auto base = st.deps.cfg.backoff_initial * (int64_t{1} << std::min<uint32_t>(st.attempts - 1, 20));
      auto cap = std::min<caf::timespan>(base, st.deps.cfg.backoff_max);
      std::uniform_int_distribution<int64_t> dist{cap.count() / 2, cap.count()};
      self->delayed_send(self, caf::timespan{dist(st.rng)}, retry_atom_v);
      return;
    }
    case sink_status::error:
      st.errors->inc();
      give_up(self, "sink " + st.deps.name + " refused the batch: " + error);
      break;
  }
  st.queued->set(static_cast<int64_t>(st.buffer.size()));
  maybe_finish_drains(self);
}

void flush(self_ptr self) {
  auto& st = self->state;
  if (!st.inflight.empty())
    return; // a batch awaits its retry
  if (st.buffer.empty()) {
    commit_offset(self, st.seen_upto); // nothing routed here: still advance the offset
    maybe_finish_drains(self);
    return;
  }
  st.inflight.swap(st.buffer);
  st.inflight_upto = st.seen_upto;
  st.buffer_bytes = 0;
  attempt(self);
}

} // namespace

sink_actor::behavior_type sink_runner(self_ptr self, sink_runner_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  auto& m = *st.deps.metrics;
  metric_labels labels{{"sink", st.deps.name}};
  st.delivered = &m.get_counter("sluice_sink_delivered_total",
                                "Events delivered and made durable by a sink", labels);
  st.dead_lettered = &m.get_counter("sluice_sink_dropped_total",
                                    "Events a sink did not deliver (after max-attempts or a "
                                    "permanent error); every one went to the dead-letter sink",
                                    labels);
  st.retries = &m.get_counter("sluice_sink_retries_total", "Write attempts that asked for a retry",
                              labels);
  st.errors = &m.get_counter("sluice_sink_errors_total",
                             "Permanent write failures and failed offset commits", labels);
  st.queued = &m.get_gauge("sluice_sink_queued_events", "Events buffered in a sink runner", labels);
  st.healthy = &m.get_gauge("sluice_sink_healthy", "1 when the sink's last operation succeeded",
                            labels);
  st.seen_upto = st.deps.done_upto;
  std::string error;
  st.started = st.deps.target->start(error) == sink_status::ok;
  st.healthy->set(st.started ? 1 : 0);
  if (!st.started)
    aout(self) << "sink " << st.deps.name << ": start failed (will retry): " << error << '\n';
  self->delayed_send(self, st.deps.cfg.flush_interval, tick_atom_v);
  return {
    [self](write_atom, committed_batch& batch) {
      auto& st = self->state;
      for (auto& e : batch.events) {
        if (e.offset <= st.deps.done_upto)
          continue; // already delivered before a restart
        st.buffer_bytes += approx_bytes(e);
        st.buffer.push_back(std::move(e));
      }
      st.seen_upto = std::max(st.seen_upto, batch.upto);
      st.queued->set(static_cast<int64_t>(st.buffer.size()));
      if (st.buffer_bytes >= st.deps.cfg.max_batch_bytes
          || st.buffer.size() >= st.deps.cfg.max_batch_events)
        flush(self);
    },
    [self](drain_atom) -> caf::result<caf::ok_atom> {
      auto rp = self->make_response_promise<caf::ok_atom>();
      self->state.drains.push_back(rp);
      flush(self);
      maybe_finish_drains(self);
      return rp;
    },
    [self](tick_atom) {
      flush(self);
      self->delayed_send(self, self->state.deps.cfg.flush_interval, tick_atom_v);
    },
    [self](retry_atom) {
      if (!self->state.inflight.empty())
        attempt(self);
    },
  };
}

} // namespace sluice
