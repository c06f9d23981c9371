// Blocked single-precision GEMM with packing and a Highway register-blocked micro-kernel.
//   for b in [0,batch): C_b = alpha * A_b * B_b + beta * C_b, then the epilogue.
// A_b(i,k) = a[b*a_bs + i*a_rs + k*a_cs]   (transposes are expressed by the strides)
// B_b(k,j) = b[b*b_bs + k*b_rs + j*b_cs]
// C_b(i,j) = c[b*c_bs + i*ldc + j]          (row-major, contiguous columns)
// beta == 0 means C is not read (it may hold garbage/NaN). The residual pointer in the
// epilogue, when set, has C's layout (same ldc and batch stride).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/activation.h"
#include "kernels/parallel.h"

namespace convoy::kernels {

struct GemmParams {
  size_t M = 0, N = 0, K = 0;
  size_t batch = 1;
  ptrdiff_t a_rs = 0, a_cs = 1, a_bs = 0;
  ptrdiff_t b_rs = 0, b_cs = 1, b_bs = 0;
  size_t ldc = 0;
  ptrdiff_t c_bs = 0;
  float alpha = 1.f, beta = 0.f;
  Epilogue ep;
};

// Floats of scratch gemm() needs when run with `threads` threads.
size_t gemm_scratch_floats(const GemmParams& p, size_t threads);
void gemm(const GemmParams& p, const float* a, const float* b, float* c, float* scratch, const Parallel& par);

// ---- Pre-packed operands ----
// The micro-kernel's panel layout of the SIMD target Highway picks at run time (so pack and
// run in the same process). Constant weights are packed once at plan time.
//   packed A: opaque (gemm_pack_a writes it): panels of `mr` rows, k-major, rows past M
//             zero, stored K block by K block so that a block is one contiguous stream.
//   packed B: panels of `nr` columns, panel q at b_packed + q*nr*K, each [K][w] with
//             w = min(nr, round_up(N - q*nr, lanes)); columns past N must hold finite values
//             (they feed lanes that are never stored).
// edge_cols: a block's last columns past a whole vector that run vectorised over rows when
// there are at most this many (0: a last partial vector runs as a whole one).
struct GemmPanelLayout {
  size_t mr, nr, lanes, edge_cols;
};
GemmPanelLayout gemm_panel_layout();
size_t gemm_packed_a_floats(size_t M, size_t K);
size_t gemm_packed_b_floats(size_t N, size_t K);
// Packs batch entry 0 of p's A (p.M x p.K through a_rs/a_cs) into the packed-A layout.
void gemm_pack_a(const GemmParams& p, const float* a, float* a_packed);
// The same, its K blocks as tasks of `par` (activations packed per run).
void gemm_pack_a(const GemmParams& p, const float* a, float* a_packed, const Parallel& par);
// The inverse: writes the M x K matrix (row-major) that gemm_pack_a packed, exactly.
void gemm_unpack_a(size_t M, size_t K, const float* a_packed, float* a);
// gemm() with A pre-packed: p.a_rs/a_cs are ignored, p.a_bs is the float distance between
// packed batch entries (0: shared).
size_t gemm_prepacked_a_scratch_floats(const GemmParams& p, size_t threads);
void gemm_prepacked_a(const GemmParams& p, const float* a_packed, const float* b, float* c, float* scratch,
                      const Parallel& par);
// Both operands packed, batch 1, on the calling thread: rows [m0, m1) of C (m0 a multiple of
// mr) = alpha * A * B, then the epilogue (bias per row or column, residual with ldc). No scratch.
void gemm_packed_ab(const GemmParams& p, const float* a_packed, const float* b_packed, float* c, size_t m0, size_t m1);

}  // namespace convoy::kernels
