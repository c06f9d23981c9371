// Machine-peak probes for `convoy bench --peak`: an FMA loop that keeps every FMA pipe busy
// and a streaming read. Single-threaded; the caller runs one per core and does the timing.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convoy::kernels {

// Runs `iterations` rounds of independent fused multiply-adds on registers only and returns a
// value derived from the results (so the loop cannot be optimised away). Each round performs
// fma_peak_flops_per_iteration() floating-point operations (an FMA counts as 2).
float fma_peak(size_t iterations);
size_t fma_peak_flops_per_iteration();

// Sum of n floats, read sequentially with several independent accumulators (bandwidth probe).
// `p` must be 64-byte aligned and n a multiple of 16.
float stream_read(const float* p, size_t n);

// Name of the Highway target the two probes dispatch to (e.g. "AVX3").
const char* peak_target_name();

}  // namespace convoy::kernels
