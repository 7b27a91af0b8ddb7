#include "actors/sink_runner.hpp"
#include "actors/log.hpp"

#include "actors/metrics.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <limits>

namespace sluice {

sink_runner_state::~sink_runner_state() {
  if (deps.target)
    deps.target->stop();
}

void held_events::clear() {
  refs.clear();
  batches.clear();
  // Keep the copies for reuse unless far more are kept than were used (a burst of copies).
  constexpr size_t keep_at_least = 1024;
  if (copies.size() > keep_at_least && copies.size() > 4 * copies_used)
    copies.resize(std::max(copies_used, keep_at_least));
  copies_used = 0;
}

namespace {

using self_ptr = sink_actor::stateful_pointer<sink_runner_state>;

/// How many taken events ahead the batch handler prefetches the attributes' bytes. The events
/// were decoded on a gateway thread, so these bytes are usually in the other core's cache or in
/// L3; a few events of route work hide much of that latency.
constexpr size_t attrs_prefetch_distance = 6;

size_t approx_bytes(const event& e) {
  // Envelope strings and attrs plus a fixed per-event overhead for the struct itself.
  constexpr size_t per_event_overhead = 64;
  return e.id.size() + e.type.size() + e.device_id.size() + e.profile_id.size() + e.attrs.size()
         + per_event_overhead;
}

size_t held(const sink_runner_state& st) {
  return st.buffer.size() + st.inflight.size();
}

/// Reports what the runner took to the log while it has room (flow control).
void report_processed(self_ptr self) {
  auto& st = self->state;
  if (st.unreported_upto == 0 || held(st) >= st.deps.cfg.max_queued_events)
    return;
  self->send(st.deps.log, processed_atom_v, st.unreported_upto);
  st.unreported_upto = 0;
}

void maybe_finish_drains(self_ptr self) {
  auto& st = self->state;
  // A batch awaiting retry, or a target that is down, stays in the log (the offset is not
  // committed past it): it is replayed after a restart, so drain need not wait for it.
  bool stuck = !st.inflight.empty() || st.circuit_open;
  if (st.drains.empty() || st.checkpointing || st.dead_letters_pending > 0
      || (!st.buffer.empty() && !stuck))
    return;
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
        log_json("error", "sink offset commit failed",
                 {{"sink", self->state.deps.name}, {"reason", to_string(err)}});
        maybe_finish_drains(self);
      });
}

/// Commits what the sink says is durable, unless dead letters are still on their way to disk.
void commit_durable(self_ptr self) {
  auto& st = self->state;
  if (st.dead_letters_pending == 0 && !st.offset_frozen)
    commit_offset(self, st.deps.target->durable_upto(st.accepted_upto));
}

/// Records that everything up to `upto` is written (or dead-lettered) and commits what is durable.
void accepted(self_ptr self, log_offset upto) {
  auto& st = self->state;
  st.accepted_upto = std::max(st.accepted_upto, upto);
  commit_durable(self);
}

/// Hands letters to the dead-letter sink; the offset waits until they are durable there. If they
/// cannot be recorded, the offset stays put and the events are replayed after a restart.
void send_dead_letters(self_ptr self, std::vector<dead_letter> letters) {
  auto& st = self->state;
  if (letters.empty())
    return;
  st.dead_lettered->inc(letters.size());
  ++st.dead_letters_pending;
  self->request(st.deps.dead_letters, caf::infinite, dead_atom_v, std::move(letters))
    .then(
      [self](caf::ok_atom) {
        --self->state.dead_letters_pending;
        commit_durable(self);
        maybe_finish_drains(self);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        --st.dead_letters_pending;
        st.offset_frozen = true; // until a restart replays from here
        st.errors->inc();
        log_json("error",
                 "dead letters not recorded: the sink's offset stays, the events are replayed "
                 "after a restart",
                 {{"sink", st.deps.name}, {"reason", to_string(err)}});
        maybe_finish_drains(self);
      });
}

void give_up(self_ptr self, const std::string& reason) {
  auto& st = self->state;
  std::vector<dead_letter> letters;
  letters.reserve(st.inflight.size());
  for (auto* e : st.inflight.refs)
    letters.push_back(dead_letter{*e, reason, "sink." + st.deps.name});
  send_dead_letters(self, std::move(letters));
  st.inflight.clear();
  st.attempts = 0;
  accepted(self, st.inflight_upto);
}

caf::timespan backoff(self_ptr self, uint32_t n) {
  // Exponential backoff with jitter (half to full delay), bounded by backoff-max.
  auto& st = self->state;
  constexpr uint32_t max_doublings = 20; // beyond this the cap applies anyway
  auto base = st.deps.cfg.backoff_initial * (int64_t{1} << std::min<uint32_t>(n, max_doublings));
  auto cap = std::min<caf::timespan>(base, st.deps.cfg.backoff_max);
  std::uniform_int_distribution<int64_t> dist{cap.count() / 2, cap.count()};
  return caf::timespan{dist(st.rng)};
}

void set_circuit(self_ptr self, bool open) {
  auto& st = self->state;
  if (open && !st.circuit_open) {
    st.circuit_opened->inc();
    st.probes = 0;
  }
  st.circuit_open = open;
  st.circuit->set(open ? 1 : 0);
}

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
    status = st.deps.target->write_refs(st.inflight.refs, report);
  st.healthy->set(st.deps.target->healthy() ? 1 : 0);
  switch (status) {
    case sink_status::ok: {
      set_circuit(self, false);
      std::vector<dead_letter> letters;
      for (auto& [index, reason] : report.rejected)
        if (index < st.inflight.size())
          letters.push_back(dead_letter{*st.inflight.refs[index],
                                        "sink " + st.deps.name + " rejected the event: " + reason,
                                        "sink." + st.deps.name});
      st.delivered->inc(st.inflight.size() - letters.size());
      send_dead_letters(self, std::move(letters));
      st.inflight.clear();
      st.attempts = 0;
      accepted(self, st.inflight_upto);
      break;
    }
    case sink_status::retry: {
      st.retries->inc();
      std::string why;
      if (!st.deps.target->check(why)) {
        // The target is down, not the batch: open the circuit and probe; no attempt counted.
        set_circuit(self, true);
        self->delayed_send(self, backoff(self, st.probes++), retry_atom_v);
        return;
      }
      ++st.attempts;
      if (st.attempts >= st.deps.cfg.max_attempts) {
        give_up(self, "sink " + st.deps.name + " gave up after "
                        + std::to_string(st.attempts) + " attempts: " + error);
        break;
      }
      self->delayed_send(self, backoff(self, st.attempts - 1), retry_atom_v);
      return;
    }
    case sink_status::error:
      st.errors->inc();
      give_up(self, "sink " + st.deps.name + " refused the batch: " + error);
      break;
  }
  st.queued->set(static_cast<int64_t>(held(st)));
  report_processed(self);
  maybe_finish_drains(self);
}

/// Lets a buffering sink flush by age (`final`: everything) and commits what became durable. A
/// failed flush whose target also fails its `check` opens the circuit, as a failed write does.
void flush_target(self_ptr self, bool final) {
  auto& st = self->state;
  if (!st.started || st.circuit_open)
    return;
  std::string error;
  auto status = st.deps.target->flush(final, error);
  st.healthy->set(st.deps.target->healthy() ? 1 : 0);
  if (status != sink_status::ok) {
    (status == sink_status::retry ? st.retries : st.errors)->inc();
    log_json("warning", "sink flush failed; the data stays buffered and is flushed again",
             {{"sink", st.deps.name}, {"reason", error}});
    std::string why;
    if (status == sink_status::retry && !st.deps.target->check(why)) {
      set_circuit(self, true);
      self->delayed_send(self, backoff(self, st.probes++), retry_atom_v);
    }
    return;
  }
  commit_durable(self);
}

void flush(self_ptr self, bool final = false) {
  auto& st = self->state;
  if (!st.inflight.empty() || st.circuit_open)
    return; // a batch awaits its retry, or the target is down: keep buffering (bounded)
  if (st.buffer.empty()) {
    // Nothing routed here since the last write: everything seen is accepted.
    st.accepted_upto = std::max(st.accepted_upto, st.seen_upto);
    flush_target(self, final);
    maybe_finish_drains(self);
    return;
  }
  st.inflight.swap(st.buffer);
  st.inflight_upto = st.seen_upto;
  st.buffer_bytes = 0;
  attempt(self);
  if (st.inflight.empty())
    flush_target(self, final);
}

/// This runner's view of one route version: which routes name its sink, which counters it owns.
sink_runner_state::route_view make_view(sink_runner_state& st,
                                        std::shared_ptr<const route_table> table) {
  sink_runner_state::route_view v;
  v.table = std::move(table);
  auto& m = *st.deps.metrics;
  auto idx = st.deps.sink_index;
  for (auto& r : v.table->routes) {
    v.here.push_back(std::find(r.sinks.begin(), r.sinks.end(), idx) != r.sinks.end());
    bool counts = !r.sinks.empty() && r.sinks.front() == idx;
    v.matched.push_back(counts ? &m.get_counter("sluice_events_routed_total",
                                                "Events that matched a route", {{"route", r.name}})
                               : nullptr);
  }
  auto& um = v.table->unmatched_sinks;
  v.unmatched_here = std::find(um.begin(), um.end(), idx) != um.end();
  if (!um.empty() && um.front() == idx)
    v.unmatched = &m.get_counter("sluice_events_routed_total", "Events that matched a route",
                                 {{"route", unmatched_route}});
  if (um.empty() && st.deps.count_unrouted)
    v.unrouted = &m.get_counter(
      "sluice_events_unrouted_total",
      "Events that matched no route while no _unmatched route is configured (not delivered)");
  v.matched_n.assign(v.matched.size(), 0);
  return v;
}

/// Takes the latest published route versions (hot reload); views of tables already seen are kept.
void refresh_routes(sink_runner_state& st) {
  if (!st.deps.registry)
    return;
  auto h = st.deps.registry->current();
  if (!h || h == st.history || h->entries.empty())
    return;
  std::vector<sink_runner_state::route_view> views;
  for (auto& e : h->entries) {
    auto old = std::find_if(st.views.begin(), st.views.end(),
                            [&](auto& v) { return v.table == e.table; });
    views.push_back(old != st.views.end() ? std::move(*old) : make_view(st, e.table));
  }
  st.history = std::move(h);
  st.views = std::move(views);
}

/// The view of the route version that routes the event at `offset`.
sink_runner_state::route_view& view_for(sink_runner_state& st, log_offset offset) {
  auto& entries = st.history->entries;
  auto i = std::upper_bound(entries.begin(), entries.end(), offset,
                            [](log_offset o, const route_history::entry& e) {
                              return o < e.effective_from;
                            });
  return st.views[i == entries.begin() ? 0 : static_cast<size_t>(i - entries.begin()) - 1];
}

/// The route deciding this sink's copy of an event: its name and actions; null actions when the
/// event does not go to this sink.
struct routing {
  std::string_view name;
  const route_actions* actions = nullptr;
};

/// Whether routes send `e` to this sink, and which route decides this sink's copy: the first
/// matching route (name order) that names the sink, or `_unmatched` when no route matched. A sink
/// receives an event once however many of its routes match. Counts route matches into the view
/// (`count_routes` adds them to the counters this runner owns). `v` is the version of the routes
/// in effect at the event's offset.
routing routed_here(sink_runner_state::route_view& v, const event& e) {
  // The matcher's callback records an index only: a `routing` it filled in would live in memory
  // (the callback takes it by reference), stored in 8-byte halves and copied out in a 16-byte
  // load, a store-forwarding stall per event.
  constexpr size_t none = std::numeric_limits<size_t>::max();
  size_t first = none;
  bool any = v.table->match(e, [&](size_t r) {
    if (first == none && v.here[r])
      first = r;
    ++v.matched_n[r];
  });
  routing here;
  if (any) {
    if (first != none) {
      auto& r = v.table->routes[first];
      here.name = r.name;
      here.actions = &r.actions;
    }
    return here;
  }
  ++v.unmatched_n;
  if (v.unmatched_here) {
    here.name = unmatched_route;
    here.actions = &v.table->unmatched_actions;
  }
  return here;
}

/// Adds the route counts of the batch just routed to the counters this runner owns.
void count_routes(sink_runner_state& st) {
  for (auto& v : st.views) {
    for (size_t r = 0; r < v.matched_n.size(); ++r) {
      if (v.matched_n[r] > 0 && v.matched[r] != nullptr)
        v.matched[r]->inc(v.matched_n[r]);
      v.matched_n[r] = 0;
    }
    if (v.unmatched_n > 0) {
      if (v.unmatched != nullptr)
        v.unmatched->inc(v.unmatched_n);
      else if (v.unrouted != nullptr)
        v.unrouted->inc(v.unmatched_n);
      v.unmatched_n = 0;
    }
  }
}

/// Keeps the message holding `batch` (the one being handled) alive with `into`; false when the
/// message is not shared but would have to be copied (a message built from values, as tests send).
bool keep_batch(self_ptr self, const committed_batch& batch, held_events& into) {
  auto* element = self->current_mailbox_element();
  if (element == nullptr)
    return false;
  auto& content = element->content();
  if (content.size() != 2 || content.get(1) != static_cast<const void*>(&batch))
    return false;
  auto msg = element->copy_content_to_message();
  if (msg.size() != 2 || msg.at(1) != static_cast<const void*>(&batch))
    return false; // a copy: the event pointers would not point into it
  into.batches.push_back(std::move(msg));
  return true;
}

} // namespace

sink_actor::behavior_type sink_runner(self_ptr self, sink_runner_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  if (!st.deps.routes)
    st.deps.routes = std::make_shared<route_table>();
  auto& m = *st.deps.metrics;
  {
    // Without a registry (tests): one version, in effect from offset 0.
    auto fixed = std::make_shared<route_history>();
    fixed->entries.push_back({0, 0, 0, {}, {}, st.deps.routes});
    st.history = std::move(fixed);
    st.views.push_back(make_view(st, st.deps.routes));
  }
  refresh_routes(st);
  st.transform = std::make_unique<route_transformer>(st.deps.pii, st.deps.metrics, st.deps.name);
  metric_labels labels{{"sink", st.deps.name}};
  st.received = &m.get_counter("sluice_sink_received_total", "Events routed to a sink", labels);
  st.delivered = &m.get_counter("sluice_sink_delivered_total",
                                "Events delivered and made durable by a sink", labels);
  st.dead_lettered = &m.get_counter("sluice_sink_dropped_total",
                                    "Events a sink did not deliver (after max-attempts, a "
                                    "permanent error or a per-event rejection); every one went to "
                                    "the dead-letter sink",
                                    labels);
  st.retries = &m.get_counter("sluice_sink_retries_total",
                              "Write or flush attempts that asked for a retry", labels);
  st.errors = &m.get_counter("sluice_sink_errors_total",
                             "Permanent write failures and failed offset commits", labels);
  st.circuit_opened = &m.get_counter("sluice_sink_circuit_opened_total",
                                     "Times a sink's circuit opened (target down)", labels);
  st.queued = &m.get_gauge("sluice_sink_queued_events",
                           "Events held by a sink runner (buffered or awaiting a retry)", labels);
  st.healthy = &m.get_gauge("sluice_sink_healthy", "1 when the sink's last operation succeeded",
                            labels);
  st.circuit = &m.get_gauge("sluice_sink_circuit_open",
                            "1 while a sink's circuit is open (writes paused, target probed)",
                            labels);
  st.seen_upto = st.deps.done_upto;
  st.accepted_upto = st.deps.done_upto;
  st.deps.target->attach_metrics(m, labels);
  std::string error;
  st.started = st.deps.target->start(error) == sink_status::ok;
  st.healthy->set(st.started ? 1 : 0);
  if (!st.started)
    log_json("warning", "sink start failed (will retry)",
             {{"sink", st.deps.name}, {"reason", error}});
  self->delayed_send(self, st.deps.cfg.flush_interval, tick_atom_v);
  return {
    [self](dispatch_atom, const committed_batch& batch) {
      // By const reference: the log sends every runner the same message, which the runner keeps
      // (a reference count) while it holds events of it; events are copied only when a route
      // changes them or when this sink takes few of them.
      auto& st = self->state;
      refresh_routes(st); // published before any event it routes was dispatched
      auto& taken = st.taken;
      taken.clear();
      auto& entries = st.history->entries;
      sink_runner_state::route_view* v = nullptr;
      log_offset view_until = 0; // the view `v` routes offsets below this
      for (auto& e : batch.events) {
        if (e.offset <= st.deps.done_upto)
          continue; // delivered before a restart
        if (!e.origin.empty())
          continue; // forwarded by the node that accepted it, whose sinks deliver it: not ours
                    // to route, count or deliver (it is in this log only for device/profile state)
        if (v == nullptr || e.offset >= view_until) {
          // Events come in offset order: look the route version up again only past its range.
          v = &view_for(st, e.offset);
          auto next = std::upper_bound(entries.begin(), entries.end(), e.offset,
                                       [](log_offset o, const route_history::entry& x) {
                                         return o < x.effective_from;
                                       });
          view_until = next == entries.end() ? std::numeric_limits<log_offset>::max()
                                             : next->effective_from;
        }
        auto r = routed_here(*v, e);
        if (r.actions != nullptr) { // else not for this sink
          // Field by field into the vector: a `taken_event` built on the stack and copied in
          // was stored in 8-byte halves and reloaded in 16-byte ones, a store-forwarding stall
          // per event that was half of this loop's time.
          auto& t = taken.emplace_back();
          t.e = &e;
          t.route = r.name;
          t.actions = r.actions;
        }
      }
      count_routes(st);
      // Keep the batch when this sink takes at least half of it; else copy what it takes, so a
      // sink that takes few events does not keep the others alive.
      bool kept = !taken.empty() && taken.size() * 2 >= batch.events.size()
                  && keep_batch(self, batch, st.buffer);
      for (size_t i = 0; i < taken.size(); ++i) {
        auto& t = taken[i];
        // The plan reads the attributes (a search for the keys the actions name), the first
        // touch of their heap bytes on this thread: request them a few events ahead.
        if (i + attrs_prefetch_distance < taken.size())
          __builtin_prefetch(taken[i + attrs_prefetch_distance].e->attrs.data());
        // The route's actions (keep/drop, mask, hash, rename, PII) apply to this sink's copy.
        auto& spare = st.buffer.spare_copy();
        auto& out = st.transform->apply(t.route, *t.actions, *t.e, spare);
        const event* ref;
        if (&out == &spare) {
          ref = st.buffer.take_copy();
        } else if (kept) {
          ref = t.e;
        } else {
          spare = *t.e;
          ref = st.buffer.take_copy();
        }
        st.buffer.refs.push_back(ref);
        st.buffer_bytes += approx_bytes(*ref);
      }
      st.received->inc(taken.size());
      st.seen_upto = std::max(st.seen_upto, batch.upto);
      st.unreported_upto = std::max(st.unreported_upto, batch.upto);
      st.queued->set(static_cast<int64_t>(held(st)));
      if (st.buffer_bytes >= st.deps.cfg.max_batch_bytes
          || st.buffer.size() >= st.deps.cfg.max_batch_events)
        flush(self);
      report_processed(self);
    },
    [self](drain_atom) -> caf::result<caf::ok_atom> {
      auto rp = self->make_response_promise<caf::ok_atom>();
      self->state.drains.push_back(rp);
      flush(self, true);
      maybe_finish_drains(self);
      return rp;
    },
    [self](tick_atom) {
      flush(self);
      report_processed(self);
      self->delayed_send(self, self->state.deps.cfg.flush_interval, tick_atom_v);
    },
    [self](retry_atom) {
      auto& st = self->state;
      if (st.circuit_open) {
        std::string why;
        if (!st.deps.target->check(why)) {
          self->delayed_send(self, backoff(self, st.probes++), retry_atom_v);
          return;
        }
        set_circuit(self, false);
      }
      if (!st.inflight.empty())
        attempt(self);
      else
        flush(self); // the circuit was opened by a failed flush: flush again now
    },
  };
}

} // namespace sluice
