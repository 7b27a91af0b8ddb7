#include "actors/catalog.hpp"

#include "actors/metrics.hpp"

#include <csv.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include "messages/text.hpp"

namespace sluice {

namespace {


constexpr std::array<std::string_view, 4> column_names{"id", "name", "genres", "duration"};

// Receives libcsv's callbacks; builds the titles, stops at the first error.
struct csv_reader {
  size_t line = 1;        // line being fed
  size_t record_line = 0; // line where the current record started
  bool in_record = false;
  std::vector<std::string> fields;
  bool header_done = false;
  std::array<size_t, 4> column{}; // index of id, name, genres, duration
  size_t columns = 0;
  std::vector<title_info> titles;
  std::unordered_map<std::string, size_t> seen; // id -> line
  std::string error;

  void fail(std::string msg) {
    if (error.empty())
      error = fmt::format("line {}: {}", record_line, msg);
  }

  static void on_field(void* s, size_t len, void* data) {
    auto* self = static_cast<csv_reader*>(data);
    if (!self->in_record) {
      self->in_record = true;
      self->record_line = self->line;
    }
    self->fields.emplace_back(static_cast<const char*>(s), len);
  }

  static void on_record(int, void* data) {
    auto* self = static_cast<csv_reader*>(data);
    if (!self->in_record) // an empty record (should not happen without CSV_REPALL_NL)
      return;
    self->in_record = false;
    if (self->error.empty())
      self->record();
    self->fields.clear();
  }

  void record() {
    if (fields.size() == 1 && trim_blanks(fields[0]).empty())
      return; // a line of blanks
    if (!header_done) {
      header();
      return;
    }
    if (fields.size() != columns) {
      fail(fmt::format("expected {} fields (id, name, genres, duration), found {}", columns,
                       fields.size()));
      return;
    }
    title_info t;
    t.id = std::string{trim_blanks(fields[column[0]])};
    t.name = std::string{trim_blanks(fields[column[1]])};
    if (t.id.empty())
      return fail("empty id");
    if (t.name.empty())
      return fail(fmt::format("title \"{}\" has an empty name", t.id));
    if (auto [it, fresh] = seen.emplace(t.id, record_line); !fresh)
      return fail(fmt::format("duplicate id \"{}\" (first on line {})", t.id, it->second));
    std::string_view genres = trim_blanks(fields[column[2]]);
    if (!genres.empty()) {
      for (;;) {
        auto bar = genres.find('|');
        auto g = trim_blanks(genres.substr(0, bar));
        if (g.empty())
          return fail(fmt::format("title \"{}\": empty genre in \"{}\"", t.id,
                                  trim_blanks(fields[column[2]])));
        if (std::find(t.genres.begin(), t.genres.end(), g) == t.genres.end())
          t.genres.emplace_back(g);
        if (bar == std::string_view::npos)
          break;
        genres.remove_prefix(bar + 1);
      }
    }
    auto duration = trim_blanks(fields[column[3]]);
    if (!parse_catalog_duration(duration, t.duration_ms))
      return fail(fmt::format("title \"{}\": duration \"{}\" is not a positive number of seconds "
                              "or of the form 1h32m / 45m / 90s",
                              t.id, duration));
    titles.push_back(std::move(t));
  }

  void header() {
    header_done = true;
    columns = fields.size();
    std::array<bool, 4> found{};
    for (size_t i = 0; i < fields.size(); ++i) {
      auto name = trim_blanks(fields[i]);
      if (i == 0 && name.substr(0, 3) == "\xEF\xBB\xBF")
        name.remove_prefix(3); // UTF-8 byte order mark
      auto pos = std::find(column_names.begin(), column_names.end(), name);
      if (pos == column_names.end())
        return fail(fmt::format("unknown column \"{}\" in the header; expected id,name,genres,"
                                "duration",
                                name));
      auto k = static_cast<size_t>(pos - column_names.begin());
      if (found[k])
        return fail(fmt::format("column \"{}\" appears twice in the header", name));
      found[k] = true;
      column[k] = i;
    }
    for (size_t k = 0; k < column_names.size(); ++k)
      if (!found[k])
        return fail(fmt::format("the header lacks the column \"{}\"; expected id,name,genres,"
                                "duration",
                                column_names[k]));
  }
};

} // namespace

bool parse_catalog_duration(std::string_view text, int64_t& ms) {
  text = trim_blanks(text);
  if (text.empty())
    return false;
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 9
           && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  auto number = [](std::string_view s) {
    int64_t v = 0;
    for (char c : s)
      v = v * 10 + (c - '0');
    return v;
  };
  int64_t seconds = 0;
  if (digits(text)) {
    seconds = number(text);
  } else {
    // <n>h<n>m<n>s with units in this order, each at most once.
    constexpr std::string_view units = "hms";
    constexpr int64_t factor[] = {3600, 60, 1};
    size_t next_unit = 0;
    while (!text.empty()) {
      size_t n = 0;
      while (n < text.size() && text[n] >= '0' && text[n] <= '9')
        ++n;
      if (n == 0 || n == text.size() || !digits(text.substr(0, n)))
        return false;
      auto u = units.find(text[n], next_unit);
      if (u == std::string_view::npos)
        return false;
      seconds += number(text.substr(0, n)) * factor[u];
      next_unit = u + 1;
      text.remove_prefix(n + 1);
    }
  }
  if (seconds <= 0)
    return false;
  ms = seconds * 1000;
  return true;
}

std::shared_ptr<const catalog> catalog::parse(std::string_view csv, std::string& error) {
  csv_reader r;
  csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
    error = "cannot initialize the CSV parser";
    return nullptr;
  }
  // Fed line by line so that errors can name the line (a quoted field may span lines).
  std::string_view rest = csv;
  while (!rest.empty() && r.error.empty()) {
    auto nl = rest.find('\n');
    auto chunk = rest.substr(0, nl == std::string_view::npos ? rest.size() : nl + 1);
    if (csv_parse(&p, chunk.data(), chunk.size(), csv_reader::on_field, csv_reader::on_record, &r)
        != chunk.size()) {
      r.error = fmt::format("line {}: malformed CSV ({})", r.line, csv_strerror(csv_error(&p)));
      break;
    }
    rest.remove_prefix(chunk.size());
    ++r.line;
  }
  if (r.error.empty()
      && csv_fini(&p, csv_reader::on_field, csv_reader::on_record, &r) != 0)
    r.error = fmt::format("line {}: malformed CSV ({})", r.record_line,
                          csv_strerror(csv_error(&p)));
  csv_free(&p);
  if (r.error.empty() && !r.header_done)
    r.error = "line 1: missing header id,name,genres,duration";
  if (!r.error.empty()) {
    error = std::move(r.error);
    return nullptr;
  }
  auto out = std::make_shared<catalog>();
  out->titles_ = std::move(r.titles);
  for (size_t i = 0; i < out->titles_.size(); ++i)
    out->index_.emplace(out->titles_[i].id, i);
  return out;
}

std::shared_ptr<const catalog> catalog::load(const std::string& path, std::string& error) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    error = fmt::format("cannot read the title catalog {}", path);
    return nullptr;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string parse_error;
  auto result = parse(buf.str(), parse_error);
  if (!result)
    error = fmt::format("{}: {}", path, parse_error);
  return result;
}

std::shared_ptr<const catalog> catalog::empty() {
  static const auto instance = std::make_shared<const catalog>();
  return instance;
}

const title_info* catalog::find(std::string_view id) const {
  auto i = index_.find(id);
  return i == index_.end() ? nullptr : &titles_[i->second];
}

catalog_holder::catalog_holder(std::string path)
  : path_(std::move(path)), current_(catalog::empty()) {
}

std::shared_ptr<const catalog> catalog_holder::get() const {
  return std::atomic_load(&current_);
}

void catalog_holder::set(std::shared_ptr<const catalog> next) {
  std::atomic_store(&current_, next ? std::move(next) : catalog::empty());
}

bool catalog_holder::reload(std::string& error) {
  std::lock_guard<std::mutex> guard{reload_mtx_};
  if (path_.empty()) {
    error = "no title catalog configured (catalog.titles-file is empty)";
    return false;
  }
  auto next = catalog::load(path_, error);
  if (!next)
    return false;
  set(std::move(next));
  return true;
}

std::string reload_catalog(catalog_holder& holder, metrics_registry& metrics) {
  std::string error;
  bool ok = holder.reload(error);
  metrics
    .get_counter("sluice_catalog_reloads_total", "title catalog reloads by outcome",
                 {{"result", ok ? "ok" : "error"}})
    .inc();
  metrics.get_gauge("sluice_catalog_titles", "titles in the current title catalog")
    .set(static_cast<int64_t>(holder.get()->size()));
  return ok ? std::string{} : error;
}

} // namespace sluice
