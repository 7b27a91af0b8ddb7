#include "gateway/actor_bridge.hpp"
#include "gateway/routes_api.hpp"

#include "actors/metrics.hpp"
#include "gateway/aggregates_api.hpp"
#include "gateway/profiles_api.hpp"
#include "actors/sinks/dead_letter/dead_letter_store.hpp"
#include "messages/codec.hpp"

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <caf/all.hpp>

#include <mutex>
#include <sstream>

namespace sluice::gateway {

void actor_ingest_port::submit(event_batch events, commit_callback done) {
  ingest_request req;
  req.events = std::move(events);
  req.reply = [done = std::move(done)](ingest_outcome out) {
    commit_result res;
    res.error = std::move(out.error);
    res.retry_after_s = out.retry_after_s;
    res.first = out.first;
    res.last = out.last;
    done(std::move(res));
  };
  caf::anon_send(log_, append_atom_v, std::move(req));
}

void actor_ingest_port::submit_with_quarantine(event_batch events,
                                               std::vector<quarantined> invalid,
                                               commit_callback done) {
  if (invalid.empty())
    return submit(std::move(events), std::move(done));
  if (!dead_letters_) {
    done(commit_result{"this node has no dead-letter store for schema violations", 0, 0, 0});
    return;
  }
  // Joins the two answers: the first error wins; `done` runs once, after the last one.
  struct join {
    std::mutex mtx;
    size_t remaining = 0;
    commit_result result;
    commit_callback done;
    void arrive(commit_result part) {
      commit_callback fire;
      {
        std::lock_guard<std::mutex> guard{mtx};
        if (!part.error.empty() && result.error.empty()) {
          result.error = std::move(part.error);
          result.retry_after_s = part.retry_after_s;
        }
        if (part.last != 0) {
          result.first = part.first;
          result.last = part.last;
        }
        if (--remaining > 0)
          return;
        fire = std::move(done);
      }
      fire(std::move(result));
    }
  };
  auto j = std::make_shared<join>();
  j->remaining = events.empty() ? 1 : 2;
  j->done = std::move(done);
  std::vector<dead_letter> letters;
  letters.reserve(invalid.size());
  for (auto& q : invalid)
    letters.push_back(dead_letter{std::move(q.ev), std::move(q.reason), "schema"});
  // A short-lived actor asks the dead-letter store (answered after its fsync) and relays the
  // answer; io threads never block on it.
  auto* sys = caf::actor_cast<caf::strong_actor_ptr>(dead_letters_)->home_system;
  auto relay = [dl = dead_letters_, letters = std::move(letters),
                j](caf::event_based_actor* self) mutable {
    self->request(dl, caf::infinite, dead_atom_v, std::move(letters))
      .then([j](caf::ok_atom) { j->arrive({}); },
            [j](caf::error& err) {
              j->arrive(commit_result{"the dead-letter store did not record the events its "
                                      "schema refused: "
                                        + caf::to_string(err),
                                      1, 0, 0});
            });
  };
  sys->spawn(std::move(relay));
  if (!events.empty())
    submit(std::move(events), [j](commit_result res) { j->arrive(std::move(res)); });
}

bool actor_ingest_port::admitting(std::string& reason, uint32_t& retry_after_s) const {
  if (!gate_ || gate_->open.load(std::memory_order_relaxed))
    return true;
  reason = gate_->reason.load();
  retry_after_s = gate_->retry_after_s.load();
  return false;
}

namespace {


// Answers a state query from the shard owning `key`.
handler entity_query(std::shared_ptr<const node_handles> nodes, state_space space,
                     std::string param, std::string what, std::string not_found) {
  return [nodes, space, param, what, not_found](const http_request& req, responder respond) {
    auto i = req.params.find(param);
    if (i == req.params.end() || i->second.empty()) {
      respond(json_response(400, "{\"error\":\"missing " + param + " in the path\"}"));
      return;
    }
    query_reply reply;
    reply.fn = [respond, not_found](query_reply::status st, std::string json) {
      switch (st) {
        case query_reply::status::found:
          respond(json_response(200, std::move(json)));
          break;
        case query_reply::status::not_found:
          respond(json_response(404, "{\"error\":\"" + not_found + "\"}"));
          break;
        case query_reply::status::failed: {
          std::string body = "{\"error\":";
          append_json_string(body, "state query failed: " + json);
          respond(json_response(500, body + "}"));
          break;
        }
      }
    };
    nodes->ask(space, i->second, what, std::move(reply));
  };
}

// Reads a replay body: `{"ids":[1,2]}`, `{"reason":"text"}` or `{"all":true}`. Returns a JSON
// error body naming the field, empty when valid.
std::string parse_replay_body(const std::string& body, dead_letter_query& q) {
  namespace pt = boost::property_tree;
  auto bad = [](const std::string& msg, const char* field) {
    std::string out = "{\"error\":";
    append_json_string(out, msg);
    return out + ",\"parameter\":\"" + field + "\"}";
  };
  pt::ptree tree;
  try {
    std::istringstream in{body};
    pt::read_json(in, tree);
  } catch (const pt::json_parser_error& e) {
    return bad("the body must be a JSON object: " + e.message() + " at line "
                 + std::to_string(e.line()),
               "body");
  }
  for (auto& [key, value] : tree) {
    if (key == "ids") {
      for (auto& [k, item] : value) {
        try {
          q.ids.push_back(std::stoull(item.data()));
        } catch (const std::exception&) {
          return bad("'ids' must be an array of dead-letter ids", "ids");
        }
      }
      if (q.ids.empty())
        return bad("'ids' must be a non-empty array of dead-letter ids", "ids");
    } else if (key == "reason") {
      q.reason = value.data();
    } else if (key == "all") {
      if (value.data() != "true")
        return bad("'all' must be true", "all");
      q.all = true;
    } else {
      return bad("unknown field '" + key + "'; use ids, reason or all", key.c_str());
    }
  }
  return validate_dead_letter_selection(q);
}

// Lists dead letters: `?after=&limit=&reason=`.
handler dead_letter_list(dead_letter_admin_actor dead_letters) {
  return [dead_letters](const http_request& req, responder respond) {
    dead_letter_query q;
    if (auto err = parse_dead_letter_list_params(req.query, q); !err.empty()) {
      respond(json_response(400, std::move(err)));
      return;
    }
    query_reply reply;
    reply.fn = [respond](query_reply::status st, std::string json) {
      if (st == query_reply::status::found) {
        respond(json_response(200, std::move(json)));
        return;
      }
      std::string body = "{\"error\":";
      append_json_string(body, "dead-letter listing failed: " + json);
      respond(json_response(500, body + "}"));
    };
    caf::anon_send(dead_letters, query_atom_v, std::move(q), std::move(reply));
  };
}

// Replays dead letters into the ingest log; answers after the commit.
handler dead_letter_replay(dead_letter_admin_actor dead_letters) {
  return [dead_letters](const http_request& req, responder respond) {
    dead_letter_query q;
    if (auto err = parse_replay_body(req.body, q); !err.empty()) {
      respond(json_response(400, std::move(err)));
      return;
    }
    query_reply reply;
    reply.fn = [respond](query_reply::status st, std::string json) {
      switch (st) {
        case query_reply::status::found:
          respond(json_response(200, std::move(json)));
          break;
        case query_reply::status::not_found:
          respond(json_response(404, std::move(json)));
          break;
        case query_reply::status::failed: {
          std::string body = "{\"error\":";
          append_json_string(body, "replay failed: " + json);
          auto res = json_response(503, body + "}");
          res.headers.emplace_back("Retry-After", "1");
          respond(std::move(res));
          break;
        }
      }
    };
    caf::anon_send(dead_letters, replay_atom_v, std::move(q), std::move(reply));
  };
}

} // namespace

std::vector<endpoint> node_endpoints(const node_handles& nodes, metrics_registry& metrics,
                                     const node_status& status) {
  std::vector<endpoint> out;
  out.push_back({"GET", "/metrics", scope::read, "Prometheus metrics (text format 0.0.4)",
                 [&metrics](const http_request&, responder respond) {
                   http_response res;
                   res.content_type = "text/plain; version=0.0.4; charset=utf-8";
                   res.body = metrics.render();
                   respond(std::move(res));
                 }});
  out.push_back({"GET", "/healthz", scope::open, "liveness: 200 while the process serves HTTP",
                 [](const http_request&, responder respond) {
                   respond(json_response(200, "{\"status\":\"ok\"}"));
                 }});
  out.push_back({"GET", "/readyz", scope::open, "readiness: 200 once replay finished; 503 while starting, "
                                   "stopping, or while the log pushes back (naming why and the "
                                   "consumers lagging past storage.max-log-bytes)",
                 [&status, gate = nodes.gate](const http_request&, responder respond) {
                   if (!status.ready.load())
                     return respond(json_response(503, "{\"status\":\"not ready\"}"));
                   auto lagging = gate ? gate->lagging() : std::vector<std::string>{};
                   bool open = !gate || gate->open.load();
                   if (open && lagging.empty())
                     return respond(json_response(200, "{\"status\":\"ready\"}"));
                   std::string body = "{\"status\":\"overloaded\",\"reason\":";
                   append_json_string(body, open ? "" : gate->reason.load());
                   body += ",\"lagging_consumers\":[";
                   for (size_t i = 0; i < lagging.size(); ++i) {
                     if (i > 0)
                       body += ',';
                     append_json_string(body, lagging[i]);
                   }
                   body += "]}";
                   auto res = json_response(503, std::move(body));
                   res.headers.emplace_back("Retry-After",
                                            std::to_string(gate->retry_after_s.load()));
                   respond(std::move(res));
                 }});
  for (auto& e : profile_endpoints(nodes, metrics)) // profiles, titles, catalog reload
    out.push_back(std::move(e));
  out.push_back({"GET", "/v1/devices/{id}", scope::read, "what a device sent: counts, order, duplicates",
                 entity_query(std::make_shared<const node_handles>(nodes), state_space::devices, "id",
                              "state", "unknown device")});
  out.push_back({"GET", "/v1/admin/dead-letters", scope::admin,
                 "dead letters, paged: ?after=<next>&limit=<n>&reason=<substring>",
                 dead_letter_list(nodes.dead_letters)});
  out.push_back({"POST", "/v1/admin/dead-letters/replay", scope::admin,
                 "sends dead letters back through the pipeline: {\"ids\":[…]}, "
                 "{\"reason\":\"…\"} or {\"all\":true}",
                 dead_letter_replay(nodes.dead_letters)});
  out.push_back({"GET", "/v1/cluster", scope::read,
                 "cluster members, their state and ownership share, forwarding backlog per peer "
                 "(docs/cluster.md)",
                 [status = nodes.cluster_status](const http_request&, responder respond) {
                   respond(json_response(200, status()));
                 }});
  out.push_back({"DELETE", "/v1/admin/cluster/members/{name}", scope::admin,
                 "forgets a cluster member that is down on every node: the logs stop keeping "
                 "events for it (docs/cluster.md)",
                 [cluster = nodes.cluster](const http_request& req, responder respond) {
                   if (!cluster) {
                     respond(json_response(404, "{\"error\":\"this node is not in a cluster\"}"));
                     return;
                   }
                   auto name = req.params.at("name");
                   query_reply reply;
                   reply.fn = [respond, name](query_reply::status st, std::string json) {
                     std::string body = "{\"error\":";
                     switch (st) {
                       case query_reply::status::found:
                         respond(json_response(200, std::move(json)));
                         return;
                       case query_reply::status::not_found:
                         append_json_string(body, "no cluster member named " + name);
                         respond(json_response(404, body + ",\"field\":\"name\"}"));
                         return;
                       case query_reply::status::failed:
                         append_json_string(body, json);
                         respond(json_response(409, body + ",\"field\":\"name\"}"));
                         return;
                     }
                   };
                   caf::anon_send(cluster, forget_atom_v, name, std::move(reply));
                 }});
  for (auto& e : aggregate_endpoints(nodes))
    out.push_back(std::move(e));
  for (auto& e : routes_endpoints(nodes)) // hot reload of routes
    out.push_back(std::move(e));
  return out;
}

} // namespace sluice::gateway
