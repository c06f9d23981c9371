// Blocked SGEMM: packed panels + Highway register-blocked micro-kernel, GEMV paths for M==1 / N==1.
//
// Blocking (BLIS-style): the C matrix of each batch entry is cut into MC x NC tiles; a tile is
// one Parallel task and is computed completely by one thread (K is never split across threads,
// so results do not depend on the thread count). Inside a task, K is walked in KC blocks: the
// A block (MC x KC) and B block (KC x NC) are packed into the thread's scratch, then the
// micro-kernel computes MR x NR register tiles (NR = kNV vectors).
//   packed A: panels of MR rows, panel[k][r] (k-major, MR contiguous), rows past M are zero;
//   packed B: panels of NR columns, panel[k][c] (NR contiguous), columns past N are zero.
// So edge tiles run the same vector micro-kernel; only their store is partial.
// The epilogue is merged into the store: on the first K block bias and residual are added
// (so the residual may alias C), on the last one the activation is applied.
#include <algorithm>
#include <cstring>

#include "kernels/gemm.h"

#ifndef CONVOY_KERNELS_GEMM_SHARED
#define CONVOY_KERNELS_GEMM_SHARED
namespace convoy::kernels::gemm_detail {

// Upper bounds over all targets (the scratch size is computed once, outside target code).
inline constexpr size_t kMaxLanes = 64;  // floats in the widest vector any target may have
inline constexpr size_t kMRMax = 8;
inline constexpr size_t kNRMax = 3 * kMaxLanes;
inline constexpr size_t kKC = 256;
inline constexpr size_t kMC = 144;  // multiple of every MR (8, 6, 4)
inline constexpr size_t kNC = 480;  // multiple of every NR on x86 (48, 16, 8, 2)

inline size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }
inline size_t round_up(size_t a, size_t b) { return div_up(a, b) * b; }

struct Blocking {
  size_t mc, nc, kc, nkb;
};

// The K blocking depends on K only (it decides the summation order); MC/NC may shrink with the
// thread count to make enough tasks, which does not change any result.
inline Blocking plan_blocking(const GemmParams& p, size_t threads) {
  Blocking b{};
  b.nkb = std::max<size_t>(1, div_up(p.K, kKC));
  b.kc = div_up(p.K, b.nkb);
  b.mc = std::min(kMC, round_up(std::max<size_t>(p.M, 1), 24));
  b.nc = std::min(kNC, round_up(std::max<size_t>(p.N, 1), 48));
  auto tasks = [&] { return p.batch * div_up(p.M, b.mc) * div_up(p.N, b.nc); };
  while (threads > 1 && tasks() < 2 * threads) {
    if (b.nc > 96) {
      b.nc = round_up(b.nc / 2, 48);
    } else if (b.mc > 24) {
      b.mc = round_up(b.mc / 2, 24);
    } else {
      break;
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

struct MergeCtx {
  float alpha, beta;
  bool first, last;  // first / last K block
  const Epilogue* ep;
};

// c[o*cs] = merge(acc[o]) for o < n. First block: alpha*acc + beta*c + bias + residual (c not
// read when beta == 0); later blocks: c + alpha*acc. Last block: activation.
// res points at the residual element matching c[0] (same stride), bias at bias[o*bias_stride].
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

// B k [k0, k0+kc), columns [j0, j0+nc) -> panels of nr_full columns: dst[q][k][c].
void pack_b(const GemmParams& p, const float* b, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr_full,
            float* HWY_RESTRICT dst) {
  for (size_t c0 = 0; c0 < nc; c0 += nr_full) {
    const size_t nr = std::min(nr_full, nc - c0);
    float* panel = dst + c0 * kc;
    const float* src = b + static_cast<ptrdiff_t>(k0) * p.b_rs + static_cast<ptrdiff_t>(j0 + c0) * p.b_cs;
    if (p.b_cs == 1) {
      for (size_t k = 0; k < kc; ++k) {
        float* out = panel + k * nr_full;
        std::memcpy(out, src + static_cast<ptrdiff_t>(k) * p.b_rs, nr * sizeof(float));
        for (size_t c = nr; c < nr_full; ++c) out[c] = 0.f;
      }
      continue;
    }
    for (size_t c = 0; c < nr; ++c) {
      const float* col = src + static_cast<ptrdiff_t>(c) * p.b_cs;
      if (p.b_rs == 1) {
        for (size_t k = 0; k < kc; ++k) panel[k * nr_full + c] = col[k];
      } else {
        for (size_t k = 0; k < kc; ++k) panel[k * nr_full + c] = col[static_cast<ptrdiff_t>(k) * p.b_rs];
      }
    }
    for (size_t k = 0; k < kc; ++k)
      for (size_t c = nr; c < nr_full; ++c) panel[k * nr_full + c] = 0.f;
  }
}

// ---- micro-kernel: tile[kMR][kNV*L] = packed A panel (kc x kMR) * packed B panel (kc x kNV*L) ----
HWY_INLINE void micro_kernel(const float* HWY_RESTRICT ap, const float* HWY_RESTRICT bp, size_t kc,
                             float* HWY_RESTRICT tile) {
  const DF d;
  const size_t L = hn::Lanes(d);
  VF acc[kMR][kNV];
#pragma GCC unroll 8
  for (size_t r = 0; r < kMR; ++r)
#pragma GCC unroll 3
    for (size_t v = 0; v < kNV; ++v) acc[r][v] = hn::Zero(d);
  for (size_t k = 0; k < kc; ++k) {
    VF bv[kNV];
#pragma GCC unroll 3
    for (size_t v = 0; v < kNV; ++v) bv[v] = hn::LoadU(d, bp + v * L);
#pragma GCC unroll 8
    for (size_t r = 0; r < kMR; ++r) {
      const VF av = hn::Set(d, ap[r]);
#pragma GCC unroll 3
      for (size_t v = 0; v < kNV; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
    ap += kMR;
    bp += kNV * L;
  }
#pragma GCC unroll 8
  for (size_t r = 0; r < kMR; ++r)
#pragma GCC unroll 3
    for (size_t v = 0; v < kNV; ++v) hn::StoreU(acc[r][v], d, tile + (r * kNV + v) * L);
}

void gemm_blocked(const GemmParams& p, const float* a, const float* b, float* c, float* scratch, const Parallel& par) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t NR = kNV * L;
  const Blocking bl = plan_blocking(p, par.threads());
  const size_t per_thread = per_thread_floats(p);
  const size_t m_blocks = div_up(p.M, bl.mc), n_blocks = div_up(p.N, bl.nc);
  const size_t a_floats = round_up(std::max<size_t>(bl.kc, 1) * (bl.mc + kMRMax), 16);

  par.run(p.batch * m_blocks * n_blocks, [&](size_t task, size_t thread) {
    const size_t nb = task % n_blocks;
    const size_t mb = (task / n_blocks) % m_blocks;
    const size_t bi = task / (n_blocks * m_blocks);
    const size_t i0 = mb * bl.mc, j0 = nb * bl.nc;
    const size_t mc = std::min(bl.mc, p.M - i0), nc = std::min(bl.nc, p.N - j0);
    float* apack = scratch + thread * per_thread;
    float* bpack = apack + a_floats;
    const float* ab = a + static_cast<ptrdiff_t>(bi) * p.a_bs;
    const float* bb = b + static_cast<ptrdiff_t>(bi) * p.b_bs;
    float* cb = c + static_cast<ptrdiff_t>(bi) * p.c_bs;
    const float* rb = p.ep.residual ? p.ep.residual + static_cast<ptrdiff_t>(bi) * p.c_bs : nullptr;
    HWY_ALIGN float tile[kMR * kNRMax];

    for (size_t kb = 0; kb < bl.nkb; ++kb) {
      const size_t k0 = kb * bl.kc;
      const size_t kc = std::min(bl.kc, p.K - std::min(p.K, k0));
      pack_b(p, bb, k0, kc, j0, nc, NR, bpack);
      pack_a(p, ab, i0, mc, k0, kc, apack);
      const MergeCtx m{p.alpha, p.beta, kb == 0, kb + 1 == bl.nkb, &p.ep};
      for (size_t r0 = 0; r0 < mc; r0 += kMR) {
        const size_t mr = std::min(kMR, mc - r0);
        for (size_t c0 = 0; c0 < nc; c0 += NR) {
          const size_t nr = std::min(NR, nc - c0);
          micro_kernel(apack + r0 * kc, bpack + c0 * kc, kc, tile);
          for (size_t r = 0; r < mr; ++r) {
            const size_t i = i0 + r0 + r, j = j0 + c0;
            const size_t off = i * p.ldc + j;
            const float* bias = nullptr;
            size_t bias_stride = 0;
            if (p.ep.bias) {
              bias = p.ep.bias_per_row ? p.ep.bias + i : p.ep.bias + j;
              bias_stride = p.ep.bias_per_row ? 0 : 1;
            }
            merge_span(tile + r * NR, nr, cb + off, 1, rb ? rb + off : nullptr, bias, bias_stride, m);
          }
        }
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

}  // namespace

void gemm_impl(const GemmParams& p, const float* a, const float* b, float* c, float* scratch, const Parallel* par) {
  if (p.M == 0 || p.N == 0 || p.batch == 0) return;
  const GemvKind kind = gemv_kind(p);
  if (kind != GemvKind::kNone) {
    gemm_gemv(p, kind, a, b, c, *par);
  } else {
    gemm_blocked(p, a, b, c, scratch, *par);
  }
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(gemm_impl);

size_t gemm_scratch_floats(const GemmParams& p, size_t threads) {
  if (p.M == 0 || p.N == 0 || p.batch == 0 || gemm_detail::gemv_kind(p) != gemm_detail::GemvKind::kNone) return 0;
  return std::max<size_t>(threads, 1) * gemm_detail::per_thread_floats(p);
}

void gemm(const GemmParams& p, const float* a, const float* b, float* c, float* scratch, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(gemm_impl)(p, a, b, c, scratch, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
