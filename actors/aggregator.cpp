#include "actors/aggregator.hpp"

#include "actors/catalog.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "messages/codec.hpp"
#include "persistence/lmdb.hpp"

#include <caf/all.hpp>

#include <fmt/format.h>

#include <ctime>

namespace sluice {

namespace {

using self_ptr = aggregator_actor::stateful_pointer<aggregator_state>;

constexpr int64_t seconds_per_day = 86'400;
constexpr int64_t ms_per_second = 1000;

void append_name(std::string& out, const catalog& cat, const std::string& title_id) {
  out += ",\"name\":";
  if (auto* info = cat.find(title_id))
    append_json_string(out, info->name);
  else
    out += "null"; // removed from the catalog since it was counted
}

void append_titles(std::string& out, const catalog& cat, const std::vector<ranked>& items,
                   const char* score_field) {
  out += "\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    out += "{\"title_id\":";
    append_json_string(out, items[i].id);
    append_name(out, cat, items[i].id);
    fmt::format_to(std::back_inserter(out), ",\"{}\":{}}}", score_field, items[i].score);
  }
  out += ']';
}

std::string render_date(int64_t day) {
  std::time_t t = static_cast<std::time_t>(day * seconds_per_day);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

void try_finish_drains(self_ptr self) {
  auto& st = self->state;
  if (st.drains.empty() || st.checkpointing || st.model.dirty()
      || st.committed_upto < st.applied_upto)
    return;
  for (auto& rp : st.drains)
    rp.deliver(caf::ok_atom_v);
  st.drains.clear();
}

void update_gauges(self_ptr self) {
  auto& st = self->state;
  if (st.model.has_events())
    st.watermark->set(st.model.watermark() / ms_per_second);
  st.trending_entries->set(static_cast<int64_t>(st.model.trending_entries()));
  st.pairs->set(static_cast<int64_t>(st.model.pair_count()));
}

void checkpoint_now(self_ptr self) {
  auto& st = self->state;
  if (st.checkpointing || (!st.model.dirty() && st.applied_upto <= st.committed_upto))
    return;
  auto taken = std::make_shared<aggregate_dirty>();
  checkpoint cp;
  cp.space = state_space::aggregates;
  cp.consumer = aggregator_consumer;
  cp.done_upto = st.applied_upto;
  cp.entries = st.model.collect(*taken);
  st.checkpointing = true;
  auto upto = cp.done_upto;
  self->request(st.deps.log, caf::infinite, commit_atom_v, std::move(cp))
    .then(
      [self, upto](caf::ok_atom) {
        auto& st = self->state;
        st.checkpointing = false;
        st.committed_upto = std::max(st.committed_upto, upto);
        st.checkpoints->inc();
        try_finish_drains(self);
      },
      [self, taken](caf::error& err) {
        // The keys are written again by the next checkpoint (with their current values and the
        // offset of that moment); until then LMDB keeps the previous state and offset together.
        auto& st = self->state;
        st.checkpointing = false;
        st.failures->inc();
        st.model.requeue(std::move(*taken));
        log_json("error", "aggregator checkpoint failed (retried at the next interval)",
                 {{"reason", to_string(err)}});
        try_finish_drains(self);
      });
}

void restore(self_ptr self) {
  auto& st = self->state;
  persistence::read_txn txn{*st.deps.env};
  if (auto v = txn.get(persistence::db::offsets, aggregator_consumer))
    st.committed_upto = st.applied_upto = persistence::decode_be64(*v);
  uint64_t bad = 0;
  uint64_t entries = 0;
  txn.scan(persistence::db::aggregates, {}, [&](std::string_view key, std::string_view value) {
    ++entries;
    if (!st.model.load(key, value))
      ++bad;
    return true;
  });
  st.model.finish_load();
  st.restore_errors->inc(bad);
  if (!st.model.cowatch_ok())
    st.cowatch_problem = "the stored co-watch state could not be read";
  if (bad > 0)
    log_json("error", "aggregator: unreadable stored entries ignored",
             {{"entries", std::to_string(bad)}});
  if (entries > 0)
    log_json("info", "aggregator restored",
             {{"entries", std::to_string(entries)}, {"offset", std::to_string(st.applied_upto)}});
}

} // namespace

std::string render_aggregate(const aggregate_model& model, const catalog& cat,
                             const aggregate_query& q, const std::string& cowatch_problem) {
  std::string out;
  switch (q.what) {
    case aggregate_query::kind::trending: {
      fmt::format_to(std::back_inserter(out), "{{\"window_ms\":{},", q.window_ms);
      if (model.has_events())
        fmt::format_to(std::back_inserter(out), "\"as_of\":{},\"watermark\":{},",
                       model.max_event_ts(), model.watermark());
      else
        out += "\"as_of\":null,\"watermark\":null,";
      append_titles(out, cat, model.trending(q.window_ms, q.k), "profiles");
      out += '}';
      break;
    }
    case aggregate_query::kind::genres: {
      out = "{\"date\":\"" + render_date(q.day) + "\",\"items\":[";
      auto items = model.popular_genres(q.day, q.k);
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0)
          out += ',';
        out += "{\"genre\":";
        append_json_string(out, items[i].id);
        fmt::format_to(std::back_inserter(out), ",\"profiles\":{}}}", items[i].score);
      }
      out += "]}";
      break;
    }
    case aggregate_query::kind::also_watched: {
      out = "{\"title_id\":";
      append_json_string(out, q.title_id);
      std::vector<ranked> items;
      std::string reason = cowatch_problem;
      if (reason.empty()) {
        items = model.also_watched(q.title_id, q.k);
        if (items.empty())
          reason = "no co-watch data for this title yet";
      }
      if (reason.empty()) {
        out += ",\"source\":\"cowatch\",";
      } else {
        // Fallback: what is trending over the whole window, without the title itself.
        items = model.trending(model.options().window_ms, q.k, q.title_id);
        out += ",\"source\":\"trending\",\"reason\":";
        append_json_string(out, reason);
        out += ',';
      }
      append_titles(out, cat, items, "score");
      out += '}';
      break;
    }
  }
  return out;
}

aggregator_actor::behavior_type aggregator(self_ptr self, aggregator_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.model = aggregate_model{st.deps.options};
  auto& m = *st.deps.metrics;
  st.applied = &m.get_counter("sluice_aggregate_events_total",
                              "Playback events with a catalog title applied to the aggregates");
  st.late = &m.get_counter("sluice_aggregate_late_events_total",
                           "Events whose trending bucket was closed by the watermark (excluded "
                           "from trending; still delivered to sinks, counted in genres/co-watch)");
  st.unknown_title = &m.get_counter("sluice_aggregate_unknown_title_events_total",
                                    "Playback events whose title_id is not in the catalog (not "
                                    "aggregated)");
  st.checkpoints = &m.get_counter("sluice_aggregate_checkpoints_total",
                                  "Aggregator state commits (state and offset together)");
  st.failures = &m.get_counter("sluice_aggregate_checkpoint_failures_total",
                               "Aggregator checkpoints that failed (retried at the next interval)");
  st.restore_errors = &m.get_counter("sluice_aggregate_restore_errors_total",
                                     "Stored aggregate entries that could not be read at start");
  st.watermark = &m.get_gauge("sluice_aggregate_watermark_seconds",
                              "Trending watermark (Unix time): newest event time minus allowed lateness");
  st.trending_entries = &m.get_gauge("sluice_aggregate_trending_entries",
                                     "(title, profile) pairs in the trending window");
  st.pairs = &m.get_gauge("sluice_aggregate_cowatch_pairs", "Co-completion counts kept");
  restore(self);
  update_gauges(self);
  self->delayed_send(self, st.deps.checkpoint_interval + st.deps.checkpoint_phase, tick_atom_v);
  return {
    [self](dispatch_atom, const committed_batch& batch) {
      auto& st = self->state;
      auto cat = st.deps.catalog->get();
      uint64_t applied = 0;
      uint64_t late = 0;
      uint64_t unknown = 0;
      for (const auto& e : batch.events) {
        if (e.offset <= st.applied_upto)
          continue; // replayed after a restart: already in the restored state
        if (!e.origin.empty())
          continue; // forwarded here for device/profile state: the node that accepted it
                    // aggregates it (counting it here too would count it twice)
        switch (st.model.apply(e, *cat)) {
          case apply_outcome::counted:
            ++applied;
            break;
          case apply_outcome::late:
            ++applied;
            ++late;
            break;
          case apply_outcome::unknown_title:
            ++unknown;
            break;
          case apply_outcome::ignored:
            break;
        }
      }
      st.applied->inc(applied);
      st.late->inc(late);
      st.unknown_title->inc(unknown);
      st.applied_upto = std::max(st.applied_upto, batch.upto);
      self->send(st.deps.log, processed_atom_v, batch.upto);
    },
    [self](query_atom, aggregate_query& q, query_reply& reply) {
      auto& st = self->state;
      auto cat = st.deps.catalog->get();
      reply.fn(query_reply::status::found, render_aggregate(st.model, *cat, q, st.cowatch_problem));
    },
    [self](tick_atom) {
      checkpoint_now(self);
      update_gauges(self);
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
