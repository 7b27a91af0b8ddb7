#pragma once

#include "actors/sinks/sink.hpp"

#include <cstddef>
#include <memory>
#include <string>

#include <sys/types.h>

namespace sluice {

/// Options of the `file` sink kind (see actors/sinks/file/README.md).
struct file_sink_config {
  /// NDJSON file to append to; relative paths are under the node's data dir.
  std::string path;
  /// fsync after every written batch (the offset is recorded only after the fsync).
  bool fsync = true;
  /// Write whole 4 KB blocks with O_DIRECT (no copy into the page cache); falls back to buffered
  /// writes where the file system refuses O_DIRECT.
  bool direct_io = true;

  static const option_table<file_sink_config>& options();
  std::string validate() const;
};

/// Appends events as NDJSON lines (envelope, `offset`, `ingest_ts`, `node`, attributes).
///
/// Lifecycle: `start` creates parent directories, opens the file, cuts a partial last line (a
/// power loss mid-write; its batch is replayed) and, with `direct-io`, opens a second descriptor
/// with O_DIRECT and reads the file's last partial 4 KB block into memory; `stop` closes both.
/// Concurrency: driven by one sink runner, never concurrently (the metrics gauge is atomic).
///
/// Cost: a batch is rendered into a reused 4 KB-aligned buffer (`render_json` into reserved room)
/// that starts with the file's last partial block; with direct I/O the buffer is one transparent
/// huge page (2 MB, `madvise`), so pinning it for a write takes one page, not 512. Whenever it
/// holds a chunk (~1.9 MB with direct I/O, about one write per batch; 256 KB buffered; see
/// file_sink.cpp) its whole blocks go to the
/// file with one `pwrite` through the O_DIRECT descriptor (the device reads them from the buffer:
/// no copy into the page cache, no writeback work in `fdatasync`) and the partial block's bytes
/// move to the buffer's front. At the batch's end the last partial block goes through the
/// buffered descriptor, so the file's size is always exactly the rendered bytes (a reader never
/// sees padding); the next batch rewrites that block whole with O_DIRECT. Then one `fdatasync`
/// per batch. Without `direct-io`, for a path that is not a regular file, or where O_DIRECT is
/// refused (at open, or EINVAL at the first write: logged once, then buffered for the sink's
/// lifetime), the same loop writes every chunk through the buffered descriptor. Events come by
/// pointer (`write_refs`), never copied.
///
/// Limits: one file, no rotation; the sink must be the file's only writer. A failed write is
/// truncated back to the size before the batch so a retry does not leave a torn line or part of
/// the batch. Guarantee: at-least-once; after a crash between the write and the offset commit the
/// same lines are written again, each carrying its `offset` so duplicates can be removed downstream.
class file_sink : public sink {
public:
  /// Block size of O_DIRECT writes: file offsets, lengths and the buffer's address are multiples.
  static constexpr size_t block_bytes = 4096;

  file_sink(file_sink_config cfg, std::string node);
  ~file_sink() override;
  sink_status start(std::string& error) override;
  /// Registers `sluice_file_sink_direct_io` (1 while whole blocks go through O_DIRECT).
  void attach_metrics(metrics_registry& metrics, const metric_labels& labels) override;
  sink_status write(const event_batch& events, write_report& report) override;
  sink_status write_refs(const event_refs& events, write_report& report) override;
  bool healthy() const override;
  void stop() override;
  std::string_view guarantee() const override;
  const std::string& path() const noexcept {
    return cfg_.path;
  }
  /// True while whole blocks are written with O_DIRECT (after `start`; false with `direct-io`
  /// off, before `start`, or after a fallback to buffered writes).
  bool direct_io() const noexcept {
    return direct_fd_ >= 0;
  }

private:
  /// Frees memory from `std::aligned_alloc`.
  struct free_deleter {
    void operator()(char* p) const noexcept;
  };

  /// Renders and appends `events` (an `event_batch` or `event_refs`), then fdatasyncs.
  template <class Events>
  sink_status write_all(const Events& events, write_report& report);
  /// Grows the render buffer to at least `bytes` (a multiple of `block_bytes`), keeping the first
  /// `used` bytes.
  void reserve(size_t bytes, size_t used);
  /// Writes out of the buffer's first `used` bytes, which belong at file offset `at`: with direct
  /// I/O its whole blocks (and with `last` the partial block after them, buffered); otherwise all
  /// of them. Moves what stays to the buffer's front and advances `at` and `used`. On failure
  /// truncates the file back to `size_` and sets `error`.
  bool put(size_t& used, off_t& at, bool last, std::string& error);
  /// `pwrite`s `n` bytes from `data` at `at` through `fd`, retrying short writes and EINTR;
  /// returns 0 or an errno.
  static int write_at(int fd, const char* data, size_t n, off_t at);
  /// Closes the O_DIRECT descriptor and logs why (once per sink): buffered writes from now on.
  void fall_back(std::string_view why);
  /// Truncates a partial last line (left by a power loss mid-write); returns an error text or "".
  std::string cut_torn_tail();

  file_sink_config cfg_;
  std::string node_;
  /// Render buffer kept across batches (4 KB-aligned, never zero-filled per event): up to one
  /// write chunk plus the largest line's bound plus a block.
  std::unique_ptr<char, free_deleter> buffer_;
  size_t capacity_ = 0;
  /// The file's last partial block (`size_ % block_bytes` bytes) with direct I/O: the next batch's
  /// buffer starts with it and rewrites that block whole.
  std::unique_ptr<char[]> tail_;
  size_t tail_used_ = 0;
  int fd_ = -1;
  /// The same file opened with O_DIRECT; -1 when direct I/O is off or refused.
  int direct_fd_ = -1;
  /// Set once O_DIRECT was refused: the sink stays buffered and logs it only once.
  bool direct_refused_ = false;
  /// Set after the first direct write succeeded: an EINVAL before it means O_DIRECT is refused.
  bool direct_proven_ = false;
  /// Size of the file after the last complete batch (the sink is its only writer): a failed
  /// write truncates back to it.
  off_t size_ = 0;
  bool healthy_ = false;
  gauge* direct_gauge_ = nullptr;
};

} // namespace sluice
