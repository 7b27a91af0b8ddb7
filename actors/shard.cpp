#include "actors/shard.hpp"
#include "actors/heap.hpp"
#include "actors/log.hpp"

#include "actors/metrics.hpp"
#include "actors/placement.hpp"
#include "persistence/lmdb.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>


namespace sluice {

namespace {

/// Passivated entities (over all shards of the process) after which the shard ticking next asks
/// the allocator to return free memory to the OS. glibc keeps what a million short-lived entities
/// freed in its per-thread arenas: measured here, 100,000 devices and profiles passivated left
/// the RSS at 390 MB, 92 MB after `malloc_trim`; jemalloc (the executable's allocator, see
/// app/allocator.cpp) returns it on its own within its decay time, so it is purged at most once a
/// second. One release walks the heap (milliseconds), so it is done per wave of passivations, not
/// per entity; below this count the memory stays for reuse (a few MB).
constexpr uint64_t trim_after_passivations = 4096;

/// Passivations since the last release, shared by every shard of the process (the heap is shared).
std::atomic<uint64_t> passivated_untrimmed{0};

/// Returns freed heap memory to the OS once enough entities were passivated. Called on a tick,
/// so the entities passivated on the previous one are gone.
void release_passivated_memory() {
  if (passivated_untrimmed.load(std::memory_order_relaxed) < trim_after_passivations)
    return;
  if (release_free_heap_unless_within(std::chrono::seconds{1}))
    passivated_untrimmed.store(0, std::memory_order_relaxed);
}

using self_ptr = shard_actor::stateful_pointer<shard_state>;
using slot = shard_state::slot;

// Finds the entity of `key` (whose `key_hash` is `hash`), restoring or making it (active since
// `now`). Returns nullptr when `create` is false and the key has no stored state.
slot* entity_for(shard_state& st, std::string_view key, size_t hash, bool create,
                 caf::actor_clock::time_point now) {
  if (auto* found = st.entities.find(key, hash))
    return found;
  auto s = std::make_unique<slot>();
  s->set_key(key);
  {
    persistence::read_txn txn{*st.deps.env};
    auto stored = txn.get(db_of(st.deps.kind.space), s->key());
    if (!stored && !create)
      return nullptr;
    (stored ? st.restored : st.spawned)->inc();
    s->ent = st.deps.kind.make(s->key(), stored ? *stored : std::string_view{});
  }
  s->last_active = now;
  auto* result = st.entities.insert(hash, std::move(s));
  st.active->set(static_cast<int64_t>(st.entities.size()));
  return result;
}

void mark_dirty(shard_state& st, slot& s) {
  if (!s.dirty) {
    s.dirty = true;
    st.dirty.push_back(&s);
  }
}

void try_finish_drains(self_ptr self) {
  auto& st = self->state;
  if (st.drains.empty() || st.checkpointing || !st.dirty.empty()
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
  // Each dirty entity is encoded once here, however many batches changed it since the last
  // checkpoint. What was sent is remembered by entity and version until the commit answers: a
  // failed commit marks those entities dirty again, so a later checkpoint cannot move the offset
  // past state it never wrote. The entities stay in memory until then (passivation needs
  // `committed == version`, and a sent entity's version is newer than its committed one: it was
  // bumped when the entity became dirty after its last commit), so their slots are safe to keep.
  auto sent = std::make_shared<std::vector<std::pair<slot*, uint64_t>>>();
  sent->reserve(st.dirty.size());
  cp.entries.reserve(st.dirty.size());
  for (auto* s : st.dirty) {
    s->dirty = false;
    cp.entries.emplace_back(std::string{s->key()}, s->ent->encode());
    sent->emplace_back(s, s->version);
  }
  st.dirty.clear();
  // Entity states record the offsets they applied (replay skips those events), so each may land
  // before the shard's offset: the log spreads a large checkpoint over several commits. In key
  // order, each slice updates neighbouring B-tree pages rather than pages all over the tree.
  cp.divisible = true;
  std::sort(cp.entries.begin(), cp.entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  st.checkpointing = true;
  auto upto = cp.done_upto;
  self->request(st.deps.log, caf::infinite, commit_atom_v, std::move(cp))
    .then(
      [self, sent, upto](caf::ok_atom) {
        auto& st = self->state;
        st.checkpointing = false;
        st.deps.done_upto = std::max(st.deps.done_upto, upto);
        for (auto& [s, version] : *sent)
          s->committed = std::max(s->committed, version);
        try_finish_drains(self);
      },
      [self, sent](caf::error& err) {
        // The states stay uncommitted: their entities are not passivated, the next checkpoint
        // writes them again, and until then the offset does not pass them.
        auto& st = self->state;
        st.checkpointing = false;
        for (auto& [s, version] : *sent)
          mark_dirty(st, *s);
        st.failures->inc();
        log_json("error", "shard checkpoint failed (state stays uncommitted and is replayed)",
                 {{"consumer", st.consumer}, {"reason", to_string(err)}});
        try_finish_drains(self);
      });
}

void passivate_idle(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto stopped = st.entities.erase_if([&](const slot& s) {
    return !s.dirty && s.committed == s.version && now - s.last_active >= st.deps.idle_timeout;
  });
  st.passivated->inc(stopped);
  st.active->set(static_cast<int64_t>(st.entities.size()));
  if (stopped > 0)
    passivated_untrimmed.fetch_add(stopped, std::memory_order_relaxed);
}

} // namespace

void apply_batch(shard_state& st, const committed_batch& batch, caf::actor_clock::time_point now,
                 const cluster::view* view) {
  auto tag = ++st.batches;
  auto& events = batch.events;
  auto k = st.deps.kind.key;
  // The hashes of this kind's keys: the batch's (the ingest log computed them once for every
  // shard), or computed here when it came without them.
  const auto* hashes = &key_hashes(batch, k, st.hashes);
  // 1. This shard's events, picked by their hashes (another shard's event is not touched); the
  // table entries their lookups read and their keys' bytes are prefetched.
  auto& mine = st.pending;
  mine.clear();
  const auto count = st.deps.count;
  const auto index = st.deps.index;
  const auto done_upto = st.deps.done_upto;
  for (size_t i = 0; i < events.size(); ++i) {
    auto hash = (*hashes)[i];
    if (count > 1 && shard_of(hash, count) != index)
      continue; // another shard's
    auto& e = events[i];
    if (e.offset <= done_upto)
      continue;
    auto key = key_of(k, e);
    if (key.empty())
      continue; // no key
    if (view && !view->holds(key))
      continue; // another node owns and replicates it
    st.entities.prefetch(hash);
    __builtin_prefetch(key.data());
    // The rest of the event (its id and type before the key, its attrs and origin after the
    // offset: its first and last cache lines), which 3 reads: loaded from the core that decoded
    // it while 2 runs.
    auto* bytes = reinterpret_cast<const char*>(&e);
    __builtin_prefetch(bytes);
    __builtin_prefetch(bytes + sizeof(event) - 1);
    mine.push_back({&e, key, hash, nullptr});
  }
  // The slots the lookups of 2 compare first (their table entries are loaded by now).
  for (auto& p : mine)
    st.entities.prefetch_value(p.hash);
  // 2. Their entities (made or restored on their key's first event), prefetched for 3 with the
  // bytes of the event that its entity reads beyond the event itself (a device hashes the id, a
  // profile reads the attrs; neither is inside the event past 15 bytes).
  for (auto& p : mine) {
    p.target = entity_for(st, p.key, p.hash, true, now);
    __builtin_prefetch(p.target->ent.get());
    __builtin_prefetch(p.ev->id.data());
    __builtin_prefetch(p.ev->attrs.data());
  }
  // 3. Events in offset order, each applied to its key's entity; the entities touched end their
  // batch afterwards (once each).
  for (auto& p : mine) {
    auto& e = *p.ev;
    auto* s = p.target;
    if (s->batch != tag) {
      s->batch = tag;
      s->last_active = now;
      st.touched.push_back(s);
    }
    if (s->ent->apply(e) && !s->dirty) {
      ++s->version;
      mark_dirty(st, *s);
    }
  }
  mine.clear();
  for (auto* s : st.touched)
    s->ent->end_batch();
  st.touched.clear();
}

shard_actor::behavior_type shard(self_ptr self, shard_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.consumer = st.deps.kind.name + "s." + std::to_string(st.deps.index);
  st.completed_upto = st.deps.done_upto;
  auto& m = *st.deps.metrics;
  metric_labels kind{{"kind", st.deps.kind.name}, {"shard", std::to_string(st.deps.index)}};
  st.active = &m.get_gauge("sluice_actors_active", "Entities (devices, profiles) in memory", kind);
  st.passivated = &m.get_counter("sluice_actors_passivated_total",
                                 "Entities dropped from memory after idle-timeout (state in LMDB)",
                                 kind);
  st.restored = &m.get_counter("sluice_actors_restored_total", "Entities restored from LMDB",
                               kind);
  st.spawned = &m.get_counter("sluice_actors_spawned_total", "Entities created for a new key",
                              kind);
  st.failures = &m.get_counter("sluice_actor_failures_total",
                               "Shard checkpoints that failed (state stays uncommitted and is replayed)", kind);
  self->delayed_send(self, st.deps.checkpoint_interval + st.deps.checkpoint_phase, tick_atom_v);
  return {
    [self](dispatch_atom, const committed_batch& batch) {
      auto& st = self->state;
      auto view = st.deps.views ? st.deps.views->get() : nullptr;
      apply_batch(st, batch, self->clock().now(), view.get());
      st.completed_upto = std::max(st.completed_upto, batch.upto);
      self->send(st.deps.log, processed_atom_v, batch.upto); // flow control: the log may send more
      try_finish_drains(self);
    },
    [self](query_atom, std::string& key, std::string& what, query_reply& reply) {
      auto* s = entity_for(self->state, key, key_hash(key), false, self->clock().now());
      if (s == nullptr) {
        reply.fn(query_reply::status::not_found, {});
        return;
      }
      s->last_active = self->clock().now();
      reply.fn(query_reply::status::found, s->ent->query(what));
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
