#include "gateway/aggregates_api.hpp"

#include "actors/aggregate_model.hpp"
#include "actors/catalog.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <charconv>
#include <chrono>
#include <memory>
#include <set>

namespace sluice::gateway {

namespace {

/// Largest `k` of trending and popular genres: more than any catalog page needs, small enough
/// that one answer stays a few hundred kilobytes.
constexpr uint32_t max_ranking_k = 1000;
constexpr uint32_t default_ranking_k = 10;
constexpr uint32_t default_also_watched_k = 5;


http_response bad_request(const std::string& msg, const std::string& parameter) {
  std::string body = "{\"error\":";
  append_json_string(body, msg);
  body += ",\"parameter\":";
  append_json_string(body, parameter);
  return json_response(400, body + "}");
}

/// An unknown query parameter, or empty.
std::string unknown_parameter(const http_request& req, const std::set<std::string>& known) {
  for (auto& [key, value] : req.query)
    if (known.count(key) == 0)
      return key;
  return {};
}

/// Reads `k` (default `def`, 1..`max`); an error text when invalid.
std::string parse_k(const http_request& req, uint32_t def, uint32_t max, uint32_t& k) {
  k = def;
  auto i = req.query.find("k");
  if (i == req.query.end())
    return {};
  auto& text = i->second;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v == 0 || v > max)
    return "k must be an integer from 1 to " + std::to_string(max) + ", got \"" + text + "\"";
  k = static_cast<uint32_t>(v);
  return {};
}

/// Answers once: the aggregator's reply, or 503 if the query was dropped unanswered (the
/// aggregator is gone), so a request never hangs.
struct once_responder {
  responder respond;
  bool done = false;
  explicit once_responder(responder r) : respond(std::move(r)) {
  }
  ~once_responder() {
    if (!done) {
      auto res = json_response(503, "{\"error\":\"the aggregator is not available; retry\"}");
      res.headers.emplace_back("Retry-After", "1");
      respond(std::move(res));
    }
  }
};

void ask(const aggregator_actor& aggregator, aggregate_query q, responder respond) {
  auto once = std::make_shared<once_responder>(std::move(respond));
  query_reply reply;
  reply.fn = [once](query_reply::status st, std::string json) {
    once->done = true;
    if (st == query_reply::status::found) {
      once->respond(json_response(200, std::move(json)));
      return;
    }
    std::string body = "{\"error\":";
    append_json_string(body, "aggregate query failed: " + json);
    once->respond(json_response(500, body + "}"));
  };
  caf::anon_send(aggregator, query_atom_v, std::move(q), std::move(reply));
}

handler trending(aggregator_actor aggregator, aggregate_options opts) {
  return [aggregator, opts](const http_request& req, responder respond) {
    if (auto p = unknown_parameter(req, {"window", "k"}); !p.empty())
      return respond(bad_request("unknown parameter '" + p + "'; use window and k", p));
    aggregate_query q;
    q.what = aggregate_query::kind::trending;
    q.window_ms = opts.window_ms;
    if (auto i = req.query.find("window"); i != req.query.end()) {
      int64_t ms = 0;
      if (!parse_catalog_duration(i->second, ms))
        return respond(bad_request("window \"" + i->second
                                     + "\" is not a duration such as 15m, 1h or 90s",
                                   "window"));
      if (ms > opts.window_ms || ms % opts.bucket_ms != 0)
        return respond(bad_request(
          "window must be a multiple of trending.bucket (" + std::to_string(opts.bucket_ms)
            + " ms) and at most trending.window (" + std::to_string(opts.window_ms) + " ms), got "
            + std::to_string(ms) + " ms",
          "window"));
      q.window_ms = ms;
    }
    if (auto err = parse_k(req, default_ranking_k, max_ranking_k, q.k); !err.empty())
      return respond(bad_request(err, "k"));
    ask(aggregator, std::move(q), std::move(respond));
  };
}

handler popular_genres(aggregator_actor aggregator) {
  return [aggregator](const http_request& req, responder respond) {
    if (auto p = unknown_parameter(req, {"date", "k"}); !p.empty())
      return respond(bad_request("unknown parameter '" + p + "'; use date and k", p));
    aggregate_query q;
    q.what = aggregate_query::kind::genres;
    if (auto i = req.query.find("date"); i != req.query.end()) {
      auto& text = i->second;
      std::optional<int64_t> ms;
      if (text.size() == 10) // YYYY-MM-DD, nothing else
        ms = parse_rfc3339_ms(text + "T00:00:00Z");
      if (!ms)
        return respond(bad_request("date \"" + text + "\" is not a UTC date YYYY-MM-DD", "date"));
      q.day = utc_day_number(*ms);
    } else {
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
      q.day = utc_day_number(now.count());
    }
    if (auto err = parse_k(req, default_ranking_k, max_ranking_k, q.k); !err.empty())
      return respond(bad_request(err, "k"));
    ask(aggregator, std::move(q), std::move(respond));
  };
}

handler also_watched(aggregator_actor aggregator, std::shared_ptr<catalog_holder> catalog,
                     aggregate_options opts) {
  return [aggregator, catalog, opts](const http_request& req, responder respond) {
    if (auto p = unknown_parameter(req, {"k"}); !p.empty())
      return respond(bad_request("unknown parameter '" + p + "'; use k", p));
    auto i = req.params.find("id");
    if (i == req.params.end() || i->second.empty())
      return respond(bad_request("missing title id in the path", "id"));
    if (catalog->get()->find(i->second) == nullptr) {
      std::string body = "{\"error\":";
      append_json_string(body, "unknown title '" + i->second + "' (not in the catalog)");
      return respond(json_response(404, body + "}"));
    }
    aggregate_query q;
    q.what = aggregate_query::kind::also_watched;
    q.title_id = i->second;
    auto top = static_cast<uint32_t>(opts.top_n);
    if (auto err = parse_k(req, std::min(default_also_watched_k, top), top, q.k); !err.empty())
      return respond(bad_request(err + " (cowatch.top-n)", "k"));
    ask(aggregator, std::move(q), std::move(respond));
  };
}

} // namespace

std::vector<endpoint> aggregate_endpoints(const node_handles& nodes) {
  std::vector<endpoint> out;
  out.push_back({"GET", "/v1/trending", scope::read,
                 "titles by distinct profiles over a sliding event-time window: "
                 "?window=15m&k=10 (window a multiple of trending.bucket, at most trending.window)",
                 trending(nodes.aggregator, nodes.aggregates)});
  out.push_back({"GET", "/v1/genres/popular", scope::read,
                 "genres by distinct profiles on a UTC day: ?date=YYYY-MM-DD&k=10",
                 popular_genres(nodes.aggregator)});
  out.push_back({"GET", "/v1/titles/{id}/also-watched", scope::read,
                 "titles most often completed by the profiles that completed this one: ?k=5; "
                 "falls back to trending (\"source\":\"trending\") without co-watch data",
                 also_watched(nodes.aggregator, nodes.catalog, nodes.aggregates)});
  return out;
}

} // namespace sluice::gateway
