// Per-target SIMD helpers for the activation part of the GEMM/conv epilogue (kernels/activation.h).
// Included from Highway target code (re-included once per target, hence the toggle guard).
#if defined(CONVOY_KERNELS_EPILOGUE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVOY_KERNELS_EPILOGUE_INL_H_
#undef CONVOY_KERNELS_EPILOGUE_INL_H_
#else
#define CONVOY_KERNELS_EPILOGUE_INL_H_
#endif

#include <algorithm>

#include "hwy/highway.h"
#include "kernels/activation.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {

// ep.alpha is the LeakyRelu slope or the Clip minimum, ep.beta the Clip maximum.
HWY_INLINE float activate_scalar(float v, const Epilogue& ep) {
  switch (ep.act) {
    case Activation::kNone:
      return v;
    case Activation::kRelu:
      return v > 0.f ? v : 0.f;
    case Activation::kLeakyRelu:
      return v < 0.f ? v * ep.alpha : v;
    case Activation::kClip:
      return std::min(std::max(v, ep.alpha), ep.beta);
  }
  return v;
}

template <class D, class V>
HWY_INLINE V activate_vec(D d, V v, const Epilogue& ep) {
  namespace hn = hwy::HWY_NAMESPACE;
  switch (ep.act) {
    case Activation::kNone:
      return v;
    case Activation::kRelu:
      return hn::Max(v, hn::Zero(d));
    case Activation::kLeakyRelu:
      return hn::IfThenElse(hn::Lt(v, hn::Zero(d)), hn::Mul(v, hn::Set(d, ep.alpha)), v);
    case Activation::kClip:
      return hn::Min(hn::Max(v, hn::Set(d, ep.alpha)), hn::Set(d, ep.beta));
  }
  return v;
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // CONVOY_KERNELS_EPILOGUE_INL_H_
