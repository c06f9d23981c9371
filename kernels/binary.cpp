// Broadcasting elementwise binary ops (see binary.h).
//
// The strides are first simplified (size-1 dimensions dropped, dimensions that every operand
// walks contiguously merged; see dims_util.h), so "same shape" becomes one long row and
// "tensor op scalar" one row with a stride-0 operand. The innermost dimension then runs a
// vector loop when each input's inner stride is 1 or 0 (a broadcast value); other strides (a
// transposed input) take a scalar loop. Outer dimensions are walked by an odometer.
#include "kernels/binary.h"

#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/binary.cpp"
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

struct AddOp {
  static constexpr bool kVector = true;
  V vec(V a, V b) const { return hn::Add(a, b); }
  float scalar(float a, float b) const { return a + b; }
};
struct SubOp {
  static constexpr bool kVector = true;
  V vec(V a, V b) const { return hn::Sub(a, b); }
  float scalar(float a, float b) const { return a - b; }
};
struct MulOp {
  static constexpr bool kVector = true;
  V vec(V a, V b) const { return hn::Mul(a, b); }
  float scalar(float a, float b) const { return a * b; }
};
struct DivOp {
  static constexpr bool kVector = true;
  V vec(V a, V b) const { return hn::Div(a, b); }
  float scalar(float a, float b) const { return a / b; }
};
struct MaxOp {
  static constexpr bool kVector = true;
  V vec(V a, V b) const { return hn::Max(a, b); }
  float scalar(float a, float b) const { return a < b ? b : a; }
};
struct MinOp {
  static constexpr bool kVector = true;
  V vec(V a, V b) const { return hn::Min(a, b); }
  float scalar(float a, float b) const { return b < a ? b : a; }
};
// Highway 1.0.3 has no Pow, and exp(b*log(a)) is wrong for negative bases with integer
// exponents (which ONNX allows), so Pow stays scalar (powf).
struct PowOp {
  static constexpr bool kVector = false;
  V vec(V a, V) const { return a; }
  float scalar(float a, float b) const { return std::pow(a, b); }
};

// out[i] = op(A(i), B(i)) for i in [0, n), where A/B load a vector (stride 1) or repeat a
// broadcast value (stride 0). out may equal a or b when that input has stride 1.
template <class Op, class LoadA, class LoadB>
HWY_INLINE void vector_row(D d, const Op& op, float* out, size_t n, const LoadA& load_a, const LoadB& load_b) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const V r0 = op.vec(load_a(i, N), load_b(i, N));
    const V r1 = op.vec(load_a(i + N, N), load_b(i + N, N));
    hn::StoreU(r0, d, out + i);
    hn::StoreU(r1, d, out + i + N);
  }
  for (; i + N <= n; i += N) hn::StoreU(op.vec(load_a(i, N), load_b(i, N)), d, out + i);
  if (i < n) StorePart(d, op.vec(load_a(i, n - i), load_b(i, n - i)), out + i, n - i);
}

template <class Op>
void binary_row(const Op& op, const float* a, int64_t sa, const float* b, int64_t sb, float* out, size_t n) {
  const D d;
  if constexpr (Op::kVector) {
    auto contiguous = [d](const float* p) {
      return [d, p](size_t i, size_t cnt) { return LoadPart(d, p + i, cnt); };
    };
    auto broadcast = [d](const float* p) {
      const V v = hn::Set(d, *p);
      return [v](size_t, size_t) { return v; };
    };
    if (sa == 1 && sb == 1) return vector_row(d, op, out, n, contiguous(a), contiguous(b));
    if (sa == 1 && sb == 0) return vector_row(d, op, out, n, contiguous(a), broadcast(b));
    if (sa == 0 && sb == 1) return vector_row(d, op, out, n, broadcast(a), contiguous(b));
    if (sa == 0 && sb == 0) return vector_row(d, op, out, n, broadcast(a), broadcast(b));
  }
  for (size_t i = 0; i < n; ++i)
    out[i] = op.scalar(a[static_cast<int64_t>(i) * sa], b[static_cast<int64_t>(i) * sb]);
}

template <class Op>
void binary_nest(const Op& op, const detail::LoopNest& ln, const float* a, const float* b, float* out,
                 const Parallel& par) {
  const size_t rows = static_cast<size_t>(ln.rows()), inner = static_cast<size_t>(ln.inner());
  const size_t last = ln.rank - 1;
  const int64_t sa = ln.stride[1][last], sb = ln.stride[2][last];
  const detail::WorkSplit split(rows, inner);
  auto task = [&](size_t t, size_t) {
    size_t r0, r1, c0, c1;
    split.range(t, rows, inner, r0, r1, c0, c1);
    detail::RowCursor cur;
    cur.seek(ln, static_cast<int64_t>(r0));
    const int64_t c = static_cast<int64_t>(c0);
    for (size_t r = r0; r < r1; ++r, cur.next(ln))
      binary_row(op, a + cur.off[1] + c * sa, sa, b + cur.off[2] + c * sb, sb, out + cur.off[0] + c, c1 - c0);
  };
  if (split.n_tasks == 1) {
    task(0, 0);
  } else {
    par.run(split.n_tasks, task);
  }
}

}  // namespace

void binary_impl(const BinaryParams& p, const float* a, const float* b, float* out, const Parallel& par) {
  detail::LoopNest ln;
  ln.rank = p.out_shape.rank;
  ln.arrays = 3;
  int64_t out_stride = 1;
  for (size_t k = ln.rank; k-- > 0;) {
    ln.shape[k] = p.out_shape.d[k];
    ln.stride[0][k] = out_stride;
    out_stride *= p.out_shape.d[k];
    ln.stride[1][k] = p.a_strides.d[k];
    ln.stride[2][k] = p.b_strides.d[k];
  }
  if (ln.count() == 0) return;
  detail::simplify(ln);
  switch (p.op) {
    case BinaryOp::kAdd: return binary_nest(AddOp(), ln, a, b, out, par);
    case BinaryOp::kSub: return binary_nest(SubOp(), ln, a, b, out, par);
    case BinaryOp::kMul: return binary_nest(MulOp(), ln, a, b, out, par);
    case BinaryOp::kDiv: return binary_nest(DivOp(), ln, a, b, out, par);
    case BinaryOp::kMax: return binary_nest(MaxOp(), ln, a, b, out, par);
    case BinaryOp::kMin: return binary_nest(MinOp(), ln, a, b, out, par);
    case BinaryOp::kPow: return binary_nest(PowOp(), ln, a, b, out, par);
  }
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(binary_impl);

void binary(const BinaryParams& p, const float* a, const float* b, float* out, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(binary_impl)(p, a, b, out, par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
