#pragma once

// The object store on a local directory (plain C++, no CAF).

#include "persistence/object_store.hpp"

#include <string>

namespace sluice::persistence {

/// Objects as files under a root directory; key `a/b/c` is the file `<root>/a/b/c`.
///
/// Lifecycle: the constructor creates the root directory (mkdir -p) and throws store_error when
/// it cannot. Nothing is cached: every call goes to the file system, so several instances (and
/// processes) may share a root.
///
/// Atomicity and durability: an object appears complete or not at all. `put` writes a temporary
/// file (`.sluice-tmp-*`, skipped by `list`) in the target directory, fsyncs it, renames it over
/// the key and fsyncs the directory; `put_file` fsyncs the given file and renames it into place
/// (copying to a temporary name first when it lives on another file system). Directories created
/// for a key are fsynced into their parent. `remove` fsyncs the directory after the unlink.
///
/// Errors: store_error naming the operation, the path and the OS error; ENOSPC/EDQUOT (disk full)
/// and EMFILE/ENFILE (descriptors) are transient, everything else (EIO, EACCES, EROFS...) is not.
///
/// Concurrency and limits: not thread-safe per instance (the `healthy()` flag is unsynchronised);
/// concurrent writers of one key from different instances are safe (the last rename wins). Empty
/// directories left behind by `remove` are not deleted. `url()` does not percent-encode.
class local_store final : public object_store {
public:
  /// Opens (creating it if needed) the directory `root`, relative to the working directory or
  /// absolute.
  explicit local_store(const std::string& root);

  void put_file(const std::string& key, const std::string& local_path) override;
  void put(const std::string& key, std::string_view bytes) override;
  /// Writes a temporary file (fsynced), then `link(2)`s it to the key: link fails with EEXIST
  /// when the key exists, so of several concurrent creators (threads or processes, also on NFS)
  /// exactly one wins. The directory is fsynced after a successful link.
  bool put_if_absent(const std::string& key, std::string_view bytes) override;
  std::optional<std::string> get(const std::string& key) override;
  std::vector<object_info> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  std::string url(const std::string& key) const override;
  bool healthy() const override;

  /// The absolute, normalised root directory (no trailing '/').
  const std::string& root() const noexcept {
    return root_;
  }

  /// Name prefix of this store's temporary files; `list` skips them.
  static constexpr const char* temp_prefix = ".sluice-tmp-";

private:
  std::string path_of(const std::string& key) const;
  /// mkdir -p of `dir` (inside root_), fsyncing each parent that gained an entry.
  void make_dirs(const std::string& dir);

  std::string root_;
  bool healthy_ = true; ///< kept by track_health around every public operation
};

} // namespace sluice::persistence
