#include "actors/sinks/lake/lake_compaction.hpp"

#include "persistence/parquet_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <stdexcept>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <simdjson.h>

#include "messages/codec.hpp"

namespace sluice::lake {

namespace pq = persistence::parquet;

namespace {

/// The table's schema as the Parquet writer wants it.
std::vector<pq::column_spec> parquet_schema(const std::vector<column_entry>& schema) {
  std::vector<pq::column_spec> out;
  for (auto& c : schema)
    out.push_back(pq::column_spec{c.name, c.type, !c.nullable});
  return out;
}

/// Empty when `got` is the table's schema; otherwise what differs.
std::string schema_difference(const std::vector<pq::column_spec>& want,
                              const std::vector<pq::column_spec>& got) {
  if (want.size() != got.size())
    return fmt::format("it has {} columns, the table {}", got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i].name != got[i].name || want[i].type != got[i].type
        || want[i].required != got[i].required)
      return fmt::format("its column {} is '{}' {}{}, the table's '{}' {}{}", i, got[i].name,
                         pq::to_string(got[i].type), got[i].required ? " required" : "",
                         want[i].name, pq::to_string(want[i].type),
                         want[i].required ? " required" : "");
  return {};
}

/// Removes a staged file on every exit path that did not hand it to the store.
struct staged_file {
  std::string path;
  ~staged_file() {
    if (!path.empty()) {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  }
};

/// Writes one group's merged file into the staging dir and moves it into the table. Returns
/// nullopt with `reason` set when an input does not have the table's schema (nothing moved).
std::optional<file_entry> merge_group(table& t, const compaction_group& g,
                                      const std::vector<pq::column_spec>& schema,
                                      const compact_options& opts, std::string& reason) {
  auto file_name = new_part_name(opts.now_ms);
  staged_file staged{(std::filesystem::path{opts.staging_dir} / file_name).string()};
  int fd = ::open(staged.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    auto err = fmt::format("cannot create {}: {}", staged.path, std::strerror(errno));
    staged.path.clear(); // not ours to remove
    throw persistence::store_error(err, true);
  }
  file_entry out;
  out.partition = g.partition;
  out.path = g.partition + "/" + file_name;
  out.min_ts = g.inputs.front().min_ts;
  out.max_ts = g.inputs.front().max_ts;
  // Exactly-once: the sink fills a partition's buffer in log-offset order and a flush takes the
  // whole buffer, so each file of a partition is a contiguous slice of that partition's event
  // sequence, and files consecutive in `min_offset` order are adjacent slices (a replay after a
  // crash skips what a file covers and buffers the rest anew, in order). `plan_compaction` only
  // merges consecutive files, so [first.min_offset, last.max_offset] holds exactly the partition's
  // events of the merged files: the sink's replay skip (by partition and offset range) and every
  // reader of the ranges see the same events as before the merge. Copying the inputs in
  // `min_offset` order keeps the rows in offset order.
  out.writer = t.writer();
  out.min_offset = g.inputs.front().min_offset;
  out.max_offset = g.inputs.back().max_offset;
  try {
    pq::fd_sink sink{fd};
    pq::writer w{schema, opts.writer, sink};
    for (auto& in : g.inputs) {
      auto bytes = t.store().get(t.key(in.path));
      if (!bytes)
        throw persistence::store_error(
          fmt::format("{} is listed by snapshot {} but missing from the store", in.path,
                      t.current().id),
          false);
      pq::reader r{std::move(*bytes)};
      if (auto diff = schema_difference(schema, r.schema()); !diff.empty()) {
        reason = fmt::format("{} does not have the table's schema: {}", in.path, diff);
        ::close(fd);
        return std::nullopt;
      }
      if (r.rows() != in.rows)
        throw std::runtime_error(fmt::format("{} holds {} rows, its snapshot entry says {}",
                                             in.path, r.rows(), in.rows));
      pq::copy_rows(r, w);
      out.min_ts = std::min(out.min_ts, in.min_ts);
      out.max_ts = std::max(out.max_ts, in.max_ts);
    }
    out.rows = w.rows();
    out.bytes = w.close();
    sink.sync();
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0)
    throw persistence::store_error(
      fmt::format("closing {}: {}", staged.path, std::strerror(errno)), true);
  if (out.rows != g.rows)
    throw std::runtime_error(fmt::format("merged {} rows into {}, the inputs list {}", out.rows,
                                         out.path, g.rows));
  t.store().put_file(t.key(out.path), staged.path);
  staged.path.clear(); // consumed by put_file
  return out;
}

} // namespace

std::vector<compaction_group> plan_compaction(const snapshot& snap, const compact_options& opts) {
  std::map<std::string, std::vector<file_entry>> by_partition;
  // Only the compacting writer's files: offsets of different writers come from different logs,
  // so merging across writers would break "a file holds its partition's events between its
  // min_offset and max_offset" (the replay skip), and another writer never has to reconcile a
  // rewrite of its own files.
  for (auto& f : snap.files)
    if ((opts.partition.empty() || f.partition == opts.partition) && snap.owned_by(f, opts.writer_id))
      by_partition[f.partition].push_back(f);
  std::vector<compaction_group> out;
  uint64_t planned_bytes = 0;
  auto budget_left = [&] {
    return opts.max_input_bytes == 0 || planned_bytes < opts.max_input_bytes;
  };
  for (auto& [partition, files] : by_partition) {
    std::sort(files.begin(), files.end(), [](const file_entry& a, const file_entry& b) {
      return a.min_offset < b.min_offset;
    });
    compaction_group run;
    run.partition = partition;
    auto close_run = [&] {
      if (run.inputs.size() >= std::max<size_t>(opts.min_files, 2) && budget_left()) {
        planned_bytes += run.bytes;
        out.push_back(run);
      }
      run.inputs.clear();
      run.rows = run.bytes = 0;
    };
    for (auto& f : files) {
      bool small = f.bytes < opts.target_file_bytes;
      if (!small || run.bytes + f.bytes > opts.target_file_bytes)
        close_run();
      if (small) {
        run.inputs.push_back(f);
        run.rows += f.rows;
        run.bytes += f.bytes;
      }
    }
    close_run();
    if (!budget_left())
      break;
  }
  return out;
}

compact_result compact(table& t, const compact_options& opts) {
  compact_result result;
  // The table's writer compacts its own files: that is whose offsets the merged files hold.
  auto own = opts;
  own.writer_id = t.writer();
  auto groups = plan_compaction(t.current(), own);
  if (groups.empty())
    return result;
  std::error_code ec;
  std::filesystem::create_directories(opts.staging_dir, ec);
  if (ec)
    throw persistence::store_error(
      fmt::format("cannot create staging dir {}: {}", opts.staging_dir, ec.message()), true);
  auto schema = parquet_schema(t.current().schema);
  std::vector<file_entry> added;
  std::vector<std::string> removed;
  for (auto& g : groups) {
    std::string reason;
    auto merged = merge_group(t, g, schema, opts, reason);
    if (!merged) {
      result.skipped.emplace_back(g, std::move(reason));
      continue;
    }
    added.push_back(*merged);
    for (auto& in : g.inputs)
      removed.push_back(in.path);
    result.merged.push_back(compaction_output{g, std::move(*merged)});
  }
  if (added.empty())
    return result;
  if (opts.hook)
    opts.hook(compact_crash_point);
  auto schema_entries = t.current().schema;
  // The watermark stays; a concurrent commit that removed an input makes this `commit_conflict`.
  auto& snap = t.commit(std::move(added), removed, std::move(schema_entries), std::nullopt,
                        opts.now_ms);
  result.snapshot_id = snap.id;
  return result;
}

// -- writer_lock -------------------------------------------------------------------------------

std::optional<writer_lock> writer_lock::try_acquire(const std::string& staging_dir,
                                                    std::string_view role, std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(staging_dir, ec);
  if (ec) {
    error = fmt::format("cannot create staging dir {}: {}", staging_dir, ec.message());
    return std::nullopt;
  }
  auto path = (std::filesystem::path{staging_dir} / writer_lock_name).string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = fmt::format("cannot open lock file {}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto err = errno;
    // Who holds it: the holder wrote "<pid> <role>" after taking the lock.
    char buf[64] = {};
    auto n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) {
      error = fmt::format("cannot lock {}: {}", path, std::strerror(err));
      return std::nullopt;
    }
    long pid = 0;
    char holder[16] = {};
    bool known = n > 0 && std::sscanf(buf, "%ld %15s", &pid, holder) == 2 && pid > 0;
    if (known && std::string_view{holder} == "compact")
      error = fmt::format("the table is being compacted by another `sluice lake compact` (pid "
                          "{}); wait for it to finish",
                          pid);
    else if (known)
      error = fmt::format("the table is being written by a running node (pid {}); stop it or let "
                          "the node compact (lock {})",
                          pid, path);
    else
      error = fmt::format("the table is being written by a running node; stop it or let the "
                          "node compact (lock {})",
                          path);
    return std::nullopt;
  }
  auto text = fmt::format("{} {}\n", ::getpid(), role);
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) < 0) {
    // nop: the pid is only for others' error messages; the lock itself is held
  }
  return writer_lock{fd};
}

writer_lock::writer_lock(writer_lock&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

writer_lock& writer_lock::operator=(writer_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

writer_lock::~writer_lock() {
  if (fd_ >= 0)
    ::close(fd_); // releases the flock
}

// -- writer_lease ------------------------------------------------------------------------------

namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0)
    return "unknown";
  return buf;
}

std::string random_instance() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

} // namespace

writer_lease::writer_lease(persistence::object_store& store, std::string key, std::string writer,
                           std::chrono::milliseconds duration)
  : store_(&store), key_(std::move(key)), writer_(std::move(writer)), duration_(duration),
    host_(host_name()), instance_(random_instance()) {
}

std::string writer_lease::render(int64_t now_ms) const {
  std::string out = "{\"writer\":";
  append_json_string(out, writer_);
  out += ",\"instance\":";
  append_json_string(out, instance_);
  out += ",\"host\":";
  append_json_string(out, host_);
  fmt::format_to(std::back_inserter(out), ",\"pid\":{},\"heartbeat_ms\":{},\"lease_ms\":{}}}\n",
                 ::getpid(), now_ms, duration_.count());
  return out;
}

bool writer_lease::held_by_other(const std::string& text, int64_t now_ms, std::string& error) const {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(text).get_object().get(obj))
    return false; // unreadable: nobody's
  std::string_view instance, host;
  int64_t pid = 0, heartbeat = 0;
  if (obj["instance"].get_string().get(instance) || obj["host"].get_string().get(host)
      || obj["pid"].get_int64().get(pid) || obj["heartbeat_ms"].get_int64().get(heartbeat))
    return false;
  if (instance == instance_)
    return false;
  auto age = now_ms - heartbeat;
  if (age >= duration_.count())
    return false; // expired: the holder stopped renewing
  // A holder on this host whose process is gone crashed: no need to wait for the expiry.
  if (host == host_ && pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0
      && errno == ESRCH)
    return false;
  error = fmt::format("another process writes this table as writer '{}' (host {}, pid {}, lease "
                      "renewed {} ms ago, {}): node names (sluice.node) must be unique among "
                      "the writers of a table",
                      writer_, host, pid, age, store_->url(key_));
  return true;
}

std::optional<writer_lease> writer_lease::try_acquire(table& t, std::chrono::milliseconds duration,
                                                      int64_t now_ms, std::string& error) {
  writer_lease lease{t.store(), t.key("_meta/writers/" + t.writer() + ".json"), t.writer(),
                     duration};
  if (!lease.renew(now_ms, error, true))
    return std::nullopt;
  return lease;
}

bool writer_lease::renew(int64_t now_ms, std::string& error, bool force) {
  if (store_ == nullptr) {
    error = "the writer lease was released";
    return false;
  }
  if (!force && now_ms - renewed_ms_ < duration_.count() / 3)
    return true;
  if (auto text = store_->get(key_); text && held_by_other(*text, now_ms, error))
    return false;
  store_->put(key_, render(now_ms));
  renewed_ms_ = now_ms;
  return true;
}

bool writer_lease::verify(int64_t now_ms, std::string& error) {
  if (store_ == nullptr) {
    error = "the writer lease was released";
    return false;
  }
  auto text = store_->get(key_);
  if (text && held_by_other(*text, now_ms, error))
    return false;
  if (!text || text->find(instance_) == std::string::npos || now_ms - renewed_ms_ >= duration_.count() / 3) {
    store_->put(key_, render(now_ms)); // gone, expired and taken back, or due
    renewed_ms_ = now_ms;
  }
  return true;
}

void writer_lease::release() noexcept {
  if (store_ == nullptr)
    return;
  try {
    auto text = store_->get(key_);
    if (text && text->find(instance_) != std::string::npos)
      store_->remove(key_);
  } catch (const std::exception&) {
    // nop: the lease expires by itself
  }
  store_ = nullptr;
}

} // namespace sluice::lake
