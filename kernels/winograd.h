// Winograd F(4x4, 3x3) convolution for Conv 3x3, F(3x3, 4x4) for 4x4 and F(2x2, 5x5) for 5x5, stride 1,
// dilation 1, group 1, any pads, NCHW float32, with the fused epilogue of kernels/activation.h
// (bias, residual, activation) applied in the output transform. Same parameter struct and pointer
// conventions as kernels/conv2d.h.
//
// F(2x2, 5x5) uses the same 6 interpolation points, so the same B^T, 36 GEMMs and D scaling: only
// G' (5 points to 6), A^T (6 to 2) and the tile step (2) differ. 36 multiplies per 4 outputs
// (2.8x fewer than direct), error 58-71 x sqrt(25 C) eps on unit data against 137-191 x sqrt(9 C)
// eps for F(4x4, 3x3) (tests/kernels/test_winograd.cpp). 5x5 convs always take the staged path.
// F(3x3, 4x4) likewise (G' of 4 points, A^T of 3 rows, tiles 3 apart; error 46-58 x sqrt(16 C)
// eps): it runs the 4x4 convs that a 7x7 stride-2 stem becomes on its space-to-depth input
// (kernels/space_to_depth.h; ResNet stem 2.47 -> 1.87 ms at 1 thread).
// Measured on AlexNet /features/features.3/Conv (C = 64 -> M = 192, 27x27, pad 2, Relu), against
// im2col + GEMM, same minutes: 1 thread 4.34 -> 2.26 ms (103 -> 199 GFLOP/s in direct-conv terms;
// 78% of the time in the GEMMs, at ~100 GFLOP/s), 2 threads 2.31 -> 1.26 ms; AlexNet 18.4 ->
// 16.2 ms at 1 thread, 12.5 -> 11.3 ms at 2.
//
// Why F(4x4, 3x3): 36 multiplies per 16 outputs (4x fewer than direct; F(2x2, 3x3): 2.25x),
// transformed weights 36/9 = 4x the 3x3 weights (F(6x6, 3x3): 7.1x; written and read once per
// run, and held in the arena, by the staged path below), and an fp32 error that stays usable: with interpolation points 0, +-1, +-2, inf
// it is 15-25x im2col's (tests/kernels/test_winograd.cpp measures and bounds it: max ~4e-5
// of the output RMS at C = 256); F(6x6, 3x3)'s larger constants are expected to cost roughly
// another order (not measured here). Measured on VGG-16 at 1 thread: its 3x3 convs went from
// 57-91 to 140-300 GFLOP/s in direct-conv terms (FMA peak 101-117 in the same conditions).
//
// Algorithm, per block of tiles (a tile = 4x4 outputs from a 6x6 input patch):
//  1. input transform V = B^T d B into V[36][C][tiles];
//  2. 36 GEMMs Y[xi][tile][m] = sum_c V[xi][c][tile] * U[xi][c][m], register-blocked and
//     vectorised over OUTPUT channels (tiny maps still fill the vectors: a 7x7 map has 4 tiles);
//  3. output transform A^T Y A, vectorised over output channels, then bias + residual +
//     activation, written to NCHW (StoreInterleaved4 turns channel vectors into pixel rows).
// Threads split over tile blocks and output-channel chunks, never over C: results do not depend
// on the thread count.
//
// Threads: a run is ONE pool job of one task per thread. Each task claims the items of two
// phases from counters in the scratch (lean: blocks of 32 input channels of the shared V, then
// output-channel chunks; staged: U panels, then tile blocks x output-channel chunks) and waits
// (spinning) only for what it is about to read (a lean chunk: all of V; a staged task: its
// chunk's U panels, after its own input transform), so a worker that wakes late finds phase 1
// done or nearly (one thread may run everything; the test has a pool that does). A pool job
// costs ~30 us before the second thread starts (futex wake-up on this VM) and ~25 us to hand the
// end back: the former two jobs per lean run paid that twice, and the staged path's U transform
// by the calling thread left the other idle. Staged batches are
// also cut into at least 8 (even) tile blocks where a map has at most 8 tile columns. Kernel
// alone at 2 threads (weights cold, as in a model; alternating, 3 rounds), two jobs -> one:
// ResNet 28x28 maps with 128 channels 0.50 -> 0.43-0.44 ms (1 thread 0.78), 14x14 with 256
// 0.61-0.64 -> 0.60-0.62 (1.02), 56x56 with 64 0.436 -> 0.42 (0.78), 7x7 with 512 0.675 -> 0.64
// (1.0-1.2), AlexNet's 13x13 maps unchanged (0.61-0.67 against 1.0-1.2); batch 8, 14x14 with
// 256 (5 -> 8 blocks) 4.9-5.1 -> 4.1-4.4 (1 thread 8.0 -> 7.8). The lean path stays at ~1.65x on
// 13x13/14x14 maps: the second thread starts ~30 us late, then reads half of V from the other
// core's cache (its GEMMs 5-10% slower than the first thread's, measured per phase).
//
// The packed weights are always the raw ones in panels of 16 output channels (1x; the model keeps
// only this copy, unpack_winograd_weights gives the raw ones back, bit for bit), transformed per
// run. Two paths, chosen by the batch's tile count T (the packing is the same for both):
//  - staged (T > 64, or T * C > 32768): each run first transforms ALL of U = D (G' g G'^T) D into
//    the step's scratch (36 C Mp floats, at most 37.7 MB for 512 x 512 channels, placed by the
//    planner's liveness like any scratch; tasks over output-channel panels, vectorised, the
//    integer G' of the lean path), then runs the GEMMs on it, U read once per block of tiles sized
//    so V and Y stay in cache; the input transform is vectorised along a tile row
//    (LoadInterleaved4 takes the stride-4 columns apart). The transform costs ~2 ops and one
//    (streamed) write + read per U value against 2T FLOPs of GEMM on it: under 1/T of the GEMM
//    work. Measured against U transformed in double at plan time, in the same minutes: at 1
//    thread no difference (ResNet-18 batch 2, 28x28 maps, 128 channels, 98 tiles: 1.78-1.93 ms
//    per conv either way; ResNet-50 batch 8 stage 3, 128 tiles: 8.2-8.5 ms against 8.4-8.6;
//    VGG-16 batch 8: 918 against 926 ms); at 2 threads a pool job of its own for the transform
//    cost short convs 5-8% (ResNet-18 batch 1, 56x56 maps with 64 channels, ~0.5 ms): it is now
//    the first phase of the run's one job (see Threads above); AlexNet batch 8's 13x13 convs
//    (128 tiles) +3%. Whole models at 1 and 2 threads, batch 1 and 8: within +-2%.
//    That plan-time U was held beside the raw weights (5x the 3x3 weights in all): now VGG-16
//    batch 8 holds 528 instead of 752 MiB of weights (peak RSS 971 -> 747 MiB) and plans in 46
//    instead of 305 ms; ResNet-50 batch 8 holds 97 instead of 151 MiB (peak RSS 224 -> 171) and
//    plans in 84 instead of 145 ms. The error is that of the lean path's fp32 transform
//    (tests/kernels/test_winograd.cpp);
//  - lean (T <= 64 and T * C <= 32768: 7x7, 13x13, 14x14 and 28x28 maps at batch 1, 7x7 at batch
//    8): with few tiles every run streams all the weights once and reuses each U value only T
//    times, so memory traffic and the transforms set the time, not the GEMM shape:
//     * the input is transformed once per run into a V shared by all tasks (blocks of input
//       channels, the run's first phase), vectorised over tiles by gathering each lane's 6x6
//       patch (a tile row of a 7x7 map has 2 tiles: the row-wise transform wasted 7/8 of each
//       vector and cost 25-40%);
//     * U' = G' g G'^T with the integer G' = D^-1 G (D = diag(1/4, -1/6, -1/6, 1/24, 1/24, 1)),
//       D D applied to Y in the output transform (the GEMMs are linear in U): 7 adds per
//       6-point transform instead of 10 multiplies and adds;
//     * T < 12 (7x7 maps) on AVX-512: the weight transform is fused into the GEMM; a pass makes
//       row i of U' for one input channel in registers and feeds it straight into 6 x 4
//       accumulators (positions (i, 0..5) x 4 tiles). Writing U to scratch and reading it back
//       cost more than the GEMM itself (ResNet stage 4: 60% of the time). With 16 registers
//       (AVX2, SSE4, NEON) the passes would hold 1 tile and redo the transform per tile: those
//       targets take the next path for every T;
//     * T >= 12: U' is transformed once per block of 32 input channels x 64 output channels into
//       L2-resident scratch and the GEMMs reuse each vector over all T tiles (the fused passes
//       would redo the transform per group of 4 tiles: slower from ~12 tiles on).
//    Measured at 1 thread (ResNet-18 per layer, `convoy bench --per-op`, against the previous
//    lean path in the same minutes): stage 4 (7x7, 512 ch) 2.4 -> 1.2-1.4 ms (165-190 GFLOP/s in
//    direct-conv terms), stage 3 (14x14, 256 ch) 1.7 -> 1.03-1.10 ms (210-225), stage 2 (28x28,
//    128 ch, precomputed before) 1.0 -> 0.8 ms; at batch 8 stage 4 11.3-12.2 -> 8.3 ms. The lean
//    layers hold 1x weights instead of raw + packed (ResNet-18: 87 -> 47 MiB held at batch 1,
//    189 -> 81 MiB at batch 8).
#pragma once
#include <cstddef>

#include "kernels/conv2d.h"

namespace convoy::kernels {

// Shapes the kernel handles: 3x3, 4x4 or 5x5, stride 1, dilation 1, group 1 (any pads, any N/C/M/H/W).
bool winograd_applicable(const Conv2dParams& p);

// Packed weights: the raw ones as R[ceil(M/16)][C][KH KW][16], zero past M (whatever N, H, W). The
// packing is a rearrangement: unpack_winograd_weights gives the ONNX-layout weights back, bit for
// bit, so the model may drop its raw copy.
size_t winograd_packed_weight_floats(const Conv2dParams& p);
void pack_winograd_weights(const Conv2dParams& p, const float* w, float* packed);
void unpack_winograd_weights(const Conv2dParams& p, const float* packed, float* w);
// Which of the two paths (see above) the kernel takes for these parameters.
enum class WinogradPath { kLean, kStaged };
WinogradPath winograd_path(const Conv2dParams& p);

// Scratch for `threads` workers (staged: the transformed weights U, shared, plus per-thread
// transformed-input and GEMM-output blocks; lean: the shared transformed input plus per thread).
size_t winograd_scratch_floats(const Conv2dParams& p, size_t threads);

// Requires winograd_applicable(p); ep.bias/ep.residual are read from p.ep. `scratch` holds
// winograd_scratch_floats(p, par.threads()) floats.
void winograd_conv(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
                      const Parallel& par);

}  // namespace convoy::kernels
