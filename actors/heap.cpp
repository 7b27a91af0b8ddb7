#include "actors/heap.hpp"

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

} // namespace sluice
