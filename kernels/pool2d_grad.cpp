// Backward of max/average pooling and global average pooling (see pool2d_grad.h). One task per
// (n, c) plane: every plane of dx is written by one task, in a fixed order, so results do not
// depend on the thread count. Window geometry as in kernels/pool2d.cpp.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/pool2d_grad.h"

namespace convoy::kernels {
namespace {

constexpr float kLowest = std::numeric_limits<float>::lowest();  // max over an empty window (as pool2d)

// Number of k in [0, K) with lo <= start + k*dil < hi.
size_t count_in(ptrdiff_t start, size_t K, size_t dil, ptrdiff_t lo, ptrdiff_t hi) {
  const ptrdiff_t d = static_cast<ptrdiff_t>(dil);
  ptrdiff_t k_lo = 0;
  if (start < lo) k_lo = (lo - start + d - 1) / d;
  if (hi <= start) return 0;
  const ptrdiff_t k_hi = std::min<ptrdiff_t>(static_cast<ptrdiff_t>(K), (hi - start + d - 1) / d);
  return k_hi > k_lo ? static_cast<size_t>(k_hi - k_lo) : 0;
}

// First k in [0, K) with start + k*dil >= 0 (K when there is none).
size_t first_in(ptrdiff_t start, size_t K, size_t dil) {
  if (start >= 0) return 0;
  const ptrdiff_t d = static_cast<ptrdiff_t>(dil);
  return std::min(K, static_cast<size_t>((-start + d - 1) / d));
}

// In-input taps of one window along one axis: positions start + k*dil for k in [k0, k0 + n).
struct Span {
  size_t k0, n;
};
Span span(ptrdiff_t start, size_t K, size_t dil, size_t size) {
  return Span{first_in(start, K, dil), count_in(start, K, dil, 0, static_cast<ptrdiff_t>(size))};
}

}  // namespace

void maxpool2d_forward_argmax(const Pool2dParams& p, const float* in, float* out, int32_t* argmax,
                              const Parallel& par) {
  if (p.N * p.C == 0 || p.OH == 0 || p.OW == 0) return;
  const size_t ohw = p.OH * p.OW;
  par.run(p.N * p.C, [&](size_t plane, size_t /*thread*/) {
    const float* src = in + plane * p.H * p.W;
    float* dst = out + plane * ohw;
    int32_t* arg = argmax + plane * ohw;
    for (size_t oh = 0; oh < p.OH; ++oh) {
      const ptrdiff_t hs = static_cast<ptrdiff_t>(oh * p.stride_h) - static_cast<ptrdiff_t>(p.pad_top);
      const Span sh = span(hs, p.KH, p.dil_h, p.H);
      for (size_t ow = 0; ow < p.OW; ++ow) {
        const ptrdiff_t ws = static_cast<ptrdiff_t>(ow * p.stride_w) - static_cast<ptrdiff_t>(p.pad_left);
        const Span sw = span(ws, p.KW, p.dil_w, p.W);
        const size_t o = oh * p.OW + ow;
        if (sh.n == 0 || sw.n == 0) {  // window entirely in the padding: no input gets a gradient
          dst[o] = kLowest;
          arg[o] = -1;
          continue;
        }
        // PyTorch's rule: start at the first in-input position, replace on a strictly greater
        // value (so the first maximum in window order wins) or on NaN.
        const size_t ih0 = static_cast<size_t>(hs + static_cast<ptrdiff_t>(sh.k0 * p.dil_h));
        const size_t iw0 = static_cast<size_t>(ws + static_cast<ptrdiff_t>(sw.k0 * p.dil_w));
        size_t best = ih0 * p.W + iw0;
        float m = -std::numeric_limits<float>::infinity();
        for (size_t a = 0; a < sh.n; ++a) {
          const size_t row = (ih0 + a * p.dil_h) * p.W;
          for (size_t b = 0; b < sw.n; ++b) {
            const size_t idx = row + iw0 + b * p.dil_w;
            const float v = src[idx];
            if (v > m || std::isnan(v)) {
              m = v;
              best = idx;
            }
          }
        }
        dst[o] = m;
        arg[o] = static_cast<int32_t>(best);
      }
    }
  });
}

void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx,
                        const Parallel& par) {
  if (p.N * p.C == 0 || p.H * p.W == 0) return;
  const size_t ohw = p.OH * p.OW, hw = p.H * p.W;
  par.run(p.N * p.C, [&](size_t plane, size_t /*thread*/) {
    float* d = dx + plane * hw;
    const float* g = dy + plane * ohw;
    const int32_t* arg = argmax + plane * ohw;
    std::fill(d, d + hw, 0.f);
    for (size_t o = 0; o < ohw; ++o)
      if (arg[o] >= 0) d[arg[o]] += g[o];
  });
}

void avgpool2d_backward(const Pool2dParams& p, const float* dy, float* dx, const Parallel& par) {
  if (p.N * p.C == 0 || p.H * p.W == 0) return;
  const size_t ohw = p.OH * p.OW, hw = p.H * p.W;
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  const ptrdiff_t pt = static_cast<ptrdiff_t>(p.pad_top), pl = static_cast<ptrdiff_t>(p.pad_left);
  par.run(p.N * p.C, [&](size_t plane, size_t /*thread*/) {
    float* d = dx + plane * hw;
    const float* g = dy + plane * ohw;
    std::fill(d, d + hw, 0.f);
    for (size_t oh = 0; oh < p.OH; ++oh) {
      const ptrdiff_t hs = static_cast<ptrdiff_t>(oh * p.stride_h) - pt;
      const Span sh = span(hs, p.KH, p.dil_h, p.H);
      if (sh.n == 0) continue;
      const size_t hcount = p.count_include_pad
                                ? count_in(hs, p.KH, p.dil_h, -pt, H + static_cast<ptrdiff_t>(p.pad_bottom))
                                : sh.n;
      for (size_t ow = 0; ow < p.OW; ++ow) {
        const ptrdiff_t ws = static_cast<ptrdiff_t>(ow * p.stride_w) - pl;
        const Span sw = span(ws, p.KW, p.dil_w, p.W);
        if (sw.n == 0) continue;
        const size_t wcount = p.count_include_pad
                                  ? count_in(ws, p.KW, p.dil_w, -pl, W + static_cast<ptrdiff_t>(p.pad_right))
                                  : sw.n;
        // Same divisor as the forward: the gradient of acc / cnt is dy / cnt for every term.
        const float v = g[oh * p.OW + ow] / static_cast<float>(hcount * wcount);
        const size_t ih0 = static_cast<size_t>(hs + static_cast<ptrdiff_t>(sh.k0 * p.dil_h));
        const size_t iw0 = static_cast<size_t>(ws + static_cast<ptrdiff_t>(sw.k0 * p.dil_w));
        for (size_t a = 0; a < sh.n; ++a) {
          float* row = d + (ih0 + a * p.dil_h) * p.W + iw0;
          for (size_t b = 0; b < sw.n; ++b) row[b * p.dil_w] += v;
        }
      }
    }
  });
}

void global_avgpool_backward(const GlobalPoolParams& p, const float* dy, float* dx, const Parallel& par) {
  if (p.NC == 0 || p.HW == 0) return;
  // Planes per task: about 16K floats written per task.
  const size_t per_task = std::max<size_t>(1, (size_t{1} << 14) / p.HW);
  const size_t n_tasks = (p.NC + per_task - 1) / per_task;
  const float count = static_cast<float>(p.HW);
  par.run(n_tasks, [&](size_t task, size_t /*thread*/) {
    const size_t nc1 = std::min(p.NC, (task + 1) * per_task);
    for (size_t nc = task * per_task; nc < nc1; ++nc) {
      const float v = dy[nc] / count;
      std::fill(dx + nc * p.HW, dx + (nc + 1) * p.HW, v);
    }
  });
}

}  // namespace convoy::kernels
