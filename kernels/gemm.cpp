// Blocked SGEMM: packed panels + Highway register-blocked micro-kernel; GEMV paths for M==1 / N==1;
// a dot-product path for few rows with B transposed (fully connected layers at a small batch).
//
// Blocking (BLIS-style): the C matrix of each batch entry is cut into MC x NC tiles; a tile is
// one Parallel task and is computed completely by one thread (K is never split across threads,
// so results do not depend on the thread count). Inside a task, K is walked in KC blocks: the
// B block (KC x NC) is packed into the thread's scratch (and the A block too unless A comes
// pre-packed), then for each NR-column B micro-panel (kept in L1) the micro-kernel runs over
// the A micro-panels (streamed from L2), MR x NR register tiles (NR = up to kNV vectors).
// With A pre-packed (1x1 convs) a task takes all rows (up to kMCPrepacked), B is read in place
// when its rows are contiguous (only a last panel of a partial vector the column edge does not
// take is packed), and wide column blocks run the other way round, row panels outer, prefetching
// the B rows read (or packed) next and the next C / residual rows from inside the micro-kernel
// (see macro_block, RowPrefetch; on AVX2 only at batch > 1 and without the C / residual rows:
// kRowsOuterBatch1, kRowsOuterNextC).
//   packed A: panels of MR rows, panel[k][r] (k-major, MR contiguous), rows past M are zero;
//             pre-packed A (weights, gemm_pack_a) holds these K block by K block, each block's
//             panels back to back (one contiguous stream per K block);
//   packed B: panels of NR columns, panel[k][c]; the last panel is only as wide as the
//             remaining columns rounded up to a vector (so N = 49 costs 48 + 16 columns, not
//             2 x 48), with its columns past N zero. conv2d's im2col writes this layout directly.
// Edge tiles run the same vector micro-kernels; whole tiles are merged from registers, partial
// ones (M/N edges only) through a small buffer, with the same vector arithmetic; a partial row
// panel computes only 1, 2 or 4 of its rows when that covers it. On AVX-512 a block's last 1-8
// columns past a whole vector run vectorised over rows instead (edge_kernel). A whole tile prefetches its C
// (and residual) rows before its first K block's FMAs. With few tasks per thread the tile grid
// is chosen for balance (plan_blocking), splitting rows when N is small.
// The epilogue is merged into the store: on the first K block bias and residual are added
// (so the residual may alias C), on the last one the activation is applied.
// The K blocking depends on K only, so every path sums in the same order for any thread count.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/gemm.h"
#include "kernels/int_math.h"

#ifndef CONVOY_KERNELS_GEMM_SHARED
#define CONVOY_KERNELS_GEMM_SHARED
namespace convoy::kernels::gemm_detail {

// Upper bounds over all targets (the scratch size is computed once, outside target code).
inline constexpr size_t kMaxLanes = 64;  // floats in the widest vector any target may have
inline constexpr size_t kMRMax = 8;
inline constexpr size_t kNRMax = 3 * kMaxLanes;
inline constexpr size_t kKC = 256;
// K blocks with A pre-packed (weights), on targets that take them (kKCPrepacked below): each K
// block of a C tile is merged into C (and its C rows fetched again), and with A pre-packed there
// is no A block in scratch for the depth to fill. ResNet-50 (runs alternating inside one
// process, 80-100 pairs, Zen 4): 1 thread 0.96% faster than with 256 (its 3x3 stride-2 convs
// 1.6-3.2%, layer 4's 1x1 convs 2.3-2.9%, downsamples 2-3.3%, layer 3's conv1s 2.2%), 2 threads
// 1.2%, batch 8 within noise; 512 gave 0.75%, 4096 (one block) 0.9%, 128 was 2% slower.
inline constexpr size_t kKCPrepackedMax = 1024;
inline constexpr size_t kMC = 144;       // multiple of every MR (8, 6, 4)
inline constexpr size_t kMCPacked = 480;  // rows per A block of gemm_packed_ab (multiple of every MR)
// Rows per task when A comes pre-packed (gemm_prepacked_a; multiple of every MR): all of M up to
// here, so that each B block is packed once per task (ResNet's 1x1 convs have M <= 1024).
inline constexpr size_t kMCPrepacked = 1056;
// Columns per block: a multiple of every NR on x86 (48, 16, 8, 2). 240 rather than 480: with
// rows outer the B block (kc x nc, read in place) streams from L2 once per row panel while the
// next one is fetched; ResNet-50 at 1 thread 64.1 -> 63.7 ms (every stage's 1x1 convs 0.07-0.09
// ms faster, 5 alternating rounds), the same at 2 threads and at batch 8.
inline constexpr size_t kNC = 240;
// Column blocks at least this wide run row panels outer (see gemm_blocked).
inline constexpr size_t kRowsOuterMinNC = 240;


struct Blocking {
  size_t mc, nc, kc, nkb;
};

// K blocks: as equal as possible, at most max_kc.
inline void k_blocks(size_t K, size_t max_kc, size_t* kc, size_t* nkb) {
  *nkb = std::max<size_t>(1, div_up(K, max_kc));
  *kc = div_up(K, *nkb);
}

// Longest thread of a greedy run of the tasks in index order (greedy_makespan, the estimate of
// the pool's run): a tile of the C block grid costs its lane columns times (its rows + 4, ~ the
// packing of its B block).
inline constexpr size_t kGridSearchMaxThreads = kMakespanMaxThreads;
inline size_t grid_makespan(const GemmParams& p, size_t threads, size_t mc, size_t nc, size_t lanes) {
  const size_t mb = div_up(p.M, mc), nb = div_up(p.N, nc);
  return greedy_makespan(threads, p.batch * mb * nb, [&](size_t t) {
    const size_t i = (t / nb) % mb, j = t % nb;
    const size_t rows = std::min(mc, p.M - i * mc), cols = round_up(std::min(nc, p.N - j * nc), lanes);
    return cols * (rows + 4);
  });
}

// The K blocking depends on K only (it decides the summation order); MC/NC may shrink with the
// thread count to make enough tasks, which does not change any result.
// With A pre-packed the A block is not copied per task, so it may be larger (the B block is then
// packed once for more rows); its row blocks are balanced.
// Several threads and fewer than 16 tasks per thread (batch 1): up to kGridSearchMaxThreads
// threads, the grid is the one of 1, 2, 3, 4, T, 2T, 3T, 4T, 6T, 8T, 12T or 16T row blocks x as
// many column blocks (at most 16T tasks) whose longest thread has the least estimated work: small
// N (ResNet's 14x14 = 196 columns = 4 panels + 4) splits the rows evenly, 56x56 = 3136 columns
// split into 14 blocks of 224 instead of 7 of 480 (7 tasks on 2 threads). Row blocks stay
// multiples of the target's mr (the pre-packed A's panels), column blocks whole nr panels. More
// threads: the grid of at least 2 tasks per thread that moves the fewest bytes (the makespan
// search grows as T^3).
inline Blocking plan_blocking(const GemmParams& p, size_t threads, bool a_prepacked = false, size_t mr = 8,
                              size_t nr = 48, size_t lanes = 16, size_t max_kc = kKC) {
  Blocking b{};
  k_blocks(p.K, max_kc, &b.kc, &b.nkb);
  const size_t m = std::max<size_t>(p.M, 1), n = std::max<size_t>(p.N, 1);
  b.mc = a_prepacked ? round_up(div_up(m, div_up(m, kMCPrepacked)), 24) : std::min(kMC, round_up(m, 24));
  b.nc = std::min(kNC, round_up(n, 48));
  auto tasks = [&](size_t mc, size_t nc) { return p.batch * div_up(m, mc) * div_up(n, nc); };
  if (threads <= 1) return b;
  if (threads > kGridSearchMaxThreads) {
    // Many threads: at least two tasks per thread, from the grid that moves the fewest bytes:
    // every row block packs the B columns of its tasks (read + write), every column block reads
    // (pre-packed) or packs A's rows. Halving the column blocks and then the row blocks instead
    // gave ResNet-50's 14x14 1x1 convs (N = 196) 11 row blocks of 24, so B was packed 11 times.
    if (tasks(b.mc, b.nc) >= 2 * threads) return b;
    const size_t mc0 = b.mc, nc0 = b.nc, a_cost = a_prepacked ? 1 : 2;
    size_t best = SIZE_MAX, best_tasks = 0;
    for (size_t ms = 1; ms <= 2 * threads; ++ms) {
      const size_t mc = std::min(mc0, round_up(div_up(m, ms), mr)), mb = div_up(m, mc);
      for (size_t ns = 1; ns <= 2 * threads; ++ns) {
        const size_t nc = std::min(nc0, round_up(div_up(n, ns), nr)), nb = div_up(n, nc);
        const size_t t = tasks(mc, nc);
        const size_t bytes = mb * n * 2 + nb * m * a_cost;  // in K-columns of floats, per batch entry
        const bool enough = t >= 2 * threads, best_enough = best_tasks >= 2 * threads;
        if ((enough && !best_enough) || (enough == best_enough && (enough ? bytes < best : t > best_tasks))) {
          best = bytes;
          best_tasks = t;
          b.mc = mc;
          b.nc = nc;
        }
      }
    }
    return b;
  }
  const size_t mc0 = b.mc, nc0 = b.nc;
  if (tasks(b.mc, b.nc) >= 16 * threads) return b;
  // Pre-packed A in one column block at 2 threads, batch 1 (ResNet's 1x1 convs on 14x14 and 7x7
  // maps: N = 196, 49): row blocks of at most 128 rows, two or more per thread, rather than the
  // one per thread the estimate below picks, so that the pool's steals even out the threads' ends.
  // ResNet-50 at 2 threads (runs alternating inside one process, 3 x 120 pairs, Zen 4): layer 3's
  // 1x1 convs 1.2-1.5% faster, layer 4's 1.5-2.0%, the model 0.4-0.7%. At 1 thread, A blocks of
  // 128 or 256 rows instead of all of M measured within +-0.7%: the gain is the balance, not
  // the cache. Not measured at 3-4 threads, so not applied there.
  if (threads == 2 && a_prepacked && p.batch == 1 && n <= nc0 && m >= 256) {
    b.mc = round_up(std::min<size_t>(128, div_up(m, 2 * threads)), mr);  // whole A panels
    return b;
  }
  const size_t T = threads, splits[] = {1, 2, 3, 4, T, 2 * T, 3 * T, 4 * T, 6 * T, 8 * T, 12 * T, 16 * T};
  size_t best = grid_makespan(p, threads, b.mc, b.nc, lanes), best_tasks = tasks(b.mc, b.nc);
  for (size_t ms : splits) {
    const size_t mc = std::min(mc0, round_up(div_up(m, ms), mr));
    for (size_t ns : splits) {
      const size_t nc = std::min(nc0, round_up(div_up(n, ns), nr));
      const size_t t = tasks(mc, nc);
      if (t > 16 * threads) continue;
      const size_t span = grid_makespan(p, threads, mc, nc, lanes);
      if (span < best || (span == best && t < best_tasks)) {
        best = span;
        best_tasks = t;
        b.mc = mc;
        b.nc = nc;
      }
    }
  }
  return b;
}

// Per-thread scratch: packed A block + packed B block, each rounded to 64 bytes.
inline size_t per_thread_floats(const GemmParams& p) {
  const Blocking b = plan_blocking(p, 1);  // largest blocks
  const size_t kc = std::max<size_t>(b.kc, 1);
  return round_up(kc * (b.mc + kMRMax), 16) + round_up(kc * (b.nc + kNRMax), 16);
}
// With A pre-packed: no A block; the B block packed, or when B's rows are read in place only a
// last panel of at most kNRMax columns (the deepest K block of any target: kKCPrepackedMax).
inline bool b_rows_in_place(const GemmParams& p) { return p.b_cs == 1 && p.b_rs > 0; }
inline size_t per_thread_floats_prepacked(const GemmParams& p) {
  const Blocking b = plan_blocking(p, 1, true, 8, 48, 16, kKCPrepackedMax);
  const size_t kc = std::max<size_t>(b.kc, 1);
  return round_up(kc * ((b_rows_in_place(p) ? 0 : b.nc) + kNRMax), 16);
}

// Which GEMV path (if any) a problem takes.
enum class GemvKind { kNone, kDotM1, kAxpyM1, kDotN1, kAxpyN1 };
inline GemvKind gemv_kind(const GemmParams& p) {
  if (p.M == 1 && p.a_cs == 1 && p.b_rs == 1) return GemvKind::kDotM1;
  if (p.M == 1 && p.b_cs == 1) return GemvKind::kAxpyM1;
  if (p.N == 1 && p.b_rs == 1 && p.a_cs == 1) return GemvKind::kDotN1;
  if (p.N == 1 && p.a_rs == 1) return GemvKind::kAxpyN1;
  return GemvKind::kNone;
}

inline constexpr size_t kGemvMaxChunk = 1024;

// Few rows of A and B stored transposed (fully connected layers at a small batch: B = the
// [N][K] weights): dot products along K read every weight row once, contiguously, instead of
// packing (transposing) B on every run.
inline constexpr size_t kDotMaxM = 16;
inline bool uses_dot(const GemmParams& p) {
  return gemv_kind(p) == GemvKind::kNone && p.M <= kDotMaxM && p.a_cs == 1 && p.b_rs == 1 && p.b_cs != 1;
}

}  // namespace convoy::kernels::gemm_detail
#endif  // CONVOY_KERNELS_GEMM_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemm.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/epilogue-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace {

using namespace gemm_detail;  // NOLINT
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Register tile: MR rows x NV vectors. AVX-512 has 32 registers (24 accumulators), the
// 16-register targets get 12 accumulators.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kMR = 8, kNV = 3;
#elif HWY_TARGET == HWY_SCALAR
constexpr size_t kMR = 4, kNV = 2;
#else
constexpr size_t kMR = 6, kNV = 2;
#endif
static_assert(kMR <= kMRMax, "MR bound");
// K block depth with A pre-packed (see kKCPrepackedMax; the 16-register targets keep kKC, where
// the deeper blocks were not measured).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kKCPrepacked = kKCPrepackedMax;
#else
constexpr size_t kKCPrepacked = kKC;
#endif
static_assert(kKCPrepacked <= kKCPrepackedMax, "the scratch is sized for kKCPrepackedMax");
static_assert(kMC % kMR == 0 && kMCPacked % kMR == 0 && kMCPrepacked % kMR == 0, "A blocks hold whole panels");

struct MergeCtx {
  float alpha, beta;
  bool first, last;  // first / last K block
  const Epilogue* ep;
};

// c[o*cs] = merge(acc[o]) for o < n. First block: alpha*acc + beta*c + bias + residual (c not
// read when beta == 0); later blocks: c + alpha*acc. Last block: activation.
// res points at the residual element matching c[0] (same stride), bias at bias[o*bias_stride].
// The tail (< one vector) is scalar: a masked store would be a read-modify-write of the
// neighbouring columns on some targets, which another thread may be writing.
HWY_NOINLINE void merge_span(const float* HWY_RESTRICT acc, size_t n, float* c, size_t cs, const float* res,
                             const float* bias, size_t bias_stride, const MergeCtx& m) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const Epilogue& ep = *m.ep;
  size_t o = 0;
  if (cs == 1) {
    const VF valpha = hn::Set(d, m.alpha), vbeta = hn::Set(d, m.beta);
    for (; o + L <= n; o += L) {
      VF v = hn::Mul(valpha, hn::LoadU(d, acc + o));
      if (m.first) {
        if (m.beta != 0.f) v = hn::MulAdd(vbeta, hn::LoadU(d, c + o), v);
        if (bias) v = hn::Add(v, bias_stride ? hn::LoadU(d, bias + o) : hn::Set(d, bias[0]));
        if (res) v = hn::Add(v, hn::LoadU(d, res + o));
      } else {
        v = hn::Add(hn::LoadU(d, c + o), v);
      }
      if (m.last) v = activate_vec(d, v, ep);
      hn::StoreU(v, d, c + o);
    }
  }
  for (; o < n; ++o) {
    float v = m.alpha * acc[o];
    float& dst = c[o * cs];
    if (m.first) {
      if (m.beta != 0.f) v += m.beta * dst;
      if (bias) v += bias[o * bias_stride];
      if (res) v += res[o * cs];
    } else {
      v = dst + v;
    }
    if (m.last) v = activate_scalar(v, ep);
    dst = v;
  }
}

// ---- packing ----

// Width of B panel q (starting at column q*nr) when the block has n columns.
HWY_INLINE size_t panel_width(size_t n, size_t c0, size_t nr, size_t lanes) {
  return std::min(nr, round_up(n - c0, lanes));
}

// A rows [i0, i0+mc), k [k0, k0+kc) -> panels of kMR rows: dst[p][k][r].
void pack_a(const GemmParams& p, const float* a, size_t i0, size_t mc, size_t k0, size_t kc, float* HWY_RESTRICT dst) {
  for (size_t r0 = 0; r0 < mc; r0 += kMR) {
    const size_t mr = std::min(kMR, mc - r0);
    float* panel = dst + r0 * kc;
    const float* src = a + static_cast<ptrdiff_t>(i0 + r0) * p.a_rs + static_cast<ptrdiff_t>(k0) * p.a_cs;
    if (p.a_rs == 1 && mr == kMR) {
      for (size_t k = 0; k < kc; ++k) std::memcpy(panel + k * kMR, src + static_cast<ptrdiff_t>(k) * p.a_cs, kMR * sizeof(float));
      continue;
    }
    for (size_t r = 0; r < mr; ++r) {
      const float* row = src + static_cast<ptrdiff_t>(r) * p.a_rs;
      if (p.a_cs == 1) {
        for (size_t k = 0; k < kc; ++k) panel[k * kMR + r] = row[k];
      } else {
        for (size_t k = 0; k < kc; ++k) panel[k * kMR + r] = row[static_cast<ptrdiff_t>(k) * p.a_cs];
      }
    }
    for (size_t r = mr; r < kMR; ++r)
      for (size_t k = 0; k < kc; ++k) panel[k * kMR + r] = 0.f;
  }
}

// B k [k0, k0+kc), columns [j0, j0+nc) -> panels of nr_full columns (the last one narrower,
// see panel_width): panel c0 at dst + c0*kc, element [k][c].
void pack_b(const GemmParams& p, const float* b, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr_full,
            float* HWY_RESTRICT dst) {
  const size_t L = hn::Lanes(DF());
  for (size_t c0 = 0; c0 < nc; c0 += nr_full) {
    const size_t nr = std::min(nr_full, nc - c0), w = panel_width(nc, c0, nr_full, L);
    float* panel = dst + c0 * kc;
    const float* src = b + static_cast<ptrdiff_t>(k0) * p.b_rs + static_cast<ptrdiff_t>(j0 + c0) * p.b_cs;
    if (p.b_cs == 1) {
      for (size_t k = 0; k < kc; ++k) {
        float* out = panel + k * w;
        std::memcpy(out, src + static_cast<ptrdiff_t>(k) * p.b_rs, nr * sizeof(float));
        for (size_t c = nr; c < w; ++c) out[c] = 0.f;
      }
      continue;
    }
    for (size_t c = 0; c < nr; ++c) {
      const float* col = src + static_cast<ptrdiff_t>(c) * p.b_cs;
      if (p.b_rs == 1) {
        for (size_t k = 0; k < kc; ++k) panel[k * w + c] = col[k];
      } else {
        for (size_t k = 0; k < kc; ++k) panel[k * w + c] = col[static_cast<ptrdiff_t>(k) * p.b_rs];
      }
    }
    for (size_t k = 0; k < kc; ++k)
      for (size_t c = nr; c < w; ++c) panel[k * w + c] = 0.f;
  }
}

// ---- micro-kernel: C tile (kMR rows x NV*L columns) = packed A panel (kc x kMR) * packed B panel (kc x NV*L) ----

// Rows of a matrix (each row one contiguous segment) fetched into the cache a few lines at a
// time, `step` lines every kPrefetchEvery K steps of the micro-kernel, while other tiles
// compute: the rows of the B block a thread reads in place or packs next (b_cs == 1), and the C and
// residual rows of the next row panel (rows outer, first K block). At batch 8 every activation
// is tens of MB, so these come from DRAM through hundreds of short row streams the hardware
// prefetchers do not follow. Issued in bursts between micro-kernel calls instead they measured
// slower: a burst fills the miss queue that the B panel loads need.
struct RowPrefetch {
  const char* base = nullptr;  // row 0's first line
  size_t stride = 0;           // bytes between rows
  size_t lines = 0;            // cache lines per row
  size_t rows = 0;
  size_t row = 0, line = 0;  // next line to fetch
  size_t step = 0;           // lines per burst
  bool write = false;        // for a store (C): fetched for ownership
  bool to_l2 = false;        // fetched into L2 only (the next B micro-panel: L1 holds this one)
  size_t total() const { return rows * lines; }
  // The next `step` lines. Cheap when there is nothing left (the default stream, rows == 0); the
  // kind of fetch is chosen once per burst and the walk keeps a row pointer (on ResNet-50's K = 64
  // convs the bursts took 8% of the micro-kernel's time with the address and kind worked out per line).
  HWY_INLINE void issue() {
    if (row >= rows) return;
    if (write) {
      walk<1>();
    } else if (to_l2) {
      walk<2>();
    } else {
      walk<0>();
    }
  }

 private:
  template <int kKind>
  HWY_INLINE void walk() {
    const char* rp = base + row * stride;
    size_t r = row, ln = line;
    for (size_t count = step; count != 0; --count) {
      const char* p = rp + ln * 64;
      if constexpr (kKind == 1) {
        __builtin_prefetch(p, 1, 3);
      } else if constexpr (kKind == 2) {
        __builtin_prefetch(p, 0, 2);
      } else {
        __builtin_prefetch(p, 0, 3);
      }
      if (++ln == lines) {
        ln = 0;
        rp += stride;
        if (++r == rows) break;
      }
    }
    row = r;
    line = ln;
  }
};
inline constexpr size_t kPrefetchEvery = 16;  // K steps between two prefetch bursts
// Columns outer without a B stream to advance (narrow blocks: ResNet's 1x1 convs on 14x14 and 7x7
// maps at batch 1), the first column panel's micro-kernel calls fetch the A micro-panel this many
// panels ahead into L1, spread over the call. Pre-packed weights are read once per run and stage
// 4's (4-8 MB a conv) come from DRAM, each panel at the pace of the micro-kernel's broadcasts.
// ResNet-50 (runs alternating inside one process, 120 pairs): 1 thread, layer 4's conv3s 3.8-4.6%
// faster, its conv1s 1.8-2.1%, its downsample 3.4-3.9%, the model 0.4-0.5%; 2 threads layer 4's
// 1x1 convs 1.3-2.6%, the model 0.15-0.4%; the other layers within +-0.3%. A chain of twelve
// 7x7 1x1 convs (48 MB of weights, 1 thread): 4.2% faster, 1 panel ahead the same, 3 ahead 3.7%,
// 4 ahead into L2 1.9% slower, 2 ahead into L2 3.2% faster (in ResNet-50 0.2%).
inline constexpr size_t kPfAPanels = 2;

// `rows` rows of n floats from p, ld floats apart (rows need not start on a cache line).
inline RowPrefetch row_prefetch(const float* p, size_t ld, size_t rows, size_t n, bool write) {
  RowPrefetch r;
  r.base = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63});
  r.stride = ld * sizeof(float);
  r.lines = div_up(static_cast<size_t>(reinterpret_cast<const char*>(p + n) - r.base), 64);
  r.rows = rows;
  r.write = write;
  return r;
}

// The streams a tile's micro-kernel advances: next B block, next row panel's C and residual.
struct Prefetches {
  RowPrefetch s[3];
  HWY_INLINE void issue() {
    for (RowPrefetch& r : s) r.issue();
  }
};

// Where one register tile goes: c/res at its first element (C's leading dimension ldc), bias at
// its first row (bias_per_row) or first column; mr x nr of its elements are inside C. With pf,
// the micro-kernel advances those prefetch streams every kPrefetchEvery K steps.
struct TileOut {
  float* c;
  size_t ldc;
  const float* res;
  const float* bias;
  bool bias_per_row;
  size_t mr, nr;
  Prefetches* pf = nullptr;
};

// The usual conv epilogue of a whole tile (alpha 1, beta 0, a bias per row, no activation or
// Relu) with its flags as template arguments: straight-line code instead of a handful of branches
// per vector (K = 64 1x1 convs spent ~5% of their time in the generic merge). The same operations
// in the same order as the generic merge below, so the same results.
template <size_t NV, bool kFirst, bool kLast, bool kRes, bool kRelu>
HWY_INLINE void merge_whole_fast(VF (&acc)[kMR][NV], const TileOut& o) {
  const DF d;
  const size_t L = hn::Lanes(d);
#pragma GCC unroll 8
  for (size_t r = 0; r < kMR; ++r) {
    float* cr = o.c + r * o.ldc;
    const VF bias = hn::Set(d, kFirst ? o.bias[r] : 0.f);
#pragma GCC unroll 3
    for (size_t v = 0; v < NV; ++v) {
      VF x = acc[r][v];
      if constexpr (kFirst) {
        x = hn::Add(x, bias);
        if constexpr (kRes) x = hn::Add(x, hn::LoadU(d, o.res + r * o.ldc + v * L));
      } else {
        x = hn::Add(hn::LoadU(d, cr + v * L), x);
      }
      if constexpr (kLast && kRelu) x = hn::Max(x, hn::Zero(d));
      hn::StoreU(x, d, cr + v * L);
    }
  }
}

// Merges a whole tile by merge_whole_fast when its epilogue is one it covers; false otherwise.
template <size_t NV>
HWY_INLINE bool merge_whole_fast_any(VF (&acc)[kMR][NV], const TileOut& o, const MergeCtx& m) {
  if (m.alpha != 1.f) return false;
  if (m.first && (m.beta != 0.f || !o.bias || !o.bias_per_row)) return false;
  const Activation act = m.ep->act;
  if (m.last && act != Activation::kNone && act != Activation::kRelu) return false;
  const bool res = m.first && o.res, relu = m.last && act == Activation::kRelu;
  const int mode = (m.first ? 8 : 0) | (m.last ? 4 : 0) | (res ? 2 : 0) | (relu ? 1 : 0);
  switch (mode) {
    case 0: case 1: case 2: case 3: merge_whole_fast<NV, false, false, false, false>(acc, o); break;
    case 4: case 6: merge_whole_fast<NV, false, true, false, false>(acc, o); break;
    case 5: case 7: merge_whole_fast<NV, false, true, false, true>(acc, o); break;
    case 8: case 9: merge_whole_fast<NV, true, false, false, false>(acc, o); break;
    case 10: case 11: merge_whole_fast<NV, true, false, true, false>(acc, o); break;
    case 12: merge_whole_fast<NV, true, true, false, false>(acc, o); break;
    case 13: merge_whole_fast<NV, true, true, false, true>(acc, o); break;
    case 14: merge_whole_fast<NV, true, true, true, false>(acc, o); break;
    default: merge_whole_fast<NV, true, true, true, true>(acc, o); break;
  }
  return true;
}

// B read in place (bs wider than the tile): each K step of a tile reads a new line of a row bs
// floats below the last, a stride the hardware prefetchers follow too late; whole-panel tiles
// fetch the row kPfBRows steps ahead into L1 (a prefetch past the block's or the matrix's end
// does not fault). Measured on AVX2 (Zen 3, 1 thread): ResNet-50 at 1 thread 1.5-2% faster in 6
// of 6 paired rounds (medians 92.2-94.8 -> 90.5-93.4 ms), its 14x14 1x1 convs (K = 256-1024) 5-7%;
// 4, 8 and 16 rows ahead equal; a second prefetch for the row's other line (14x14 rows are not
// line-aligned) slower. On AVX-512 (Zen 4, paired the same way as below) the model was equal
// with it (1.0009 and 1.0031 in two processes), so it stays off there.
#if HWY_TARGET == HWY_AVX2
inline constexpr bool kPfBInPlace = true;
#else
inline constexpr bool kPfBInPlace = false;
#endif
inline constexpr size_t kPfBRows = 8;

// Where rows outer applies (gemm_blocked, macro_block), two AVX2 choices, measured on Zen 3 by
// alternating the two variants run by run inside one process (ABBA order, 50-100 pairs, the
// ratio per pair of adjacent runs, so that this host's minute-to-minute speed changes cancel):
// - Batch 1 runs columns outer (kRowsOuterBatch1): at the host's fast level the two orders are
//   even on ResNet-50 (columns outer: layer1's 1x1 convs 2-3% slower, layers 2-3's 0-2% faster),
//   at its slow level columns outer is 6-7% faster (the in-place 1x1 convs 5-13%: rows outer
//   re-reads a kc x 240 B block from L2 per row panel). Batch 8, where C and the residual stream
//   from DRAM, keeps rows outer (columns outer: layer1's 1x1 convs 4-13% slower at 1 thread).
// - No prefetch of the next row panel's C and residual (kRowsOuterNextC): the bursts cost more
//   than they saved, ResNet-50 0.5-2.4% faster without them at batch 1 (layer1's 1x1 convs
//   7-8%), 1.1-1.4% at batch 8, equal at 2 threads. Each tile still prefetches its own C and
//   residual rows.
// On AVX-512 (Zen 4) both measured equal on the model (columns outer at batch 1: 1.0004 and
// 1.0010; no next-row C prefetch: 0.9996 and 1.0013), so it keeps the behaviour tuned there.
#if HWY_TARGET == HWY_AVX2
inline constexpr bool kRowsOuterBatch1 = false;
inline constexpr bool kRowsOuterNextC = false;
#else
inline constexpr bool kRowsOuterBatch1 = true;
inline constexpr bool kRowsOuterNextC = true;
#endif

// A whole tile is merged from registers with the same vector operations as merge_span (so
// results do not depend on where tile edges fall); a partial one goes through `tile` memory.
// MR < kMR computes only the first MR rows of the A panel (an M edge: ResNet's 7x7 maps run
// transposed as 49 rows = 6 panels + 1 row); each row's arithmetic is the same as in a full panel.
// The C rows (and the residual's) a whole tile merges into are usually cold on the first K block
// (a fresh output, a residual written layers before): fetched while the FMAs run.
template <size_t NV>
HWY_INLINE void prefetch_tile_c(const TileOut& o) {
  const size_t L = hn::Lanes(DF());
  for (size_t r = 0; r < kMR; ++r) {
    for (size_t v = 0; v < NV; ++v) {
      __builtin_prefetch(o.c + r * o.ldc + v * L, 1);
      if (o.res) __builtin_prefetch(o.res + r * o.ldc + v * L, 0);
    }
  }
}

// A whole tile's accumulators merged into C from registers (merge_span's vector operations).
template <size_t NV, size_t MR>
HWY_INLINE void merge_tile(VF (&acc)[MR][NV], const TileOut& o, const MergeCtx& m) {
  const DF d;
  const size_t L = hn::Lanes(d);
  if constexpr (MR == kMR && NV == kNV) {
    if (merge_whole_fast_any<NV>(acc, o, m)) return;
  }
  const VF valpha = hn::Set(d, m.alpha), vbeta = hn::Set(d, m.beta);
  for (size_t r = 0; r < MR; ++r) {
    float* cr = o.c + r * o.ldc;
    const float* rr = o.res ? o.res + r * o.ldc : nullptr;
#pragma GCC unroll 3
    for (size_t v = 0; v < NV; ++v) {
      VF x = hn::Mul(valpha, acc[r][v]);
      if (m.first) {
        if (m.beta != 0.f) x = hn::MulAdd(vbeta, hn::LoadU(d, cr + v * L), x);
        if (o.bias) x = hn::Add(x, o.bias_per_row ? hn::Set(d, o.bias[r]) : hn::LoadU(d, o.bias + v * L));
        if (rr) x = hn::Add(x, hn::LoadU(d, rr + v * L));
      } else {
        x = hn::Add(hn::LoadU(d, cr + v * L), x);
      }
      if (m.last) x = activate_vec(d, x, *m.ep);
      hn::StoreU(x, d, cr + v * L);
    }
  }
}

template <size_t NV, size_t MR, bool kPfB>
HWY_INLINE void micro_kernel(const float* HWY_RESTRICT ap, const float* HWY_RESTRICT bp, size_t kc, size_t bs,
                             const TileOut& o, const MergeCtx& m, float* HWY_RESTRICT tile) {
  const DF d;
  const size_t L = hn::Lanes(d);
  VF acc[MR][NV];
#pragma GCC unroll 8
  for (size_t r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (size_t v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  const bool whole = MR == kMR && o.mr == kMR && o.nr == NV * L;
  if (m.first && whole) prefetch_tile_c<NV>(o);
  for (size_t k = 0; k < kc; ++k) {
    if (o.pf && k % kPrefetchEvery == 0) o.pf->issue();
    if constexpr (kPfB) __builtin_prefetch(bp + kPfBRows * bs, 0, 3);
    VF bv[NV];
#pragma GCC unroll 3
    for (size_t v = 0; v < NV; ++v) bv[v] = hn::LoadU(d, bp + v * L);
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; ++r) {
      const VF av = hn::Set(d, ap[r]);
#pragma GCC unroll 3
      for (size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
    ap += kMR;
    bp += bs;
  }
  if (whole) {
    merge_tile<NV, MR>(acc, o, m);
    return;
  }
#pragma GCC unroll 8
  for (size_t r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (size_t v = 0; v < NV; ++v) hn::StoreU(acc[r][v], d, tile + (r * NV + v) * L);
  for (size_t r = 0; r < o.mr; ++r) {
    const size_t off = r * o.ldc;
    const float* bias = nullptr;
    if (o.bias) bias = o.bias_per_row ? o.bias + r : o.bias;
    merge_span(tile + r * NV * L, o.nr, o.c + off, 1, o.res ? o.res + off : nullptr, bias, o.bias_per_row ? 0 : 1, m);
  }
}

// Rows computed for a tile of o.mr rows: 1, 2, 4 or a full panel.
template <size_t NV>
HWY_INLINE void micro_kernel_rows(const float* HWY_RESTRICT ap, const float* HWY_RESTRICT bp, size_t kc, size_t bs,
                                  const TileOut& o, const MergeCtx& m, float* HWY_RESTRICT tile) {
  constexpr size_t kR2 = kMR >= 2 ? 2 : kMR, kR4 = kMR >= 4 ? 4 : kMR;
  if (o.mr >= kMR || o.mr > kR4) {
    if (kPfBInPlace && bs > NV * hn::Lanes(DF()))
      micro_kernel<NV, kMR, kPfBInPlace>(ap, bp, kc, bs, o, m, tile);
    else
      micro_kernel<NV, kMR, false>(ap, bp, kc, bs, o, m, tile);
  } else if (o.mr > kR2) {
    micro_kernel<NV, kR4, false>(ap, bp, kc, bs, o, m, tile);
  } else if (o.mr > 1) {
    micro_kernel<NV, kR2, false>(ap, bp, kc, bs, o, m, tile);
  } else {
    micro_kernel<NV, 1, false>(ap, bp, kc, bs, o, m, tile);
  }
}

// bs: floats between B's K rows (the panel width when packed, ldb when read in place).
HWY_NOINLINE void micro_kernel_nv(size_t nv, const float* HWY_RESTRICT ap, const float* HWY_RESTRICT bp, size_t kc,
                                  size_t bs, const TileOut& o, const MergeCtx& m, float* HWY_RESTRICT tile) {
  if (nv == kNV) {
    micro_kernel_rows<kNV>(ap, bp, kc, bs, o, m, tile);
  } else if (kNV >= 2 && nv == 2) {
    micro_kernel_rows<(kNV >= 2 ? 2 : 1)>(ap, bp, kc, bs, o, m, tile);
  } else {
    micro_kernel_rows<1>(ap, bp, kc, bs, o, m, tile);
  }
}

// ---- column edge: the last few columns of a block, vectorised over rows ----
// A block whose width leaves r = n % L columns past its last whole vector (ResNet's 14x14 maps:
// 196 = 4 x 48 + 4) would spend a whole vector of FMAs on those r columns (4 of 16 lanes used).
// With 8-row A panels and 8-float vectors at hand (AVX-512 targets: an A panel's K step is one
// 256-bit vector; as many FLOPs per cycle as 512-bit ones on Zen 4, half on cores with two
// 512-bit FMA units, still twice the 4-of-16-lanes tile), the r columns instead run as
// rows-by-columns tiles: 8-row vectors of up to 6 A panels times up to 4 broadcast B values,
// K step by K step, then merged column by column through merge_span (each element the same
// FMA chain over K and the same merge as in a vector tile, so results do not depend on where
// the edge falls). Up to kEdgeMaxCols columns; wider remainders keep the vector tile.
// Measured at 1 thread (Zen 4): a 1024 -> 256 1x1 conv on 14x14 0.98 -> 0.92 ms (on 12x16, 192
// columns, no edge: 0.89), 256 -> 1024 0.99-1.01 -> 0.94; in ResNet-50 each 14x14-output conv
// 0.05-0.14 ms faster, the per-op sum 65.55 -> 64.81 ms (medians of 4 alternating rounds).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
inline constexpr size_t kEdgeMaxCols = 8;
#else
inline constexpr size_t kEdgeMaxCols = 0;
#endif
// Unused where kEdgeMaxCols is 0 (clang warns).
[[maybe_unused]] inline constexpr size_t kEdgePanels = 6, kEdgeCols = 4;

// Columns of an n-column block taken by edge_kernel (0: none).
HWY_INLINE size_t edge_cols(size_t n, size_t lanes) {
  const size_t r = n % lanes;
  return r <= kEdgeMaxCols ? r : 0;
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
template <size_t RP, size_t T>
HWY_NOINLINE void edge_tile(const float* HWY_RESTRICT a, size_t pstride, const float* HWY_RESTRICT b, size_t bs,
                            size_t kc, float* HWY_RESTRICT tile) {
  static_assert(kMR == 8, "an A panel's K step is one 8-float vector");
  const hn::FixedTag<float, 8> d8;
  using V8 = hn::Vec<decltype(d8)>;
  V8 acc[RP][T];
  for (size_t p = 0; p < RP; ++p)
    for (size_t j = 0; j < T; ++j) acc[p][j] = hn::Zero(d8);
  for (size_t k = 0; k < kc; ++k) {
    V8 av[RP];
#pragma GCC unroll 6
    for (size_t p = 0; p < RP; ++p) av[p] = hn::LoadU(d8, a + p * pstride + k * kMR);
#pragma GCC unroll 4
    for (size_t j = 0; j < T; ++j) {
      const V8 bv = hn::Set(d8, b[k * bs + j]);
#pragma GCC unroll 6
      for (size_t p = 0; p < RP; ++p) acc[p][j] = hn::MulAdd(av[p], bv, acc[p][j]);
    }
  }
  // tile[j][row]: column j's rows contiguous.
  for (size_t j = 0; j < T; ++j)
    for (size_t p = 0; p < RP; ++p) hn::StoreU(acc[p][j], d8, tile + j * kEdgePanels * kMR + p * kMR);
}

template <size_t RP>
HWY_INLINE void edge_tile_cols(size_t t, const float* a, size_t pstride, const float* b, size_t bs, size_t kc,
                               float* tile) {
  switch (t) {
    case 1: edge_tile<RP, 1>(a, pstride, b, bs, kc, tile); break;
    case 2: edge_tile<RP, 2>(a, pstride, b, bs, kc, tile); break;
    case 3: edge_tile<RP, 3>(a, pstride, b, bs, kc, tile); break;
    default: edge_tile<RP, 4>(a, pstride, b, bs, kc, tile); break;
  }
}
#endif

// Columns [0, r) of C (o: block origin at the edge's first column) for rows [0, mc): A panels
// at a (pstride floats apart), B's K rows bs floats apart from b (its first edge column).
void edge_kernel(const float* a, size_t pstride, size_t mc, const float* b, size_t bs, size_t r, size_t kc,
                 float* c, size_t ldc, const float* res, const float* bias, bool bias_per_row, const MergeCtx& m) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  HWY_ALIGN float tile[kEdgeCols * kEdgePanels * kMR];
  for (size_t j0 = 0; j0 < r; j0 += kEdgeCols) {
    const size_t t = std::min(kEdgeCols, r - j0);
    for (size_t r0 = 0; r0 < mc; r0 += kEdgePanels * kMR) {
      const size_t rp = std::min(kEdgePanels, div_up(mc - r0, kMR));
      const float* ap = a + r0 / kMR * pstride;
      const float* bp = b + j0;
      switch (rp) {
        case 1: edge_tile_cols<1>(t, ap, pstride, bp, bs, kc, tile); break;
        case 2: edge_tile_cols<2>(t, ap, pstride, bp, bs, kc, tile); break;
        case 3: edge_tile_cols<3>(t, ap, pstride, bp, bs, kc, tile); break;
        case 4: edge_tile_cols<4>(t, ap, pstride, bp, bs, kc, tile); break;
        case 5: edge_tile_cols<5>(t, ap, pstride, bp, bs, kc, tile); break;
        default: edge_tile_cols<6>(t, ap, pstride, bp, bs, kc, tile); break;
      }
      const size_t rows = std::min(rp * kMR, mc - r0);
      for (size_t j = 0; j < t; ++j) {
        const size_t off = r0 * ldc + j0 + j;
        const float* bj = nullptr;
        if (bias) bj = bias_per_row ? bias + r0 : bias + j0 + j;
        merge_span(tile + j * kEdgePanels * kMR, rows, c + off, ldc, res ? res + off : nullptr, bj,
                   bias_per_row ? 1 : 0, m);
      }
    }
  }
#else
  (void)a, (void)pstride, (void)mc, (void)b, (void)bs, (void)r, (void)kc, (void)c, (void)ldc, (void)res, (void)bias,
      (void)bias_per_row, (void)m;
#endif
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// A whole tile (kMR rows x kNV vectors) and the block's single edge column (n = 48 q + 1: ResNet's
// 7x7 maps, 49 columns) in one K loop: the edge column's 8 rows take one 256-bit FMA per K step
// from the A panel's K step as a vector (as edge_tile does) next to the tile's 24, instead of a
// second pass that streams every A panel from L2 again for 6 FMAs per 7 loads (edge_tile<6, 1>
// ran at ~1/3 of the FMA rate). Same FMA chains and merges as the tile and edge_kernel, so the
// same results. be: the edge column's B at K step 0, bse floats between K steps.
// ResNet-50 (runs alternating inside one process, 120 pairs each): 1 thread, layer 4's conv3s
// 5.3% faster, its downsample 4.5%, its conv1s 1.1%, the model 0.7%; 2 threads (two runs) layer
// 4's 1x1 convs 1.7-3.4%, the model 0.2-0.3%. Outputs byte-identical.
template <bool kPfB>
HWY_NOINLINE void micro_kernel_e1(const float* HWY_RESTRICT ap, const float* HWY_RESTRICT bp, size_t kc, size_t bs,
                                  const float* HWY_RESTRICT be, size_t bse, const TileOut& o, const MergeCtx& m) {
  static_assert(kMR == 8, "an A panel's K step is one 8-float vector");
  const DF d;
  const hn::FixedTag<float, 8> d8;
  const size_t L = hn::Lanes(d);
  constexpr size_t NV = kNV;
  VF acc[kMR][NV];
  for (size_t r = 0; r < kMR; ++r)
    for (size_t v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  auto ae = hn::Zero(d8);
  if (m.first) prefetch_tile_c<NV>(o);
  for (size_t k = 0; k < kc; ++k) {
    if (o.pf && k % kPrefetchEvery == 0) o.pf->issue();
    if constexpr (kPfB) __builtin_prefetch(bp + kPfBRows * bs, 0, 3);
    VF bv[NV];
    for (size_t v = 0; v < NV; ++v) bv[v] = hn::LoadU(d, bp + v * L);
    for (size_t r = 0; r < kMR; ++r) {
      const VF av = hn::Set(d, ap[r]);
      for (size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
    ae = hn::MulAdd(hn::LoadU(d8, ap), hn::Set(d8, be[k * bse]), ae);
    ap += kMR;
    bp += bs;
  }
  merge_tile<NV, kMR>(acc, o, m);
  HWY_ALIGN float et[kMR];
  hn::Store(ae, d8, et);
  const size_t ce = NV * L;
  const float* bias = nullptr;
  if (o.bias) bias = o.bias_per_row ? o.bias : o.bias + ce;
  merge_span(et, kMR, o.c + ce, o.ldc, o.res ? o.res + ce : nullptr, bias, o.bias_per_row ? 1 : 0, m);
}
inline constexpr bool kFuseEdge1 = true;
#else
inline constexpr bool kFuseEdge1 = false;
#endif

// One K block of a C block: rows [0, mc) from A panels (panel stride a_kdim*kMR, this block at
// k offset ka), columns [0, n) from B panels (panel c0 at b + c0*b_kdim, this block at k
// offset kb, widths per panel_width), kc deep. c/res/bias point at the block's origin.
// Column panels outer (default): one B micro-panel stays in L1 while the A panels stream from
// L2. Row panels outer (rows_outer, wide blocks): one A micro-panel stays in L1 while the B
// block streams from L2, and C (and the residual) is written row by row in long runs (kc*NR
// B panels do not fit L1 beside the A stream anyway at kc = 256); at batch 8, where C and the
// residual come from DRAM, that is what the hardware prefetchers follow: ResNet-50's layer1
// conv3 at batch 8 (K = 64, fused residual) 67 -> 86 GFLOP/s. Rows outer also prefetches (RowPrefetch)
// the next row panel's C and residual rows on the first K block (not on AVX2: kRowsOuterNextC).
// Either way b_next (given: the B data the thread reads next, its in-place rows or its next
// packed panel block) is fetched over the whole block's micro-kernel calls.
struct BlockOut {
  float* c;
  size_t ldc;
  const float* res;     // residual at the block origin (C's layout) or nullptr
  const float* bias;    // bias at the block origin or nullptr
  bool bias_per_row;
};

// B read in place (ld != 0): b points at the block's first row and column, rows ld floats apart;
// the panels from column tail_c0 on (the last one, when its width is not a whole number of
// vectors) come packed at `tail`.
struct BInPlace {
  size_t ld = 0;
  const float* tail = nullptr;
  size_t tail_c0 = SIZE_MAX;
};

void macro_block(const float* a, size_t a_kdim, size_t ka, size_t mc, const float* b, size_t b_kdim, size_t kb,
                 size_t n, size_t kc, const BlockOut& o, const MergeCtx& m, bool rows_outer = false,
                 const RowPrefetch* b_next = nullptr, const BInPlace& ip = BInPlace{}) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t NR = kNV * L;
  // Columns [nv, n) go to edge_kernel; the vector tiles cover [0, nv) (whole vectors when there
  // is an edge, reading the panels of the full layout: a packed panel keeps its width).
  const size_t n_edge = edge_cols(n, L), nv = n - n_edge;
  // B micro-panel of columns [c0, c0 + w) and the floats between its K rows.
  auto b_panel = [&](size_t c0, size_t w, size_t* bs) -> const float* {
    *bs = w;
    if (ip.ld == 0) return b + c0 * b_kdim + kb * w;
    if (c0 >= ip.tail_c0) return ip.tail + (c0 - ip.tail_c0) * kc;
    *bs = ip.ld;
    return b + c0;
  };
  // B at the first edge column (column nv), K steps *bs floats apart.
  auto edge_b = [&](size_t* bs) -> const float* {
    const size_t c0 = nv / NR * NR;
    return b_panel(c0, panel_width(n, c0, NR, L), bs) + (nv - c0);
  };
  // The edge column(s) for rows [r_begin, mc) (r_begin a multiple of kMR).
  auto edge = [&](size_t r_begin) {
    if (n_edge == 0 || r_begin >= mc) return;
    size_t bs;
    const float* bp = edge_b(&bs);
    const size_t off = r_begin * o.ldc + nv;
    const float* bias = o.bias ? (o.bias_per_row ? o.bias + r_begin : o.bias + nv) : nullptr;
    edge_kernel(a + r_begin * a_kdim + ka * kMR, a_kdim * kMR, mc - r_begin, bp, bs, n_edge, kc, o.c + off, o.ldc,
                o.res ? o.res + off : nullptr, bias, o.bias_per_row, m);
  };
  HWY_ALIGN float tile[kMR * kNRMax];
  if (rows_outer) {
    // Lines per burst: b_next spread evenly over the block's micro-kernel calls, the next row
    // panel's C and residual over this row panel's.
    Prefetches pf;
    const size_t bursts = div_up(kc, kPrefetchEvery), row_calls = std::max<size_t>(1, div_up(nv, NR));
    if (b_next) {
      pf.s[0] = *b_next;
      pf.s[0].step = div_up(pf.s[0].total(), div_up(mc, kMR) * row_calls * bursts);
    }
    for (size_t r0 = 0; r0 < mc; r0 += kMR) {
      if (kRowsOuterNextC && m.first && r0 + kMR < mc) {
        const size_t next = r0 + kMR, rows = std::min(kMR, mc - next);
        pf.s[1] = row_prefetch(o.c + next * o.ldc, o.ldc, rows, n, true);
        pf.s[1].step = div_up(pf.s[1].total(), row_calls * bursts);
        if (o.res) {
          pf.s[2] = row_prefetch(o.res + next * o.ldc, o.ldc, rows, n, false);
          pf.s[2].step = div_up(pf.s[2].total(), row_calls * bursts);
        }
      }
      for (size_t c0 = 0; c0 < nv; c0 += NR) {
        const size_t w = panel_width(n, c0, NR, L), nr = std::min(NR, nv - c0);
        const size_t off = r0 * o.ldc + c0;
        TileOut t{o.c + off, o.ldc, o.res ? o.res + off : nullptr, nullptr, o.bias_per_row, std::min(kMR, mc - r0), nr};
        if (o.bias) t.bias = o.bias_per_row ? o.bias + r0 : o.bias + c0;
        t.pf = &pf;
        size_t bs;
        const float* bp = b_panel(c0, w, &bs);
        micro_kernel_nv(div_up(nr, L), a + r0 * a_kdim + ka * kMR, bp, kc, bs, t, m, tile);
      }
    }
    edge(0);
    return;
  }
  Prefetches pf;
  const size_t bursts = div_up(kc, kPrefetchEvery), row_calls = div_up(mc, kMR);
  if (b_next) {
    pf.s[0] = *b_next;
    pf.s[0].step = div_up(pf.s[0].total(), std::max<size_t>(1, div_up(nv, NR)) * row_calls * bursts);
  }
  // A single edge column rides along with the last whole panel's whole tiles (micro_kernel_e1).
  size_t edge_from = 0;
  [[maybe_unused]] const float* be = nullptr;
  [[maybe_unused]] size_t bse = 0;
  const size_t c_e1 = kFuseEdge1 && n_edge == 1 && nv % NR == 0 && nv > 0 && kc > 0 ? nv - NR : SIZE_MAX;
  if (c_e1 != SIZE_MAX) {
    be = edge_b(&bse);
    edge_from = mc / kMR * kMR;
  }
  for (size_t c0 = 0; c0 < nv; c0 += NR) {
    const size_t w = panel_width(n, c0, NR, L), nr = std::min(NR, nv - c0);
    size_t bs;
    const float* bp = b_panel(c0, w, &bs);
    for (size_t r0 = 0; r0 < mc; r0 += kMR) {
      const size_t off = r0 * o.ldc + c0;
      TileOut t{o.c + off, o.ldc, o.res ? o.res + off : nullptr, nullptr, o.bias_per_row, std::min(kMR, mc - r0), nr};
      if (o.bias) t.bias = o.bias_per_row ? o.bias + r0 : o.bias + c0;
      if (b_next) {
        t.pf = &pf;
      } else if (c0 == 0 && kc > 0 && r0 + kPfAPanels * kMR < mc) {
        // The first column panel's calls fetch the A micro-panel kPfAPanels ahead (see there).
        pf.s[0] = row_prefetch(a + (r0 + kPfAPanels * kMR) * a_kdim + ka * kMR, 0, 1, kc * kMR, false);
        pf.s[0].step = div_up(pf.s[0].total(), bursts);
        t.pf = &pf;
      }
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
      if (c0 == c_e1 && r0 + kMR <= mc) {
        if (kPfBInPlace && bs > NR)
          micro_kernel_e1<kPfBInPlace>(a + r0 * a_kdim + ka * kMR, bp, kc, bs, be, bse, t, m);
        else
          micro_kernel_e1<false>(a + r0 * a_kdim + ka * kMR, bp, kc, bs, be, bse, t, m);
        continue;
      }
#endif
      micro_kernel_nv(div_up(nr, L), a + r0 * a_kdim + ka * kMR, bp, kc, bs, t, m, tile);
    }
  }
  edge(edge_from);
}

BlockOut block_out(const GemmParams& p, float* cb, const float* rb, size_t i0, size_t j0) {
  const size_t off = i0 * p.ldc + j0;
  BlockOut o{cb + off, p.ldc, rb ? rb + off : nullptr, nullptr, p.ep.bias_per_row};
  if (p.ep.bias) o.bias = p.ep.bias + (p.ep.bias_per_row ? i0 : j0);
  return o;
}

// a_packed == nullptr: A is packed per task from p's strides; otherwise it is pre-packed.
void gemm_blocked(const GemmParams& p, const float* a, const float* a_packed, const float* b, float* c,
                  float* scratch, const Parallel& par) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t NR = kNV * L;
  const Blocking bl = plan_blocking(p, par.threads(), a_packed != nullptr, kMR, NR, L, a_packed ? kKCPrepacked : kKC);
  const size_t per_thread = a_packed ? per_thread_floats_prepacked(p) : per_thread_floats(p);
  const size_t m_blocks = div_up(p.M, bl.mc), n_blocks = div_up(p.N, bl.nc);
  // Pre-packed A needs no A block in scratch (and its mc may exceed the scratch's).
  const size_t a_floats = a_packed ? 0 : round_up(std::max<size_t>(bl.kc, 1) * (bl.mc + kMRMax), 16);
  const size_t n_tasks = p.batch * m_blocks * n_blocks;
  // Pre-packed A (1x1 convs) with wide column blocks: row panels outer, the next B block
  // fetched while this one computes (see macro_block). Narrow blocks (batch 1 at 2 threads:
  // 96-144 columns) keep the B micro-panel in L1: rows outer measured 3-10% slower there. On
  // AVX2 batch 1 keeps it too (kRowsOuterBatch1).
  // Batch 1 with many rows (M >= 256: the conv3s and downsamples of ResNet's bottlenecks) keeps
  // columns outer on one thread, and at more threads where K is one block: ResNet-50 (runs
  // alternating inside one process, 120 pairs, Zen 4) 1 thread 0.54-0.65% faster (layer 3's 1x1
  // convs 1.7-2.5%, layer 2's conv3s 1.2%, layer 1's conv3s and downsample 0.8%), 2 threads 0.5%
  // (layer 3's conv3s 3%, layer 2's 1.8%). Columns outer everywhere at batch 1 cost layer 1's
  // conv1s (M = 64) 1.6% on 1 thread and layer 3's conv1s (K = 1024, then in 4 K blocks of 256)
  // 7-8% on 2; with K blocks of up to 1024 (kKCPrepacked) those are one block and run columns
  // outer at 2 threads too (measured together: layer 3's conv1s 3.5% faster). At batch 8, where
  // C and the residual stream from DRAM, columns outer was 2.2% slower (layer 3's conv3s 8%).
  const bool cols_outer_b1 = p.batch == 1 && p.M >= 256 && (par.threads() == 1 || bl.nkb == 1);
  const bool rows_outer =
      a_packed && bl.nc >= kRowsOuterMinNC && (kRowsOuterBatch1 || p.batch > 1) && !cols_outer_b1;
  // Pre-packed A (1x1 convs) and B's rows contiguous: the micro-kernel reads B's rows where they
  // are instead of a packed copy, except a block's last panel when its width is not a whole
  // number of vectors and edge_kernel does not take the remainder (more than 8 columns, or a
  // target without it), which is packed with its zero columns as before. The same values in the same order, so the same results. ResNet-50's
  // layer1 1x1 convs (56x56) 4-7% faster on 1 thread, 8-15% on 2 threads across two CCDs (the
  // copy read rows another core wrote); its 14x14 1x1 convs ~4% alone (at 2 threads each thread
  // packed the same B for its rows); the whole model within 1% (5-6 alternating rounds).
  const bool b_in_place = a_packed && b_rows_in_place(p);
  // Rows outer (A pre-packed, so B is read in place): the B rows this thread reads next, fetched
  // while this block computes (ResNet-50 batch 8 at 1 thread ~2% faster with it, batch 1 the same).
  const bool prefetch = rows_outer && b_in_place;
  // The source rows of block kb of task `task`'s B (b_cs == 1).
  auto b_rows = [&](size_t task, size_t kb) {
    const size_t nb = task % n_blocks, bi = task / (n_blocks * m_blocks);
    const size_t j0 = nb * bl.nc, k0 = kb * bl.kc;
    const float* src =
        b + static_cast<ptrdiff_t>(bi) * p.b_bs + static_cast<ptrdiff_t>(k0) * p.b_rs + static_cast<ptrdiff_t>(j0);
    return row_prefetch(src, static_cast<size_t>(p.b_rs), std::min(bl.kc, p.K - std::min(p.K, k0)),
                        std::min(bl.nc, p.N - j0), false);
  };

  par.run(n_tasks, [&](size_t task, size_t thread) {
    const size_t nb = task % n_blocks;
    const size_t mb = (task / n_blocks) % m_blocks;
    const size_t bi = task / (n_blocks * m_blocks);
    const size_t i0 = mb * bl.mc, j0 = nb * bl.nc;
    const size_t mc = std::min(bl.mc, p.M - i0), nc = std::min(bl.nc, p.N - j0);
    float* apack = scratch + thread * per_thread;
    float* bpack = apack + a_floats;
    const float* bb = b + static_cast<ptrdiff_t>(bi) * p.b_bs;
    float* cb = c + static_cast<ptrdiff_t>(bi) * p.c_bs;
    const float* rb = p.ep.residual ? p.ep.residual + static_cast<ptrdiff_t>(bi) * p.c_bs : nullptr;
    const BlockOut out = block_out(p, cb, rb, i0, j0);

    for (size_t kb = 0; kb < bl.nkb; ++kb) {
      const size_t k0 = kb * bl.kc;
      const size_t kc = std::min(bl.kc, p.K - std::min(p.K, k0));
      // In place: only a last panel that is not a whole number of vectors (and not the edge's) is packed.
      BInPlace ip;
      if (b_in_place) {
        ip.ld = static_cast<size_t>(p.b_rs);
        const size_t c_last = (nc - 1) / NR * NR;
        if ((nc - c_last) % L != 0 && edge_cols(nc, L) == 0) {
          pack_b(p, bb, k0, kc, j0 + c_last, nc - c_last, NR, bpack);
          ip.tail = bpack;
          ip.tail_c0 = c_last;
        }
      } else {
        pack_b(p, bb, k0, kc, j0, nc, NR, bpack);
      }
      const MergeCtx m{p.alpha, p.beta, kb == 0, kb + 1 == bl.nkb, &p.ep};
      if (a_packed) {
        const float* ab = a_packed + static_cast<ptrdiff_t>(bi) * p.a_bs + k0 * round_up(p.M, kMR) + i0 * kc;
        // Next: this task's next K block, else the first one of the task this thread most
        // likely takes next (the pool's threads work through contiguous ranges of tasks).
        RowPrefetch next;
        if (prefetch) {
          if (kb + 1 < bl.nkb) {
            next = b_rows(task, kb + 1);
          } else if (task + 1 < n_tasks) {
            next = b_rows(task + 1, 0);
          }
        }
        const float* bsrc =
            b_in_place ? bb + static_cast<ptrdiff_t>(k0) * p.b_rs + static_cast<ptrdiff_t>(j0) : bpack;
        macro_block(ab, kc, 0, mc, bsrc, kc, 0, nc, kc, out, m, rows_outer, prefetch ? &next : nullptr, ip);
      } else {
        pack_a(p, a + static_cast<ptrdiff_t>(bi) * p.a_bs, i0, mc, k0, kc, apack);
        macro_block(apack, kc, 0, mc, bpack, kc, 0, nc, kc, out, m);
      }
    }
  });
}

// ---- GEMV ----

// out[o] = sum_k x[k] * rows[o*rs + k], x and each row contiguous.
void dot_rows(const float* HWY_RESTRICT x, size_t K, const float* rows, ptrdiff_t rs, size_t n, float* HWY_RESTRICT out) {
  const DF d;
  const size_t L = hn::Lanes(d);
  size_t o = 0;
  for (; o + 4 <= n; o += 4) {
    const float* r0 = rows + static_cast<ptrdiff_t>(o) * rs;
    const float* r1 = r0 + rs;
    const float* r2 = r1 + rs;
    const float* r3 = r2 + rs;
    VF s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    size_t k = 0;
    for (; k + L <= K; k += L) {
      const VF xv = hn::LoadU(d, x + k);
      s0 = hn::MulAdd(xv, hn::LoadU(d, r0 + k), s0);
      s1 = hn::MulAdd(xv, hn::LoadU(d, r1 + k), s1);
      s2 = hn::MulAdd(xv, hn::LoadU(d, r2 + k), s2);
      s3 = hn::MulAdd(xv, hn::LoadU(d, r3 + k), s3);
    }
    float t0 = hn::GetLane(hn::SumOfLanes(d, s0)), t1 = hn::GetLane(hn::SumOfLanes(d, s1));
    float t2 = hn::GetLane(hn::SumOfLanes(d, s2)), t3 = hn::GetLane(hn::SumOfLanes(d, s3));
    for (; k < K; ++k) {
      t0 += x[k] * r0[k];
      t1 += x[k] * r1[k];
      t2 += x[k] * r2[k];
      t3 += x[k] * r3[k];
    }
    out[o] = t0;
    out[o + 1] = t1;
    out[o + 2] = t2;
    out[o + 3] = t3;
  }
  for (; o < n; ++o) {
    const float* r0 = rows + static_cast<ptrdiff_t>(o) * rs;
    VF s0 = hn::Zero(d), s1 = hn::Zero(d);
    size_t k = 0;
    for (; k + 2 * L <= K; k += 2 * L) {
      s0 = hn::MulAdd(hn::LoadU(d, x + k), hn::LoadU(d, r0 + k), s0);
      s1 = hn::MulAdd(hn::LoadU(d, x + k + L), hn::LoadU(d, r0 + k + L), s1);
    }
    for (; k + L <= K; k += L) s0 = hn::MulAdd(hn::LoadU(d, x + k), hn::LoadU(d, r0 + k), s0);
    float t = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
    for (; k < K; ++k) t += x[k] * r0[k];
    out[o] = t;
  }
}

// out[o] = sum_k x[k*xs] * mat[k*rs + o], each matrix row contiguous over o (n <= kGemvMaxChunk).
// k outer, 4 rows at a time: every row segment is read once, contiguously; the sums stay in out.
void axpy_rows(const float* x, ptrdiff_t xs, size_t K, const float* mat, ptrdiff_t rs, size_t n, float* HWY_RESTRICT out) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t nv = n / L * L;
  std::fill(out, out + n, 0.f);
  size_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const float* r0 = mat + static_cast<ptrdiff_t>(k) * rs;
    const float* r1 = r0 + rs;
    const float* r2 = r1 + rs;
    const float* r3 = r2 + rs;
    const float x0 = x[static_cast<ptrdiff_t>(k) * xs], x1 = x[static_cast<ptrdiff_t>(k + 1) * xs];
    const float x2 = x[static_cast<ptrdiff_t>(k + 2) * xs], x3 = x[static_cast<ptrdiff_t>(k + 3) * xs];
    const VF v0 = hn::Set(d, x0), v1 = hn::Set(d, x1), v2 = hn::Set(d, x2), v3 = hn::Set(d, x3);
    for (size_t o = 0; o < nv; o += L) {
      VF s = hn::MulAdd(v0, hn::LoadU(d, r0 + o), hn::LoadU(d, out + o));
      s = hn::MulAdd(v1, hn::LoadU(d, r1 + o), s);
      s = hn::MulAdd(v2, hn::LoadU(d, r2 + o), s);
      s = hn::MulAdd(v3, hn::LoadU(d, r3 + o), s);
      hn::StoreU(s, d, out + o);
    }
    // Fewer than L columns left: loading a full vector could run past the matrix.
    for (size_t o = nv; o < n; ++o) out[o] = out[o] + x0 * r0[o] + x1 * r1[o] + x2 * r2[o] + x3 * r3[o];
  }
  for (; k < K; ++k) {
    const float* r0 = mat + static_cast<ptrdiff_t>(k) * rs;
    const float x0 = x[static_cast<ptrdiff_t>(k) * xs];
    const VF v0 = hn::Set(d, x0);
    for (size_t o = 0; o < nv; o += L) hn::StoreU(hn::MulAdd(v0, hn::LoadU(d, r0 + o), hn::LoadU(d, out + o)), d, out + o);
    for (size_t o = nv; o < n; ++o) out[o] += x0 * r0[o];
  }
}

void gemm_gemv(const GemmParams& p, GemvKind kind, const float* a, const float* b, float* c, const Parallel& par) {
  const bool m1 = kind == GemvKind::kDotM1 || kind == GemvKind::kAxpyM1;
  const size_t n_out = m1 ? p.N : p.M;
  const size_t want = div_up(n_out, 4 * std::max<size_t>(par.threads(), 1));
  const size_t chunk = std::min(kGemvMaxChunk, std::max<size_t>(64, round_up(want, 64)));
  const size_t n_chunks = div_up(n_out, chunk);
  const size_t cs = m1 ? 1 : p.ldc;
  par.run(p.batch * n_chunks, [&](size_t task, size_t /*thread*/) {
    const size_t bi = task / n_chunks;
    const size_t o0 = (task % n_chunks) * chunk;
    const size_t n = std::min(chunk, n_out - o0);
    const float* ab = a + static_cast<ptrdiff_t>(bi) * p.a_bs;
    const float* bb = b + static_cast<ptrdiff_t>(bi) * p.b_bs;
    HWY_ALIGN float acc[kGemvMaxChunk];
    switch (kind) {
      case GemvKind::kDotM1:
        dot_rows(ab, p.K, bb + static_cast<ptrdiff_t>(o0) * p.b_cs, p.b_cs, n, acc);
        break;
      case GemvKind::kAxpyM1:
        axpy_rows(ab, p.a_cs, p.K, bb + o0, p.b_rs, n, acc);
        break;
      case GemvKind::kDotN1:
        dot_rows(bb, p.K, ab + static_cast<ptrdiff_t>(o0) * p.a_rs, p.a_rs, n, acc);
        break;
      case GemvKind::kAxpyN1:
        axpy_rows(bb, p.b_rs, p.K, ab + o0, p.a_cs, n, acc);
        break;
      case GemvKind::kNone:
        break;
    }
    const ptrdiff_t off = static_cast<ptrdiff_t>(bi) * p.c_bs + static_cast<ptrdiff_t>(o0 * cs);
    const float* res = p.ep.residual ? p.ep.residual + off : nullptr;
    const float* bias = nullptr;
    size_t bias_stride = 0;
    if (p.ep.bias) {
      // Outputs run along N when M == 1 and along M when N == 1.
      const bool along = m1 != p.ep.bias_per_row;
      bias = along ? p.ep.bias + o0 : p.ep.bias;
      bias_stride = along ? 1 : 0;
    }
    const MergeCtx m{p.alpha, p.beta, true, true, &p.ep};
    merge_span(acc, n, c + off, cs, res, bias, bias_stride, m);
  });
}

// ---- small M, B transposed: dot products along K ----

// Register tile: kDotRM rows of A x kDotRN rows of B^T, accumulated along K in vectors.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kDotRM = 8, kDotRN = 3;
#else
constexpr size_t kDotRM = 4, kDotRN = 3;
#endif

// out[r*kDotRN + v] = sum_k a[r*a_rs + k] * brow[v][k], r < RM, v < kDotRN.
template <size_t RM>
HWY_NOINLINE void dot_tile(const float* a, ptrdiff_t a_rs, const float* const* brow, size_t K, float* HWY_RESTRICT out) {
  const DF d;
  const size_t L = hn::Lanes(d);
  VF acc[RM][kDotRN];
#pragma GCC unroll 8
  for (size_t r = 0; r < RM; ++r)
#pragma GCC unroll 3
    for (size_t v = 0; v < kDotRN; ++v) acc[r][v] = hn::Zero(d);
  const float* b0 = brow[0];
  const float* b1 = brow[1];
  const float* b2 = brow[2];
  size_t k = 0;
  for (; k + L <= K; k += L) {
    const VF x0 = hn::LoadU(d, b0 + k), x1 = hn::LoadU(d, b1 + k), x2 = hn::LoadU(d, b2 + k);
#pragma GCC unroll 8
    for (size_t r = 0; r < RM; ++r) {
      const VF av = hn::LoadU(d, a + static_cast<ptrdiff_t>(r) * a_rs + static_cast<ptrdiff_t>(k));
      acc[r][0] = hn::MulAdd(av, x0, acc[r][0]);
      acc[r][1] = hn::MulAdd(av, x1, acc[r][1]);
      acc[r][2] = hn::MulAdd(av, x2, acc[r][2]);
    }
  }
  for (size_t r = 0; r < RM; ++r) {
    const float* ar = a + static_cast<ptrdiff_t>(r) * a_rs;
    for (size_t v = 0; v < kDotRN; ++v) {
      float s = hn::GetLane(hn::SumOfLanes(d, acc[r][v]));
      for (size_t kk = k; kk < K; ++kk) s += ar[kk] * brow[v][kk];  // K tail (< one vector)
      out[r * kDotRN + v] = s;
    }
  }
}

void dot_tile_rows(size_t rm, const float* a, ptrdiff_t a_rs, const float* const* brow, size_t K, float* out) {
  switch (rm) {
    case 1: dot_tile<1>(a, a_rs, brow, K, out); break;
    case 2: dot_tile<2>(a, a_rs, brow, K, out); break;
    case 3: dot_tile<3>(a, a_rs, brow, K, out); break;
    case 4: dot_tile<4>(a, a_rs, brow, K, out); break;
    default:
      if constexpr (kDotRM == 8) {
        switch (rm) {
          case 5: dot_tile<5>(a, a_rs, brow, K, out); break;
          case 6: dot_tile<6>(a, a_rs, brow, K, out); break;
          case 7: dot_tile<7>(a, a_rs, brow, K, out); break;
          default: dot_tile<8>(a, a_rs, brow, K, out); break;
        }
      }
      break;
  }
}

// Tasks: chunks of B rows (output columns); each weight row is read from memory once.
void gemm_dot(const GemmParams& p, const float* a, const float* b, float* c, const Parallel& par) {
  const size_t threads = std::max<size_t>(par.threads(), 1);
  const size_t chunk = std::clamp<size_t>(round_up(div_up(p.N, 4 * threads), kDotRN), kDotRN, 96 * kDotRN);
  const size_t n_chunks = div_up(p.N, chunk);
  par.run(p.batch * n_chunks, [&](size_t task, size_t /*thread*/) {
    const size_t bi = task / n_chunks;
    const size_t j_begin = (task % n_chunks) * chunk, j_end = std::min(p.N, j_begin + chunk);
    const float* ab = a + static_cast<ptrdiff_t>(bi) * p.a_bs;
    const float* bb = b + static_cast<ptrdiff_t>(bi) * p.b_bs;
    float* cb = c + static_cast<ptrdiff_t>(bi) * p.c_bs;
    const float* rb = p.ep.residual ? p.ep.residual + static_cast<ptrdiff_t>(bi) * p.c_bs : nullptr;
    const MergeCtx m{p.alpha, p.beta, true, true, &p.ep};
    float out[kDotRM * kDotRN];
    for (size_t j0 = j_begin; j0 < j_end; j0 += kDotRN) {
      const size_t rn = std::min(kDotRN, j_end - j0);
      const float* brow[kDotRN];
      // Past the last column the tile recomputes the last row (its results are not stored).
      for (size_t v = 0; v < kDotRN; ++v) brow[v] = bb + static_cast<ptrdiff_t>(j0 + std::min(v, rn - 1)) * p.b_cs;
      for (size_t i0 = 0; i0 < p.M; i0 += kDotRM) {
        const size_t rm = std::min(kDotRM, p.M - i0);
        dot_tile_rows(rm, ab + static_cast<ptrdiff_t>(i0) * p.a_rs, p.a_rs, brow, p.K, out);
        const BlockOut o = block_out(p, cb, rb, i0, j0);
        for (size_t r = 0; r < rm; ++r) {
          const float* bias = nullptr;
          size_t bias_stride = 0;
          if (o.bias) {
            bias = o.bias_per_row ? o.bias + r : o.bias;
            bias_stride = o.bias_per_row ? 0 : 1;
          }
          merge_span(out + r * kDotRN, rn, o.c + r * o.ldc, 1, o.res ? o.res + r * o.ldc : nullptr, bias, bias_stride, m);
        }
      }
    }
  });
}

}  // namespace

void gemm_impl(const GemmParams& p, const float* a, const float* b, float* c, float* scratch, const Parallel* par) {
  if (p.M == 0 || p.N == 0 || p.batch == 0) return;
  const GemvKind kind = gemv_kind(p);
  if (kind != GemvKind::kNone) {
    gemm_gemv(p, kind, a, b, c, *par);
  } else if (uses_dot(p)) {
    gemm_dot(p, a, b, c, *par);
  } else {
    gemm_blocked(p, a, nullptr, b, c, scratch, *par);
  }
}

void gemm_prepacked_a_impl(const GemmParams& p, const float* a_packed, const float* b, float* c, float* scratch,
                           const Parallel* par) {
  if (p.M == 0 || p.N == 0 || p.batch == 0) return;
  if (p.M == 1 && p.b_cs == 1) {
    // One panel row: packed A is row 0 with column stride kMR, which the GEMV path takes.
    GemmParams q = p;
    q.a_rs = 1;
    q.a_cs = static_cast<ptrdiff_t>(kMR);
    gemm_impl(q, a_packed, b, c, scratch, par);
    return;
  }
  gemm_blocked(p, nullptr, a_packed, b, c, scratch, *par);
}

void gemm_packed_ab_impl(const GemmParams& p, const float* a_packed, const float* b_packed, float* c, size_t m0,
                         size_t m1) {
  if (m1 <= m0 || p.N == 0) return;
  const size_t L = hn::Lanes(DF()), NR = kNV * L;
  size_t kc = 0, nkb = 0;
  k_blocks(p.K, kKCPrepacked, &kc, &nkb);
  // Column panels outer, K blocks inner: a packed B panel holds all of K (panel c0 at
  // b_packed + c0*K), so each panel is one sequential stream; while one K block computes, the
  // next block of the same panel (or the next panel's first) is fetched into L1. ResNet-50's
  // transposed 7x7 convs read their weights this way from DRAM: 2-5% faster each than K blocks
  // outer with the next panel fetched into L2 (12 chained 2048/512-channel 1x1 convs on 7x7:
  // 13.4 -> 12.8 ms; fetching two blocks ahead 13.0, into L2 13.5-13.8).
  for (size_t i0 = m0; i0 < m1; i0 += kMCPacked) {
    const size_t mc = std::min(kMCPacked, m1 - i0);
    for (size_t c0 = 0; c0 < p.N; c0 += NR) {
      const size_t nq = std::min(NR, p.N - c0), w = panel_width(p.N, c0, NR, L);
      const BlockOut out = block_out(p, c, p.ep.residual, i0, c0);
      for (size_t kb = 0; kb < nkb; ++kb) {
        const size_t k0 = kb * kc;
        const size_t kcb = std::min(kc, p.K - std::min(p.K, k0));
        const MergeCtx m{p.alpha, p.beta, kb == 0, kb + 1 == nkb, &p.ep};
        RowPrefetch next;
        if (kb + 1 < nkb) {
          const size_t k1 = k0 + kcb;
          next = row_prefetch(b_packed + c0 * p.K + k1 * w, 0, 1, std::min(kc, p.K - k1) * w, false);
        } else if (c0 + NR < p.N) {
          const size_t w1 = panel_width(p.N, c0 + NR, NR, L);
          next = row_prefetch(b_packed + (c0 + NR) * p.K, 0, 1, std::min(kc, p.K) * w1, false);
        }
        macro_block(a_packed + k0 * round_up(p.M, kMR) + i0 * kcb, kcb, 0, mc, b_packed + c0 * p.K, p.K, k0, nq, kcb,
                    out, m, false, &next);
      }
    }
  }
}

// Pre-packed A is K-block major: block kb (k0 = kb*kc) at a_packed + k0*round_up(M, kMR), its
// panels back to back, so one K block of a row range is one contiguous stream.
// With `par`, one task per K block (each writes its own contiguous stream).
void gemm_pack_a_impl(const GemmParams& p, const float* a, float* a_packed, const Parallel* par) {
  size_t kc = 0, nkb = 0;
  k_blocks(p.K, kKCPrepacked, &kc, &nkb);
  const size_t m_pad = round_up(p.M, kMR);
  auto block = [&](size_t kb, size_t /*thread*/) {
    const size_t k0 = kb * kc;
    pack_a(p, a, 0, p.M, k0, std::min(kc, p.K - std::min(p.K, k0)), a_packed + k0 * m_pad);
  };
  if (par) {
    par->run(nkb, block);
  } else {
    for (size_t kb = 0; kb < nkb; ++kb) block(kb, 0);
  }
}

// Inverse of gemm_pack_a_impl for a row-major M x K matrix (a_rs = K, a_cs = 1).
void gemm_unpack_a_impl(size_t M, size_t K, const float* a_packed, float* a) {
  size_t kc = 0, nkb = 0;
  k_blocks(K, kKCPrepacked, &kc, &nkb);
  const size_t m_pad = round_up(M, kMR);
  for (size_t kb = 0; kb < nkb; ++kb) {
    const size_t k0 = kb * kc, kcb = std::min(kc, K - std::min(K, k0));
    const float* block = a_packed + k0 * m_pad;
    for (size_t i = 0; i < M; ++i) {
      const size_t r0 = i / kMR * kMR;
      const float* panel = block + r0 * kcb + (i - r0);
      float* row = a + i * K + k0;
      for (size_t k = 0; k < kcb; ++k) row[k] = panel[k * kMR];
    }
  }
}

void gemm_panel_layout_impl(GemmPanelLayout* out) {
  const size_t L = hn::Lanes(DF());
  *out = GemmPanelLayout{kMR, kNV * L, L, kEdgeMaxCols};
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(gemm_impl);
HWY_EXPORT(gemm_prepacked_a_impl);
HWY_EXPORT(gemm_packed_ab_impl);
HWY_EXPORT(gemm_pack_a_impl);
HWY_EXPORT(gemm_unpack_a_impl);
HWY_EXPORT(gemm_panel_layout_impl);

size_t gemm_scratch_floats(const GemmParams& p, size_t threads) {
  if (p.M == 0 || p.N == 0 || p.batch == 0 || gemm_detail::gemv_kind(p) != gemm_detail::GemvKind::kNone ||
      gemm_detail::uses_dot(p))
    return 0;
  return std::max<size_t>(threads, 1) * gemm_detail::per_thread_floats(p);
}

size_t gemm_prepacked_a_scratch_floats(const GemmParams& p, size_t threads) {
  if (p.M == 0 || p.N == 0 || p.batch == 0 || (p.M == 1 && p.b_cs == 1)) return 0;
  return std::max<size_t>(threads, 1) * gemm_detail::per_thread_floats_prepacked(p);
}

void gemm(const GemmParams& p, const float* a, const float* b, float* c, float* scratch, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(gemm_impl)(p, a, b, c, scratch, &par);
}

GemmPanelLayout gemm_panel_layout() {
  GemmPanelLayout l{};
  HWY_DYNAMIC_DISPATCH(gemm_panel_layout_impl)(&l);
  return l;
}

size_t gemm_packed_a_floats(size_t M, size_t K) {
  return round_up(M, gemm_panel_layout().mr) * K;
}

size_t gemm_packed_b_floats(size_t N, size_t K) {
  return round_up(N, gemm_panel_layout().lanes) * K;
}

void gemm_pack_a(const GemmParams& p, const float* a, float* a_packed) {
  HWY_DYNAMIC_DISPATCH(gemm_pack_a_impl)(p, a, a_packed, nullptr);
}

void gemm_pack_a(const GemmParams& p, const float* a, float* a_packed, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(gemm_pack_a_impl)(p, a, a_packed, &par);
}

void gemm_unpack_a(size_t M, size_t K, const float* a_packed, float* a) {
  HWY_DYNAMIC_DISPATCH(gemm_unpack_a_impl)(M, K, a_packed, a);
}

void gemm_prepacked_a(const GemmParams& p, const float* a_packed, const float* b, float* c, float* scratch,
                      const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(gemm_prepacked_a_impl)(p, a_packed, b, c, scratch, &par);
}

void gemm_packed_ab(const GemmParams& p, const float* a_packed, const float* b_packed, float* c, size_t m0,
                    size_t m1) {
  HWY_DYNAMIC_DISPATCH(gemm_packed_ab_impl)(p, a_packed, b_packed, c, m0, m1);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
