#include "gateway/auth_api.hpp"

#include "gateway/access.hpp"
#include "messages/codec.hpp"

#include <simdjson.h>

#include <charconv>

namespace sluice::gateway {

namespace {

/// Records `GET /v1/admin/audit` answers by default and at most.
constexpr size_t default_audit_limit = 100;

std::string header(const http_request& req, const char* name) {
  auto i = req.headers.find(name);
  return i == req.headers.end() ? std::string{} : i->second;
}

http_response error_response(unsigned status, std::string_view message, std::string_view field,
                             std::string_view field_key = "field") {
  std::string body = "{\"error\":";
  append_json_string(body, message);
  body += ",\"";
  body += field_key;
  body += "\":";
  append_json_string(body, field);
  return json_response(status, body + "}");
}

std::string session_body(const access_control::session_view& s) {
  std::string body = "{\"principal\":";
  append_json_string(body, s.principal);
  body += ",\"scopes\":" + scopes_json(s.scopes) + ",\"csrf\":";
  append_json_string(body, s.csrf);
  return body + "}";
}

audit_record login_record(const http_request& req, std::string principal, unsigned status,
                          std::string action, std::string summary) {
  audit_record rec;
  rec.principal = std::move(principal);
  rec.peer = req.peer;
  rec.action = std::move(action);
  rec.method = req.method;
  rec.path = req.path;
  rec.status = status;
  rec.summary = std::move(summary);
  return rec;
}

struct row {
  std::string method;
  std::string pattern;
  scope required;
  std::string description;
  bool websocket = false;
};

std::string listing_json(const std::vector<row>& rows) {
  std::string out = "{\"endpoints\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& r = rows[i];
    if (i > 0)
      out += ',';
    out += "{\"method\":";
    append_json_string(out, r.method);
    out += ",\"pattern\":";
    append_json_string(out, r.pattern);
    out += ",\"scope\":\"";
    out += to_string(r.required);
    out += "\",\"websocket\":";
    out += r.websocket ? "true" : "false";
    out += ",\"description\":";
    append_json_string(out, r.description);
    out += '}';
  }
  return out + "]}";
}

} // namespace

std::vector<endpoint> access_endpoints(std::shared_ptr<access_control> access,
                                       const std::vector<endpoint>& table) {
  std::vector<endpoint> out;
  out.push_back(
    {"POST", "/v1/auth/login", scope::open,
     "opens a console session: body {\"token\":\"...\"}; answers {\"principal\",\"scopes\","
     "\"csrf\"} and sets the HttpOnly session cookie; 401 on a bad token",
     [access](const http_request& req, responder respond) {
       simdjson::dom::parser parser;
       simdjson::dom::element doc;
       std::string_view token;
       if (parser.parse(req.body).get(doc) != simdjson::SUCCESS
           || doc["token"].get(token) != simdjson::SUCCESS) {
         access->record_failure("login", login_record(req, "anonymous", 400, "auth.login",
                                                      "the body is not {\"token\":\"...\"}"));
         return respond(error_response(400, "the body must be JSON {\"token\":\"...\"}", "token"));
       }
       access_control::session_view s;
       std::string id;
       if (auto refusal = access->login(token, s, id)) {
         access->record_failure("login", login_record(req, "anonymous", refusal->status,
                                                      "auth.login", "invalid token"));
         if (refusal->status == 401)
           refusal->headers.emplace_back("WWW-Authenticate",
                                         "Bearer realm=\"sluice\", error=\"invalid_token\"");
         return respond(std::move(*refusal));
       }
       access->audit().append(login_record(req, s.principal, 200, "auth.login", "session opened"));
       auto res = json_response(200, session_body(s));
       res.headers.emplace_back("Set-Cookie", access->session_cookie(id));
       res.headers.emplace_back("Cache-Control", "no-store");
       respond(std::move(res));
     }});
  out.push_back({"GET", "/v1/auth/session", scope::open,
                 "the session of the cookie: the same body as the login, or 401",
                 [access](const http_request& req, responder respond) {
                   auto s = access->session_of(header(req, "cookie"));
                   if (!s) {
                     auto res = error_response(401, "no session: log in with POST /v1/auth/login",
                                               "session", "missing");
                     res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"sluice\"");
                     return respond(std::move(res));
                   }
                   auto res = json_response(200, session_body(*s));
                   res.headers.emplace_back("Cache-Control", "no-store");
                   respond(std::move(res));
                 }});
  out.push_back({"POST", "/v1/auth/logout", scope::open,
                 "ends the session of the cookie and clears the cookie",
                 [access](const http_request& req, responder respond) {
                   auto who = access->logout(header(req, "cookie"));
                   if (!who.empty())
                     access->audit().append(
                       login_record(req, who, 200, "auth.logout", "session ended"));
                   auto res = json_response(200, std::string{"{\"logged_out\":"}
                                                   + (who.empty() ? "false" : "true") + "}");
                   res.headers.emplace_back("Set-Cookie", access->clear_cookie());
                   respond(std::move(res));
                 }});
  out.push_back({"GET", "/v1/admin/audit", scope::admin,
                 "the audit log, newest first: ?limit=N (default 100, at most the 1000 kept in "
                 "memory; the whole history is <data dir>/audit.log)",
                 [access](const http_request& req, responder respond) {
                   size_t limit = default_audit_limit;
                   if (auto i = req.query.find("limit"); i != req.query.end()) {
                     auto& v = i->second;
                     auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
                     if (ec != std::errc{} || p != v.data() + v.size() || limit == 0)
                       return respond(error_response(
                         400, "limit must be a positive integer", "limit"));
                   }
                   respond(json_response(200, access->audit().newest_json(limit)));
                 }});
  auto rows = std::make_shared<std::vector<row>>();
  rows->push_back({"POST", "/v1/events", scope::ingest,
                   "ingest a batch (JSON or msgpack); answered once durable", false});
  rows->push_back({"GET", "/v1/stream", scope::ingest,
                   "WebSocket ingest: one batch per frame, acks in order", true});
  rows->push_back({"GET", "/v1/admin/live", scope::admin,
                   "WebSocket: the console's live feed (404 when the node serves no console)",
                   true});
  for (auto& e : table)
    rows->push_back({e.method, e.pattern, e.required, e.description, false});
  out.push_back({"GET", "/v1/admin/endpoints", scope::admin,
                 "every endpoint of this node with its method, pattern, scope and description",
                 [rows](const http_request&, responder respond) {
                   respond(json_response(200, listing_json(*rows)));
                 }});
  for (auto& e : out)
    rows->push_back({e.method, e.pattern, e.required, e.description, false});
  return out;
}

} // namespace sluice::gateway
