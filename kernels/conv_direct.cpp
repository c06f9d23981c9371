// Direct convolution for few input channels, stride 1: see kernels/conv_direct.h.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "hwy/base.h"
#include "kernels/conv_direct.h"
#include "kernels/int_math.h"

#ifndef CONVOY_KERNELS_CONV_DIRECT_SHARED
#define CONVOY_KERNELS_CONV_DIRECT_SHARED
namespace convoy::kernels::direct_detail {

inline constexpr size_t kPanel = 8;      // output channels per packed weight panel
// Bound on the float lanes of any compiled target (x86: AVX-512; checked per target below).
inline constexpr size_t kMaxLanes = HWY_ARCH_X86 ? 16 : 64;
inline constexpr size_t kMaxRows = 16;   // output rows per task
inline constexpr size_t kStreamFloats = size_t{2} << 20;  // outputs from 8 MiB on are streamed


// Floats per padded input row: the kernel reads up to the output width rounded up to whole
// vectors, plus KW - 1 (rounded to 16 floats: rows start 64 B apart from an aligned scratch).
inline size_t row_floats(const Conv2dParams& p) { return round_up(round_up(p.OW, kMaxLanes) + p.KW - 1, 16); }

// 1-D Winograd F(2,3) along W (KW = 3; see conv_direct_impl). Per thread: for every input row
// of a task, the 4 transformed rows U0..U3 of `pair_floats` floats (one float per pair of
// output pixels), one zero-padded input row, the transformed weights of all the panels, and
// slack to align the rows to 64 B.
inline bool wino_shape(const Conv2dParams& p) { return p.KW == 3; }
inline size_t pair_floats(const Conv2dParams& p) { return round_up(div_up(p.OW, 2), kMaxLanes); }
inline size_t wino_x_floats(const Conv2dParams& p) { return round_up(2 * pair_floats(p) + 2, 16); }
inline size_t wino_w_floats(const Conv2dParams& p) { return round_up(p.M, kPanel) * p.C * p.KH * 4; }

inline size_t per_thread_floats(const Conv2dParams& p) {
  const size_t R = std::min(kMaxRows, p.OH) + p.KH - 1;
  const size_t direct = p.C * R * row_floats(p);
  if (!wino_shape(p)) return direct;
  return std::max(direct, p.C * R * 4 * pair_floats(p) + wino_x_floats(p) + wino_w_floats(p) + 16);
}

// Work decomposition: tasks of `rows` output rows x `ppt` output-channel panels of one image.
struct Split {
  size_t rows = 1, n_rb = 1;  // output rows per task, row blocks per image
  size_t ppt = 1, n_pc = 1;   // panels per task, panel chunks
  size_t tasks = 1;
};

inline Split split(const Conv2dParams& p, size_t threads) {
  Split s;
  const size_t panels = div_up(p.M, kPanel);
  // One thread: whole row blocks (the padded copy is made once per kMaxRows rows for all the
  // output channels). More: about 8 tasks per thread for balance, then output-channel chunks
  // when the rows alone give fewer than 4 per thread (small maps).
  const size_t want = threads > 1 ? 8 * threads : 1;
  s.rows = std::clamp<size_t>(p.N * p.OH / want, 1, kMaxRows);
  s.n_rb = div_up(p.OH, s.rows);
  s.ppt = panels;
  if (threads > 1 && p.N * s.n_rb < 4 * threads) {
    const size_t chunks = std::min(panels, div_up(4 * threads, p.N * s.n_rb));
    s.ppt = div_up(panels, chunks);
  }
  s.n_pc = div_up(panels, s.ppt);
  s.tasks = p.N * s.n_rb * s.n_pc;
  return s;
}

// Copies input rows [oh0 - pad_top, oh0 - pad_top + R) of image `in_n`, every channel, into
// buf[c][r][row_floats] with the left pad, the right pad and out-of-range rows as zeros.
// Only the first `width` floats of each row are written (what the target's vectors read).
inline void fill_rows(const Conv2dParams& p, const float* in_n, size_t oh0, size_t R, size_t width, float* buf) {
  const size_t wb = row_floats(p);
  const size_t left = std::min(p.pad_left, wb), copy = std::min(p.W, wb - left);
  for (size_t c = 0; c < p.C; ++c) {
    for (size_t r = 0; r < R; ++r) {
      float* dst = buf + (c * R + r) * wb;
      const size_t ih = oh0 + r;  // + pad_top rows above the input
      if (ih < p.pad_top || ih - p.pad_top >= p.H) {
        std::fill(dst, dst + width, 0.f);
        continue;
      }
      std::fill(dst, dst + left, 0.f);
      std::memcpy(dst + left, in_n + (c * p.H + ih - p.pad_top) * p.W, copy * sizeof(float));
      if (left + copy < width) std::fill(dst + left + copy, dst + width, 0.f);
    }
  }
}

}  // namespace convoy::kernels::direct_detail
#endif  // CONVOY_KERNELS_CONV_DIRECT_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv_direct.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "kernels/epilogue-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace {

using namespace direct_detail;  // NOLINT
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Register tile: kMB output channels x kV vectors of output pixels, taking half a weight panel
// at a time. AVX-512 (32 registers): 16 accumulators + 4 input vectors + a broadcast weight.
// Measured on VGG-16 features.0 (1 thread, output in cache): 4 x 4 and 4 x 3 at 109-110
// GFLOP/s, 4 x 5 109, 8 x 2 108, 4 x 6 and 8 x 3 (24 accumulators) 105-106; in the model 4 x 4
// was ahead of 4 x 3 by ~1%. The 16-register targets: 12 accumulators + 3 + 1.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kMB = 4, kV = 4;
#elif HWY_TARGET == HWY_SCALAR
constexpr size_t kMB = 4, kV = 2;
#else
constexpr size_t kMB = 4, kV = 3;
#endif
static_assert(kPanel % kMB == 0, "a tile takes whole parts of a weight panel");
static_assert(HWY_MAX_BYTES <= kMaxLanes * sizeof(float), "kMaxLanes bounds this target's vectors");

// Where one tile's outputs go: out/res at channel 0, pixel 0 of the tile (channel stride
// `plane`); n_m channels and n_x pixels of the tile lie inside the output. stream: write whole
// tiles with non-temporal stores (the output is large, has no residual and its rows are
// vector-aligned; see conv_direct_impl).
struct TileOut {
  float* out;
  const float* res;
  size_t plane;
  size_t n_m, n_x;
  bool stream;
  const Epilogue* ep;
};

// Residual + activation of a whole tile from registers. `e` is a local copy of the epilogue
// whose activation the caller fixed: activate_vec's switch folds away.
template <size_t MB, size_t V>
HWY_INLINE void finish_whole(DF d, VF (&acc)[MB][V], const TileOut& o, const Epilogue& e) {
  const size_t L = hn::Lanes(d);
  if (o.res) {
#pragma GCC unroll 8
    for (size_t j = 0; j < MB; ++j)
#pragma GCC unroll 8
      for (size_t v = 0; v < V; ++v) {
        const size_t at = j * o.plane + v * L;
        hn::StoreU(activate_vec(d, hn::Add(acc[j][v], hn::LoadU(d, o.res + at)), e), d, o.out + at);
      }
    return;
  }
  if (o.stream) {
#pragma GCC unroll 8
    for (size_t j = 0; j < MB; ++j)
#pragma GCC unroll 8
      for (size_t v = 0; v < V; ++v) hn::Stream(activate_vec(d, acc[j][v], e), d, o.out + j * o.plane + v * L);
    return;
  }
#pragma GCC unroll 8
  for (size_t j = 0; j < MB; ++j)
#pragma GCC unroll 8
    for (size_t v = 0; v < V; ++v) hn::StoreU(activate_vec(d, acc[j][v], e), d, o.out + j * o.plane + v * L);
}

// finish_whole with the tile's activation a constant (one inlined copy per activation: the
// per-vector switch of activate_vec folds away).
template <size_t MB, size_t V>
HWY_INLINE void finish_whole_act(DF d, VF (&acc)[MB][V], const TileOut& o) {
  Epilogue e = *o.ep;
  switch (o.ep->act) {
    case Activation::kNone:
      e.act = Activation::kNone;
      return finish_whole(d, acc, o, e);
    case Activation::kRelu:
      e.act = Activation::kRelu;
      return finish_whole(d, acc, o, e);
    case Activation::kLeakyRelu:
      e.act = Activation::kLeakyRelu;
      return finish_whole(d, acc, o, e);
    case Activation::kClip:
      e.act = Activation::kClip;
      return finish_whole(d, acc, o, e);
  }
}

// Prefetches a whole tile's output (and residual) lines for writing: unless streamed, they are
// usually cold (a fresh arena region) and every store would wait for its line (VGG-16
// features.0, 8 x 3 tiles: 88 -> 94 GFLOP/s in the model). AVX2: the next tile's lines (the
// same rows kV vectors on; past a row's end, the next row's, harmless), so that they arrive
// before this tile's stores; fetched at the tile's start the stores still waited for them and
// held up the next tile's loads (likely through the store buffer; each 224x224 channel plane is
// a multiple of 4 KiB, so the four rows' pending stores also share their low address bits).
// VGG-16 features.0 on Zen 3, 1 thread: alone, output 64-byte aligned as in the arena, 4.3 ->
// 2.6-3.0 ms (two tiles ahead 2.9, four 3.3-4.3); in the model (with the stores below no longer
// streamed) 6.5 -> 3.2 ms, 4 of 4 alternating rounds.
#if HWY_TARGET == HWY_AVX2
inline constexpr size_t kPfAheadTiles = 1;
#else
inline constexpr size_t kPfAheadTiles = 0;
#endif
template <size_t MB, size_t V>
HWY_INLINE void prefetch_tile(size_t L, const TileOut& o) {
  const size_t ahead = kPfAheadTiles * V * L;
#pragma GCC unroll 8
  for (size_t j = 0; j < MB; ++j)
#pragma GCC unroll 8
    for (size_t v = 0; v < V; ++v) {
      __builtin_prefetch(o.out + j * o.plane + v * L + ahead, 1);
      if (o.res) __builtin_prefetch(o.res + j * o.plane + v * L + ahead, 0);
    }
}

// The same arithmetic for a tile at the edge of the output (channels past M, or the row's last
// partial vector), from the accumulators stored in `acc` ([o.n_m][V][L]): the residual and the
// output of a partial vector pass through `stage` (reading or writing past the row would touch
// the next row, maybe another task's).
HWY_NOINLINE void finish_edge(const float* HWY_RESTRICT acc, size_t V, const TileOut& o) {
  const DF d;
  const size_t L = hn::Lanes(d);
  HWY_ALIGN float stage[kMaxLanes];
  for (size_t j = 0; j < o.n_m; ++j) {
    float* dst = o.out + j * o.plane;
    const float* res = o.res ? o.res + j * o.plane : nullptr;
    for (size_t v = 0; v < V; ++v) {
      const size_t x0 = v * L;
      VF y = hn::Load(d, acc + (j * V + v) * L);
      if (x0 + L <= o.n_x) {
        if (res) y = hn::Add(y, hn::LoadU(d, res + x0));
        hn::StoreU(activate_vec(d, y, *o.ep), d, dst + x0);
      } else if (x0 < o.n_x) {
        const size_t n = o.n_x - x0;
        if (res) {
          std::fill(stage, stage + L, 0.f);
          std::memcpy(stage, res + x0, n * sizeof(float));
          y = hn::Add(y, hn::Load(d, stage));
        }
        hn::Store(activate_vec(d, y, *o.ep), d, stage);
        std::memcpy(dst + x0, stage, n * sizeof(float));
      }
    }
  }
}

// row: the padded input row of channel 0 for kh = 0 at the tile's first pixel; cs/rs: channel
// and row strides of the padded buffer; w: the tile's first channel in a weight panel
// ([C][KH][KW][kPanel]); bias: kMB floats (zeros past M or without a bias). The accumulators
// start at the bias, then the sum over (c, kh, kw) runs in the same order for every output.
template <size_t V>
HWY_NOINLINE void tile(const float* HWY_RESTRICT row, size_t cs, size_t rs, size_t C, size_t KH, size_t KW,
                       const float* HWY_RESTRICT w, const float* HWY_RESTRICT bias, const TileOut& o) {
  const DF d;
  const size_t L = hn::Lanes(d);
  if (!o.stream && o.n_m == kMB && o.n_x == V * L) prefetch_tile<kMB, V>(L, o);
  // The first tap (c, kh, kw) = (0, 0, 0) adds its products to the bias; the other taps follow.
  VF acc[kMB][V];
  {
    VF x[V];
#pragma GCC unroll 8
    for (size_t v = 0; v < V; ++v) x[v] = hn::LoadU(d, row + v * L);
#pragma GCC unroll 8
    for (size_t j = 0; j < kMB; ++j) {
      const VF wj = hn::Set(d, w[j]);
#pragma GCC unroll 8
      for (size_t v = 0; v < V; ++v) acc[j][v] = hn::MulAdd(x[v], wj, hn::Set(d, bias[j]));
    }
    w += kPanel;
  }
  for (size_t c = 0; c < C; ++c) {
    for (size_t kh = 0; kh < KH; ++kh) {
      const float* r = row + c * cs + kh * rs;
      for (size_t kw = c == 0 && kh == 0 ? 1 : 0; kw < KW; ++kw) {
        VF x[V];
#pragma GCC unroll 8
        for (size_t v = 0; v < V; ++v) x[v] = hn::LoadU(d, r + kw + v * L);
#pragma GCC unroll 8
        for (size_t j = 0; j < kMB; ++j) {
          const VF wj = hn::Set(d, w[j]);
#pragma GCC unroll 8
          for (size_t v = 0; v < V; ++v) acc[j][v] = hn::MulAdd(x[v], wj, acc[j][v]);
        }
        w += kPanel;
      }
    }
  }
  if (o.n_m < kMB || o.n_x < V * L) {
    HWY_ALIGN float stored[kMB * V * kMaxLanes];
#pragma GCC unroll 8
    for (size_t j = 0; j < kMB; ++j)
#pragma GCC unroll 8
      for (size_t v = 0; v < V; ++v) hn::Store(acc[j][v], d, stored + (j * V + v) * L);
    return finish_edge(stored, V, o);
  }
  finish_whole_act(d, acc, o);
}

// A tile of nv <= V vectors.
template <size_t V>
HWY_INLINE void tile_n(size_t nv, const float* row, size_t cs, size_t rs, size_t C, size_t KH, size_t KW,
                       const float* w, const float* bias, const TileOut& o) {
  if constexpr (V > 1) {
    if (nv < V) return tile_n<V - 1>(nv, row, cs, rs, C, KH, KW, w, bias, o);
  }
  tile<V>(row, cs, rs, C, KH, KW, w, bias, o);
}

// Output row `oh` of image n, the output channels of panel `panel`. row: the padded buffer at
// this output row (channel 0, kh = 0), cs: its channel stride.
void row_panel(const Conv2dParams& p, size_t n, size_t oh, size_t panel, const float* row, size_t cs,
               const float* w_packed, bool stream, float* out) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t nv = div_up(p.OW, L), plane = p.OH * p.OW;
  const float* wp = w_packed + panel * p.C * p.KH * p.KW * kPanel;
  for (size_t sub = 0; sub < kPanel; sub += kMB) {
    const size_t m = panel * kPanel + sub;
    if (m >= p.M) break;
    TileOut o;
    const size_t off = ((n * p.M + m) * p.OH + oh) * p.OW;
    o.plane = plane;
    o.n_m = std::min(kMB, p.M - m);
    o.stream = stream;
    o.ep = &p.ep;
    float bias[kMB] = {};
    if (p.ep.bias) std::copy(p.ep.bias + m, p.ep.bias + m + o.n_m, bias);
    for (size_t v0 = 0; v0 < nv; v0 += kV) {
      const size_t x0 = v0 * L;
      o.out = out + off + x0;
      o.res = p.ep.residual ? p.ep.residual + off + x0 : nullptr;
      o.n_x = std::min(kV * L, p.OW - x0);
      tile_n<kV>(std::min(kV, nv - v0), row + x0, cs, row_floats(p), p.C, p.KH, p.KW, wp + sub, bias, o);
    }
  }
}

// ---- 1-D Winograd F(2,3) along W (KW = 3) ----
// For a pair of output pixels (2i, 2i + 1), input d0..d3 = x[2i .. 2i + 3] of a padded input
// row and weights g0..g2 of one (channel, kh):
//   U0 = d0 - d2, U1 = d1 + d2, U2 = d2 - d1, U3 = d1 - d3,
//   G0 = g0, G1 = (g0 + g1 + g2) / 2, G2 = (g0 - g1 + g2) / 2, G3 = g2,
//   M_k = sum over (c, kh) of U_k G_k,  y(2i) = M0 + M1 + M2,  y(2i + 1) = M1 - M2 - M3:
// 4 FMAs per pair and (c, kh) instead of 6. Pairs lie on lanes: each task transforms its input
// rows once (wino_fill) into U rows, then the hot loop is the direct kernel's without the kw
// shifts (aligned loads). The lanes hold the pairs in the order Highway's per-128-bit-block
// InterleaveLower/Upper undo: the inverse of that unzip of 2 L input floats gives the even and
// the odd inputs of L pairs, and InterleaveLower/Upper(y_even, y_odd) gives 2 L output pixels
// in memory order (any vector of whole 128-bit blocks).
//
// Used on the AVX-512 targets only, where it was measured faster (VGG-16 features.0, 1 thread,
// Zen 4: see kernels/conv_direct.h). With AVX2 on the same machine (16 registers, no embedded
// broadcasts: a 2 x 1 tile, 1.5 loads per FMA) it was 6% slower than the direct tile (81 against
// 87 GFLOP/s): the other targets keep the direct kernel. And only where the last pair vector of
// a row is at least 9/10 full (conv_direct_impl).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define CONVOY_CONV_DIRECT_WINO 1
constexpr bool kWino = true;

// Register tile: kWB output channels x kWV vectors of pairs, 4 accumulators each (M0..M3): 16
// accumulators + 1 input vector, the weights as embedded broadcasts of the FMAs (GCC folds a
// broadcast used once into its FMA). Measured on VGG-16 features.0 (1 thread, standalone, one
// output buffer reused), in direct-conv GFLOP/s: 4 x 1 128-134, 2 x 3 121-125, 2 x 2 116-122
// with its input vectors forced into registers (GCC folds each load into both FMAs that use it:
// load-bound at 98), 1 x 4 110, 1 x 6 100. Fully unrolling the (c, kh) loop for 3 x 3: 3% slower.
constexpr size_t kWB = 4, kWV = 1;
static_assert(kPanel % kWB == 0, "a tile takes whole parts of a weight panel");
#else
constexpr bool kWino = false;
#endif

#ifdef CONVOY_CONV_DIRECT_WINO
// Transformed weights of every panel: tw[panel][c][kh][k][kPanel] from P[panel][c][kh][kw][kPanel].
void wino_weights(const Conv2dParams& p, const float* w_packed, float* tw) {
  const size_t n = div_up(p.M, kPanel) * p.C * p.KH;  // (panel, c, kh) triples, in order
  for (size_t t = 0; t < n; ++t) {
    const float* g = w_packed + t * 3 * kPanel;
    float* G = tw + t * 4 * kPanel;
    for (size_t j = 0; j < kPanel; ++j) {
      const float g0 = g[j], g1 = g[kPanel + j], g2 = g[2 * kPanel + j];
      G[j] = g0;
      G[kPanel + j] = (g0 + g1 + g2) * 0.5f;
      G[2 * kPanel + j] = (g0 - g1 + g2) * 0.5f;
      G[3 * kPanel + j] = g2;
    }
  }
}

// Transforms input rows [oh0 - pad_top, oh0 - pad_top + R) of image `in_n`, every channel, into
// U[c][r][k][ups] (ups = pair_floats(p)); x: a scratch row of wino_x_floats(p) floats.
void wino_fill(const Conv2dParams& p, const float* in_n, size_t oh0, size_t R, float* U, float* x) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t ups = pair_floats(p), groups = div_up(div_up(p.OW, 2), L);
  const size_t xw = 2 * groups * L + 2;  // the input floats the groups read (<= wino_x_floats)
  const size_t left = std::min(p.pad_left, xw), copy = std::min(p.W, xw - left);
  for (size_t c = 0; c < p.C; ++c) {
    for (size_t r = 0; r < R; ++r) {
      const size_t ih = oh0 + r;  // + pad_top rows above the input
      if (ih < p.pad_top || ih - p.pad_top >= p.H) {
        std::fill(x, x + xw, 0.f);
      } else {
        std::fill(x, x + left, 0.f);
        std::memcpy(x + left, in_n + (c * p.H + ih - p.pad_top) * p.W, copy * sizeof(float));
        std::fill(x + left + copy, x + xw, 0.f);
      }
      float* u = U + (c * R + r) * 4 * ups;
      for (size_t g = 0; g < groups; ++g) {
        const float* xg = x + 2 * g * L;
        // Unzip per 128-bit block: e/o = the even/odd floats of the group's L pairs in lane
        // order; e1/o1 the same for the next pair (2 floats on).
        const VF a = hn::LoadU(d, xg), b = hn::LoadU(d, xg + L);
        const VF a1 = hn::LoadU(d, xg + 2), b1 = hn::LoadU(d, xg + L + 2);
        const VF lo = hn::InterleaveLower(d, a, b), hi = hn::InterleaveUpper(d, a, b);
        const VF lo1 = hn::InterleaveLower(d, a1, b1), hi1 = hn::InterleaveUpper(d, a1, b1);
        const VF e = hn::InterleaveLower(d, lo, hi), o = hn::InterleaveUpper(d, lo, hi);
        const VF e1 = hn::InterleaveLower(d, lo1, hi1), o1 = hn::InterleaveUpper(d, lo1, hi1);
        hn::StoreU(hn::Sub(e, e1), d, u + g * L);
        hn::StoreU(hn::Add(o, e1), d, u + ups + g * L);
        hn::StoreU(hn::Sub(e1, o), d, u + 2 * ups + g * L);
        hn::StoreU(hn::Sub(o, o1), d, u + 3 * ups + g * L);
      }
    }
  }
}

// One tile. u: U0 of channel 0, kh = 0 at the tile's first pair vector; cs/rs: channel and row
// strides of U (k stride ups); tw: the tile's first channel in the panel's transformed weights;
// bias: kWB floats; o.out: the tile's first pixel (2 V L pixels per channel); e: the epilogue
// with its activation a constant of the caller.
template <size_t V>
HWY_INLINE void wino_tile(const float* HWY_RESTRICT u, size_t cs, size_t rs, size_t ups, size_t C, size_t KH,
                          const float* HWY_RESTRICT tw, const float* HWY_RESTRICT bias, const TileOut& o,
                          const Epilogue& e) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const bool whole = o.n_m == kWB && o.n_x == 2 * V * L;
  // M1 starts at the bias: it reaches both outputs of a pair with a + sign.
  VF acc[4][kWB][V];
#pragma GCC unroll 8
  for (size_t j = 0; j < kWB; ++j)
#pragma GCC unroll 8
    for (size_t v = 0; v < V; ++v) {
      acc[0][j][v] = hn::Zero(d);
      acc[1][j][v] = hn::Set(d, bias[j]);
      acc[2][j][v] = hn::Zero(d);
      acc[3][j][v] = hn::Zero(d);
    }
  for (size_t c = 0; c < C; ++c) {
    for (size_t kh = 0; kh < KH; ++kh) {
      const float* r = u + c * cs + kh * rs;
#pragma GCC unroll 4
      for (size_t k = 0; k < 4; ++k) {
        VF x[V];
#pragma GCC unroll 8
        for (size_t v = 0; v < V; ++v) x[v] = hn::LoadU(d, r + k * ups + v * L);
#pragma GCC unroll 8
        for (size_t j = 0; j < kWB; ++j) {
          const VF wj = hn::Set(d, tw[k * kPanel + j]);
#pragma GCC unroll 8
          for (size_t v = 0; v < V; ++v) acc[k][j][v] = hn::MulAdd(x[v], wj, acc[k][j][v]);
        }
      }
      tw += 4 * kPanel;
    }
  }
  // Output transform, then the pairs back to pixel order.
  VF y[kWB][2 * V];
#pragma GCC unroll 8
  for (size_t j = 0; j < kWB; ++j)
#pragma GCC unroll 8
    for (size_t v = 0; v < V; ++v) {
      const VF y0 = hn::Add(hn::Add(acc[0][j][v], acc[1][j][v]), acc[2][j][v]);
      const VF y1 = hn::Sub(hn::Sub(acc[1][j][v], acc[2][j][v]), acc[3][j][v]);
      y[j][2 * v] = hn::InterleaveLower(d, y0, y1);
      y[j][2 * v + 1] = hn::InterleaveUpper(d, y0, y1);
    }
  if (whole) return finish_whole(d, y, o, e);
  HWY_ALIGN float stored[kWB * 2 * V * kMaxLanes];
#pragma GCC unroll 8
  for (size_t j = 0; j < kWB; ++j)
#pragma GCC unroll 8
    for (size_t v = 0; v < 2 * V; ++v) hn::Store(y[j][v], d, stored + (j * 2 * V + v) * L);
  finish_edge(stored, 2 * V, o);
}

// `count` tiles of V pair vectors in a row, from o (the first tile's); kAct: o.ep->act. One call
// per row of tiles keeps the per-tile overhead small (a tile has only 4 C KH FMAs per
// accumulator): a call per tile measured 123-125 against 128-134 GFLOP/s (4 x 1 tile).
template <size_t V, Activation kAct>
HWY_NOINLINE void wino_tiles(size_t count, const float* u, size_t cs, size_t rs, size_t ups, size_t C, size_t KH,
                             const float* tw, const float* bias, TileOut o) {
  const size_t L = hn::Lanes(DF());
  Epilogue e = *o.ep;
  e.act = kAct;
  for (size_t t = 0; t < count; ++t) {
    wino_tile<V>(u, cs, rs, ups, C, KH, tw, bias, o, e);
    u += V * L;
    o.out += 2 * V * L;
    if (o.res) o.res += 2 * V * L;
  }
}

template <size_t V>
void wino_tiles_act(size_t count, const float* u, size_t cs, size_t rs, size_t ups, size_t C, size_t KH,
                    const float* tw, const float* bias, const TileOut& o) {
  switch (o.ep->act) {
    case Activation::kNone:
      return wino_tiles<V, Activation::kNone>(count, u, cs, rs, ups, C, KH, tw, bias, o);
    case Activation::kRelu:
      return wino_tiles<V, Activation::kRelu>(count, u, cs, rs, ups, C, KH, tw, bias, o);
    case Activation::kLeakyRelu:
      return wino_tiles<V, Activation::kLeakyRelu>(count, u, cs, rs, ups, C, KH, tw, bias, o);
    case Activation::kClip:
      return wino_tiles<V, Activation::kClip>(count, u, cs, rs, ups, C, KH, tw, bias, o);
  }
}

// The last tile of a row: nv < kWV pair vectors.
template <size_t V>
void wino_tail(size_t nv, const float* u, size_t cs, size_t rs, size_t ups, size_t C, size_t KH, const float* tw,
               const float* bias, const TileOut& o) {
  if constexpr (V > 1) {
    if (nv < V) return wino_tail<V - 1>(nv, u, cs, rs, ups, C, KH, tw, bias, o);
  }
  wino_tiles_act<V>(1, u, cs, rs, ups, C, KH, tw, bias, o);
}

// Output row `oh` of image n, the output channels of panel `panel`. u: U at this output row
// (channel 0, kh = 0), cs: its channel stride; tw: the transformed weights of all the panels.
void wino_row_panel(const Conv2dParams& p, size_t n, size_t oh, size_t panel, const float* u, size_t cs,
                    const float* tw, bool stream, float* out) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t ups = pair_floats(p), groups = div_up(div_up(p.OW, 2), L), plane = p.OH * p.OW;
  // Tiles of kWV pair vectors; the last one is partial (fewer vectors, or pixels past OW).
  const size_t n_full = groups / kWV - (groups % kWV == 0 && p.OW < 2 * groups * L ? 1 : 0);
  const size_t tail = groups - n_full * kWV;
  const float* twp = tw + panel * p.C * p.KH * 4 * kPanel;
  for (size_t sub = 0; sub < kPanel; sub += kWB) {
    const size_t m = panel * kPanel + sub;
    if (m >= p.M) break;
    TileOut o;
    const size_t off = ((n * p.M + m) * p.OH + oh) * p.OW;
    o.out = out + off;
    o.res = p.ep.residual ? p.ep.residual + off : nullptr;
    o.plane = plane;
    o.n_m = std::min(kWB, p.M - m);
    o.n_x = 2 * kWV * L;
    o.stream = stream;
    o.ep = &p.ep;
    float bias[kWB] = {};
    if (p.ep.bias) std::copy(p.ep.bias + m, p.ep.bias + m + o.n_m, bias);
    // Unless streamed, the output lines are usually cold (a fresh arena region) and a store
    // waits for its line: fetch the lines of the next kWB channels (or of the next row's first
    // ones) a whole row of tiles ahead. A wino tile has too few FMAs to cover the memory latency
    // with a prefetch of its own lines (the direct kernel's way): 3x3, M = 64, 128x128 maps,
    // output cold, C = 1: 0.55 ms with that against 0.34 with this (direct kernel: 0.43), C = 2:
    // 0.48 against 0.38 (0.53); C = 3-8 within noise.
    if (!stream) {
      const size_t next = m + kWB < p.M ? off + kWB * plane : oh + 1 < p.OH ? off - m * plane + p.OW : 0;
      const size_t n_m = m + kWB < p.M ? std::min(kWB, p.M - m - kWB) : std::min(kWB, p.M);
      for (size_t j = 0; next && j < n_m; ++j)
        for (size_t x = 0; x < p.OW; x += 16) {
          __builtin_prefetch(out + next + j * plane + x, 1);
          if (p.ep.residual) __builtin_prefetch(p.ep.residual + next + j * plane + x, 0);
        }
    }
    wino_tiles_act<kWV>(n_full, u, cs, 4 * ups, ups, p.C, p.KH, twp + sub, bias, o);
    if (tail == 0) continue;
    const size_t x0 = 2 * n_full * kWV * L;
    o.out += x0;
    if (o.res) o.res += x0;
    o.n_x = p.OW - x0;
    wino_tail<kWV>(tail, u + n_full * kWV * L, cs, 4 * ups, ups, p.C, p.KH, twp + sub, bias, o);
  }
}
#endif  // CONVOY_CONV_DIRECT_WINO

}  // namespace

void conv_direct_impl(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
                      const Parallel* par) {
  const Split s = split(p, par->threads());
  const size_t wb = row_floats(p);
  const size_t L = hn::Lanes(DF());
  const size_t width = round_up(p.OW, L) + p.KW - 1;  // <= wb
  // A large output (VGG-16 features.0: 12.8 MB per image) is written with non-temporal stores:
  // no read for ownership, and no cache prefetches ahead of the stores (in the model: 97-99
  // against 93 GFLOP/s with 8 x 3 tiles, 102-104 against 97-99 with 4 x 4; the next conv, which
  // reads it, within noise). Whole vectors only: rows a multiple of the vector, aligned output.
  // Only where a vector is a whole 64-byte line (AVX-512): AVX2's tiles write 96 bytes per
  // channel row, half lines of 4 streams, and the write-combining buffers flush partial lines
  // (VGG-16 features.0 alone on Zen 3: 6.7 ms streamed, 2.8-3.0 cached with the lines
  // prefetched a tile ahead).
  const bool stream = L * sizeof(float) >= 64 && !p.ep.residual && p.N * p.M * p.OH * p.OW >= kStreamFloats &&
                      p.OW % L == 0 && reinterpret_cast<uintptr_t>(out) % (L * sizeof(float)) == 0;
  // The Winograd path where at most 1/10 of a row's pair-vector lanes are wasted, or where
  // there are enough taps to pay for more: with a half-empty last pair vector (3x3, M = 64,
  // 112x112 maps: 3.5 vectors of pairs) it took 1.2x, 1.08x and 1.0x the direct kernel's time
  // for C = 1, 2, 3, then 0.96x, 0.88x and 0.84x for C = 4, 8, 15.
  [[maybe_unused]] const bool wino =
      kWino && wino_shape(p) && ((round_up(p.OW, 2 * L) - p.OW) * 10 <= p.OW || p.C * p.KH >= 12);
  par->run(s.tasks, [&](size_t task, size_t thread) {
    float* buf = scratch + thread * per_thread_floats(p);
    const size_t pc = task % s.n_pc, rb = task / s.n_pc % s.n_rb, n = task / (s.n_pc * s.n_rb);
    const size_t oh0 = rb * s.rows, rows = std::min(s.rows, p.OH - oh0), R = rows + p.KH - 1;
    const size_t panel_end = std::min(div_up(p.M, kPanel), (pc + 1) * s.ppt);
#ifdef CONVOY_CONV_DIRECT_WINO
    if (wino) {
      // U rows 64 B-aligned (whatever the scratch's alignment): the hot loop's loads never split
      // a cache line.
      float* U = buf + (16 - reinterpret_cast<uintptr_t>(buf) / sizeof(float) % 16) % 16;
      const size_t ups = pair_floats(p), cs = R * 4 * ups;
      float* x = U + p.C * cs;
      float* tw = x + wino_x_floats(p);
      wino_weights(p, w_packed, tw);
      wino_fill(p, in + n * p.C * p.H * p.W, oh0, R, U, x);
      for (size_t r = 0; r < rows; ++r)
        for (size_t panel = pc * s.ppt; panel < panel_end; ++panel)
          wino_row_panel(p, n, oh0 + r, panel, U + r * 4 * ups, cs, tw, stream, out);
      if (stream) hwy::FlushStream();
      return;
    }
#endif
    fill_rows(p, in + n * p.C * p.H * p.W, oh0, R, width, buf);
    // Rows outside, panels inside: the input rows a row of outputs reads (C x KH) stay in L1
    // for all the output channels (panels outside, the whole block's rows for each panel: the
    // same on VGG-16 features.0 with a warm cache, 2-3% slower with a cold one).
    for (size_t r = 0; r < rows; ++r)
      for (size_t panel = pc * s.ppt; panel < panel_end; ++panel)
        row_panel(p, n, oh0 + r, panel, buf + r * wb, R * wb, w_packed, stream, out);
    if (stream) hwy::FlushStream();  // the streamed stores are ordered before the task ends
  });
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#undef CONVOY_CONV_DIRECT_WINO

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(conv_direct_impl);

bool conv_direct_applicable(const Conv2dParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 && p.group == 1 && p.N > 0 &&
         p.C > 0 && p.M > 0 && p.KH > 0 && p.KW > 0 && p.OH > 0 && p.OW > 0;
}

size_t conv_direct_packed_weight_floats(const Conv2dParams& p) {
  return round_up(p.M, direct_detail::kPanel) * p.C * p.KH * p.KW;
}

void pack_conv_direct_weights(const Conv2dParams& p, const float* w, float* packed) {
  using direct_detail::kPanel;
  const size_t taps = p.C * p.KH * p.KW;  // (c, kh, kw) in ONNX order
  std::fill(packed, packed + conv_direct_packed_weight_floats(p), 0.f);
  for (size_t m = 0; m < p.M; ++m)
    for (size_t t = 0; t < taps; ++t) packed[(m / kPanel * taps + t) * kPanel + m % kPanel] = w[m * taps + t];
}

void unpack_conv_direct_weights(const Conv2dParams& p, const float* packed, float* w) {
  using direct_detail::kPanel;
  const size_t taps = p.C * p.KH * p.KW;
  for (size_t m = 0; m < p.M; ++m)
    for (size_t t = 0; t < taps; ++t) w[m * taps + t] = packed[(m / kPanel * taps + t) * kPanel + m % kPanel];
}

size_t conv_direct_scratch_floats(const Conv2dParams& p, size_t threads) {
  return std::max<size_t>(threads, 1) * direct_detail::per_thread_floats(p);
}

void conv_direct(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
                 const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(conv_direct_impl)(p, in, w_packed, out, scratch, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
