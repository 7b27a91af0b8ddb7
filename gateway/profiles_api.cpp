#include "gateway/profiles_api.hpp"

#include "actors/catalog.hpp"
#include "actors/metrics.hpp"
#include "actors/profile_entity.hpp"
#include "actors/profile_model.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <memory>

namespace sluice::gateway {

namespace {

/// Longest watch-time range, in days (both ends inclusive).
constexpr int32_t max_watch_time_days = 366;


std::string error_body(const std::string& msg, const std::string& parameter = {}) {
  std::string body = "{\"error\":";
  append_json_string(body, msg);
  if (!parameter.empty()) {
    body += ",\"parameter\":";
    append_json_string(body, parameter);
  }
  return body + "}";
}

/// Answers once: the shard's reply, or 503 if the query was dropped unanswered (the shard is
/// gone), so a request never hangs.
struct once_responder {
  responder respond;
  bool done = false;
  explicit once_responder(responder r) : respond(std::move(r)) {
  }
  ~once_responder() {
    if (!done) {
      auto res = json_response(503, error_body("profile state is not available; retry"));
      res.headers.emplace_back("Retry-After", "1");
      respond(std::move(res));
    }
  }
};

// Asks the shard owning profile `id` the query `what`.
void ask_profile(const node_handles& nodes, const std::string& id, std::string what,
                 responder respond) {
  auto once = std::make_shared<once_responder>(std::move(respond));
  query_reply reply;
  reply.fn = [once](query_reply::status st, std::string json) {
    once->done = true;
    switch (st) {
      case query_reply::status::found:
        once->respond(json_response(200, std::move(json)));
        break;
      case query_reply::status::not_found:
        once->respond(json_response(404, error_body("unknown profile")));
        break;
      case query_reply::status::failed:
        once->respond(json_response(500, error_body("state query failed: " + json)));
        break;
    }
  };
  nodes.ask(state_space::profiles, id, std::move(what), std::move(reply));
}

bool missing_id(const http_request& req, const responder& respond) {
  auto i = req.params.find("id");
  if (i != req.params.end() && !i->second.empty())
    return false;
  respond(json_response(400, error_body("missing id in the path", "id")));
  return true;
}

std::string title_json(const title_info& t) {
  std::string out = "{\"id\":";
  append_json_string(out, t.id);
  out += ",\"name\":";
  append_json_string(out, t.name);
  out += ",\"genres\":[";
  for (size_t i = 0; i < t.genres.size(); ++i) {
    if (i > 0)
      out += ',';
    append_json_string(out, t.genres[i]);
  }
  return out + "],\"duration_ms\":" + std::to_string(t.duration_ms) + "}";
}

} // namespace

std::string parse_watch_time_params(const std::map<std::string, std::string>& query,
                                    std::string& what) {
  std::string from;
  std::string to;
  std::optional<int32_t> from_day;
  std::optional<int32_t> to_day;
  for (auto& [key, value] : query) {
    if (key != "from" && key != "to")
      return error_body("unknown parameter '" + key + "'; use from and to (YYYY-MM-DD)", key);
    auto day = parse_utc_day(value);
    if (!day)
      return error_body(key + " must be a date YYYY-MM-DD, got \"" + value + "\"", key);
    (key == "from" ? from : to) = value;
    (key == "from" ? from_day : to_day) = day;
  }
  if (from_day && to_day) {
    if (*from_day > *to_day)
      return error_body("from (" + from + ") is after to (" + to + ")", "from");
    if (*to_day - *from_day + 1 > max_watch_time_days)
      return error_body("the range from " + from + " to " + to + " is longer than "
                          + std::to_string(max_watch_time_days) + " days",
                        "to");
  }
  what = watch_time_query(from, to);
  return {};
}

std::vector<endpoint> profile_endpoints(const node_handles& nodes, metrics_registry& metrics) {
  std::vector<endpoint> out;
  metrics.get_gauge("sluice_catalog_titles", "titles in the current title catalog")
    .set(static_cast<int64_t>(nodes.catalog->get()->size()));
  auto shards = std::make_shared<node_handles>(nodes);
  out.push_back({"GET", "/v1/profiles/{id}/continue-watching", scope::read,
                 "titles in progress for a profile, most recent first, with resume position and "
                 "name",
                 [shards](const http_request& req, responder respond) {
                   if (missing_id(req, respond))
                     return;
                   ask_profile(*shards, req.params.at("id"), "continue-watching",
                               std::move(respond));
                 }});
  out.push_back({"GET", "/v1/profiles/{id}/watch-time", scope::read,
                 "watch time per title per UTC day: ?from=YYYY-MM-DD&to=YYYY-MM-DD (inclusive)",
                 [shards](const http_request& req, responder respond) {
                   if (missing_id(req, respond))
                     return;
                   std::string what;
                   if (auto err = parse_watch_time_params(req.query, what); !err.empty()) {
                     respond(json_response(400, std::move(err)));
                     return;
                   }
                   ask_profile(*shards, req.params.at("id"), std::move(what), std::move(respond));
                 }});
  out.push_back({"GET", "/v1/titles/{id}", scope::read, "a title of the catalog: name, genres, duration_ms",
                 [cat = nodes.catalog](const http_request& req, responder respond) {
                   if (missing_id(req, respond))
                     return;
                   auto current = cat->get();
                   auto* t = current->find(req.params.at("id"));
                   if (t == nullptr)
                     return respond(json_response(404, error_body("unknown title")));
                   respond(json_response(200, title_json(*t)));
                 }});
  out.push_back({"POST", "/v1/admin/catalog/reload", scope::admin,
                 "reloads catalog.titles-file; a bad file keeps the current catalog (400 naming "
                 "the line)",
                 [cat = nodes.catalog, &metrics](const http_request&, responder respond) {
                   auto err = reload_catalog(*cat, metrics);
                   auto titles = std::to_string(cat->get()->size());
                   if (!err.empty()) {
                     std::string body = "{\"error\":";
                     append_json_string(body, err);
                     body += ",\"parameter\":\"catalog.titles-file\",\"titles\":" + titles + "}";
                     return respond(json_response(400, std::move(body)));
                   }
                   std::string body = "{\"reloaded\":true,\"path\":";
                   append_json_string(body, cat->path());
                   respond(json_response(200, body + ",\"titles\":" + titles + "}"));
                 }});
  return out;
}

} // namespace sluice::gateway
