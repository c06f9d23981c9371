// Backward of Relu/LeakyRelu (from the forward output) and training-mode inverted Dropout.
// Elementwise; large counts are cut into independent chunks for the Parallel.
#include <cstdint>

#include "kernels/activation_grad.h"

#ifndef CONVOY_KERNELS_ACTIVATION_GRAD_SHARED
#define CONVOY_KERNELS_ACTIVATION_GRAD_SHARED
namespace convoy::kernels::act_grad_detail {

// splitmix64 finaliser of (seed ^ i * golden ratio): a counter-based hash, so element i's keep
// decision depends on (seed, i) only. The top 24 bits give a uniform float in [0, 1).
inline float dropout_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed ^ (i * 0x9E3779B97F4A7C15ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.f / 16777216.f);
}

}  // namespace convoy::kernels::act_grad_detail
#endif  // CONVOY_KERNELS_ACTIVATION_GRAD_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/activation_grad.cpp"
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

// out[i] = f(a[i], b[i]) for i in [0, n); out may alias a or b (loads precede the store).
template <class F>
HWY_INLINE void map_binary(D d, const float* a, const float* b, float* out, size_t n, const F& f) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  if (i < n) StorePart(d, f(LoadPart(d, a + i, n - i), LoadPart(d, b + i, n - i)), out + i, n - i);
}

void act_grad_range(const ActGradParams& p, const float* y, const float* dy, float* dx, size_t n) {
  const D d;
  const V zero = hn::Zero(d), alpha = hn::Set(d, p.alpha);
  switch (p.kind) {
    case ActGradKind::kRelu:
      return map_binary(d, y, dy, dx, n, [&](V yv, V g) { return hn::IfThenElseZero(hn::Gt(yv, zero), g); });
    case ActGradKind::kLeakyRelu:
      return map_binary(d, y, dy, dx, n,
                        [&](V yv, V g) { return hn::IfThenElse(hn::Gt(yv, zero), g, hn::Mul(g, alpha)); });
  }
}

template <class Fn>
void split_run(size_t count, const Parallel& par, const Fn& fn) {
  const detail::WorkSplit split(1, count);
  if (split.n_tasks <= 1) {
    fn(size_t{0}, count);
    return;
  }
  par.run(split.n_tasks, [&](size_t task, size_t) {
    size_t r0, r1, c0, c1;
    split.range(task, 1, count, r0, r1, c0, c1);
    fn(c0, c1);
  });
}

}  // namespace

void activation_backward_impl(const ActGradParams& p, const float* y, const float* dy, float* dx, const Parallel* par) {
  split_run(p.count, *par, [&](size_t b, size_t e) { act_grad_range(p, y + b, dy + b, dx + b, e - b); });
}

void dropout_backward_impl(size_t count, const float* dy, const float* mask, float* dx, const Parallel* par) {
  split_run(count, *par, [&](size_t b, size_t e) {
    map_binary(D(), dy + b, mask + b, dx + b, e - b, [](V g, V m) { return hn::Mul(g, m); });
  });
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(activation_backward_impl);
HWY_EXPORT(dropout_backward_impl);

void activation_backward(const ActGradParams& p, const float* y, const float* dy, float* dx, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(activation_backward_impl)(p, y, dy, dx, &par);
}

void dropout_backward(size_t count, const float* dy, const float* mask, float* dx, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(dropout_backward_impl)(count, dy, mask, dx, &par);
}

// Scalar: the 64-bit hash has no portable vector multiply in Highway 1.0.3.
void dropout_forward(const DropoutParams& p, const float* x, float* y, float* mask, const Parallel& par) {
  // ratio >= 1 drops everything (u < 1 always); the scale 1/(1-ratio) is then never used.
  const float scale = p.ratio < 1.f ? 1.f / (1.f - p.ratio) : 0.f;
  const detail::WorkSplit split(1, p.count);
  auto range = [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const float m = act_grad_detail::dropout_uniform(p.seed, i) >= p.ratio ? scale : 0.f;
      if (mask) mask[i] = m;
      y[i] = x[i] * m;
    }
  };
  if (split.n_tasks <= 1) {
    range(0, p.count);
    return;
  }
  par.run(split.n_tasks, [&](size_t task, size_t) {
    size_t r0, r1, c0, c1;
    split.range(task, 1, p.count, r0, r1, c0, c1);
    range(c0, c1);
  });
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
