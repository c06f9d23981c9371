// Backward of the 2-D convolution (see conv2d_grad.h) on top of the blocked GEMM.
//
// Data gradient, per group g: dcol[Cg*KH*KW, tile] = W_g^T * dy_g[:, tile], then col2im adds
// dcol into dx. Tiles run over the flattened (image, pixel) space: large images are cut into
// tiles, small ones grouped several per tile (dy gathered into scratch), so that the GEMM's
// columns stay many. One task per (block of images, group, block of input channels): the rows
// of dcol of a channel depend only on that channel's weights, so tasks write disjoint parts of
// dx, and each task walks its tiles in order (the adds into one dx element always happen in the
// same order). 1x1 stride-1 unpadded convolutions on large images skip col2im (dx_g = W_g^T *
// dy_g, one batched GEMM per group). Depthwise: with stride 1 the data gradient is the forward
// depthwise convolution of dy with rotated kernels (kernels::conv2d runs it), else direct loops
// per plane; the weight gradient is a dot of dy with each tap's shifted plane.
//
// Weight gradient, per group: dw_g[Mg, Kg] = sum over pixel tiles of dy_g[:, tile] *
// col[Kg, tile]^T, accumulated with the GEMM's beta. Tiles run over the flattened (image, pixel)
// space (small images are grouped, several per tile) so that the GEMM's reduction is deep. One
// task per (group, block of input channels): the task owns those columns of dw, builds only
// their part of the col matrix (pixel-major, so the GEMM packs it by rows) and sums all tiles in
// a fixed order. The GEMM's per-element summation order depends on K only, not on the column
// blocking, except that a 1-column GEMM takes the GEMV path: so blocks have at least two
// columns, and the result is the same for any thread count.
#include <algorithm>
#include <cstring>

#include "kernels/conv2d_grad.h"
#include "kernels/int_math.h"
#include "kernels/gemm.h"

#ifndef CONVOY_KERNELS_CONV2D_GRAD_SHARED
#define CONVOY_KERNELS_CONV2D_GRAD_SHARED
// Geometry shared by all targets (the scratch sizes are computed outside target code).
namespace convoy::kernels::conv_grad_detail {


inline constexpr size_t kColBudgetFloats = 1 << 17;  // im2col tile: rows * P floats (512 KiB)
inline constexpr size_t kDataRows = 144;             // target rows of a data-gradient GEMM (the GEMM's MC)

inline bool empty(const Conv2dParams& p) { return p.N == 0 || p.C == 0 || p.M == 0 || p.H == 0 || p.W == 0; }

inline bool is_pointwise(const Conv2dParams& p) {
  return p.KH == 1 && p.KW == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 && p.pad_left == 0 &&
         p.OH == p.H && p.OW == p.W;
}
inline bool is_depthwise(const Conv2dParams& p) { return p.group == p.C && p.M == p.C; }

inline size_t kdim(const Conv2dParams& p) { return p.C / p.group * p.KH * p.KW; }

// Depthwise data gradient with stride 1 is itself a depthwise convolution: of dy, with each
// kernel rotated by 180 degrees and pads (K-1)*dil - pad (so those must not be negative). The
// forward kernel (kernels/conv2d.h) runs it.
inline bool dw_data_as_conv(const Conv2dParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && p.pad_top <= (p.KH - 1) * p.dil_h && p.pad_left <= (p.KW - 1) * p.dil_w;
}
inline Conv2dParams dw_data_conv_params(const Conv2dParams& p) {
  Conv2dParams q = p;
  q.H = p.OH;
  q.W = p.OW;
  q.OH = p.H;
  q.OW = p.W;
  q.pad_top = (p.KH - 1) * p.dil_h - p.pad_top;
  q.pad_left = (p.KW - 1) * p.dil_w - p.pad_left;
  q.ep = Epilogue{};
  return q;
}
// Scratch of that path: the rotated kernels, their packed copy (when packing is not the
// identity), then the forward convolution's scratch.
inline size_t dw_rot_floats(const Conv2dParams& p) { return round_up(p.C * p.KH * p.KW, 16); }
inline size_t dw_packed_floats(const Conv2dParams& q) {
  return conv2d_packing_is_identity(q) ? 0 : round_up(conv2d_packed_weight_floats(q), 16);
}
// Depthwise weight gradient: one channel's col matrix [KH*KW][OH*OW] per thread.
inline size_t dw_weight_per_thread(const Conv2dParams& p) { return round_up(p.KH * p.KW * p.OH * p.OW, 16); }

// ---- pixel tiles ----

// Tiles over the flattened (image, output pixel) space, fixed by the shape alone: images with at
// least P pixels are cut into tiles of P (the last one shorter), smaller ones are grouped, `imgs`
// whole images per tile. Tile t covers flat pixels [start(t), start(t) + size(t)); the tiles of
// image block b (one image, or `imgs` images) are [first(b), first(b) + per_block).
struct PixelTiles {
  size_t ohw = 0, N = 0, P = 0, imgs = 1, per_block = 1, blocks = 0;
  size_t count() const { return blocks * per_block; }
  size_t first(size_t b) const { return b * per_block; }
  size_t start(size_t t) const { return imgs > 1 ? t * imgs * ohw : (t / per_block) * ohw + (t % per_block) * P; }
  size_t size(size_t t) const {
    if (imgs > 1) return (std::min(N, (t + 1) * imgs) - t * imgs) * ohw;
    return std::min(P, ohw - (t % per_block) * P);
  }
  size_t block_images(size_t b) const { return std::min(N, (b + 1) * imgs) - b * imgs; }
};

inline PixelTiles make_tiles(const Conv2dParams& p, size_t P) {
  PixelTiles t;
  t.ohw = p.OH * p.OW;
  t.N = p.N;
  if (t.ohw >= P) {
    t.P = P;
    t.per_block = div_up(t.ohw, P);
    t.blocks = p.N;
  } else {
    t.imgs = std::max<size_t>(1, std::min(p.N, P / t.ohw));
    t.P = t.imgs * t.ohw;
    t.blocks = div_up(p.N, t.imgs);
  }
  return t;
}

// ---- data gradient ----

// Input channels per data task: about kDataRows rows of dcol, blocks balanced. Depends on the
// shape only (never on the thread count).
inline size_t data_channel_block(const Conv2dParams& p) {
  const size_t Cg = p.C / p.group, kk = p.KH * p.KW;
  const size_t want = std::max<size_t>(1, kDataRows / kk);
  const size_t blocks = div_up(Cg, want);
  return div_up(Cg, blocks);
}

// Pixels per data tile: the col tile (rows x P) within the budget, clamped to this range (the
// upper bound also bounds the gathered dy tile, Mg x P).
inline constexpr size_t kDataMinPixels = 192, kDataMaxPixels = 2048;

struct DataGeom {
  size_t cb, rows;
  PixelTiles tiles;
  size_t col_floats, dy_floats, per_thread;
};

inline DataGeom data_geom(const Conv2dParams& p) {
  DataGeom g{};
  g.cb = data_channel_block(p);
  g.rows = g.cb * p.KH * p.KW;
  g.tiles = make_tiles(p, std::clamp<size_t>(kColBudgetFloats / std::max<size_t>(g.rows, 1), kDataMinPixels, kDataMaxPixels));
  const size_t Mg = p.M / p.group;
  g.col_floats = round_up(g.rows * g.tiles.P, 16);
  g.dy_floats = g.tiles.imgs > 1 ? round_up(Mg * g.tiles.P, 16) : 0;
  size_t gs = 0;
  for (size_t np : {g.tiles.P, g.tiles.size(g.tiles.count() - 1)}) {
    GemmParams gp;
    gp.M = g.rows;
    gp.N = np;
    gp.K = Mg;
    gp.a_rs = 1;
    gp.a_cs = static_cast<ptrdiff_t>(kdim(p));
    gp.b_rs = static_cast<ptrdiff_t>(np);
    gp.ldc = np;
    gs = std::max(gs, gemm_scratch_floats(gp, 1));
  }
  g.per_thread = g.col_floats + g.dy_floats + round_up(gs, 16);
  return g;
}

// The batched pointwise GEMM has one image's pixels as columns: worth it for large images only.
inline constexpr size_t kPointwiseMinPixels = 256;
inline bool data_is_pointwise(const Conv2dParams& p) { return is_pointwise(p) && p.H * p.W >= kPointwiseMinPixels; }

inline GemmParams pointwise_data_gemm(const Conv2dParams& p) {
  const size_t hw = p.H * p.W, Cg = p.C / p.group;
  GemmParams gp;
  gp.M = Cg;
  gp.N = hw;
  gp.K = p.M / p.group;
  gp.batch = p.N;
  gp.a_rs = 1;
  gp.a_cs = static_cast<ptrdiff_t>(Cg);
  gp.b_rs = static_cast<ptrdiff_t>(hw);
  gp.b_bs = static_cast<ptrdiff_t>(p.M * hw);
  gp.ldc = hw;
  gp.c_bs = static_cast<ptrdiff_t>(p.C * hw);
  return gp;
}

// ---- weight gradient ----

inline constexpr size_t kWeightPixels = 256;  // GEMM K of a weight-gradient tile (the GEMM's KC)
inline constexpr size_t kWeightCols = 480;    // target columns (C/group*KH*KW block) of a weight task

// Blocks of input channels: the columns (c, kh, kw) of dw that one task owns. Balanced blocks,
// at least two columns each (a 1-column GEMM would take the GEMV path and sum in another order),
// more of them when the groups alone give the threads too little work. The split only changes
// which task computes a column, never how: results do not depend on the thread count. With one
// output channel per group the GEMM is a GEMV whose order depends on the column position, so
// the block count then ignores the thread count.
inline size_t weight_channel_blocks(const Conv2dParams& p, size_t threads) {
  const size_t Cg = p.C / p.group, kk = p.KH * p.KW, Mg = p.M / p.group;
  const size_t min_ch = kk >= 2 ? 1 : 2;
  const size_t max_blocks = std::max<size_t>(1, Cg / min_ch);
  size_t blocks = std::min(max_blocks, div_up(Cg * kk, kWeightCols));
  if (Mg >= 2) {
    const size_t want = div_up(2 * std::max<size_t>(threads, 1), p.group);
    blocks = std::max(blocks, std::min(want, max_blocks));
  }
  return std::max<size_t>(blocks, 1);
}

struct WeightGeom {
  PixelTiles tiles;
  size_t max_cols, col_floats, dy_floats, per_thread;
};

inline WeightGeom weight_geom(const Conv2dParams& p) {
  WeightGeom g{};
  const size_t Cg = p.C / p.group, kk = p.KH * p.KW, Mg = p.M / p.group;
  g.tiles = make_tiles(p, kWeightPixels);
  // Any block count gives blocks of at most ceil(Cg / blocks_min) channels.
  const size_t blocks_min = std::min(std::max<size_t>(1, Cg / (kk >= 2 ? 1 : 2)), div_up(Cg * kk, kWeightCols));
  g.max_cols = div_up(Cg, std::max<size_t>(blocks_min, 1)) * kk;
  g.col_floats = round_up(g.tiles.P * g.max_cols, 16);
  g.dy_floats = g.tiles.imgs > 1 ? round_up(Mg * g.tiles.P, 16) : 0;
  size_t gs = 0;
  for (size_t np : {g.tiles.P, g.tiles.size(g.tiles.count() - 1)}) {
    GemmParams gp;
    gp.M = Mg;
    gp.N = g.max_cols;
    gp.K = np;
    gp.a_rs = static_cast<ptrdiff_t>(np);
    gp.b_rs = static_cast<ptrdiff_t>(g.max_cols);
    gp.ldc = kdim(p);
    gs = std::max(gs, gemm_scratch_floats(gp, 1));  // K blocking is not monotone in K: both sizes
  }
  g.per_thread = g.col_floats + g.dy_floats + round_up(gs, 16);
  return g;
}

}  // namespace convoy::kernels::conv_grad_detail
#endif  // CONVOY_KERNELS_CONV2D_GRAD_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv2d_grad.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace {

using namespace conv_grad_detail;  // NOLINT
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// d[i] += s[i], i < n. Full vectors, then a scalar tail: nothing outside [0, n) is touched.
void add_row(float* HWY_RESTRICT d, const float* HWY_RESTRICT s, size_t n) {
  const DF df;
  const size_t L = hn::Lanes(df);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::Add(hn::LoadU(df, d + i), hn::LoadU(df, s + i)), df, d + i);
  for (; i < n; ++i) d[i] += s[i];
}

// d[i] += a * s[i], i < n (same tail rule).
void axpy_row(float* HWY_RESTRICT d, const float* HWY_RESTRICT s, float a, size_t n) {
  const DF df;
  const size_t L = hn::Lanes(df);
  const VF va = hn::Set(df, a);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::MulAdd(va, hn::LoadU(df, s + i), hn::LoadU(df, d + i)), df, d + i);
  for (; i < n; ++i) d[i] += a * s[i];
}

// Copies dy[n][row0 + m][pix] for the flat pixels [q0, q0 + np) of a tile into dst[m][t] (rows
// of np floats), image segment by image segment.
void gather_dy(const Conv2dParams& p, const float* dy, size_t row0, size_t rows, size_t q0, size_t np, float* dst) {
  const size_t ohw = p.OH * p.OW;
  for (size_t t = 0; t < np;) {
    const size_t q = q0 + t, n = q / ohw, pix = q % ohw, len = std::min(ohw - pix, np - t);
    for (size_t m = 0; m < rows; ++m)
      std::memcpy(dst + m * np + t, dy + (n * p.M + row0 + m) * ohw + pix, len * sizeof(float));
    t += len;
  }
}

// ---- col2im on a tile of output pixels [p0, p0 + np) ----

// The adjoint of im2col: dx[c0 + c][ih][iw] += col[(c*KH + kh)*KW + kw][t] for the in-input
// positions (ih, iw) of output pixel p0 + t (col rows are ld floats apart). Rows are added in
// order (c, kh, kw), pixels in order: a fixed summation order.
void col2im_tile_add(const Conv2dParams& p, const float* col, size_t ld, size_t c0, size_t nc, size_t p0, size_t np,
                     float* dx_n) {
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  for (size_t c = 0; c < nc; ++c) {
    float* plane = dx_n + (c0 + c) * p.H * p.W;
    for (size_t kh = 0; kh < p.KH; ++kh) {
      for (size_t kw = 0; kw < p.KW; ++kw) {
        const float* src = col + ((c * p.KH + kh) * p.KW + kw) * ld;
        size_t oh = p0 / p.OW, ow = p0 % p.OW;
        for (size_t t = 0; t < np;) {
          const size_t seg = std::min(p.OW - ow, np - t);
          const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * p.stride_h + kh * p.dil_h) - static_cast<ptrdiff_t>(p.pad_top);
          if (ih >= 0 && ih < H) {
            float* drow = plane + ih * W;
            const float* s = src + t;
            const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * p.stride_w + kw * p.dil_w) - static_cast<ptrdiff_t>(p.pad_left);
            if (p.stride_w == 1) {
              const ptrdiff_t sl = static_cast<ptrdiff_t>(seg);
              const ptrdiff_t lo = std::clamp<ptrdiff_t>(-iw0, 0, sl);
              const ptrdiff_t hi = std::clamp<ptrdiff_t>(W - iw0, lo, sl);
              if (hi > lo) add_row(drow + (iw0 + lo), s + lo, static_cast<size_t>(hi - lo));
            } else {
              const ptrdiff_t sw = static_cast<ptrdiff_t>(p.stride_w);
              for (size_t u = 0; u < seg; ++u) {
                const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(u) * sw;
                if (iw >= 0 && iw < W) drow[iw] += s[u];
              }
            }
          }
          t += seg;
          ow = 0;
          ++oh;
        }
      }
    }
  }
}

void data_pointwise(const Conv2dParams& p, const float* dy, const float* w, float* dx, float* scratch,
                    const Parallel& par) {
  const size_t hw = p.H * p.W, Cg = p.C / p.group, Mg = p.M / p.group;
  const GemmParams gp = pointwise_data_gemm(p);
  for (size_t g = 0; g < p.group; ++g)
    gemm(gp, w + g * Mg * Cg, dy + g * Mg * hw, dx + g * Cg * hw, scratch, par);
}

// Depthwise with stride > 1 (or pads wider than the kernel): dx[ih][iw] += w[kh][kw] * dy[oh][ow]
// with ih = oh*sh + kh*dh - pt (and the same for w), tap by tap. One plane per task.
void data_depthwise(const Conv2dParams& p, const float* dy, const float* w, float* dx, const Parallel& par) {
  const size_t ohw = p.OH * p.OW, hw = p.H * p.W, taps = p.KH * p.KW;
  const ptrdiff_t OH = static_cast<ptrdiff_t>(p.OH), OW = static_cast<ptrdiff_t>(p.OW);
  const ptrdiff_t sh = static_cast<ptrdiff_t>(p.stride_h), sw = static_cast<ptrdiff_t>(p.stride_w);
  par.run(p.N * p.C, [&](size_t task, size_t /*thread*/) {
    const size_t c = task % p.C;
    const float* src = dy + task * ohw;
    float* dst = dx + task * hw;
    const float* wc = w + c * taps;
    std::fill(dst, dst + hw, 0.f);
    for (size_t kh = 0; kh < p.KH; ++kh) {
      for (size_t kw = 0; kw < p.KW; ++kw) {
        const float wv = wc[kh * p.KW + kw];
        const ptrdiff_t offh = static_cast<ptrdiff_t>(kh * p.dil_h) - static_cast<ptrdiff_t>(p.pad_top);
        const ptrdiff_t offw = static_cast<ptrdiff_t>(kw * p.dil_w) - static_cast<ptrdiff_t>(p.pad_left);
        // Output rows/cols whose tap lands inside the input: 0 <= o*s + off < H.
        const ptrdiff_t oh_lo = offh >= 0 ? 0 : (-offh + sh - 1) / sh;
        const ptrdiff_t oh_hi = std::min(OH, static_cast<ptrdiff_t>(p.H) - offh <= 0 ? 0 : (static_cast<ptrdiff_t>(p.H) - offh + sh - 1) / sh);
        const ptrdiff_t ow_lo = offw >= 0 ? 0 : (-offw + sw - 1) / sw;
        const ptrdiff_t ow_hi = std::min(OW, static_cast<ptrdiff_t>(p.W) - offw <= 0 ? 0 : (static_cast<ptrdiff_t>(p.W) - offw + sw - 1) / sw);
        if (ow_hi <= ow_lo) continue;
        for (ptrdiff_t oh = oh_lo; oh < oh_hi; ++oh) {
          const float* s = src + oh * OW;
          // Input position of output column ow: base + ow*sw (kept as an index: base may be < 0).
          const ptrdiff_t base = (oh * sh + offh) * static_cast<ptrdiff_t>(p.W) + offw;
          if (sw == 1) {
            axpy_row(dst + (base + ow_lo), s + ow_lo, wv, static_cast<size_t>(ow_hi - ow_lo));
          } else {
            for (ptrdiff_t ow = ow_lo; ow < ow_hi; ++ow) dst[base + ow * sw] += wv * s[ow];
          }
        }
      }
    }
  });
}

void data_im2col(const Conv2dParams& p, const float* dy, const float* w, float* dx, float* scratch,
                 const Parallel& par) {
  const size_t ohw = p.OH * p.OW, hw = p.H * p.W, Cg = p.C / p.group, Mg = p.M / p.group, K = kdim(p);
  const size_t kk = p.KH * p.KW;
  const DataGeom geo = data_geom(p);
  const PixelTiles& tl = geo.tiles;
  const size_t n_cb = div_up(Cg, geo.cb);
  par.run(tl.blocks * p.group * n_cb, [&](size_t task, size_t thread) {
    const size_t cbi = task % n_cb;
    const size_t g = (task / n_cb) % p.group;
    const size_t blk = task / (n_cb * p.group);
    const size_t c0 = cbi * geo.cb, nc = std::min(geo.cb, Cg - c0);
    float* col = scratch + thread * geo.per_thread;
    float* dyg = col + geo.col_floats;
    float* gscratch = dyg + geo.dy_floats;
    const size_t n0 = blk * tl.imgs;
    for (size_t n = n0; n < n0 + tl.block_images(blk); ++n) {
      float* d = dx + (n * p.C + g * Cg + c0) * hw;
      std::fill(d, d + nc * hw, 0.f);
    }
    const SerialParallel serial;
    for (size_t t = tl.first(blk); t < tl.first(blk) + tl.per_block; ++t) {
      const size_t q0 = tl.start(t), np = tl.size(t);
      GemmParams gp;
      gp.M = nc * kk;
      gp.N = np;
      gp.K = Mg;
      gp.a_rs = 1;
      gp.a_cs = static_cast<ptrdiff_t>(K);
      gp.ldc = np;
      const float* b;
      if (tl.imgs == 1) {
        b = dy + ((q0 / ohw) * p.M + g * Mg) * ohw + q0 % ohw;
        gp.b_rs = static_cast<ptrdiff_t>(ohw);
      } else {
        gather_dy(p, dy, g * Mg, Mg, q0, np, dyg);
        b = dyg;
        gp.b_rs = static_cast<ptrdiff_t>(np);
      }
      gemm(gp, w + g * Mg * K + c0 * kk, b, col, gscratch, serial);
      for (size_t u = 0; u < np;) {  // col2im image by image
        const size_t q = q0 + u, n = q / ohw, pix = q % ohw, len = std::min(ohw - pix, np - u);
        col2im_tile_add(p, col + u, np, c0, nc, pix, len, dx + (n * p.C + g * Cg) * hw);
        u += len;
      }
    }
  });
}

// Pixel-major im2col of flat pixels [q0, q0 + np) for channels [c0, c0 + nc) of the input:
// colT[t][(c*KH + kh)*KW + kw] = x[n][c0 + c][ih][iw] (0 outside the input). Rows of the GEMM's
// B operand are then contiguous (B(k = pixel, j = column)), so the GEMM packs them by memcpy.
void im2col_pixel_major(const Conv2dParams& p, const float* x, size_t c0, size_t nc, size_t q0, size_t np,
                        float* colT) {
  const size_t ohw = p.OH * p.OW, hw = p.H * p.W, ld = nc * p.KH * p.KW;
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  for (size_t t = 0; t < np; ++t) {
    const size_t q = q0 + t, n = q / ohw, pix = q % ohw;
    const size_t oh = pix / p.OW, ow = pix % p.OW;
    const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * p.stride_h) - static_cast<ptrdiff_t>(p.pad_top);
    const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * p.stride_w) - static_cast<ptrdiff_t>(p.pad_left);
    float* dst = colT + t * ld;
    const float* xn = x + (n * p.C + c0) * hw;
    for (size_t c = 0; c < nc; ++c) {
      const float* plane = xn + c * hw;
      for (size_t kh = 0; kh < p.KH; ++kh) {
        const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(kh * p.dil_h);
        if (ih < 0 || ih >= H) {
          std::fill(dst, dst + p.KW, 0.f);
          dst += p.KW;
          continue;
        }
        const float* row = plane + ih * W;
        for (size_t kw = 0; kw < p.KW; ++kw) {
          const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(kw * p.dil_w);
          *dst++ = (iw >= 0 && iw < W) ? row[iw] : 0.f;
        }
      }
    }
  }
}

// col[(kh*KW + kw)][oh*OW + ow] = plane[ih][iw] (0 outside the input) for one input plane.
void im2col_plane(const Conv2dParams& p, const float* plane, float* HWY_RESTRICT col) {
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  for (size_t kh = 0; kh < p.KH; ++kh) {
    for (size_t kw = 0; kw < p.KW; ++kw) {
      float* dst = col + (kh * p.KW + kw) * p.OH * p.OW;
      for (size_t oh = 0; oh < p.OH; ++oh, dst += p.OW) {
        const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * p.stride_h + kh * p.dil_h) - static_cast<ptrdiff_t>(p.pad_top);
        if (ih < 0 || ih >= H) {
          std::fill(dst, dst + p.OW, 0.f);
          continue;
        }
        const float* row = plane + ih * W;
        const ptrdiff_t iw0 = static_cast<ptrdiff_t>(kw * p.dil_w) - static_cast<ptrdiff_t>(p.pad_left);
        for (size_t ow = 0; ow < p.OW; ++ow) {
          const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(ow * p.stride_w);
          dst[ow] = (iw >= 0 && iw < W) ? row[iw] : 0.f;
        }
      }
    }
  }
}

// Depthwise: dw[c][tap] = sum over images of dot(dy[n][c], col_n[tap]) with the plane's col
// matrix; one channel per task, images in order, each dot a vector of partial sums then a
// scalar tail.
void weight_depthwise(const Conv2dParams& p, const float* x, const float* dy, float* dw, bool accumulate, float* scratch,
                      const Parallel& par) {
  const size_t ohw = p.OH * p.OW, hw = p.H * p.W, taps = p.KH * p.KW;
  const size_t per_thread = dw_weight_per_thread(p);
  par.run(p.C, [&](size_t c, size_t thread) {
    const DF d;
    const size_t L = hn::Lanes(d);
    float* col = scratch + thread * per_thread;
    float* out = dw + c * taps;
    if (!accumulate) std::fill(out, out + taps, 0.f);
    for (size_t n = 0; n < p.N; ++n) {
      im2col_plane(p, x + (n * p.C + c) * hw, col);
      const float* g = dy + (n * p.C + c) * ohw;
      for (size_t t = 0; t < taps; ++t) {
        const float* r = col + t * ohw;
        VF a0 = hn::Zero(d), a1 = a0;
        size_t i = 0;
        for (; i + 2 * L <= ohw; i += 2 * L) {
          a0 = hn::MulAdd(hn::LoadU(d, g + i), hn::LoadU(d, r + i), a0);
          a1 = hn::MulAdd(hn::LoadU(d, g + i + L), hn::LoadU(d, r + i + L), a1);
        }
        for (; i + L <= ohw; i += L) a0 = hn::MulAdd(hn::LoadU(d, g + i), hn::LoadU(d, r + i), a0);
        float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1)));
        for (; i < ohw; ++i) sum += g[i] * r[i];
        out[t] += sum;
      }
    }
  });
}

void weight_tasks(const Conv2dParams& p, const float* x, const float* dy, float* dw, bool accumulate, float* scratch,
                  const Parallel& par) {
  const size_t ohw = p.OH * p.OW, hw = p.H * p.W, Cg = p.C / p.group, Mg = p.M / p.group, K = kdim(p);
  const size_t kk = p.KH * p.KW;
  const bool pointwise = is_pointwise(p);
  const WeightGeom geo = weight_geom(p);
  const size_t n_cb = weight_channel_blocks(p, par.threads());
  par.run(p.group * n_cb, [&](size_t task, size_t thread) {
    const size_t b = task % n_cb, g = task / n_cb;
    const size_t c0 = b * Cg / n_cb, nc = (b + 1) * Cg / n_cb - c0;
    if (nc == 0) return;
    const size_t cols = nc * kk;
    float* colT = scratch + thread * geo.per_thread;
    float* dyg = colT + geo.col_floats;
    float* gscratch = dyg + geo.dy_floats;
    float* dwb = dw + g * Mg * K + c0 * kk;
    const SerialParallel serial;
    for (size_t t = 0; t < geo.tiles.count(); ++t) {
      const size_t q0 = geo.tiles.start(t), np = geo.tiles.size(t);
      GemmParams gp;
      gp.M = Mg;
      gp.N = cols;
      gp.K = np;
      gp.a_cs = 1;
      gp.ldc = K;
      // B(pixel, column): for 1x1 stride-1 unpadded convolutions within one image, x itself
      // (B transposed: the GEMM's packing transposes it); else the pixel-major col tile.
      const float* bmat = colT;
      if (pointwise && geo.tiles.imgs == 1) {
        bmat = x + ((q0 / ohw) * p.C + g * Cg + c0) * hw + q0 % ohw;
        gp.b_rs = 1;
        gp.b_cs = static_cast<ptrdiff_t>(hw);
      } else {
        im2col_pixel_major(p, x, g * Cg + c0, nc, q0, np, colT);
        gp.b_rs = static_cast<ptrdiff_t>(cols);
        gp.b_cs = 1;
      }
      // A = dy[g's rows][tile pixels]: in place within one image, else gathered image by image.
      gp.beta = (t == 0 && !accumulate) ? 0.f : 1.f;
      const float* a;
      if (geo.tiles.imgs == 1) {
        const size_t n = q0 / ohw;
        a = dy + (n * p.M + g * Mg) * ohw + q0 % ohw;
        gp.a_rs = static_cast<ptrdiff_t>(ohw);
      } else {
        gather_dy(p, dy, g * Mg, Mg, q0, np, dyg);
        a = dyg;
        gp.a_rs = static_cast<ptrdiff_t>(np);
      }
      gemm(gp, a, bmat, dwb, gscratch, serial);
    }
  });
}


}  // namespace

void conv2d_backward_data_impl(const Conv2dParams& p, const float* dy, const float* w, float* dx, float* scratch,
                               const Parallel* par_ptr) {
  const Parallel& par = *par_ptr;
  if (p.N == 0 || p.C == 0 || p.H == 0 || p.W == 0) return;
  if (p.M == 0 || p.OH * p.OW == 0) {
    std::fill(dx, dx + p.N * p.C * p.H * p.W, 0.f);
    return;
  }
  if (is_depthwise(p) && dw_data_as_conv(p)) {
    const Conv2dParams q = dw_data_conv_params(p);
    const size_t taps = p.KH * p.KW;
    float* wrot = scratch;
    for (size_t c = 0; c < p.C; ++c)
      for (size_t t = 0; t < taps; ++t) wrot[c * taps + t] = w[c * taps + (taps - 1 - t)];
    float* wq = wrot;
    if (!conv2d_packing_is_identity(q)) {
      wq = scratch + dw_rot_floats(p);
      pack_conv2d_weights(q, wrot, wq);
    }
    conv2d(q, dy, wq, dx, scratch + dw_rot_floats(p) + dw_packed_floats(q), par);
  } else if (is_depthwise(p)) {
    data_depthwise(p, dy, w, dx, par);
  } else if (data_is_pointwise(p)) {
    data_pointwise(p, dy, w, dx, scratch, par);
  } else {
    data_im2col(p, dy, w, dx, scratch, par);
  }
}

void conv2d_backward_weight_impl(const Conv2dParams& p, const float* x, const float* dy, float* dw, bool accumulate,
                                 float* scratch, const Parallel* par_ptr) {
  const Parallel& par = *par_ptr;
  if (p.M == 0 || p.C == 0) return;
  if (empty(p) || p.OH * p.OW == 0) {
    if (!accumulate) std::fill(dw, dw + p.M * kdim(p), 0.f);
    return;
  }
  if (is_depthwise(p)) {
    weight_depthwise(p, x, dy, dw, accumulate, scratch, par);
  } else {
    weight_tasks(p, x, dy, dw, accumulate, scratch, par);
  }
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(conv2d_backward_data_impl);
HWY_EXPORT(conv2d_backward_weight_impl);

using namespace conv_grad_detail;  // NOLINT

size_t conv2d_backward_data_scratch_floats(const Conv2dParams& p, size_t threads) {
  if (empty(p) || p.OH * p.OW == 0) return 0;
  threads = std::max<size_t>(threads, 1);
  if (is_depthwise(p)) {
    if (!dw_data_as_conv(p)) return 0;
    const Conv2dParams q = dw_data_conv_params(p);
    return dw_rot_floats(p) + dw_packed_floats(q) + conv2d_scratch_floats(q, threads);
  }
  if (data_is_pointwise(p)) return gemm_scratch_floats(pointwise_data_gemm(p), threads);
  return threads * data_geom(p).per_thread;
}

void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx, float* scratch,
                          const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(conv2d_backward_data_impl)(p, dy, w, dx, scratch, &par);
}

size_t conv2d_backward_weight_scratch_floats(const Conv2dParams& p, size_t threads) {
  if (empty(p) || p.OH * p.OW == 0) return 0;
  return std::max<size_t>(threads, 1) * (is_depthwise(p) ? dw_weight_per_thread(p) : weight_geom(p).per_thread);
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw, bool accumulate,
                            float* scratch, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(conv2d_backward_weight_impl)(p, x, dy, dw, accumulate, scratch, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
