#include "actors/shard.hpp"
#include "actors/log.hpp"

#include "actors/metrics.hpp"
#include "actors/placement.hpp"
#include "persistence/lmdb.hpp"

#include <caf/all.hpp>

#include <atomic>
#include <memory>

#if defined(__GLIBC__)
#  include <malloc.h>
#endif

namespace sluice {

namespace {

/// Passivated entities (over all shards of the process) after which the shard ticking next asks
/// the allocator to return free memory to the OS. glibc keeps what a million short-lived actors
/// freed in its per-thread arenas: measured here, 100,000 devices and profiles passivated left
/// the RSS at 390 MB, 92 MB after `malloc_trim`. One trim walks the heap (milliseconds), so it
/// is done per wave of passivations, not per entity; below this count the memory stays for
/// reuse (a few MB).
constexpr uint64_t trim_after_passivations = 4096;

/// Passivations since the last trim, shared by every shard of the process (the heap is shared).
std::atomic<uint64_t> passivated_untrimmed{0};

/// Returns freed heap memory to the OS once enough entities were passivated. Called on a tick,
/// so the entities passivated on the previous one have exited and freed their memory.
void release_passivated_memory() {
#if defined(__GLIBC__)
  if (passivated_untrimmed.load(std::memory_order_relaxed) < trim_after_passivations)
    return;
  if (passivated_untrimmed.exchange(0, std::memory_order_relaxed) >= trim_after_passivations)
    malloc_trim(0);
#endif
}

using self_ptr = shard_actor::stateful_pointer<shard_state>;

// Finds the entity of `key`, restoring or spawning it. Returns nullptr when `create` is false and
// the key has no stored state.
shard_state::entry* entity_for(self_ptr self, const std::string& key, bool create) {
  auto& st = self->state;
  if (auto i = st.entities.find(key); i != st.entities.end())
    return &i->second;
  std::string stored;
  {
    persistence::read_txn txn{*st.deps.env};
    if (auto v = txn.get(db_of(st.deps.kind.space), key))
      stored.assign(v->data(), v->size());
  }
  if (stored.empty() && !create)
    return nullptr;
  (stored.empty() ? st.spawned : st.restored)->inc();
  auto& e = st.entities[key];
  e.actor = st.deps.kind.spawn(self->system(), key, std::move(stored));
  // Monitored, not linked: a link registers the entity in the shard's own attachable list, which
  // CAF walks linearly on every unlink, so passivating N entities cost O(N^2) (a million devices
  // stalled the shard for minutes). A monitor lives on the entity's side only. The shard holds
  // the only strong reference, so its entities terminate with it; an entity failing stops the
  // shard (see the down handler), as the link did.
  self->monitor(e.actor);
  e.last_active = self->clock().now();
  st.active->set(static_cast<int64_t>(st.entities.size()));
  return &e;
}

void try_finish_drains(self_ptr self) {
  auto& st = self->state;
  if (st.drains.empty() || !st.pendings.empty() || st.checkpointing || !st.dirty.empty()
      || st.completed_upto > st.deps.done_upto)
    return;
  for (auto& rp : st.drains)
    rp.deliver(caf::ok_atom_v);
  st.drains.clear();
}

void checkpoint_now(self_ptr self) {
  auto& st = self->state;
  if (st.checkpointing || (st.dirty.empty() && st.completed_upto <= st.deps.done_upto))
    return;
  checkpoint cp;
  cp.space = st.deps.kind.space;
  cp.consumer = st.consumer;
  cp.done_upto = st.completed_upto;
  // The states sent stay here until the commit answers: a failed commit puts them back into
  // `dirty`, so a later checkpoint cannot move the offset past state it never wrote.
  auto sent = std::make_shared<decltype(st.dirty)>(std::move(st.dirty));
  st.dirty.clear();
  cp.entries.reserve(sent->size());
  for (auto& [key, vs] : *sent)
    cp.entries.emplace_back(key, vs.second);
  st.checkpointing = true;
  auto upto = cp.done_upto;
  self->request(st.deps.log, caf::infinite, commit_atom_v, std::move(cp))
    .then(
      [self, sent, upto](caf::ok_atom) {
        auto& st = self->state;
        st.checkpointing = false;
        st.deps.done_upto = std::max(st.deps.done_upto, upto);
        for (auto& [key, vs] : *sent)
          if (auto i = st.entities.find(key); i != st.entities.end())
            i->second.committed = std::max(i->second.committed, vs.first);
        try_finish_drains(self);
      },
      [self, sent](caf::error& err) {
        // The states stay uncommitted: their entities are not passivated, the next checkpoint
        // writes them again (unless a newer state is already waiting), and until then the offset
        // does not pass them.
        auto& st = self->state;
        st.checkpointing = false;
        for (auto& [key, vs] : *sent)
          st.dirty.emplace(key, std::move(vs)); // keeps a newer state already in dirty
        st.failures->inc();
        log_json("error", "shard checkpoint failed (state stays uncommitted and is replayed)",
                 {{"consumer", st.consumer}, {"reason", to_string(err)}});
        try_finish_drains(self);
      });
}

void complete_pending(self_ptr self) {
  auto& st = self->state;
  log_offset processed = 0;
  while (!st.pendings.empty() && st.pendings.begin()->second == 0) {
    processed = st.pendings.begin()->first;
    st.completed_upto = std::max(st.completed_upto, processed);
    st.pendings.erase(st.pendings.begin());
  }
  if (processed > 0) // flow control: the log may send more
    self->send(st.deps.log, processed_atom_v, processed);
  try_finish_drains(self);
}

// One entity of the batch ending at `upto` answered (or failed).
void answered(self_ptr self, log_offset upto) {
  if (auto i = self->state.pendings.find(upto); i != self->state.pendings.end() && i->second > 0)
    --i->second;
  complete_pending(self);
}

void passivate_idle(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  uint64_t stopped = 0;
  for (auto i = st.entities.begin(); i != st.entities.end();) {
    auto& e = i->second;
    if (e.inflight == 0 && e.committed == e.version && now - e.last_active >= st.deps.idle_timeout) {
      self->demonitor(e.actor.address());
      self->send(e.actor, done_atom_v);
      st.passivated->inc();
      ++stopped;
      i = st.entities.erase(i);
    } else {
      ++i;
    }
  }
  st.active->set(static_cast<int64_t>(st.entities.size()));
  if (stopped > 0)
    passivated_untrimmed.fetch_add(stopped, std::memory_order_relaxed);
}

} // namespace

shard_actor::behavior_type shard(self_ptr self, shard_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.consumer = st.deps.kind.name + "s." + std::to_string(st.deps.index);
  st.completed_upto = st.deps.done_upto;
  auto& m = *st.deps.metrics;
  metric_labels kind{{"kind", st.deps.kind.name}, {"shard", std::to_string(st.deps.index)}};
  st.active = &m.get_gauge("sluice_actors_active", "Entity actors in memory", kind);
  st.passivated = &m.get_counter("sluice_actors_passivated_total",
                                 "Entity actors stopped after idle-timeout (state in LMDB)", kind);
  st.restored = &m.get_counter("sluice_actors_restored_total",
                               "Entity actors restored from LMDB", kind);
  st.spawned = &m.get_counter("sluice_actors_spawned_total",
                              "Entity actors created for a new key", kind);
  st.failures = &m.get_counter("sluice_actor_failures_total",
                               "Shard checkpoints that failed (state stays uncommitted and is replayed)", kind);
  // An entity that fails (not a passivation: those are demonitored first) takes the shard down
  // with it, as a link would: its answers would never come and the offset could not advance.
  self->set_down_handler([self](caf::down_msg& msg) {
    if (msg.reason && msg.reason != caf::exit_reason::normal) {
      log_json("error", "entity actor failed; stopping its shard",
               {{"consumer", self->state.consumer}, {"reason", to_string(msg.reason)}});
      self->quit(msg.reason);
    }
  });
  self->delayed_send(self, st.deps.checkpoint_interval, tick_atom_v);
  return {
    [self](dispatch_atom, committed_batch& batch) {
      auto& st = self->state;
      // Group the batch per key: one apply per entity per batch.
      std::unordered_map<std::string, event_batch> groups;
      auto view = st.deps.views ? st.deps.views->get() : nullptr;
      for (auto& e : batch.events) {
        if (e.offset <= st.deps.done_upto)
          continue;
        std::string key{st.deps.kind.key_of(e)}; // a copy: `e` is moved below
        if (view && !view->holds(key))
          continue; // another node owns and replicates it
        if (!key.empty())
          groups[std::move(key)].push_back(std::move(e));
      }
      st.pendings[batch.upto] += groups.size();
      auto upto = batch.upto;
      for (auto& [key, events] : groups) {
        auto* e = entity_for(self, key, true);
        e->last_active = self->clock().now();
        ++e->inflight;
        self->send(e->actor, apply_atom_v, upto, std::move(events));
      }
      complete_pending(self);
    },
    [self](applied_atom, std::string& key, log_offset upto, std::string& state) {
      auto& st = self->state;
      if (auto i = st.entities.find(key); i != st.entities.end()) {
        auto& ent = i->second;
        --ent.inflight;
        ++ent.version;
        st.dirty[key] = {ent.version, std::move(state)};
      }
      answered(self, upto);
    },
    [self](query_atom, std::string& key, std::string& what, query_reply& reply) {
      auto* e = entity_for(self, key, false);
      if (e == nullptr) {
        reply.fn(query_reply::status::not_found, {});
        return;
      }
      e->last_active = self->clock().now();
      self->request(e->actor, caf::infinite, query_atom_v, std::move(what))
        .then([reply](std::string& json) { reply.fn(query_reply::status::found, std::move(json)); },
              [reply](caf::error& err) { reply.fn(query_reply::status::failed, to_string(err)); });
    },
    [self](tick_atom) {
      checkpoint_now(self);
      release_passivated_memory(); // what the previous ticks' passivations freed
      passivate_idle(self);
      self->delayed_send(self, self->state.deps.checkpoint_interval, tick_atom_v);
    },
    [self](drain_atom) -> caf::result<caf::ok_atom> {
      auto rp = self->make_response_promise<caf::ok_atom>();
      self->state.drains.push_back(rp);
      checkpoint_now(self);
      try_finish_drains(self);
      return rp;
    },
  };
}

} // namespace sluice
