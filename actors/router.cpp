#include "actors/router.hpp"

#include "actors/drain.hpp"
#include "actors/metrics.hpp"

#include <caf/all.hpp>


namespace sluice {

consumer_actor::behavior_type router(consumer_actor::stateful_pointer<router_state> self,
                                     route_table table, std::vector<std::string> sink_names,
                                     std::vector<sink_actor> sinks, metrics_registry* metrics) {
  auto& st = self->state;
  st.table = std::move(table);
  st.sink_names = std::move(sink_names);
  st.sinks = std::move(sinks);
  for (auto& r : st.table.routes)
    st.routed.push_back(&metrics->get_counter("sluice_events_routed_total",
                                              "Events that matched a route", {{"route", r.name}}));
  st.unmatched = &metrics->get_counter("sluice_events_routed_total", "Events that matched a route",
                                       {{"route", unmatched_route}});
  st.unrouted = &metrics->get_counter(
    "sluice_events_unrouted_total",
    "Events that matched no route while no _unmatched route is configured (not delivered)");
  st.per_sink.resize(st.sinks.size());
  st.marks.resize(st.sinks.size());
  return {
    [self](dispatch_atom, committed_batch& batch) {
      auto& st = self->state;
      for (auto& e : batch.events) {
        std::fill(st.marks.begin(), st.marks.end(), 0);
        bool any = st.table.match(e, [&](size_t r) {
          st.routed[r]->inc();
          for (auto s : st.table.routes[r].sinks)
            st.marks[s] = 1;
        });
        if (!any) {
          if (st.table.unmatched_sinks.empty()) {
            st.unrouted->inc();
            continue;
          }
          st.unmatched->inc();
          for (auto s : st.table.unmatched_sinks)
            st.marks[s] = 1;
        }
        // Copy to all but the last target, move into the last.
        size_t last = st.marks.size();
        for (size_t s = 0; s < st.marks.size(); ++s)
          if (st.marks[s])
            last = s;
        for (size_t s = 0; s < last; ++s)
          if (st.marks[s])
            st.per_sink[s].push_back(e);
        if (last < st.marks.size())
          st.per_sink[last].push_back(std::move(e));
      }
      for (size_t s = 0; s < st.sinks.size(); ++s) {
        committed_batch out{std::move(st.per_sink[s]), batch.upto};
        st.per_sink[s] = event_batch{};
        self->send(st.sinks[s], write_atom_v, std::move(out));
      }
    },
    [self](drain_atom) -> caf::result<caf::ok_atom> {
      auto rp = self->make_response_promise<caf::ok_atom>();
      drain_all(self, self->state.sinks, [rp]() mutable { rp.deliver(caf::ok_atom_v); });
      return rp;
    },
  };
}

} // namespace sluice
