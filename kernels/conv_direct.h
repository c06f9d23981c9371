// Direct convolution (no im2col) for few input channels: stride 1, dilation 1, group 1, any
// KHxKW, any pads, any N/H/W/M, NCHW float32, with the fused epilogue of kernels/activation.h
// (bias, residual of the output's shape, activation). Same parameter struct and pointer
// conventions as kernels/conv2d.h. Written for the first conv of image models (C = 3): there
// im2col + GEMM has K = C KH KW = 27, so the GEMM reads and writes its C tile for a handful of
// FMAs and the im2col copy costs as much as the GEMM saves (VGG-16 features.0: 59 GFLOP/s at 1
// thread, half the FMA peak).
//
// Algorithm: per output row, a register tile of MB output channels x V vectors of output pixels
// (AVX-512: 4 x 4 = 16 accumulators; the 16-register targets: 4 x 3), for each tap (c, kh, kw)
// one unaligned load of the input row per vector and one broadcast weight per channel, the
// first tap's FMAs adding to the bias; then residual + activation from registers. Each task
// first copies the input rows it reads into a zero-padded per-thread buffer (left/right/top/
// bottom pads become zeros once, so the hot loop has no edge cases; rows are as wide as the
// output rounded up to whole vectors plus KW - 1). A partial last vector of an output row is
// finished in a staging vector and copied (no masked store: the next row may belong to another
// thread's task). Outputs of 8 MiB and more are written with non-temporal stores where a vector is
// a whole cache line (AVX-512); otherwise the output lines are prefetched for writing (AVX2: the
// next tile's, one tile ahead).
// Threads split over (image, block of output rows, chunk of output-channel panels); every
// output is the same fixed sum over (c, kh, kw) whatever the split: results do not depend on the
// thread count.
//
// KW = 3 on the AVX-512 targets: a 1-D Winograd F(2,3) along W instead (kernels/conv_direct.cpp):
// pairs of output pixels on the lanes, each task transforms its input rows once into 4 rows of
// U = B^T d per pair, the hot loop does 4 FMAs per pair and (c, kh) instead of 6 (a 4 x 1 tile
// of pair vectors, aligned loads, no kw shifts), and the output transform + re-interleave to
// pixel order happen in registers. Its rounding error is bounded relative to the magnitudes of
// the transformed terms (2 sum over (c, kh) of sum|d| sum|g|; tests/kernels/test_conv_direct.cpp
// checks it), not to sum |w x| as the direct sum's. The packed weights stay the plain ones (the
// weight transform is redone per task: C KH M values), so unpacking is still bit-exact.
//
// Measured on VGG-16 /features/features.0/Conv (C = 3 -> M = 64, 224x224, pad 1, Relu; Zen 4
// AVX-512, `convoy bench --per-op`, FMA peak 117 GFLOP/s on one thread), against im2col + GEMM
// in the same minutes: 1 thread 2.91-3.11 -> 1.65-1.72 ms (56-60 -> 101-105 GFLOP/s, 86-89% of
// the peak); 2 threads 1.62-1.64 -> 0.92 ms. The Winograd path, alternating with the direct
// tile (session 5 HEAD) in the same minutes: 1 thread 1.67-1.72 -> 1.31-1.38 ms (101-105 ->
// 126-132 GFLOP/s in direct-conv FLOPs, 108-113% of the peak; standalone with one output buffer
// reused: 102-105 -> 128-134); 2 threads 0.90-0.98 -> 0.72-0.79 ms (176-193 -> 221-241);
// batch 8 per image, 1 thread 1.68-1.69 -> 1.35-1.36 ms (103 -> 127-129), 2 threads 0.87-0.88
// -> 0.69 ms (198-200 -> 251-252). Other 3x3 shapes (standalone, M = 64, 1 thread): C = 8 on
// 128x128 1.42 -> 1.01 ms, C = 15 on 112x112 1.97 -> 1.63, C = 4 on 56x56 0.18 -> 0.16.
// runtime/ops/conv.cpp has the shapes where the kernel beats im2col.
#pragma once
#include <cstddef>

#include "kernels/conv2d.h"

namespace convoy::kernels {

// Shapes the kernel handles: stride 1, dilation 1, group 1 (any C, M, KH, KW, pads, N, H, W).
// The planner uses it for few input channels only (runtime/ops/conv.cpp): it does C KH KW
// taps per output with no reuse across input channels.
bool conv_direct_applicable(const Conv2dParams& p);

// Packed weights: P[ceil(M/8)][C][KH][KW][8] (panels of 8 output channels, the order the kernel
// reads them), zero past M. A rearrangement: unpack_conv_direct_weights gives the ONNX-layout
// weights back, bit for bit, so the model may drop its raw copy. Independent of the SIMD target.
size_t conv_direct_packed_weight_floats(const Conv2dParams& p);
void pack_conv_direct_weights(const Conv2dParams& p, const float* w, float* packed);
void unpack_conv_direct_weights(const Conv2dParams& p, const float* packed, float* w);

// Scratch for `threads` workers: per thread, C x (rows of a task + KH - 1) padded input rows.
size_t conv_direct_scratch_floats(const Conv2dParams& p, size_t threads);

// Requires conv_direct_applicable(p); ep.bias/ep.residual are read from p.ep. `scratch` holds
// conv_direct_scratch_floats(p, par.threads()) floats.
void conv_direct(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
                 const Parallel& par);

}  // namespace convoy::kernels
