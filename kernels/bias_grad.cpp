// Bias gradient (see bias_grad.h): db[c] = sum over outer and inner of dy[o, c, i].
// inner > 1: one task per channel, summed over its outer rows of `inner` contiguous floats
// (float vector sums over runs of kFlush, joined in a double total). inner == 1 (Gemm): vectors
// run across channels, rows are added in order. Each channel is reduced inside one task, in a
// fixed order, so results do not depend on the thread count.
#include <algorithm>

#include "kernels/bias_grad.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/bias_grad.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "kernels/elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace {

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

constexpr size_t kChannelChunk = 256;  // channels per task when inner == 1 (multiple of lanes)
constexpr size_t kFlush = 4096;        // floats summed in float before joining the double total

// Sum of n contiguous floats added into four vector accumulators.
HWY_INLINE void add_run(D d, const float* s, size_t n, V& a0, V& a1, V& a2, V& a3) {
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    a0 = hn::Add(a0, hn::LoadU(d, s + i));
    a1 = hn::Add(a1, hn::LoadU(d, s + i + L));
    a2 = hn::Add(a2, hn::LoadU(d, s + i + 2 * L));
    a3 = hn::Add(a3, hn::LoadU(d, s + i + 3 * L));
  }
  for (; i + L <= n; i += L) a0 = hn::Add(a0, hn::LoadU(d, s + i));
  if (i < n) a1 = hn::Add(a1, LoadPart(d, s + i, n - i));
}

}  // namespace

void bias_backward_impl(const BiasGradParams& p, const float* dy, float* db, const Parallel* par) {
  if (p.C == 0) return;
  const D d;
  const size_t L = hn::Lanes(d);
  if (p.inner == 1) {
    const size_t n_tasks = (p.C + kChannelChunk - 1) / kChannelChunk;
    par->run(n_tasks, [&](size_t task, size_t /*thread*/) {
      const size_t c0 = task * kChannelChunk, c1 = std::min(p.C, c0 + kChannelChunk);
      for (size_t c = c0; c < c1; c += L) {
        const size_t n = std::min(L, c1 - c);
        V acc = hn::Zero(d);
        for (size_t o = 0; o < p.outer; ++o) acc = hn::Add(acc, LoadPart(d, dy + o * p.C + c, n));
        if (p.accumulate) acc = hn::Add(acc, LoadPart(d, db + c, n));
        StorePart(d, acc, db + c, n);
      }
    });
    return;
  }
  par->run(p.C, [&](size_t c, size_t /*thread*/) {
    // Float vector sums over runs of at most kFlush elements, added into a double total: the
    // rounding error does not grow with N*OH*OW.
    double total = 0;
    for (size_t o = 0; o < p.outer; ++o) {
      const float* row = dy + (o * p.C + c) * p.inner;
      for (size_t i = 0; i < p.inner; i += kFlush) {
        V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
        add_run(d, row + i, std::min(kFlush, p.inner - i), a0, a1, a2, a3);
        total += hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
      }
    }
    db[c] = static_cast<float>(p.accumulate ? db[c] + total : total);
  });
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(bias_backward_impl);

void bias_backward(const BiasGradParams& p, const float* dy, float* db, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(bias_backward_impl)(p, dy, db, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
