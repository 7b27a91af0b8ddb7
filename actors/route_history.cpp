#include "actors/route_history.hpp"

#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "persistence/lmdb.hpp"
#include "persistence/route_store.hpp"

#include <caf/all.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace sluice {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Runs `fn(txn)` in a write transaction and commits, growing the map on MDB_MAP_FULL.
template <class F>
void write(persistence::environment& env, F&& fn) {
  for (;;) {
    try {
      persistence::write_txn txn{env};
      fn(txn);
      txn.commit();
      return;
    } catch (const persistence::lmdb_error& e) {
      if (e.map_full() && env.grow())
        continue;
      throw;
    }
  }
}

route_history::entry make_entry(const persistence::route_version& v,
                                std::shared_ptr<const route_table> table) {
  route_history::entry e;
  e.version = v.version;
  e.effective_from = v.effective_from;
  e.created_ms = v.created_ms;
  e.comment = v.comment;
  e.text = v.text;
  e.table = std::move(table);
  return e;
}

void append_ini_value(std::string& out, const caf::config_value& v) {
  if (auto s = caf::get_if<std::string>(&v)) {
    out += '"';
    for (char c : *s) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += c;
      }
    }
    out += '"';
  } else if (auto xs = caf::get_if<caf::config_value::list>(&v)) {
    out += '[';
    for (size_t i = 0; i < xs->size(); ++i) {
      if (i > 0)
        out += ", ";
      append_ini_value(out, (*xs)[i]);
    }
    out += ']';
  } else {
    out += caf::to_string(v);
  }
}

} // namespace

// -- route_history ------------------------------------------------------------------------------

const route_history::entry& route_history::at(log_offset offset) const {
  auto i = std::upper_bound(entries.begin(), entries.end(), offset,
                            [](log_offset o, const entry& e) { return o < e.effective_from; });
  return i == entries.begin() ? entries.front() : *(i - 1);
}

// -- route_registry -----------------------------------------------------------------------------

route_registry::route_registry(persistence::environment* env, std::vector<std::string> sink_names,
                               metrics_registry* metrics, bool have_pii_secret)
  : env_(env),
    sink_names_(std::move(sink_names)),
    metrics_(metrics),
    have_pii_secret_(have_pii_secret) {
  if (metrics_ != nullptr) {
    version_ = &metrics_->get_gauge("sluice_routes_version", "Version of the routes in effect");
    auto help = "Route swaps requested (PUT /v1/admin/routes, rollback): ok, or invalid "
                "(refused, the routes in effect stay)";
    reloads_ok_ = &metrics_->get_counter("sluice_routes_reloads_total", help, {{"result", "ok"}});
    reloads_invalid_ = &metrics_->get_counter("sluice_routes_reloads_total", help,
                                              {{"result", "invalid"}});
  } else {
    static counter dummy_ok, dummy_invalid;
    reloads_ok_ = &dummy_ok;
    reloads_invalid_ = &dummy_invalid;
  }
}

std::shared_ptr<const route_history> route_registry::current() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return current_;
}

void route_registry::publish(std::shared_ptr<const route_history> h) {
  if (version_ != nullptr && h && !h->entries.empty())
    version_->set(static_cast<int64_t>(h->latest().version));
  std::lock_guard<std::mutex> guard{mtx_};
  current_ = std::move(h);
}

// -- text ---------------------------------------------------------------------------------------

std::string compile_route_text(std::string_view text, const std::vector<std::string>& sink_names,
                               route_table& out) {
  auto err = compile_routes_text(text, sink_names, out);
  if (err.find("not a configured sink") != std::string::npos)
    err += "; routes cannot add sinks: add the [sinks.<name>] section to the config file and "
           "restart the node";
  return err;
}

std::string render_routes_ini(const caf::settings& routes) {
  std::string out;
  for (auto& [name, value] : routes) {
    auto section = caf::get_if<caf::settings>(&value);
    if (section == nullptr)
      continue;
    if (!out.empty())
      out += '\n';
    out += "[routes." + name + "]\n";
    for (auto& [key, v] : *section) {
      out += key + " = ";
      append_ini_value(out, v);
      out += '\n';
    }
  }
  return out;
}

// -- versions -----------------------------------------------------------------------------------

void open_route_history(route_registry& reg, const std::string& config_text,
                        log_offset next_offset, log_offset lowest_done) {
  auto& env = *reg.env();
  auto config_table = std::make_shared<route_table>();
  if (config_text.empty()) {
    // No routes configured: nothing goes anywhere until routes are PUT.
  } else if (auto err = compile_route_text(config_text, reg.sink_names(), *config_table);
             !err.empty())
    log_json("error", "the config file's routes do not compile as route text", {{"reason", err}});
  std::vector<persistence::route_version> versions;
  std::optional<std::string> seen;
  auto history = std::make_shared<route_history>();
  try {
    {
      persistence::read_txn txn{env};
      versions = persistence::route_store::list(txn);
      seen = persistence::route_store::config_text(txn);
    }
    auto add_config_version = [&](log_offset from, std::string comment) {
      persistence::route_version v;
      v.version = versions.empty() ? 1 : versions.back().version + 1;
      v.effective_from = from;
      v.created_ms = now_ms();
      v.comment = std::move(comment);
      v.text = config_text;
      write(env, [&](persistence::write_txn& txn) {
        persistence::route_store::put(txn, v);
        persistence::route_store::set_config_text(txn, config_text);
      });
      versions.push_back(std::move(v));
    };
    if (versions.empty()) {
      add_config_version(0, "config");
    } else if (!seen || *seen != config_text) {
      add_config_version(next_offset, "config file changed");
      log_json("info", "the config file's routes changed since the last start: they are a new "
                       "version of the routes",
               {{"version", std::to_string(versions.back().version)},
                {"effective_from", std::to_string(next_offset)}});
    } else if (versions.back().text != config_text) {
      log_json("warning",
               "the routes in effect were set through the API and differ from the config file's; "
               "they stay (edit the config file's routes to replace them, or PUT "
               "/v1/admin/routes)",
               {{"version", std::to_string(versions.back().version)}});
    }
    // Versions still needed: the one in effect at lowest_done + 1 and every later one.
    size_t first = 0;
    for (size_t i = 0; i < versions.size(); ++i)
      if (versions[i].effective_from <= lowest_done + 1)
        first = i;
    for (size_t i = first; i < versions.size(); ++i) {
      auto table = std::make_shared<route_table>();
      auto err = versions[i].text.empty()
                   ? std::string{}
                   : compile_route_text(versions[i].text, reg.sink_names(), *table);
      if (!err.empty()) {
        bool is_latest = i + 1 == versions.size();
        log_json("warning",
                 is_latest ? "the latest stored routes no longer compile (a sink removed?): the "
                             "config file's routes replace them"
                           : "stored routes no longer compile (a sink removed?): the events they "
                             "routed are routed by the config file's routes if replayed",
                 {{"version", std::to_string(versions[i].version)}, {"reason", err}});
        if (is_latest) {
          history->entries.push_back(make_entry(versions[i], config_table));
          add_config_version(next_offset, "config (stored routes did not compile)");
          history->entries.push_back(make_entry(versions.back(), config_table));
          break;
        }
        table = config_table;
      }
      history->entries.push_back(make_entry(versions[i], std::move(table)));
    }
  } catch (const std::exception& e) {
    log_json("error", "route versions cannot be read or stored: the config file's routes are in "
                      "effect",
             {{"reason", e.what()}});
    history->entries.clear();
    persistence::route_version v;
    v.version = versions.empty() ? 1 : versions.back().version;
    v.text = config_text;
    v.comment = "config (storage error)";
    history->entries.push_back(make_entry(v, config_table));
  }
  log_json("info", "routes in effect",
           {{"version", std::to_string(history->latest().version)},
            {"effective_from", std::to_string(history->latest().effective_from)},
            {"routes", std::to_string(history->latest().table->routes.size())}});
  reg.publish(std::move(history));
}

route_swap_result swap_routes(route_registry& reg, const std::string& text,
                              const std::string& comment, log_offset next_offset,
                              log_offset lowest_done) {
  route_swap_result res;
  auto table = std::make_shared<route_table>();
  auto err = compile_route_text(text, reg.sink_names(), *table);
  if (err.empty())
    err = check_route_secret(*table, reg.have_pii_secret());
  if (!err.empty()) {
    reg.reloads(false).inc();
    res.error = std::move(err);
    res.invalid = true;
    return res;
  }
  auto cur = reg.current();
  persistence::route_version v;
  v.version = cur && !cur->entries.empty() ? cur->latest().version + 1 : 1;
  v.effective_from = next_offset;
  v.created_ms = now_ms();
  v.comment = comment;
  v.text = text;
  try {
    write(*reg.env(), [&](persistence::write_txn& txn) {
      // The stored versions are the truth (a version number is never reused).
      persistence::route_store::put(txn, v);
    });
  } catch (const std::exception& e) {
    res.error = std::string{"the new routes could not be stored: "} + e.what();
    return res;
  }
  auto next = std::make_shared<route_history>();
  if (cur) {
    // Keep the version in effect at lowest_done + 1 and every later one.
    size_t first = 0;
    for (size_t i = 0; i < cur->entries.size(); ++i)
      if (cur->entries[i].effective_from <= lowest_done + 1)
        first = i;
    for (size_t i = first; i < cur->entries.size(); ++i)
      if (cur->entries[i].effective_from < next_offset)
        next->entries.push_back(cur->entries[i]);
  }
  next->entries.push_back(make_entry(v, std::move(table)));
  reg.publish(std::move(next));
  reg.reloads(true).inc();
  log_json("info", "routes swapped",
           {{"version", std::to_string(v.version)},
            {"effective_from", std::to_string(next_offset)},
            {"comment", comment}});
  res.version = v.version;
  res.effective_from = next_offset;
  return res;
}

} // namespace sluice
