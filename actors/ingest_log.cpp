#include "actors/ingest_log.hpp"
#include "actors/heap.hpp"
#include "actors/log.hpp"

#include "actors/drain.hpp"
#include "actors/log_reader.hpp"
#include "actors/metrics.hpp"
#include "actors/placement.hpp"
#include "actors/route_history.hpp"
#include "messages/codec.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/log_store.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <limits>

namespace sluice {

namespace {

using self_ptr = ingest_log_actor::stateful_pointer<ingest_log_state>;

/// Seconds a refused sender is told to wait.
constexpr uint32_t overload_retry_after_s = 1;

/// LMDB copies every page a transaction changes, so the commit that records consumer offsets and
/// trims the log needs free pages itself: appends stop while the log's estimated footprint exceeds
/// this fraction of `storage.max-map-bytes`, keeping room for that commit (and for entity state).
constexpr double append_map_fraction = 0.75;
/// A stored record occupies its bytes plus up to about one page of B-tree slack.
constexpr uint64_t record_slack_bytes = 4096;

/// Why the log refuses a batch that reached it (it cannot store it), or nullptr.
const char* refusal_reason(self_ptr self) {
  auto& st = self->state;
  if (st.out_of_space)
    return "the ingest log is out of storage space (storage.max-map-bytes or disk full)";
  auto& stats = st.log->stats();
  auto footprint = stats.bytes + stats.records * record_slack_bytes;
  if (footprint > append_map_fraction * static_cast<double>(st.deps.env->max_map_bytes()))
    return "the ingest log is out of storage space: it fills 3/4 of storage.max-map-bytes, the "
           "rest is kept for consumers to record their progress and trim it";
  if (st.pending_events >= st.deps.max_pending_events)
    return "the ingest log's commit queue is full";
  return nullptr;
}

/// Why the gateway should not admit new batches, or nullptr. Besides the refusals, the stored
/// log above `storage.max-log-bytes` closes the gate; batches admitted before it closed are
/// still stored (a WebSocket frame already read is never refused for it).
const char* gate_reason(self_ptr self) {
  auto& st = self->state;
  if (auto hard = refusal_reason(self))
    return hard;
  if (st.deps.max_log_bytes > 0 && st.log->stats().bytes > st.deps.max_log_bytes)
    return "the ingest log holds more unconsumed data than storage.max-log-bytes";
  return nullptr;
}

void update_gate(self_ptr self) {
  auto& st = self->state;
  auto reason = gate_reason(self);
  bool open = reason == nullptr;
  if (open != st.gate_open_state) { // log transitions only
    st.gate_open_state = open;
    if (open)
      log_json("info", "ingest resumed: the log takes new batches again", {});
    else
      log_json(refusal_reason(self) != nullptr ? "error" : "warning",
               "ingest paused: senders get 503 with Retry-After, WebSockets stop reading",
               {{"reason", reason}});
  }
  st.gate_open->set(reason == nullptr ? 1 : 0);
  if (st.deps.gate) {
    st.deps.gate->reason.store(reason != nullptr ? reason : "");
    st.deps.gate->retry_after_s.store(overload_retry_after_s);
    st.deps.gate->open.store(reason == nullptr);
  }
}

void update_gauges(self_ptr self) {
  auto& st = self->state;
  auto& stats = st.log->stats();
  st.stored_bytes->set(static_cast<int64_t>(stats.bytes));
  st.stored_records->set(static_cast<int64_t>(stats.records));
  st.next_offset->set(static_cast<int64_t>(stats.next_offset));
  size_t waiting = 0;
  for (auto& pc : st.pending_checkpoints)
    waiting += pc.cp.entries.size() - pc.written;
  st.checkpoint_entries_waiting->set(static_cast<int64_t>(waiting));
  // Bytes per stored event, to estimate each consumer's lag in bytes.
  auto stored_events = stats.next_offset - std::max<uint64_t>(stats.first_offset, 1);
  double per_event = stored_events > 0 ? double(stats.bytes) / double(stored_events) : 0.0;
  std::vector<std::string> lagging;
  if (st.consumer_gauges.size() != st.deps.consumers.size()) { // registered once, then reused
    auto& m = *st.deps.metrics;
    st.consumer_gauges.clear();
    for (auto& spec : st.deps.consumers) {
      metric_labels labels{{"consumer", spec.name}};
      st.consumer_gauges.push_back(
        {&m.get_gauge("sluice_consumer_lag_bytes",
                      "Estimated stored bytes a consumer has not yet made durable (events x mean "
                      "size)",
                      labels),
         &m.get_gauge("sluice_consumer_lagging",
                      "1 while a consumer lags by more than storage.max-log-bytes", labels),
         &m.get_gauge("sluice_consumer_offset",
                      "Highest log offset a consumer is durably done with", labels),
         &m.get_gauge("sluice_consumer_lag_events",
                      "Committed events a consumer has not yet made durable", labels)});
    }
  }
  bool any_behind = false;
  for (size_t i = 0; i < st.deps.consumers.size(); ++i) {
    auto& name = st.deps.consumers[i].name;
    auto& g = st.consumer_gauges[i];
    auto done = st.offsets[name];
    auto lag_events = stats.next_offset - 1 - std::min(done, stats.next_offset - 1);
    auto lag_bytes = static_cast<uint64_t>(per_event * double(lag_events));
    g.lag_bytes->set(static_cast<int64_t>(lag_bytes));
    bool behind = st.deps.max_log_bytes > 0 && lag_bytes > st.deps.max_log_bytes;
    g.lagging->set(behind ? 1 : 0);
    if (behind) {
      lagging.push_back(name);
      any_behind = true;
    }
    g.offset->set(static_cast<int64_t>(done));
    g.lag_events->set(static_cast<int64_t>(lag_events));
  }
  // The gate's list changes rarely: only tell it when someone lags or someone did last time.
  if (st.deps.gate && (any_behind || st.reported_lagging)) {
    st.deps.gate->set_lagging(std::move(lagging));
    st.reported_lagging = any_behind;
  }
  update_gate(self);
}

// Sends `(dispatch_atom, committed_batch)` of `n` events up to `upto` to consumer `i` and records
// it in flight. Every all-events consumer gets the same message: CAF messages are copy-on-write,
// and the sink runners take the batch by const reference, copying only the events they route.
void send_to(self_ptr self, size_t i, const caf::message& msg, size_t n, log_offset upto) {
  auto& l = self->state.links[i];
  l.inflight.emplace_back(upto, n);
  l.inflight_events += n;
  l.sent_upto = upto;
  auto dest = caf::actor_cast<caf::strong_actor_ptr>(l.actor);
  dest->enqueue(self->ctrl(), caf::make_message_id(), msg, self->context());
}

/// `(dispatch_atom, committed_batch)` of `events` up to `upto`, carrying the placement hashes of
/// every key some consumer slices by (computed here once for all the shards of that kind).
caf::message dispatch_message(self_ptr self, event_batch events, log_offset upto) {
  committed_batch b{std::move(events), upto};
  bool hashed[3] = {}; // by `consumer_spec::slice`
  for (auto& spec : self->state.deps.consumers) {
    auto& done = hashed[static_cast<size_t>(spec.filter)];
    if (spec.filter != consumer_spec::slice::all && !done) {
      done = true;
      add_key_hashes(b, consumer_spec::placement(spec.filter));
    }
  }
  return caf::make_message(dispatch_atom_v, std::move(b));
}

/// Whether lagging consumer `l` may be sent another catch-up chunk: while it has at most
/// max(window/2, one chunk) unprocessed events, so the next chunk waits in its mailbox while it
/// applies the previous one.
bool has_room(self_ptr self, const ingest_log_state::link& l) {
  auto& st = self->state;
  return l.inflight_events <= std::max(st.deps.window_events / 2, st.chunk_events);
}

/// The cached chunk holding offset `pos`, or nullptr (prefers one starting there).
ingest_log_state::chunk* chunk_at(self_ptr self, log_offset pos) {
  ingest_log_state::chunk* found = nullptr;
  for (auto& c : self->state.chunks)
    if (c.from <= pos && pos <= c.upto) {
      if (c.from == pos)
        return &c;
      found = &c;
    }
  return found;
}

/// How many of the events of `b` (made by `dispatch_message`: it carries the hashes of `kind`)
/// each of the `count` shards of `kind` keeps (`counts` is resized): counted from the hashes.
void count_per_shard(const committed_batch& b, consumer_spec::slice kind, size_t count,
                     std::vector<size_t>& counts) {
  counts.assign(count, 0);
  auto k = consumer_spec::placement(kind);
  std::vector<size_t> scratch; // stays empty: `b` carries them
  auto& hashes = key_hashes(b, k, scratch);
  for (size_t i = 0; i < b.events.size(); ++i)
    if (!key_of(k, b.events[i]).empty())
      ++counts[shard_of(hashes[i], count)];
}

/// Sends lagging consumer `i` the events of chunk `c` from `pos` on (its slice of them).
void send_chunk(self_ptr self, size_t i, ingest_log_state::chunk& c, log_offset pos) {
  auto& st = self->state;
  auto& spec = st.deps.consumers[i];
  if (pos == c.from) {
    if (spec.filter == consumer_spec::slice::all) {
      st.caught_up->inc(c.events);
      send_to(self, i, c.all, c.events, c.upto);
      return;
    }
    auto& counts = c.shard_events[static_cast<size_t>(spec.filter)];
    if (counts.size() != spec.count)
      count_per_shard(c.all.get_as<committed_batch>(1), spec.filter, spec.count, counts);
    auto n = spec.index < counts.size() ? counts[spec.index] : 0;
    st.caught_up->inc(n);
    send_to(self, i, c.all, n, c.upto);
    return;
  }
  // Inside the chunk (the consumer started mid-chunk): a message of its own, with the hashes of
  // its slice taken along from the chunk's.
  auto& all = c.all.get_as<committed_batch>(1);
  committed_batch mine;
  mine.upto = c.upto;
  const std::vector<size_t>* hashes = nullptr;
  std::vector<size_t>* my_hashes = nullptr;
  std::vector<size_t> scratch; // stays empty: the chunk carries them
  placement_key k = placement_key::device;
  if (spec.filter != consumer_spec::slice::all) {
    k = consumer_spec::placement(spec.filter);
    hashes = &key_hashes(all, k, scratch);
    my_hashes = k == placement_key::device ? &mine.device_hashes : &mine.profile_hashes;
  }
  for (size_t j = 0; j < all.events.size(); ++j) {
    auto& e = all.events[j];
    if (e.offset < pos)
      continue;
    if (hashes != nullptr) {
      if (key_of(k, e).empty() || shard_of((*hashes)[j], spec.count) != spec.index)
        continue;
      my_hashes->push_back((*hashes)[j]);
    }
    mine.events.push_back(e);
  }
  auto n = mine.events.size();
  st.caught_up->inc(n);
  send_to(self, i, caf::make_message(dispatch_atom_v, std::move(mine)), n, c.upto);
}

void request_chunk(self_ptr self, log_offset from);

/// Drops the chunks every lagging consumer was sent, then starts the next read: the lowest
/// position a lagging consumer with room needs and no chunk covers, else (read-ahead) the chunk
/// after the furthest cached one while the cache has room.
void after_serving(self_ptr self) {
  auto& st = self->state;
  auto needed_by_someone = [&](const ingest_log_state::chunk& c) {
    for (auto& l : st.links)
      if (l.actor && !l.live && l.sent_upto < c.upto)
        return true;
    return false;
  };
  st.chunks.erase(std::remove_if(st.chunks.begin(), st.chunks.end(),
                                 [&](const auto& c) { return !needed_by_someone(c); }),
                  st.chunks.end());
  if (st.chunk_reading || !st.dispatching)
    return;
  auto head = st.log->stats().next_offset - 1;
  auto needed = std::numeric_limits<log_offset>::max();
  bool lagging = false;
  for (auto& l : st.links) {
    if (!l.actor || l.live || l.sent_upto >= head)
      continue;
    lagging = true;
    if (has_room(self, l) && chunk_at(self, l.sent_upto + 1) == nullptr)
      needed = std::min(needed, l.sent_upto + 1);
  }
  if (needed != std::numeric_limits<log_offset>::max()) {
    request_chunk(self, needed);
    return;
  }
  if (!lagging || st.chunks.empty() || st.chunks.size() >= st.deps.max_cached_chunks)
    return;
  log_offset furthest = 0;
  for (auto& c : st.chunks)
    furthest = std::max(furthest, c.upto);
  if (furthest < head && chunk_at(self, furthest + 1) == nullptr)
    request_chunk(self, furthest + 1);
}

/// Once no consumer lags, hands the memory a catch-up used (decoded chunks, slices, the consumers'
/// copies) back to the system: glibc keeps freed memory in its arenas (measured after a 20 s
/// ws-msgpack-100 backlog: 1.1 GB of the node's 1.37 GB anonymous RSS was such free memory),
/// jemalloc until its decay time. At most once per `trim_interval` (a consumer may turn live again
/// and again under load).
void release_backlog_memory(self_ptr self) {
  constexpr auto trim_interval = std::chrono::seconds{5};
  auto& st = self->state;
  for (auto& l : st.links)
    if (l.actor && !l.live)
      return;
  release_free_heap_unless_within(trim_interval);
}

/// Sends lagging consumer `i` cached chunks while it has room; turns it live at the head.
void serve(self_ptr self, size_t i) {
  auto& st = self->state;
  auto& l = st.links[i];
  while (!l.live && l.actor && has_room(self, l)) {
    if (l.sent_upto >= st.log->stats().next_offset - 1) {
      l.live = true;
      release_backlog_memory(self);
      return;
    }
    auto pos = l.sent_upto + 1;
    auto* c = chunk_at(self, pos);
    if (c == nullptr)
      return; // `after_serving` reads it
    send_chunk(self, i, *c, pos);
  }
}

/// Serves every lagging consumer from the cached chunks and keeps the reader busy.
void catch_up(self_ptr self) {
  auto& st = self->state;
  for (size_t i = 0; i < st.links.size(); ++i)
    serve(self, i);
  after_serving(self);
}

/// Asks the reader for the stored events from `from` on (one chunk, every event) and caches the
/// answer for every lagging consumer.
void request_chunk(self_ptr self, log_offset from) {
  auto& st = self->state;
  st.chunk_reading = true;
  st.catch_up_reads->inc();
  self
    ->request(st.reader, caf::infinite, read_atom_v, from,
              static_cast<uint8_t>(consumer_spec::slice::all), uint64_t{0}, uint64_t{1},
              uint64_t{st.chunk_events})
    .then(
      [self, from](committed_batch& batch) {
        auto& st = self->state;
        st.chunk_reading = false;
        if (batch.upto < from) { // nothing stored from there on: whoever waits there is at the head
          auto head = st.log->stats().next_offset - 1;
          for (auto& l : st.links)
            if (!l.live && l.sent_upto + 1 == from) {
              l.sent_upto = std::max(l.sent_upto, head);
              l.live = true;
            }
        } else {
          ingest_log_state::chunk c;
          c.from = from;
          c.upto = batch.upto;
          c.events = batch.events.size();
          c.all = dispatch_message(self, std::move(batch.events), batch.upto);
          auto at = std::find_if(st.chunks.begin(), st.chunks.end(),
                                 [&](const auto& x) { return x.from > from; });
          st.chunks.insert(at, std::move(c));
        }
        catch_up(self);
      },
      [self, from](caf::error& err) {
        self->state.chunk_reading = false;
        log_json("error", "catch-up read failed",
                 {{"from", std::to_string(from)}, {"reason", to_string(err)}});
      });
}

/// Sends committed events (offsets set, in offset order) to every live consumer with room in its
/// window; a consumer without room falls back to catching up from LMDB.
void dispatch(self_ptr self, event_batch events, log_offset upto) {
  auto& st = self->state;
  if (!st.dispatching)
    return; // before `replay`: consumers catch up from LMDB when it starts
  // Every consumer gets the same message (CAF messages are copy-on-write and every consumer
  // takes the batch by const reference); a shard picks its keys' events itself, by the hashes
  // the message carries (each key hashed once here for all shards). Only how many events each
  // shard keeps is counted here (once per shard kind), for the shards' windows.
  std::vector<size_t> shard_events[3];
  const auto n_all = events.size();
  caf::message shared = dispatch_message(self, std::move(events), upto);
  const auto& all = shared.get_as<committed_batch>(1);
  for (size_t i = 0; i < st.links.size(); ++i) {
    auto& l = st.links[i];
    auto& spec = st.deps.consumers[i];
    if (!l.live || !l.actor)
      continue;
    auto n = n_all;
    if (spec.filter != consumer_spec::slice::all) {
      auto& counts = shard_events[static_cast<size_t>(spec.filter)];
      if (counts.size() != spec.count)
        count_per_shard(all, spec.filter, spec.count, counts);
      n = spec.index < counts.size() ? counts[spec.index] : 0;
    }
    if (l.inflight_events > 0 && l.inflight_events + n > st.deps.window_events) {
      l.live = false; // its window is full: it catches up from LMDB once it has room
      continue;
    }
    send_to(self, i, shared, n, upto);
  }
}

/// The lowest recorded consumer offset, counting the offsets of the first `landing` pending
/// checkpoints (those of the commit being built: they land in the same transaction as the trim).
log_offset lowest_consumer_offset(self_ptr self,
                                  size_t landing = std::numeric_limits<size_t>::max()) {
  auto& st = self->state;
  log_offset lowest = std::numeric_limits<log_offset>::max();
  landing = std::min(landing, st.pending_checkpoints.size());
  for (auto& spec : st.deps.consumers) {
    auto done = st.offsets[spec.name];
    for (size_t i = 0; i < landing; ++i) {
      auto& cp = st.pending_checkpoints[i].cp;
      if (cp.consumer == spec.name)
        done = std::max(done, cp.done_upto);
    }
    lowest = std::min(lowest, done);
  }
  return st.deps.consumers.empty() ? st.log->stats().next_offset - 1 : lowest;
}

void fail_appends(self_ptr self, const std::string& error) {
  auto& st = self->state;
  for (auto& req : st.pending)
    req.reply(ingest_outcome{error, 0, 0, overload_retry_after_s});
  st.refused->inc(st.pending_events);
  st.pending.clear();
  st.pending_events = 0;
}

void fail_pending(self_ptr self, const std::string& error) {
  auto& st = self->state;
  st.commit_failures->inc();
  fail_appends(self, error);
  for (auto& pc : st.pending_checkpoints)
    pc.rp.deliver(caf::make_error(caf::sec::runtime_error, error));
  st.pending_checkpoints.clear();
}

void schedule_commit(self_ptr self) {
  // Whatever arrives before this message is processed joins the commit: natural group commit.
  if (!self->state.commit_scheduled) {
    self->state.commit_scheduled = true;
    self->send(self, commit_atom_v);
  }
}

/// Writes the pending checkpoints' entries into `txn`, in arrival order, at most `budget` of them
/// (0: all; at least the first checkpoint's `slice`): whole checkpoints, and of a divisible one as
/// many as the budget leaves. An indivisible checkpoint that does not fit waits for the next
/// commit, unless it comes first (it then lands alone, whatever its size). Sets `ends[i]` to the
/// entries of checkpoint `i` written once this commits; returns how many checkpoints land (a
/// prefix of them: their offsets are written).
size_t write_checkpoints(self_ptr self, persistence::write_txn& txn, size_t budget,
                         std::vector<size_t>& ends) {
  auto& st = self->state;
  ends.clear();
  if (budget > 0 && !st.pending_checkpoints.empty())
    budget = std::max(budget, st.pending_checkpoints.front().slice);
  auto left = budget == 0 ? std::numeric_limits<size_t>::max() : budget;
  size_t landing = 0;
  for (auto& pc : st.pending_checkpoints) {
    auto& cp = pc.cp;
    auto rest = cp.entries.size() - pc.written;
    auto take = rest;
    if (rest > left) {
      if (cp.divisible)
        take = left;
      else if (left < budget) // something went into this commit already
        break;
    }
    auto db = db_of(cp.space);
    for (size_t i = pc.written; i < pc.written + take; ++i) {
      auto& [key, value] = cp.entries[i];
      if (value.empty())
        txn.del(db, key);
      else
        txn.put(db, key, value);
    }
    ends.push_back(pc.written + take);
    left -= std::min(left, take);
    if (take < rest)
      break; // the budget ends inside this checkpoint: its offset lands with its last entries
    if (!cp.consumer.empty())
      txn.put(persistence::db::offsets, cp.consumer, persistence::encode_be64(cp.done_upto));
    ++landing;
  }
  return landing;
}

/// One group commit of what is pending: every append, the checkpoint entries and trims its
/// bounds allow (`bounded`; false: everything). Schedules the next commit while bounded work is
/// left, so that work proceeds between (and within) the commits that carry appends.
void run_commit(self_ptr self, bool bounded = true) {
  auto& st = self->state;
  st.commit_scheduled = false;
  if (st.pending.empty() && st.pending_checkpoints.empty() && !st.trim_more)
    return;
  auto started = std::chrono::steady_clock::now();
  std::vector<std::pair<log_offset, log_offset>> ranges;
  uint64_t bytes = 0;
  size_t trimmed = 0;
  std::vector<size_t> ends; // per checkpoint written into: its entries committed after this one
  size_t landing = 0;       // checkpoints whose offset lands in this commit
  bool trim_more = false;
  if (st.sessions) { // session ids go into the events before they are encoded, once per commit
    st.sessions->begin();
    try {
      for (auto& req : st.pending)
        st.sessions->assign(req.events);
    } catch (const std::exception& e) { // reading a device's stored session failed
      log_json("error", "session assignment failed", {{"reason", e.what()}});
      fail_pending(self, std::string{"session assignment failed: "} + e.what());
      update_gate(self);
      return;
    }
  }
  // The events move into the batch the consumers get before anything else reads them: one pass
  // over memory the gateway threads wrote (cold here), after which encoding and the offsets find
  // them in this core's cache. Moved after the commit, they were cold again: the fsync lets other
  // threads run, and this one often wakes on the other core. `request_ends[i]`: where request i's
  // events end in `committed`.
  event_batch committed;
  committed.reserve(st.pending_events);
  std::vector<size_t> request_ends;
  request_ends.reserve(st.pending.size());
  for (auto& req : st.pending) {
    for (auto& e : req.events)
      committed.push_back(std::move(e));
    req.events = event_batch{}; // the moved-from shells go while they are in cache
    request_ends.push_back(committed.size());
  }
  for (;;) {
    ranges.clear();
    trimmed = 0;
    trim_more = false;
    bytes = 0;
    st.log->checkpoint();
    try {
      persistence::write_txn txn{*st.deps.env};
      size_t begin = 0;
      for (auto end : request_ends) {
        // Encoded straight into the space LMDB reserves for the record: no copy through a buffer.
        auto* events = committed.data() + begin;
        auto count = end - begin;
        auto size = log_record_size(events, count);
        uint64_t first = 0;
        char* dst = st.log->append_reserved(txn, static_cast<uint32_t>(count), size, first);
        if (!write_log_record(events, count, dst, size)) // cannot happen: the size is msgpack-c's
          throw persistence::lmdb_error(EINVAL, "a log record's encoding did not fill the space "
                                                "computed for it (a bug; nothing stored)");
        for (size_t i = 0; i < count; ++i) // the same again after a retry: `rollback` rewinds
          events[i].offset = first + i;
        ranges.emplace_back(first, first + count - 1);
        bytes += size;
        begin = end;
      }
      if (st.sessions && !st.pending.empty())
        st.sessions->write(txn); // session state lands with the events that moved it
      landing = write_checkpoints(self, txn, bounded ? st.deps.checkpoint_entries_per_commit : 0,
                                  ends);
      // Trim what every consumer is done with, in the same transaction.
      auto lowest = lowest_consumer_offset(self, landing);
      auto max_trim = bounded && st.deps.trim_records_per_commit > 0
                        ? st.deps.trim_records_per_commit
                        : std::numeric_limits<size_t>::max();
      if (!st.deps.consumers.empty() && lowest > 0)
        trimmed = st.log->trim(txn, lowest + 1, max_trim, &trim_more);
      txn.commit();
      st.trimmed->inc(trimmed);
      if (trimmed > 0)
        st.out_of_space = false; // room again: let senders try
      break;
    } catch (const persistence::lmdb_error& e) {
      st.log->rollback();
      if (e.map_full() && st.deps.env->grow()) {
        log_json("info", "LMDB map full, grown",
                 {{"map_bytes", std::to_string(st.deps.env->map_bytes())}});
        continue;
      }
      if (e.out_of_space() && !st.pending.empty()) {
        // Refuse the appends, but commit the checkpoints alone: consumers that advance let the
        // log trim, which makes room again.
        log_json("error",
                 "storage full: refusing new batches (503) until consumers let the log trim",
                 {{"refused_events", std::to_string(st.pending_events)}, {"reason", e.what()}});
        st.commit_failures->inc();
        st.out_of_space = true;
        fail_appends(self, std::string{"storage is full: "} + e.what());
        committed.clear();
        request_ends.clear();
        continue;
      }
      log_json("error", "ingest log commit failed", {{"reason", e.what()}});
      fail_pending(self, std::string{"storage commit failed: "} + e.what());
      update_gate(self);
      return;
    }
  }
  if (st.sessions && !st.pending.empty())
    st.sessions->commit();
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
  st.commit_latency->observe(elapsed.count());
  st.group_size->observe(static_cast<double>(st.pending.size()));
  st.commits->inc();
  st.appended_bytes->inc(bytes);
  // Answer every request in arrival order, then hand the committed events on.
  log_offset upto = 0;
  for (size_t i = 0; i < st.pending.size(); ++i) {
    auto [first, last] = ranges[i];
    st.pending[i].reply(ingest_outcome{{}, first, last});
    upto = last;
  }
  st.appended_events->inc(committed.size());
  for (size_t i = 0; i < ends.size(); ++i)
    st.pending_checkpoints[i].written = ends[i];
  for (size_t i = 0; i < landing; ++i) {
    auto& pc = st.pending_checkpoints.front();
    if (!pc.cp.consumer.empty())
      st.offsets[pc.cp.consumer] = std::max(st.offsets[pc.cp.consumer], pc.cp.done_upto);
    pc.rp.deliver(caf::ok_atom_v);
    st.pending_checkpoints.pop_front();
  }
  st.trim_more = trim_more;
  if (!st.pending.empty())
    st.out_of_space = false;
  st.pending.clear();
  st.pending_events = 0;
  if (!st.pending_checkpoints.empty() || st.trim_more)
    schedule_commit(self); // the rest of the checkpoints and trims, with whatever arrives by then
  update_gauges(self);
  if (!committed.empty())
    dispatch(self, std::move(committed), upto);
}

} // namespace

ingest_log_actor::behavior_type ingest_log(self_ptr self, ingest_log_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.log = std::make_unique<persistence::log_store>(*st.deps.env);
  st.log->open();
  if (st.deps.sessions.enabled)
    st.sessions = std::make_unique<persistence::session_tracker>(*st.deps.env, st.deps.sessions);
  {
    persistence::read_txn txn{*st.deps.env};
    for (auto& spec : st.deps.consumers)
      if (auto v = txn.get(persistence::db::offsets, spec.name))
        st.offsets[spec.name] = persistence::decode_be64(*v);
      else
        st.offsets[spec.name] = 0;
  }
  st.reader = st.deps.detached_reader
                ? self->spawn<caf::detached + caf::linked>(log_reader, st.deps.env, st.deps.metrics)
                : self->spawn<caf::linked>(log_reader, st.deps.env, st.deps.metrics);
  st.chunk_events = st.deps.catch_up_events > 0
                      ? st.deps.catch_up_events
                      : std::max(st.deps.window_events / 2,
                                 std::min(ingest_log_deps::default_catch_up_events,
                                          st.deps.window_events * 2));
  st.links.resize(st.deps.consumers.size());
  for (size_t i = 0; i < st.links.size(); ++i)
    st.links[i].sent_upto = st.offsets[st.deps.consumers[i].name];
  auto& m = *st.deps.metrics;
  st.appended_events = &m.get_counter("sluice_log_entries_total", "Events appended to the ingest log");
  st.appended_bytes = &m.get_counter("sluice_log_bytes_total",
                                     "Encoded bytes appended to the ingest log");
  st.commits = &m.get_counter("sluice_log_commits_total", "LMDB commits of the ingest log");
  st.commit_failures = &m.get_counter("sluice_log_commit_failures_total",
                                      "Group commits that failed (their requests got an error)");
  st.refused = &m.get_counter("sluice_log_refused_events_total",
                              "Events refused without being stored (storage full); the sender "
                              "got 503 with Retry-After");
  st.caught_up = &m.get_counter("sluice_log_catch_up_events_total",
                                "Events sent to a lagging consumer from the stored log rather "
                                "than as they committed");
  st.catch_up_reads = &m.get_counter("sluice_log_catch_up_reads_total",
                                     "Chunks read from the stored log for lagging consumers (one "
                                     "read serves every consumer at that position)");
  st.gate_open = &m.get_gauge("sluice_ingest_open",
                              "1 while the log takes new batches; 0 while it pushes back (503)");
  st.trimmed = &m.get_counter("sluice_log_trimmed_records_total",
                              "Log records deleted because every consumer was done with them");
  st.stored_bytes = &m.get_gauge("sluice_log_stored_bytes", "Bytes of events stored in the log");
  st.stored_records = &m.get_gauge("sluice_log_stored_records", "Batch records stored in the log");
  st.next_offset = &m.get_gauge("sluice_log_next_offset", "Offset the next event will get");
  st.commit_latency = &m.get_histogram("sluice_commit_latency_seconds",
                                       "Duration of one group commit (LMDB write and fsync)",
                                       latency_buckets());
  st.checkpoint_entries_waiting = &m.get_gauge(
    "sluice_log_checkpoint_entries_waiting",
    "Consumer state entries received in checkpoints and not yet committed (a large checkpoint "
    "lands over several commits, storage.checkpoint-entries-per-commit at a time)");
  st.group_size = &m.get_histogram("sluice_commit_group_batches",
                                   "Client batches per group commit",
                                   {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  update_gauges(self);
  if (st.deps.routes) // before anything is dispatched: every event sees the routes of its offset
    open_route_history(*st.deps.routes, st.deps.config_routes_text, st.log->stats().next_offset,
                       lowest_consumer_offset(self));
  if (st.deps.env->mode() == persistence::durability::periodic)
    self->delayed_send(self, st.deps.sync_interval, sync_atom_v);
  return {
    [self](append_atom, ingest_request& req) {
      auto& st = self->state;
      if (auto reason = refusal_reason(self)) {
        st.refused->inc(req.events.size());
        req.reply(ingest_outcome{reason, 0, 0, overload_retry_after_s});
        return;
      }
      st.pending_events += req.events.size();
      st.pending.push_back(std::move(req));
      if (st.pending_events >= st.deps.max_pending_events)
        update_gate(self);
      schedule_commit(self);
    },
    [self](processed_atom, log_offset upto) {
      auto& st = self->state;
      auto sender = self->current_sender();
      for (size_t i = 0; i < st.links.size(); ++i) {
        auto& l = st.links[i];
        if (!l.actor || caf::actor_cast<caf::strong_actor_ptr>(l.actor) != sender)
          continue;
        while (!l.inflight.empty() && l.inflight.front().first <= upto) {
          l.inflight_events -= l.inflight.front().second;
          l.inflight.pop_front();
        }
        if (!l.live) {
          serve(self, i);
          after_serving(self);
        }
        return;
      }
    },
    [self](commit_atom, checkpoint& cp) -> caf::result<caf::ok_atom> {
      auto rp = self->make_response_promise<caf::ok_atom>();
      auto& st = self->state;
      auto n = cp.entries.size();
      auto per_commit = st.deps.checkpoint_max_commits > 0
                          ? (n + st.deps.checkpoint_max_commits - 1) / st.deps.checkpoint_max_commits
                          : n;
      auto slice = std::max(st.deps.checkpoint_entries_per_commit, per_commit);
      st.pending_checkpoints.push_back({std::move(cp), rp, 0, slice});
      schedule_commit(self);
      return rp;
    },
    [self](connect_atom, std::vector<consumer_actor>& actors) {
      auto& st = self->state;
      for (size_t i = 0; i < actors.size() && i < st.links.size(); ++i)
        st.links[i].actor = std::move(actors[i]);
    },
    [self](commit_atom) { run_commit(self); },
    [self](sync_atom) {
      try {
        self->state.deps.env->flush();
      } catch (const std::exception& e) {
        log_json("error", "periodic sync failed", {{"reason", e.what()}});
      }
      self->delayed_send(self, self->state.deps.sync_interval, sync_atom_v);
    },
    [self](replay_atom) -> uint64_t {
      auto& st = self->state;
      st.dispatching = true;
      auto head = st.log->stats().next_offset - 1;
      auto lowest = lowest_consumer_offset(self);
      catch_up(self);
      return head > lowest ? head - lowest : 0;
    },
    [self](route_atom, route_swap_request& req) {
      // Between commits: whatever is pending gets offsets >= next_offset and is dispatched after
      // the publish below, so no event is routed by a half-applied set.
      auto& st = self->state;
      if (!st.deps.routes) {
        req.reply("this node has no route registry", false, 0, 0);
        return;
      }
      auto res = swap_routes(*st.deps.routes, req.text, req.comment, st.log->stats().next_offset,
                             lowest_consumer_offset(self));
      req.reply(std::move(res.error), res.invalid, res.version, res.effective_from);
    },
    [self](drain_atom) -> caf::result<caf::ok_atom> {
      run_commit(self, false);
      auto rp = self->make_response_promise<caf::ok_atom>();
      auto& st = self->state;
      std::vector<consumer_actor> all;
      for (auto& l : st.links)
        if (l.actor)
          all.push_back(l.actor);
      drain_all(self, all, [self, rp]() mutable {
        run_commit(self, false); // anything the drains left pending
        rp.deliver(caf::ok_atom_v);
      });
      return rp;
    },
  };
}

} // namespace sluice
