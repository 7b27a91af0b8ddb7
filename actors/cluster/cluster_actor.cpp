#include "actors/cluster/cluster_actor.hpp"

#include "actors/cluster/forwarder.hpp"
#include "actors/log.hpp"
#include "actors/log_reader.hpp"
#include "actors/metrics.hpp"
#include "actors/placement.hpp"
#include "messages/codec.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/log_store.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>

#include <algorithm>
#include <cstdio>

namespace sluice::cluster {

namespace {

using self_ptr = caf::stateful_actor<cluster_state>*;
using clock_type = caf::actor_clock::clock_type;

constexpr std::string_view acked_prefix = "cluster.acked.";
constexpr auto contact_timeout = std::chrono::seconds{5};
constexpr auto query_timeout = std::chrono::seconds{5};

const char* state_name(cluster_state::member_state s) {
  switch (s) {
    case cluster_state::member_state::up: return "up";
    case cluster_state::member_state::down: return "down";
    default: return "joining";
  }
}

std::vector<member_info> known(self_ptr self) {
  std::vector<member_info> out{self->state.me};
  for (auto& [name, m] : self->state.members)
    if (!m.info.address.empty())
      out.push_back(m.info);
  return out;
}

void render_status(self_ptr self);
void connect(self_ptr self, const std::string& address);

/// Publishes the ring over this node and the members that are up.
void rebuild_view(self_ptr self, const std::string& why) {
  auto& st = self->state;
  std::vector<std::string> names{st.deps.self};
  size_t up = 0;
  size_t down = 0;
  for (auto& [name, m] : st.members) {
    if (m.state == cluster_state::member_state::up) {
      names.push_back(name);
      ++up;
    } else if (m.state == cluster_state::member_state::down) {
      ++down;
    }
  }
  auto v = std::make_shared<view>(st.deps.self, hash_ring{names, st.deps.opts.vnodes}, ++st.version);
  st.deps.views->set(v);
  if (st.version > 1)
    st.moves->inc();
  st.ring_version->set(static_cast<int64_t>(st.version));
  st.members_up->set(static_cast<int64_t>(up + 1));
  st.members_down->set(static_cast<int64_t>(down));
  std::string list;
  for (auto& n : v->ring.nodes())
    list += (list.empty() ? "" : ",") + n;
  log_json("info", "cluster ownership changed",
           {{"reason", why}, {"ring_version", std::to_string(st.version)}, {"members_up", list}});
  render_status(self);
}

cluster_state::member& member_for(self_ptr self, const std::string& name) {
  auto& st = self->state;
  auto i = st.members.find(name);
  if (i != st.members.end())
    return i->second;
  auto& m = st.members[name];
  m.info.name = name;
  m.up = &st.metrics->get_gauge("sluice_cluster_peer_up", "1 while the peer is up, 0 otherwise",
                                {{"peer", name}});
  forwarder_deps fd;
  fd.self = st.deps.self;
  fd.peer = name;
  fd.reader = st.reader;
  fd.parent = caf::actor_cast<caf::actor>(self);
  fd.views = st.deps.views;
  fd.metrics = st.metrics;
  fd.window_events = st.deps.opts.forward_window_events;
  // A peer never acknowledged anything: it gets everything the log keeps for some peer.
  fd.acked_upto = st.checkpointed;
  {
    persistence::read_txn txn{*st.deps.env};
    if (auto stored = txn.get(persistence::db::meta, std::string{acked_prefix} + name))
      fd.acked_upto = persistence::decode_be64(*stored);
  }
  m.acked_upto = fd.acked_upto;
  m.forwarder = self->spawn<caf::linked>(forwarder, std::move(fd));
  if (st.head > 0)
    self->send(m.forwarder, head_atom_v, st.head);
  return m;
}

void transition(self_ptr self, cluster_state::member& m, cluster_state::member_state to,
                const std::string& why) {
  auto& st = self->state;
  if (m.state == to)
    return;
  m.state = to;
  m.up->set(to == cluster_state::member_state::up ? 1 : 0);
  st.metrics
    ->get_counter("sluice_cluster_node_transitions_total", "peers seen going up or down",
                  {{"peer", m.info.name}, {"to", state_name(to)}})
    .inc();
  log_json(to == cluster_state::member_state::up ? "info" : "warn",
           to == cluster_state::member_state::up ? "cluster peer up" : "cluster peer down",
           {{"peer", m.info.name}, {"address", m.info.address}, {"reason", why}});
  rebuild_view(self, m.info.name + " " + state_name(to) + ": " + why);
}

void mark_down(self_ptr self, cluster_state::member& m, const std::string& why) {
  if (m.handle) {
    self->demonitor(m.handle);
    m.handle = caf::actor{};
  }
  self->send(m.forwarder, peer_atom_v, caf::actor{});
  transition(self, m, cluster_state::member_state::down, why);
}

/// A peer spoke: it is up, and `handle` reaches it.
void heard(self_ptr self, const member_info& info, const caf::actor& handle) {
  auto& st = self->state;
  if (info.name.empty() || !handle)
    return;
  if (info.name == st.deps.self) {
    st.self_addresses.insert(info.address);
    return;
  }
  auto& m = member_for(self, info.name);
  m.info = info;
  m.last_heard = self->clock().now();
  // The ring first, then the forwarder: it filters what it sends by the ring, and must never
  // see the peer up while the ring still lacks it (see `forwarder_state`).
  transition(self, m, cluster_state::member_state::up, "heard");
  if (m.handle != handle) {
    if (m.handle)
      self->demonitor(m.handle);
    m.handle = handle;
    self->monitor(handle);
    self->send(m.forwarder, peer_atom_v, handle);
  }
}

/// Contacts the members a peer knows that this node does not reach yet.
void learn(self_ptr self, const std::vector<member_info>& others) {
  auto& st = self->state;
  for (auto& info : others) {
    if (info.name == st.deps.self || info.address.empty())
      continue;
    auto i = st.members.find(info.name);
    if (i == st.members.end() || !i->second.handle)
      connect(self, info.address);
  }
}

void say_hello(self_ptr self, caf::actor handle) {
  self->request(handle, contact_timeout, hello_atom_v, self->state.me, known(self))
    .then(
      [self, handle](member_info& their, std::vector<member_info>& others) {
        heard(self, their, handle);
        learn(self, others);
      },
      [](caf::error&) {
        // Not reachable after all: the next heartbeat tries again.
      });
}

void connect(self_ptr self, const std::string& address) {
  auto& st = self->state;
  if (!st.deps.use_network || address == st.me.address || st.self_addresses.count(address) > 0
      || st.connecting.count(address) > 0)
    return;
  auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return;
  auto host = address.substr(0, colon);
  uint16_t port = 0;
  try {
    port = static_cast<uint16_t>(std::stoul(address.substr(colon + 1)));
  } catch (const std::exception&) {
    return;
  }
  st.connecting.insert(address);
  auto mm = self->system().middleman().actor_handle();
  self->request(mm, contact_timeout, caf::connect_atom_v, host, port)
    .then(
      [self, address](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>&) {
        self->state.connecting.erase(address);
        if (ptr)
          say_hello(self, caf::actor_cast<caf::actor>(ptr));
      },
      [self, address](caf::error&) { self->state.connecting.erase(address); });
}

bool seed_resolved(self_ptr self, const std::string& address) {
  auto& st = self->state;
  if (address == st.me.address || st.self_addresses.count(address) > 0)
    return true;
  for (auto& [name, m] : st.members)
    if (m.info.address == address && m.state == cluster_state::member_state::up)
      return true;
  return false;
}

void check_settled(self_ptr self) {
  auto& st = self->state;
  if (st.settled)
    return;
  bool all = std::all_of(st.deps.opts.seeds.begin(), st.deps.opts.seeds.end(),
                         [self](const std::string& a) { return seed_resolved(self, a); });
  if (!all && self->clock().now() - st.started < st.deps.opts.failure_timeout)
    return;
  st.settled = true;
  log_json("info", all ? "cluster settled: every seed answered"
                       : "cluster settled without every seed (failure-timeout passed)",
           {{"node", st.deps.self}});
  for (auto& rp : st.settle_waiters)
    rp.deliver(caf::ok_atom_v);
  st.settle_waiters.clear();
}

void record_acks(self_ptr self) {
  auto& st = self->state;
  if (st.checkpointing || !st.settled)
    return;
  checkpoint cp;
  cp.space = state_space::meta;
  cp.consumer = cluster_consumer;
  log_offset low = st.head;
  for (auto& [name, m] : st.members) {
    cp.entries.emplace_back(std::string{acked_prefix} + name, persistence::encode_be64(m.acked_upto));
    low = std::min(low, m.acked_upto);
  }
  for (auto& name : st.forgotten) // an empty value deletes the key
    cp.entries.emplace_back(std::string{acked_prefix} + name, std::string{});
  st.forgotten.clear();
  low = std::max(low, st.checkpointed); // a new peer starts at the checkpoint: never lower
  cp.done_upto = low;
  st.checkpointing = true;
  self->request(st.deps.log, caf::infinite, commit_atom_v, std::move(cp))
    .then(
      [self, low](caf::ok_atom) {
        auto& st = self->state;
        st.checkpointing = false;
        st.checkpointed = low;
        for (auto& rp : st.drains)
          rp.deliver(caf::ok_atom_v);
        st.drains.clear();
      },
      [self](caf::error& err) {
        self->state.checkpointing = false;
        log_json("error", "cluster checkpoint failed", {{"error", to_string(err)}});
      });
}

void local_query(self_ptr self, state_space space, const std::string& key, std::string what,
                 query_reply reply) {
  auto& st = self->state;
  auto& shards = space == state_space::devices ? st.deps.device_shards : st.deps.profile_shards;
  if (shards.empty()) {
    reply.fn(query_reply::status::failed, "no shard for this kind of state");
    return;
  }
  self->send(shards[shard_index(key, shards.size())], query_atom_v, key, std::move(what),
             std::move(reply));
}

void render_status(self_ptr self) {
  auto& st = self->state;
  auto v = st.deps.views->get();
  auto shares = v ? v->ring.shares() : std::map<std::string, double>{};
  auto now = self->clock().now();
  std::string out = "{\"enabled\":true,\"self\":";
  append_json_string(out, st.deps.self);
  out += ",\"ring_version\":" + std::to_string(st.version)
         + ",\"replicas\":" + std::to_string(replicas)
         + ",\"settled\":" + (st.settled ? "true" : "false") + ",\"members\":[";
  auto share_of = [&](const std::string& name) {
    auto i = shares.find(name);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", i == shares.end() ? 0.0 : i->second);
    return std::string{buf};
  };
  auto member_json = [&](const member_info& info, const char* state, bool me, int64_t heard_ms) {
    out += "{\"name\":";
    append_json_string(out, info.name);
    out += ",\"address\":";
    append_json_string(out, info.address);
    out += ",\"http\":";
    append_json_string(out, info.http);
    out += ",\"state\":\"";
    out += state;
    out += "\",\"self\":";
    out += me ? "true" : "false";
    out += ",\"last_heard_ms\":" + std::to_string(heard_ms) + ",\"share\":" + share_of(info.name)
           + "}";
  };
  member_json(st.me, "up", true, 0);
  for (auto& [name, m] : st.members) {
    out += ',';
    int64_t ago = -1;
    if (m.last_heard.time_since_epoch().count() != 0)
      ago = std::chrono::duration_cast<std::chrono::milliseconds>(now - m.last_heard).count();
    member_json(m.info, state_name(m.state), false, ago);
  }
  out += "],\"forwarders\":[";
  bool first = true;
  for (auto& [name, m] : st.members) {
    if (!first)
      out += ',';
    first = false;
    out += "{\"peer\":";
    append_json_string(out, name);
    out += ",\"state\":\"";
    out += m.fwd_up ? "up" : "down";
    auto head = std::max(st.head, m.head);
    out += "\",\"acked_upto\":" + std::to_string(m.acked_upto)
           + ",\"sent_upto\":" + std::to_string(m.sent_upto) + ",\"head\":" + std::to_string(head)
           + ",\"backlog_events\":"
           + std::to_string(head > m.acked_upto ? head - m.acked_upto : 0)
           + ",\"in_flight_events\":" + std::to_string(m.in_flight)
           + ",\"resent_events\":" + std::to_string(m.resent) + "}";
  }
  char lag[32];
  std::snprintf(lag, sizeof lag, "%.3f", st.last_forward_ms);
  out += "],\"replication\":{\"pending_batches\":" + std::to_string(st.pending_forwards)
         + ",\"last_lag_ms\":" + lag + "}}";
  st.deps.board->set(std::move(out));
}

void tick(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto list = known(self);
  // A tick that comes much later than scheduled means this node was starved (a busy machine):
  // the peers' heartbeats may be waiting in the mailbox, so silence proves nothing this round.
  auto late = now - st.last_tick - st.deps.opts.heartbeat_interval;
  bool judge = st.last_tick.time_since_epoch().count() == 0
               || late < st.deps.opts.failure_timeout / 2;
  st.last_tick = now;
  for (auto& [name, m] : st.members) {
    if (judge && m.state == cluster_state::member_state::up
        && now - m.last_heard > st.deps.opts.failure_timeout)
      mark_down(self, m, "silent for cluster.failure-timeout");
    else if (m.handle) // urgent: overtakes forwarded batches in the peer's mailbox
      self->send<caf::message_priority::high>(m.handle, heartbeat_atom_v, st.me, list);
  }
  for (auto& seed : st.deps.opts.seeds)
    if (!seed_resolved(self, seed))
      connect(self, seed);
  for (auto& [name, m] : st.members)
    if (!m.handle && !m.info.address.empty())
      connect(self, m.info.address);
  check_settled(self);
  render_status(self);
}

/// Forgets the down peer `name` (see `cluster_state`); an empty result, or why not.
std::string forget(self_ptr self, const std::string& name) {
  auto& st = self->state;
  auto i = st.members.find(name);
  if (i == st.members.end())
    return "unknown";
  if (i->second.state == cluster_state::member_state::up)
    return name + " is up; stop it (and remove it from cluster.seeds) before forgetting it";
  self->send_exit(i->second.forwarder, caf::exit_reason::user_shutdown);
  st.members.erase(i);
  st.forgotten.insert(name);
  log_json("warn", "cluster peer forgotten: the log no longer keeps events for it",
           {{"peer", name}});
  rebuild_view(self, name + " forgotten");
  return {};
}

} // namespace

std::string single_node_status(const std::string& self, const std::string& http) {
  std::string out = "{\"enabled\":false,\"self\":";
  append_json_string(out, self);
  out += ",\"ring_version\":0,\"replicas\":1,\"settled\":true,\"members\":[{\"name\":";
  append_json_string(out, self);
  out += ",\"address\":\"\",\"http\":";
  append_json_string(out, http);
  out += ",\"state\":\"up\",\"self\":true,\"last_heard_ms\":0,\"share\":1.0000}],"
         "\"forwarders\":[],\"replication\":{\"pending_batches\":0,\"last_lag_ms\":0.000}}";
  return out;
}

caf::behavior cluster_actor(caf::stateful_actor<cluster_state>* self, cluster_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.metrics = st.deps.metrics;
  st.me = {st.deps.self, st.deps.opts.host + ":" + std::to_string(st.deps.opts.port),
           st.deps.http};
  st.checkpointed = st.deps.done_upto;
  st.head = st.deps.done_upto;
  st.started = self->clock().now();
  auto& m = *st.metrics;
  st.moves = &m.get_counter("sluice_cluster_ownership_moves_total",
                            "membership changes that moved key ownership (a new ring)");
  st.ring_version = &m.get_gauge("sluice_cluster_ring_version", "version of the current ring");
  st.members_up = &m.get_gauge("sluice_cluster_members", "cluster members by state",
                               {{"state", "up"}});
  st.members_down = &m.get_gauge("sluice_cluster_members", "cluster members by state",
                                 {{"state", "down"}});
  st.receive_latency = &m.get_histogram(
    "sluice_cluster_replication_seconds",
    "from receiving a peer's forwarded events to their durable append here (the peer's "
    "acknowledgement)",
    {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
  st.reader = st.deps.use_network
                ? self->spawn<caf::detached + caf::linked>(log_reader, st.deps.env, st.metrics)
                : self->spawn<caf::linked>(log_reader, st.deps.env, st.metrics);
  // Peers this node forwarded to before a restart keep their acknowledged offsets.
  {
    std::vector<std::string> stored;
    persistence::read_txn txn{*st.deps.env};
    txn.scan(persistence::db::meta, acked_prefix, [&](std::string_view k, std::string_view) {
      if (k.substr(0, acked_prefix.size()) != acked_prefix)
        return false;
      stored.emplace_back(k.substr(acked_prefix.size()));
      return true;
    });
    for (auto& name : stored)
      if (name != st.deps.self)
        member_for(self, name);
  }
  rebuild_view(self, "start");
  self->set_down_handler([self](caf::down_msg& msg) {
    for (auto& [name, m] : self->state.members)
      if (m.handle && m.handle.address() == msg.source) {
        m.handle = caf::actor{};
        mark_down(self, m, "connection lost");
        return;
      }
  });
  self->send(self, tick_atom_v);
  self->delayed_send(self, st.deps.opts.checkpoint_interval, sync_atom_v);
  return {
    // Membership.
    [self](hello_atom, member_info& their, std::vector<member_info>& others)
      -> caf::result<member_info, std::vector<member_info>> {
      heard(self, their, caf::actor_cast<caf::actor>(self->current_sender()));
      learn(self, others);
      return {self->state.me, known(self)};
    },
    [self](hello_atom, std::string& http) { // local: the gateway's URL once bound
      self->state.me.http = std::move(http);
      render_status(self);
    },
    [self](heartbeat_atom, member_info& their, std::vector<member_info>& others) {
      heard(self, their, caf::actor_cast<caf::actor>(self->current_sender()));
      learn(self, others);
    },
    [self](tick_atom) {
      tick(self);
      self->delayed_send<caf::message_priority::high>(
        self, self->state.deps.opts.heartbeat_interval, tick_atom_v);
    },
    [self](settle_atom) -> caf::result<caf::ok_atom> {
      if (self->state.settled)
        return caf::ok_atom_v;
      auto rp = self->make_response_promise();
      self->state.settle_waiters.push_back(rp);
      return caf::delegated<caf::ok_atom>{};
    },
    // The log consumer: only the head matters, the forwarders read what they need.
    [self](dispatch_atom, const committed_batch& batch) {
      auto& st = self->state;
      auto upto = batch.upto;
      self->send(st.deps.log, processed_atom_v, upto);
      if (upto > st.head) {
        st.head = upto;
        // The batch itself goes along (shared, not copied): a forwarder that is caught up
        // takes its events from it instead of reading them back from LMDB.
        auto msg = self->current_mailbox_element()->move_content_to_message();
        for (auto& [name, m] : st.members)
          self->send(m.forwarder, head_atom_v, st.head, msg);
      }
    },
    [self](drain_atom) -> caf::result<caf::ok_atom> {
      auto rp = self->make_response_promise();
      self->state.drains.push_back(rp);
      record_acks(self);
      if (!self->state.settled) { // nothing to record before the cluster settled
        for (auto& p : self->state.drains)
          p.deliver(caf::ok_atom_v);
        self->state.drains.clear();
      }
      return caf::delegated<caf::ok_atom>{};
    },
    [self](sync_atom) {
      record_acks(self);
      self->delayed_send(self, self->state.deps.opts.checkpoint_interval, sync_atom_v);
    },
    [self](acked_atom, const std::string& peer, bool up, log_offset acked, log_offset sent,
           log_offset head, uint64_t in_flight, uint64_t resent) {
      auto i = self->state.members.find(peer);
      if (i == self->state.members.end())
        return;
      auto& m = i->second;
      m.fwd_up = up;
      m.acked_upto = acked;
      m.sent_upto = sent;
      m.head = head;
      m.in_flight = in_flight;
      m.resent = resent;
    },
    // Receiving: a peer's events for keys this node keeps.
    [self](forward_atom, forward_batch& batch) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (batch.origin == st.deps.self || batch.events.empty())
        return caf::ok_atom_v;
      auto rp = self->make_response_promise();
      st.metrics
        ->get_counter("sluice_cluster_received_events_total",
                      "events a peer forwarded here (appended to the log for the shards only)",
                      {{"origin", batch.origin}})
        .inc(batch.events.size());
      for (auto& e : batch.events) {
        if (e.origin.empty())
          e.origin = batch.origin;
        e.offset = 0;
      }
      ++st.pending_forwards;
      auto start = clock_type::now();
      ingest_request req;
      req.events = std::move(batch.events);
      auto ticket = ++st.next_ticket;
      st.promises.emplace(ticket, std::move(rp));
      req.reply = [me = caf::actor_cast<caf::actor>(self), ticket, start](ingest_outcome o) {
        caf::anon_send(me, forward_atom_v, ticket, std::move(o.error),
                       std::chrono::duration<double>(clock_type::now() - start).count());
      };
      self->send(st.deps.log, append_atom_v, std::move(req));
      return caf::delegated<caf::ok_atom>{};
    },
    [self](forward_atom, uint64_t ticket, std::string& error, double seconds) {
      auto& st = self->state;
      --st.pending_forwards;
      st.receive_latency->observe(seconds);
      st.last_forward_ms = seconds * 1000.0;
      auto i = st.promises.find(ticket);
      if (i == st.promises.end())
        return;
      auto rp = std::move(i->second);
      st.promises.erase(i);
      if (error.empty())
        rp.deliver(caf::ok_atom_v);
      else
        rp.deliver(caf::make_error(caf::sec::runtime_error, std::move(error)));
    },
    // Forgetting a peer that is down: asked here (local, with a reply) and passed on to every
    // peer (remote, no reply).
    [self](forget_atom, std::string& name, query_reply& reply) {
      auto why = forget(self, name);
      if (why == "unknown") {
        reply.fn(query_reply::status::not_found, {});
        return;
      }
      if (!why.empty()) {
        reply.fn(query_reply::status::failed, why);
        return;
      }
      for (auto& [peer, m] : self->state.members)
        if (m.handle)
          self->send(m.handle, forget_atom_v, name);
      std::string body = "{\"forgotten\":";
      append_json_string(body, name);
      reply.fn(query_reply::status::found, body + "}");
    },
    [self](forget_atom, std::string& name) { forget(self, name); },
    // Queries: the owner answers.
    [self](query_atom, uint8_t kind, std::string& key, std::string& what, query_reply& reply) {
      auto space = static_cast<state_space>(kind);
      auto& st = self->state;
      auto v = st.deps.views->get();
      if (!v || v->owns(key)) {
        local_query(self, space, key, std::move(what), std::move(reply));
        return;
      }
      auto& owner = v->ring.owner(key);
      auto i = st.members.find(owner);
      if (i == st.members.end() || !i->second.handle) {
        local_query(self, space, key, std::move(what), std::move(reply));
        return;
      }
      st.metrics
        ->get_counter("sluice_cluster_queries_proxied_total",
                      "device and profile queries answered by the key's owner", {{"peer", owner}})
        .inc();
      self->request(i->second.handle, query_timeout, query_atom_v, static_cast<uint8_t>(space),
                    key, std::move(what))
        .then(
          [reply](uint8_t status, std::string& json) {
            reply.fn(static_cast<query_reply::status>(status), std::move(json));
          },
          [reply, owner](caf::error& err) {
            reply.fn(query_reply::status::failed,
                     "the owner " + owner + " did not answer: " + to_string(err));
          });
    },
    [self](query_atom, uint8_t space, std::string& key,
           std::string& what) -> caf::result<uint8_t, std::string> {
      auto ticket = ++self->state.next_ticket;
      self->state.promises.emplace(ticket, self->make_response_promise());
      query_reply reply;
      reply.fn = [me = caf::actor_cast<caf::actor>(self), ticket](query_reply::status st,
                                                                 std::string json) {
        caf::anon_send(me, query_atom_v, ticket, static_cast<uint8_t>(st), std::move(json));
      };
      local_query(self, static_cast<state_space>(space), key, std::move(what), std::move(reply));
      return caf::delegated<uint8_t, std::string>{};
    },
    [self](query_atom, uint64_t ticket, uint8_t status, std::string& json) {
      auto& promises = self->state.promises;
      auto i = promises.find(ticket);
      if (i == promises.end())
        return;
      auto rp = std::move(i->second);
      promises.erase(i);
      rp.deliver(status, std::move(json));
    },
  };
}

} // namespace sluice::cluster
