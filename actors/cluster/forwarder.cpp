#include "actors/cluster/forwarder.hpp"

#include "actors/log.hpp"
#include "actors/metrics.hpp"

#include <caf/all.hpp>

namespace sluice::cluster {

namespace {

using self_ptr = caf::stateful_actor<forwarder_state>*;

void report(self_ptr self) {
  auto& st = self->state;
  auto backlog = st.head > st.deps.acked_upto ? st.head - st.deps.acked_upto : 0;
  st.backlog->set(static_cast<int64_t>(backlog));
  auto now = self->clock().now();
  if (backlog == 0) {
    st.behind = false;
    st.caught_up_at = now;
  } else if (!st.behind) {
    st.behind = true;
    st.caught_up_at = now;
  }
  st.lag_ms->set(st.behind ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                now - st.caught_up_at)
                                .count()
                           : 0);
  st.inflight_gauge->set(static_cast<int64_t>(st.inflight_events));
  self->send(st.deps.parent, acked_atom_v, st.deps.peer, static_cast<bool>(st.peer),
             st.deps.acked_upto, st.sent_upto, st.head,
             static_cast<uint64_t>(st.inflight_events), st.resent);
}

/// Moves `acked_upto` over the answered prefix of the in-flight chunks.
void advance(self_ptr self) {
  auto& st = self->state;
  while (!st.inflight.empty() && st.inflight.front().acked) {
    st.deps.acked_upto = std::max(st.deps.acked_upto, st.inflight.front().upto);
    st.inflight_events -= st.inflight.front().events;
    st.inflight.pop_front();
  }
}

/// Forgets everything unacknowledged: it is read and sent again from `acked_upto`.
void rewind(self_ptr self) {
  auto& st = self->state;
  if (st.sent_upto > st.deps.acked_upto) {
    st.resent += st.inflight_events;
    st.resent_events->inc(st.inflight_events);
  }
  ++st.epoch;
  st.inflight.clear();
  st.inflight_events = 0;
  st.sent_upto = st.deps.acked_upto;
  st.reading = false;
}

void pump(self_ptr self);

void schedule_retry(self_ptr self) {
  auto& st = self->state;
  if (st.retry_scheduled)
    return;
  st.retry_scheduled = true;
  self->delayed_send(self, std::chrono::milliseconds{500}, retry_atom_v);
}

/// Keeps the events of `events` the peer should get (see `view::holders`), stamped with their
/// origin, and sends them; records the chunk ending at `upto` as in flight.
void send_chunk(self_ptr self, const event_batch& events, log_offset upto) {
  auto& st = self->state;
  auto v = st.deps.views->get();
  int peer_index = v ? v->ring.index_of(st.deps.peer) : -1;
  if (peer_index < 0) {
    // The ring no longer (or not yet) has the peer: what it keeps is unknown here, so nothing
    // of this chunk may count as acknowledged. Read it again once the peer is back in the ring.
    rewind(self);
    return;
  }
  forward_batch out;
  size_t replicas_only = 0;
  for (auto& e : events) {
    if (!e.origin.empty() || e.offset == 0)
      continue; // forwarded here by another node: never forwarded again
    auto device = v->rank(e.device_id, peer_index);
    auto profile = e.profile_id.empty() ? 0 : v->rank(e.profile_id, peer_index);
    if (device != 0 || profile != 0) {
      if (device != 1 && profile != 1)
        ++replicas_only;
      out.events.push_back(e);
      out.events.back().origin = st.deps.self;
      out.events.back().origin_offset = e.offset;
    }
  }
  st.sent_upto = upto;
  auto n = out.events.size();
  st.inflight.push_back({upto, n, n == 0});
  st.inflight_events += n;
  if (n == 0) {
    advance(self);
    return;
  }
  out.origin = st.deps.self;
  st.forwarded->inc(n);
  st.replicated->inc(replicas_only);
  auto epoch = st.epoch;
  self->request(st.peer, st.deps.timeout, forward_atom_v, std::move(out))
    .then(
      [self, epoch, upto](caf::ok_atom) {
        auto& st = self->state;
        if (epoch != st.epoch)
          return;
        for (auto& c : st.inflight)
          if (c.upto == upto)
            c.acked = true;
        advance(self);
        report(self);
        pump(self);
      },
      [self, epoch](caf::error& err) {
        auto& st = self->state;
        if (epoch != st.epoch)
          return;
        st.failures->inc();
        log_json("warn", "forward to peer failed; resending from its last acknowledgement",
                 {{"peer", st.deps.peer}, {"error", to_string(err)},
                  {"acked_upto", std::to_string(st.deps.acked_upto)}});
        rewind(self);
        report(self);
        schedule_retry(self);
      });
}

/// Whether the current ring has the peer (a forwarder sends only then: its filter needs it).
bool in_ring(self_ptr self) {
  auto v = self->state.deps.views->get();
  return v && v->ring.index_of(self->state.deps.peer) >= 0;
}

void pump(self_ptr self) {
  auto& st = self->state;
  if (!st.peer || st.reading || st.retry_scheduled || !in_ring(self))
    return;
  if (st.inflight_events >= st.deps.window_events)
    return;
  if (st.head_known && st.sent_upto >= st.head)
    return;
  st.reading = true;
  auto epoch = st.epoch;
  auto from = st.sent_upto + 1; // the first offset to read
  self->request(st.deps.reader, caf::infinite, read_atom_v, from, uint8_t{0}, uint64_t{0},
                uint64_t{1}, static_cast<uint64_t>(st.deps.read_events))
    .then(
      [self, epoch, from](committed_batch& b) {
        auto& st = self->state;
        if (epoch != st.epoch)
          return; // rewound meanwhile: this read started from a stale position
        st.reading = false;
        if (b.upto < from) { // nothing stored from `from` on: at the head
          st.head = std::max(st.head, st.sent_upto);
          st.head_known = true;
          report(self);
          return;
        }
        st.head = std::max(st.head, b.upto);
        send_chunk(self, b.events, b.upto);
        report(self);
        pump(self);
      },
      [self, epoch](caf::error& err) {
        auto& st = self->state;
        if (epoch != st.epoch)
          return;
        st.reading = false;
        log_json("error", "forwarder could not read the log",
                 {{"peer", st.deps.peer}, {"error", to_string(err)}});
        schedule_retry(self);
      });
}

/// The log's head moved to `head`: read and send what the peer lacks.
void on_head(self_ptr self, log_offset head) {
  auto& st = self->state;
  if (head > st.head) {
    st.head = head;
    st.head_known = true;
  }
  pump(self);
  report(self); // backlog and lag move with the head even while the peer is down
}

} // namespace

caf::behavior forwarder(caf::stateful_actor<forwarder_state>* self, forwarder_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.sent_upto = st.deps.acked_upto;
  st.head = st.deps.acked_upto;
  auto& m = *st.deps.metrics;
  metric_labels peer{{"peer", st.deps.peer}};
  st.forwarded = &m.get_counter("sluice_cluster_forwarded_events_total",
                                "events sent to a peer that keeps their keys' state", peer);
  st.replicated = &m.get_counter(
    "sluice_cluster_replicated_events_total",
    "of the forwarded events, those sent to the peer as the replica of their keys only", peer);
  st.lag_ms = &m.get_gauge("sluice_cluster_forward_lag_ms",
                           "how long the peer has been behind this node's log head (replication "
                           "lag; 0 when it has everything)",
                           peer);
  st.resent_events = &m.get_counter(
    "sluice_cluster_forward_resent_events_total",
    "events sent to a peer again: it went down, restarted, or a forward failed or timed out",
    peer);
  st.failures = &m.get_counter("sluice_cluster_forward_failures_total",
                               "forward requests that failed or timed out (then resent)", peer);
  st.backlog = &m.get_gauge("sluice_cluster_forward_backlog_events",
                            "log offsets accepted here and not yet acknowledged by the peer",
                            peer);
  st.inflight_gauge = &m.get_gauge("sluice_cluster_forward_inflight_events",
                                   "events sent to the peer and not yet acknowledged", peer);
  return {
    [self](peer_atom, caf::actor& handle) {
      auto& st = self->state;
      rewind(self);
      st.peer = std::move(handle);
      report(self);
      pump(self);
    },
    [self](head_atom, log_offset head) { on_head(self, head); },
    [self](head_atom, log_offset head, const caf::message& dispatched) {
      auto& st = self->state;
      // Live path: caught up, nothing being read or retried, room in the window: the
      // dispatched batch (every event of one commit, `dispatch_atom, committed_batch`) is
      // exactly what a read from `sent_upto + 1` would return.
      if (st.peer && !st.reading && !st.retry_scheduled && in_ring(self)
          && st.inflight_events < st.deps.window_events && dispatched.size() == 2
          && dispatched.match_element<committed_batch>(1)) {
        auto& b = dispatched.get_as<committed_batch>(1);
        if (!b.events.empty() && b.events.front().offset == st.sent_upto + 1
            && b.upto == b.events.back().offset)
          send_chunk(self, b.events, b.upto);
      }
      on_head(self, head);
    },
    [self](retry_atom) {
      self->state.retry_scheduled = false;
      pump(self);
    },
  };
}

} // namespace sluice::cluster
