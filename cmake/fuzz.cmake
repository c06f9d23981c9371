# libFuzzer target over model loading + planning + one run (fuzz/fuzz_load.cpp). Clang only:
#   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCONVOY_FUZZ=ON -DCONVOY_TESTS=OFF -DCONVOY_PYTHON=OFF
#   cmake --build build-fuzz --target fuzz_load
#   build-fuzz/fuzz_load -max_total_time=60 fuzz/corpus      (.ci/sanitize.sh does this)
# The library is instrumented for coverage (fuzzer-no-link) and built with ASan+UBSan; any
# sanitizer report, crash, leak or escaping non-convoy::Error exception is a finding.
option(CONVOY_FUZZ "Build the libFuzzer target fuzz_load (needs clang)" OFF)
if(CONVOY_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(WARNING "CONVOY_FUZZ needs clang (CXX=clang++); the fuzz target is not built with ${CMAKE_CXX_COMPILER_ID}")
  else()
    # Line tables only: findings and sanitizer reports get file:line frames, and the whole library
    # compiles ~10% faster than with full -g (which also overrode .ci/sanitize.sh's
    # -gline-tables-only; kernels/winograd.cpp 18.5-19.2 -> 16.5-17.3 s).
    set(CONVOY_FUZZ_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
        -gline-tables-only)
    target_compile_options(convoy PRIVATE -fsanitize=fuzzer-no-link ${CONVOY_FUZZ_SANITIZERS})
    # Highway's EMU128 target emulates float->int conversion in C++ (hwy/ops/emu128-inl.h), which
    # is UB for NaN where the SIMD instructions it stands for are defined: not a convoy bug.
    file(GLOB CONVOY_KERNEL_SOURCES ${CMAKE_SOURCE_DIR}/kernels/*.cpp)
    set_source_files_properties(${CONVOY_KERNEL_SOURCES} TARGET_DIRECTORY convoy PROPERTIES
                                COMPILE_OPTIONS -fno-sanitize=float-cast-overflow)
    # Everything linking the instrumented library needs the sanitizer runtimes.
    target_link_options(convoy INTERFACE -fsanitize=address,undefined)
    add_executable(fuzz_load ${CMAKE_SOURCE_DIR}/fuzz/fuzz_load.cpp)
    target_include_directories(fuzz_load PRIVATE ${CMAKE_SOURCE_DIR})
    target_compile_options(fuzz_load PRIVATE -fsanitize=fuzzer ${CONVOY_FUZZ_SANITIZERS} ${CONVOY_WARNINGS})
    target_link_options(fuzz_load PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_load PRIVATE convoy)
  endif()
endif()
