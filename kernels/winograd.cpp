// Winograd F(4x4, 3x3) convolution: see kernels/winograd.h for the algorithm and the choice of F.
// Transform matrices (Lavin & Gray, points 0, +-1, +-2, inf):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// Transform position xi = 6 * i + j, i along H, j along W.
#include <algorithm>
#include <cstring>

#include "kernels/winograd.h"

#ifndef CONVOY_KERNELS_WINOGRAD_SHARED
#define CONVOY_KERNELS_WINOGRAD_SHARED
namespace convoy::kernels::wino_detail {

inline constexpr size_t kPos = 36;            // transform positions of F(4x4, 3x3)
inline constexpr size_t kPanel = 16;          // output channels per packed weight panel
inline constexpr size_t kMaxLanes = 16;       // bound on the float lanes of a vector used here
inline constexpr size_t kBlockFloats = 640 * 1024;  // V + Y of one tile block (2.5 MiB, L2 + L3)
inline constexpr size_t kLeanTiles = 32;      // fewer tiles: weights transformed per run (see header)
inline constexpr size_t kLeanC = 32;          // input channels per on-the-fly weight transform block
inline constexpr size_t kStripMax = 64;       // widest GEMM strip of output channels (AVX-512)
inline constexpr size_t kLeanPrefetch = 8;    // input channels of raw weights prefetched ahead

// Fewer tiles than kLeanTiles: the packed weights are the raw 3x3 ones in [Mp/16][C][9][16] order.
inline bool lean(const Conv2dParams& p) { return p.N * ((p.OH + 3) / 4) * ((p.OW + 3) / 4) < kLeanTiles; }

inline size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }
inline size_t round_up(size_t a, size_t b) { return div_up(a, b) * b; }

// Work decomposition; does not depend on the thread count (scratch is per thread).
struct Geom {
  size_t th = 0, tw = 0, T = 0;  // tile rows, tile columns, tiles of the whole batch
  size_t Mp = 0;                 // M rounded up to a panel
  size_t TB = 0, n_tb = 0;       // tiles per block, blocks
  size_t Mc = 0, n_mc = 0;       // output channels per task (multiple of kPanel), chunks
  size_t TBs = 0;                // V row stride: TB + a vector of slack for full-vector stores
  size_t vx = 0;                 // V stride between transform positions
  size_t Wb = 0;                 // floats per padded input row / vertical-transform row
  size_t v_floats = 0, y_floats = 0, u_floats = 0, per_thread = 0;
};

inline Geom geom(const Conv2dParams& p) {
  Geom g;
  g.th = div_up(p.OH, 4);
  g.tw = div_up(p.OW, 4);
  g.T = p.N * g.th * g.tw;
  g.Mp = round_up(p.M, kPanel);
  size_t tb = std::max<size_t>(1, kBlockFloats / (kPos * (p.C + g.Mp)));
  if (tb >= 12) tb = tb / 6 * 6;  // whole register blocks of the GEMM
  tb = std::min(tb, g.T);
  g.n_tb = div_up(g.T, tb);
  g.TB = div_up(g.T, g.n_tb);  // balanced blocks
  // Small maps have few tile blocks: split the output channels too (each chunk redoes the cheap
  // input transform) so that two or more workers have something to do.
  size_t n_mc = 1;
  if (g.n_tb < 4) n_mc = std::min(div_up(4, g.n_tb), std::max<size_t>(1, g.Mp / 64));
  g.Mc = round_up(div_up(g.Mp, n_mc), kPanel);
  g.n_mc = div_up(g.Mp, g.Mc);
  g.TBs = g.TB + kMaxLanes;
  g.Wb = 4 * round_up(g.tw, kMaxLanes) + 2 * kMaxLanes;
  // Position strides are 64 B more than C * TBs (Y: tiles * Mc), which are often multiples of
  // 4 KiB: the 36 loads/stores of one tile's transform would otherwise all hit one L1 set.
  g.vx = p.C * g.TBs + kPanel;
  g.v_floats = kPos * g.vx;
  g.y_floats = kPos * (g.TB * g.Mc + kPanel);
  g.u_floats = lean(p) ? kPos * (std::min(kStripMax, g.Mp) * std::min(kLeanC, p.C) + kPanel) : 0;
  // V, Y, transformed weight block (lean), 6 padded input rows, 6 vertical-transform rows,
  // bias/residual staging.
  g.per_thread = g.v_floats + g.y_floats + g.u_floats + 12 * g.Wb + 4 * kMaxLanes + kMaxLanes + 64;
  return g;
}

}  // namespace convoy::kernels::wino_detail
#endif  // CONVOY_KERNELS_WINOGRAD_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/winograd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "kernels/epilogue-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace {

using namespace wino_detail;  // NOLINT
using DF = hn::CappedTag<float, kMaxLanes>;
using VF = hn::Vec<DF>;
constexpr size_t kL = hn::MaxLanes(DF());
// GEMM register block: kRows tiles x kNV vectors of output channels (AVX-512: 6 x 64 channels,
// 24 accumulators of 32 registers; AVX2: 6 x 16; 128-bit: 3 x 16, of 16 registers).
constexpr size_t kNV = kL >= 16 ? 4 : kPanel / kL;
constexpr size_t kRows = kL >= 8 ? 6 : 3;
static_assert(kPanel % kL == 0, "a vector must not straddle two weight panels");

// t = B^T d (one 6-point transform, on vectors).
HWY_INLINE void bt6(const VF* d, VF* t) {
  const DF df;
  const VF k4 = hn::Set(df, 4.f), k5 = hn::Set(df, 5.f), k2 = hn::Set(df, 2.f);
  t[0] = hn::NegMulAdd(k5, d[2], hn::MulAdd(k4, d[0], d[4]));
  t[1] = hn::NegMulAdd(k4, hn::Add(d[1], d[2]), hn::Add(d[3], d[4]));
  t[2] = hn::MulAdd(k4, hn::Sub(d[1], d[2]), hn::Sub(d[4], d[3]));
  const VF a = hn::Sub(d[4], d[2]), b = hn::Mul(k2, hn::Sub(d[3], d[1]));
  t[3] = hn::Add(a, b);
  t[4] = hn::Sub(a, b);
  t[5] = hn::NegMulAdd(k5, d[3], hn::MulAdd(k4, d[1], d[5]));
}

// o = A^T y (6 points to 4).
HWY_INLINE void at6(const VF* y, VF* o) {
  const DF df;
  const VF a = hn::Add(y[1], y[2]), b = hn::Sub(y[1], y[2]);
  const VF c = hn::Add(y[3], y[4]), e = hn::Sub(y[3], y[4]);
  o[0] = hn::Add(hn::Add(y[0], a), c);
  o[1] = hn::MulAdd(hn::Set(df, 2.f), e, b);
  o[2] = hn::MulAdd(hn::Set(df, 4.f), c, a);
  o[3] = hn::Add(hn::MulAdd(hn::Set(df, 8.f), e, b), y[5]);
}

// Input transform of tiles [t_begin, t_end) into V[xi][c][t - t_begin] (row stride g.TBs).
// P: 6 padded input rows, Tv: their vertical transform (g.Wb floats each).
void input_transform(const Conv2dParams& p, const Geom& g, const float* in, size_t t_begin, size_t t_end,
                     float* HWY_RESTRICT V, float* HWY_RESTRICT P, float* HWY_RESTRICT Tv) {
  const DF df;
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  for (size_t t = t_begin; t < t_end;) {
    const size_t n = t / (g.th * g.tw), ty = t / g.tw % g.th, tx0 = t % g.tw;
    const size_t seg = std::min(g.tw - tx0, t_end - t);  // tiles of this tile row in the block
    const size_t vt = round_up(seg, kL);                 // tiles covered by whole vectors
    const size_t xv = round_up(4 * vt + 4, kL);          // columns the horizontal pass reads
    const ptrdiff_t ix0 = static_cast<ptrdiff_t>(4 * tx0) - static_cast<ptrdiff_t>(p.pad_left);
    const ptrdiff_t lo = std::clamp<ptrdiff_t>(-ix0, 0, static_cast<ptrdiff_t>(xv));
    const ptrdiff_t hi = std::clamp<ptrdiff_t>(W - ix0, lo, static_cast<ptrdiff_t>(xv));
    const size_t col = t - t_begin;
    for (size_t c = 0; c < p.C; ++c) {
      const float* plane = in + (n * p.C + c) * p.H * p.W;
      for (size_t k = 0; k < 6; ++k) {
        float* row = P + k * g.Wb;
        const ptrdiff_t iy = static_cast<ptrdiff_t>(4 * ty + k) - static_cast<ptrdiff_t>(p.pad_top);
        if (iy < 0 || iy >= H || hi <= lo) {
          std::fill(row, row + xv, 0.f);
          continue;
        }
        std::fill(row, row + lo, 0.f);
        std::memcpy(row + lo, plane + (iy * W + ix0 + lo), static_cast<size_t>(hi - lo) * sizeof(float));
        std::fill(row + hi, row + xv, 0.f);
      }
      // Vertical pass, vectorised over columns.
      for (size_t x = 0; x < xv; x += kL) {
        VF d[6], o[6];
        for (size_t k = 0; k < 6; ++k) d[k] = hn::LoadU(df, P + k * g.Wb + x);
        bt6(d, o);
        for (size_t i = 0; i < 6; ++i) hn::StoreU(o[i], df, Tv + i * g.Wb + x);
      }
      // Horizontal pass, vectorised over tiles: column 4q + k of tile q comes from the stride-4
      // deinterleave at 4q (k = 0..3) and at 4q + 4 (k = 4, 5). Whole-vector stores may run past
      // this row's tiles into the next row's slots (rewritten later) or into the TBs slack.
      float* vc = V + c * g.TBs + col;
      for (size_t i = 0; i < 6; ++i) {
        const float* tr = Tv + i * g.Wb;
        for (size_t q = 0; q < vt; q += kL) {
          VF d[6], o[6], u0, u1;
          hn::LoadInterleaved4(df, tr + 4 * q, d[0], d[1], d[2], d[3]);
          hn::LoadInterleaved4(df, tr + 4 * q + 4, d[4], d[5], u0, u1);
          bt6(d, o);
          for (size_t j = 0; j < 6; ++j) hn::StoreU(o[j], df, vc + (i * 6 + j) * g.vx + q);
        }
      }
    }
    t += seg;
  }
}

// Y[r][0, NV*kL) += sum_c V[c][r] * U[c][...] for R tiles; u: the strip's first panel at c = 0.
// accumulate: start from Y instead of zero (the lean path sums over blocks of channels; storing
// and reloading a float is exact, so the sum equals the one-pass sum bit for bit).
template <size_t R, size_t NV>
HWY_INLINE void gemm_block(size_t C, const float* HWY_RESTRICT v, size_t tbs, const float* HWY_RESTRICT u,
                           size_t panel_stride, float* HWY_RESTRICT y, size_t ldy, bool accumulate) {
  const DF df;
  VF acc[R][NV];
  for (size_t r = 0; r < R; ++r)
    for (size_t k = 0; k < NV; ++k) acc[r][k] = accumulate ? hn::LoadU(df, y + r * ldy + k * kL) : hn::Zero(df);
  const float* uk[NV];
  for (size_t k = 0; k < NV; ++k) uk[k] = u + (k * kL / kPanel) * panel_stride + (k * kL) % kPanel;
  for (size_t c = 0; c < C; ++c) {
    VF w[NV];
    for (size_t k = 0; k < NV; ++k) w[k] = hn::LoadU(df, uk[k] + c * kPanel);
    const float* vr = v + c * tbs;
    for (size_t r = 0; r < R; ++r) {
      const VF x = hn::Set(df, vr[r]);
      for (size_t k = 0; k < NV; ++k) acc[r][k] = hn::MulAdd(x, w[k], acc[r][k]);
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t k = 0; k < NV; ++k) hn::StoreU(acc[r][k], df, y + r * ldy + k * kL);
}

template <size_t NV>
void gemm_strip(size_t rows, size_t C, const float* v, size_t tbs, const float* u, size_t panel_stride, float* y,
                size_t ldy, bool acc) {
  size_t r = 0;
  for (; r + kRows <= rows; r += kRows) gemm_block<kRows, NV>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc);
  switch (rows - r) {
    case 1: gemm_block<1, NV>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc); break;
    case 2: gemm_block<2, NV>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc); break;
    case 3:
      if constexpr (kRows > 3) gemm_block<3, NV>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc);
      break;
    case 4:
      if constexpr (kRows > 4) gemm_block<4, NV>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc);
      break;
    case 5:
      if constexpr (kRows > 5) gemm_block<5, NV>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc);
      break;
    default: break;
  }
}

// Y[xi][r][0, mlen) for the tiles of a block and output channels [m0, m0 + mlen).
void gemms(const Conv2dParams& p, const Geom& g, const float* V, const float* U, size_t nt, size_t m0, size_t mlen,
           float* Y) {
  const size_t panel_stride = p.C * kPanel;
  for (size_t xi = 0; xi < kPos; ++xi) {
    const float* v = V + xi * g.vx;
    const float* uxi = U + xi * g.Mp * p.C;
    float* y = Y + xi * (nt * g.Mc + kPanel);
    for (size_t mo = 0; mo < mlen; mo += kNV * kL) {
      const size_t m = m0 + mo;
      const float* u = uxi + (m / kPanel) * panel_stride + m % kPanel;
      const size_t nv = std::min(kNV, (mlen - mo) / kL);
      if (nv == kNV) {
        gemm_strip<kNV>(nt, p.C, v, g.TBs, u, panel_stride, y + mo, g.Mc, false);
      } else if constexpr (kNV > 1) {
        // Strip tail (AVX-512 only: kNV = 4 vectors of 16 channels, Mc a multiple of 16).
        if (nv == 1) gemm_strip<1>(nt, p.C, v, g.TBs, u, panel_stride, y + mo, g.Mc, false);
        if constexpr (kNV > 2)
          if (nv == 2) gemm_strip<2>(nt, p.C, v, g.TBs, u, panel_stride, y + mo, g.Mc, false);
        if constexpr (kNV > 3)
          if (nv == 3) gemm_strip<3>(nt, p.C, v, g.TBs, u, panel_stride, y + mo, g.Mc, false);
      }
    }
  }
}

// o = G g (3 points to 6), G as in the file comment.
HWY_INLINE void g3(VF g0, VF g1, VF g2, VF* o) {
  const DF df;
  const VF s = hn::Add(g0, g2);
  const VF a = hn::MulAdd(hn::Set(df, 1.f / 24), g0, hn::Mul(hn::Set(df, 1.f / 6), g2));
  const VF b = hn::Mul(hn::Set(df, 1.f / 12), g1);
  o[0] = hn::Mul(hn::Set(df, 0.25f), g0);
  o[1] = hn::Mul(hn::Set(df, -1.f / 6), hn::Add(s, g1));
  o[2] = hn::Mul(hn::Set(df, -1.f / 6), hn::Sub(s, g1));
  o[3] = hn::Add(a, b);
  o[4] = hn::Sub(a, b);
  o[5] = g2;
}

// Lean path (few tiles): the packed weights are raw, R[Mp/16][C][9][16]; per strip of output
// channels and block of kLeanC input channels, U = G g G^T goes into scratch (in the panel layout
// the GEMM reads) and the 36 GEMMs accumulate into Y. Reads 9 instead of 36 floats per weight.
void gemms_lean(const Conv2dParams& p, const Geom& g, const float* V, const float* R, size_t nt, size_t m0,
                size_t mlen, float* Y, float* HWY_RESTRICT Ub) {
  const DF df;
  for (size_t mo = 0; mo < mlen; mo += kNV * kL) {
    const size_t nv = std::min(kNV, (mlen - mo) / kL);
    const size_t npan = nv * kL / kPanel;  // strips are whole panels (Mc and kNV * kL are)
    for (size_t c0 = 0; c0 < p.C; c0 += kLeanC) {
      const size_t cb = std::min(kLeanC, p.C - c0);
      const size_t pstride = cb * kPanel;  // Ub[xi][panel][c][16]
      // Positions 64 B more than a multiple of 4 KiB apart, so that the 36 stores of one
      // transform do not all fall into the same L1 set.
      const size_t xstride = npan * pstride + kPanel;
      for (size_t c = 0; c < cb; ++c)
        for (size_t k = 0; k < nv; ++k) {
          const size_t m = m0 + mo + k * kL;
          const float* gw = R + ((m / kPanel * p.C + c0 + c) * 9) * kPanel + m % kPanel;
          // The GEMMs between two weight blocks hide these reads from the hardware prefetcher:
          // fetch the panel's weights kLeanPrefetch channels ahead (into the next block too).
          if (c0 + c + kLeanPrefetch < p.C)
            for (size_t l = 0; l < 9 * kPanel; l += 64 / sizeof(float))
              hwy::Prefetch(gw + kLeanPrefetch * 9 * kPanel + l);
          VF col[3][6];  // col[kw][i] = (G g)[i][kw]
          for (size_t kw = 0; kw < 3; ++kw)
            g3(hn::LoadU(df, gw + kw * kPanel), hn::LoadU(df, gw + (3 + kw) * kPanel),
               hn::LoadU(df, gw + (6 + kw) * kPanel), col[kw]);
          float* ub = Ub + (k * kL / kPanel) * pstride + c * kPanel + (k * kL) % kPanel;
          for (size_t i = 0; i < 6; ++i) {
            VF u[6];
            g3(col[0][i], col[1][i], col[2][i], u);
            for (size_t j = 0; j < 6; ++j) hn::StoreU(u[j], df, ub + (i * 6 + j) * xstride);
          }
        }
      for (size_t xi = 0; xi < kPos; ++xi) {
        const float* v = V + xi * g.vx + c0 * g.TBs;
        const float* u = Ub + xi * xstride;
        float* y = Y + xi * (nt * g.Mc + kPanel) + mo;
        const bool acc = c0 > 0;
        if (nv == kNV) {
          gemm_strip<kNV>(nt, cb, v, g.TBs, u, pstride, y, g.Mc, acc);
        } else if constexpr (kNV > 1) {
          if (nv == 1) gemm_strip<1>(nt, cb, v, g.TBs, u, pstride, y, g.Mc, acc);
          if constexpr (kNV > 2)
            if (nv == 2) gemm_strip<2>(nt, cb, v, g.TBs, u, pstride, y, g.Mc, acc);
          if constexpr (kNV > 3)
            if (nv == 3) gemm_strip<3>(nt, cb, v, g.TBs, u, pstride, y, g.Mc, acc);
        }
      }
    }
  }
}

// Up to 4 floats of a tile row; the constant-size copy of a whole row compiles to one move.
HWY_INLINE void copy_row(float* HWY_RESTRICT dst, const float* HWY_RESTRICT src, size_t n) {
  if (n == 4) {
    std::memcpy(dst, src, 4 * sizeof(float));
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

// Output transform + epilogue of the block's tiles [t_begin, t_begin + nt), channels [m0, m0 + mlen).
// stage: 4 * kL floats (residual/output rows in channel-major order) + kL (bias).
void output_transform(const Conv2dParams& p, const Geom& g, const float* Y, size_t t_begin, size_t nt, size_t m0,
                      size_t mlen, float* out, float* HWY_RESTRICT stage) {
  const DF df;
  const Epilogue& ep = p.ep;
  const size_t ohw = p.OH * p.OW;
  float* bias_buf = stage + 4 * kL;
  for (size_t mo = 0; mo < mlen; mo += kL) {
    const size_t m = m0 + mo;
    if (m >= p.M) break;
    const size_t lanes = std::min(kL, p.M - m);  // channels past M are padding
    VF bias = hn::Zero(df);
    if (ep.bias) {
      // The bias array holds exactly M floats: stage the tail instead of reading past it.
      std::fill(bias_buf, bias_buf + kL, 0.f);
      std::memcpy(bias_buf, ep.bias + m, lanes * sizeof(float));
      bias = hn::LoadU(df, bias_buf);
    }
    for (size_t r = 0; r < nt; ++r) {
      const size_t t = t_begin + r;
      const size_t n = t / (g.th * g.tw), oy0 = 4 * (t / g.tw % g.th), ox = 4 * (t % g.tw);
      const size_t ncol = std::min<size_t>(4, p.OW - ox);
      const float* y = Y + r * g.Mc + mo;
      VF s[4][6];
      for (size_t j = 0; j < 6; ++j) {
        VF col[6], o[4];
        for (size_t i = 0; i < 6; ++i) col[i] = hn::LoadU(df, y + (i * 6 + j) * (nt * g.Mc + kPanel));
        at6(col, o);
        for (size_t a = 0; a < 4; ++a) s[a][j] = o[a];
      }
      for (size_t a = 0; a < 4 && oy0 + a < p.OH; ++a) {
        VF z[4];
        at6(s[a], z);
        const size_t base = (n * p.M + m) * ohw + (oy0 + a) * p.OW + ox;
        for (size_t b = 0; b < 4; ++b) z[b] = hn::Add(z[b], bias);
        if (ep.residual) {
          if (ncol < 4 || lanes < kL) std::fill(stage, stage + 4 * kL, 0.f);  // lanes that are not stored
          for (size_t l = 0; l < lanes; ++l) copy_row(stage + 4 * l, ep.residual + base + l * ohw, ncol);
          VF rv[4];
          hn::LoadInterleaved4(df, stage, rv[0], rv[1], rv[2], rv[3]);
          for (size_t b = 0; b < 4; ++b) z[b] = hn::Add(z[b], rv[b]);
        }
        for (size_t b = 0; b < 4; ++b) z[b] = activate_vec(df, z[b], ep);
        hn::StoreInterleaved4(z[0], z[1], z[2], z[3], df, stage);
        for (size_t l = 0; l < lanes; ++l) copy_row(out + base + l * ohw, stage + 4 * l, ncol);
      }
    }
  }
}

void winograd_impl(const Conv2dParams& p, const float* in, const float* U, float* out, float* scratch,
                   const Parallel* par) {
  const Geom g = geom(p);
  par->run(g.n_tb * g.n_mc, [&](size_t task, size_t thread) {
    const size_t b = task / g.n_mc, mc = task % g.n_mc;
    const size_t t_begin = b * g.TB, nt = std::min(g.TB, g.T - t_begin);
    const size_t m0 = mc * g.Mc, mlen = std::min(g.Mc, g.Mp - m0);
    float* V = scratch + thread * g.per_thread;
    float* Y = V + g.v_floats;
    float* Ub = Y + g.y_floats;
    float* P = Ub + g.u_floats;
    float* Tv = P + 6 * g.Wb;
    float* stage = Tv + 6 * g.Wb;
    input_transform(p, g, in, t_begin, t_begin + nt, V, P, Tv);
    if (g.u_floats > 0) {
      gemms_lean(p, g, V, U, nt, m0, mlen, Y, Ub);
    } else {
      gemms(p, g, V, U, nt, m0, mlen, Y);
    }
    output_transform(p, g, Y, t_begin, nt, m0, mlen, out, stage);
  });
}

}  // namespace
}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(winograd_impl);

bool winograd_applicable(const Conv2dParams& p) {
  return p.KH == 3 && p.KW == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 &&
         p.group == 1 && p.N > 0 && p.C > 0 && p.M > 0 && p.OH > 0 && p.OW > 0;
}

size_t winograd_packed_weight_floats(const Conv2dParams& p) {
  using namespace wino_detail;  // NOLINT
  return (lean(p) ? 9 : kPos) * round_up(p.M, kPanel) * p.C;
}

void pack_winograd_weights(const Conv2dParams& p, const float* w, float* packed) {
  using namespace wino_detail;  // NOLINT
  static constexpr double kG[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  const size_t Mp = round_up(p.M, kPanel);
  std::fill(packed, packed + winograd_packed_weight_floats(p), 0.f);
  if (lean(p)) {
    // Raw weights in panels of 16 output channels: R[m / 16][c][kh * 3 + kw][m % 16], so that a
    // task reads only its own channels' weights, contiguously.
    for (size_t m = 0; m < p.M; ++m)
      for (size_t c = 0; c < p.C; ++c)
        for (size_t t = 0; t < 9; ++t)
          packed[((m / kPanel * p.C + c) * 9 + t) * kPanel + m % kPanel] = w[(m * p.C + c) * 9 + t];
    return;
  }
  for (size_t m = 0; m < p.M; ++m)
    for (size_t c = 0; c < p.C; ++c) {
      const float* g = w + (m * p.C + c) * 9;
      double tmp[6][3];  // G g
      for (size_t i = 0; i < 6; ++i)
        for (size_t k = 0; k < 3; ++k)
          tmp[i][k] = kG[i][0] * g[0 * 3 + k] + kG[i][1] * g[1 * 3 + k] + kG[i][2] * g[2 * 3 + k];
      for (size_t i = 0; i < 6; ++i)
        for (size_t j = 0; j < 6; ++j) {
          const double u = tmp[i][0] * kG[j][0] + tmp[i][1] * kG[j][1] + tmp[i][2] * kG[j][2];
          packed[(((i * 6 + j) * Mp / kPanel + m / kPanel) * p.C + c) * kPanel + m % kPanel] = static_cast<float>(u);
        }
    }
}

size_t winograd_scratch_floats(const Conv2dParams& p, size_t threads) {
  return std::max<size_t>(threads, 1) * wino_detail::geom(p).per_thread;
}

void winograd_conv3x3(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
                      const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(winograd_impl)(p, in, w_packed, out, scratch, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
