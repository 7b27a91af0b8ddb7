#include "actors/sinks/lake/lake_sink.hpp"

#include "actors/sinks/registry.hpp"
#include "messages/codec.hpp"

#include <caf/config_value.hpp>

#include <algorithm>
#include <functional>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <msgpack.hpp>

namespace sluice {

namespace pq = persistence::parquet;

namespace {

/// Names of the envelope columns, in file order, then the leftover-attributes column.
constexpr const char* envelope_columns[] = {"id",        "type", "device_id", "profile_id",
                                            "ts",        "ingest_ts", "offset"};
constexpr const char* attrs_column = "attrs";
/// Column index of the first declared attribute column.
constexpr size_t first_declared_column = std::size(envelope_columns);
/// Names that collide with a hive partition key of the table's paths.
constexpr const char* partition_keys[] = {"date", "hour"};
/// Per-row overhead counted toward `max-file-bytes` besides the strings (three int64 fields).
constexpr size_t fixed_row_bytes = 3 * sizeof(int64_t);
/// Largest double that is still exactly an int64 when integral (2^63).
constexpr double int64_limit = 9223372036854775808.0;
/// The environment variable of the crash-injection test hook.
constexpr const char* crash_env = "SLUICE_LAKE_CRASH_AT";

bool valid_identifier(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      return false;
  return true;
}

bool valid_table_name(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.front() == '_')
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

bool is_s3(const std::string& root) {
  return root.rfind("s3://", 0) == 0;
}

std::string_view kind_name(attr_value::kind k) {
  switch (k) {
    case attr_value::kind::nil:
      return "null";
    case attr_value::kind::boolean:
      return "a boolean";
    case attr_value::kind::integer:
      return "an integer";
    case attr_value::kind::floating:
      return "a non-integral number";
    case attr_value::kind::string:
      return "a string";
    default:
      return "an array, object or out-of-range number";
  }
}

/// The JSON object of the attributes not in `declared`; empty when there are none.
std::string leftover_json(const std::string& attrs, const std::vector<std::string>& declared) {
  if (attrs.empty())
    return {};
  std::string filtered;
  const std::string* source = &attrs;
  bool any_declared = false;
  for (auto& name : declared)
    any_declared = any_declared || find_attr(attrs, name).has_value();
  if (any_declared) {
    try {
      auto handle = msgpack::unpack(attrs.data(), attrs.size());
      auto& obj = handle.get();
      if (obj.type != msgpack::type::MAP)
        return {};
      std::vector<const msgpack::object_kv*> keep;
      for (uint32_t i = 0; i < obj.via.map.size; ++i) {
        auto& kv = obj.via.map.ptr[i];
        bool drop = false;
        if (kv.key.type == msgpack::type::STR) {
          std::string_view k{kv.key.via.str.ptr, kv.key.via.str.size};
          drop = std::find(declared.begin(), declared.end(), k) != declared.end();
        }
        if (!drop)
          keep.push_back(&kv);
      }
      if (keep.empty())
        return {};
      msgpack::sbuffer buf;
      msgpack::packer<msgpack::sbuffer> pk{&buf};
      pk.pack_map(static_cast<uint32_t>(keep.size()));
      for (auto kv : keep) {
        pk.pack(kv->key);
        pk.pack(kv->val);
      }
      filtered.assign(buf.data(), buf.size());
      source = &filtered;
    } catch (const std::exception&) {
      return {}; // corrupt attrs (the decoders never produce them): no leftover column
    }
  }
  // Render through the same JSON renderer as every other sink (escaping, UTF-8 repair, binary as
  // base64): an envelope-less event renders as this fixed prefix followed by the attributes.
  static const std::string empty_prefix = [] {
    std::string out;
    append_json(out, event{});
    out.pop_back(); // the closing brace
    return out;
  }();
  event carrier;
  carrier.attrs = *source;
  std::string rendered;
  append_json(rendered, carrier);
  if (rendered.size() <= empty_prefix.size() + 1 || rendered.compare(0, empty_prefix.size(), empty_prefix) != 0)
    return {};
  // Skip the prefix and the comma that separates it from the first attribute.
  return "{" + rendered.substr(empty_prefix.size() + 1);
}

} // namespace

// -- config ------------------------------------------------------------------------------------

const option_table<lake_sink_config>& lake_sink_config::options() {
  static const auto table = [] {
    option_table<lake_sink_config> t;
    t.add(&lake_sink_config::root, "root",
          "local directory (relative to sluice.data-dir unless absolute) or s3://bucket/prefix")
      .add(&lake_sink_config::table, "table", "table name (directory under root); default: the "
                                              "sink's name")
      .add(&lake_sink_config::columns, "columns",
           "declared attribute columns \"name:type\" (string, int64, float64, boolean, "
           "timestamp_ms); other attributes go to the JSON column attrs")
      .add(&lake_sink_config::compression, "compression", "zstd, snappy or none")
      .add(&lake_sink_config::row_group_rows, "row-group-rows", "rows per Parquet row group")
      .add(&lake_sink_config::max_file_rows, "max-file-rows",
           "a partition's buffer becomes a file at this many rows")
      .add(&lake_sink_config::max_file_bytes, "max-file-bytes",
           "... or at this many bytes of buffered (uncompressed) event data")
      .add(&lake_sink_config::max_file_age, "max-file-age",
           "... or when its oldest row has waited this long")
      .add(&lake_sink_config::max_buffer_bytes, "max-buffer-bytes",
           "when all partitions together buffer more than this, the largest become files first "
           "(bounds memory, and how much of the log the table holds back)")
      .add(&lake_sink_config::retention, "retention",
           "snapshots older than this are pruned (never the current one); files no remaining "
           "snapshot lists are deleted once older than this")
      .add(&lake_sink_config::staging_dir, "staging-dir",
           "where files are written before they move into the table; default "
           "<data-dir>/lake-staging/<table>")
      .add(&lake_sink_config::endpoint, "endpoint",
           "S3 endpoint URL (path-style, e.g. http://127.0.0.1:9000); empty: AWS")
      .add(&lake_sink_config::region, "region", "S3 region; empty: AWS_REGION or us-east-1")
      .add(&lake_sink_config::access_key, "access-key", "S3 access key; empty: AWS_ACCESS_KEY_ID")
      .add(&lake_sink_config::secret_key, "secret-key",
           "S3 secret key; empty: AWS_SECRET_ACCESS_KEY")
      .add(&lake_sink_config::compact_interval, "compact-interval",
           "after a commit, at most once per this interval, merge small files of a partition "
           "(one bounded step); 0s: off (sluice lake compact still works while the node is "
           "stopped)")
      .add(&lake_sink_config::compact_min_files, "compact-min-files",
           "a partition is compacted when it has at least this many consecutive small files ...")
      .add(&lake_sink_config::compact_target_bytes, "compact-target-bytes",
           "... smaller than this many bytes; a merged file gathers small files up to this size")
      .add(&lake_sink_config::writer_lease, "writer-lease",
           "how long this node's lease on the table lasts unrenewed: another process with the "
           "same sluice.node writing the same table is refused while it is live")
      .add(&lake_sink_config::commit_attempts, "commit-attempts",
           "attempts of one commit while other nodes' writers keep committing first (each lost "
           "race reloads the newest snapshot and re-applies this node's files)");
    return t;
  }();
  return table;
}

std::string lake_sink_config::validate() const {
  if (root.empty())
    return "'root' must name a directory or s3://bucket/prefix";
  if (!valid_table_name(table))
    return fmt::format("'table' is \"{}\"; use letters, digits, '_', '-' or '.', not starting "
                       "with '_' or '.'",
                       table);
  std::set<std::string> names;
  for (auto& c : envelope_columns)
    names.insert(c);
  names.insert(attrs_column);
  for (auto& c : partition_keys)
    names.insert(c);
  for (auto& spec : columns) {
    auto colon = spec.find(':');
    if (colon == std::string::npos)
      return fmt::format("'columns' entry \"{}\" must be \"name:type\"", spec);
    auto name = spec.substr(0, colon);
    auto type = spec.substr(colon + 1);
    if (!valid_identifier(name))
      return fmt::format("'columns' entry \"{}\": the name must be letters, digits and '_' (a "
                         "top-level attribute)",
                         spec);
    if (!pq::parse_column_type(type))
      return fmt::format("'columns' entry \"{}\": type \"{}\" is not one of string, int64, "
                         "float64, boolean, timestamp_ms",
                         spec, type);
    if (!names.insert(name).second)
      return fmt::format("'columns' entry \"{}\": the name is taken (by an envelope column, "
                         "attrs, a partition key date/hour, or an earlier entry)",
                         spec);
  }
  if (!pq::parse_codec(compression))
    return fmt::format("'compression' is \"{}\"; use zstd, snappy or none", compression);
  if (max_buffer_bytes == 0)
    return "'max-buffer-bytes' must be positive";
  if (row_group_rows == 0 || max_file_rows == 0 || max_file_bytes == 0)
    return "'row-group-rows', 'max-file-rows' and 'max-file-bytes' must be positive";
  if (max_file_age.count() <= 0 || retention.count() <= 0)
    return "'max-file-age' and 'retention' must be positive";
  if (compact_interval.count() < 0)
    return "'compact-interval' must not be negative (0s turns compaction off)";
  if (compact_min_files < 2)
    return fmt::format("'compact-min-files' is {}; merging needs at least 2 files",
                       compact_min_files);
  if (compact_target_bytes == 0)
    return "'compact-target-bytes' must be positive";
  if (writer_lease.count() <= 0 || commit_attempts == 0)
    return "'writer-lease' and 'commit-attempts' must be positive";
  if (is_s3(root)) {
    persistence::object_store_config store = lake_store_config(*this);
    if (auto err = store.validate(); !err.empty())
      return err;
  }
  return {};
}

std::string load_lake_config(const caf::settings& section, const std::string& where,
                             const std::string& sink_name, const std::string& data_dir,
                             lake_sink_config& out) {
  if (auto err = lake_sink_config::options().load(out, section, where); !err.empty())
    return err;
  if (out.table.empty())
    out.table = sink_name;
  if (auto err = out.validate(); !err.empty())
    return where + ": " + err;
  if (!is_s3(out.root) && out.root.rfind("file://", 0) != 0)
    out.root = resolve_data_path(data_dir, out.root);
  if (out.staging_dir.empty())
    out.staging_dir = (std::filesystem::path{data_dir} / "lake-staging" / out.table).string();
  else
    out.staging_dir = resolve_data_path(data_dir, out.staging_dir);
  return {};
}

persistence::object_store_config lake_store_config(const lake_sink_config& cfg) {
  persistence::object_store_config out;
  out.root = cfg.root;
  out.endpoint = cfg.endpoint;
  out.region = cfg.region;
  out.access_key = cfg.access_key;
  out.secret_key = cfg.secret_key;
  return out;
}

pq::writer_options lake_writer_options(const lake_sink_config& cfg) {
  pq::writer_options out;
  out.compression = pq::parse_codec(cfg.compression).value_or(pq::codec::zstd);
  out.row_group_rows = cfg.row_group_rows;
  out.key_value_metadata.emplace_back("sluice.table", cfg.table);
  return out;
}

lake::compact_options lake_compact_options(const lake_sink_config& cfg) {
  lake::compact_options out;
  out.min_files = cfg.compact_min_files;
  out.target_file_bytes = cfg.compact_target_bytes;
  out.staging_dir = cfg.staging_dir;
  out.writer = lake_writer_options(cfg);
  out.writer_id = cfg.writer_id;
  return out;
}

// -- sink --------------------------------------------------------------------------------------

std::vector<lake::column_entry> lake_sink::schema_of(const lake_sink_config& cfg) {
  std::vector<lake::column_entry> out;
  for (auto name : envelope_columns) {
    lake::column_entry c;
    c.name = name;
    c.nullable = c.name == "profile_id";
    c.type = c.name == "ts" || c.name == "ingest_ts" ? pq::column_type::timestamp_ms
             : c.name == "offset"                    ? pq::column_type::int64
                                                     : pq::column_type::string;
    out.push_back(std::move(c));
  }
  for (auto& spec : cfg.columns) {
    auto colon = spec.find(':');
    lake::column_entry c;
    c.name = spec.substr(0, colon);
    c.type = pq::parse_column_type(spec.substr(colon + 1)).value_or(pq::column_type::string);
    out.push_back(std::move(c));
  }
  out.push_back(lake::column_entry{attrs_column, pq::column_type::string, true});
  return out;
}

lake_sink::lake_sink(lake_sink_config cfg, clock_fn clock)
  : cfg_(std::move(cfg)), clock_(std::move(clock)) {
  schema_ = schema_of(cfg_);
  for (auto& c : schema_)
    parquet_schema_.push_back(pq::column_spec{c.name, c.type, !c.nullable});
  writer_opts_ = lake_writer_options(cfg_);
  if (auto env = std::getenv(crash_env))
    crash_at_ = env;
}

lake_sink::~lake_sink() {
  stop();
}

int64_t lake_sink::now() const {
  if (clock_)
    return clock_();
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void lake_sink::maybe_crash(std::string_view point) const {
  if (!crash_at_.empty() && crash_at_ == point)
    ::raise(SIGKILL);
}

sink_status lake_sink::start(std::string& error) {
  if (table_)
    return sink_status::ok; // already open: the buffers stay
  if (!lock_) {
    // Single writer: `sluice lake compact` holds the same lock while it commits.
    std::string why;
    lock_ = lake::writer_lock::try_acquire(cfg_.staging_dir, "node", why);
    if (!lock_) {
      error = fmt::format("lake table {}: {}", cfg_.table, why);
      healthy_ = false;
      return sink_status::retry;
    }
  }
  try {
    if (!store_)
      store_ = persistence::open_object_store(lake_store_config(cfg_));
    lake::commit_policy policy;
    policy.max_attempts = static_cast<uint32_t>(cfg_.commit_attempts);
    auto t = std::make_unique<lake::table>(*store_, cfg_.table, cfg_.writer_id, policy);
    t->set_hook([this](std::string_view point) { maybe_crash(point); });
    t->open();
    // Concurrent writers rely on exclusive create: refuse a store that silently overwrites.
    std::string why;
    if (!t->probe_exclusive_create(why))
      throw persistence::store_error(why + "; use a store with conditional writes (AWS S3, "
                                           "MinIO, ...) or a local/shared directory",
                                     false);
    if (!lease_) {
      lease_ = lake::writer_lease::try_acquire(
        *t, std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.writer_lease), now(), why);
      if (!lease_)
        throw std::runtime_error(why);
    }
    t->publish_hint(); // a crash after the snapshot, before the hint: roll the hint forward
    table_ = std::move(t);
    reported_ = {};
  } catch (const std::exception& e) {
    // Even a permanent store error (bad credentials, a corrupt `current`) is the target's fault,
    // not the batch's: `retry` lets the engine's health check open the circuit instead of
    // dead-lettering events that the table will take once the store is fixed.
    error = fmt::format("lake table {} at {}: {}", cfg_.table, cfg_.root, e.what());
    healthy_ = false;
    return sink_status::retry;
  }
  std::error_code ec;
  std::filesystem::create_directories(cfg_.staging_dir, ec);
  if (ec) {
    error = fmt::format("cannot create staging dir {}: {}", cfg_.staging_dir, ec.message());
    healthy_ = false;
    return sink_status::retry;
  }
  // Files a crash left in staging were never committed: their rows come again with the replay.
  for (auto& entry : std::filesystem::directory_iterator{cfg_.staging_dir, ec})
    if (entry.path().filename() != lake::writer_lock_name)
      std::filesystem::remove(entry.path(), ec);
  remember_current();
  partitions_.clear();
  last_compact_ms_ = now(); // the first compaction step comes one interval after start
  taken_upto_ = seen_upto_ = table_->current().watermark_of(cfg_.writer_id);
  healthy_ = true;
  return sink_status::ok;
}

bool lake_sink::check(std::string& error) {
  if (!table_)
    return start(error) == sink_status::ok;
  try {
    // Reading the pointer proves the store answers with these credentials.
    store_->get(table_->key("_meta/current"));
    return true;
  } catch (const std::exception& e) {
    error = fmt::format("lake table {} at {}: {}", cfg_.table, cfg_.root, e.what());
    healthy_ = false;
    return false;
  }
}

void lake_sink::remember_current() {
  committed_.clear();
  committed_max_ = 0;
  // Only this writer's files: other nodes' offsets are positions in other logs.
  auto& snap = table_->current();
  for (auto& f : snap.files)
    if (snap.owned_by(f, cfg_.writer_id))
      remember(f);
}

void lake_sink::attach_metrics(metrics_registry& metrics, const metric_labels& labels) {
  commits_total_ = &metrics.get_counter("sluice_lake_commits_total",
                                        "Snapshots a lake sink committed (flushes and compactions)",
                                        labels);
  conflicts_total_ = &metrics.get_counter(
    "sluice_lake_commit_conflicts_total",
    "Commits that lost the race for a snapshot number to another writer and retried", labels);
  exhausted_total_ = &metrics.get_counter(
    "sluice_lake_commit_exhausted_total",
    "Commits that gave up after commit-attempts lost races (retried later)", labels);
  dropped_total_ = &metrics.get_counter(
    "sluice_lake_commits_dropped_total",
    "Compactions dropped because a concurrent commit removed one of their inputs", labels);
}

void lake_sink::report_commits() {
  if (!table_ || commits_total_ == nullptr)
    return;
  auto& s = table_->stats();
  commits_total_->inc(s.commits - reported_.commits);
  conflicts_total_->inc(s.conflicts - reported_.conflicts);
  exhausted_total_->inc(s.exhausted - reported_.exhausted);
  dropped_total_->inc(s.dropped - reported_.dropped);
  reported_ = s;
}

void lake_sink::remember(const lake::file_entry& f) {
  committed_[f.partition].emplace_back(f.min_offset, f.max_offset);
  committed_max_ = std::max(committed_max_, f.max_offset);
}

bool lake_sink::committed(const std::string& partition, log_offset o) const {
  if (o > committed_max_)
    return false;
  auto it = committed_.find(partition);
  if (it == committed_.end())
    return false;
  for (auto& [lo, hi] : it->second)
    if (lo <= o && o <= hi)
      return true;
  return false;
}

bool lake_sink::to_row(const event& e, row& out, std::string& reason) const {
  out.e.id = e.id;
  out.e.type = e.type;
  out.e.device_id = e.device_id;
  out.e.profile_id = e.profile_id;
  out.e.ts = e.ts;
  out.e.ingest_ts = e.ingest_ts;
  out.e.offset = e.offset;
  out.columns.clear();
  std::vector<std::string> declared;
  for (size_t c = first_declared_column; c + 1 < schema_.size(); ++c) {
    auto& col = schema_[c];
    declared.push_back(col.name);
    auto v = find_attr(e.attrs, col.name);
    if (!v || v->type == attr_value::kind::nil) {
      out.columns.emplace_back();
      continue;
    }
    auto mismatch = [&] {
      reason = fmt::format("attribute '{}' is {}, which does not fit column '{}' of type {}",
                           col.name, kind_name(v->type), col.name, pq::to_string(col.type));
      return false;
    };
    switch (col.type) {
      case pq::column_type::string:
        if (v->type != attr_value::kind::string)
          return mismatch();
        out.columns.emplace_back(std::string{v->s});
        break;
      case pq::column_type::int64:
      case pq::column_type::timestamp_ms:
        if (v->type == attr_value::kind::integer) {
          out.columns.emplace_back(v->i);
        } else if (v->type == attr_value::kind::floating && std::isfinite(v->d)
                   && std::trunc(v->d) == v->d && std::fabs(v->d) < int64_limit) {
          out.columns.emplace_back(static_cast<int64_t>(v->d));
        } else if (col.type == pq::column_type::timestamp_ms
                   && v->type == attr_value::kind::string) {
          auto ms = parse_rfc3339_ms(v->s);
          if (!ms) {
            reason = fmt::format("attribute '{}' is the string \"{}\", which is not RFC 3339 "
                                 "for column '{}' of type timestamp_ms",
                                 col.name, v->s, col.name);
            return false;
          }
          out.columns.emplace_back(*ms);
        } else {
          return mismatch();
        }
        break;
      case pq::column_type::float64:
        if (v->type == attr_value::kind::floating)
          out.columns.emplace_back(v->d);
        else if (v->type == attr_value::kind::integer)
          out.columns.emplace_back(static_cast<double>(v->i));
        else
          return mismatch();
        break;
      case pq::column_type::boolean:
        if (v->type != attr_value::kind::boolean)
          return mismatch();
        out.columns.emplace_back(v->b);
        break;
    }
  }
  out.e.attrs = leftover_json(e.attrs, declared);
  out.has_attrs = !out.e.attrs.empty();
  return true;
}

sink_status lake_sink::write(const event_batch& events, write_report& report) {
  if (!table_) {
    if (auto st = start(report.error); st != sink_status::ok)
      return st;
  }
  auto arrival = now();
  for (size_t i = 0; i < events.size(); ++i) {
    auto& e = events[i];
    row r;
    std::string reason;
    // Content checks come first, so a replayed or retried event is refused again, never lost.
    if (!to_row(e, r, reason)) {
      report.rejected.emplace_back(i, std::move(reason));
      continue;
    }
    if (e.offset <= taken_upto_)
      continue; // a retried batch, or at or below the committed watermark
    auto partition = lake::partition_of(e.ts);
    taken_upto_ = e.offset;
    if (committed(partition, e.offset))
      continue; // replay after a crash: already in a committed file
    auto& buf = partitions_[partition];
    if (buf.rows.empty())
      buf.first_arrival_ms = arrival;
    buf.bytes += r.e.id.size() + r.e.type.size() + r.e.device_id.size() + r.e.profile_id.size()
                 + r.e.attrs.size() + fixed_row_bytes;
    for (auto& c : r.columns)
      if (auto s = std::get_if<std::string>(&c))
        buf.bytes += s->size();
      else
        buf.bytes += sizeof(int64_t);
    buf.rows.push_back(std::move(r));
  }
  for (auto& e : events)
    seen_upto_ = std::max(seen_upto_, e.offset);
  std::vector<std::string> due;
  size_t total = 0;
  std::vector<std::pair<size_t, std::string>> by_size;
  for (auto& [name, buf] : partitions_) {
    total += buf.bytes;
    if (buf.rows.size() >= cfg_.max_file_rows || buf.bytes >= cfg_.max_file_bytes) {
      due.push_back(name);
      total -= buf.bytes;
    } else {
      by_size.emplace_back(buf.bytes, name);
    }
  }
  // Over the memory budget: the largest remaining partitions become files too.
  std::sort(by_size.begin(), by_size.end(), std::greater<>{});
  for (size_t i = 0; total > cfg_.max_buffer_bytes && i < by_size.size(); ++i) {
    due.push_back(by_size[i].second);
    total -= by_size[i].first;
  }
  if (due.empty())
    return sink_status::ok;
  return flush_partitions(due, report.error);
}

log_offset lake_sink::durable_upto(log_offset accepted_upto) const {
  log_offset lowest = 0;
  bool any = false;
  for (auto& [name, buf] : partitions_) {
    if (buf.rows.empty())
      continue;
    auto first = buf.rows.front().e.offset;
    lowest = any ? std::min(lowest, first) : first;
    any = true;
  }
  if (!any)
    return accepted_upto;
  return std::min(accepted_upto, lowest - 1);
}

log_offset lake_sink::watermark_without(const std::vector<std::string>& flushed) const {
  log_offset lowest = 0;
  bool any = false;
  for (auto& [name, buf] : partitions_) {
    if (buf.rows.empty() || std::find(flushed.begin(), flushed.end(), name) != flushed.end())
      continue;
    auto first = buf.rows.front().e.offset;
    lowest = any ? std::min(lowest, first) : first;
    any = true;
  }
  return any ? lowest - 1 : seen_upto_;
}

sink_status lake_sink::flush(bool final, std::string& error) {
  if (!table_) {
    if (auto st = start(error); st != sink_status::ok)
      return st;
  }
  auto t = now();
  auto max_age = std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.max_file_age).count();
  std::vector<std::string> due;
  for (auto& [name, buf] : partitions_)
    if (!buf.rows.empty() && (final || t - buf.first_arrival_ms >= max_age))
      due.push_back(name);
  if (due.empty()) {
    // Idle: keep the lease alive so no other process takes this writer id meanwhile.
    try {
      std::string why;
      if (lease_ && !lease_->renew(t, why)) {
        error = fmt::format("lake table {}: {}", cfg_.table, why);
        healthy_ = false;
        return sink_status::retry;
      }
    } catch (const std::exception&) {
      // nop: the store is down; the next flush or commit renews
    }
    return sink_status::ok;
  }
  return flush_partitions(due, error);
}

lake::file_entry lake_sink::write_file(const std::string& partition, const partition_buffer& buf) {
  auto file_name = lake::new_part_name(now());
  auto staged = (std::filesystem::path{cfg_.staging_dir} / file_name).string();
  int fd = ::open(staged.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw persistence::store_error(
      fmt::format("cannot create {}: {}", staged, std::strerror(errno)), true);
  lake::file_entry f;
  f.partition = partition;
  f.path = partition + "/" + file_name;
  try {
    pq::fd_sink out{fd};
    pq::writer w{parquet_schema_, writer_opts_, out};
    f.min_ts = f.max_ts = buf.rows.front().e.ts;
    f.min_offset = f.max_offset = buf.rows.front().e.offset;
    for (auto& r : buf.rows) {
      w.set(0, std::string_view{r.e.id});
      w.set(1, std::string_view{r.e.type});
      w.set(2, std::string_view{r.e.device_id});
      if (!r.e.profile_id.empty())
        w.set(3, std::string_view{r.e.profile_id});
      w.set(4, r.e.ts);
      w.set(5, r.e.ingest_ts);
      w.set(6, static_cast<int64_t>(r.e.offset));
      for (size_t c = 0; c < r.columns.size(); ++c) {
        auto col = first_declared_column + c;
        std::visit(
          [&](auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>)
              w.set(col, std::string_view{v});
            else if constexpr (!std::is_same_v<T, std::monostate>)
              w.set(col, v);
          },
          r.columns[c]);
      }
      if (r.has_attrs)
        w.set(parquet_schema_.size() - 1, std::string_view{r.e.attrs});
      w.end_row();
      f.min_ts = std::min(f.min_ts, r.e.ts);
      f.max_ts = std::max(f.max_ts, r.e.ts);
      f.min_offset = std::min(f.min_offset, r.e.offset);
      f.max_offset = std::max(f.max_offset, r.e.offset);
    }
    f.rows = w.rows();
    f.bytes = w.close();
    out.sync();
  } catch (const std::exception& e) {
    ::close(fd);
    std::error_code ec;
    std::filesystem::remove(staged, ec);
    throw persistence::store_error(fmt::format("writing {}: {}", staged, e.what()), true);
  }
  ::close(fd);
  try {
    store_->put_file(table_->key(f.path), staged);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(staged, ec);
    throw;
  }
  return f;
}

sink_status lake_sink::flush_partitions(const std::vector<std::string>& names,
                                        std::string& error) {
  std::vector<lake::file_entry> added;
  try {
    for (auto& name : names)
      added.push_back(write_file(name, partitions_.at(name)));
    maybe_crash("after-file-move");
    std::string why;
    if (!lease_ || !lease_->verify(now(), why))
      throw std::runtime_error(why);
    table_->commit(added, {}, schema_, watermark_without(names), now());
    report_commits();
  } catch (const std::exception& e) {
    report_commits();
    // Files already moved into the table but not committed are garbage for `expire`; the rows
    // stay buffered and go into new files on the next attempt. Always `retry`, as in `start`:
    // the batch is not at fault, and `check` tells the engine whether the store is down.
    error = fmt::format("lake table {}: {}", cfg_.table, e.what());
    healthy_ = false;
    return sink_status::retry;
  }
  for (auto& name : names)
    partitions_.erase(name);
  for (auto& f : added)
    remember(f);
  healthy_ = true;
  auto t = now();
  if (t - last_expire_ms_
      >= std::chrono::duration_cast<std::chrono::milliseconds>(expire_interval).count()) {
    last_expire_ms_ = t;
    try {
      table_->expire(std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.retention), t);
    } catch (const std::exception&) {
      // nop: retention is retried after the next commit; the data is safe either way
    }
  }
  maybe_compact(t);
  return sink_status::ok;
}

void lake_sink::maybe_compact(int64_t now_ms) {
  auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.compact_interval);
  if (interval.count() <= 0 || now_ms - last_compact_ms_ < interval.count())
    return;
  last_compact_ms_ = now_ms;
  auto opts = lake_compact_options(cfg_);
  // Bounded: one step merges at most about one target file's worth of input (the first group
  // always fits), so a write that triggers it blocks the runner for one file's read and write.
  opts.max_input_bytes = cfg_.compact_target_bytes;
  opts.now_ms = now_ms;
  opts.hook = [this](std::string_view point) { maybe_crash(point); };
  try {
    auto r = lake::compact(*table_, opts);
    report_commits();
    if (r.snapshot_id != 0) {
      ++compactions_;
      // The merged files replace their inputs' offset ranges by their union (same events).
      remember_current();
    }
  } catch (const std::exception&) {
    report_commits();
    // nop: `current` is unchanged (a merged file already moved is garbage for `expire`); the
    // next step, an interval later, tries again. The written data is safe either way.
  }
}

size_t lake_sink::buffered_rows() const noexcept {
  size_t n = 0;
  for (auto& [name, buf] : partitions_)
    n += buf.rows.size();
  return n;
}

bool lake_sink::healthy() const {
  return healthy_;
}

void lake_sink::stop() {
  // Buffered rows are not lost: the watermark kept their offsets out of the consumer offset, so
  // they are replayed after a restart. The engine calls flush(true) before stop on a drain.
  partitions_.clear();
  if (lease_)
    lease_->release(); // another process may take this writer id from now on
  lease_.reset();
  table_.reset();
  store_.reset();
  lock_.reset(); // `sluice lake compact` may commit from now on
}

std::string_view lake_sink::guarantee() const {
  return "exactly-once files: each committed snapshot records the log offsets its files hold; "
         "after a crash the replay skips offsets already in a committed file";
}

} // namespace sluice
