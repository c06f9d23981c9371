// 2-D convolution on top of the GEMM: per group, out[Mg, OH*OW] = W[Mg, Cg*KH*KW] * col[Cg*KH*KW, OH*OW].
// Five paths:
//  - pointwise (1x1, stride 1, no pad): the input already is the col matrix, GEMM reads it in place;
//  - subsampled (1x1 with a stride or pads): the samples gathered into aligned rows, then pointwise;
//  - depthwise (group == C == M): direct vectorised loops over output columns, one plane per task;
//  - general: im2col of a tile of output pixels straight into the GEMM's packed-B panel layout in
//    per-thread scratch (no second copy), then a single-thread GEMM of packed A x packed B on that
//    tile; one task per (image, group, pixel tile[, row block of the output channels: plan_tiles
//    balances the two splits for few threads]). The gather stages each input channel's rows
//    zero-padded, so every tap is a vector copy (de-interleave for strides 2 and 4) even on
//    7- and 14-pixel rows; kernels wider than 3 with a column stride (7x7/2, 11x11/4) stage the
//    rows split by column phase, de-interleaved once, and copy every tap contiguously. With few
//    tiles for the threads (batch 1 on 14x14 maps) the col matrix of a whole image is gathered
//    once by all threads into shared scratch, then the GEMM runs in row parts, in one parallel
//    run (im2col_shared);
//  - transposed (maps under 64 pixels, not a multiple of 16, M >= 64, K >= 512, group 1: ResNet
//    stage 4 at 7x7): out^T[pixels][M] = col^T * W^T with the weights packed as the GEMM's B operand, so the
//    vectors run over output channels, then transposed into NCHW with the residual/activation;
//    its col^T is gathered from staged rows too and packed in parallel, in the GEMM's parallel
//    run (one run per image: a thread pool's wake-up costs 20-40 us).
// Packed weights: per group, the [Mg][Cg*KH*KW] weight matrix in the GEMM's packed-A panel
// layout (kernels/gemm.h), packed once at plan time (transposed path: W^T in the packed-B
// layout); depthwise weights stay in the ONNX layout.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>

#include "kernels/conv2d.h"
#include "kernels/int_math.h"
#include "kernels/gemm.h"
#include "kernels/spin_wait.h"

#ifndef CONVOY_KERNELS_CONV2D_SHARED
#define CONVOY_KERNELS_CONV2D_SHARED
namespace convoy::kernels::conv_detail {

inline constexpr size_t kMaxLanes = 64;           // bound on float lanes of any target
inline constexpr size_t kColBudgetFloats = 1 << 17;  // im2col tile: Kg * P floats (512 KiB)


// One stage of work shared by the tasks of an outer Parallel::run, so that several stages run
// in one run (a thread pool's wake-up cost 20-40 us here, as much as a small conv's gather):
// every outer task calls run() on a JoinedStage over the same counters; each claims stage tasks
// until none is left, then waits until all are done. Claimed tasks are being run by running
// outer tasks, so the wait ends whatever the order or concurrency of the outer tasks (one
// thread: the first outer task runs the whole stage). `thread` is the outer task's.
struct StageCounters {
  alignas(64) std::atomic<size_t> claimed{0};
  alignas(64) std::atomic<size_t> done{0};
};
class JoinedStage final : public Parallel {
 public:
  JoinedStage(StageCounters& c, size_t threads, size_t thread) : c_(c), threads_(threads), thread_(thread) {}
  size_t threads() const override { return threads_; }
  void run(size_t n_tasks, const std::function<void(size_t, size_t)>& fn) const override {
    // Several items per claim when there are many (a gather of 1024 one-channel items on 16
    // threads otherwise serialises on the two counters' cache lines).
    claim_ranges(c_.claimed, n_tasks, std::max<size_t>(1, n_tasks / (8 * threads_)), [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) fn(i, thread_);
      c_.done.fetch_add(end - begin, std::memory_order_release);
    });
    // The stage's other tasks are being run by the other outer tasks.
    spin_until([&] { return c_.done.load(std::memory_order_acquire) >= n_tasks; });
  }

 private:
  StageCounters& c_;
  size_t threads_, thread_;
};

// A Parallel whose runs first do a stage of `n` items jointly (JoinedStage: every task of every
// run takes part until all items are done; a later run finds them done), so a kernel built on
// another's single parallel run gets its preparation into the same pool job.
class PrestagedParallel final : public Parallel {
 public:
  PrestagedParallel(const Parallel& inner, StageCounters& c, size_t n, const std::function<void(size_t, size_t)>& stage)
      : inner_(inner), c_(c), n_(n), stage_(stage) {}
  size_t threads() const override { return inner_.threads(); }
  void run(size_t n_tasks, const std::function<void(size_t, size_t)>& fn) const override {
    const size_t threads = std::max<size_t>(inner_.threads(), 1);
    inner_.run(n_tasks, [&](size_t task, size_t thread) {
      JoinedStage(c_, threads, thread).run(n_, stage_);
      fn(task, thread);
    });
  }

 private:
  const Parallel& inner_;
  StageCounters& c_;
  size_t n_;
  const std::function<void(size_t, size_t)>& stage_;
};

enum class ConvPath { kPointwise, kSubsampled, kDepthwise, kIm2col };

inline ConvPath conv_path(const Conv2dParams& p) {
  if (p.group == p.C && p.M == p.C) return ConvPath::kDepthwise;
  if (p.KH == 1 && p.KW == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 && p.pad_left == 0 &&
      p.OH == p.H && p.OW == p.W)
    return ConvPath::kPointwise;
  if (p.KH == 1 && p.KW == 1) return ConvPath::kSubsampled;  // strided or padded 1x1: conv_subsampled
  return ConvPath::kIm2col;
}

inline size_t kdim(const Conv2dParams& p) { return p.C / p.group * p.KH * p.KW; }

// The subsampled path's pointwise conv: the input's OH x OW samples (stride, pads) as its input.
inline Conv2dParams subsampled_params(const Conv2dParams& p) {
  Conv2dParams q = p;
  q.H = p.OH;
  q.W = p.OW;
  q.stride_h = q.stride_w = 1;
  q.pad_top = q.pad_left = 0;
  return q;
}
inline size_t subsampled_ld(const Conv2dParams& p) { return round_up(p.OH * p.OW, 16); }
inline size_t subsampled_floats(const Conv2dParams& p) { return p.N * p.C * subsampled_ld(p); }

// Small maps (ResNet stage 4 at 7x7 = 49 pixels) computed in the usual orientation waste the
// GEMM's column vectors (49 columns run as 64 on AVX-512). There the GEMM is transposed:
// out^T[pixels][M] = col^T * W^T, vectorised over the output channels (full vectors) with the
// pixels as the micro-kernel's rows (49 rows as 56), then transposed into NCHW. Independent of
// the thread count (the weights' packed layout depends on it; the choice depends on the target's
// panel layout, like the packing itself). K >= 512: the
// transposition costs about as much as a K = 256 GEMM gains (ResNet-18's 1x1 downsample into
// 7x7 ran 15% slower, ResNet-50's K = 512..4608 layers 3-10% faster).
// Where the GEMM runs a block's last few columns vectorised over rows (AVX-512: 49 = 48 + 1,
// gemm.h edge_cols), 1x1 convs stay in the usual orientation, with no transpositions: ResNet-50's
// 7x7 1x1 convs 0.02-0.08 ms faster each in the model (1 thread, 4 alternating rounds), 12
// chained 2048/512-channel ones 12.9-13.8 -> 12.5-12.9 ms; its 3x3 stride-2 conv into 7x7 was
// 0.1 ms slower there, so larger kernels keep the transposed path.
inline constexpr size_t kTransposedMaxPixels = 64;
inline constexpr size_t kTransposedMinM = 64;
inline constexpr size_t kTransposedMinK = 512;
inline bool transposed(const Conv2dParams& p) {
  const size_t ohw = p.OH * p.OW;
  if (!(p.group == 1 && ohw < kTransposedMaxPixels && ohw % 16 != 0 && p.M >= kTransposedMinM &&
        kdim(p) >= kTransposedMinK))
    return false;
  const GemmPanelLayout lay = gemm_panel_layout();
  return !(p.KH * p.KW == 1 && ohw % lay.lanes <= lay.edge_cols);
}

// Output pixels per im2col tile. The col tile (K x P floats) is sized to stay in L2; with few
// tiles per thread the tiles shrink (not below ~96 pixels) so that the threads get even work.
// Never larger than with one thread (the scratch is sized for that). Any P works: the packed-B
// layout takes a last panel narrower than NR.
inline size_t pixel_tile(const Conv2dParams& p, size_t threads) {
  const size_t ohw = p.OH * p.OW;
  const size_t p_max = std::max<size_t>(96, kColBudgetFloats / std::max<size_t>(kdim(p), 1));
  size_t tiles = div_up(ohw, p_max);
  const size_t jobs = p.N * p.group, want = threads > 1 ? 2 * threads : 1;
  if (jobs * tiles < want) tiles = std::max(tiles, std::min(div_up(want, jobs), ohw / 96));
  return std::min(ohw, round_up(div_up(ohw, tiles), 16));
}

// How the im2col path splits its work: tiles of P pixels, and each tile's output channels in
// row parts of `rows` (a multiple of mr; each part gathers the tile itself).
struct TilePlan {
  size_t P, rows;
};

// Up to 4 threads with few tasks (batch 1): the tile count (from the single-thread one to 4 per
// thread more) and row split (1-4 parts) whose greedy run in task order ends soonest, by a cost
// of (pixels rounded to 16) x (share of the rows) + gathering (~1/8 of a whole tile) + a fixed
// part; ResNet-50's stem on 2 threads: 16 tiles of 784 pixels, not 15 of 848; 14x14 maps with
// K = 2304: 3 tiles of 80 pixels x 2 row parts. More threads: pixel_tile, and row parts only
// when there are fewer tiles than threads.
inline constexpr size_t kTileSearchMaxThreads = kMakespanMaxThreads;
inline TilePlan plan_tiles(const Conv2dParams& p, size_t threads, size_t mr) {
  const size_t ohw = p.OH * p.OW, Mg = p.M / p.group, jobs = p.N * p.group;
  const size_t P1 = pixel_tile(p, 1), tiles1 = div_up(ohw, P1);
  TilePlan tp{pixel_tile(p, threads), round_up(Mg, mr)};
  if (threads > 1 && threads <= kTileSearchMaxThreads && jobs * tiles1 < 16 * threads) {
    size_t best = SIZE_MAX;
    for (size_t t = tiles1; t <= tiles1 + 4 * threads && (t == tiles1 || t <= ohw / 32); ++t) {
      const size_t P = std::min(P1, round_up(div_up(ohw, t), 16)), n_tiles = div_up(ohw, P);
      for (size_t parts = 1; parts <= 4 && parts <= div_up(Mg, mr); ++parts) {
        const size_t rows = round_up(div_up(Mg, parts), mr), m_parts = div_up(Mg, rows);
        const size_t span = greedy_makespan(threads, jobs * n_tiles * m_parts, [&](size_t task) {
          const size_t tile = task / m_parts % n_tiles, part = task % m_parts;
          const size_t np = std::min(P, ohw - tile * P), r = std::min(rows, Mg - part * rows);
          return round_up(np, 16) * 8 * r / Mg + np + 16;
        });
        if (span < best) {
          best = span;
          tp = TilePlan{P, rows};
        }
      }
    }
    return tp;
  }
  const size_t n_tiles = div_up(ohw, tp.P);
  // Fewer tiles than threads (deep layers with small maps at batch 1): split the output
  // channels too; each part re-gathers its tile, which is cheap next to its GEMM.
  if (jobs * n_tiles < threads)
    tp.rows = round_up(div_up(Mg, std::min(div_up(threads, jobs * n_tiles), div_up(Mg, mr))), mr);
  return tp;
}

// GEMM of one group: A = weights, B = col (rows of length ldb), C = output (leading dim ldc).
inline GemmParams group_gemm(const Conv2dParams& p, size_t cols, size_t ldb, size_t ldc) {
  GemmParams g;
  g.M = p.M / p.group;
  g.N = cols;
  g.K = kdim(p);
  g.a_rs = static_cast<ptrdiff_t>(g.K);
  g.a_cs = 1;
  g.b_rs = static_cast<ptrdiff_t>(ldb);
  g.b_cs = 1;
  g.ldc = ldc;
  return g;
}

// Depthwise: padded input plane split by column phase (x % stride_w), so that every tap of a run
// of output columns is a contiguous load. Rows [0, PH), phase rows of RS floats (>= PWs + a vector).
struct DwGeom {
  size_t ph, pws, rs;
};
inline DwGeom dw_geom(const Conv2dParams& p) {
  DwGeom g{};
  g.ph = (p.OH - 1) * p.stride_h + (p.KH - 1) * p.dil_h + 1;
  const size_t pw = (p.OW - 1) * p.stride_w + (p.KW - 1) * p.dil_w + 1;
  g.pws = div_up(pw, p.stride_w);
  g.rs = round_up(g.pws + kMaxLanes, 16);
  return g;
}
inline size_t dw_plane_floats(const Conv2dParams& p) {
  const DwGeom g = dw_geom(p);
  return round_up(g.ph * p.stride_w * g.rs + kMaxLanes, 16);
}

// im2col stages the input rows a pixel tile reads as zero-padded rows (one input channel at a
// time): every tap of a run of output pixels is then a copy without bounds checks, whole vectors
// even on 7- and 14-pixel rows. Staged row r is padded row y0 + r (y = ih + pad_top), rs floats.
// Kernels wider than 3 with a column stride (ResNet's 7x7/2 stem, AlexNet's 11x11/4) split each
// staged row by column phase (x % stride_w) as the depthwise path does: the row is de-interleaved
// once and every tap is a contiguous copy (7 and 11 taps per row: gather 15-25% faster); phase
// ph at ph * prs holds padded columns x = i * sw + ph (x = iw + pad_left) for i < pws, then a
// vector of slack the copies read; the row is first padded into a per-thread buffer of `pad`
// floats (zeros past pw for the de-interleaving loads, which read up to sw * (L + 1) past it).
// Otherwise (3x3/2: de-interleaving the rows cost more than it saved) there is one phase of pw
// columns and the taps copy with the stride (vector de-interleave for strides 2 and 4, which
// reads up to sw vectors past the last column a pixel needs: the slack).
struct RowGeom {
  size_t pw, phases, cs, pws, prs, rs, pad, rows;
};
inline bool phase_split(const Conv2dParams& p) {
  return p.stride_w > 1 && (p.KW > 3 || (p.stride_w != 2 && p.stride_w != 4));
}
inline RowGeom row_geom(const Conv2dParams& p, size_t P) {
  RowGeom g{};
  const size_t sw = p.stride_w;
  g.pw = (p.OW - 1) * sw + (p.KW - 1) * p.dil_w + 1;
  if (phase_split(p)) {
    g.phases = sw;
    g.cs = 1;
    g.pws = div_up(g.pw, sw);
    g.prs = round_up(g.pws + kMaxLanes, 16);
    g.pad = round_up(g.pw + sw * (kMaxLanes + 1), 16);
  } else {
    g.phases = 1;
    g.cs = sw;
    g.pws = g.pw;
    g.prs = round_up(g.pw + (sw == 2 || sw == 4 ? sw : 1) * kMaxLanes, 16);
    g.pad = 0;
  }
  g.rs = g.phases * g.prs;
  // P consecutive pixels span at most P / OW + 2 output rows.
  g.rows = (P / p.OW + 1) * p.stride_h + (p.KH - 1) * p.dil_h + 1;
  return g;
}
inline size_t staged_floats(const RowGeom& g) { return round_up(g.rows * g.rs, 16) + g.pad; }

// Per-thread scratch of the im2col path: one packed col tile (panel widths are multiples of the
// lanes, so K * round_up(P, kMaxLanes) bounds it on every target) plus a vector of slack for the
// emulated masked stores of the narrower targets, then the staged input rows.
inline size_t im2col_col_floats(const Conv2dParams& p) {
  return round_up(kdim(p) * round_up(pixel_tile(p, 1), kMaxLanes) + kMaxLanes, 16);
}
inline size_t im2col_per_thread(const Conv2dParams& p) {
  return im2col_col_floats(p) + staged_floats(row_geom(p, pixel_tile(p, 1)));
}

// Few pixel tiles for the threads (batch 1 on 14x14 maps: 196 pixels; at 2 threads the tiles
// were 48 pixels plus one of 4, each streaming all the weights, or tiles split in row parts
// that each gathered the tile again): the col matrix of one image and group is gathered once
// into shared scratch (packed-B panels over all its pixels), the input channels split over the
// threads, then the GEMM runs in row parts (each thread reads only its rows of the weights) and
// column chunks of whole panels. Scratch: that col matrix, then per thread the staged rows of a
// whole channel.
inline bool im2col_shared(const Conv2dParams& p, size_t threads) {
  if (threads <= 1) return false;
  return p.N * p.group * div_up(p.OH * p.OW, pixel_tile(p, 1)) < 2 * threads;
}
inline size_t shared_col_floats(const Conv2dParams& p) {
  return round_up(kdim(p) * round_up(p.OH * p.OW, kMaxLanes) + kMaxLanes, 16);
}
inline size_t shared_per_thread(const Conv2dParams& p) { return staged_floats(row_geom(p, p.OH * p.OW)); }

// Scratch of the transposed path, in order: col [K][lcol] (im2col only; rows of lcol >= ohw +
// a vector, so that a row's last partial vector stays inside the row), packed A (col^T),
// out^T [round_up(ohw, kMaxLanes)][ldc] (rows past ohw are read by the transposing gathers, never
// used), and per thread a staging row of kMaxLanes floats and the staged input rows of one
// channel (row_geom). ldc is 64 B more than a multiple of 64 B so that the rows one gather
// touches do not all fall into the same L1 set (M = 2048: 8 KiB apart).
struct TrGeom {
  size_t col = 0, lcol = 0, a = 0, ct = 0, ldc = 0, stage = kMaxLanes, rows = 0;
};
inline TrGeom tr_geom(const Conv2dParams& p) {
  TrGeom g;
  const size_t ohw = p.OH * p.OW, K = kdim(p);
  const bool pointwise = conv_path(p) == ConvPath::kPointwise;
  g.lcol = round_up(ohw + kMaxLanes, 16);
  g.col = pointwise ? 0 : K * g.lcol;
  g.a = round_up(gemm_packed_a_floats(ohw, K), 16);
  g.ldc = round_up(p.M, 16) + 16;
  g.ct = round_up(ohw, kMaxLanes) * g.ldc;
  if (!pointwise) {
    g.rows = staged_floats(row_geom(p, ohw));
  }
  return g;
}

}  // namespace convoy::kernels::conv_detail
#endif  // CONVOY_KERNELS_CONV2D_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv2d.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/epilogue-inl.h"
#include "kernels/transpose-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace {

using namespace conv_detail;  // NOLINT
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// dst[0, n) = 0. A last partial vector overlaps the one before; with n under a vector it is a
// masked store (emulated on the narrower targets: it reads and rewrites up to a vector past n,
// which every caller's buffer has room for; on AVX2 ~6x the cost of a whole store).
HWY_INLINE void zero_floats(float* HWY_RESTRICT dst, size_t n) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const VF z = hn::Zero(d);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(z, d, dst + i);
  if (i < n) {
    if (n >= L)
      hn::StoreU(z, d, dst + n - L);
    else
      hn::BlendedStore(z, hn::FirstN(d, n - i), d, dst + i);
  }
}

// dst[0, n) = src[0, n) without reading past src + n: whole vectors, the last one overlapping
// the one before (rows shorter than a vector: memcpy).
HWY_INLINE void copy_floats(const float* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT dst) {
  const DF d;
  const size_t L = hn::Lanes(d);
  if (n < L) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::LoadU(d, src + i), d, dst + i);
  if (i < n) hn::StoreU(hn::LoadU(d, src + n - L), d, dst + n - L);
}

// Padded row y (ih = y - pad_top) of an input plane: dst[x] = in(ih, x - pad_left) for x < pw,
// zero outside the input and on up to `end` (inline vector copies: the rows are 7-230 floats,
// where libc's memcpy/memset calls cost as much as the copies).
HWY_INLINE void pad_row(const Conv2dParams& p, const float* plane, size_t y, size_t pw, size_t end,
                        float* HWY_RESTRICT dst) {
  const ptrdiff_t ih = static_cast<ptrdiff_t>(y) - static_cast<ptrdiff_t>(p.pad_top);
  if (ih < 0 || ih >= static_cast<ptrdiff_t>(p.H)) {
    zero_floats(dst, end);
    return;
  }
  const size_t lo = std::min(p.pad_left, pw), hi = std::max(lo, std::min(p.pad_left + p.W, pw));
  const size_t L = hn::Lanes(DF());
  if (end >= L) {
    // Zeros first, as whole vectors that may reach into [lo, hi), then the copy over them.
    if (lo > 0) zero_floats(dst, std::max(lo, L));
    if (hi < end) zero_floats(dst + std::min(hi, end - L), std::max(end - hi, L));
    copy_floats(plane + static_cast<size_t>(ih) * p.W + (lo - p.pad_left), hi - lo, dst + lo);
    return;
  }
  zero_floats(dst, lo);
  copy_floats(plane + static_cast<size_t>(ih) * p.W + (lo - p.pad_left), hi - lo, dst + lo);
  zero_floats(dst + hi, end - hi);
}

#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
// src[0], src[sw], ... src[(L-1)*sw] for sw in {1, 2, 4}: reads src[0, sw*L).
HWY_INLINE VF load_strided(const float* src, size_t sw) {
  const DF d;
  const size_t L = hn::Lanes(d);
  if (sw == 1) return hn::LoadU(d, src);
  const VF e0 = hn::ConcatEven(d, hn::LoadU(d, src + L), hn::LoadU(d, src));
  if (sw == 2) return e0;
  const VF e1 = hn::ConcatEven(d, hn::LoadU(d, src + 3 * L), hn::LoadU(d, src + 2 * L));
  return hn::ConcatEven(d, e1, e0);
}
#endif

// Staged row (RowGeom) of padded row y. One phase: the padded row itself, zeros up to the slack
// the strided copies read. Several: the row padded into the thread's buffer `pad`, then split
// into phases, with vector de-interleaves for strides 2 and 4 (their loads stay inside `pad`:
// see RowGeom; their stores end before pws + L <= prs).
void stage_row(const Conv2dParams& p, const float* plane, size_t y, const RowGeom& g, float* HWY_RESTRICT dst,
               float* HWY_RESTRICT pad) {
  const size_t L = hn::Lanes(DF()), sw = p.stride_w;
  if (g.phases == 1) {
    pad_row(p, plane, y, g.pw, std::min(g.rs, g.pw + (sw == 2 || sw == 4 ? sw : 1) * L), dst);
    return;
  }
  pad_row(p, plane, y, g.pw, std::min(g.pad, g.pw + sw * (L + 1)), pad);
  for (size_t ph = 0; ph < sw; ++ph) {
    float* HWY_RESTRICT q = dst + ph * g.prs;
    const float* src = pad + ph;
    size_t i = 0;
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
    if (sw == 2 || sw == 4) {
      for (; i < g.pws; i += L) hn::StoreU(load_strided(src + i * sw, sw), DF(), q + i);
    }
#endif
    for (; i < g.pws; ++i) q[i] = src[i * sw];  // other strides (and the one-lane targets)
  }
}

// dst[u] = src[u*sw] for u < n. src is a staged row (its slack covers the vector reads past n:
// they end before src + (n-1)*sw + sw*L, and src + (n-1)*sw is at most the row's last column);
// unless `over`, the last partial vector is a masked store, so nothing past dst[n) changes (the
// emulated masked store of the narrower targets reads and rewrites up to a vector past it, inside
// the thread's own scratch).
// over: the destination has room past n that the caller rewrites or never reads, so the last
// partial vector is stored whole (up to a vector past dst + n) instead of masked (~6x the cost
// of a whole store on AVX2: the transposed path's 7-pixel rows were all masked stores).
HWY_INLINE void copy_strided(const float* HWY_RESTRICT src, size_t sw, size_t n, float* HWY_RESTRICT dst,
                             bool over = false) {
  size_t u = 0;
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  if (sw == 1 || sw == 2 || sw == 4) {
    const DF d;
    const size_t L = hn::Lanes(d);
    for (; u + L <= n; u += L) hn::StoreU(load_strided(src + u * sw, sw), d, dst + u);
    if (u < n) {
      if (over)
        hn::StoreU(load_strided(src + u * sw, sw), d, dst + u);
      else
        hn::BlendedStore(load_strided(src + u * sw, sw), hn::FirstN(d, n - u), d, dst + u);
    }
    return;
  }
#endif
  (void)over;
  for (; u < n; ++u) dst[u] = src[u * sw];  // other strides (and the one-lane targets)
}

// dst[u] = src[u] for u < n, from a phase row (copy_strided with sw = 1 on every target).
HWY_INLINE void copy_row(const float* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT dst) {
  const DF d;
  const size_t L = hn::Lanes(d);
  size_t u = 0;
  for (; u + L <= n; u += L) hn::StoreU(hn::LoadU(d, src + u), d, dst + u);
  if (u < n) hn::BlendedStore(hn::LoadU(d, src + u), hn::FirstN(d, n - u), d, dst + u);
}

#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
template <size_t SW>
HWY_INLINE void copy_taps_t(const float* HWY_RESTRICT src, size_t dil, size_t taps, size_t n, float* HWY_RESTRICT dst,
                            size_t dst_step) {
  const DF d;
  const size_t L = hn::Lanes(d);
  for (size_t kw = 0; kw < taps; ++kw, src += dil, dst += dst_step) {
    size_t u = 0;
    for (; u + L <= n; u += L) hn::StoreU(load_strided(src + u * SW, SW), d, dst + u);
    if (u < n) hn::BlendedStore(load_strided(src + u * SW, SW), hn::FirstN(d, n - u), d, dst + u);
  }
}
#endif

// Taps kw < taps of output pixels [0, n) from a one-phase staged row (src: the tap kw = 0 of
// pixel 0): dst + kw * dst_step gets src[kw * dil + u * sw] (copy_strided, the stride a constant).
HWY_INLINE void copy_taps(const float* HWY_RESTRICT src, size_t sw, size_t dil, size_t taps, size_t n,
                          float* HWY_RESTRICT dst, size_t dst_step) {
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  if (sw == 1) {
    copy_taps_t<1>(src, dil, taps, n, dst, dst_step);
    return;
  }
  if (sw == 2) {
    copy_taps_t<2>(src, dil, taps, n, dst, dst_step);
    return;
  }
  if (sw == 4) {
    copy_taps_t<4>(src, dil, taps, n, dst, dst_step);
    return;
  }
#endif
  for (size_t kw = 0; kw < taps; ++kw) copy_strided(src + kw * dil, sw, n, dst + kw * dst_step);  // other strides
}

// One panel's rows k0 + [0, KH KW) (one input channel's taps; panel: its row k0, w floats per
// row, nq pixels from pixel q0) from one-phase staged rows, tap row by tap row, each row's
// segments (runs of pixels in one output row) in order. A segment's last partial vector is
// stored whole when what it writes past the segment is rewritten afterwards: the row's next
// segments, or (a panel without zero columns, nq == w, and not the last row this call writes,
// k_end) the next row's first columns; else it is a masked store (~12 cycles on Zen 3 against
// ~2 for a whole one: on ResNet's 14x14 and 28x28 outputs 1-2 per tap row and panel).
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
template <size_t SW>
HWY_INLINE void copy_panel_taps_t(const Conv2dParams& p, const RowGeom& g, const float* rows, size_t oh0, size_t q0,
                                  size_t nq, size_t w, float* HWY_RESTRICT panel, size_t k0, size_t k_end) {
  const size_t L = hn::Lanes(DF());
  for (size_t kh = 0, tap = 0; kh < p.KH; ++kh) {
    for (size_t kw = 0; kw < p.KW; ++kw, ++tap) {
      float* HWY_RESTRICT dst = panel + tap * w;
      const bool spill_ok = nq == w && k0 + tap + 1 < k_end;
      size_t oh = q0 / p.OW, ow = q0 % p.OW;
      for (size_t t = 0; t < nq; ow = 0, ++oh) {
        const size_t seg = std::min(p.OW - ow, nq - t);
        const float* src = rows + ((oh - oh0) * p.stride_h + kh * p.dil_h) * g.rs + ow * SW + kw * p.dil_w;
        copy_strided(src, SW, seg, dst + t, t + round_up(seg, L) <= nq || spill_ok);
        t += seg;
      }
    }
  }
}
#endif

HWY_INLINE void copy_panel_taps(const Conv2dParams& p, const RowGeom& g, const float* rows, size_t oh0, size_t q0,
                                size_t nq, size_t w, float* HWY_RESTRICT panel, size_t k0, size_t k_end) {
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  if (p.stride_w == 1) return copy_panel_taps_t<1>(p, g, rows, oh0, q0, nq, w, panel, k0, k_end);
  if (p.stride_w == 2) return copy_panel_taps_t<2>(p, g, rows, oh0, q0, nq, w, panel, k0, k_end);
  if (p.stride_w == 4) return copy_panel_taps_t<4>(p, g, rows, oh0, q0, nq, w, panel, k0, k_end);
#else
  (void)k0;
  (void)k_end;
#endif
  // Other strides (and the one-lane targets).
  size_t oh = q0 / p.OW, ow = q0 % p.OW;
  for (size_t t = 0; t < nq;) {
    const size_t seg = std::min(p.OW - ow, nq - t);
    for (size_t kh = 0; kh < p.KH; ++kh) {
      const float* row = rows + ((oh - oh0) * p.stride_h + kh * p.dil_h) * g.rs;
      copy_taps(row + ow * p.stride_w, p.stride_w, p.dil_w, p.KW, seg, panel + kh * p.KW * w + t, w);
    }
    t += seg;
    ow = 0;
    ++oh;
  }
}

// Taps kw = 0, 1, ... of a staged row: tap kw of output column ow reads phase (kw * dil_w) %
// phases at offset (kw * dil_w) / phases + ow * cs (RowGeom), stepped without divisions.
struct TapWalk {
  size_t phases, prs, dph, dq, ph = 0, q = 0;
  TapWalk(const Conv2dParams& p, const RowGeom& g)
      : phases(g.phases), prs(g.prs), dph(p.dil_w % g.phases), dq(p.dil_w / g.phases) {}
  size_t offset() const { return ph * prs + q; }
  void next() {
    ph += dph;
    q += dq;
    if (ph >= phases) {
      ph -= phases;
      ++q;
    }
  }
};

// 1x1 kernels read each input pixel once: gather straight from the input rows. Row segment of
// output row oh, columns [ow, ow+n), of one input plane: dst[u] = in(oh*sh - pad_top,
// (ow+u)*sw - pad_left) or 0 outside the input. Vector reads may run past the row into the next
// one (those lanes are not stored), never past in_end (the input tensor's end: scalar there).
void gather_pointwise(const Conv2dParams& p, const float* plane, const float* in_end, size_t oh, size_t ow, size_t n,
                      float* HWY_RESTRICT dst) {
  const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * p.stride_h) - static_cast<ptrdiff_t>(p.pad_top);
  if (ih < 0 || ih >= static_cast<ptrdiff_t>(p.H)) {
    std::fill(dst, dst + n, 0.f);
    return;
  }
  const ptrdiff_t W = static_cast<ptrdiff_t>(p.W), sw = static_cast<ptrdiff_t>(p.stride_w), s = static_cast<ptrdiff_t>(n);
  const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow) * sw - static_cast<ptrdiff_t>(p.pad_left);
  // In-input columns u in [lo, hi): 0 <= iw0 + u*sw < W.
  const ptrdiff_t lo = std::clamp<ptrdiff_t>(iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw, 0, s);
  const ptrdiff_t hi = std::clamp<ptrdiff_t>(W - iw0 <= 0 ? 0 : (W - iw0 + sw - 1) / sw, lo, s);
  std::fill(dst, dst + lo, 0.f);
  const float* row = plane + ih * W;
  size_t u = static_cast<size_t>(lo);
  const size_t end = static_cast<size_t>(hi);
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  if (sw == 1 || sw == 2 || sw == 4) {
    const DF d;
    const size_t L = hn::Lanes(d);
    for (; u < end; u += L) {
      const float* q = row + iw0 + static_cast<ptrdiff_t>(u) * sw;
      if (static_cast<size_t>(in_end - q) < static_cast<size_t>(sw) * L) break;
      if (u + L <= end) {
        hn::StoreU(load_strided(q, static_cast<size_t>(sw)), d, dst + u);
      } else {
        hn::BlendedStore(load_strided(q, static_cast<size_t>(sw)), hn::FirstN(d, end - u), d, dst + u);
      }
    }
  }
#else
  (void)in_end;
#endif
  for (; u < end; ++u) dst[u] = row[iw0 + static_cast<ptrdiff_t>(u) * sw];
  std::fill(dst + end, dst + n, 0.f);
}

// The taps of one input channel (rows k0.. of the col tile, see im2col_packed) from its staged
// rows split by phase: contiguous copies.
HWY_NOINLINE void copy_taps_split(const Conv2dParams& p, const RowGeom& g, const float* rows, size_t oh0, size_t p0,
                                  size_t np, size_t K, size_t nr, size_t lanes, float* HWY_RESTRICT col, size_t k0) {
  for (size_t t0 = 0; t0 < np; t0 += nr) {
    const size_t nq = std::min(nr, np - t0), w = std::min(nr, round_up(nq, lanes));
    float* panel = col + t0 * K + k0 * w;
    size_t oh = (p0 + t0) / p.OW, ow = (p0 + t0) % p.OW;
    for (size_t t = 0; t < nq;) {
      const size_t seg = std::min(p.OW - ow, nq - t);
      for (size_t kh = 0; kh < p.KH; ++kh) {
        const float* row = rows + ((oh - oh0) * p.stride_h + kh * p.dil_h) * g.rs + ow;
        float* dst = panel + kh * p.KW * w + t;
        TapWalk tw(p, g);
        for (size_t kw = 0; kw < p.KW; ++kw, tw.next()) copy_row(row + tw.offset(), seg, dst + kw * w);
      }
      t += seg;
      ow = 0;
      ++oh;
    }
  }
}

// Prefetch of the rows y0, y0 + step, ... (count padded rows, y counted with the top padding) of
// an input plane that lie inside it, whole rows.
HWY_INLINE void prefetch_rows(const Conv2dParams& p, const float* plane, size_t y0, size_t count, size_t step) {
  for (size_t y = y0; y < y0 + count; y += step) {
    if (y < p.pad_top || y >= p.pad_top + p.H) continue;
    const char* row = reinterpret_cast<const char*>(plane + (y - p.pad_top) * p.W);
    for (size_t b = 0; b < p.W * sizeof(float); b += 64) __builtin_prefetch(row + b, 0, 3);
  }
}

// Tile of the col matrix for image `in_n`, group channels c0 + [cb, ce) (the rows of those
// channels; the group starts at c0), output pixels [p0, p0+np), written in the GEMM's packed-B
// layout: row k = (c*KH + kh)*KW + kw, column t lies in panel q = t / nr at col + q*nr*K +
// k*w_q + t % nr (w_q = the panel's width, columns past np zero). Channel by channel: stage the
// padded input rows the tile reads (rows, pad: the thread's buffers, see RowGeom), then copy
// every tap of every row segment (a run of pixels in one output row and one panel) from them.
// (1x1 kernels never come here: conv_pointwise and conv_subsampled take them.)
void im2col_packed(const Conv2dParams& p, const float* in_n, size_t c0, size_t cb, size_t ce,
                   size_t p0, size_t np, const GemmPanelLayout& lay, float* HWY_RESTRICT col, float* HWY_RESTRICT rows,
                   float* HWY_RESTRICT pad) {
  const size_t K = kdim(p), nr = lay.nr, taps = p.KH * p.KW;
  const RowGeom g = row_geom(p, np);
  const size_t oh0 = p0 / p.OW, oh1 = (p0 + np - 1) / p.OW;
  const size_t y0 = oh0 * p.stride_h, ny = (oh1 - oh0) * p.stride_h + (p.KH - 1) * p.dil_h + 1;
  // 1xN kernels with a row stride read every stride_h-th row only.
  const size_t row_step = p.KH == 1 ? p.stride_h : 1;
  // Columns past np of the last (narrower than nr) panel feed lanes never stored: zero them.
  const size_t t_last = np / nr * nr;
  if (t_last < np) {
    const size_t nq = np - t_last, w = std::min(nr, round_up(nq, lay.lanes));
    float* panel = col + t_last * K;
    for (size_t k = cb * taps; k < ce * taps; ++k) std::fill(panel + k * w + nq, panel + k * w + w, 0.f);
  }
  for (size_t c = cb; c < ce; ++c) {
    const float* plane = in_n + (c0 + c) * p.H * p.W;
    for (size_t r = 0; r < ny; r += row_step) stage_row(p, plane, y0 + r, g, rows + r * g.rs, pad);
    // The next channel's input rows (one contiguous run of the plane) are fetched while this
    // channel's taps are copied: the short row copies of stage_row otherwise wait on each line
    // (3x3 stride 2, 256 channels on 28x28 alone: stage_row 6.6% -> 2.9% of the conv's samples).
    if (c + 1 < ce) prefetch_rows(p, plane + p.H * p.W, y0, ny, row_step);
    if (g.phases > 1) {
      copy_taps_split(p, g, rows, oh0, p0, np, K, nr, lay.lanes, col, c * taps);
      continue;
    }
    for (size_t t0 = 0; t0 < np; t0 += nr) {
      const size_t nq = std::min(nr, np - t0), w = std::min(nr, round_up(nq, lay.lanes));
      copy_panel_taps(p, g, rows, oh0, p0 + t0, nq, w, col + t0 * K + c * taps * w, c * taps, ce * taps);
    }
  }
}

// A of group g: its rows of the packed weights.
inline size_t group_a_floats(const Conv2dParams& p, const GemmPanelLayout& lay) {
  return round_up(p.M / p.group, lay.mr) * kdim(p);
}

void conv_pointwise(const Conv2dParams& p, const float* in, const float* w, float* out, float* scratch,
                    const Parallel& par, size_t ldb = 0) {
  const GemmPanelLayout lay = gemm_panel_layout();
  const size_t hw = p.H * p.W, Mg = p.M / p.group, Cg = p.C / p.group;
  if (ldb == 0) ldb = hw;
  for (size_t g = 0; g < p.group; ++g) {
    GemmParams gp = group_gemm(p, hw, ldb, hw);
    gp.batch = p.N;
    gp.a_bs = 0;
    gp.b_bs = static_cast<ptrdiff_t>(p.C * ldb);
    gp.c_bs = static_cast<ptrdiff_t>(p.M * hw);
    gp.ep = p.ep;
    gp.ep.bias_per_row = true;
    if (p.ep.bias) gp.ep.bias = p.ep.bias + g * Mg;
    if (p.ep.residual) gp.ep.residual = p.ep.residual + g * Mg * hw;
    gemm_prepacked_a(gp, w + g * group_a_floats(p, lay), in + g * Cg * ldb, out + g * Mg * hw, scratch, par);
  }
}

// 1x1 convs with a stride (ResNet's downsample: 1x1 stride 2 into 28x28, 14x14 and 7x7 maps) or
// pads: the samples are gathered into scratch as [N][C][ld] rows (ld = OH OW rounded up to 16
// floats, zeros past OH OW), then run as a pointwise conv (B read in place, A pre-packed), the
// gather a joined first stage of the GEMM's one parallel run (PrestagedParallel: no second pool
// job). The same sums in the same order as the im2col path, so the same results.
// Measured against that path (col tiles gathered per task into packed panels, gemm_packed_ab)
// on ResNet-50 (Zen 4, in-process paired runs, 50 ABBA pairs, per-step medians): at 1 thread the
// downsample into 28x28 7.2% faster, into 14x14 2.3%, into 7x7 3.8% (0.28 ms a run); with rows
// of exactly OH OW floats the 14x14 one was 1.9% slower than im2col (its 196-float rows start
// mid-line; the in-place B loads split across lines). Batch 8 at 2 threads (8 pairs): into 28x28
// 9.8% faster, 14x14 2.4%, 7x7 3.5% slower, 0.7 of 27 ms net. Tried on the plain pointwise convs
// with unaligned rows too (a copy into aligned rows first, M >= 512): layer4's 6% and 3% slower,
// layer3's 1%: the alignment only pays where the gather is needed anyway.
void conv_subsampled(const Conv2dParams& p, const float* in, const float* w, float* out, float* scratch,
                     const Parallel& par) {
  const Conv2dParams q = subsampled_params(p);
  const size_t ld = subsampled_ld(p), plane = p.H * p.W;
  const float* in_end = in + p.N * p.C * plane;
  const std::function<void(size_t, size_t)> gather = [&](size_t i, size_t) {
    float* dst = scratch + i * ld;
    for (size_t oh = 0; oh < p.OH; ++oh) gather_pointwise(p, in + i * plane, in_end, oh, 0, p.OW, dst + oh * p.OW);
    std::fill(dst + p.OH * p.OW, dst + ld, 0.f);
  };
  StageCounters sc;
  const PrestagedParallel staged(par, sc, p.N * p.C, gather);
  conv_pointwise(q, scratch, w, out, scratch + subsampled_floats(p), staged, ld);
}

void conv_im2col(const Conv2dParams& p, const float* in, const float* w, float* out, float* scratch, const Parallel& par) {
  const GemmPanelLayout lay = gemm_panel_layout();
  const size_t ohw = p.OH * p.OW, Mg = p.M / p.group, Cg = p.C / p.group;
  const size_t threads = std::max<size_t>(par.threads(), 1);
  const TilePlan tp = plan_tiles(p, threads, lay.mr);
  const size_t P = tp.P, rows = tp.rows;
  const size_t n_tiles = div_up(ohw, P), jobs = p.N * p.group * n_tiles;
  const size_t m_parts = div_up(Mg, rows);
  const size_t per_thread = im2col_per_thread(p), col_floats = im2col_col_floats(p), a_group = group_a_floats(p, lay);
  const RowGeom rg = row_geom(p, pixel_tile(p, 1));
  const size_t pad_off = col_floats + staged_floats(rg) - rg.pad;  // the de-interleave buffer
  par.run(jobs * m_parts, [&](size_t task, size_t thread) {
    const size_t part = task % m_parts, job = task / m_parts;
    const size_t tile = job % n_tiles;
    const size_t g = (job / n_tiles) % p.group;
    const size_t n = job / (n_tiles * p.group);
    const size_t p0 = tile * P, np = std::min(P, ohw - p0);
    float* col = scratch + thread * per_thread;
    im2col_packed(p, in + n * p.C * p.H * p.W, g * Cg, 0, Cg, p0, np, lay, col, col + col_floats, col + pad_off);
    GemmParams gp = group_gemm(p, np, np, ohw);
    const size_t off = (n * p.M + g * Mg) * ohw + p0;
    gp.ep = p.ep;
    gp.ep.bias_per_row = true;
    if (p.ep.bias) gp.ep.bias = p.ep.bias + g * Mg;
    if (p.ep.residual) gp.ep.residual = p.ep.residual + off;
    gemm_packed_ab(gp, w + g * a_group, col, out + off, part * rows, std::min(Mg, (part + 1) * rows));
  });
}

// im2col_shared(): per image and group one parallel run whose tasks are the GEMM's, row parts x
// column chunks, each first taking part in the gather of the col matrix in blocks of input
// channels (a JoinedStage: no second run and wake-up). Every output is the same sum
// whatever the grid (gemm_packed_ab's K blocking depends on K only), so results do not depend
// on the threads.
void conv_im2col_shared(const Conv2dParams& p, const float* in, const float* w, float* out, float* scratch,
                        const Parallel& par) {
  const GemmPanelLayout lay = gemm_panel_layout();
  const size_t ohw = p.OH * p.OW, Mg = p.M / p.group, Cg = p.C / p.group, K = kdim(p);
  const size_t threads = std::max<size_t>(par.threads(), 1);
  float* col = scratch;
  float* staged = scratch + shared_col_floats(p);
  const size_t per_thread = shared_per_thread(p), a_group = group_a_floats(p, lay);
  const RowGeom rg = row_geom(p, ohw);
  // Up to 4 channel blocks per thread, their sizes differing by at most one.
  const size_t c_blocks = std::min(Cg, 4 * threads);
  // Row parts first (the weights split), whole mr panels, two per thread so that a thread slowed
  // by other load hands work over (ResNet's 14x14 layers on 2 threads: 2-5% faster than one per
  // thread); column chunks of whole nr panels when there are fewer row panels than threads.
  size_t parts = std::min(2 * threads, div_up(Mg, lay.mr));
  const size_t panels = div_up(ohw, lay.nr);
  size_t chunks = std::min(panels, div_up(threads, div_up(Mg, round_up(div_up(Mg, parts), lay.mr))));
  if (threads > kMakespanMaxThreads) {
    // Many threads: two tasks per thread from the grid that moves the fewest bytes, each row
    // part reading all of its column chunks' col (K x ohw) and each chunk all of its rows'
    // weights (Mg x K): 16 threads on ResNet-50's 28x28 3x3/2 conv took 16 parts of 8 rows, so
    // every task streamed the whole 3.6 MB col matrix.
    size_t best = SIZE_MAX;
    for (size_t pa = 1; pa <= std::min(2 * threads, div_up(Mg, lay.mr)); ++pa) {
      const size_t ch = std::min(panels, div_up(2 * threads, pa));
      const size_t tasks = pa * ch, short_by = tasks < 2 * threads ? 2 * threads - tasks : 0;
      const size_t bytes = pa * ohw + ch * Mg + short_by * (ohw + Mg);  // in K-rows of floats
      if (bytes < best) {
        best = bytes;
        parts = pa;
        chunks = ch;
      }
    }
  }
  const size_t rows = round_up(div_up(Mg, parts), lay.mr), m_parts = div_up(Mg, rows);
  for (size_t n = 0; n < p.N; ++n) {
    for (size_t g = 0; g < p.group; ++g) {
      const float* in_n = in + n * p.C * p.H * p.W;
      const size_t off = (n * p.M + g * Mg) * ohw;
      StageCounters gather;
      par.run(m_parts * chunks, [&](size_t task, size_t thread) {
        JoinedStage(gather, threads, thread).run(c_blocks, [&](size_t b, size_t th) {
          float* rows_t = staged + th * per_thread;
          im2col_packed(p, in_n, g * Cg, b * Cg / c_blocks, (b + 1) * Cg / c_blocks, 0, ohw, lay, col, rows_t,
                        rows_t + per_thread - rg.pad);
        });
        const size_t part = task / chunks, chunk = task % chunks;
        const size_t j0 = chunk * panels / chunks * lay.nr, j1 = std::min(ohw, (chunk + 1) * panels / chunks * lay.nr);
        GemmParams gp = group_gemm(p, j1 - j0, j1 - j0, ohw);
        gp.ep = p.ep;
        gp.ep.bias_per_row = true;
        if (p.ep.bias) gp.ep.bias = p.ep.bias + g * Mg;
        if (p.ep.residual) gp.ep.residual = p.ep.residual + off + j0;
        gemm_packed_ab(gp, w + g * a_group, col + j0 * K, out + off + j0, part * rows, std::min(Mg, (part + 1) * rows));
      });
    }
  }
}

// out[m][x] = act(ct[x][m] + residual[m][x]) for channels [j0, j0 + 8 k) and pixels [r0, min(r1,
// OH OW)), in 8 x 8 blocks transposed in registers (AVX2: 8 row loads, 24 shuffles, 8 row stores,
// where the gathers of the column-by-column path took 8 x ~20 cycles: 70% of that stage in
// ResNet-50's layer 4), the last pixels a vector of channels at a time. Returns 8 k, the channels
// done (0 on other targets).
// The same additions and activation as the gather path, so the same results.
size_t transpose_blocks(const Conv2dParams& p, const float* ct, size_t ldc, size_t j0, size_t j1, size_t r0,
                        size_t r1, float* out, const float* res) {
#if HWY_TARGET == HWY_AVX2
  const DF d;
  const size_t ohw = p.OH * p.OW;
  const size_t m_end = j0 + (j1 - j0) / 8 * 8, x_end = r0 + (std::min(r1, ohw) - r0) / 8 * 8;
  for (size_t m0 = j0; m0 < m_end; m0 += 8) {
    for (size_t x = r0; x < x_end; x += 8) {
      VF r[8], c[8];
      for (size_t i = 0; i < 8; ++i) r[i] = hn::LoadU(d, ct + (x + i) * ldc + m0);
      transpose8x8(d, r, c);
      for (size_t k = 0; k < 8; ++k) {
        const size_t o = (m0 + k) * ohw + x;
        VF v = c[k];
        if (res) v = hn::Add(v, hn::LoadU(d, res + o));
        hn::StoreU(activate_vec(d, v, p.ep), d, out + o);
      }
    }
    // The last pixels (fewer than 8): one vector of 8 channels per pixel, scattered through a
    // buffer.
    for (size_t x = x_end; x < std::min(r1, ohw); ++x) {
      HWY_ALIGN float buf[8];
      VF v = hn::LoadU(d, ct + x * ldc + m0);
      if (res) {
        for (size_t k = 0; k < 8; ++k) buf[k] = res[(m0 + k) * ohw + x];
        v = hn::Add(v, hn::Load(d, buf));
      }
      hn::Store(activate_vec(d, v, p.ep), d, buf);
      for (size_t k = 0; k < 8; ++k) out[(m0 + k) * ohw + x] = buf[k];
    }
  }
  return m_end - j0;
#else
  (void)p, (void)ct, (void)ldc, (void)j0, (void)j1, (void)r0, (void)r1, (void)out, (void)res;
  return 0;
#endif
}

// Transposed GEMM for small maps (see transposed()): per image, A = col^T [ohw][K] packed per
// run, B = W^T [K][M] packed at plan time (gemm.h's packed-B layout), out^T [ohw][M] + bias per
// column, then out[m][pixel] = act(out^T[pixel][m] + residual): 8 x 8 register transposes on
// AVX2 (transpose_blocks), elsewhere and for the channels past them vectorised over pixels with
// gathers. Tasks own whole B panels (output channels): the per-element arithmetic is that of one
// panel whatever the split, so results do not depend on the thread count.
void conv_transposed(const Conv2dParams& p, const float* in, const float* w, float* out, float* scratch,
                     const Parallel& par) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const GemmPanelLayout lay = gemm_panel_layout();
  const size_t ohw = p.OH * p.OW, K = kdim(p), threads = std::max<size_t>(par.threads(), 1);
  const bool pointwise = conv_path(p) == ConvPath::kPointwise;
  const TrGeom tg = tr_geom(p);
  float* col = scratch;
  float* a_packed = col + tg.col;
  float* ct = a_packed + tg.a;
  float* stage = ct + tg.ct;
  float* staged_rows = stage + threads * tg.stage;
  const RowGeom rg = row_geom(p, ohw);
  const size_t panels = div_up(p.M, lay.nr);
  // Up to 4 tasks per thread, their panel counts differing by at most one (43 panels on 2
  // threads: 8 tasks of 5-6 panels, not 7 of 6 and 1 of 1).
  const size_t n_chunks = std::min(panels, 4 * threads);
  // More threads than that makes tasks (ResNet-50's M = 512 is 11 panels of 48 on AVX-512, for
  // 16 threads): the pixels (rows of out^T) split too, at multiples of mr and of the vector
  // length (whole panels of col^T, whole vectors of the transposition below).
  size_t px_step = ohw;
  if (threads > kMakespanMaxThreads && n_chunks < 2 * threads) {
    const size_t unit = std::lcm(lay.mr, L), units = div_up(ohw, unit);
    px_step = div_up(units, std::min(units, div_up(2 * threads, n_chunks))) * unit;
  }
  const size_t px_parts = div_up(ohw, px_step);
  using TI = hn::RebindToSigned<DF>;
  const TI di;
  const auto gather_idx = hn::Mul(hn::Iota(di, 0), hn::Set(di, static_cast<int32_t>(tg.ldc)));
  for (size_t n = 0; n < p.N; ++n) {
    const float* in_n = in + n * p.C * p.H * p.W;
    const float* colm = pointwise ? in_n : col;  // [K][ohw], or [K][lcol] when gathered
    // Rows of the col matrix in tasks of whole input channels: stage the channel's padded rows,
    // then copy every tap of every output row out of them.
    const size_t taps = p.KH * p.KW, row_step = p.KH == 1 ? p.stride_h : 1;
    const size_t ny = (p.OH - 1) * p.stride_h + (p.KH - 1) * p.dil_h + 1;
    const auto gather = [&](size_t c, size_t thread) {
      const float* plane = in_n + c * p.H * p.W;
      float* rows = staged_rows + thread * tg.rows;
      for (size_t y = 0; y < ny; y += row_step) stage_row(p, plane, y, rg, rows + y * rg.rs, rows + tg.rows - rg.pad);
      for (size_t kh = 0; kh < p.KH; ++kh) {
        TapWalk tw(p, rg);
        for (size_t kw = 0; kw < p.KW; ++kw, tw.next()) {
          float* dst = col + (c * taps + kh * p.KW + kw) * tg.lcol;
          const float* src = rows + kh * p.dil_h * rg.rs + tw.offset();
          // Rows in order: a row's last vector runs into the next row's start (written next) or,
          // after the last, into the col row's slack (lcol: ohw + a vector at least).
          for (size_t oh = 0; oh < p.OH; ++oh)
            copy_strided(src + oh * p.stride_h * rg.rs, rg.cs, p.OW, dst + oh * p.OW, true);
        }
      }
    };
    GemmParams ap;
    ap.M = ohw;
    ap.N = p.M;
    ap.K = K;
    ap.a_rs = 1;
    ap.a_cs = static_cast<ptrdiff_t>(pointwise ? ohw : tg.lcol);
    const size_t out_n = n * p.M * ohw;
    // One run per image: each task takes part in the gather and in the packing of col^T
    // (JoinedStages), then computes its panels.
    StageCounters gathered, packed;
    par.run(n_chunks * px_parts, [&](size_t task, size_t thread) {
      if (!pointwise) JoinedStage(gathered, threads, thread).run(p.C, gather);
      // gemm_pack_a makes a single run() over its K blocks (a second one on the same counters
      // would find them used up; the transposed cases of test_conv2d would fail).
      gemm_pack_a(ap, colm, a_packed, JoinedStage(packed, threads, thread));
      const size_t chunk = task / px_parts, r0 = task % px_parts * px_step, r1 = std::min(ohw, r0 + px_step);
      const size_t j0 = chunk * panels / n_chunks * lay.nr, j1 = std::min(p.M, (chunk + 1) * panels / n_chunks * lay.nr);
      GemmParams gp = ap;
      gp.N = j1 - j0;
      gp.ldc = tg.ldc;
      gp.ep = Epilogue{};
      gp.ep.bias_per_row = false;
      gp.ep.bias = p.ep.bias ? p.ep.bias + j0 : nullptr;
      gemm_packed_ab(gp, a_packed, w + j0 * K, ct + j0, r0, r1);
      float* st = stage + thread * tg.stage;
      // Whole 8 x 8 blocks (AVX2) transposed in registers; the rest gathered column by column.
      const size_t m_fast = j0 + transpose_blocks(p, ct, tg.ldc, j0, j1, r0, r1, out + out_n,
                                                  p.ep.residual ? p.ep.residual + out_n : nullptr);
      for (size_t m = m_fast; m < j1; ++m) {
        float* orow = out + out_n + m * ohw;
        const float* rrow = p.ep.residual ? p.ep.residual + out_n + m * ohw : nullptr;
        for (size_t x = r0; x < r1; x += L) {
          // Rows x..x+L-1 of out^T; those past ohw are slack rows of the scratch (not stored).
          VF v = hn::GatherIndex(d, ct + x * tg.ldc + m, gather_idx);
          if (x + L <= ohw) {
            if (rrow) v = hn::Add(v, hn::LoadU(d, rrow + x));
            hn::StoreU(activate_vec(d, v, p.ep), d, orow + x);
          } else {
            // Pixel tail: the residual and output rows end here (another task may own the next
            // channel's row), so stage it through memory.
            const size_t rem = ohw - x;
            std::fill(st, st + L, 0.f);
            if (rrow) std::memcpy(st, rrow + x, rem * sizeof(float));
            v = activate_vec(d, hn::Add(v, hn::LoadU(d, st)), p.ep);
            hn::StoreU(v, d, st);
            std::memcpy(orow + x, st, rem * sizeof(float));
          }
        }
      }
    });
  }
}

void conv_depthwise(const Conv2dParams& p, const float* in, const float* w, float* out, float* scratch,
                    const Parallel& par) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const DwGeom geo = dw_geom(p);
  const size_t per_thread = dw_plane_floats(p);
  const size_t sw = p.stride_w, ohw = p.OH * p.OW, taps = p.KH * p.KW;
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  par.run(p.N * p.C, [&](size_t task, size_t thread) {
    const size_t c = task % p.C;
    const float* src = in + task * p.H * p.W;
    float* dst = out + task * ohw;
    const float* res = p.ep.residual ? p.ep.residual + task * ohw : nullptr;
    const float* wc = w + c * taps;
    const float bias = p.ep.bias ? p.ep.bias[c] : 0.f;
    float* buf = scratch + thread * per_thread;
    // Fill the phase-split padded plane: buf[(y*sw + ph)*rs + i] = in(y - pad_top, i*sw + ph - pad_left).
    for (size_t y = 0; y < geo.ph; ++y) {
      const ptrdiff_t ih = static_cast<ptrdiff_t>(y) - static_cast<ptrdiff_t>(p.pad_top);
      for (size_t ph = 0; ph < sw; ++ph) {
        float* row = buf + (y * sw + ph) * geo.rs;
        if (ih < 0 || ih >= H) {
          std::fill(row, row + geo.rs, 0.f);
          continue;
        }
        // In-input part [i_lo, i_hi) of the phase row, zeros around it.
        const ptrdiff_t sws = static_cast<ptrdiff_t>(sw), off = static_cast<ptrdiff_t>(ph) - static_cast<ptrdiff_t>(p.pad_left);
        const ptrdiff_t i_lo = std::clamp<ptrdiff_t>(off >= 0 ? 0 : (-off + sws - 1) / sws, 0, static_cast<ptrdiff_t>(geo.pws));
        const ptrdiff_t i_hi = std::clamp<ptrdiff_t>(W - off <= 0 ? 0 : (W - off + sws - 1) / sws, i_lo, static_cast<ptrdiff_t>(geo.pws));
        const float* srow = src + ih * W;
        std::fill(row, row + i_lo, 0.f);
        if (sw == 1) {
          if (i_hi > i_lo) std::memcpy(row + i_lo, srow + off + i_lo, static_cast<size_t>(i_hi - i_lo) * sizeof(float));
        } else {
          for (ptrdiff_t i = i_lo; i < i_hi; ++i) row[i] = srow[off + i * sws];
        }
        std::fill(row + i_hi, row + geo.rs, 0.f);
      }
    }
    const VF vbias = hn::Set(d, bias);
    HWY_ALIGN float tmp[kMaxLanes];
    for (size_t oh = 0; oh < p.OH; ++oh) {
      float* orow = dst + oh * p.OW;
      const float* rrow = res ? res + oh * p.OW : nullptr;
      for (size_t ow = 0; ow < p.OW; ow += L) {
        VF acc = hn::Zero(d);
        for (size_t kh = 0; kh < p.KH; ++kh) {
          const size_t y = oh * p.stride_h + kh * p.dil_h;
          for (size_t kw = 0; kw < p.KW; ++kw) {
            const size_t x = kw * p.dil_w;
            // Reads up to index ow + L - 1 + x / sw < pws + L <= rs: inside the padded row.
            const float* s = buf + (y * sw + x % sw) * geo.rs + ow + x / sw;
            acc = hn::MulAdd(hn::Set(d, wc[kh * p.KW + kw]), hn::LoadU(d, s), acc);
          }
        }
        acc = hn::Add(acc, vbias);
        if (ow + L <= p.OW) {
          if (rrow) acc = hn::Add(acc, hn::LoadU(d, rrow + ow));
          hn::StoreU(activate_vec(d, acc, p.ep), d, orow + ow);
        } else {
          // Output tail: the residual and output rows end here, so finish it in scalar.
          hn::Store(acc, d, tmp);
          for (size_t t = 0; ow + t < p.OW; ++t) {
            float v = tmp[t];
            if (rrow) v += rrow[ow + t];
            orow[ow + t] = activate_scalar(v, p.ep);
          }
        }
      }
    }
  });
}

}  // namespace

void conv2d_impl(const Conv2dParams& p, const float* in, const float* w, float* out, float* scratch, const Parallel* par) {
  if (p.N == 0 || p.M == 0 || p.OH == 0 || p.OW == 0) return;
  if (transposed(p)) {
    conv_transposed(p, in, w, out, scratch, *par);
    return;
  }
  switch (conv_path(p)) {
    case ConvPath::kPointwise:
      conv_pointwise(p, in, w, out, scratch, *par);
      break;
    case ConvPath::kSubsampled:
      conv_subsampled(p, in, w, out, scratch, *par);
      break;
    case ConvPath::kDepthwise:
      conv_depthwise(p, in, w, out, scratch, *par);
      break;
    case ConvPath::kIm2col:
      if (im2col_shared(p, std::max<size_t>(par->threads(), 1))) {
        conv_im2col_shared(p, in, w, out, scratch, *par);
      } else {
        conv_im2col(p, in, w, out, scratch, *par);
      }
      break;
  }
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(conv2d_impl);

size_t conv2d_packed_weight_floats(const Conv2dParams& p) {
  using namespace conv_detail;  // NOLINT
  if (conv_path(p) == ConvPath::kDepthwise) return p.M * kdim(p);
  if (transposed(p)) return gemm_packed_b_floats(p.M, kdim(p));
  return p.group * gemm_packed_a_floats(p.M / p.group, kdim(p));
}

// Depthwise weights are used as they are; everything else runs on packed-A panels.
bool conv2d_packing_is_identity(const Conv2dParams& p) { return conv_detail::conv_path(p) == conv_detail::ConvPath::kDepthwise; }

void pack_conv2d_weights(const Conv2dParams& p, const float* w, float* packed) {
  using namespace conv_detail;  // NOLINT
  if (conv_path(p) == ConvPath::kDepthwise) {
    std::memcpy(packed, w, conv2d_packed_weight_floats(p) * sizeof(float));
    return;
  }
  if (transposed(p)) {
    // W^T [K][M] as packed B: panel q (columns j0 = q*nr) at packed + j0*K, [K][width], the
    // width rounded up to whole vectors with zero columns past M.
    const GemmPanelLayout lay = gemm_panel_layout();
    const size_t K = kdim(p);
    for (size_t j0 = 0; j0 < p.M; j0 += lay.nr) {
      const size_t width = std::min(lay.nr, round_up(p.M - j0, lay.lanes));
      float* panel = packed + j0 * K;
      for (size_t k = 0; k < K; ++k)
        for (size_t j = 0; j < width; ++j) panel[k * width + j] = j0 + j < p.M ? w[(j0 + j) * K + k] : 0.f;
    }
    return;
  }
  const size_t Mg = p.M / p.group, K = kdim(p), per_group = gemm_packed_a_floats(Mg, K);
  for (size_t g = 0; g < p.group; ++g) {
    GemmParams gp = group_gemm(p, 1, 1, 1);
    gemm_pack_a(gp, w + g * Mg * K, packed + g * per_group);
  }
}

void unpack_conv2d_weights(const Conv2dParams& p, const float* packed, float* w) {
  using namespace conv_detail;  // NOLINT
  if (conv_path(p) == ConvPath::kDepthwise) {
    std::memcpy(w, packed, conv2d_packed_weight_floats(p) * sizeof(float));
    return;
  }
  const size_t K = kdim(p);
  if (transposed(p)) {
    const GemmPanelLayout lay = gemm_panel_layout();
    for (size_t j0 = 0; j0 < p.M; j0 += lay.nr) {
      const size_t width = std::min(lay.nr, round_up(p.M - j0, lay.lanes));
      const float* panel = packed + j0 * K;
      for (size_t j = 0; j < width && j0 + j < p.M; ++j)
        for (size_t k = 0; k < K; ++k) w[(j0 + j) * K + k] = panel[k * width + j];
    }
    return;
  }
  const size_t Mg = p.M / p.group, per_group = gemm_packed_a_floats(Mg, K);
  for (size_t g = 0; g < p.group; ++g) gemm_unpack_a(Mg, K, packed + g * per_group, w + g * Mg * K);
}

size_t conv2d_scratch_floats(const Conv2dParams& p, size_t threads) {
  using namespace conv_detail;  // NOLINT
  if (p.N == 0 || p.M == 0 || p.OH == 0 || p.OW == 0) return 0;
  threads = std::max<size_t>(threads, 1);
  if (transposed(p)) {
    const TrGeom g = tr_geom(p);
    return g.col + g.a + g.ct + threads * (g.stage + g.rows);
  }
  switch (conv_path(p)) {
    case ConvPath::kPointwise: {
      GemmParams gp = group_gemm(p, p.H * p.W, p.H * p.W, p.H * p.W);
      gp.batch = p.N;
      return gemm_prepacked_a_scratch_floats(gp, threads);
    }
    case ConvPath::kSubsampled: {
      const Conv2dParams q = subsampled_params(p);
      GemmParams gp = group_gemm(q, q.H * q.W, subsampled_ld(p), q.H * q.W);
      gp.batch = p.N;
      return subsampled_floats(p) + gemm_prepacked_a_scratch_floats(gp, threads);
    }
    case ConvPath::kDepthwise:
      return threads * dw_plane_floats(p);
    case ConvPath::kIm2col:
      // The shared layout when these threads take it, and never less than the per-tile one (run
      // with fewer threads, the kernel may choose that one).
      if (im2col_shared(p, threads))
        return std::max(shared_col_floats(p) + threads * shared_per_thread(p), threads * im2col_per_thread(p));
      return threads * im2col_per_thread(p);
  }
  return 0;
}

void conv2d(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
            const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(conv2d_impl)(p, in, w_packed, out, scratch, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
