// Winograd F(4x4, 3x3) convolution for Conv 3x3, stride 1, dilation 1, group 1, any pads, NCHW
// float32, with the fused epilogue of kernels/activation.h (bias, residual, activation) applied
// in the output transform. Same parameter struct and pointer conventions as kernels/conv2d.h.
//
// Why F(4x4, 3x3): 36 multiplies per 16 outputs (4x fewer than direct; F(2x2, 3x3): 2.25x),
// transformed weights 36/9 = 4x the 3x3 weights (F(6x6, 3x3): 7.1x, which would bust VGG-16's
// RSS budget), and an fp32 error that stays usable: with interpolation points 0, +-1, +-2, inf
// it is 15-25x im2col's (tests/kernels/test_winograd.cpp measures and bounds it: max ~4e-5
// of the output RMS at C = 256); F(6x6, 3x3)'s larger constants are expected to cost roughly
// another order (not measured here). Measured on VGG-16 at 1 thread: its 3x3 convs went from
// 57-91 to 140-300 GFLOP/s in direct-conv terms (FMA peak 101-117 in the same conditions).
//
// Algorithm, per block of tiles (a tile = 4x4 outputs from a 6x6 input patch):
//  1. input transform V = B^T d B, vectorised over tiles along a tile row (LoadInterleaved4 takes
//     the stride-4 columns apart), into V[36][C][tiles] in per-thread scratch;
//  2. 36 GEMMs Y[xi][tile][m] = sum_c V[xi][c][tile] * U[xi][c][m], register-blocked and
//     vectorised over OUTPUT channels (tiny maps still fill the vectors: a 7x7 map has 4 tiles);
//  3. output transform A^T Y A, vectorised over output channels, then bias + residual +
//     activation, written to NCHW (StoreInterleaved4 turns channel vectors into pixel rows).
// Blocks of tiles are sized so V and Y stay in cache; threads split over tile blocks and, for
// small maps, over output-channel chunks, never over C: results do not depend on the thread count.
//
// Two weight layouts, chosen by the batch's tile count (the packing and the kernel agree):
//  - >= 32 tiles: U precomputed at plan time (4x the 3x3 weights), read once per tile block;
//  - <  32 tiles (7x7 and 14x14 maps at batch 1): the raw weights, repacked (1x), transformed
//    per run in blocks of 32 input channels just before their GEMMs. With so few tiles every
//    run streams all of U once and memory traffic sets the time: reading 9 instead of 36 floats
//    per weight costs the same (ResNet stage 4: 3.0 vs 2.9 ms, within 10% on 14x14 maps) and
//    saves 3x the weights of those layers (85 MiB on VGG-16, 106 MiB on ResNet-18).
#pragma once
#include <cstddef>

#include "kernels/conv2d.h"

namespace convoy::kernels {

// Shapes the kernel handles: 3x3, stride 1, dilation 1, group 1 (any pads, any N/C/M/H/W).
bool winograd_applicable(const Conv2dParams& p);

// Packed weights, zero past M: for >= 32 tiles U[36][ceil(M/16)][C][16], transformed in double
// at plan time (for each transform position the GEMM reads 16-channel panels contiguously);
// for fewer tiles the raw weights as R[ceil(M/16)][C][9][16]. The layout depends on N, H, W.
size_t winograd_packed_weight_floats(const Conv2dParams& p);
void pack_winograd_weights(const Conv2dParams& p, const float* w, float* packed);

// Scratch for `threads` workers (per-thread transformed-input and GEMM-output blocks).
size_t winograd_scratch_floats(const Conv2dParams& p, size_t threads);

// Requires winograd_applicable(p); ep.bias/ep.residual are read from p.ep. `scratch` holds
// winograd_scratch_floats(p, par.threads()) floats.
void winograd_conv3x3(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
                      const Parallel& par);

}  // namespace convoy::kernels
