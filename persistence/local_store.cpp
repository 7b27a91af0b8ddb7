// Local directory object store: temporary file + fsync + rename + directory fsync.

#include "persistence/local_store.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::persistence {

namespace fs = std::filesystem;

namespace {

/// Copy buffer for put_file across file systems: large enough to keep syscalls cheap.
constexpr size_t copy_buffer_bytes = size_t{1} << 20;
constexpr mode_t file_mode = 0644;
constexpr mode_t dir_mode = 0755;

/// Distinguishes temporary files of several stores (or threads) in one process.
std::atomic<uint64_t> temp_counter{0};

[[noreturn]] void throw_errno(const std::string& what, int err) {
  std::string msg = "local object store: " + what + ": " + std::strerror(err);
  bool transient = false;
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      msg += " (the disk is full: free space or grow the volume; the write can be retried)";
      transient = true;
      break;
    case EMFILE:
    case ENFILE:
      msg += " (out of file descriptors; the operation can be retried)";
      transient = true;
      break;
    case EIO:
      msg += " (I/O error: the disk or file system is failing; check the kernel log)";
      break;
    case EROFS:
      msg += " (read-only file system)";
      break;
    case EACCES:
    case EPERM:
      msg += " (check the permissions of the store's directory)";
      break;
    default:
      break;
  }
  throw store_error(msg, transient);
}

/// A file descriptor closed on scope exit (errors of close on a read-only fd are irrelevant;
/// writers call `close_checked`).
class fd_guard {
public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const noexcept {
    return fd_;
  }
  void close_checked(const std::string& path) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
      throw_errno("close " + path, errno);
  }

private:
  int fd_;
};

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == 0 ? std::string{"/"} : path.substr(0, slash);
}

void fsync_fd(int fd, const std::string& path) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR)
      throw_errno("fsync " + path, errno);
  }
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw_errno("open directory " + dir, errno);
  fd_guard guard{fd};
  fsync_fd(fd, dir);
}

void write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw_errno("write " + path, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

std::string temp_path_for(const std::string& target) {
  auto slash = target.rfind('/');
  return target.substr(0, slash + 1) + local_store::temp_prefix + std::to_string(::getpid()) + "-"
         + std::to_string(temp_counter.fetch_add(1)) + "-" + target.substr(slash + 1);
}

/// Creates a temporary file next to `target`, lets `fill(fd, tmp)` write it, fsyncs it and renames
/// it over `target`. Removes the temporary file on failure.
template <class Fill>
void write_atomically(const std::string& target, Fill&& fill) {
  auto tmp = temp_path_for(target);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, file_mode);
  if (fd < 0)
    throw_errno("create " + tmp, errno);
  try {
    fd_guard guard{fd};
    fill(fd, tmp);
    fsync_fd(fd, tmp);
    guard.close_checked(tmp);
    if (::rename(tmp.c_str(), target.c_str()) != 0)
      throw_errno("rename " + tmp + " to " + target, errno);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_dir(parent_of(target));
}

} // namespace

local_store::local_store(const std::string& root) {
  std::error_code ec;
  auto abs = fs::absolute(root, ec);
  if (ec)
    throw store_error("local object store: cannot resolve '" + root + "': " + ec.message(), false);
  root_ = abs.lexically_normal().string();
  while (root_.size() > 1 && root_.back() == '/')
    root_.pop_back();
  fs::create_directories(root_, ec);
  if (ec)
    throw_errno("create root directory " + root_, ec.value());
  if (!fs::is_directory(root_, ec))
    throw store_error("local object store: root " + root_ + " is not a directory", false);
}

std::string local_store::path_of(const std::string& key) const {
  check_object_key(key);
  return root_ + "/" + key;
}

void local_store::make_dirs(const std::string& dir) {
  // Walk down from the root: every directory we create must be fsynced into its parent, or a
  // crash could lose the directory entry and with it the object.
  size_t pos = root_.size();
  while (pos < dir.size()) {
    auto next = dir.find('/', pos + 1);
    auto sub = dir.substr(0, next);
    if (::mkdir(sub.c_str(), dir_mode) == 0) {
      fsync_dir(parent_of(sub));
    } else if (errno != EEXIST) {
      throw_errno("create directory " + sub, errno);
    }
    if (next == std::string::npos)
      break;
    pos = next;
  }
}

void local_store::put(const std::string& key, std::string_view bytes) {
  track_health(healthy_, [&] {
    auto target = path_of(key);
    make_dirs(parent_of(target));
    write_atomically(target, [&](int fd, const std::string& tmp) {
      write_all(fd, bytes.data(), bytes.size(), tmp);
    });
  });
}

bool local_store::put_if_absent(const std::string& key, std::string_view bytes) {
  return track_health(healthy_, [&] {
    auto target = path_of(key);
    make_dirs(parent_of(target));
    auto tmp = temp_path_for(target);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, file_mode);
    if (fd < 0)
      throw_errno("create " + tmp, errno);
    bool created = false;
    try {
      fd_guard guard{fd};
      write_all(fd, bytes.data(), bytes.size(), tmp);
      fsync_fd(fd, tmp);
      guard.close_checked(tmp);
      // link(2), unlike rename(2), never replaces: EEXIST means another creator won.
      if (::link(tmp.c_str(), target.c_str()) == 0)
        created = true;
      else if (errno != EEXIST)
        throw_errno("link " + tmp + " to " + target, errno);
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
    ::unlink(tmp.c_str());
    fsync_dir(parent_of(target));
    return created;
  });
}

void local_store::put_file(const std::string& key, const std::string& local_path) {
  track_health(healthy_, [&] {
    auto target = path_of(key);
    make_dirs(parent_of(target));
    int src = ::open(local_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (src < 0)
      throw_errno("open " + local_path, errno);
    fd_guard src_guard{src};
    fsync_fd(src, local_path);
    if (::rename(local_path.c_str(), target.c_str()) == 0) {
      fsync_dir(parent_of(target));
      return;
    }
    if (errno != EXDEV)
      throw_errno("rename " + local_path + " to " + target, errno);
    // Another file system: copy next to the target, then rename (atomic there).
    write_atomically(target, [&](int fd, const std::string& tmp) {
      std::string buf(copy_buffer_bytes, '\0');
      for (;;) {
        auto n = ::read(src, buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR)
            continue;
          throw_errno("read " + local_path, errno);
        }
        if (n == 0)
          break;
        write_all(fd, buf.data(), static_cast<size_t>(n), tmp);
      }
    });
    if (::unlink(local_path.c_str()) != 0 && errno != ENOENT)
      throw_errno("remove " + local_path + " after copying it to " + target, errno);
  });
}

std::optional<std::string> local_store::get(const std::string& key) {
  return track_health(healthy_, [&]() -> std::optional<std::string> {
    auto path = path_of(key);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR)
        return std::nullopt;
      throw_errno("open " + path, errno);
    }
    fd_guard guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0)
      throw_errno("stat " + path, errno);
    if (!S_ISREG(st.st_mode))
      return std::nullopt; // a directory is a key prefix, not an object
    std::string out;
    out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    for (;;) {
      if (done == out.size())
        out.resize(out.size() + copy_buffer_bytes); // the file grew meanwhile
      auto n = ::read(fd, out.data() + done, out.size() - done);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        throw_errno("read " + path, errno);
      }
      if (n == 0)
        break;
      done += static_cast<size_t>(n);
    }
    out.resize(done);
    return out;
  });
}

std::vector<object_info> local_store::list(const std::string& prefix) {
  return track_health(healthy_, [&] {
    if (prefix.find('\0') != std::string::npos || prefix == ".." || prefix.rfind("../", 0) == 0
        || prefix.find("/../") != std::string::npos)
      throw store_error("local object store: invalid list prefix '" + prefix + "'", false);
    std::vector<object_info> out;
    // Only the directory named by the prefix up to its last '/' can hold matching keys.
    auto slash = prefix.rfind('/');
    auto base = slash == std::string::npos ? root_ : root_ + "/" + prefix.substr(0, slash);
    std::error_code ec;
    if (!fs::is_directory(base, ec))
      return out;
    fs::recursive_directory_iterator it{base, ec};
    if (ec)
      throw_errno("list " + base, ec.value());
    for (fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
      if (ec)
        throw_errno("list " + base, ec.value());
      auto name = it->path().filename().string();
      if (name.rfind(temp_prefix, 0) == 0)
        continue;
      if (!it->is_regular_file(ec))
        continue;
      auto key = it->path().string().substr(root_.size() + 1);
      if (key.compare(0, prefix.size(), prefix) != 0)
        continue;
      auto size = it->file_size(ec);
      if (ec) // removed meanwhile
        continue;
      out.push_back(object_info{std::move(key), size});
    }
    if (ec)
      throw_errno("list " + base, ec.value());
    std::sort(out.begin(), out.end(),
              [](const object_info& a, const object_info& b) { return a.key < b.key; });
    return out;
  });
}

void local_store::remove(const std::string& key) {
  track_health(healthy_, [&] {
    auto path = path_of(key);
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT || errno == ENOTDIR)
        return;
      throw_errno("remove " + path, errno);
    }
    fsync_dir(parent_of(path));
  });
}

std::string local_store::url(const std::string& key) const {
  return "file://" + root_ + "/" + key;
}

bool local_store::healthy() const {
  return healthy_;
}

} // namespace sluice::persistence
