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

// Floats of scratch gemm() needs when run with `threads` threads (packed panels per thread).
size_t gemm_scratch_floats(const GemmParams& p, size_t threads);
void gemm(const GemmParams& p, const float* a, const float* b, float* c, float* scratch, const Parallel& par);

}  // namespace convoy::kernels
