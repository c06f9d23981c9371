// Max/average pooling (NCHW) and global pooling. One task per (n, c) plane.
// Per output row: the valid input rows of the window are reduced vertically into a row buffer
// (vector over input columns), the columns outside the input are filled with the identity
// (-inf / 0), then each output reduces KW entries of that buffer (vector over output columns for
// stride 1). Row-wise this is separable and exact: max/sum over the valid rectangle.
#include <algorithm>
#include <cmath>
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

void pool_plane(const Pool2dParams& p, const float* src, float* dst) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const bool is_max = p.kind == PoolKind::kMax;
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  const ptrdiff_t pt = static_cast<ptrdiff_t>(p.pad_top), pl = static_cast<ptrdiff_t>(p.pad_left);
  const size_t wspan = (p.KW - 1) * p.dil_w + 1;
  const float fill = is_max ? -std::numeric_limits<float>::infinity() : 0.f;
  // Output columns per chunk so that the input span (+ one vector of overread) fits the buffer.
  const size_t ob = std::min(p.OW, (kRowBuf - kMaxLanes - wspan) / p.stride_w + 1);
  HWY_ALIGN float row[kRowBuf];
  HWY_ALIGN float cnt[kRowBuf];
  HWY_ALIGN float tmp[kMaxLanes];
  for (size_t oh = 0; oh < p.OH; ++oh) {
    float* orow = dst + oh * p.OW;
    const ptrdiff_t hs = static_cast<ptrdiff_t>(oh * p.stride_h) - pt;
    size_t kh_lo = hs < 0 ? static_cast<size_t>((-hs + static_cast<ptrdiff_t>(p.dil_h) - 1) / static_cast<ptrdiff_t>(p.dil_h)) : 0;
    const size_t hvalid = count_in(hs, p.KH, p.dil_h, 0, H);
    if (hvalid == 0) {
      std::fill(orow, orow + p.OW, is_max ? kLowest : 0.f);
      continue;
    }
    const size_t hcount = p.count_include_pad
                              ? count_in(hs, p.KH, p.dil_h, -pt, H + static_cast<ptrdiff_t>(p.pad_bottom))
                              : hvalid;
    for (size_t ow0 = 0; ow0 < p.OW; ow0 += ob) {
      const size_t nout = std::min(ob, p.OW - ow0);
      const ptrdiff_t xs = static_cast<ptrdiff_t>(ow0 * p.stride_w) - pl;
      const size_t span = (nout - 1) * p.stride_w + wspan;
      // Vertical pass over the in-input part [x_lo, x_hi) of the span.
      const ptrdiff_t x_lo = std::clamp<ptrdiff_t>(xs, 0, W), x_hi = std::clamp<ptrdiff_t>(xs + static_cast<ptrdiff_t>(span), x_lo, W);
      std::fill(row, row + (x_lo - xs), fill);
      std::fill(row + (x_hi - xs), row + span + kMaxLanes, fill);
      float* r = row + (x_lo - xs);
      const size_t nx = static_cast<size_t>(x_hi - x_lo);
      for (size_t k = 0; k < hvalid; ++k) {
        const float* s = src + (hs + static_cast<ptrdiff_t>((kh_lo + k) * p.dil_h)) * W + x_lo;
        size_t x = 0;
        if (k == 0) {
          std::copy(s, s + nx, r);
          continue;
        }
        for (; x + L <= nx; x += L) {
          const VF a = hn::LoadU(d, r + x), b = hn::LoadU(d, s + x);
          hn::StoreU(is_max ? hn::Max(a, b) : hn::Add(a, b), d, r + x);
        }
        for (; x < nx; ++x) r[x] = is_max ? std::max(r[x], s[x]) : r[x] + s[x];
      }
      // Per-output counts: valid columns (max: empty-window check) or the divisor (avg).
      for (size_t t = 0; t < nout; ++t) {
        const ptrdiff_t ws = xs + static_cast<ptrdiff_t>(t * p.stride_w);
        size_t c;
        if (is_max || !p.count_include_pad) {
          c = count_in(ws, p.KW, p.dil_w, 0, W) * (is_max ? 1 : hcount);
        } else {
          c = count_in(ws, p.KW, p.dil_w, -pl, W + static_cast<ptrdiff_t>(p.pad_right)) * hcount;
        }
        cnt[t] = static_cast<float>(c);
      }
      std::fill(cnt + nout, cnt + nout + L, 1.f);  // lanes past the row end of the last vector
      // Horizontal pass.
      float* o = orow + ow0;
      size_t t = 0;
      if (p.stride_w == 1) {
        for (; t < nout; t += L) {
          VF acc = hn::LoadU(d, row + t);
          for (size_t kw = 1; kw < p.KW; ++kw) {
            const VF v = hn::LoadU(d, row + t + kw * p.dil_w);  // < span + L: inside row[]
            acc = is_max ? hn::Max(acc, v) : hn::Add(acc, v);
          }
          const VF c = hn::LoadU(d, cnt + t);
          const auto empty = hn::Eq(c, hn::Zero(d));
          acc = is_max ? hn::IfThenElse(empty, hn::Set(d, kLowest), acc)
                       : hn::IfThenZeroElse(empty, hn::Div(acc, hn::Max(c, hn::Set(d, 1.f))));
          if (t + L <= nout) {
            hn::StoreU(acc, d, o + t);
          } else {
            hn::Store(acc, d, tmp);
            std::copy(tmp, tmp + (nout - t), o + t);
          }
        }
      } else {
        for (; t < nout; ++t) {
          const float* rw = row + t * p.stride_w;
          float acc = rw[0];
          for (size_t kw = 1; kw < p.KW; ++kw) acc = is_max ? std::max(acc, rw[kw * p.dil_w]) : acc + rw[kw * p.dil_w];
          if (cnt[t] == 0.f) {
            o[t] = is_max ? kLowest : 0.f;
          } else {
            o[t] = is_max ? acc : acc / cnt[t];
          }
        }
      }
    }
  }
}

}  // namespace

void pool2d_impl(const Pool2dParams& p, const float* in, float* out, const Parallel* par) {
  if (p.N * p.C == 0 || p.OH == 0 || p.OW == 0) return;
  const bool fits = (p.KW - 1) * p.dil_w + 1 + kMaxLanes < kRowBuf;
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
