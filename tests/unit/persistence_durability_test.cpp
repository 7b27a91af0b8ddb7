// What each durability mode asks of LMDB, read back from the open environment (see
// docs/durability.md). The syscall-level proof that `sync` fsyncs before every ack is
// tests/integration/durability.test.mjs.

#include "persistence/lmdb.hpp"
#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <fcntl.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace sluice::persistence;
using sluice::persistence::testing::temp_dir;

namespace {

constexpr unsigned sync_relaxing_flags = MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC | MDB_WRITEMAP;

unsigned env_flags(durability mode, const temp_dir& dir) {
  env_options opts;
  opts.path = dir.sub("lmdb");
  opts.initial_map_bytes = size_t{16} << 20;
  opts.mode = mode;
  environment env{opts};
  unsigned flags = 0;
  EXPECT_EQ(mdb_env_get_flags(env.handle(), &flags), MDB_SUCCESS);
  return flags;
}

/// `open(2)` flags of every descriptor this process holds on `file`, from /proc/self/fdinfo.
std::vector<long> open_flags_of(const std::string& file) {
  std::vector<long> out;
  auto target = std::filesystem::canonical(file);
  for (auto& fd : std::filesystem::directory_iterator{"/proc/self/fd"}) {
    std::error_code ec;
    auto points_to = std::filesystem::read_symlink(fd.path(), ec);
    if (ec || points_to != target)
      continue;
    std::ifstream info{"/proc/self/fdinfo/" + fd.path().filename().string()};
    for (std::string key; info >> key;) {
      if (key == "flags:") {
        std::string octal;
        info >> octal;
        out.push_back(std::stol(octal, nullptr, 8));
        break;
      }
    }
  }
  return out;
}

TEST(lmdb_durability_flags, sync_mode_leaves_every_lmdb_fsync_on) {
  temp_dir dir;
  auto flags = env_flags(durability::sync, dir);
  EXPECT_EQ(flags & sync_relaxing_flags, 0u)
    << "sync must not relax LMDB's commit fsync (flags " << std::hex << flags << ")";
}

TEST(lmdb_durability_flags, periodic_and_none_skip_the_commit_fsync_and_nothing_else) {
  for (auto mode : {durability::periodic, durability::none}) {
    temp_dir dir;
    auto flags = env_flags(mode, dir);
    EXPECT_EQ(flags & sync_relaxing_flags, unsigned{MDB_NOSYNC})
      << "only MDB_NOSYNC (no WRITEMAP: the map is never written through pointers), flags "
      << std::hex << flags;
  }
}

TEST(lmdb_durability_flags, sync_mode_writes_the_meta_page_through_an_o_dsync_descriptor) {
  temp_dir dir;
  env_options opts;
  opts.path = dir.sub("lmdb");
  opts.initial_map_bytes = size_t{16} << 20;
  opts.mode = durability::sync;
  environment env{opts};
  auto flags = open_flags_of(dir.sub("lmdb") + "/data.mdb");
  ASSERT_FALSE(flags.empty()) << "no descriptor on data.mdb";
  bool dsync = false;
  for (auto f : flags)
    dsync = dsync || (f & O_DSYNC) == O_DSYNC;
  EXPECT_TRUE(dsync) << "LMDB commits by writing the meta page; in sync mode that write must be "
                        "synchronous (O_DSYNC), after the fdatasync of the data pages";
}

} // namespace
