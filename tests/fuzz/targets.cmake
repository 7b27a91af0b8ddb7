# The libFuzzer targets (tests/fuzz/fuzz_<name>.cpp), shared by the fuzz build (tests/fuzz/CMakeLists.txt)
# and by the ctest registration of the normal build (tests/CMakeLists.txt, SLUICE_FUZZ_DIR).
set(SLUICE_FUZZ_TARGETS json msgpack log_record http ws routes config)
