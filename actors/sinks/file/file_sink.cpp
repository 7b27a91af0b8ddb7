#include "actors/sinks/file/file_sink.hpp"

#include "actors/log.hpp"
#include "messages/codec.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace sluice {

const option_table<file_sink_config>& file_sink_config::options() {
  static const auto table = [] {
    option_table<file_sink_config> t;
    t.add(&file_sink_config::path, "path",
          "NDJSON file the sink appends to; relative to sluice.data-dir unless absolute")
      .add(&file_sink_config::fsync, "fsync",
           "fsync after each batch; the sink's offset advances only after the data is on disk")
      .add(&file_sink_config::direct_io, "direct-io",
           "write whole 4 KB blocks with O_DIRECT, bypassing the page cache (the last partial "
           "block of a batch is written buffered); buffered writes where the file system refuses "
           "O_DIRECT");
    return t;
  }();
  return table;
}

std::string file_sink_config::validate() const {
  if (path.empty())
    return "'path' must name a file";
  return {};
}

void file_sink::free_deleter::operator()(char* p) const noexcept {
  std::free(p);
}

file_sink::file_sink(file_sink_config cfg, std::string node)
  : cfg_(std::move(cfg)), node_(std::move(node)) {
}

file_sink::~file_sink() {
  direct_gauge_ = nullptr; // the registry may be gone already
  stop();
}

void file_sink::attach_metrics(metrics_registry& metrics, const metric_labels& labels) {
  direct_gauge_ = &metrics.get_gauge(
    "sluice_file_sink_direct_io",
    "1 while the file sink writes whole blocks with O_DIRECT; 0 when it writes through the page "
    "cache (direct-io off, or O_DIRECT refused by the file system)",
    labels);
  direct_gauge_->set(direct_io() ? 1 : 0);
}

sink_status file_sink::start(std::string& error) {
  if (fd_ >= 0)
    return sink_status::ok;
  std::error_code ec;
  auto parent = std::filesystem::path{cfg_.path}.parent_path();
  if (!parent.empty())
    std::filesystem::create_directories(parent, ec);
  // Read-write: the torn-tail check and the direct path's last partial block read it back.
  fd_ = ::open(cfg_.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    error = fmt::format("cannot open {}: {}", cfg_.path, std::strerror(errno));
    healthy_ = false;
    return errno == EACCES || errno == EISDIR ? sink_status::error : sink_status::retry;
  }
  auto fail = [&](std::string err) {
    error = std::move(err);
    stop();
    healthy_ = false;
    return sink_status::retry;
  };
  if (auto err = cut_torn_tail(); !err.empty())
    return fail(std::move(err));
  struct stat st{};
  if (::fstat(fd_, &st) != 0)
    return fail(fmt::format("fstat {}: {}", cfg_.path, std::strerror(errno)));
  size_ = st.st_size;
  tail_used_ = 0;
  if (cfg_.direct_io && !direct_refused_ && S_ISREG(st.st_mode)) {
    direct_fd_ = ::open(cfg_.path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (direct_fd_ < 0) {
      fall_back(fmt::format("open with O_DIRECT: {}", std::strerror(errno)));
    } else {
      // The next batch rewrites the last partial block whole: keep its bytes.
      if (!tail_)
        tail_.reset(new char[block_bytes]);
      tail_used_ = static_cast<size_t>(size_) % block_bytes;
      if (tail_used_ > 0) {
        auto n = ::pread(fd_, tail_.get(), tail_used_, size_ - static_cast<off_t>(tail_used_));
        if (n != static_cast<ssize_t>(tail_used_))
          return fail(fmt::format("read {}: {}", cfg_.path,
                                  n < 0 ? std::strerror(errno) : "short read"));
      }
    }
  }
  if (direct_gauge_)
    direct_gauge_->set(direct_io() ? 1 : 0);
  healthy_ = true;
  return sink_status::ok;
}

void file_sink::fall_back(std::string_view why) {
  if (direct_fd_ >= 0) {
    ::close(direct_fd_);
    direct_fd_ = -1;
  }
  tail_used_ = 0;
  if (direct_gauge_)
    direct_gauge_->set(0);
  if (direct_refused_)
    return;
  direct_refused_ = true;
  log_json("info", "file sink: O_DIRECT refused, writing through the page cache",
           {{"path", cfg_.path}, {"reason", why}});
}

std::string file_sink::cut_torn_tail() {
  // A power loss during a write can leave part of a line at the end. Its batch's offset was never
  // committed, so the batch comes again: drop the partial line instead of gluing the next one to it.
  struct stat st{};
  if (::fstat(fd_, &st) != 0)
    return fmt::format("fstat {}: {}", cfg_.path, std::strerror(errno));
  constexpr off_t chunk = 4096;
  char buf[chunk];
  off_t end = st.st_size;
  while (end > 0) {
    off_t from = end > chunk ? end - chunk : 0;
    auto n = ::pread(fd_, buf, static_cast<size_t>(end - from), from);
    if (n < 0)
      return fmt::format("read {}: {}", cfg_.path, std::strerror(errno));
    for (auto i = n; i > 0; --i) {
      if (buf[i - 1] != '\n')
        continue;
      auto keep = from + i;
      if (keep != st.st_size && ::ftruncate(fd_, keep) != 0)
        return fmt::format("truncate {}: {}", cfg_.path, std::strerror(errno));
      return {};
    }
    end = from;
  }
  // No newline at all: the whole file is one partial line.
  if (st.st_size > 0 && ::ftruncate(fd_, 0) != 0)
    return fmt::format("truncate {}: {}", cfg_.path, std::strerror(errno));
  return {};
}

namespace {

/// Rendered bytes per buffered write. The kernel copies them into the page cache: from a buffer
/// this size that copy reads what was just rendered from the CPU cache, while one write of a whole
/// batch (up to tens of MB in a catch-up) reads it back from memory, which cost ~8x the kernel CPU
/// here (300 MB: 0.87 s in 20 MB writes, 0.10 s in 256 KB writes).
constexpr size_t buffered_chunk_bytes = 256 * 1024;

/// Size and alignment of a transparent huge page (x86-64, arm64 with 4 KB pages): render
/// buffers of at least this size are made of whole ones (see `file_sink::reserve`).
constexpr size_t huge_page_bytes = 2048 * 1024;

/// Room in the render buffer beyond a write chunk and a kept partial block: lines whose bound
/// (`json_render_bound`, several times their size) fits in it never grow the buffer.
constexpr size_t line_room_bytes = 64 * 1024;

/// Rendered bytes per O_DIRECT write. The device reads the buffer (DMA), so there is no cache
/// argument; the size sets the number of writes per batch, each with its device notification
/// (a VM exit on virtio), its pinning of the buffer's pages and a wait for the device. ~2 MB holds
/// a typical batch (~1.6 MB of NDJSON) in one write. Sink thread CPU per reference event with
/// 5,000-event batches and fdatasync (bench/sink_bench.cpp `file_sink_append`, load 4-7, medians
/// of 4-5 runs): 256 KB 266 ns, 512 KB 246-267 ns, 1 MB 255 ns, 2 MB 173-204 ns; buffered in
/// 256 KB writes 257 ns. Smaller chunks keep the render buffer in L2 but pay more writes. The
/// chunk leaves room for a line and a block in one huge page, so the buffer is exactly one.
constexpr size_t direct_chunk_bytes = huge_page_bytes - line_room_bytes - file_sink::block_bytes;


constexpr size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

const event& deref(const event& e) {
  return e;
}

const event& deref(const event* e) {
  return *e;
}

} // namespace

sink_status file_sink::write(const event_batch& events, write_report& report) {
  return write_all(events, report);
}

sink_status file_sink::write_refs(const event_refs& events, write_report& report) {
  return write_all(events, report);
}

void file_sink::reserve(size_t bytes, size_t used) {
  bytes = round_up(bytes, block_bytes);
  char* p = nullptr;
  if (bytes >= huge_page_bytes) {
    // Whole transparent huge pages: each O_DIRECT write pins its buffer's pages (get_user_pages,
    // once per 4 KB page otherwise), and rendering walks the buffer with one TLB entry.
    bytes = round_up(bytes, huge_page_bytes);
    p = static_cast<char*>(std::aligned_alloc(huge_page_bytes, bytes));
    if (p)
      ::madvise(p, bytes, MADV_HUGEPAGE); // a hint: without THP the buffer works as it is
  } else {
    p = static_cast<char*>(std::aligned_alloc(block_bytes, bytes));
  }
  if (!p)
    throw std::bad_alloc{};
  if (used > 0)
    std::memcpy(p, buffer_.get(), used);
  buffer_.reset(p);
  capacity_ = bytes;
}

template <class Events>
sink_status file_sink::write_all(const Events& events, write_report& report) {
  auto& error = report.error;
  if (fd_ < 0) {
    if (auto st = start(error); st != sink_status::ok)
      return st;
  }
  // Lines are rendered into a buffer kept across batches, through a raw pointer into room reserved
  // per event (`json_render_bound`, no capacity check or zero-fill per byte), and written whenever
  // it holds a chunk (see buffered_chunk_bytes, direct_chunk_bytes and `put`). The first `used`
  // bytes of the buffer belong at file offset `at`: with direct I/O they start with the file's
  // last partial block, so that `at` and every write through O_DIRECT are block-aligned.
  size_t chunk = direct_io() ? direct_chunk_bytes : buffered_chunk_bytes;
  size_t buffer_bytes = chunk + line_room_bytes + block_bytes;
  if (capacity_ < buffer_bytes)
    reserve(buffer_bytes, 0);
  size_t used = tail_used_;
  off_t at = size_ - static_cast<off_t>(tail_used_);
  if (used > 0)
    std::memcpy(buffer_.get(), tail_.get(), used);
  for (auto& e : events) {
    const event& ev = deref(e);
    size_t room = json_render_bound(ev, node_) + 1; // + the newline
    if (used + room > capacity_)
      reserve(used + room, used);
    char* end = render_json(buffer_.get() + used, ev, node_);
    *end++ = '\n';
    used = static_cast<size_t>(end - buffer_.get());
    if (used >= chunk && !put(used, at, false, error))
      return sink_status::retry;
  }
  if (at + static_cast<off_t>(used) > size_ && !put(used, at, true, error))
    return sink_status::retry;
  // What stays in the buffer is the file's new last partial block (direct I/O only).
  size_ = at + static_cast<off_t>(used);
  tail_used_ = direct_io() ? used : 0;
  if (tail_used_ > 0)
    std::memcpy(tail_.get(), buffer_.get(), tail_used_);
  if (capacity_ > buffer_bytes) { // grown for a huge line: give it back
    buffer_.reset();
    capacity_ = 0;
  }
  if (cfg_.fsync && ::fdatasync(fd_) != 0) {
    error = fmt::format("fdatasync {}: {}", cfg_.path, std::strerror(errno));
    healthy_ = false;
    return sink_status::retry;
  }
  healthy_ = true;
  return sink_status::ok;
}

bool file_sink::put(size_t& used, off_t& at, bool last, std::string& error) {
  char* buf = buffer_.get();
  auto fail = [&](int err) {
    error = fmt::format("write {}: {}", cfg_.path, std::strerror(err));
    // Undo the whole batch (earlier chunks too) so the retry does not leave half of it behind.
    // Bytes the direct path rewrote below `size_` were the same bytes: the file stays intact.
    [[maybe_unused]] auto rc = ::ftruncate(fd_, size_);
    healthy_ = false;
    return false;
  };
  if (direct_fd_ >= 0) {
    size_t whole = used / block_bytes * block_bytes;
    int err = whole > 0 ? write_at(direct_fd_, buf, whole, at) : 0;
    if (err == EINVAL && !direct_proven_) {
      // Refused at the first write (some file systems accept the open): the same bytes go
      // through the page cache below. Later, EINVAL is an error like any other.
      fall_back(fmt::format("write with O_DIRECT: {}", std::strerror(err)));
    } else if (err != 0) {
      return fail(err);
    } else {
      direct_proven_ = direct_proven_ || whole > 0;
      at += static_cast<off_t>(whole);
      used -= whole;
      std::memmove(buf, buf + whole, used);
      if (!last || used == 0)
        return true;
      // The last partial block goes through the page cache, so the file ends exactly at the
      // rendered bytes; the next batch rewrites the block whole with O_DIRECT. Only bytes past
      // the file's end are new.
      off_t from = std::max(at, size_);
      auto skip = static_cast<size_t>(from - at);
      err = write_at(fd_, buf + skip, used - skip, from);
      return err == 0 || fail(err);
    }
  }
  if (int err = write_at(fd_, buf, used, at); err != 0)
    return fail(err);
  at += static_cast<off_t>(used);
  used = 0;
  return true;
}

int file_sink::write_at(int fd, const char* data, size_t n, off_t at) {
  while (n > 0) {
    auto w = ::pwrite(fd, data, n, at);
    if (w < 0 && errno == ESPIPE) // a pipe or FIFO as the sink's path: no offsets
      w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    data += w;
    n -= static_cast<size_t>(w);
    at += w;
  }
  return 0;
}

bool file_sink::healthy() const {
  return healthy_;
}

void file_sink::stop() {
  if (direct_fd_ >= 0) {
    ::close(direct_fd_);
    direct_fd_ = -1;
  }
  if (fd_ >= 0) {
    if (cfg_.fsync)
      ::fdatasync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  if (direct_gauge_)
    direct_gauge_->set(0);
}

std::string_view file_sink::guarantee() const {
  return "at-least-once: after a crash a batch may be written twice; every line carries its log "
         "offset for deduplication";
}

} // namespace sluice
