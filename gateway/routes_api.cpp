#include "gateway/routes_api.hpp"

#include "actors/metrics.hpp"
#include "actors/route_history.hpp"
#include "messages/codec.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/route_store.hpp"

#include <caf/all.hpp>
#include <simdjson.h>

#include <cctype>
#include <charconv>
#include <map>
#include <sstream>

namespace sluice::gateway {

namespace {


http_response error_response(unsigned status, std::string_view message) {
  std::string body = "{\"error\":";
  append_json_string(body, message);
  return json_response(status, body + "}");
}

void append_sinks(std::string& out, const std::vector<size_t>& sinks,
                  const std::vector<std::string>& names) {
  out += '[';
  for (size_t i = 0; i < sinks.size(); ++i) {
    if (i > 0)
      out += ',';
    append_json_string(out, sinks[i] < names.size() ? names[sinks[i]] : std::string{"?"});
  }
  out += ']';
}

void append_version_meta(std::string& out, uint64_t version, uint64_t effective_from,
                         int64_t created_ms, const std::string& comment) {
  out += "\"version\":" + std::to_string(version);
  out += ",\"effective_from\":" + std::to_string(effective_from);
  out += ",\"created_ms\":" + std::to_string(created_ms);
  out += ",\"comment\":";
  append_json_string(out, comment);
}

/// Reads a version number from a path parameter or a JSON field.
bool parse_version(std::string_view text, uint64_t& out) {
  auto res = std::from_chars(text.data(), text.data() + text.size(), out);
  return res.ec == std::errc{} && res.ptr == text.data() + text.size() && out > 0;
}

/// Sends the swap to the ingest log; answers 200 with the new version once it is stored, 400 with
/// the line and column when the routes do not compile.
void request_swap(const node_handles& nodes, std::string text, std::string comment,
                  responder respond) {
  route_swap_request req;
  req.text = std::move(text);
  req.comment = std::move(comment);
  req.reply = [respond](std::string error, bool invalid, uint64_t version,
                        log_offset effective_from) {
    if (error.empty()) {
      respond(json_response(200, "{\"version\":" + std::to_string(version)
                                   + ",\"effective_from\":" + std::to_string(effective_from)
                                   + "}"));
      return;
    }
    if (!invalid) {
      respond(error_response(500, error));
      return;
    }
    std::string body = "{\"error\":";
    append_json_string(body, error);
    size_t line = 0, column = 0;
    if (error_position(error, line, column))
      body += ",\"line\":" + std::to_string(line) + ",\"column\":" + std::to_string(column);
    respond(json_response(400, body + "}"));
  };
  caf::anon_send(nodes.log, route_atom_v, std::move(req));
}

std::string media_type_of(const http_request& req) {
  auto i = req.headers.find("content-type");
  if (i == req.headers.end())
    return {};
  auto mt = i->second.substr(0, i->second.find(';'));
  while (!mt.empty() && std::isspace(static_cast<unsigned char>(mt.back())))
    mt.pop_back();
  for (auto& c : mt)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return mt;
}

void append_json_value(std::string& out, const caf::config_value& v) {
  if (auto str = caf::get_if<std::string>(&v)) {
    append_json_string(out, *str);
  } else if (auto xs = caf::get_if<caf::config_value::list>(&v)) {
    out += '[';
    for (size_t i = 0; i < xs->size(); ++i) {
      if (i > 0)
        out += ',';
      append_json_value(out, (*xs)[i]);
    }
    out += ']';
  } else {
    append_json_string(out, caf::to_string(v));
  }
}

/// The actions of each route (every key besides `when` and `sinks`) as written in the text.
std::map<std::string, std::string> actions_of(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in{text};
  auto parsed = caf::actor_system_config::parse_config(in);
  if (!parsed)
    return out;
  auto i = parsed->find("routes");
  auto routes = i == parsed->end() ? nullptr : caf::get_if<caf::settings>(&i->second);
  if (routes == nullptr)
    return out;
  for (auto& [name, value] : *routes) {
    auto section = caf::get_if<caf::settings>(&value);
    if (section == nullptr)
      continue;
    std::string json = "{";
    for (auto& [key, v] : *section) {
      if (key == "when" || key == "sinks")
        continue;
      if (json.size() > 1)
        json += ',';
      append_json_string(json, key);
      json += ':';
      append_json_value(json, v);
    }
    out[name] = json + "}";
  }
  return out;
}

} // namespace

bool error_position(std::string_view error, size_t& line, size_t& column) {
  auto number = [](std::string_view s, size_t& pos, size_t& out) {
    auto res = std::from_chars(s.data() + pos, s.data() + s.size(), out);
    if (res.ec != std::errc{} || res.ptr == s.data() + pos)
      return false;
    pos = static_cast<size_t>(res.ptr - s.data());
    return true;
  };
  if (auto at = error.find("line "); at != std::string_view::npos) {
    size_t pos = at + 5;
    if (number(error, pos, line) && error.substr(pos, 9) == ", column ") {
      pos += 9;
      return number(error, pos, column);
    }
  }
  // "L:C: message", possibly after "FILE:".
  for (size_t start = 0; start < error.size(); ++start) {
    if (!std::isdigit(static_cast<unsigned char>(error[start]))
        || (start > 0 && error[start - 1] != ':' && error[start - 1] != ' '))
      continue;
    size_t pos = start;
    if (number(error, pos, line) && pos < error.size() && error[pos] == ':') {
      ++pos;
      if (number(error, pos, column) && pos < error.size() && error[pos] == ':')
        return true;
    }
  }
  return false;
}

std::string route_version_json(const route_history::entry& e,
                               const std::vector<std::string>& sink_names) {
  std::string out = "{";
  append_version_meta(out, e.version, e.effective_from, e.created_ms, e.comment);
  out += ",\"text\":";
  append_json_string(out, e.text);
  out += ",\"routes\":[";
  auto actions = actions_of(e.text);
  auto actions_json = [&](const std::string& name) {
    auto i = actions.find(name);
    return i != actions.end() ? i->second : std::string{"{}"};
  };
  bool first = true;
  for (auto& r : e.table->routes) {
    if (!first)
      out += ',';
    first = false;
    out += "{\"name\":";
    append_json_string(out, r.name);
    out += ",\"when\":";
    append_json_string(out, r.when);
    out += ",\"sinks\":";
    append_sinks(out, r.sinks, sink_names);
    out += ",\"actions\":" + actions_json(r.name);
    out += '}';
  }
  out += "],\"unmatched_sinks\":";
  append_sinks(out, e.table->unmatched_sinks, sink_names);
  out += ",\"unmatched_actions\":" + actions_json(unmatched_route);
  return out + "}";
}

std::vector<endpoint> routes_endpoints(const node_handles& nodes) {
  std::vector<endpoint> out;
  auto reg = nodes.routes;
  if (!reg)
    return out;
  out.push_back(
    {"GET", "/v1/admin/routes", scope::admin,
     "the routes in effect: version, effective_from (first log offset they route), text, routes",
     [reg](const http_request&, responder respond) {
       auto h = reg->current();
       if (!h || h->entries.empty())
         return respond(error_response(503, "the routes are not loaded yet"));
       respond(json_response(200, route_version_json(h->latest(), reg->sink_names())));
     }});
  out.push_back(
    {"GET", "/v1/admin/routes/versions", scope::admin,
     "every stored version of the routes (without text), oldest first, and the current one",
     [reg](const http_request&, responder respond) {
       std::vector<persistence::route_version> versions;
       try {
         persistence::read_txn txn{*reg->env()};
         versions = persistence::route_store::list(txn);
       } catch (const std::exception& e) {
         return respond(error_response(500, std::string{"cannot read route versions: "}
                                              + e.what()));
       }
       auto h = reg->current();
       std::string body = "{\"current\":"
                          + std::to_string(h && !h->entries.empty() ? h->latest().version : 0)
                          + ",\"versions\":[";
       for (size_t i = 0; i < versions.size(); ++i) {
         if (i > 0)
           body += ',';
         body += '{';
         auto& v = versions[i];
         append_version_meta(body, v.version, v.effective_from, v.created_ms, v.comment);
         body += '}';
       }
       respond(json_response(200, body + "]}"));
     }});
  out.push_back({"GET", "/v1/admin/routes/versions/{n}", scope::admin, "one stored version of the routes with its text",
                 [reg](const http_request& req, responder respond) {
                   uint64_t n = 0;
                   auto i = req.params.find("n");
                   if (i == req.params.end() || !parse_version(i->second, n))
                     return respond(error_response(400, "the version must be a positive integer"));
                   std::optional<persistence::route_version> v;
                   try {
                     persistence::read_txn txn{*reg->env()};
                     v = persistence::route_store::get(txn, n);
                   } catch (const std::exception& e) {
                     return respond(error_response(500, std::string{"cannot read route versions: "}
                                                          + e.what()));
                   }
                   if (!v)
                     return respond(error_response(404, "no such route version"));
                   std::string body = "{";
                   append_version_meta(body, v->version, v->effective_from, v->created_ms,
                                       v->comment);
                   body += ",\"text\":";
                   append_json_string(body, v->text);
                   respond(json_response(200, body + "}"));
                 }});
  out.push_back(
    {"PUT", "/v1/admin/routes", scope::admin,
     "replaces the routes (body: route INI text as text/plain, or {\"text\":…,\"comment\":…}); "
     "answers the new version once stored; 400 with line and column when invalid",
     [nodes](const http_request& req, responder respond) {
       auto& reg = *nodes.routes;
       auto mt = media_type_of(req);
       std::string text;
       std::string comment = "api";
       if (mt == "application/json") {
         simdjson::dom::parser parser;
         simdjson::dom::element doc;
         if (auto err = parser.parse(req.body).get(doc); err) {
           reg.reloads(false).inc();
           return respond(error_response(400, std::string{"the body is not valid JSON: "}
                                                + simdjson::error_message(err)));
         }
         std::string_view t, c;
         if (doc["text"].get(t) != simdjson::SUCCESS) {
           reg.reloads(false).inc();
           return respond(json_response(
             400, "{\"error\":\"the JSON body needs a string field 'text' with the route INI "
                  "text\",\"field\":\"text\"}"));
         }
         text = std::string{t};
         if (doc["comment"].get(c) == simdjson::SUCCESS)
           comment = std::string{c};
       } else if (mt.empty() || mt == "text/plain") {
         text = req.body;
       } else {
         reg.reloads(false).inc();
         return respond(error_response(415, "send the routes as text/plain (the INI text) or "
                                            "application/json ({\"text\":…})"));
       }
       request_swap(nodes, std::move(text), std::move(comment), std::move(respond));
     }});
  out.push_back(
    {"POST", "/v1/admin/routes/rollback", scope::admin,
     "makes a new version with the text of version n: {\"version\":n}",
     [nodes](const http_request& req, responder respond) {
       auto& reg = *nodes.routes;
       simdjson::dom::parser parser;
       simdjson::dom::element doc;
       uint64_t n = 0;
       if (parser.parse(req.body).get(doc) != simdjson::SUCCESS
           || doc["version"].get(n) != simdjson::SUCCESS || n == 0) {
         reg.reloads(false).inc();
         return respond(json_response(400, "{\"error\":\"the body must be {\\\"version\\\":n} "
                                           "with a stored version number\",\"field\":"
                                           "\"version\"}"));
       }
       std::optional<persistence::route_version> v;
       try {
         persistence::read_txn txn{*reg.env()};
         v = persistence::route_store::get(txn, n);
       } catch (const std::exception& e) {
         return respond(error_response(500, std::string{"cannot read route versions: "}
                                              + e.what()));
       }
       if (!v) {
         reg.reloads(false).inc();
         return respond(error_response(404, "no route version " + std::to_string(n)));
       }
       request_swap(nodes, std::move(v->text), "rollback to " + std::to_string(n),
                    std::move(respond));
     }});
  return out;
}

} // namespace sluice::gateway
