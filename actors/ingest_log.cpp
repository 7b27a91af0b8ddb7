#include "actors/ingest_log.hpp"

#include "actors/drain.hpp"
#include "actors/metrics.hpp"
#include "actors/placement.hpp"
#include "messages/codec.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/log_store.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>

namespace sluice {

namespace {

using self_ptr = ingest_log_actor::stateful_pointer<ingest_log_state>;

void update_gauges(self_ptr self) {
  auto& st = self->state;
  auto& stats = st.log->stats();
  st.stored_bytes->set(static_cast<int64_t>(stats.bytes));
  st.stored_records->set(static_cast<int64_t>(stats.records));
  st.next_offset->set(static_cast<int64_t>(stats.next_offset));
  for (auto& name : st.deps.consumers) {
    auto done = st.offsets[name];
    auto& m = *st.deps.metrics;
    m.get_gauge("sluice_consumer_offset", "Highest log offset a consumer is durably done with",
                {{"consumer", name}})
      .set(static_cast<int64_t>(done));
    m.get_gauge("sluice_consumer_lag_events", "Committed events a consumer has not yet made durable",
                {{"consumer", name}})
      .set(static_cast<int64_t>(stats.next_offset - 1 - std::min(done, stats.next_offset - 1)));
  }
}

/// Sends committed events (offsets set) to the shards and the router, in offset order.
void dispatch(self_ptr self, event_batch events, log_offset upto) {
  auto& st = self->state;
  auto partition = [&](std::vector<consumer_actor>& shards, std::vector<event_batch>& parts,
                       auto key_of) {
    if (shards.empty())
      return;
    parts.resize(shards.size());
    for (auto& e : events) {
      std::string_view key = key_of(e);
      if (!key.empty())
        parts[shard_index(key, shards.size())].push_back(e);
    }
    for (size_t i = 0; i < shards.size(); ++i) {
      self->send(shards[i], dispatch_atom_v, committed_batch{std::move(parts[i]), upto});
      parts[i] = event_batch{};
    }
  };
  partition(st.deps.device_shards, st.device_parts,
            [](const event& e) -> std::string_view { return e.device_id; });
  partition(st.deps.profile_shards, st.profile_parts,
            [](const event& e) -> std::string_view { return e.profile_id; });
  if (st.deps.router)
    self->send(st.deps.router, dispatch_atom_v, committed_batch{std::move(events), upto});
}

log_offset lowest_consumer_offset(self_ptr self) {
  auto& st = self->state;
  log_offset lowest = std::numeric_limits<log_offset>::max();
  for (auto& name : st.deps.consumers)
    lowest = std::min(lowest, st.offsets[name]);
  return st.deps.consumers.empty() ? st.log->stats().next_offset - 1 : lowest;
}

void fail_pending(self_ptr self, const std::string& error) {
  auto& st = self->state;
  st.commit_failures->inc();
  for (auto& req : st.pending)
    req.reply(ingest_outcome{error, 0, 0});
  for (auto& [cp, rp] : st.pending_checkpoints)
    rp.deliver(caf::make_error(caf::sec::runtime_error, error));
  st.pending.clear();
  st.pending_checkpoints.clear();
}

void run_commit(self_ptr self) {
  auto& st = self->state;
  st.commit_scheduled = false;
  if (st.pending.empty() && st.pending_checkpoints.empty())
    return;
  auto started = std::chrono::steady_clock::now();
  std::vector<std::pair<log_offset, log_offset>> ranges;
  uint64_t bytes = 0;
  for (;;) {
    ranges.clear();
    bytes = 0;
    st.log->checkpoint();
    try {
      persistence::write_txn txn{*st.deps.env};
      for (auto& req : st.pending) {
        st.encode_buffer.clear();
        encode_log_record(req.events, st.encode_buffer);
        auto first = st.log->append(txn, static_cast<uint32_t>(req.events.size()),
                                    st.encode_buffer);
        ranges.emplace_back(first, first + req.events.size() - 1);
        bytes += st.encode_buffer.size();
      }
      for (auto& [cp, rp] : st.pending_checkpoints) {
        auto db = db_of(cp.space);
        for (auto& [key, value] : cp.entries) {
          if (value.empty())
            txn.del(db, key);
          else
            txn.put(db, key, value);
        }
        if (!cp.consumer.empty())
          txn.put(persistence::db::offsets, cp.consumer, persistence::encode_be64(cp.done_upto));
      }
      // Trim what every consumer is done with, in the same transaction.
      auto lowest = lowest_consumer_offset(self);
      if (!st.deps.consumers.empty() && lowest > 0)
        st.trimmed->inc(st.log->trim(txn, lowest + 1));
      txn.commit();
      break;
    } catch (const persistence::lmdb_error& e) {
      st.log->rollback();
      if (e.map_full() && st.deps.env->grow()) {
        aout(self) << "ingest log: LMDB map full, grown to " << st.deps.env->map_bytes()
                   << " bytes\n";
        continue;
      }
      aout(self) << "ingest log: commit failed: " << e.what() << '\n';
      fail_pending(self, std::string{"storage commit failed: "} + e.what());
      return;
    }
  }
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
  st.commit_latency->observe(elapsed.count());
  st.group_size->observe(static_cast<double>(st.pending.size()));
  st.commits->inc();
  st.appended_bytes->inc(bytes);
  // Answer every request in arrival order, then hand the committed events on.
  event_batch committed;
  log_offset upto = 0;
  for (size_t i = 0; i < st.pending.size(); ++i) {
    auto& req = st.pending[i];
    auto [first, last] = ranges[i];
    req.reply(ingest_outcome{{}, first, last});
    st.appended_events->inc(req.events.size());
    auto off = first;
    for (auto& e : req.events) {
      e.offset = off++;
      committed.push_back(std::move(e));
    }
    upto = last;
  }
  for (auto& [cp, rp] : st.pending_checkpoints) {
    if (!cp.consumer.empty())
      st.offsets[cp.consumer] = std::max(st.offsets[cp.consumer], cp.done_upto);
    rp.deliver(caf::ok_atom_v);
  }
  st.pending.clear();
  st.pending_checkpoints.clear();
  update_gauges(self);
  if (!committed.empty())
    dispatch(self, std::move(committed), upto);
}

void schedule_commit(self_ptr self) {
  // Whatever arrives before this message is processed joins the commit: natural group commit.
  if (!self->state.commit_scheduled) {
    self->state.commit_scheduled = true;
    self->send(self, commit_atom_v);
  }
}

} // namespace

ingest_log_actor::behavior_type ingest_log(self_ptr self, ingest_log_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.log = std::make_unique<persistence::log_store>(*st.deps.env);
  st.log->open();
  {
    persistence::read_txn txn{*st.deps.env};
    for (auto& name : st.deps.consumers)
      if (auto v = txn.get(persistence::db::offsets, name))
        st.offsets[name] = persistence::decode_be64(*v);
      else
        st.offsets[name] = 0;
  }
  auto& m = *st.deps.metrics;
  st.appended_events = &m.get_counter("sluice_log_entries_total", "Events appended to the ingest log");
  st.appended_bytes = &m.get_counter("sluice_log_bytes_total",
                                     "Encoded bytes appended to the ingest log");
  st.commits = &m.get_counter("sluice_log_commits_total", "LMDB commits of the ingest log");
  st.commit_failures = &m.get_counter("sluice_log_commit_failures_total",
                                      "Group commits that failed (their requests got an error)");
  st.trimmed = &m.get_counter("sluice_log_trimmed_records_total",
                              "Log records deleted because every consumer was done with them");
  st.stored_bytes = &m.get_gauge("sluice_log_stored_bytes", "Bytes of events stored in the log");
  st.stored_records = &m.get_gauge("sluice_log_stored_records", "Batch records stored in the log");
  st.next_offset = &m.get_gauge("sluice_log_next_offset", "Offset the next event will get");
  st.commit_latency = &m.get_histogram("sluice_commit_latency_seconds",
                                       "Duration of one group commit (LMDB write and fsync)",
                                       latency_buckets());
  st.group_size = &m.get_histogram("sluice_commit_group_batches",
                                   "Client batches per group commit",
                                   {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  update_gauges(self);
  if (st.deps.env->mode() == persistence::durability::periodic)
    self->delayed_send(self, st.deps.sync_interval, sync_atom_v);
  return {
    [self](append_atom, ingest_request& req) {
      self->state.pending.push_back(std::move(req));
      schedule_commit(self);
    },
    [self](commit_atom, checkpoint& cp) -> caf::result<caf::ok_atom> {
      auto rp = self->make_response_promise<caf::ok_atom>();
      self->state.pending_checkpoints.emplace_back(std::move(cp), rp);
      schedule_commit(self);
      return rp;
    },
    [self](connect_atom, consumer_actor& router, std::vector<consumer_actor>& devices,
           std::vector<consumer_actor>& profiles) {
      auto& st = self->state;
      st.deps.router = std::move(router);
      st.deps.device_shards = std::move(devices);
      st.deps.profile_shards = std::move(profiles);
    },
    [self](commit_atom) { run_commit(self); },
    [self](sync_atom) {
      try {
        self->state.deps.env->flush();
      } catch (const std::exception& e) {
        aout(self) << "ingest log: periodic sync failed: " << e.what() << '\n';
      }
      self->delayed_send(self, self->state.deps.sync_interval, sync_atom_v);
    },
    [self](replay_atom) -> uint64_t {
      auto& st = self->state;
      auto from = lowest_consumer_offset(self) + 1;
      uint64_t replayed = 0;
      event_batch chunk;
      log_offset upto = 0;
      st.log->read(from, [&](uint64_t first, uint32_t count, std::string_view bytes) {
        event_batch decoded;
        if (!decode_log_record(bytes, first, decoded)) {
          aout(self) << "ingest log: record at offset " << first << " (" << count
                     << " events) is unreadable; skipped\n";
          return true;
        }
        for (auto& e : decoded) {
          if (e.offset < from)
            continue;
          chunk.push_back(std::move(e));
        }
        upto = first + count - 1;
        if (chunk.size() >= st.deps.replay_chunk_events) {
          replayed += chunk.size();
          dispatch(self, std::move(chunk), upto);
          chunk = event_batch{};
        }
        return true;
      });
      if (!chunk.empty()) {
        replayed += chunk.size();
        dispatch(self, std::move(chunk), upto);
      }
      return replayed;
    },
    [self](drain_atom) -> caf::result<caf::ok_atom> {
      run_commit(self);
      auto rp = self->make_response_promise<caf::ok_atom>();
      auto& st = self->state;
      std::vector<consumer_actor> all = st.deps.device_shards;
      all.insert(all.end(), st.deps.profile_shards.begin(), st.deps.profile_shards.end());
      if (st.deps.router)
        all.push_back(st.deps.router);
      drain_all(self, all, [self, rp]() mutable {
        run_commit(self); // anything the drains left pending
        rp.deliver(caf::ok_atom_v);
      });
      return rp;
    },
  };
}

} // namespace sluice
