#include "actors/sinks/dead_letter/dead_letter_sink.hpp"
#include "actors/log.hpp"

#include "actors/metrics.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <chrono>

#include <fmt/format.h>

namespace sluice {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

void answer(dead_letter_state::ticket& t) {
  if (!t.error.empty()) {
    t.reply.fn(query_reply::status::failed,
               fmt::format("{} ({} dead letters were replayed before)", t.error, t.replayed));
    return;
  }
  t.reply.fn(query_reply::status::found,
             fmt::format("{{\"replayed\":{},\"skipped\":{}}}", t.replayed, t.skipped));
}

} // namespace

dead_letter_admin_actor::behavior_type
dead_letter_sink(dead_letter_admin_actor::stateful_pointer<dead_letter_state> self,
                 std::string path, std::string node, metrics_registry* metrics,
                 std::shared_ptr<const pii_detector> pii) {
  auto& st = self->state;
  if (pii && pii->any_kind())
    st.mask = std::make_unique<route_transformer>(std::move(pii), metrics, "dead-letters");
  st.node = std::move(node);
  st.metrics = metrics;
  st.failures = &metrics->get_counter("sluice_dead_letter_write_failures_total",
                                      "Dead-letter batches that could not be written");
  st.replayed = &metrics->get_counter("sluice_dead_letters_replayed_total",
                                      "Dead letters sent back to the ingest log by a replay");
  st.store = std::make_unique<dead_letter_store>(std::move(path));
  st.open_error = st.store->open();
  if (!st.open_error.empty()) {
    st.failures->inc();
    log_json("error", "dead letters unavailable", {{"reason", st.open_error}});
  }
  return {
    [self](dead_atom, std::vector<dead_letter>& letters) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.mask)
        for (auto& dl : letters)
          st.mask->apply(dl.origin, st.mask_actions, dl.ev);
      for (auto& dl : letters)
        st.metrics
          ->get_counter("sluice_dead_letters_total",
                        "Events sent to the dead-letter sink, by the component that gave up",
                        {{"origin", dl.origin}})
          .inc();
      auto err = st.open_error.empty() ? st.store->append(letters, now_ms(), st.node)
                                       : st.open_error;
      if (!err.empty()) {
        st.failures->inc();
        log_json("error", "dead letters not recorded", {{"reason", err}});
        return caf::make_error(caf::sec::runtime_error, "dead letters not recorded: " + err);
      }
      return caf::ok_atom_v;
    },
    [](drain_atom) { return caf::ok_atom_v; },
    [self](connect_atom, ingest_log_actor log) { self->state.log = std::move(log); },
    [self](query_atom, dead_letter_query& q, query_reply& reply) {
      auto& st = self->state;
      std::string body;
      std::string err = st.open_error;
      if (err.empty() && st.store->list(q, body, err))
        reply.fn(query_reply::status::found, std::move(body));
      else
        reply.fn(query_reply::status::failed, std::move(err));
    },
    [self](replay_atom, dead_letter_query& q, query_reply& reply) {
      auto& st = self->state;
      if (!st.open_error.empty()) {
        reply.fn(query_reply::status::failed, st.open_error);
        return;
      }
      if (!st.log) {
        reply.fn(query_reply::status::failed, "the dead-letter sink is not connected to the log");
        return;
      }
      auto sel = st.store->select(q);
      if (!sel.unknown.empty()) {
        std::string body = "{\"error\":\"unknown dead-letter ids\",\"unknown\":[";
        for (size_t i = 0; i < sel.unknown.size(); ++i)
          body += (i > 0 ? "," : "") + std::to_string(sel.unknown[i]);
        reply.fn(query_reply::status::not_found, body + "]}");
        return;
      }
      dead_letter_state::ticket t;
      t.skipped = sel.skipped;
      t.reply = std::move(reply);
      for (size_t i = 0; i < sel.ids.size(); i += dead_letter_replay_chunk_events) {
        auto end = std::min(sel.ids.size(), i + dead_letter_replay_chunk_events);
        t.chunks.emplace_back(sel.ids.begin() + static_cast<ptrdiff_t>(i),
                              sel.ids.begin() + static_cast<ptrdiff_t>(end));
      }
      // Load everything before sending anything: a corrupt record fails the whole replay.
      std::vector<event_batch> batches(t.chunks.size());
      for (size_t c = 0; c < t.chunks.size(); ++c) {
        if (auto err = st.store->load(t.chunks[c], batches[c]); !err.empty()) {
          t.reply.fn(query_reply::status::failed, err);
          return;
        }
      }
      if (t.chunks.empty()) {
        answer(t);
        return;
      }
      auto id = st.next_ticket++;
      auto me = caf::actor_cast<dead_letter_admin_actor>(self);
      for (size_t c = 0; c < t.chunks.size(); ++c) {
        st.store->begin_replay(t.chunks[c]);
        ingest_request req;
        req.events = std::move(batches[c]);
        req.reply = [me, id, c](ingest_outcome out) {
          caf::anon_send(me, replayed_atom_v, id, static_cast<uint64_t>(c), std::move(out.error));
        };
        self->send(st.log, append_atom_v, std::move(req));
      }
      t.pending = t.chunks.size();
      st.tickets.emplace(id, std::move(t));
    },
    [self](replayed_atom, uint64_t id, uint64_t chunk, std::string& error) {
      auto& st = self->state;
      auto i = st.tickets.find(id);
      if (i == st.tickets.end() || chunk >= i->second.chunks.size())
        return;
      auto& t = i->second;
      auto& ids = t.chunks[chunk];
      if (error.empty()) {
        t.replayed += ids.size();
        st.replayed->inc(ids.size());
        if (auto err = st.store->finish_replay(ids, true); !err.empty()) {
          st.failures->inc();
          log_json("error", "dead-letter replay bookkeeping failed", {{"reason", err}});
        }
      } else {
        st.store->finish_replay(ids, false);
        if (t.error.empty())
          t.error = "the ingest log refused the replay: " + error;
      }
      if (--t.pending == 0) {
        answer(t);
        st.tickets.erase(i);
      }
    },
  };
}

} // namespace sluice
