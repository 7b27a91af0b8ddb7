#pragma once

#include "actors/sinks/lake/lake_compaction.hpp"
#include "actors/sinks/lake/lake_table.hpp"
#include "actors/sinks/sink.hpp"

#include <caf/settings.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace sluice {

/// Options of the `lake` sink kind (see actors/sinks/lake/README.md).
struct lake_sink_config {
  /// Local directory (relative to the data dir unless absolute) or `s3://bucket/prefix`.
  std::string root;
  /// Table name (directory under `root`); defaults to the sink's section name.
  std::string table;
  /// Declared attribute columns, `"name:type"` (types: string, int64, float64, boolean,
  /// timestamp_ms).
  std::vector<std::string> columns;
  /// zstd, snappy or none.
  std::string compression = "zstd";
  /// Rows per Parquet row group.
  size_t row_group_rows = 128 * 1024;
  /// A partition's buffer becomes a file at this many rows ...
  size_t max_file_rows = 1000000;
  /// ... or this many bytes of (uncompressed) event data ...
  size_t max_file_bytes = size_t{128} << 20;
  /// ... or when its oldest row has waited this long.
  caf::timespan max_file_age = std::chrono::seconds{60};
  /// When all partitions together buffer more than this, the largest are flushed first: bounds
  /// the sink's memory however many partitions late events open.
  size_t max_buffer_bytes = size_t{64} << 20;
  /// Snapshots older than this are pruned (never the current one); files no remaining snapshot
  /// lists are deleted once older than this.
  caf::timespan retention = std::chrono::hours{24 * 7};
  /// Where files are written before they move into the table; default
  /// `<data-dir>/lake-staging/<table>`.
  std::string staging_dir;
  /// S3 only: endpoint URL (empty: AWS), region, credentials (empty: environment).
  std::string endpoint;
  std::string region;
  std::string access_key;
  std::string secret_key;
  /// After a commit, at most once per this interval, the sink compacts small files (one bounded
  /// step: groups up to `compact_target_bytes` of input); zero turns it off.
  caf::timespan compact_interval = std::chrono::minutes{5};
  /// A partition is compacted when it has at least this many consecutive small files ...
  size_t compact_min_files = 2;
  /// ... smaller than this (bytes); a merged file gathers small files up to this size.
  size_t compact_target_bytes = size_t{64} << 20;
  /// How long a writer's lease on the table (`_meta/writers/<writer>.json`) lasts without
  /// renewal: a second process with the same node name is refused while it is live.
  caf::timespan writer_lease = std::chrono::seconds{30};
  /// Attempts of one commit when other writers keep taking the snapshot number first.
  size_t commit_attempts = 16;
  /// This node's writer id in the table (`sluice.node`; set by the sink registry, not an option):
  /// watermark, files and lease are per writer.
  std::string writer_id = "node-1";

  static const option_table<lake_sink_config>& options();
  /// Empty when valid; otherwise what is wrong, naming the option.
  std::string validate() const;
};

/// Loads one `[sinks.<name>]` section of kind `lake` (without the engine keys): options, defaults
/// that depend on the section (`table`, `staging-dir`) and paths resolved under `data_dir`.
/// Returns an error text naming `where` and the key, or empty.
std::string load_lake_config(const caf::settings& section, const std::string& where,
                             const std::string& sink_name, const std::string& data_dir,
                             lake_sink_config& out);

/// The object store options of a lake config.
persistence::object_store_config lake_store_config(const lake_sink_config& cfg);

/// The Parquet writer options of a lake config (compression, row groups, table name metadata).
persistence::parquet::writer_options lake_writer_options(const lake_sink_config& cfg);

/// The compaction options of a lake config (`compact-min-files`, `compact-target-bytes`,
/// `staging-dir`, writer options); `now_ms`, `partition`, budget and hook are the caller's.
lake::compact_options lake_compact_options(const lake_sink_config& cfg);

/// Writes events as Parquet files into a lake table, partitioned by event time
/// (`date=YYYY-MM-DD/hour=HH` of `ts`, UTC), committing each set of new files as one snapshot.
///
/// Lifecycle: `start` (once; later calls keep the open table and its buffers) takes the table's
/// `writer_lock` (held until `stop`; `retry` while `sluice lake compact` holds it), opens the
/// object store and the table (reading `current`), cleans the staging dir, and remembers which
/// log offsets the committed files hold. `write` converts each event to a row (refusing events whose
/// attributes do not fit their declared column, per event, with the field's name), appends it to its partition's buffer, and flushes partitions that reached
/// `max-file-rows` or `max-file-bytes`; `flush(false)` also flushes partitions whose oldest row
/// waited `max-file-age`; `flush(true)` flushes every partition. A flush writes one file per
/// partition to the staging dir (fsynced), moves it into the table (`put_file`), then commits one
/// snapshot for all of them. After a commit, expired snapshots and files are deleted (at most once
/// per `expire_interval`), and at most once per `compact-interval` one bounded compaction step
/// runs (`lake::compact` with a byte budget of `compact-target-bytes`, on the runner's thread,
/// after the flushed buffers are gone, never in the middle of a batch); the first step comes one
/// interval after `start`. A failed step changes nothing (it is retried an interval later).
///
/// Exactly-once files: a partition's buffer receives its events in offset order and a flush takes
/// the whole buffer, so a file holds exactly its partition's accepted events between its
/// `min_offset` and `max_offset`. `durable_upto` answers the offset below which everything
/// accepted is committed (the snapshot's `offset_watermark`); on replay after a crash, an event
/// that a committed file of its partition already covers is skipped, and a retried batch is not
/// buffered twice.
///
/// Concurrency: driven by one sink runner, never concurrently. Limits: memory holds every buffered
/// row (bounded per partition by `max-file-rows`/`max-file-bytes`/`max-file-age`; the number of
/// partitions open at once is the spread of event times within `max-file-age`). A store failure
/// keeps the buffers (nothing is lost) and returns `retry`, transient or not (the batch is never at
/// fault; `check` probes the store so the engine opens its circuit while the store is down);
/// `healthy` is false until the next successful flush.
class lake_sink : public sink {
public:
  /// Milliseconds since the epoch; injectable for tests.
  using clock_fn = std::function<int64_t()>;

  /// How often, at most, the sink runs retention after a commit.
  static constexpr std::chrono::minutes expire_interval{1};

  explicit lake_sink(lake_sink_config cfg, clock_fn clock = {});
  ~lake_sink() override;

  sink_status start(std::string& error) override;
  void attach_metrics(metrics_registry& metrics, const metric_labels& labels) override;
  sink_status write(const event_batch& events, write_report& report) override;
  log_offset durable_upto(log_offset accepted_upto) const override;
  sink_status flush(bool final, std::string& error) override;
  bool healthy() const override;
  /// Opens the table when not open yet; otherwise reads `_meta/current` to probe the store.
  bool check(std::string& error) override;
  void stop() override;
  std::string_view guarantee() const override;

  /// The table (valid after `start`).
  const lake::table& table() const {
    return *table_;
  }
  /// Rows buffered across every partition, not yet in a committed file.
  size_t buffered_rows() const noexcept;
  /// Partitions with buffered rows.
  size_t open_partitions() const noexcept {
    return partitions_.size();
  }
  /// Compaction steps that committed a snapshot since construction.
  size_t compactions() const noexcept {
    return compactions_;
  }

  /// The table's columns: envelope, declared attributes, `attrs`.
  static std::vector<lake::column_entry> schema_of(const lake_sink_config& cfg);

private:
  using cell = std::variant<std::monostate, std::string, int64_t, double, bool>;

  struct row {
    event e;              // envelope; `attrs` replaced by the leftover JSON (empty: null)
    std::vector<cell> columns;
    bool has_attrs = false;
  };

  struct partition_buffer {
    std::vector<row> rows;
    size_t bytes = 0;
    int64_t first_arrival_ms = 0;
  };

  bool to_row(const event& e, row& out, std::string& reason) const;
  bool committed(const std::string& partition, log_offset o) const;
  void remember(const lake::file_entry& f);
  sink_status flush_partitions(const std::vector<std::string>& names, std::string& error);
  lake::file_entry write_file(const std::string& partition, const partition_buffer& buf);
  void maybe_crash(std::string_view point) const;
  log_offset watermark_without(const std::vector<std::string>& flushed) const;
  void maybe_compact(int64_t now_ms);
  void remember_current();
  /// Adds what the table's commits did since the last call to the `/metrics` counters.
  void report_commits();
  int64_t now() const;

  lake_sink_config cfg_;
  clock_fn clock_;
  std::vector<lake::column_entry> schema_;
  std::vector<persistence::parquet::column_spec> parquet_schema_;
  persistence::parquet::writer_options writer_opts_;
  std::unique_ptr<persistence::object_store> store_;
  std::unique_ptr<lake::table> table_;
  std::map<std::string, partition_buffer> partitions_;
  /// Offset ranges of the current snapshot's files, per partition.
  std::map<std::string, std::vector<std::pair<log_offset, log_offset>>> committed_;
  log_offset committed_max_ = 0;
  /// Highest offset taken into a buffer or a file (a retried batch is skipped up to here).
  log_offset taken_upto_ = 0;
  /// Highest offset any written batch carried.
  log_offset seen_upto_ = 0;
  int64_t last_expire_ms_ = 0;
  int64_t last_compact_ms_ = 0;
  size_t compactions_ = 0;
  /// Held from `start` to `stop`: no other writer (`sluice lake compact`) commits meanwhile.
  std::optional<lake::writer_lock> lock_;
  /// Held from `start` to `stop`: no other process commits as this writer id.
  std::optional<lake::writer_lease> lease_;
  /// `/metrics` counters (null until `attach_metrics`) and the table stats already added to them.
  counter* commits_total_ = nullptr;
  counter* conflicts_total_ = nullptr;
  counter* exhausted_total_ = nullptr;
  counter* dropped_total_ = nullptr;
  lake::commit_stats reported_;
  std::string crash_at_;
  bool healthy_ = false;
};

} // namespace sluice
