// Softmax / LogSoftmax over the middle axis of [outer, axis_len, inner] (see softmax.h).
// inner == 1: each row is contiguous and is vectorised along the axis (max, sum of exp, scale).
// inner > 1: vectors run across `inner` and walk the axis with stride inner, so no horizontal
// reductions are needed. Three passes: max, sum of exp(x - max), write.
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/softmax.cpp"
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
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// One contiguous row of n floats. in == out is fine: pass 2 reads x before writing the same
// position, pass 3 only reads out.
void softmax_row(const float* in, float* out, size_t n, bool log) {
  const D d;
  const size_t N = hn::Lanes(d);
  V vmax = hn::Set(d, kNegInf);
  size_t i = 0;
  for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, in + i));
  if (i < n) vmax = hn::Max(vmax, LoadPart(d, in + i, n - i, kNegInf));
  const V m = hn::MaxOfLanes(d, vmax);

  V vsum = hn::Zero(d);
  for (i = 0; i + N <= n; i += N) {
    const V e = ExpFull(d, hn::Sub(hn::LoadU(d, in + i), m));
    if (!log) hn::StoreU(e, d, out + i);
    vsum = hn::Add(vsum, e);
  }
  if (i < n) {
    // Lanes past n must not add to the sum.
    const V e = hn::IfThenElseZero(hn::FirstN(d, n - i), ExpFull(d, hn::Sub(LoadPart(d, in + i, n - i), m)));
    if (!log) StorePart(d, e, out + i, n - i);
    vsum = hn::Add(vsum, e);
  }
  const float sum = hn::GetLane(hn::SumOfLanes(d, vsum));

  if (log) {
    // (x - max) - log(sum), not x - (max + log(sum)): with |x| ~ 1e4 the latter rounds away
    // the log term's low bits.
    const V lse = hn::Set(d, std::log(sum));
    for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Sub(hn::Sub(hn::LoadU(d, in + i), m), lse), d, out + i);
    if (i < n) StorePart(d, hn::Sub(hn::Sub(LoadPart(d, in + i, n - i), m), lse), out + i, n - i);
  } else {
    const V inv = hn::Set(d, 1.f / sum);
    for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, out + i), inv), d, out + i);
    if (i < n) StorePart(d, hn::Mul(LoadPart(d, out + i, n - i), inv), out + i, n - i);
  }
}

// w <= Lanes columns [i0, i0 + w) of one outer slice; element k of column j at base[k*inner + j].
void softmax_columns(const float* in, float* out, size_t len, size_t inner, size_t w, bool log) {
  const D d;
  V m = hn::Set(d, kNegInf);
  for (size_t k = 0; k < len; ++k) m = hn::Max(m, LoadPart(d, in + k * inner, w));
  V sum = hn::Zero(d);
  for (size_t k = 0; k < len; ++k) {
    const V e = ExpFull(d, hn::Sub(LoadPart(d, in + k * inner, w), m));
    if (!log) StorePart(d, e, out + k * inner, w);
    sum = hn::Add(sum, e);
  }
  if (log) {
    const V lse = hn::Log(d, sum);
    for (size_t k = 0; k < len; ++k)
      StorePart(d, hn::Sub(hn::Sub(LoadPart(d, in + k * inner, w), m), lse), out + k * inner, w);
  } else {
    const V inv = hn::Div(hn::Set(d, 1.f), sum);
    for (size_t k = 0; k < len; ++k)
      StorePart(d, hn::Mul(LoadPart(d, out + k * inner, w), inv), out + k * inner, w);
  }
}

}  // namespace

void softmax_impl(const SoftmaxParams& p, const float* in, float* out, const Parallel& par) {
  const size_t len = p.axis_len, inner = p.inner;
  if (p.outer * len * inner == 0) return;
  if (inner == 1) {
    const detail::WorkSplit split(p.outer, len);
    const size_t per_task = split.chunks_per_row > 1 ? 1 : split.rows_per_task;  // rows are never cut
    const size_t n_tasks = (p.outer + per_task - 1) / per_task;
    auto task = [&](size_t t, size_t) {
      for (size_t o = t * per_task; o < std::min(p.outer, (t + 1) * per_task); ++o)
        softmax_row(in + o * len, out + o * len, len, p.log);
    };
    if (n_tasks == 1) {
      task(0, 0);
    } else {
      par.run(n_tasks, task);
    }
    return;
  }
  // Tasks: (run of outer slices, block of columns); a block is a multiple of the vector width
  // and slices are grouped only when one block covers all columns.
  const D d;
  const size_t N = hn::Lanes(d);
  const size_t block = std::max(N, std::min(inner, detail::kMinTaskElems / len) / N * N);
  const size_t blocks = (inner + block - 1) / block;
  const size_t slices = blocks > 1 ? 1 : std::max<size_t>(1, detail::kMinTaskElems / (len * inner));
  const size_t slice_tasks = (p.outer + slices - 1) / slices;
  auto task = [&](size_t t, size_t) {
    const size_t o0 = t / blocks * slices, o1 = std::min(p.outer, o0 + slices);
    const size_t j0 = (t % blocks) * block, j1 = std::min(inner, j0 + block);
    for (size_t o = o0; o < o1; ++o) {
      const size_t base = o * len * inner;
      for (size_t j = j0; j < j1; j += N)
        softmax_columns(in + base + j, out + base + j, len, inner, std::min(N, j1 - j), p.log);
    }
  };
  const size_t n_tasks = slice_tasks * blocks;
  if (n_tasks == 1) {
    task(0, 0);
  } else {
    par.run(n_tasks, task);
  }
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(softmax_impl);

void softmax(const SoftmaxParams& p, const float* in, float* out, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(softmax_impl)(p, in, out, par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
