// Max/average pooling (NCHW) and global pooling. One task per (n, c) plane.
// Per output row: the valid input rows of the window are reduced vertically into a row buffer
// (vector over input columns), whose columns outside the input hold the identity (-inf / 0),
// then each output reduces KW entries of that buffer, vector over output columns: stride 1
// plain loads, stride 2 de-interleaved loads (the 3x3/2 pools of ResNet and AlexNet), other
// strides gathers. Row-wise this is separable and exact: max/sum over the valid rectangle.
// Column counts (empty-window check, average divisor) depend on the column only and are set
// once per plane.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/pool2d.h"

#ifndef CONVOY_KERNELS_POOL2D_SHARED
#define CONVOY_KERNELS_POOL2D_SHARED
namespace convoy::kernels::pool_detail {

inline constexpr size_t kMaxLanes = 64;
inline constexpr size_t kRowBuf = 4096;  // floats of the per-row buffer (on the stack)

// Number of k in [0, K) with lo <= start + k*dil < hi.
inline size_t count_in(ptrdiff_t start, size_t K, size_t dil, ptrdiff_t lo, ptrdiff_t hi) {
  const ptrdiff_t d = static_cast<ptrdiff_t>(dil);
  ptrdiff_t k_lo = 0;
  if (start < lo) k_lo = (lo - start + d - 1) / d;
  if (hi <= start) return 0;
  ptrdiff_t k_hi = std::min<ptrdiff_t>(static_cast<ptrdiff_t>(K), (hi - start + d - 1) / d);
  return k_hi > k_lo ? static_cast<size_t>(k_hi - k_lo) : 0;
}

}  // namespace convoy::kernels::pool_detail
#endif  // CONVOY_KERNELS_POOL2D_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/pool2d.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace {

using namespace pool_detail;  // NOLINT
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr float kLowest = std::numeric_limits<float>::lowest();  // max over an empty window (as ORT)

// Direct loops, for windows too wide for the row buffer (huge 1-D kernels).
void pool_plane_direct(const Pool2dParams& p, const float* src, float* dst) {
  const bool is_max = p.kind == PoolKind::kMax;
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  for (size_t oh = 0; oh < p.OH; ++oh) {
    const ptrdiff_t hs = static_cast<ptrdiff_t>(oh * p.stride_h) - static_cast<ptrdiff_t>(p.pad_top);
    for (size_t ow = 0; ow < p.OW; ++ow) {
      const ptrdiff_t ws = static_cast<ptrdiff_t>(ow * p.stride_w) - static_cast<ptrdiff_t>(p.pad_left);
      float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.f;
      size_t n = 0;
      for (size_t kh = 0; kh < p.KH; ++kh) {
        const ptrdiff_t ih = hs + static_cast<ptrdiff_t>(kh * p.dil_h);
        if (ih < 0 || ih >= H) continue;
        for (size_t kw = 0; kw < p.KW; ++kw) {
          const ptrdiff_t iw = ws + static_cast<ptrdiff_t>(kw * p.dil_w);
          if (iw < 0 || iw >= W) continue;
          const float v = src[ih * W + iw];
          acc = is_max ? std::max(acc, v) : acc + v;
          ++n;
        }
      }
      float out;
      if (is_max) {
        out = n ? acc : kLowest;
      } else {
        size_t cnt = n;
        if (p.count_include_pad) {
          cnt = count_in(hs, p.KH, p.dil_h, -static_cast<ptrdiff_t>(p.pad_top), H + static_cast<ptrdiff_t>(p.pad_bottom)) *
                count_in(ws, p.KW, p.dil_w, -static_cast<ptrdiff_t>(p.pad_left), W + static_cast<ptrdiff_t>(p.pad_right));
        }
        out = cnt ? acc / static_cast<float>(cnt) : 0.f;
      }
      dst[oh * p.OW + ow] = out;
    }
  }
}

// One vector of taps p[i*S], i < lanes: S = 1 a plain load, S = 2 de-interleaved from two loads
// (ConcatEven), other strides (S = 0) a gather through the index table idx (i * stride).
template <size_t S>
HWY_INLINE VF load_taps(const DF d, const float* p, const int32_t* idx) {
  if constexpr (S == 1) {
    (void)idx;
    return hn::LoadU(d, p);
  } else if constexpr (S == 2) {
    (void)idx;
#if HWY_TARGET == HWY_SCALAR
    return hn::LoadU(d, p);  // one lane
#else
    return hn::ConcatEven(d, hn::LoadU(d, p + hn::Lanes(d)), hn::LoadU(d, p));
#endif
  } else {
    const hn::RebindToSigned<DF> di;
    return hn::GatherIndex(d, p, hn::LoadU(di, idx));
  }
}

// Vertical pass: r[x] = max/sum over the n valid window rows s0 + k*rstride, x < nx.
// The last partial vector is recomputed overlapping the previous one (same values), so
// nothing is read or written outside [0, nx).
template <bool kMaxOp>
HWY_INLINE void vertical_pass(const float* s0, size_t rstride, size_t n, size_t nx, float* HWY_RESTRICT r) {
  const DF d;
  const size_t L = hn::Lanes(d);
  auto col = [&](size_t x) {
    const float* s = s0 + x;
    VF a = hn::LoadU(d, s);
    for (size_t k = 1; k < n; ++k) {
      const VF b = hn::LoadU(d, s + k * rstride);
      a = kMaxOp ? hn::Max(a, b) : hn::Add(a, b);
    }
    hn::StoreU(a, d, r + x);
  };
  if (nx >= L) {
    size_t x = 0;
    for (; x + L <= nx; x += L) col(x);
    if (x < nx) col(nx - L);
    return;
  }
  for (size_t x = 0; x < nx; ++x) {
    float a = s0[x];
    for (size_t k = 1; k < n; ++k) a = kMaxOp ? std::max(a, s0[x + k * rstride]) : a + s0[x + k * rstride];
    r[x] = a;
  }
}

// Horizontal pass over one row buffer: o[t] = reduce_kw row[t*stride + kw*dil], t < nout, then
// max: empty windows (column count 0) -> lowest; avg: divided by colcnt[t] * hcount.
// Like the vertical pass, a partial last vector overlaps the previous one; rows shorter than a
// vector go through tmp. Reads stay below max(span, stride*(L-1) + wspan) + 1 (see pool_plane).
template <size_t S, bool kMaxOp>
void horizontal_pass(const float* row, size_t stride, size_t KW, size_t dil, const float* colcnt, bool any_empty,
                     float hcount, const int32_t* idx, size_t nout, float* o) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t step = S == 0 ? stride : S;
  auto vec = [&](size_t t) {
    const float* base = row + t * step;
    VF acc = load_taps<S>(d, base, idx);
    for (size_t kw = 1; kw < KW; ++kw) {
      const VF v = load_taps<S>(d, base + kw * dil, idx);
      acc = kMaxOp ? hn::Max(acc, v) : hn::Add(acc, v);
    }
    if (kMaxOp) {
      if (any_empty) acc = hn::IfThenElse(hn::Eq(hn::LoadU(d, colcnt + t), hn::Zero(d)), hn::Set(d, kLowest), acc);
    } else {
      const VF c = hn::Mul(hn::LoadU(d, colcnt + t), hn::Set(d, hcount));
      acc = hn::IfThenZeroElse(hn::Eq(c, hn::Zero(d)), hn::Div(acc, hn::Max(c, hn::Set(d, 1.f))));
    }
    return acc;
  };
  if (nout >= L) {
    size_t t = 0;
    for (; t + L <= nout; t += L) hn::StoreU(vec(t), d, o + t);
    if (t < nout) hn::StoreU(vec(nout - L), d, o + nout - L);
    return;
  }
  HWY_ALIGN float tmp[kMaxLanes];
  hn::Store(vec(0), d, tmp);
  std::copy(tmp, tmp + nout, o);
}

template <bool kMaxOp>
void horizontal_dispatch(const float* row, size_t stride, size_t KW, size_t dil, const float* colcnt, bool any_empty,
                         float hcount, const int32_t* idx, size_t nout, float* o) {
  switch (stride) {
    case 1: horizontal_pass<1, kMaxOp>(row, stride, KW, dil, colcnt, any_empty, hcount, idx, nout, o); break;
    case 2: horizontal_pass<2, kMaxOp>(row, stride, KW, dil, colcnt, any_empty, hcount, idx, nout, o); break;
    default: horizontal_pass<0, kMaxOp>(row, stride, KW, dil, colcnt, any_empty, hcount, idx, nout, o); break;
  }
}

// Output columns are cut into chunks whose input span fits the row buffer; per chunk the
// column counts and the identity fill of the columns outside the input are set once, then
// every output row takes one vertical and one horizontal pass.
void pool_plane(const Pool2dParams& p, const float* src, float* dst) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const bool is_max = p.kind == PoolKind::kMax;
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  const ptrdiff_t pt = static_cast<ptrdiff_t>(p.pad_top), pl = static_cast<ptrdiff_t>(p.pad_left);
  const size_t s = p.stride_w;
  const size_t wspan = (p.KW - 1) * p.dil_w + 1;
  const float fill = is_max ? -std::numeric_limits<float>::infinity() : 0.f;
  // s*(ob-1) + wspan + 1 <= kRowBuf (pool2d_impl checks that one output fits).
  const size_t ob = std::min(p.OW, (kRowBuf - wspan - 1) / s + 1);
  HWY_ALIGN float row[kRowBuf];
  HWY_ALIGN float colcnt[kRowBuf + kMaxLanes];
  HWY_ALIGN int32_t idx[kMaxLanes];
  for (size_t i = 0; i < L; ++i) idx[i] = static_cast<int32_t>(i * s);
  for (size_t ow0 = 0; ow0 < p.OW; ow0 += ob) {
    const size_t nout = std::min(ob, p.OW - ow0);
    const ptrdiff_t xs = static_cast<ptrdiff_t>(ow0 * s) - pl;
    const size_t span = (nout - 1) * s + wspan;
    // Highest row index a horizontal pass reads + 1 (full vectors of a short chunk read past
    // span; the stride-2 de-interleave reads one float past the last tap).
    const size_t read_end = std::max(span, s * (L - 1) + wspan) + 1;
    const ptrdiff_t x_lo = std::clamp<ptrdiff_t>(xs, 0, W), x_hi = std::clamp<ptrdiff_t>(xs + static_cast<ptrdiff_t>(span), x_lo, W);
    std::fill(row, row + (x_lo - xs), fill);
    std::fill(row + (x_hi - xs), row + read_end, fill);
    float* r = row + (x_lo - xs);
    const size_t nx = static_cast<size_t>(x_hi - x_lo);
    // Per-output column counts: valid columns (max: empty-window check) or the divisor's column
    // factor (avg).
    bool any_empty = false;
    for (size_t t = 0; t < nout; ++t) {
      const ptrdiff_t ws = xs + static_cast<ptrdiff_t>(t * s);
      const size_t c = (is_max || !p.count_include_pad)
                           ? count_in(ws, p.KW, p.dil_w, 0, W)
                           : count_in(ws, p.KW, p.dil_w, -pl, W + static_cast<ptrdiff_t>(p.pad_right));
      colcnt[t] = static_cast<float>(c);
      any_empty |= c == 0;
    }
    std::fill(colcnt + nout, colcnt + nout + L, 1.f);  // lanes past the row end of a short row
    for (size_t oh = 0; oh < p.OH; ++oh) {
      float* o = dst + oh * p.OW + ow0;
      const ptrdiff_t hs = static_cast<ptrdiff_t>(oh * p.stride_h) - pt;
      const size_t kh_lo = hs < 0 ? static_cast<size_t>((-hs + static_cast<ptrdiff_t>(p.dil_h) - 1) / static_cast<ptrdiff_t>(p.dil_h)) : 0;
      const size_t hvalid = count_in(hs, p.KH, p.dil_h, 0, H);
      if (hvalid == 0) {
        std::fill(o, o + nout, is_max ? kLowest : 0.f);
        continue;
      }
      const size_t hcount = p.count_include_pad
                                ? count_in(hs, p.KH, p.dil_h, -pt, H + static_cast<ptrdiff_t>(p.pad_bottom))
                                : hvalid;
      const float* s0 = src + (hs + static_cast<ptrdiff_t>(kh_lo * p.dil_h)) * W + x_lo;
      const size_t rstride = p.dil_h * p.W;
      if (is_max) {
        vertical_pass<true>(s0, rstride, hvalid, nx, r);
        horizontal_dispatch<true>(row, s, p.KW, p.dil_w, colcnt, any_empty, 1.f, idx, nout, o);
      } else {
        vertical_pass<false>(s0, rstride, hvalid, nx, r);
        horizontal_dispatch<false>(row, s, p.KW, p.dil_w, colcnt, false, static_cast<float>(hcount), idx, nout, o);
      }
    }
  }
}

}  // namespace

void pool2d_impl(const Pool2dParams& p, const float* in, float* out, const Parallel* par) {
  if (p.N * p.C == 0 || p.OH == 0 || p.OW == 0) return;
  // The row buffer must hold one full vector of outputs (see pool_plane's read_end).
  const size_t wspan = (p.KW - 1) * p.dil_w + 1;
  const bool fits = p.stride_w * kMaxLanes + wspan + 1 <= kRowBuf;
  par->run(p.N * p.C, [&](size_t plane, size_t /*thread*/) {
    const float* src = in + plane * p.H * p.W;
    float* dst = out + plane * p.OH * p.OW;
    if (fits) {
      pool_plane(p, src, dst);
    } else {
      pool_plane_direct(p, src, dst);
    }
  });
}

void global_pool_impl(const GlobalPoolParams& p, const float* in, float* out, const Parallel* par) {
  if (p.NC == 0) return;
  par->run(p.NC, [&](size_t plane, size_t /*thread*/) {
    const DF d;
    const size_t L = hn::Lanes(d);
    const float* s = in + plane * p.HW;
    const bool is_max = p.kind == PoolKind::kMax;
    float r;
    if (p.HW == 0) {
      out[plane] = is_max ? kLowest : 0.f;
      return;
    }
    size_t i = 0;
    if (is_max) {
      VF m0 = hn::Set(d, -std::numeric_limits<float>::infinity()), m1 = m0;
      for (; i + 2 * L <= p.HW; i += 2 * L) {
        m0 = hn::Max(m0, hn::LoadU(d, s + i));
        m1 = hn::Max(m1, hn::LoadU(d, s + i + L));
      }
      for (; i + L <= p.HW; i += L) m0 = hn::Max(m0, hn::LoadU(d, s + i));
      r = hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
      for (; i < p.HW; ++i) r = std::max(r, s[i]);
    } else {
      VF a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
      for (; i + 4 * L <= p.HW; i += 4 * L) {
        a0 = hn::Add(a0, hn::LoadU(d, s + i));
        a1 = hn::Add(a1, hn::LoadU(d, s + i + L));
        a2 = hn::Add(a2, hn::LoadU(d, s + i + 2 * L));
        a3 = hn::Add(a3, hn::LoadU(d, s + i + 3 * L));
      }
      for (; i + L <= p.HW; i += L) a0 = hn::Add(a0, hn::LoadU(d, s + i));
      r = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
      for (; i < p.HW; ++i) r += s[i];
      r /= static_cast<float>(p.HW);
    }
    out[plane] = r;
  });
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(pool2d_impl);
HWY_EXPORT(global_pool_impl);

void pool2d(const Pool2dParams& p, const float* in, float* out, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(pool2d_impl)(p, in, out, &par);
}

void global_pool(const GlobalPoolParams& p, const float* in, float* out, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(global_pool_impl)(p, in, out, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
