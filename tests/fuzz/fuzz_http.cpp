// libFuzzer target: HTTP request handling. Arbitrary bytes go through Beast's request parser with
// the gateway's limits (body: gateway.max-body-bytes, header: 16 KiB), then through sluice's own
// request-side steps as server.cpp takes them: path and query split, the /v1/events and /v1/stream
// special cases, media type and wire format, the decode + quality + ack path of POST /v1/events,
// and the endpoint table (router match, percent-decoded `{name}` segments, parse_query, header
// folding) with the real /v1/schemas handlers. Every reply body must be valid JSON.
// Seeds: tests/fuzz/corpus/http; dictionary: tests/fuzz/http.dict.

#include "tests/fuzz/gateway_fixture.hpp"
#include "gateway/session.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using namespace sluice;
using namespace sluice::gateway;
using namespace sluice::gateway::detail;

/// The endpoint table's patterns (the handlers of these need a running node; the /v1/schemas ones
/// are the real handlers).
std::vector<endpoint> endpoint_table(const std::shared_ptr<const ingest_quality>& quality) {
  static const char* const table[][2] = {
    {"GET", "/healthz"},
    {"GET", "/readyz"},
    {"GET", "/metrics"},
    {"GET", "/v1/devices/{id}"},
    {"GET", "/v1/profiles/{id}/continue-watching"},
    {"GET", "/v1/profiles/{id}/watch-time"},
    {"GET", "/v1/titles/{id}"},
    {"GET", "/v1/titles/{id}/also-watched"},
    {"GET", "/v1/trending"},
    {"GET", "/v1/genres/popular"},
    {"GET", "/v1/admin/dead-letters"},
    {"POST", "/v1/admin/dead-letters/replay"},
    {"GET", "/v1/admin/routes"},
    {"PUT", "/v1/admin/routes"},
    {"GET", "/v1/admin/routes/versions"},
    {"GET", "/v1/admin/routes/versions/{n}"},
    {"POST", "/v1/admin/routes/rollback"},
    {"POST", "/v1/admin/catalog/reload"},
  };
  std::vector<endpoint> out;
  for (auto& row : table) {
    endpoint ep;
    ep.method = row[0];
    ep.pattern = row[1];
    ep.fn = [](const http_request& req, responder respond) {
      std::string body = "{\"path\":";
      append_json_string(body, req.path);
      body += ",\"params\":{";
      for (auto& [k, v] : req.params) {
        if (body.back() != '{')
          body += ',';
        append_json_string(body, k);
        body += ':';
        append_json_string(body, v);
      }
      body += "}}";
      respond(json_response(200, std::move(body)));
    };
    out.push_back(std::move(ep));
  }
  for (auto& ep : schema_endpoints(quality))
    out.push_back(std::move(ep));
  return out;
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

void handle_table(const router& routes, http::request<http::string_body>& req,
                  std::string_view target, std::string_view path) {
  auto method = std::string_view{req.method_string().data(), req.method_string().size()};
  auto m = routes.match(method, path);
  if (m.result == router::outcome::not_found) {
    fuzz::require_valid_json(json_error("no endpoint at " + std::string{path}), "404 body");
    return;
  }
  if (m.result == router::outcome::method_not_allowed) {
    if (m.allow.empty())
      fuzz::fail("405 without an Allow list");
    fuzz::require_valid_json(json_error("method " + std::string{method} + " not allowed on "
                                        + std::string{path} + "; allowed: " + m.allow),
                             "405 body");
    return;
  }
  if (m.ep == nullptr || m.ep->method != method)
    fuzz::fail("router found an endpoint of another method");
  auto hr = make_http_request(req, target, path, std::move(m.params));
  bool answered = false;
  m.ep->fn(hr, [&](http_response res) {
    answered = true;
    if (res.content_type == "application/json")
      fuzz::require_valid_json(res.body, "endpoint reply is not JSON");
  });
  if (!answered)
    fuzz::fail("endpoint handler did not answer synchronously");
}

void handle_request(fuzz::gateway_fixture& fx, const router& routes,
                    http::request<http::string_body>& req) {
  auto target = std::string_view{req.target().data(), req.target().size()};
  auto path = path_of(target);
  if (path == stream_path && beast::websocket::is_upgrade(req))
    return; // the WebSocket target (fuzz_ws) takes it from here
  if (path == events_path) {
    if (req.method() != http::verb::post)
      return;
    auto ct = req[http::field::content_type];
    auto mt = media_type({ct.data(), ct.size()});
    auto fmt = format_for(mt);
    if (!fmt) {
      fuzz::require_valid_json(
        json_error("unsupported Content-Type '" + std::string{mt}
                   + "': send application/json or application/msgpack"),
        "415 body");
      return;
    }
    auto ua = req[http::field::user_agent];
    auto xff = req["x-forwarded-for"];
    client_info client{{ua.data(), ua.size()}, "127.0.0.1", {xff.data(), xff.size()}};
    fx.answer_batch(req.body(), *fmt == wire_format::json, client, 0);
    return;
  }
  if (path == stream_path)
    return; // 426
  handle_table(routes, req, target, path);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& fx = fuzz::gateway_fixture::get();
  static const router routes{endpoint_table(fx.quality)};
  // Pipelined requests on one connection, as the server reads them: one parser per request.
  net::const_buffer rest{data, size};
  for (int requests = 0; requests < 8 && rest.size() > 0; ++requests) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(fx.cfg.max_body_bytes);
    parser.header_limit(16 * 1024);
    parser.eager(true);
    while (!parser.is_done()) {
      beast::error_code ec;
      auto used = parser.put(rest, ec);
      rest += used;
      if (ec || used == 0)
        return 0; // 400/413/431, or waiting for more bytes (need_more)
    }
    auto req = parser.release();
    handle_request(fx, routes, req);
    if (!req.keep_alive())
      return 0;
  }
  return 0;
}
