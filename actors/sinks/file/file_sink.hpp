#pragma once

#include "actors/sinks/sink.hpp"

#include <string>

#include <sys/types.h>

namespace sluice {

/// Options of the `file` sink kind (see actors/sinks/file/README.md).
struct file_sink_config {
  /// NDJSON file to append to; relative paths are under the node's data dir.
  std::string path;
  /// fsync after every written batch (the offset is recorded only after the fsync).
  bool fsync = true;

  static const option_table<file_sink_config>& options();
  std::string validate() const;
};

/// Appends events as NDJSON lines (envelope, `offset`, `ingest_ts`, `node`, attributes).
///
/// Lifecycle: `start` creates parent directories, opens the file with O_APPEND and cuts a partial
/// last line (a power loss mid-write; its batch is replayed); `stop` closes it. Concurrency:
/// driven by one sink runner, never concurrently. Cost: a batch is rendered into a reused buffer
/// (`render_json` into reserved room) and written in chunks of 256 KB of whole lines (the kernel's copy then reads cached bytes), one
/// `fdatasync` per batch; events come by pointer (`write_refs`), never copied. Limits: one file,
/// no rotation; a failed write is truncated back to the size before the batch so a retry does not
/// leave a torn line or part of the batch. Guarantee: at-least-once; after a crash between the write and the offset commit the same
/// lines are written again, each carrying its `offset` so duplicates can be removed downstream.
class file_sink : public sink {
public:
  file_sink(file_sink_config cfg, std::string node);
  ~file_sink() override;
  sink_status start(std::string& error) override;
  sink_status write(const event_batch& events, write_report& report) override;
  sink_status write_refs(const event_refs& events, write_report& report) override;
  bool healthy() const override;
  void stop() override;
  std::string_view guarantee() const override;
  const std::string& path() const noexcept {
    return cfg_.path;
  }

private:
  /// Renders and appends `events` (an `event_batch` or `event_refs`), then fdatasyncs.
  template <class Events>
  sink_status write_all(const Events& events, write_report& report);
  /// Writes the first `used` bytes of `buffer_`; on failure truncates the file back to `size_` and
  /// sets `error`.
  bool write_buffer(size_t used, std::string& error);
  /// Truncates a partial last line (left by a power loss mid-write); returns an error text or "".
  std::string cut_torn_tail();

  file_sink_config cfg_;
  std::string node_;
  /// Render buffer kept across batches; its size is its capacity (grown, never zero-filled per
  /// event): up to one write chunk plus the largest line's bound.
  std::string buffer_;
  int fd_ = -1;
  /// Size of the file after the last complete batch (the sink is its only writer): a failed
  /// write truncates back to it.
  off_t size_ = 0;
  bool healthy_ = false;
};

} // namespace sluice
