// Reductions over the middle axis of [outer, len, inner] (see reduce.h).
// inner == 1: each output reduces a contiguous row (vector accumulators, then one horizontal
// reduction). inner > 1: vectors run across `inner`, accumulating down the axis, so each lane
// is one output. Accumulation is in float; every output is computed by one task, so results
// do not depend on the thread count.
#include "kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/reduce.cpp"
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
constexpr float kInf = std::numeric_limits<float>::infinity();

// Accumulator of one reduction: identity (also the fill of partial loads), the per-element
// step, the horizontal combine of a vector of partial results and the final mapping.
struct SumAcc {
  static constexpr float kIdentity = 0.f;
  static V step(V acc, V x) { return hn::Add(acc, x); }
  static V lanes(D d, V acc) { return hn::SumOfLanes(d, acc); }
};
struct SquareAcc {
  static constexpr float kIdentity = 0.f;
  static V step(V acc, V x) { return hn::MulAdd(x, x, acc); }
  static V lanes(D d, V acc) { return hn::SumOfLanes(d, acc); }
};
struct MaxAcc {
  static constexpr float kIdentity = -kInf;
  static V step(V acc, V x) { return hn::Max(acc, x); }
  static V lanes(D d, V acc) { return hn::MaxOfLanes(d, acc); }
};
struct MinAcc {
  static constexpr float kIdentity = kInf;
  static V step(V acc, V x) { return hn::Min(acc, x); }
  static V lanes(D d, V acc) { return hn::MinOfLanes(d, acc); }
};
struct ProdAcc {
  static constexpr float kIdentity = 1.f;
  static V step(V acc, V x) { return hn::Mul(acc, x); }
  static V lanes(D d, V acc) {
    HWY_ALIGN float buf[kTailBufFloats];
    hn::Store(acc, d, buf);
    float r = 1.f;
    for (size_t i = 0; i < hn::Lanes(d); ++i) r *= buf[i];
    return hn::Set(d, r);
  }
};

// Reduction of a contiguous row x[0, n), broadcast to all lanes. Two accumulators hide latency.
template <class Acc>
HWY_INLINE V reduce_row(D d, const float* x, size_t n) {
  const size_t N = hn::Lanes(d);
  V a0 = hn::Set(d, Acc::kIdentity), a1 = a0;
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    a0 = Acc::step(a0, hn::LoadU(d, x + i));
    a1 = Acc::step(a1, hn::LoadU(d, x + i + N));
  }
  if (i + N <= n) {
    a0 = Acc::step(a0, hn::LoadU(d, x + i));
    i += N;
  }
  if (i < n) a1 = Acc::step(a1, LoadPart(d, x + i, n - i, Acc::kIdentity));
  if constexpr (std::is_same_v<Acc, SumAcc> || std::is_same_v<Acc, SquareAcc>) {
    return Acc::lanes(d, hn::Add(a0, a1));
  } else {
    return Acc::lanes(d, Acc::step(a0, a1));
  }
}

// Columns [0, w) (w <= Lanes) of a [len, inner] slice, one output per lane.
template <class Acc>
HWY_INLINE V reduce_columns(D d, const float* x, size_t len, size_t inner, size_t w) {
  V acc = hn::Set(d, Acc::kIdentity);
  for (size_t k = 0; k < len; ++k) acc = Acc::step(acc, LoadPart(d, x + k * inner, w, Acc::kIdentity));
  return acc;
}

// log(sum(exp(x - m))) + m with m = max; +-inf maxima are returned as is (x - m would be NaN).
HWY_INLINE float log_sum_exp_row(D d, const float* x, size_t n) {
  const float m = hn::GetLane(reduce_row<MaxAcc>(d, x, n));
  if (std::isinf(m)) return m;
  const size_t N = hn::Lanes(d);
  const V vm = hn::Set(d, m);
  V sum = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) sum = hn::Add(sum, ExpFull(d, hn::Sub(hn::LoadU(d, x + i), vm)));
  if (i < n) sum = hn::Add(sum, ExpFull(d, hn::Sub(LoadPart(d, x + i, n - i, -kInf), vm)));
  return m + std::log(hn::GetLane(hn::SumOfLanes(d, sum)));
}

HWY_INLINE V log_sum_exp_columns(D d, const float* x, size_t len, size_t inner, size_t w) {
  const V m = reduce_columns<MaxAcc>(d, x, len, inner, w);
  // Lanes whose max is +-inf: use 0 as the shift (avoids inf - inf) and return the max.
  const auto finite = hn::Lt(hn::Abs(m), hn::Set(d, kInf));
  const V shift = hn::IfThenElseZero(finite, m);
  V sum = hn::Zero(d);
  for (size_t k = 0; k < len; ++k) sum = hn::Add(sum, ExpFull(d, hn::Sub(LoadPart(d, x + k * inner, w), shift)));
  return hn::IfThenElse(finite, hn::Add(hn::Log(d, sum), shift), m);
}

// Outputs [o0, o1) x columns [j0, j1) of the whole reduction.
void reduce_block(const ReduceParams& p, const float* in, float* out, size_t o0, size_t o1, size_t j0, size_t j1) {
  const D d;
  const size_t N = hn::Lanes(d), len = p.len, inner = p.inner;
  auto finish = [&](V v) {
    switch (p.kind) {
      case ReduceKind::kMean: return hn::Div(v, hn::Set(d, static_cast<float>(len)));
      case ReduceKind::kL2: return hn::Sqrt(v);
      default: return v;
    }
  };
  auto by_row = [&](auto acc) {
    using Acc = decltype(acc);
    for (size_t o = o0; o < o1; ++o) out[o] = hn::GetLane(finish(reduce_row<Acc>(d, in + o * len, len)));
  };
  auto by_columns = [&](auto acc) {
    using Acc = decltype(acc);
    for (size_t o = o0; o < o1; ++o)
      for (size_t j = j0; j < j1; j += N) {
        const size_t w = std::min(N, j1 - j);
        StorePart(d, finish(reduce_columns<Acc>(d, in + o * len * inner + j, len, inner, w)), out + o * inner + j, w);
      }
  };
  auto dispatch = [&](auto acc) {
    if (inner == 1) {
      by_row(acc);
    } else {
      by_columns(acc);
    }
  };
  switch (p.kind) {
    case ReduceKind::kMean:
    case ReduceKind::kSum: return dispatch(SumAcc());
    case ReduceKind::kSumSquare:
    case ReduceKind::kL2: return dispatch(SquareAcc());
    case ReduceKind::kMax: return dispatch(MaxAcc());
    case ReduceKind::kMin: return dispatch(MinAcc());
    case ReduceKind::kProd: return dispatch(ProdAcc());
    case ReduceKind::kLogSumExp:
      if (inner == 1) {
        for (size_t o = o0; o < o1; ++o) out[o] = log_sum_exp_row(d, in + o * len, len);
      } else {
        for (size_t o = o0; o < o1; ++o)
          for (size_t j = j0; j < j1; j += N) {
            const size_t w = std::min(N, j1 - j);
            StorePart(d, log_sum_exp_columns(d, in + o * len * inner + j, len, inner, w), out + o * inner + j, w);
          }
      }
      return;
  }
}

}  // namespace

void reduce_impl(const ReduceParams& p, const float* in, float* out, const Parallel& par) {
  if (p.outer * p.inner == 0) return;
  const D d;
  const size_t N = hn::Lanes(d), len = std::max<size_t>(p.len, 1);
  // Tasks: (run of outer slices, block of columns); a block is a multiple of the vector width.
  const size_t block =
      p.inner == 1 ? 1 : std::max(N, std::min(p.inner, detail::kMinTaskElems / len) / N * N);
  const size_t blocks = (p.inner + block - 1) / block;
  const size_t slices = blocks > 1 ? 1 : std::max<size_t>(1, detail::kMinTaskElems / (len * p.inner));
  const size_t n_tasks = (p.outer + slices - 1) / slices * blocks;
  auto task = [&](size_t t, size_t) {
    const size_t o0 = t / blocks * slices, j0 = (t % blocks) * block;
    reduce_block(p, in, out, o0, std::min(p.outer, o0 + slices), j0, std::min(p.inner, j0 + block));
  };
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

HWY_EXPORT(reduce_impl);

void reduce(const ReduceParams& p, const float* in, float* out, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(reduce_impl)(p, in, out, par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
