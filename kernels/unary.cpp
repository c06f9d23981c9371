// Elementwise unary ops (see unary.h). One Highway loop per op; large counts are cut into
// independent chunks for the Parallel.
#include "kernels/unary.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/unary.cpp"
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

// Applies f to in[0, n) -> out[0, n). in == out is fine: every vector is loaded before the
// same positions are stored.
template <class F>
HWY_INLINE void map_unary(D d, const float* in, float* out, size_t n, const F& f) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const V x0 = hn::LoadU(d, in + i), x1 = hn::LoadU(d, in + i + N);
    hn::StoreU(f(x0), d, out + i);
    hn::StoreU(f(x1), d, out + i + N);
  }
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, in + i)), d, out + i);
  if (i < n) StorePart(d, f(LoadPart(d, in + i, n - i)), out + i, n - i);
}

void unary_range(const UnaryParams& p, const float* in, float* out, size_t n) {
  const D d;
  const V zero = hn::Zero(d), alpha = hn::Set(d, p.alpha), beta = hn::Set(d, p.beta);
  switch (p.op) {
    case UnaryOp::kCopy:
      if (in != out) map_unary(d, in, out, n, [](V x) { return x; });
      return;
    case UnaryOp::kRelu:
      return map_unary(d, in, out, n, [&](V x) { return hn::Max(x, zero); });
    case UnaryOp::kLeakyRelu:
      return map_unary(d, in, out, n, [&](V x) { return hn::IfThenElse(hn::Lt(x, zero), hn::Mul(x, alpha), x); });
    case UnaryOp::kClip:
      return map_unary(d, in, out, n, [&](V x) { return hn::Min(hn::Max(x, alpha), beta); });
    case UnaryOp::kSigmoid:
      return map_unary(d, in, out, n, [&](V x) { return Sigmoid(d, x); });
    case UnaryOp::kTanh:
      return map_unary(d, in, out, n, [&](V x) { return hn::Tanh(d, x); });
    case UnaryOp::kExp:
      return map_unary(d, in, out, n, [&](V x) { return ExpFull(d, x); });
    case UnaryOp::kNeg:
      return map_unary(d, in, out, n, [](V x) { return hn::Neg(x); });
    case UnaryOp::kAbs:
      return map_unary(d, in, out, n, [](V x) { return hn::Abs(x); });
    case UnaryOp::kSqrt:
      return map_unary(d, in, out, n, [](V x) { return hn::Sqrt(x); });
  }
}

}  // namespace

void unary_impl(const UnaryParams& p, const float* in, float* out, const Parallel& par) {
  const detail::WorkSplit split(1, p.count);
  if (split.n_tasks <= 1) {
    unary_range(p, in, out, p.count);
    return;
  }
  par.run(split.n_tasks, [&](size_t task, size_t) {
    size_t r0, r1, c0, c1;
    split.range(task, 1, p.count, r0, r1, c0, c1);
    unary_range(p, in + c0, out + c0, c1 - c0);
  });
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(unary_impl);

void unary(const UnaryParams& p, const float* in, float* out, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(unary_impl)(p, in, out, par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
