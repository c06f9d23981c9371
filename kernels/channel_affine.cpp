// Per-channel affine + activation (see channel_affine.h). Tasks are groups of (n, c) planes.
#include "kernels/channel_affine.h"

#include <algorithm>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/channel_affine.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "kernels/dims_util.h"
#include "kernels/elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace {

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

template <Activation kAct>
HWY_INLINE V activate(D d, V y, V alpha, V beta) {
  if constexpr (kAct == Activation::kRelu) return hn::Max(y, hn::Zero(d));
  if constexpr (kAct == Activation::kLeakyRelu) return hn::IfThenElse(hn::Lt(y, hn::Zero(d)), hn::Mul(y, alpha), y);
  if constexpr (kAct == Activation::kClip) return hn::Min(hn::Max(y, alpha), beta);
  return y;
}

// planes [begin, end) of HW floats each; plane q has channel q % C. in == out is fine.
template <Activation kAct>
void affine_planes(const ChannelAffineParams& p, const float* in, const float* scale, const float* shift, float* out,
                   size_t begin, size_t end) {
  const D d;
  const size_t N = hn::Lanes(d), hw = p.HW;
  const V alpha = hn::Set(d, p.alpha), beta = hn::Set(d, p.beta);
  for (size_t q = begin; q < end; ++q) {
    const size_t c = q % p.C;
    const V s = hn::Set(d, scale[c]), t = hn::Set(d, shift[c]);
    const float* x = in + q * hw;
    float* y = out + q * hw;
    size_t i = 0;
    for (; i + N <= hw; i += N) hn::StoreU(activate<kAct>(d, hn::MulAdd(hn::LoadU(d, x + i), s, t), alpha, beta), d, y + i);
    if (i < hw)
      StorePart(d, activate<kAct>(d, hn::MulAdd(LoadPart(d, x + i, hw - i), s, t), alpha, beta), y + i, hw - i);
  }
}

template <Activation kAct>
void affine_all(const ChannelAffineParams& p, const float* in, const float* scale, const float* shift, float* out,
                const Parallel& par) {
  const size_t planes = p.N * p.C;
  const detail::WorkSplit split(planes, p.HW == 0 ? 1 : p.HW);
  if (split.n_tasks <= 1) {
    affine_planes<kAct>(p, in, scale, shift, out, 0, planes);
    return;
  }
  // Planes are never cut: a task is a run of whole planes.
  const size_t per_task = split.chunks_per_row > 1 ? 1 : split.rows_per_task;
  par.run((planes + per_task - 1) / per_task, [&](size_t t, size_t) {
    const size_t b = t * per_task;
    affine_planes<kAct>(p, in, scale, shift, out, b, std::min(planes, b + per_task));
  });
}

}  // namespace

void channel_affine_impl(const ChannelAffineParams& p, const float* in, const float* scale, const float* shift,
                         float* out, const Parallel& par) {
  if (p.N * p.C * p.HW == 0) return;
  switch (p.act) {
    case Activation::kNone: return affine_all<Activation::kNone>(p, in, scale, shift, out, par);
    case Activation::kRelu: return affine_all<Activation::kRelu>(p, in, scale, shift, out, par);
    case Activation::kLeakyRelu: return affine_all<Activation::kLeakyRelu>(p, in, scale, shift, out, par);
    case Activation::kClip: return affine_all<Activation::kClip>(p, in, scale, shift, out, par);
  }
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(channel_affine_impl);

void channel_affine(const ChannelAffineParams& p, const float* in, const float* scale, const float* shift,
                    float* out, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(channel_affine_impl)(p, in, scale, shift, out, par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
