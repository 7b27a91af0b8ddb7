// jemalloc's options for the sluice executable (compiled in when app/CMakeLists.txt links
// jemalloc: SLUICE_ALLOCATOR, defines SLUICE_JEMALLOC). jemalloc reads `malloc_conf` once, at its
// first allocation; MALLOC_CONF in the environment overrides single options (e.g.
// MALLOC_CONF=stats_print:true prints its statistics at exit).

#if defined(SLUICE_JEMALLOC)

extern "C" {

/// background_thread: a jemalloc thread returns dirty pages to the OS as they age, instead of the
/// next allocation in that arena doing it, so a node that went quiet after passivating a million
/// entities gives the memory back without new traffic. dirty_decay_ms 1000 (jemalloc's default
/// 10000): freed pages go back within about a second. 1,000,000 passivated devices: anonymous RSS
/// 35 MB two seconds after the last passivation, vs 116-206 MB still 20 s later with jemalloc's
/// defaults (glibc with the shards' malloc_trim: 55-61 MB); no measurable CPU cost on the
/// reference job. Measured in bench/README.md ("The allocator").
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000";

} // extern "C"

#endif
