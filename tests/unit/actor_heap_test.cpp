// actors/heap.hpp: which allocator the process runs on, and that release_free_heap returns
// memory freed on another thread than the one that allocated it (what the shards do after a wave
// of passivated entities) to the OS.

#include "actors/heap.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;

namespace {

/// RssAnon of this process in bytes (heap and stacks; 0 when /proc has no such line).
size_t rss_anon_bytes() {
  std::ifstream in{"/proc/self/status"};
  std::string key;
  size_t kb = 0;
  while (in >> key) {
    if (key == "RssAnon:") {
      in >> kb;
      return kb * 1024;
    }
    std::getline(in, key);
  }
  return 0;
}

} // namespace

TEST(heap, the_unit_tests_run_on_the_system_allocator_unless_jemalloc_is_preloaded) {
  // The tests do not link jemalloc (only the sluice executable does); with LD_PRELOAD they do.
  const char* preload = std::getenv("LD_PRELOAD");
  bool jemalloc = preload != nullptr && std::strstr(preload, "jemalloc") != nullptr;
  EXPECT_STREQ(heap_allocator(), jemalloc ? "jemalloc" : "system");
}

TEST(heap, memory_freed_on_another_thread_goes_back_to_the_os_on_release) {
  constexpr size_t blocks = 400'000; // ~100 MB of 256-byte blocks, like entity actor state
  constexpr size_t block_size = 256;
  constexpr size_t total = blocks * block_size;
  std::vector<std::unique_ptr<char[]>> heap(blocks);
  // Allocated on one thread (its own arena in glibc, its own cache in jemalloc), touched so the
  // pages are resident.
  std::thread{[&] {
    for (auto& b : heap) {
      b.reset(new char[block_size]);
      std::memset(b.get(), 1, block_size);
    }
  }}.join();
  ASSERT_TRUE(release_free_heap()); // start from a heap without free pages
  size_t live = rss_anon_bytes();
  ASSERT_GT(live, total / 2) << "/proc/self/status has no RssAnon";
  // Freed on another thread, except every 64th block: the heap cannot just shrink from its top,
  // the free memory is spread over pages between blocks that stay (fragmentation).
  std::thread{[&] {
    for (size_t i = 0; i < blocks; ++i)
      if (i % 64 != 0)
        heap[i].reset();
  }}.join();
  ASSERT_TRUE(release_free_heap());
  size_t released = rss_anon_bytes();
  EXPECT_LT(released + total / 2, live)
    << "RssAnon " << live << " with every block, " << released << " after freeing 63/64 of "
    << total << " bytes and release_free_heap (" << heap_allocator() << ")";
}

namespace {

TEST(heap, a_release_asked_again_within_its_gap_is_skipped_and_one_after_it_runs) {
  using namespace std::chrono_literals;
  EXPECT_TRUE(release_free_heap_unless_within(0s));
  EXPECT_FALSE(release_free_heap_unless_within(1h)) << "released just now: skipped";
  EXPECT_TRUE(release_free_heap_unless_within(0s));
}

} // namespace
