// Per-target 8 x 8 float transpose in registers, for AVX2 (8-float vectors): r[i][j] -> c[j][i]
// in 24 shuffles (in-block 32-bit and 64-bit interleaves, then 128-bit half swaps). Used where
// channel vectors become pixel rows (conv2d's transposed path).
// Included from Highway target code (re-included once per target, hence the toggle guard).
#if defined(CONVOY_KERNELS_TRANSPOSE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVOY_KERNELS_TRANSPOSE_INL_H_
#undef CONVOY_KERNELS_TRANSPOSE_INL_H_
#else
#define CONVOY_KERNELS_TRANSPOSE_INL_H_
#endif

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {

#if HWY_TARGET == HWY_AVX2
// r[0..7] (rows of 8) -> c[0..7] with c[j][i] = r[i][j]. r and c may not alias.
template <class D, class V>
HWY_INLINE void transpose8x8(D d, const V* r, V* c) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::Repartition<double, D> dd;
  V t[8], u[8];
  for (size_t i = 0; i < 8; i += 2) {
    t[i] = hn::InterleaveLower(d, r[i], r[i + 1]);
    t[i + 1] = hn::InterleaveUpper(d, r[i], r[i + 1]);
  }
  for (size_t h = 0; h < 8; h += 4) {
    const auto a0 = hn::BitCast(dd, t[h]), a1 = hn::BitCast(dd, t[h + 1]);
    const auto a2 = hn::BitCast(dd, t[h + 2]), a3 = hn::BitCast(dd, t[h + 3]);
    u[h] = hn::BitCast(d, hn::InterleaveLower(dd, a0, a2));
    u[h + 1] = hn::BitCast(d, hn::InterleaveUpper(dd, a0, a2));
    u[h + 2] = hn::BitCast(d, hn::InterleaveLower(dd, a1, a3));
    u[h + 3] = hn::BitCast(d, hn::InterleaveUpper(dd, a1, a3));
  }
  for (size_t k = 0; k < 4; ++k) {
    c[k] = hn::ConcatLowerLower(d, u[4 + k], u[k]);
    c[4 + k] = hn::ConcatUpperUpper(d, u[4 + k], u[k]);
  }
}
#endif

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
