// SGD with momentum and weight decay (torch.optim.SGD semantics, see sgd.h), elementwise.
// Written as PyTorch's separate operations, g = grad + wd*w, v = m*v + g, w = w - lr*v (the
// compiler may contract a multiply and an add into an FMA: within an ulp of PyTorch's result).
#include "kernels/sgd.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sgd.cpp"
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

void sgd_range(const SgdParams& p, float* w, const float* grad, float* vel, size_t n) {
  const D d;
  const size_t N = hn::Lanes(d);
  const V lr = hn::Set(d, p.lr), mom = hn::Set(d, p.momentum), wd = hn::Set(d, p.weight_decay);
  auto step = [&](V& wv, V gv, V& vv) {
    const V g = hn::Add(gv, hn::Mul(wd, wv));
    vv = hn::Add(hn::Mul(mom, vv), g);
    wv = hn::Sub(wv, hn::Mul(lr, vv));
  };
  size_t i = 0;
  for (; i + N <= n; i += N) {
    V wv = hn::LoadU(d, w + i), vv = hn::LoadU(d, vel + i);
    step(wv, hn::LoadU(d, grad + i), vv);
    hn::StoreU(vv, d, vel + i);
    hn::StoreU(wv, d, w + i);
  }
  if (i < n) {
    const size_t r = n - i;
    V wv = LoadPart(d, w + i, r), vv = LoadPart(d, vel + i, r);
    step(wv, LoadPart(d, grad + i, r), vv);
    StorePart(d, vv, vel + i, r);
    StorePart(d, wv, w + i, r);
  }
}

}  // namespace

void sgd_step_impl(const SgdParams& p, float* w, const float* grad, float* vel, const Parallel* par) {
  const detail::WorkSplit split(1, p.count);
  if (split.n_tasks <= 1) {
    sgd_range(p, w, grad, vel, p.count);
    return;
  }
  par->run(split.n_tasks, [&](size_t task, size_t) {
    size_t r0, r1, c0, c1;
    split.range(task, 1, p.count, r0, r1, c0, c1);
    sgd_range(p, w + c0, grad + c0, vel + c0, c1 - c0);
  });
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(sgd_step_impl);

void sgd_step(const SgdParams& p, float* w, const float* grad, float* velocity, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(sgd_step_impl)(p, w, grad, velocity, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
