#include "actors/heap.hpp"

#include <atomic>
#include <cstddef>

#if defined(__GLIBC__)
#  include <malloc.h>
#endif

// jemalloc's control interface. Weak: it resolves only in a process that runs on jemalloc (the
// sluice executable links it, app/CMakeLists.txt); elsewhere (tests, SLUICE_ALLOCATOR=system) it
// is null and the system allocator's calls are used. Declared here rather than from
// <jemalloc/jemalloc.h> because only the executable builds with jemalloc.
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp,
                       std::size_t newlen) __attribute__((weak));

namespace sluice {

namespace {

/// `MALLCTL_ARENAS_ALL` of <jemalloc/jemalloc.h> (4096 in jemalloc 5): "every arena" in
/// `arena.<i>.*` names.
constexpr const char* purge_all_arenas = "arena.4096.purge";

/// When the heap was last released (steady clock ticks; 0: never).
std::atomic<std::chrono::steady_clock::rep> last_release{0};

} // namespace

const char* heap_allocator() {
  return mallctl != nullptr ? "jemalloc" : "system";
}

bool release_free_heap() {
  if (mallctl != nullptr)
    return mallctl(purge_all_arenas, nullptr, nullptr, nullptr, 0) == 0;
#if defined(__GLIBC__)
  malloc_trim(0);
  return true;
#else
  return false;
#endif
}

bool release_free_heap_unless_within(std::chrono::steady_clock::duration min_gap) {
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto last = last_release.load(std::memory_order_relaxed);
  if ((last != 0 && now - last < min_gap.count())
      || !last_release.compare_exchange_strong(last, now, std::memory_order_relaxed))
    return false; // released recently, or another thread is releasing now
  return release_free_heap();
}

} // namespace sluice
