#include "actors/sinks/lake/lake_table.hpp"

#include "messages/codec.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <simdjson.h>

namespace sluice::lake {

namespace {

constexpr int64_t ms_per_hour = 3600 * 1000;
constexpr int64_t hours_per_day = 24;
/// Digits of the snapshot number in `snap-<n>.json`: enough for any uint64_t, so lexical order of
/// the names is numeric order.
constexpr int snapshot_id_digits = 20;
constexpr std::string_view meta_dir = "_meta/";
constexpr std::string_view current_name = "current";
constexpr std::string_view snap_prefix = "snap-";
constexpr std::string_view snap_suffix = ".json";
constexpr std::string_view part_prefix = "part-";
constexpr std::string_view part_suffix = ".parquet";
/// Version of the snapshot JSON layout, written as `format` (2: per-writer state and file
/// writers; format 1 is read as one unnamed writer).
constexpr int snapshot_format = 2;
constexpr std::string_view probe_name = "exclusive-create-probe";

int64_t floor_div(int64_t a, int64_t b) {
  auto q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Howard Hinnant's civil_from_days: days since 1970-01-01 → (year, month, day).
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

void append_file(std::string& out, const file_entry& f) {
  out += "{\"path\":";
  append_json_string(out, f.path);
  out += ",\"partition\":";
  append_json_string(out, f.partition);
  fmt::format_to(std::back_inserter(out),
                 ",\"rows\":{},\"bytes\":{},\"min_ts\":{},\"max_ts\":{},\"min_offset\":{},"
                 "\"max_offset\":{}",
                 f.rows, f.bytes, f.min_ts, f.max_ts, f.min_offset, f.max_offset);
  if (!f.writer.empty()) {
    out += ",\"writer\":";
    append_json_string(out, f.writer);
  }
  out += '}';
}

void append_files(std::string& out, std::string_view name, const std::vector<file_entry>& files) {
  out += ",\n\"";
  out += name;
  out += "\":[";
  for (size_t i = 0; i < files.size(); ++i) {
    out += i == 0 ? "\n  " : ",\n  ";
    append_file(out, files[i]);
  }
  out += "]";
}

template <class T>
bool get_field(simdjson::dom::object obj, std::string_view key, T& out) {
  if constexpr (std::is_same_v<T, std::string>) {
    std::string_view v;
    if (obj[key].get_string().get(v))
      return false;
    out.assign(v);
    return true;
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return !obj[key].get_uint64().get(out);
  } else {
    return !obj[key].get_int64().get(out);
  }
}

bool parse_files(simdjson::dom::object obj, std::string_view key, std::vector<file_entry>& out,
                 std::string& error) {
  simdjson::dom::array arr;
  if (obj[key].get_array().get(arr)) {
    error = fmt::format("'{}' is missing or not an array", key);
    return false;
  }
  for (auto item : arr) {
    simdjson::dom::object f;
    file_entry e;
    if (item.get_object().get(f) || !get_field(f, "path", e.path)
        || !get_field(f, "partition", e.partition) || !get_field(f, "rows", e.rows)
        || !get_field(f, "bytes", e.bytes) || !get_field(f, "min_ts", e.min_ts)
        || !get_field(f, "max_ts", e.max_ts) || !get_field(f, "min_offset", e.min_offset)
        || !get_field(f, "max_offset", e.max_offset)) {
      error = fmt::format("an entry of '{}' lacks one of path, partition, rows, bytes, min_ts, "
                          "max_ts, min_offset, max_offset",
                          key);
      return false;
    }
    std::string_view writer;
    if (!f["writer"].get_string().get(writer))
      e.writer.assign(writer);
    out.push_back(std::move(e));
  }
  return true;
}

bool is_snapshot_key(std::string_view name) {
  return name.size() > snap_prefix.size() + snap_suffix.size()
         && name.substr(0, snap_prefix.size()) == snap_prefix
         && name.substr(name.size() - snap_suffix.size()) == snap_suffix;
}

std::string_view base_name(std::string_view key) {
  auto slash = key.rfind('/');
  return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

} // namespace

std::string partition_of(int64_t ts_ms) {
  auto hours = floor_div(ts_ms, ms_per_hour);
  auto days = floor_div(hours, hours_per_day);
  auto hour = hours - days * hours_per_day;
  int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  return fmt::format("date={:04}-{:02}-{:02}/hour={:02}", y, m, d, hour);
}

std::string new_part_name(int64_t now_ms) {
  /// Random bytes of a v7 UUID after its 6 timestamp bytes.
  constexpr size_t random_bytes = 10;
  unsigned char b[16] = {};
  auto ms = static_cast<uint64_t>(std::max<int64_t>(0, now_ms));
  for (int i = 0; i < 6; ++i)
    b[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error("cannot open /dev/urandom for a file name");
  size_t got = 0;
  while (got < random_bytes) {
    auto n = ::read(fd, b + 6 + got, random_bytes - got);
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("cannot read /dev/urandom for a file name");
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0f)); // version 7
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f)); // variant 10
  std::string out{part_prefix};
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out += '-';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 0xf];
  }
  out += part_suffix;
  return out;
}

std::optional<int64_t> part_created_ms(std::string_view file_name) {
  /// `xxxxxxxx-xxxx-`: the 48-bit timestamp of a v7 UUID with its dash.
  constexpr size_t stamp_chars = 13;
  if (file_name.size() < part_prefix.size() + stamp_chars
      || file_name.substr(0, part_prefix.size()) != part_prefix)
    return std::nullopt;
  auto s = file_name.substr(part_prefix.size(), stamp_chars);
  uint64_t ms = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8) {
      if (s[i] != '-')
        return std::nullopt;
      continue;
    }
    auto v = hex_value(s[i]);
    if (v < 0)
      return std::nullopt;
    ms = (ms << 4) | static_cast<uint64_t>(v);
  }
  return static_cast<int64_t>(ms);
}

std::string snapshot_file_name(uint64_t id) {
  return fmt::format("{}{:0{}}{}", snap_prefix, id, snapshot_id_digits, snap_suffix);
}

log_offset snapshot::watermark_of(const std::string& id) const {
  auto it = writers.find(id);
  if (it != writers.end())
    return it->second.offset_watermark;
  return legacy() ? writers.begin()->second.offset_watermark : 0;
}

std::string render_snapshot(const snapshot& s) {
  std::string out;
  fmt::format_to(std::back_inserter(out),
                 "{{\"format\":{},\"snapshot_id\":{},\"parent\":{},\"timestamp_ms\":{},"
                 "\"offset_watermark\":{},\"writer\":",
                 snapshot_format, s.id, s.parent, s.timestamp_ms, s.offset_watermark);
  append_json_string(out, s.writer);
  out += ",\n\"writers\":{";
  bool first = true;
  for (auto& [id, w] : s.writers) {
    out += first ? "\n  " : ",\n  ";
    first = false;
    append_json_string(out, id);
    fmt::format_to(std::back_inserter(out), ":{{\"offset_watermark\":{},\"committed_ms\":{}}}",
                   w.offset_watermark, w.committed_ms);
  }
  out += "},\n\"schema\":[";
  for (size_t i = 0; i < s.schema.size(); ++i) {
    out += i == 0 ? "\n  {\"name\":" : ",\n  {\"name\":";
    append_json_string(out, s.schema[i].name);
    out += ",\"type\":";
    append_json_string(out, persistence::parquet::to_string(s.schema[i].type));
    out += s.schema[i].nullable ? ",\"nullable\":true}" : ",\"nullable\":false}";
  }
  out += "]";
  append_files(out, "added", s.added);
  append_files(out, "removed", s.removed);
  append_files(out, "files", s.files);
  out += "}\n";
  return out;
}

std::optional<snapshot> parse_snapshot(std::string_view json, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc); err) {
    error = fmt::format("not JSON: {}", simdjson::error_message(err));
    return std::nullopt;
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) {
    error = "not a JSON object";
    return std::nullopt;
  }
  snapshot s;
  if (!get_field(obj, "snapshot_id", s.id) || !get_field(obj, "parent", s.parent)
      || !get_field(obj, "timestamp_ms", s.timestamp_ms)
      || !get_field(obj, "offset_watermark", s.offset_watermark)) {
    error = "missing one of snapshot_id, parent, timestamp_ms, offset_watermark";
    return std::nullopt;
  }
  std::string_view writer;
  if (!obj["writer"].get_string().get(writer))
    s.writer.assign(writer);
  simdjson::dom::object writers;
  if (!obj["writers"].get_object().get(writers)) {
    for (auto field : writers) {
      simdjson::dom::object w;
      writer_state st;
      if (field.value.get_object().get(w) || !get_field(w, "offset_watermark", st.offset_watermark)
          || !get_field(w, "committed_ms", st.committed_ms)) {
        error = fmt::format("writer '{}' lacks offset_watermark or committed_ms", field.key);
        return std::nullopt;
      }
      s.writers.emplace(std::string{field.key}, st);
    }
  } else {
    // Format 1: one unnamed writer.
    s.writers.emplace(std::string{}, writer_state{s.offset_watermark, s.timestamp_ms});
  }
  simdjson::dom::array schema;
  if (obj["schema"].get_array().get(schema)) {
    error = "'schema' is missing or not an array";
    return std::nullopt;
  }
  for (auto item : schema) {
    simdjson::dom::object c;
    column_entry col;
    std::string type;
    bool nullable = true;
    if (item.get_object().get(c) || !get_field(c, "name", col.name) || !get_field(c, "type", type)
        || c["nullable"].get_bool().get(nullable)) {
      error = "a schema entry lacks name, type or nullable";
      return std::nullopt;
    }
    auto t = persistence::parquet::parse_column_type(type);
    if (!t) {
      error = fmt::format("column '{}' has unknown type '{}'", col.name, type);
      return std::nullopt;
    }
    col.type = *t;
    col.nullable = nullable;
    s.schema.push_back(std::move(col));
  }
  if (!parse_files(obj, "added", s.added, error) || !parse_files(obj, "removed", s.removed, error)
      || !parse_files(obj, "files", s.files, error))
    return std::nullopt;
  return s;
}

table::table(persistence::object_store& store, std::string name, std::string writer,
             commit_policy policy)
  : store_(store), name_(std::move(name)), writer_(std::move(writer)), policy_(policy),
    jitter_(std::random_device{}()) {
}

std::string table::key(std::string_view relative) const {
  std::string out = name_;
  out += '/';
  out += relative;
  return out;
}

std::string table::url(const file_entry& f) const {
  return store_.url(key(f.path));
}

std::optional<snapshot> table::load(uint64_t id) {
  auto snap_key = key(std::string{meta_dir} + snapshot_file_name(id));
  auto text = store_.get(snap_key);
  if (!text)
    return std::nullopt;
  std::string error;
  auto parsed = parse_snapshot(*text, error);
  if (!parsed)
    throw std::runtime_error(fmt::format("{} is not a valid snapshot: {}", snap_key, error));
  return parsed;
}

void table::open() {
  auto pointer_key = key(std::string{meta_dir} + std::string{current_name});
  uint64_t start = 0;
  if (auto pointer = store_.get(pointer_key)) {
    auto name = *pointer;
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' '))
      name.pop_back();
    if (!is_snapshot_key(name))
      throw std::runtime_error(
        fmt::format("{} does not name a snapshot: \"{}\"", pointer_key, name));
    auto digits = name.substr(snap_prefix.size(), name.size() - snap_prefix.size() - snap_suffix.size());
    start = std::strtoull(digits.c_str(), nullptr, 10);
  }
  hint_id_ = start;
  snapshot newest;
  if (start > 0) {
    auto s = load(start);
    if (!s) {
      // The hinted snapshot was expired (the hint lagged behind other writers): the highest
      // snapshot in `_meta/` is the place to probe from.
      start = 0;
      for (auto& obj : store_.list(key(meta_dir))) {
        auto base = base_name(obj.key);
        if (!is_snapshot_key(base))
          continue;
        auto digits = std::string{base.substr(
          snap_prefix.size(), base.size() - snap_prefix.size() - snap_suffix.size())};
        start = std::max<uint64_t>(start, std::strtoull(digits.c_str(), nullptr, 10));
      }
      if (start > 0) {
        s = load(start);
        if (!s)
          throw std::runtime_error(fmt::format("{}: snapshot {} vanished while the table was "
                                               "opened (expired concurrently?); open again",
                                               name_, start));
      }
    }
    if (s)
      newest = std::move(*s);
  }
  // Snapshot ids are dense (n is only created from n-1): probe forward past the hint.
  while (auto next = load(newest.id + 1))
    newest = std::move(*next);
  current_ = std::move(newest);
}

bool table::publish_hint() {
  if (current_.id == 0 || current_.id == hint_id_)
    return false;
  store_.put(key(std::string{meta_dir} + std::string{current_name}),
             snapshot_file_name(current_.id) + "\n");
  hint_id_ = current_.id;
  return true;
}

bool table::probe_exclusive_create(std::string& error) {
  auto probe = key(std::string{meta_dir} + std::string{probe_name});
  auto body = fmt::format("{{\"writer\":\"{}\"}}\n", writer_);
  store_.put_if_absent(probe, body); // created now, or by an earlier probe
  if (!store_.put_if_absent(probe, body))
    return true;
  error = fmt::format("the store {} ignores conditional writes (PUT If-None-Match: * replaced "
                      "an existing object): concurrent writers could overwrite each other's "
                      "snapshots",
                      store_.url(probe));
  return false;
}

const snapshot& table::commit(std::vector<file_entry> added,
                              const std::vector<std::string>& removed_paths,
                              std::vector<column_entry> schema,
                              std::optional<log_offset> watermark, int64_t now_ms) {
  for (auto& f : added)
    if (f.writer.empty())
      f.writer = writer_;
  // Reload first: the in-memory snapshot may be old (an idle writer), and deriving from an
  // expired snapshot could re-create an expired snapshot number.
  open();
  auto delay = policy_.backoff;
  for (uint32_t attempt = 1;; ++attempt) {
    const auto& base = current_;
    snapshot next;
    next.id = base.id + 1;
    next.parent = base.id;
    next.timestamp_ms = now_ms;
    next.schema = schema;
    next.writer = writer_;
    next.writers = base.writers;
    bool claim_legacy = base.legacy() && !writer_.empty();
    if (claim_legacy) {
      // The first named writer of a format-1 table takes its (one) writer's state and files.
      auto legacy_state = next.writers.begin()->second;
      next.writers.clear();
      next.writers[writer_] = legacy_state;
    }
    auto& mine = next.writers[writer_];
    if (watermark)
      mine.offset_watermark = *watermark;
    mine.committed_ms = now_ms;
    next.offset_watermark = mine.offset_watermark;
    std::set<std::string> removed_set(removed_paths.begin(), removed_paths.end());
    size_t removed_found = 0;
    for (auto f : base.files) {
      if (claim_legacy && f.writer.empty())
        f.writer = writer_;
      if (removed_set.count(f.path) != 0) {
        next.removed.push_back(std::move(f));
        ++removed_found;
      } else {
        next.files.push_back(std::move(f));
      }
    }
    if (removed_found != removed_set.size()) {
      ++stats_.dropped;
      throw commit_conflict(fmt::format(
        "table {}: {} of the {} files this commit removes are no longer in snapshot {} (another "
        "commit removed them); the commit is dropped",
        name_, removed_set.size() - removed_found, removed_set.size(), base.id));
    }
    for (auto& f : added)
      next.files.push_back(f);
    next.added = added;
    auto name = snapshot_file_name(next.id);
    auto snap_key = key(std::string{meta_dir} + name);
    auto text = render_snapshot(next);
    bool created = store_.put_if_absent(snap_key, text);
    if (!created) {
      // A lost race, unless a retried request created it for us (a lost response).
      auto existing = store_.get(snap_key);
      created = existing && *existing == text;
    }
    if (created) {
      ++stats_.commits;
      if (hook_)
        hook_("after-snapshot-write");
      current_ = std::move(next);
      // The hint: a failure here does not undo the commit (readers probe past a stale hint).
      try {
        store_.put(key(std::string{meta_dir} + std::string{current_name}), name + "\n");
        hint_id_ = current_.id;
      } catch (const persistence::store_error&) {
        // nop: the next commit or `publish_hint` writes it
      }
      return current_;
    }
    ++stats_.conflicts;
    if (attempt >= policy_.max_attempts) {
      ++stats_.exhausted;
      open();
      throw persistence::store_error(
        fmt::format("table {}: commit gave up after {} attempts: each time another writer "
                    "committed snapshot {} first",
                    name_, attempt, next.id),
        true);
    }
    // Equal jitter: half the delay fixed, half random, so racing writers spread out.
    auto half = delay.count() / 2;
    auto wait = std::chrono::milliseconds{
      half + (half > 0 ? static_cast<long>(jitter_() % static_cast<unsigned long>(half + 1)) : 0)};
    std::this_thread::sleep_for(wait);
    delay = std::min(delay * 2, policy_.max_backoff);
    open();
  }
}

std::vector<snapshot> table::history() {
  std::vector<snapshot> out;
  for (auto& obj : store_.list(key(meta_dir))) {
    if (!is_snapshot_key(base_name(obj.key)))
      continue;
    auto text = store_.get(obj.key);
    if (!text)
      continue;
    std::string error;
    if (auto s = parse_snapshot(*text, error))
      out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(),
            [](const snapshot& a, const snapshot& b) { return a.id < b.id; });
  return out;
}

expire_result table::expire(std::chrono::milliseconds retention, int64_t now_ms) {
  expire_result result;
  open(); // "never the newest" must mean the newest now, not the one this writer saw last
  const int64_t cutoff = now_ms - retention.count();
  std::set<std::string> kept_files;  // listed by a snapshot that stays
  std::set<std::string> known_files; // listed by a snapshot that goes
  for (auto& obj : store_.list(key(meta_dir))) {
    auto base = base_name(obj.key);
    if (!is_snapshot_key(base))
      continue;
    auto text = store_.get(obj.key);
    if (!text)
      continue;
    std::string error;
    auto s = parse_snapshot(*text, error);
    if (!s)
      continue; // not ours to judge: left alone
    bool keep = s->id >= current_.id || s->timestamp_ms >= cutoff;
    for (auto& f : s->files)
      (keep ? kept_files : known_files).insert(f.path);
    if (!keep) {
      store_.remove(obj.key);
      ++result.snapshots_deleted;
    }
  }
  for (auto& f : current_.files)
    kept_files.insert(f.path);
  auto table_prefix = key("");
  for (auto& obj : store_.list(table_prefix)) {
    auto rel = std::string_view{obj.key}.substr(table_prefix.size());
    if (rel.substr(0, meta_dir.size()) == meta_dir)
      continue;
    auto base = base_name(rel);
    if (base.size() < part_suffix.size()
        || base.substr(base.size() - part_suffix.size()) != part_suffix)
      continue;
    std::string path{rel};
    if (kept_files.count(path) != 0)
      continue;
    bool expired = known_files.count(path) != 0;
    if (!expired) {
      auto created = part_created_ms(base);
      expired = created && *created < cutoff;
    }
    if (expired) {
      store_.remove(obj.key);
      ++result.files_deleted;
      result.bytes_deleted += obj.size;
    }
  }
  return result;
}

} // namespace sluice::lake
