// Per-target SIMD helpers shared by the elementwise kernels (unary, binary, channel_affine,
// softmax, reduce). Re-included once per Highway target, as in hwy/examples/skeleton-inl.h.
//
// Tails: the last partial vector goes through an aligned stack buffer (LoadPart/StorePart).
// Highway 1.0.3 has no LoadN, and its MaskedLoad/BlendedStore on SSSE3/SSE4 load the whole
// vector, so a masked access could read or write past a buffer that is not padded (tests use
// plain std::vector). The buffer keeps every access inside [p, p + n).
#if defined(CONVOY_KERNELS_ELEMENTWISE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVOY_KERNELS_ELEMENTWISE_INL_H_
#undef CONVOY_KERNELS_ELEMENTWISE_INL_H_
#else
#define CONVOY_KERNELS_ELEMENTWISE_INL_H_
#endif

#include <cstddef>
#include <cstring>

#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Fixed (not MaxLanes-sized) so that GCC's -Warray-bounds cannot misjudge the 1-lane target.
inline constexpr size_t kTailBufFloats = 64 / sizeof(float);
static_assert(hn::MaxLanes(hn::ScalableTag<float>()) <= kTailBufFloats, "tail buffer too small");

// Loads n <= Lanes(d) floats; lanes past n hold `fill`.
template <class D>
HWY_INLINE hn::Vec<D> LoadPart(D d, const float* p, size_t n, float fill = 0.f) {
  if (n == hn::Lanes(d)) return hn::LoadU(d, p);
  HWY_ALIGN float buf[kTailBufFloats];
  for (size_t i = 0; i < kTailBufFloats; ++i) buf[i] = fill;
  std::memcpy(buf, p, n * sizeof(float));
  return hn::Load(d, buf);
}

// Stores the first n <= Lanes(d) lanes of v.
template <class D>
HWY_INLINE void StorePart(D d, hn::Vec<D> v, float* p, size_t n) {
  if (n == hn::Lanes(d)) {
    hn::StoreU(v, d, p);
    return;
  }
  HWY_ALIGN float buf[kTailBufFloats];
  hn::Store(v, d, buf);
  std::memcpy(p, buf, n * sizeof(float));
}

// exp(x) for every float: Highway's Exp wraps its integer exponent for x > ~2^31/log2(e)
// and returns 0 for NaN; clamp above (exp(89) is already +inf) and pass NaN through.
template <class D>
HWY_INLINE hn::Vec<D> ExpFull(D d, hn::Vec<D> x) {
  const auto y = hn::Exp(d, hn::Min(x, hn::Set(d, 89.f)));
  return hn::IfThenElse(hn::IsNaN(x), x, y);
}

// Sigmoid without overflow: with e = exp(-|x|) in (0, 1], 1/(1+e) for x >= 0, e/(1+e) else.
template <class D>
HWY_INLINE hn::Vec<D> Sigmoid(D d, hn::Vec<D> x) {
  const auto e = ExpFull(d, hn::Neg(hn::Abs(x)));
  const auto r = hn::Div(hn::Set(d, 1.f), hn::Add(hn::Set(d, 1.f), e));
  return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Mul(e, r), r);
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
