#pragma once

// The resume state of `sluice replay`: per input file, the position up to which every batch was
// acknowledged by the node.

#include "app/replay_input.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::replay {

/// What the node acknowledged of one input file: a contiguous prefix (never a batch beyond an
/// unanswered one).
struct file_state {
  /// The file as named on the command line.
  std::string path;
  /// `file_content_key` of the file: a changed file is refused on resume.
  std::string key;
  /// Where the unacknowledged part starts.
  position next;
  /// Records in the acknowledged prefix, and how they ended.
  uint64_t records = 0;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  /// The whole file is acknowledged.
  bool done = false;
};

/// The state file's content.
struct replay_state {
  std::vector<file_state> files;

  /// The entry for `path`, or nullptr.
  file_state* find(const std::string& path);
};

/// Reads a state file; an absent file is an empty state. Throws (naming the file) when it exists
/// but is not a state file.
replay_state load_state(const std::string& path);

/// Writes `state` to `path` atomically: a temporary file next to it, fsync, rename. Throws on I/O
/// errors.
void save_state(const std::string& path, const replay_state& state);

/// `state_file` if given; else `<state_dir>/<file name of first_input>.replay-state` when
/// `state_dir` is given; else `<first_input>.replay-state`.
std::string state_path(const std::string& state_file, const std::string& state_dir,
                       const std::string& first_input);

} // namespace sluice::replay
