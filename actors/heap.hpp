#pragma once

#include <chrono>

namespace sluice {

/// The malloc this process runs on: "jemalloc" when the executable links it (SLUICE_ALLOCATOR in
/// app/CMakeLists.txt, or LD_PRELOAD), else "system" (glibc's malloc in the libraries and tests).
const char* heap_allocator();

/// Returns the free memory the allocator keeps to the OS now, instead of when the allocator
/// decides to: jemalloc purges the dirty pages of every arena (`arena.<all>.purge`; otherwise it
/// returns them only as they decay, `dirty_decay_ms`, see app/allocator.cpp), glibc trims every
/// arena (`malloc_trim(0)`; otherwise it keeps what other threads freed in their arenas). Walks
/// the heap: milliseconds on a large one, so call it after a wave of frees (e.g. the shards, every
/// few thousand passivated entities), never per free. Thread-safe; returns the allocator's
/// verdict: true when it ran without error.
bool release_free_heap();

/// `release_free_heap`, unless the process released within the last `min_gap` (by any caller:
/// the heap is shared, so one release serves them all). Returns whether it released. For callers
/// that may ask often (a wave of passivations, a consumer turning live again and again).
bool release_free_heap_unless_within(std::chrono::steady_clock::duration min_gap);

} // namespace sluice
