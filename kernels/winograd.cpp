// Winograd F(4x4, 3x3), F(3x3, 4x4) and F(2x2, 5x5) convolution: see kernels/winograd.h for the
// algorithm and the choice of F. Transform matrices (Lavin & Gray, points 0, +-1, +-2, inf; 6
// points for all three, so B^T, the GEMMs and D are shared):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   D   = diag(1/4, -1/6, -1/6, 1/24, 1/24, 1) (1 / prod of the point differences)
//   F(4x4, 3x3): G = D G', G' = [1 0 0; 1 1 1; 1 -1 1; 1 2 4; 1 -2 4; 0 0 1]
//                A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
//   F(3x3, 4x4): G = D G', G' = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1]
//                A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 1]
//   F(2x2, 5x5): G = D G', G' = [1 0 0 0 0; 1 1 1 1 1; 1 -1 1 -1 1; 1 2 4 8 16; 1 -2 4 -8 16; 0 0 0 0 1]
//                A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1]
// (row j of G' is the point p_j's powers, of A^T the powers p_j^i; the inf point last.)
// Transform position xi = 6 * i + j, i along H, j along W.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "kernels/int_math.h"
#include "kernels/spin_wait.h"
#include "kernels/winograd.h"

#ifndef CONVOY_KERNELS_WINOGRAD_SHARED
#define CONVOY_KERNELS_WINOGRAD_SHARED
namespace convoy::kernels::wino_detail {

inline constexpr size_t kPos = 36;            // transform positions of F(4x4, 3x3)
inline constexpr size_t kPanel = 16;          // output channels per packed weight panel
inline constexpr size_t kMaxLanes = 16;       // bound on the float lanes of a vector used here
inline constexpr size_t kBlockFloats = 640 * 1024;  // V + Y of one tile block (2.5 MiB, L2 + L3)
inline constexpr size_t kLeanTiles = 64;      // at most this many tiles: weights transformed per run
inline constexpr size_t kLeanTileChannels = 32768;  // ... and at most this many tiles x input channels
inline constexpr size_t kLeanC = 32;          // lean: input channels per block (transform tasks, GEMMs)
inline constexpr size_t kLeanMc = 64;         // output channels per lean task
inline constexpr size_t kFusedC = 256;        // lean, fused: input channels per block (multiple of kLeanC)
inline constexpr size_t kLeanAhead = 1;       // lean, fused: blocks (kFusedC) of raw weights prefetched ahead
inline constexpr size_t kLeanPrefetch = 8;    // lean, Ub: input channels of raw weights prefetched ahead
inline constexpr size_t kStripMax = 64;       // widest GEMM strip of output channels (AVX-512)
inline constexpr size_t kFusedTiles = 12;     // lean: fewer tiles take the fused passes (AVX-512)
inline constexpr size_t kMinTasks = 8;        // staged: tile blocks wanted (2 threads x 4)
inline constexpr size_t kMinBlockTiles = 12;  // staged: ... unless blocks get smaller than this

// The packed weights are the raw 3x3 ones in [Mp/16][C][9][16] order for both paths (see the
// header). Lean: batches of at most kLeanTiles tiles whose transformed input V (36 T C floats,
// shared by the tasks) stays within kLeanTileChannels * 36 floats (4.5 MiB). The lean input
// transform gathers with int32 offsets: the input must also have fewer than 2^31 floats. The
// other batches take the staged path.
// The lean path is F(4x4, 3x3) only; 4x4 and 5x5 convs always take the staged one.
inline bool lean(const Conv2dParams& p) {
  if (p.KH != 3) return false;
  const size_t T = p.N * ((p.OH + 3) / 4) * ((p.OW + 3) / 4);
  return T <= kLeanTiles && T * p.C <= kLeanTileChannels && p.N * p.C * p.H * p.W < (size_t{1} << 31);
}


// Work decomposition. Up to kMakespanMaxThreads threads it does not depend on the thread count;
// more threads get smaller tile blocks / more output-channel chunks (geom's `threads`), which
// changes no result: every output is the same sum whatever block or chunk computes it.
struct Geom {
  size_t m = 4, r = 3;           // outputs per tile side, kernel side: F(m x m, r x r), m + r = 7
  size_t th = 0, tw = 0, T = 0;  // tile rows, tile columns, tiles of the whole batch
  size_t Mp = 0;                 // M rounded up to a panel
  size_t TB = 0, n_tb = 0;       // tiles per block, blocks
  size_t Mc = 0, n_mc = 0;       // output channels per task (multiple of kPanel), chunks
  size_t TBs = 0;                // V row stride: TB + a vector of slack for full-vector stores (lean: T)
  size_t vx = 0;                 // V stride between transform positions
  size_t ux = 0;                 // staged: U stride between transform positions
  size_t Wb = 0;                 // floats per padded input row / vertical-transform row
  size_t prow = 0, Wq = 0;       // staged: padded input rows of a tile block, their stride
  size_t n_cc = 0;               // lean: input-channel chunks of the shared input transform
  // shared: lean, V; staged, U of all the weights. per_thread: the rest, per worker. After the
  // workers' blocks: sync_floats for the run's task counters and ready flags (RunSync).
  size_t v_floats = 0, y_floats = 0, tab_floats = 0, ub_floats = 0, per_thread = 0, shared = 0;
  size_t n_flags = 0, sync_floats = 0;  // n_flags: lean, V blocks of kLeanC channels; staged, U panels
};

inline Geom geom(const Conv2dParams& p, size_t threads) {
  Geom g;
  g.r = p.KH;
  g.m = 7 - g.r;
  g.th = div_up(p.OH, g.m);
  g.tw = div_up(p.OW, g.m);
  g.T = p.N * g.th * g.tw;
  g.Mp = round_up(p.M, kPanel);
  if (lean(p)) {
    // All tiles in one block; V is transformed once, shared by all tasks (blocks of input
    // channels), then the tasks split the output channels.
    g.TB = g.T;
    g.n_tb = 1;
    // At most kLeanMc channels per task, and at least 2 tasks where the channels allow (2
    // threads); not more, since narrower strips make less efficient GEMMs (Mc 32: 1.6x on 2
    // threads for 28x28 maps with 128 channels, Mc 64: 1.9x, measured before the first chunk
    // stayed whole). At 2+ threads winograd_impl halves the chunks after the first (the scratch
    // is sized for Mc).
    g.Mc = std::min(kLeanMc, std::max(kPanel, round_up(div_up(g.Mp, 2), kPanel)));
    g.n_mc = div_up(g.Mp, g.Mc);
    g.n_cc = div_up(p.C, kLeanC);
  } else {
    size_t tb = std::max<size_t>(1, kBlockFloats / (kPos * (p.C + g.Mp)));
    if (tb >= 12) tb = tb / 6 * 6;  // whole register blocks of the GEMM
    tb = std::min(tb, g.T);
    g.n_tb = div_up(g.T, tb);
    // At least kMinTasks blocks where they keep kMinBlockTiles tiles each, and an even count: the
    // tasks are claimed dynamically, so a thread can end up one task behind (ResNet-50 batch 8,
    // 14x14 maps: 5 blocks of 26 tiles took 4.9 ms at 2 threads and 8.0 at 1, 8 blocks of 16
    // 4.1 and 7.8). Not on maps of more than 8 tile columns: the input transform works on whole
    // vectors of a tile row's tiles, and blocks of a row or two wasted lanes on partial rows
    // (ResNet-50 batch 1, 56x56 maps: 8 blocks 0.84 ms at 1 thread, 2 blocks 0.79).
    if (g.tw <= 8) g.n_tb = std::max(g.n_tb, std::min(kMinTasks, g.T / kMinBlockTiles));
    if (g.n_tb > 1) g.n_tb = round_up(g.n_tb, 2);
    g.TB = div_up(g.T, g.n_tb);  // balanced blocks
    // Small maps have few tile blocks: split the output channels too (each chunk redoes the cheap
    // input transform) so that two or more workers have something to do.
    size_t n_mc = 1;
    if (g.n_tb < 4) n_mc = std::min(div_up(4, g.n_tb), std::max<size_t>(1, g.Mp / 64));
    // Many threads (the blocking above was tuned on 2): at least two tasks per thread, from
    // smaller tile blocks (down to kMinBlockTiles tiles), then output-channel chunks (down to 32
    // channels). ResNet-50's 56x56 convs made 2 tasks, which left 14 of 16 threads idle.
    if (threads > kMakespanMaxThreads && g.n_tb * n_mc < 2 * threads) {
      const size_t want = 2 * threads;
      g.n_tb = std::max(g.n_tb, std::min(div_up(want, n_mc), std::max<size_t>(1, g.T / kMinBlockTiles)));
      g.TB = div_up(g.T, g.n_tb);
      g.n_tb = div_up(g.T, g.TB);  // no empty block
      if (g.n_tb * n_mc < want) n_mc = std::max(n_mc, std::min(div_up(want, g.n_tb), std::max<size_t>(1, g.Mp / 32)));
    }
    g.Mc = round_up(div_up(g.Mp, n_mc), kPanel);
    g.n_mc = div_up(g.Mp, g.Mc);
  }
  g.Wb = g.m * round_up(g.tw, kMaxLanes) + 2 * kMaxLanes;
  // Position strides are 64 B more than C * TBs (Y: tiles * Mc), which are often multiples of
  // 4 KiB: the 36 loads/stores of one tile's transform would otherwise all hit one L1 set.
  if (lean(p)) {
    // Rows of exactly T tiles (a 7x7 map's 4 tiles take 16 B, not a vector), and a vector of
    // slack after each block of kLeanC channels: see input_transform_lean.
    g.TBs = g.T;
    g.vx = round_up(p.C * g.TBs + g.n_cc * kMaxLanes, kMaxLanes) + kPanel;
  } else {
    g.TBs = g.TB + kMaxLanes;
    g.vx = p.C * g.TBs + kPanel;
    g.ux = g.Mp * p.C + kPanel;  // as vx: Mp * C is often a multiple of 4 KiB
  }
  g.v_floats = kPos * g.vx;
  g.y_floats = kPos * (g.TB * g.Mc + kPanel);
  const size_t stage = 4 * kMaxLanes + kMaxLanes + 64;  // bias/residual staging
  if (lean(p)) {
    // Shared V; per thread Y, the gather offsets and padding masks of one chunk of tiles (2 x 36
    // vectors) and the staging.
    g.shared = g.v_floats;
    g.n_flags = g.n_cc;
    // The gathers' tables, or the staged rows of input_transform_lean_rows, or the padded plane,
    // vertical transform and R, R' of input_transform_lean_packed.
    g.tab_floats = std::max(2 * kPos * kMaxLanes, (4 * g.th + 2 + 6) * g.Wb + 12 * 5 * kMaxLanes);
    g.ub_floats = kPos * std::min(kStripMax, g.Mp) * std::min(kLeanC, p.C);  // unused by the fused passes
    g.per_thread = g.y_floats + g.tab_floats + g.ub_floats + stage;
  } else {
    // Shared U (transformed at the start of the run); per thread V, Y, a tile block's padded
    // input rows, 6 vertical-transform rows and the staging.
    g.shared = kPos * g.ux;
    g.n_flags = g.Mp / kPanel;
    // The padded input rows of a tile block's tile rows (at most TB / tw + 2 of them) for one
    // channel and image, whole rows with a vector of room past the last tile's patch for the
    // vertical pass's reads (input_transform).
    g.prow = g.m * (div_up(g.TB, g.tw) + 1) + 6;
    g.Wq = round_up(g.m * g.tw + 6, kMaxLanes) + (g.m + 1) * kMaxLanes;
    g.per_thread = g.v_floats + g.y_floats + g.prow * g.Wq + 6 * g.Wb + stage;
  }
  // Two task counters on lines of their own, then a flag per V block / U panel (32-bit words),
  // placed last: the offsets between V, U and the per-thread blocks stay those that were tuned.
  g.sync_floats = 2 * kMaxLanes + g.n_flags;
  return g;
}

// Lean V: offset of channel c's row within a position (rows of T tiles, slack after each block).
inline size_t lean_row(const Geom& g, size_t c) { return c * g.TBs + c / kLeanC * kMaxLanes; }

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
static_assert(kFusedC % kLeanC == 0, "a fused block holds whole V blocks");

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

// o = A^T y (6 points to kM = 4, 3 or 2 outputs): row i of A^T holds the i-th powers of the
// points 0, 1, -1, 2, -2, and the inf point's 1 in the last row.
template <size_t kM>
HWY_INLINE void at(const VF* y, VF* o) {
  static_assert(kM >= 2 && kM <= 4, "F(4x4, 3x3), F(3x3, 4x4) or F(2x2, 5x5)");
  const DF df;
  const VF a = hn::Add(y[1], y[2]), b = hn::Sub(y[1], y[2]);
  const VF c = hn::Add(y[3], y[4]), e = hn::Sub(y[3], y[4]);
  o[0] = hn::Add(hn::Add(y[0], a), c);
  o[1] = hn::MulAdd(hn::Set(df, 2.f), e, b);
  if constexpr (kM == 2) {
    o[1] = hn::Add(o[1], y[5]);
    return;
  }
  o[2] = hn::MulAdd(hn::Set(df, 4.f), c, a);
  if constexpr (kM == 3) {
    o[2] = hn::Add(o[2], y[5]);
    return;
  }
  o[3] = hn::Add(hn::MulAdd(hn::Set(df, 8.f), e, b), y[5]);
}

// One pool run per convolution: its two phases (lean: the shared input transform V, then the
// output-channel chunks; staged: the U panels, then the tile blocks) are claimed from counters in
// the scratch by whichever thread is free, and a task that needs a V block or U panel not yet
// written spins on its flag. A pool job per phase paid the pool's wake-up and hand-back twice
// (~55 us per job at 2 threads, against 0.4-1 ms convs; kernels/winograd.h). Waits end whatever
// the number of threads that join (one may run everything): a thread claims phase-2 work only
// after every phase-1 item was claimed, and a claimed item is being computed by a thread that
// does not wait before finishing it.
class RunSync {
 public:
  // sync: sync_floats floats after the per-thread blocks of the run's threads.
  RunSync(float* sync, const Geom& g) : w_(reinterpret_cast<uint32_t*>(sync)), n_flags_(g.n_flags) {}
  // By the calling thread before the pool run (the pool's hand-over orders these stores).
  void reset() const { std::fill(w_, w_ + 2 * kMaxLanes + n_flags_, 0u); }
  // Next item of phase `phase` (0 or 1).
  size_t claim(size_t phase) const {
    return std::atomic_ref<uint32_t>(w_[phase * kMaxLanes]).fetch_add(1, std::memory_order_relaxed);
  }
  void set(size_t i) const { std::atomic_ref<uint32_t>(w_[2 * kMaxLanes + i]).store(1, std::memory_order_release); }
  HWY_INLINE void wait(size_t i) const {
    if (std::atomic_ref<uint32_t>(w_[2 * kMaxLanes + i]).load(std::memory_order_acquire) == 0) spin(i);
  }

 private:
  HWY_NOINLINE void spin(size_t i) const {
    const std::atomic_ref<uint32_t> flag(w_[2 * kMaxLanes + i]);
    spin_until([&] { return flag.load(std::memory_order_acquire) != 0; });
  }

  uint32_t* w_;
  size_t n_flags_;
};

// dst[x, n) = src[x, n) for the last partial vector of a row copy (x + kL > n), reading nothing
// past src + n: a masked load where it suppresses faults (AVX2, AVX-512), stored whole (callers
// have room and zeros or unused lanes past n); elsewhere (emulated masked loads read the whole
// vector) a scalar loop.
HWY_INLINE void copy_tail(const float* HWY_RESTRICT src, size_t x, size_t n, float* HWY_RESTRICT dst) {
  if (x >= n) return;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  const DF df;
  hn::StoreU(hn::MaskedLoad(hn::FirstN(df, n - x), df, src + x), df, dst + x);
#else
  for (; x < n; ++x) dst[x] = src[x];
#endif
}

// The input columns that a padded row of wz columns holds: padded column x is input column x +
// ix0 (ix0 = -pad_left, signed: the kernel tests run pads that wrap around to -1) for x in [x0,
// x0 + n).
struct PadCols {
  ptrdiff_t ix0;
  size_t x0, n;
};
inline PadCols pad_cols(const Conv2dParams& p, size_t wz) {
  PadCols c;
  c.ix0 = -static_cast<ptrdiff_t>(p.pad_left);
  c.x0 = static_cast<size_t>(std::clamp<ptrdiff_t>(-c.ix0, 0, static_cast<ptrdiff_t>(wz)));
  c.n = static_cast<size_t>(std::clamp<ptrdiff_t>(static_cast<ptrdiff_t>(p.W) - c.ix0, static_cast<ptrdiff_t>(c.x0),
                                                  static_cast<ptrdiff_t>(wz))) - c.x0;
  return c;
}

// Padded row y (input row y - pad_top) of a plane into row[0, wz): zeros, then the input
// columns over them with whole vectors and copy_tail (no libc calls: rows are 7-58 floats).
HWY_INLINE void padded_row(const Conv2dParams& p, const float* plane, size_t y, const PadCols& pc, size_t wz,
                           float* HWY_RESTRICT row) {
  const DF df;
  for (size_t x = 0; x < wz; x += kL) hn::StoreU(hn::Zero(df), df, row + x);
  const ptrdiff_t iy = static_cast<ptrdiff_t>(y) - static_cast<ptrdiff_t>(p.pad_top);
  if (iy < 0 || iy >= static_cast<ptrdiff_t>(p.H) || pc.n == 0) return;
  const float* src = plane + static_cast<ptrdiff_t>(static_cast<size_t>(iy) * p.W) + (static_cast<ptrdiff_t>(pc.x0) + pc.ix0);
  float* dst = row + pc.x0;
  size_t x = 0;
  for (; x + kL <= pc.n; x += kL) hn::StoreU(hn::LoadU(df, src + x), df, dst + x);
  copy_tail(src, x, pc.n, dst);
}

// The vertical transform of six rows (rows + k rs, k < 6) into Tv (rows Wb apart): B^T d over
// the columns [0, xv), whole vectors.
HWY_INLINE void vertical(const float* HWY_RESTRICT rows, size_t rs, size_t xv, float* HWY_RESTRICT Tv, size_t Wb) {
  const DF df;
  for (size_t x = 0; x < xv; x += kL) {
    VF d[6], o[6];
    for (size_t k = 0; k < 6; ++k) d[k] = hn::LoadU(df, rows + k * rs + x);
    bt6(d, o);
    for (size_t i = 0; i < 6; ++i) hn::StoreU(o[i], df, Tv + i * Wb + x);
  }
}

// Input rows y0 .. y0 + 5 of a plane (y0 counted in padded rows) staged in P (6 rows Wb floats
// apart, xv columns: the plane's columns [ix0 + lo, ix0 + hi) at lo, zeros elsewhere and for rows
// outside the plane), then their vertical transform B^T d into Tv (same layout), vectorised over
// columns. For the lean row-wise input transform (the 8-lane targets).
HWY_INLINE void stage_vertical(const Conv2dParams& p, const float* plane, size_t y0, ptrdiff_t ix0, ptrdiff_t lo,
                               ptrdiff_t hi, size_t xv, size_t Wb, float* HWY_RESTRICT P, float* HWY_RESTRICT Tv) {
  const ptrdiff_t H = static_cast<ptrdiff_t>(p.H), W = static_cast<ptrdiff_t>(p.W);
  for (size_t k = 0; k < 6; ++k) {
    float* row = P + k * Wb;
    const ptrdiff_t iy = static_cast<ptrdiff_t>(y0 + k) - static_cast<ptrdiff_t>(p.pad_top);
    if (iy < 0 || iy >= H || hi <= lo) {
      std::fill(row, row + xv, 0.f);
      continue;
    }
    std::fill(row, row + lo, 0.f);
    std::memcpy(row + lo, plane + (iy * W + ix0 + lo), static_cast<size_t>(hi - lo) * sizeof(float));
    std::fill(row + hi, row + xv, 0.f);
  }
  vertical(P, Wb, xv, Tv, Wb);
}

// Horizontal pass of a tile row, vectorised over tiles: from the vertical transform Tv (6 rows
// Wb floats apart) to V at position (i, j) = v + (6 i + j) vx, tile q at v + q, for vt tiles (a
// multiple of the lanes; the caller's V has room for the lanes past its tiles). Column kM q + k
// of tile q comes from the stride-kM deinterleave at kM q (kM = 4: k = 0..3; 2: k = 0, 1), then
// at kM q + kM, ...
template <size_t kM>
HWY_INLINE void horizontal(const float* HWY_RESTRICT Tv, size_t Wb, size_t vt, float* HWY_RESTRICT v, size_t vx) {
  const DF df;
  for (size_t i = 0; i < 6; ++i) {
    const float* tr = Tv + i * Wb;
    float* vi = v + i * 6 * vx;
    for (size_t q = 0; q < vt; q += kL) {
      VF d[6], o[6];
      if constexpr (kM == 4) {
        VF u0, u1;
        hn::LoadInterleaved4(df, tr + 4 * q, d[0], d[1], d[2], d[3]);
        hn::LoadInterleaved4(df, tr + 4 * q + 4, d[4], d[5], u0, u1);
      } else if constexpr (kM == 3) {
        hn::LoadInterleaved3(df, tr + 3 * q, d[0], d[1], d[2]);
        hn::LoadInterleaved3(df, tr + 3 * q + 3, d[3], d[4], d[5]);
      } else {
        hn::LoadInterleaved2(df, tr + 2 * q, d[0], d[1]);
        hn::LoadInterleaved2(df, tr + 2 * q + 2, d[2], d[3]);
        hn::LoadInterleaved2(df, tr + 2 * q + 4, d[4], d[5]);
      }
      bt6(d, o);
#pragma GCC unroll 6
      for (size_t j = 0; j < 6; ++j) hn::StoreU(o[j], df, vi + j * vx + q);
    }
  }
}

// Input transform of tiles [t_begin, t_end) into V[xi][c][t - t_begin] (row stride g.TBs); tiles
// of kM x kM outputs (g.m), whose 6x6 input patches start kM apart. Channels outer: per channel
// and image of the block, its tile rows' zero-padded input rows are built once (whole vectors and
// a masked tail per row: the g.prow x g.Wq block at P); each tile-row segment's vertical pass
// reads its six rows there into Tv, then horizontal<kM> (whole-vector stores run past a segment
// into the next segment's slots of the same channel, written after, or the row's TBs slack).
// Against six rows staged per tile row and channel (stage_vertical, three libc calls per row),
// paired in ResNet-50 (Zen 4, 1 thread): layer1's 56x56 convs 2.8-4.8% faster, the stem (F(3x3,
// 4x4) on its space-to-depth input) 1.1%; batch 8: layer1 3.7%, layers 2-3 1.0-1.4%. Same V.
template <size_t kM>
void input_transform(const Conv2dParams& p, const Geom& g, const float* in, size_t t_begin, size_t t_end,
                     float* HWY_RESTRICT V, float* HWY_RESTRICT P, float* HWY_RESTRICT Tv) {
  const size_t Wb = g.Wb, vx = g.vx, Wq = g.Wq;
  const size_t wz = round_up(kM * g.tw + 6, kL);  // padded columns built (zeros past the input)
  const PadCols pc = pad_cols(p, wz);
  for (size_t c = 0; c < p.C; ++c) {
    for (size_t t = t_begin; t < t_end;) {
      // The tiles of image n in the block: tile rows [ty0, ty1], padded rows [kM ty0, kM ty1 + 6).
      const size_t n = t / (g.th * g.tw);
      const size_t t_img = std::min(t_end, (n + 1) * g.th * g.tw);
      const size_t ty0 = t / g.tw % g.th, ty1 = (t_img - 1) / g.tw % g.th;
      const size_t y0 = kM * ty0, ny = kM * (ty1 - ty0) + 6;
      const float* plane = in + (n * p.C + c) * p.H * p.W;
      for (size_t k = 0; k < ny; ++k) padded_row(p, plane, y0 + k, pc, wz, P + k * Wq);
      for (; t < t_img;) {
        const size_t ty = t / g.tw % g.th, tx0 = t % g.tw;
        const size_t seg = std::min(g.tw - tx0, t_img - t);
        const size_t vt = round_up(seg, kL);
        const size_t xv = round_up(kM * vt + 4, kL);
        vertical(P + (kM * ty - y0) * Wq + kM * tx0, Wq, xv, Tv, Wb);
        horizontal<kM>(Tv, Wb, vt, V + c * g.TBs + (t - t_begin), vx);
        t += seg;
      }
    }
  }
}

// Y[r][0, NV*kL) += sum_c V[c][r] * U[c][...] for R tiles; u: the strip's first panel at c = 0.
// accumulate: start from Y instead of zero (the lean path sums over blocks of channels; storing
// and reloading a float is exact, so the sum equals the one-pass sum bit for bit).
template <size_t R, size_t NV, size_t CS>
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
    for (size_t k = 0; k < NV; ++k) w[k] = hn::LoadU(df, uk[k] + c * CS);
    const float* vr = v + c * tbs;
    for (size_t r = 0; r < R; ++r) {
      const VF x = hn::Set(df, vr[r]);
      for (size_t k = 0; k < NV; ++k) acc[r][k] = hn::MulAdd(x, w[k], acc[r][k]);
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t k = 0; k < NV; ++k) hn::StoreU(acc[r][k], df, y + r * ldy + k * kL);
}

// CS: floats between the weight vectors of consecutive input channels.
template <size_t NV, size_t CS = kPanel>
void gemm_strip(size_t rows, size_t C, const float* v, size_t tbs, const float* u, size_t panel_stride, float* y,
                size_t ldy, bool acc) {
  size_t r = 0;
  for (; r + kRows <= rows; r += kRows)
    gemm_block<kRows, NV, CS>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc);
  switch (rows - r) {
    case 1: gemm_block<1, NV, CS>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc); break;
    case 2: gemm_block<2, NV, CS>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc); break;
    case 3:
      if constexpr (kRows > 3) gemm_block<3, NV, CS>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc);
      break;
    case 4:
      if constexpr (kRows > 4) gemm_block<4, NV, CS>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc);
      break;
    case 5:
      if constexpr (kRows > 5) gemm_block<5, NV, CS>(C, v + r, tbs, u, panel_stride, y + r * ldy, ldy, acc);
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
    const float* uxi = U + xi * g.ux;
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

// o = G' g (kR = 3, 4 or 5 kernel taps to 6 points), G' = D^-1 G (the lean path's comment below;
// the F(3x3, 4x4) and F(2x2, 5x5) G' at the top of the file): row j holds the powers 0..kR-1 of
// the points 0, 1, -1, 2, -2, the inf row g[kR - 1]. Even and odd powers are summed apart:
// rows 1, 2 = e1 +- o1, rows 3, 4 = e2 +- o2.
template <size_t kR>
HWY_INLINE void gp(const VF* g, VF* o) {
  static_assert(kR >= 3 && kR <= 5, "F(4x4, 3x3), F(3x3, 4x4) or F(2x2, 5x5)");
  const DF df;
  VF e1 = hn::Add(g[0], g[2]), o1 = g[1];
  VF e2 = hn::MulAdd(hn::Set(df, 4.f), g[2], g[0]), o2 = hn::Add(g[1], g[1]);
  if constexpr (kR >= 4) {
    o1 = hn::Add(o1, g[3]);
    o2 = hn::MulAdd(hn::Set(df, 8.f), g[3], o2);
  }
  if constexpr (kR == 5) {
    e1 = hn::Add(e1, g[4]);
    e2 = hn::MulAdd(hn::Set(df, 16.f), g[4], e2);
  }
  o[0] = g[0];
  o[1] = hn::Add(e1, o1);
  o[2] = hn::Sub(e1, o1);
  o[3] = hn::Add(e2, o2);
  o[4] = hn::Sub(e2, o2);
  o[5] = g[kR - 1];
}

// gp<3> on three vectors (the lean path's passes).
HWY_INLINE void g3p(VF g0, VF g1, VF g2, VF* o) {
  const VF g[3] = {g0, g1, g2};
  gp<3>(g, o);
}

// Lean path (few tiles): the packed weights are raw, R[Mp/16][C][9][16], and the weight transform
// is fused into the GEMMs. G = D G' with G' = [1 0 0; 1 1 1; 1 -1 1; 1 2 4; 1 -2 4; 0 0 1] and
// D = diag(kD): U = D (G' g G'^T) D, and since the GEMMs are linear in U the D D scaling of
// position (i, j) is applied to Y in the output transform. One pass computes row i of U' = G' g G'^T
// (6 vectors of output channels) for one input channel in registers and feeds it straight into the
// 6 x TT accumulators of positions (i, 0..5) x TT tiles: U never goes to memory. With few tiles every
// U' value is used only TT times anyway, and writing U to a scratch block and reading it back cost
// more than the GEMM (ResNet stage 4: 60% of the time).
inline constexpr float kD[6] = {1.f / 4, -1.f / 6, -1.f / 6, 1.f / 24, 1.f / 24, 1.f};
// Staged path: U[xi][pm][c][16] = D (G' g G'^T) D of output-channel panel pm from the raw weights
// R[Mp/16][C][9][16]: the lean path's integer G', then the D D scaling of position (i, j) applied
// here, once per weight and run, instead of to Y in the output transform, once per tile (36
// multiplies per tile and output channel against the GEMMs' 36 C FMAs: ~1.5% at C = 64). One task
// per panel: it reads its raw weights contiguously and writes 36 streams of whole lines, with
// non-temporal stores where U is vector-aligned (arena scratch always is): U (up to 37.7 MB) is
// read back once per block of tiles anyway, and skipping the read-for-ownership halved the
// staged layers' slowdown on AlexNet batch 8 at 2 threads (13x13 maps, 128 tiles: +3% instead of
// +6% against the plan-time U; ResNet, VGG: see the header).
// F(3x3, 4x4) and F(2x2, 5x5): U = D (G' g G'^T) D with G' of 4 or 5 points to 6 (gp), same
// layout and D.
template <size_t kR>
void transform_weights_panel(const Conv2dParams& p, const Geom& g, const float* HWY_RESTRICT R, size_t pm,
                             float* HWY_RESTRICT U) {
  const DF df;
  // Non-temporal stores only where each is a whole line (16-float vectors): with 8-float ones
  // the two halves of a line are 36 streams apart, the write-combining buffers flush half lines,
  // and the transform took 12-15% of a 56x56 conv with 64 channels on AVX2 (Zen 3) instead of 2%.
  const bool aligned = kL * sizeof(float) == 64 && reinterpret_cast<uintptr_t>(U) % 64 == 0;
  const size_t ux = g.ux, C = p.C;
  for (size_t c = 0; c < C; ++c) {
    const float* gw = R + (pm * C + c) * kR * kR * kPanel;
    float* u = U + (pm * C + c) * kPanel;
    for (size_t k = 0; k < kPanel; k += kL) {
      VF col[kR][6];  // col[kw][i] = (G' g)[i][kw]
#pragma GCC unroll 5
      for (size_t kw = 0; kw < kR; ++kw) {
        VF gk[kR];
#pragma GCC unroll 5
        for (size_t kh = 0; kh < kR; ++kh) gk[kh] = hn::LoadU(df, gw + (kh * kR + kw) * kPanel + k);
        gp<kR>(gk, col[kw]);
      }
#pragma GCC unroll 6
      for (size_t i = 0; i < 6; ++i) {
        VF o[6], row[kR];
#pragma GCC unroll 5
        for (size_t kw = 0; kw < kR; ++kw) row[kw] = col[kw][i];
        gp<kR>(row, o);
        float* ui = u + i * 6 * ux + k;
#pragma GCC unroll 6
        for (size_t j = 0; j < 6; ++j) {
          const VF x = hn::Mul(o[j], hn::Set(df, kD[i] * kD[j]));
          if (aligned) {
            hn::Stream(x, df, ui + j * ux);
          } else {
            hn::StoreU(x, df, ui + j * ux);
          }
        }
      }
    }
  }
  if (aligned) hwy::FlushStream();  // order the streamed stores before the panel's ready flag
}

// Tiles per fused pass: 6 x TT accumulators (AVX-512: 24 of 32 registers).
constexpr size_t kTT = kL >= 16 ? 4 : 1;

// Row I of G' g for one vector of output channels: gw points at the channel's 9 kernel values
// (stride kPanel between them).
template <size_t I>
HWY_INLINE VF gp_row(const float* HWY_RESTRICT gw, size_t kw) {
  const DF df;
  if constexpr (I == 0) return hn::LoadU(df, gw + kw * kPanel);
  if constexpr (I == 5) return hn::LoadU(df, gw + (6 + kw) * kPanel);
  const VF g0 = hn::LoadU(df, gw + kw * kPanel), g1 = hn::LoadU(df, gw + (3 + kw) * kPanel),
           g2 = hn::LoadU(df, gw + (6 + kw) * kPanel);
  if constexpr (I == 1) return hn::Add(hn::Add(g0, g2), g1);
  if constexpr (I == 2) return hn::Sub(hn::Add(g0, g2), g1);
  const VF a = hn::MulAdd(hn::Set(df, 4.f), g2, g0), b = hn::Add(g1, g1);
  if constexpr (I == 3) return hn::Add(a, b);
  return hn::Sub(a, b);
}

// acc[j][tt] (+)= sum over cb input channels of V[(I, j)][c][tt] * U'[(I, j)][c] for TT tiles and
// one vector of output channels. gw: raw weights at the first channel (stride 9 * kPanel per
// channel); v: V at position (I, 0), first channel (a multiple of kLeanC), first tile; y: Y at
// position (I, 0).
// pf: the weights kLeanAhead blocks ahead at the first channel (nullptr: none); this pass, the
// k-th of the block's 6, prefetches lines k and k + 6 of the 9 (64 B, one per kernel value) of each
// channel into L2, so that the 6 passes together fetch that block while computing, spread out (one
// burst of 288 prefetches per block stalled; without prefetches 7x7 maps take 1.35x as long).
// Prefetches never fault (pf may run past the weights' end in a partial block).
template <size_t I, size_t TT>
HWY_NOINLINE void fused_pass(size_t cb, const float* HWY_RESTRICT gw, const float* HWY_RESTRICT v, size_t vx,
                             size_t tbs, float* HWY_RESTRICT y, size_t ystride, size_t ldy, bool accumulate,
                             const float* pf, size_t k) {
  const DF df;
  VF acc[6][TT];
  for (size_t j = 0; j < 6; ++j)
    for (size_t t = 0; t < TT; ++t)
      acc[j][t] = accumulate ? hn::LoadU(df, y + j * ystride + t * ldy) : hn::Zero(df);
  const float* vj[6];
  for (size_t j = 0; j < 6; ++j) vj[j] = v + j * vx;
  for (size_t c = 0; c < cb; ++c) {
    const float* g = gw + c * 9 * kPanel;
    if (pf) {
      __builtin_prefetch(pf + (c * 9 + k) * kPanel, 0, 2);
      if (k < 3) __builtin_prefetch(pf + (c * 9 + k + 6) * kPanel, 0, 2);
    }
    VF u[6];
    g3p(gp_row<I>(g, 0), gp_row<I>(g, 1), gp_row<I>(g, 2), u);
    const size_t off = c * tbs + c / kLeanC * kMaxLanes;  // lean_row: V's slack after each kLeanC rows
    for (size_t j = 0; j < 6; ++j)
      for (size_t t = 0; t < TT; ++t) acc[j][t] = hn::MulAdd(hn::Set(df, vj[j][off + t]), u[j], acc[j][t]);
  }
  for (size_t j = 0; j < 6; ++j)
    for (size_t t = 0; t < TT; ++t) hn::StoreU(acc[j][t], df, y + j * ystride + t * ldy);
}

template <size_t TT>
void fused_row(size_t i, size_t cb, const float* gw, const float* v, size_t vx, size_t tbs, float* y, size_t ystride,
               size_t ldy, bool acc, const float* pf, size_t k) {
  switch (i) {
    case 0: fused_pass<0, TT>(cb, gw, v, vx, tbs, y, ystride, ldy, acc, pf, k); break;
    case 1: fused_pass<1, TT>(cb, gw, v, vx, tbs, y, ystride, ldy, acc, pf, k); break;
    case 2: fused_pass<2, TT>(cb, gw, v, vx, tbs, y, ystride, ldy, acc, pf, k); break;
    case 3: fused_pass<3, TT>(cb, gw, v, vx, tbs, y, ystride, ldy, acc, pf, k); break;
    case 4: fused_pass<4, TT>(cb, gw, v, vx, tbs, y, ystride, ldy, acc, pf, k); break;
    default: fused_pass<5, TT>(cb, gw, v, vx, tbs, y, ystride, ldy, acc, pf, k); break;
  }
}

// Y'[xi][r][0, mlen) = sum_c V[xi][c][r] U'[xi][c][m0 + ...] for the block's nt tiles, with U' made
// on the fly from the raw weights R. Input channels go in blocks of kFusedC whose raw weights
// (kFusedC * 9 vectors, 144 KiB) stay in L2 across the passes over tiles and rows; the sums are
// stored and reloaded between blocks (exact, so the result is the one-pass sum whatever the
// block size). With 4 tiles (7x7 maps) a pass makes only 24 FMAs per channel, and reloading and
// storing the 6 x 4 accumulators every kLeanC = 32 channels cost ~12%: ResNet-50's 512-channel
// 7x7 conv alone 1.06 -> 0.92 ms with blocks of 256 (64: 1.00, 128: 0.94, 512: 0.96), in the
// model 1.22-1.23 -> 1.14-1.15 ms (per-op medians of 6 alternating rounds, 1 thread). The
// weights are prefetched one such block ahead (147 KiB): two blocks, a whole 512-channel panel
// ahead, left the model's 7x7 convs at 1.15-1.20 ms against 1.03-1.04 (per-op medians, 6 rounds).
void gemms_lean(const Conv2dParams& p, const Geom& g, const float* V, const float* R, size_t nt, size_t m0,
                size_t mlen, float* Y) {
  const size_t ystride = nt * g.Mc + kPanel;
  for (size_t mo = 0; mo < mlen; mo += kL) {
    const size_t m = m0 + mo;
    const float* panel = R + (m / kPanel) * p.C * 9 * kPanel + m % kPanel;
    for (size_t c0 = 0; c0 < p.C; c0 += kFusedC) {
      const size_t cb = std::min(kFusedC, p.C - c0);
      const float* gw = panel + c0 * 9 * kPanel;
      // Prefetch the weights kLeanAhead blocks ahead, in this panel or the next vector's.
      const float* pf = nullptr;
      const size_t ahead = c0 + kLeanAhead * kFusedC, c_blocks = round_up(p.C, kFusedC);
      if (ahead < p.C) {
        pf = panel + ahead * 9 * kPanel;
      } else if (mo + kL < mlen && ahead - c_blocks < p.C) {
        pf = R + ((m + kL) / kPanel) * p.C * 9 * kPanel + (ahead - c_blocks) * 9 * kPanel;
      }
      for (size_t r = 0; r < nt; r += kTT) {
        const size_t tt = std::min(kTT, nt - r);
        // Row 1 first: it reads all 9 weights of each channel, in order (rows 0 and 5 read 3).
        constexpr size_t kOrder[6] = {1, 0, 2, 3, 4, 5};
        for (size_t k = 0; k < 6; ++k) {
          const size_t i = kOrder[k];
          const float* v = V + i * 6 * g.vx + lean_row(g, c0) + r;
          float* y = Y + i * 6 * ystride + r * g.Mc + mo;
          const bool acc = c0 > 0;
          if (tt == kTT) {
            fused_row<kTT>(i, cb, gw, v, g.vx, g.TBs, y, ystride, g.Mc, acc, pf, k);
          } else if constexpr (kTT > 1) {
            if (tt == 1) fused_row<1>(i, cb, gw, v, g.vx, g.TBs, y, ystride, g.Mc, acc, pf, k);
            if constexpr (kTT > 2)
              if (tt == 2) fused_row<2>(i, cb, gw, v, g.vx, g.TBs, y, ystride, g.Mc, acc, pf, k);
            if constexpr (kTT > 3)
              if (tt == 3) fused_row<3>(i, cb, gw, v, g.vx, g.TBs, y, ystride, g.Mc, acc, pf, k);
          }
        }
      }
    }
  }
}

// Lean path for more tiles (a 14x14 map's 16 and up): the fused passes redo the transform per
// group of kTT tiles, so here U' is transformed once per block of kLeanC input channels and strip
// of output channels into per-thread scratch Ub[panel][c][xi][16], then the 36 GEMMs reuse each
// U' vector over all the tiles. Y' as in gemms_lean. The 36 vectors of one transform go to 36
// consecutive lines (not 36 streams 8 KiB apart: ~5% faster on 14x14 maps), the GEMMs read
// them with a stride of 36 vectors per input channel.
void gemms_lean_ub(const Conv2dParams& p, const Geom& g, const float* V, const float* R, size_t nt, size_t m0,
                   size_t mlen, float* Y, float* HWY_RESTRICT Ub) {
  const DF df;
  const size_t ystride = nt * g.Mc + kPanel;
  for (size_t mo = 0; mo < mlen; mo += kNV * kL) {
    const size_t nv = std::min(kNV, (mlen - mo) / kL);
    for (size_t c0 = 0; c0 < p.C; c0 += kLeanC) {
      const size_t cb = std::min(kLeanC, p.C - c0);
      const size_t pstride = cb * kPos * kPanel;
      for (size_t c = 0; c < cb; ++c)
        for (size_t k = 0; k < nv; ++k) {
          const size_t m = m0 + mo + k * kL;
          const float* gw = R + ((m / kPanel * p.C + c0 + c) * 9) * kPanel + m % kPanel;
          // The GEMMs between two weight blocks hide these reads from the hardware prefetcher:
          // fetch the panel's weights kLeanPrefetch channels ahead (into the next block too), into
          // L2 (prefetcht1 on x86: 5% faster than into L1 on 14x14 maps).
          if (c0 + c + kLeanPrefetch < p.C)
            for (size_t l = 0; l < 9 * kPanel; l += 64 / sizeof(float))
              __builtin_prefetch(gw + kLeanPrefetch * 9 * kPanel + l, 0, 2);
          VF col[3][6];  // col[kw][i] = (G' g)[i][kw]
          for (size_t kw = 0; kw < 3; ++kw)
            g3p(hn::LoadU(df, gw + kw * kPanel), hn::LoadU(df, gw + (3 + kw) * kPanel),
                hn::LoadU(df, gw + (6 + kw) * kPanel), col[kw]);
          float* ub = Ub + (k * kL / kPanel) * pstride + c * kPos * kPanel + (k * kL) % kPanel;
          for (size_t i = 0; i < 6; ++i) {
            VF u[6];
            g3p(col[0][i], col[1][i], col[2][i], u);
            for (size_t j = 0; j < 6; ++j) hn::StoreU(u[j], df, ub + (i * 6 + j) * kPanel);
          }
        }
      // The next block's raw weights (this strip's next kLeanC channels, or the next strip's
      // first) into L2, spread over this block's 36 GEMMs: the transform above otherwise waits on
      // DRAM in bursts (the per-channel prefetch reaches only kLeanPrefetch channels ahead).
      // ResNet-50 at 1 thread, AVX-512 (runs alternating inside one process, 50 pairs): its
      // 14x14 Winograd convs 4-5% faster, the 28x28 ones 1-2%, the model 0.5%; into L1 instead,
      // 14x14 4%; without the per-channel prefetch, 14x14 3%.
      const float* next[kNV] = {};
      size_t next_lines = 0;
      {
        size_t nc0 = c0 + kLeanC, nmo = mo;
        if (nc0 >= p.C) nc0 = 0, nmo = mo + kNV * kL;
        if (nmo < mlen) {
          for (size_t k = 0; k < std::min(kNV, (mlen - nmo) / kL); ++k) {
            const size_t m = m0 + nmo + k * kL;
            if (k == 0 || m % kPanel == 0) next[k] = R + ((m / kPanel * p.C + nc0) * 9) * kPanel;  // once per panel
          }
          next_lines = std::min(kLeanC, p.C - nc0) * 9 * kPanel * sizeof(float) / 64;
        }
      }
      const size_t lines_per_pos = div_up(next_lines, kPos);
      for (size_t xi = 0; xi < kPos; ++xi) {
        const size_t l0 = std::min(next_lines, xi * lines_per_pos), l1 = std::min(next_lines, l0 + lines_per_pos);
        for (size_t k = 0; k < kNV; ++k)
          if (next[k])
            for (size_t l = l0; l < l1; ++l) __builtin_prefetch(reinterpret_cast<const char*>(next[k]) + l * 64, 0, 2);
        const float* v = V + xi * g.vx + lean_row(g, c0);
        const float* u = Ub + xi * kPanel;
        float* y = Y + xi * ystride + mo;
        const bool acc = c0 > 0;
        constexpr size_t kCS = kPos * kPanel;
        if (nv == kNV) {
          gemm_strip<kNV, kCS>(nt, cb, v, g.TBs, u, pstride, y, g.Mc, acc);
        } else if constexpr (kNV > 1) {
          if (nv == 1) gemm_strip<1, kCS>(nt, cb, v, g.TBs, u, pstride, y, g.Mc, acc);
          if constexpr (kNV > 2)
            if (nv == 2) gemm_strip<2, kCS>(nt, cb, v, g.TBs, u, pstride, y, g.Mc, acc);
          if constexpr (kNV > 3)
            if (nv == 3) gemm_strip<3, kCS>(nt, cb, v, g.TBs, u, pstride, y, g.Mc, acc);
        }
      }
    }
  }
}

// Lean path's input transform of channels [c_begin, c_end) (whole blocks of kLeanC), all tiles,
// vectorised over tiles by gathering each lane's 6x6 patch (a 7x7 map has 4 tiles, a 14x14 one
// 16, whatever the map width): a table holds the 36 input offsets of each lane and the padding
// masks, then for every channel the patches are gathered, transformed in registers (B^T d B) and
// stored as whole vectors into V[xi][c][tile]. When T is a power of two below the vector width,
// one vector holds the tiles of G = kL / T channels: G consecutive V rows, one store (a 7x7 map:
// 4 channels per gather instead of 4 useful lanes out of 16). Otherwise chunks of kL tiles.
// Lanes past the last tile or channel read offset 0 under a zero mask.
// tab: 2 * 36 * kL floats (int32 offsets, then the masks as all-ones / zero bit patterns).
void input_transform_lean(const Conv2dParams& p, const Geom& g, const float* in, size_t c_begin, size_t c_end,
                          float* HWY_RESTRICT V, float* HWY_RESTRICT tab) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  int32_t* offs = reinterpret_cast<int32_t*>(tab);
  int32_t* masks = offs + kPos * kL;
  const size_t hw = p.H * p.W;
  const size_t G = (g.T & (g.T - 1)) == 0 && 2 * g.T <= kL ? kL / g.T : 1;  // channels per vector
  const size_t lt = G > 1 ? g.T : kL;                                        // tiles per vector
  // Lane l: channel c + l / lt, tile q0 + l % lt; `nc` channels left from c.
  const auto fill = [&](size_t q0, size_t nc) {
    for (size_t l = 0; l < kL; ++l) {
      const size_t cs = l / lt, t = q0 + l % lt;
      const size_t n = t / (g.th * g.tw), ty = t / g.tw % g.th, tx = t % g.tw;
      for (size_t y = 0; y < 6; ++y)
        for (size_t x = 0; x < 6; ++x) {
          const ptrdiff_t iy = static_cast<ptrdiff_t>(4 * ty + y) - static_cast<ptrdiff_t>(p.pad_top);
          const ptrdiff_t ix = static_cast<ptrdiff_t>(4 * tx + x) - static_cast<ptrdiff_t>(p.pad_left);
          const bool ok = t < g.T && cs < nc && iy >= 0 && iy < static_cast<ptrdiff_t>(p.H) && ix >= 0 &&
                          ix < static_cast<ptrdiff_t>(p.W);
          // lean() guarantees that N * C * H * W fits int32.
          offs[(y * 6 + x) * kL + l] =
              ok ? static_cast<int32_t>((n * p.C + cs) * hw + static_cast<size_t>(iy) * p.W + static_cast<size_t>(ix))
                 : 0;
          masks[(y * 6 + x) * kL + l] = ok ? -1 : 0;
        }
    }
  };
  // Chunks of tiles from the last: a chunk's whole-vector stores may run past the row's T tiles
  // into the next row (written after it for this chunk, and for the chunks before), or, after
  // the last row of a block of kLeanC channels (or G rows past the last channel, zeros), into the
  // block's slack. Blocks belong to one task.
  for (size_t q0 = G > 1 ? 0 : round_up(g.T, kL) - kL;; q0 -= kL) {
    fill(q0, G);
    for (size_t c = c_begin; c < c_end; c += G) {
      if (c + G > c_end) fill(q0, c_end - c);  // the last vector of channels (G > 1 only)
      const float* plane = in + c * hw;
      VF t[6][6];  // t[i][x] = (B^T d)[i][x]
      for (size_t x = 0; x < 6; ++x) {
        VF d[6], o[6];
        for (size_t y = 0; y < 6; ++y) {
          const size_t k = (y * 6 + x) * kL;
          d[y] = hn::And(hn::GatherIndex(df, plane, hn::LoadU(di, offs + k)),
                         hn::BitCast(df, hn::LoadU(di, masks + k)));
        }
        bt6(d, o);
        for (size_t i = 0; i < 6; ++i) t[i][x] = o[i];
      }
      float* vc = V + lean_row(g, c) + q0;
      for (size_t i = 0; i < 6; ++i) {
        VF o[6];
        bt6(t[i], o);
        for (size_t j = 0; j < 6; ++j) hn::StoreU(o[j], df, vc + (i * 6 + j) * g.vx);
      }
    }
    if (q0 == 0) break;
  }
}

// Lean path's input transform without gathers, for maps whose tile rows fill most of a vector
// (kLeanRowsMinTw tile columns: 28x28 maps, 7 tiles per row). Per channel and
// tile row as the staged path's input_transform (stage_vertical, then horizontal), stored as
// whole vectors into V[xi][c][tile]. Lanes past the row's tw tiles run into the next tile row's
// slots, past the channel's last row into the next channel's first (both written after, channels
// and rows in order), past the block's last channel into the block's slack (lean_row). The same
// B^T d B arithmetic as the gathers, so the same V.
// Measured on AVX2 (Zen 3, 1 thread; perf samples against the GEMMs of the same run, which the
// change leaves alone): 28x28 maps with 128 channels (7 tiles per row), the input transform 2.2x
// faster (25-26% of the GEMMs' time -> 10-12%), the conv ~13% faster; 14x14 maps with 256 (4 of 8
// lanes used) the same as the gathers (8.4-8.8%), so those keep them. The gathers stay on the
// other targets. On AVX-512 (Zen 4), where a 16-lane gather costs ~30-45 cycles, paired in ResNet-50
// at 1 thread (50 ABBA pairs, two processes): the 28x28 convs (7 of 16 lanes) 5% faster with the
// rows, the 14x14 (4 tiles per row) 7% and the 7x7 (2) 7-8% slower: from 5 tile columns there too.
inline constexpr size_t kLeanRowsMinTw = kL >= 8 ? 5 : SIZE_MAX;
void input_transform_lean_rows(const Conv2dParams& p, const Geom& g, const float* in, size_t c_begin, size_t c_end,
                               float* HWY_RESTRICT V, float* HWY_RESTRICT P) {
  const ptrdiff_t W = static_cast<ptrdiff_t>(p.W);
  const size_t Wb = g.Wb, vx = g.vx, tw = g.tw, th = g.th;
  float* HWY_RESTRICT Tv = P + 6 * Wb;
  const size_t vt = round_up(tw, kL);          // tiles covered by whole vectors
  const size_t xv = round_up(4 * vt + 4, kL);  // columns the horizontal pass reads
  const ptrdiff_t ix0 = -static_cast<ptrdiff_t>(p.pad_left);
  const ptrdiff_t lo = std::clamp<ptrdiff_t>(-ix0, 0, static_cast<ptrdiff_t>(xv));
  const ptrdiff_t hi = std::clamp<ptrdiff_t>(W - ix0, lo, static_cast<ptrdiff_t>(xv));
  for (size_t c = c_begin; c < c_end; ++c) {
    float* vc = V + lean_row(g, c);
    for (size_t n = 0; n < p.N; ++n) {
      const float* plane = in + (n * p.C + c) * p.H * p.W;
      for (size_t ty = 0; ty < th; ++ty) {
        stage_vertical(p, plane, 4 * ty, ix0, lo, hi, xv, Wb, P, Tv);
        horizontal<4>(Tv, Wb, vt, vc + (n * th + ty) * tw, vx);
      }
    }
  }
}

// The lean input transform with whole vectors of tiles and no gathers (16-lane targets): a "unit"
// is one tile row of one channel and image, tw tiles; floor(kL / tw) consecutive units share a
// vector (28x28 maps: 2 rows of 7 tiles; 14x14: the 4 rows of 4 of a channel; 7x7: 2 rows of 2 x
// 4 channels). Per channel and image the zero-padded plane is built once in scratch (whole
// vectors and a masked tail per row: libc's fill / memcpy on 7-28-float rows, three calls per
// row and tile row, cost what the gathers do); per unit, the vertical transform of its six rows
// (over 4 tw + 4 columns only) is copied into R[i] at 4 tw u (columns 4 tx .. 4 tx + 3 of each
// tile: what LoadInterleaved4 takes apart) and from column 4 on into R'[i] (a tile's columns 4,
// 5; the copies' overrun lands in the next unit's slots or in lanes past the vector's last tile,
// never used); then per row i two interleaved loads give d[0..5] of all the vector's tiles, the
// horizontal bt6, and whole-vector stores into V, as input_transform_lean_rows stores them (units
// in order within one block of kLeanC channels, so lanes past the last unit run into slots
// written afterwards or the block's slack). The same B^T d B arithmetic as the gathers, so the
// same V.
// Measured on Zen 4 in ResNet-50 (paired, 50 ABBA pairs per process, 1 thread): against the
// gathers the 14x14 convs 2.2-2.3% faster, the 7x7 ones equal (-0.8%, 0.0%); against
// input_transform_lean_rows the 28x28 convs 4.7% faster. (With stage_vertical's per-row libc
// calls instead of the padded plane: 28x28 1.3-3.1% faster than the rows, 5.5% at 2 threads, but
// 14x14 0.5% and 7x7 2.5% slower than the gathers.)
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
void input_transform_lean_packed(const Conv2dParams& p, const Geom& g, const float* in, size_t c_begin, size_t c_end,
                                 float* HWY_RESTRICT V, float* HWY_RESTRICT P) {
  const DF df;
  const size_t Wb = g.Wb, vx = g.vx, tw = g.tw, th = g.th;
  constexpr size_t RS = 5 * kL;  // R / R' row: 4 kL floats read, a vector of copy overrun
  const size_t ny = 4 * th + 2;  // padded rows the plane's tiles read
  float* HWY_RESTRICT Tv = P + ny * Wb;
  float* HWY_RESTRICT R = Tv + 6 * Wb;
  float* HWY_RESTRICT R2 = R + 6 * RS;
  const size_t U = kL / tw;                        // units per vector (tw <= kL)
  const size_t cw = round_up(4 * tw, kL);          // floats copied per unit row
  const size_t xv = round_up(4 * tw + 4, kL);      // columns of the vertical transform
  // Input columns in [0, xv) of a padded row (pad_cols).
  const PadCols pc = pad_cols(p, xv);
  size_t nu = 0;
  float* vdst = nullptr;
  const auto flush = [&] {
    for (size_t i = 0; i < 6; ++i) {
      VF d[6], o[6], u0, u1;
      hn::LoadInterleaved4(df, R + i * RS, d[0], d[1], d[2], d[3]);
      hn::LoadInterleaved4(df, R2 + i * RS, d[4], d[5], u0, u1);
      bt6(d, o);
#pragma GCC unroll 6
      for (size_t j = 0; j < 6; ++j) hn::StoreU(o[j], df, vdst + (i * 6 + j) * vx);
    }
    nu = 0;
  };
  for (size_t c = c_begin; c < c_end; ++c) {
    for (size_t n = 0; n < p.N; ++n) {
      const float* plane = in + (n * p.C + c) * p.H * p.W;
      // The zero-padded plane, rows [0, ny), once: zeros, then each input row over them (whole
      // vectors and a masked tail: no libc calls on 7-28-float rows).
      for (size_t y = 0; y < ny; ++y) padded_row(p, plane, y, pc, xv, P + y * Wb);
      for (size_t ty = 0; ty < th; ++ty) {
        vertical(P + 4 * ty * Wb, Wb, xv, Tv, Wb);
        if (nu == 0) vdst = V + lean_row(g, c) + (n * th + ty) * tw;
        for (size_t i = 0; i < 6; ++i) {
          const float* t = Tv + i * Wb;
          float* r = R + i * RS + 4 * tw * nu;
          float* r2 = R2 + i * RS + 4 * tw * nu;
          for (size_t x = 0; x < cw; x += kL) {
            hn::StoreU(hn::LoadU(df, t + x), df, r + x);
            hn::StoreU(hn::LoadU(df, t + 4 + x), df, r2 + x);
          }
        }
        if (++nu == U) flush();
      }
    }
  }
  if (nu > 0) flush();
}
#endif

// Output transform: tiles ahead whose output lines are prefetched (see output_transform).
inline constexpr size_t kOutPfTiles = 4;

// Up to kM floats of a tile row; the constant-size copy of a whole row compiles to one move.
template <size_t kM>
HWY_INLINE void copy_row(float* HWY_RESTRICT dst, const float* HWY_RESTRICT src, size_t n) {
  if (n == kM) {
    std::memcpy(dst, src, kM * sizeof(float));
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

// Output transform + epilogue of the block's tiles [t_begin, t_begin + nt), channels [m0, m0 + mlen);
// tiles of kM x kM outputs.
// stage: 4 * kL floats (residual/output rows in channel-major order) + kL (bias).
// scaled: Y holds the lean path's Y', to be multiplied by kD[i] kD[j] at position (i, j).
template <size_t kM>
void output_transform(const Conv2dParams& p, const Geom& g, const float* Y, size_t t_begin, size_t nt, size_t m0,
                      size_t mlen, bool scaled, float* out, float* HWY_RESTRICT stage) {
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
      const size_t n = t / (g.th * g.tw), oy0 = kM * (t / g.tw % g.th), ox = kM * (t % g.tw);
      const size_t ncol = std::min<size_t>(kM, p.OW - ox);
      // The output lines of the tile kOutPfTiles ahead, fetched for writing: a tile stores kM rows
      // of 12-16 bytes per channel, each into another line, and those stores' misses stalled the
      // transform (`perf`: ~22% of its samples right after them). Paired in ResNet-50 at 1 thread
      // (3 processes): the stem (3.2 MB of output) 3.4-7.4% faster, layer1's Winograd convs
      // 1.5-3.5%, the others within +-1%; 8 tiles ahead no better.
      if (r + kOutPfTiles < nt) {
        const size_t t2 = t + kOutPfTiles;
        const size_t n2 = t2 / (g.th * g.tw), oy2 = kM * (t2 / g.tw % g.th), ox2 = kM * (t2 % g.tw);
        const float* o2 = out + (n2 * p.M + m) * ohw + oy2 * p.OW + ox2;
        for (size_t l = 0; l < lanes; ++l)
          for (size_t a = 0; a < kM && oy2 + a < p.OH; ++a) __builtin_prefetch(o2 + l * ohw + a * p.OW, 1, 3);
      }
      const float* y = Y + r * g.Mc + mo;
      VF s[kM][6];
      for (size_t j = 0; j < 6; ++j) {
        VF col[6], o[kM];
        for (size_t i = 0; i < 6; ++i) col[i] = hn::LoadU(df, y + (i * 6 + j) * (nt * g.Mc + kPanel));
        if (scaled)
          for (size_t i = 0; i < 6; ++i) col[i] = hn::Mul(col[i], hn::Set(df, kD[i] * kD[j]));
        at<kM>(col, o);
        for (size_t a = 0; a < kM; ++a) s[a][j] = o[a];
      }
      for (size_t a = 0; a < kM && oy0 + a < p.OH; ++a) {
        VF z[kM];
        at<kM>(s[a], z);
        const size_t base = (n * p.M + m) * ohw + (oy0 + a) * p.OW + ox;
        for (size_t b = 0; b < kM; ++b) z[b] = hn::Add(z[b], bias);
        if (ep.residual) {
          if (ncol < kM || lanes < kL) std::fill(stage, stage + kM * kL, 0.f);  // lanes that are not stored
          for (size_t l = 0; l < lanes; ++l) copy_row<kM>(stage + kM * l, ep.residual + base + l * ohw, ncol);
          VF rv[kM];
          if constexpr (kM == 4) {
            hn::LoadInterleaved4(df, stage, rv[0], rv[1], rv[2], rv[3]);
          } else if constexpr (kM == 3) {
            hn::LoadInterleaved3(df, stage, rv[0], rv[1], rv[2]);
          } else {
            hn::LoadInterleaved2(df, stage, rv[0], rv[1]);
          }
          for (size_t b = 0; b < kM; ++b) z[b] = hn::Add(z[b], rv[b]);
        }
        for (size_t b = 0; b < kM; ++b) z[b] = activate_vec(df, z[b], ep);
        if constexpr (kM == 4) {
          hn::StoreInterleaved4(z[0], z[1], z[2], z[3], df, stage);
        } else if constexpr (kM == 3) {
          hn::StoreInterleaved3(z[0], z[1], z[2], df, stage);
        } else {
          hn::StoreInterleaved2(z[0], z[1], df, stage);
        }
        for (size_t l = 0; l < lanes; ++l) copy_row<kM>(out + base + l * ohw, stage + kM * l, ncol);
      }
    }
  }
}

// Staged: U of every panel into the shared scratch, then tasks over tile blocks x output-channel
// chunks; a task transforms its tiles' input, then waits for the U panels of its chunk.
template <size_t kM, size_t kR>
void staged(const Conv2dParams& p, const Geom& g, const float* in, const float* R, float* out, float* scratch,
            const Parallel* par, const RunSync& sync) {
  const size_t workers = std::max<size_t>(1, par->threads());
  float* U = scratch;
  const size_t n_panels = g.Mp / kPanel;
  par->run(workers, [&](size_t, size_t thread) {
    for (size_t pm; (pm = sync.claim(0)) < n_panels;) {
      transform_weights_panel<kR>(p, g, R, pm, U);
      sync.set(pm);
    }
    float* V = scratch + g.shared + thread * g.per_thread;
    float* Y = V + g.v_floats;
    float* P = Y + g.y_floats;
    float* Tv = P + g.prow * g.Wq;
    float* stage = Tv + 6 * g.Wb;
    for (size_t task; (task = sync.claim(1)) < g.n_tb * g.n_mc;) {
      const size_t b = task / g.n_mc, mc = task % g.n_mc;
      const size_t t_begin = b * g.TB, nt = std::min(g.TB, g.T - t_begin);
      const size_t m0 = mc * g.Mc, mlen = std::min(g.Mc, g.Mp - m0);
      input_transform<kM>(p, g, in, t_begin, t_begin + nt, V, P, Tv);
      for (size_t pm = m0 / kPanel; pm < (m0 + mlen) / kPanel; ++pm) sync.wait(pm);
      gemms(p, g, V, U, nt, m0, mlen, Y);
      output_transform<kM>(p, g, Y, t_begin, nt, m0, mlen, false, out, stage);
    }
  });
}

void winograd_impl(const Conv2dParams& p, const float* in, const float* R, float* out, float* scratch,
                   const Parallel* par) {
  // One task per thread; each claims the items of both phases (see RunSync).
  const size_t workers = std::max<size_t>(1, par->threads());
  const Geom g = geom(p, workers);
  const RunSync sync(scratch + g.shared + workers * g.per_thread, g);
  sync.reset();
  if (lean(p)) {
    // Lean: the input transformed once into the shared V (blocks of kLeanC input channels), then
    // GEMMs and output transform per chunk of output channels, each waiting for V's blocks in turn.
    float* V = scratch;
    par->run(workers, [&](size_t, size_t thread) {
      float* Y = scratch + g.shared + thread * g.per_thread;
      float* tab = Y + g.y_floats;
      float* Ub = tab + g.tab_floats;
      float* stage = Ub + g.ub_floats;
      for (size_t cc; (cc = sync.claim(0)) < g.n_cc;) {
        const size_t c0 = cc * kLeanC;
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
        if (kL == 16 && g.tw <= kL) {
          input_transform_lean_packed(p, g, in, c0, std::min(p.C, c0 + kLeanC), V, tab);
          sync.set(cc);
          continue;
        }
#endif
        if (g.tw >= kLeanRowsMinTw) {
          input_transform_lean_rows(p, g, in, c0, std::min(p.C, c0 + kLeanC), V, tab);
        } else {
          input_transform_lean(p, g, in, c0, std::min(p.C, c0 + kLeanC), V, tab);
        }
        sync.set(cc);
      }
      // At 2+ threads the chunks after the first are half as wide, so that the tasks end closer
      // together (AlexNet's three 13x13 convs at 2 threads: 2.12-2.16 -> 1.91-1.97 ms; ResNet-18
      // 0-2% faster, ResNet-50 within noise); at 1 thread the narrower strips would cost ~7%.
      // More than kMakespanMaxThreads threads: every chunk narrow enough for two per thread.
      size_t first = g.Mc, narrow = g.Mc;
      if (workers > kMakespanMaxThreads) {
        first = narrow = std::min(g.Mc, std::max(kPanel, round_up(div_up(g.Mp, 2 * workers), kPanel)));
      } else if (workers > 1) {
        narrow = std::max(kPanel, round_up(g.Mc / 2, kPanel));
      }
      const size_t n_chunks = 1 + div_up(g.Mp - std::min(g.Mp, first), narrow);
      for (size_t mc; (mc = sync.claim(1)) < n_chunks;) {
        const size_t m0 = mc == 0 ? 0 : first + (mc - 1) * narrow;
        const size_t mlen = std::min(mc == 0 ? first : narrow, g.Mp - m0);
        // All of V first: waiting per block inside the GEMMs cost 1-3% at 1 thread, and by the
        // time a thread gets here the other one is finishing its last block, if any.
        for (size_t cc = 0; cc < g.n_cc; ++cc) sync.wait(cc);
        // The fused passes need the 32 registers of AVX-512 (6 x 4 accumulators): with 16
        // (kTT = 1) they redo the transform per tile, 1.7-2.4x slower than the Ub GEMMs (AVX2, 7x7).
        if (g.T < kFusedTiles && kTT >= 4) {
          gemms_lean(p, g, V, R, g.T, m0, mlen, Y);
        } else {
          gemms_lean_ub(p, g, V, R, g.T, m0, mlen, Y, Ub);
        }
        output_transform<4>(p, g, Y, 0, g.T, m0, mlen, true, out, stage);
      }
    });
    return;
  }
  if (p.KH == 3) {
    staged<4, 3>(p, g, in, R, out, scratch, par, sync);
  } else if (p.KH == 4) {
    staged<3, 4>(p, g, in, R, out, scratch, par, sync);
  } else {
    staged<2, 5>(p, g, in, R, out, scratch, par, sync);
  }
}


}  // namespace
}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(winograd_impl);

bool winograd_applicable(const Conv2dParams& p) {
  return p.KH >= 3 && p.KH <= 5 && p.KW == p.KH && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 &&
         p.group == 1 && p.N > 0 && p.C > 0 && p.M > 0 && p.OH > 0 && p.OW > 0;
}

size_t winograd_packed_weight_floats(const Conv2dParams& p) {
  using namespace wino_detail;  // NOLINT
  return p.KH * p.KW * round_up(p.M, kPanel) * p.C;
}

void pack_winograd_weights(const Conv2dParams& p, const float* w, float* packed) {
  using namespace wino_detail;  // NOLINT
  // Raw weights in panels of 16 output channels: R[m / 16][c][kh * KW + kw][m % 16], so that a
  // task (lean) or a transform task (staged) reads only its own channels' weights, contiguously.
  const size_t kk = p.KH * p.KW;
  std::fill(packed, packed + winograd_packed_weight_floats(p), 0.f);
  for (size_t m = 0; m < p.M; ++m)
    for (size_t c = 0; c < p.C; ++c)
      for (size_t t = 0; t < kk; ++t)
        packed[((m / kPanel * p.C + c) * kk + t) * kPanel + m % kPanel] = w[(m * p.C + c) * kk + t];
}

WinogradPath winograd_path(const Conv2dParams& p) {
  return wino_detail::lean(p) ? WinogradPath::kLean : WinogradPath::kStaged;
}

void unpack_winograd_weights(const Conv2dParams& p, const float* packed, float* w) {
  using namespace wino_detail;  // NOLINT
  const size_t kk = p.KH * p.KW;
  for (size_t m = 0; m < p.M; ++m)
    for (size_t c = 0; c < p.C; ++c)
      for (size_t t = 0; t < kk; ++t)
        w[(m * p.C + c) * kk + t] = packed[((m / kPanel * p.C + c) * kk + t) * kPanel + m % kPanel];
}

size_t winograd_scratch_floats(const Conv2dParams& p, size_t threads) {
  const wino_detail::Geom g = wino_detail::geom(p, std::max<size_t>(threads, 1));
  return g.shared + std::max<size_t>(threads, 1) * g.per_thread + g.sync_floats;
}

void winograd_conv(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
                      const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(winograd_impl)(p, in, w_packed, out, scratch, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
