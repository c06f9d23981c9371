#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/targets_threads.h"
#include "reference/gemm_ref.h"

using namespace convoy;
using kernels::Activation;
using kernels::GemmParams;

namespace {

struct Case {
  size_t M, N, K, batch = 1;
  bool ta = false, tb = false;  // A / B stored transposed
  size_t a_step = 1;            // extra column stride for A (1 = contiguous k or i)
  float alpha = 1.f, beta = 0.f;
  int bias = 0;                 // 0 none, 1 per row, 2 per column
  bool residual = false;
  bool residual_in_c = false;   // residual aliases C (beta must be 0)
  Activation act = Activation::kNone;
  bool shared_b = false;        // B batch stride 0
  bool prepacked = false;       // A packed with gemm_pack_a, run by gemm_prepacked_a
};

std::string describe(const Case& c) {
  return "M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         " batch=" + std::to_string(c.batch) + " ta=" + std::to_string(c.ta) + " tb=" + std::to_string(c.tb) +
         " a_step=" + std::to_string(c.a_step) + " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta) +
         " bias=" + std::to_string(c.bias) + " res=" + std::to_string(c.residual) +
         " res_in_c=" + std::to_string(c.residual_in_c) + " act=" + std::to_string(static_cast<int>(c.act)) +
         " prepacked=" + std::to_string(c.prepacked);
}

// Runs one case on the current target with 1, 3 and 16 threads (more than the makespan search's
// 4: the byte-model grid); checks the reference and that every thread count gives the same bits.
void run_case(const Case& cs, std::mt19937& rng) {
  INFO(describe(cs));
  GemmParams p;
  p.M = cs.M;
  p.N = cs.N;
  p.K = cs.K;
  p.batch = cs.batch;
  // Leading dimensions padded by 3 so that strides are not the logical sizes.
  if (cs.ta) {
    p.a_rs = 1 * static_cast<ptrdiff_t>(cs.a_step);
    p.a_cs = static_cast<ptrdiff_t>((cs.M * cs.a_step) + 3);
  } else {
    p.a_cs = static_cast<ptrdiff_t>(cs.a_step);
    p.a_rs = static_cast<ptrdiff_t>(cs.K * cs.a_step + 3);
  }
  const size_t a_span = cs.ta ? static_cast<size_t>(p.a_cs) * cs.K : static_cast<size_t>(p.a_rs) * cs.M;
  p.a_bs = static_cast<ptrdiff_t>(a_span);
  if (cs.tb) {
    p.b_rs = 1;
    p.b_cs = static_cast<ptrdiff_t>(cs.K + 2);
  } else {
    p.b_cs = 1;
    p.b_rs = static_cast<ptrdiff_t>(cs.N + 2);
  }
  const size_t b_span = cs.tb ? static_cast<size_t>(p.b_cs) * cs.N : static_cast<size_t>(p.b_rs) * cs.K;
  p.b_bs = cs.shared_b ? 0 : static_cast<ptrdiff_t>(b_span);
  p.ldc = cs.N + 5;
  p.c_bs = static_cast<ptrdiff_t>(p.ldc * cs.M + 7);
  p.alpha = cs.alpha;
  p.beta = cs.beta;
  const size_t c_size = static_cast<size_t>(p.c_bs) * cs.batch;

  // Exact-size buffers (no padding after them): a vector overread would show under ASan.
  const auto a = kernel_test::random_floats(rng, std::max<size_t>(a_span * cs.batch, 1), -1.f, 1.f);
  const auto b = kernel_test::random_floats(rng, std::max<size_t>(cs.shared_b ? b_span : b_span * cs.batch, 1), -1.f, 1.f);
  std::vector<float> c0 = kernel_test::random_floats(rng, c_size, -1.f, 1.f);
  const auto bias = kernel_test::random_floats(rng, cs.bias == 2 ? cs.N : cs.M, -1.f, 1.f);
  const auto res = kernel_test::random_floats(rng, c_size, -1.f, 1.f);
  if (cs.bias) {
    p.ep.bias = bias.data();
    p.ep.bias_per_row = cs.bias == 1;
  }
  if (cs.residual) p.ep.residual = res.data();
  p.ep.act = cs.act;
  p.ep.alpha = cs.act == Activation::kClip ? -0.5f : 0.1f;
  p.ep.beta = 0.75f;
  if (cs.beta == 0.f && !cs.residual_in_c) std::fill(c0.begin(), c0.end(), std::numeric_limits<float>::quiet_NaN());
  if (cs.residual_in_c) c0 = res;

  std::vector<double> want, mag;
  kernels::GemmParams pr = p;
  if (cs.residual_in_c) pr.ep.residual = res.data();
  ref::gemm_ref(pr, a.data(), b.data(), c0.data(), want, mag);

  // Pre-packed A: every batch entry packed on its own, entries back to back.
  std::vector<float> a_packed;
  const size_t a_packed_floats = kernels::gemm_packed_a_floats(cs.M, cs.K);
  if (cs.prepacked) {
    a_packed.assign(std::max<size_t>(a_packed_floats * cs.batch, 1), std::numeric_limits<float>::quiet_NaN());
    for (size_t bi = 0; bi < cs.batch; ++bi)
      kernels::gemm_pack_a(p, a.data() + bi * a_span, a_packed.data() + bi * a_packed_floats);
  }
  std::vector<float> got[3];
  const size_t threads[3] = {1, 3, 16};
  for (int t = 0; t < 3; ++t) {
    got[t] = c0;
    GemmParams q = p;
    if (cs.residual_in_c) q.ep.residual = got[t].data();
    if (cs.prepacked) {
      q.a_bs = static_cast<ptrdiff_t>(a_packed_floats);
      std::vector<float> scratch(std::max<size_t>(kernels::gemm_prepacked_a_scratch_floats(q, threads[t]), 1));
      if (t == 0) {
        kernels::gemm_prepacked_a(q, a_packed.data(), b.data(), got[t].data(), scratch.data(), kernels::SerialParallel());
      } else {
        kernels::gemm_prepacked_a(q, a_packed.data(), b.data(), got[t].data(), scratch.data(),
                                  kernel_test::ThreadParallel(threads[t]));
      }
      continue;
    }
    std::vector<float> scratch(std::max<size_t>(kernels::gemm_scratch_floats(q, threads[t]), 1));
    if (t == 0) {
      kernels::gemm(q, a.data(), b.data(), got[t].data(), scratch.data(), kernels::SerialParallel());
    } else {
      kernels::gemm(q, a.data(), b.data(), got[t].data(), scratch.data(), kernel_test::ThreadParallel(threads[t]));
    }
  }
  const double eps = std::numeric_limits<float>::epsilon();
  bool ok = true;
  for (size_t bi = 0; bi < cs.batch && ok; ++bi)
    for (size_t i = 0; i < cs.M && ok; ++i)
      for (size_t j = 0; j < cs.N && ok; ++j) {
        const size_t r = (bi * cs.M + i) * cs.N + j;
        const size_t ci = bi * static_cast<size_t>(p.c_bs) + i * p.ldc + j;
        const double tol = 1e-6 + 2.0 * eps * static_cast<double>(cs.K + 4) * mag[r];
        if (!(std::fabs(got[0][ci] - want[r]) <= tol)) {
          FAIL_CHECK("batch ", bi, " (", i, ",", j, ") got ", got[0][ci], " expected ", want[r], " tol ", tol);
          ok = false;
        }
      }
  // Elements between rows / batches (ldc and batch padding) are never written.
  for (size_t bi = 0; bi < cs.batch && ok; ++bi)
    for (size_t i = 0; i < cs.M && ok; ++i)
      for (size_t j = cs.N; j < p.ldc && i * p.ldc + j < static_cast<size_t>(p.c_bs); ++j) {
        const size_t ci = bi * static_cast<size_t>(p.c_bs) + i * p.ldc + j;
        if (std::memcmp(&got[0][ci], &c0[ci], sizeof(float)) != 0) {
          FAIL_CHECK("wrote outside C at batch ", bi, " row ", i, " col ", j);
          ok = false;
          break;
        }
      }
  CHECK(std::memcmp(got[0].data(), got[1].data(), c_size * sizeof(float)) == 0);
  CHECK(std::memcmp(got[0].data(), got[2].data(), c_size * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("gemm: odd sizes, transposes, every target, 1, 3 and 16 threads") {
  std::mt19937 rng(kernel_test::test_seed("gemm sizes"));
  const size_t sizes[] = {1, 2, 7, 15, 16, 17, 13, 49, 127};
  kernel_test::for_each_target([&](const char*) {
    for (size_t M : sizes)
      for (size_t N : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{50}}) {
        Case c;
        c.M = M;
        c.N = N;
        c.K = (M * 7 + N) % 37 + 1;
        c.ta = (M + N) % 2 == 1;
        c.tb = (M / 2 + N) % 2 == 1;
        run_case(c, rng);
      }
  });
}

TEST_CASE("gemm: several K blocks, tiles past the block sizes, batch") {
  std::mt19937 rng(kernel_test::test_seed("gemm large"));
  kernel_test::for_each_target([&](const char* name) {
    const bool slow = std::string(name) == "SCALAR";
    Case c;
    c.M = 151;
    c.N = 497;
    c.K = 600;  // 3 K blocks
    c.bias = 1;
    c.residual = true;
    c.act = Activation::kRelu;
    c.beta = 0.5f;
    if (slow) {
      c.M = 37;
      c.N = 101;
    }
    run_case(c, rng);
    Case d;
    d.M = 65;
    d.N = 70;
    d.K = 257;
    d.batch = 3;
    d.ta = true;
    d.tb = true;
    d.alpha = -1.5f;
    d.beta = 2.f;
    d.bias = 2;
    d.act = Activation::kClip;
    run_case(d, rng);
    d.shared_b = true;
    d.ta = false;
    d.a_step = 2;
    d.beta = 0.f;
    d.act = Activation::kLeakyRelu;
    run_case(d, rng);
  });
}

TEST_CASE("gemm: every epilogue variant and alpha/beta") {
  std::mt19937 rng(kernel_test::test_seed("gemm epilogue"));
  kernel_test::for_each_target([&](const char*) {
    for (int bias = 0; bias < 3; ++bias)
      for (int res = 0; res < 3; ++res)
        for (Activation act : {Activation::kNone, Activation::kRelu, Activation::kLeakyRelu, Activation::kClip})
          for (float beta : {0.f, 1.f, -0.5f}) {
            if (res == 2 && beta != 0.f) continue;
            Case c;
            c.M = 19;
            c.N = 35;
            c.K = 300;
            c.batch = 2;
            c.alpha = 0.75f;
            c.beta = beta;
            c.bias = bias;
            c.residual = res == 1;
            c.residual_in_c = res == 2;
            c.act = act;
            run_case(c, rng);
          }
  });
}

TEST_CASE("gemm: GEMV shapes (M == 1 or N == 1), all layouts") {
  std::mt19937 rng(kernel_test::test_seed("gemm gemv"));
  kernel_test::for_each_target([&](const char*) {
    for (size_t n : {size_t{1}, size_t{3}, size_t{16}, size_t{17}, size_t{63}, size_t{130}, size_t{2500}})
      for (size_t K : {size_t{1}, size_t{15}, size_t{16}, size_t{33}, size_t{700}})
        for (int layout = 0; layout < 4; ++layout) {
          Case c;
          const bool m1 = layout < 2;
          c.M = m1 ? 1 : n;
          c.N = m1 ? n : 1;
          c.K = K;
          c.ta = layout == 3;
          c.tb = layout == 1;
          c.bias = static_cast<int>((n + K) % 3);
          c.residual = (n + K) % 2 == 0;
          c.act = Activation::kRelu;
          c.beta = K % 2 ? 0.f : 0.5f;
          c.batch = n > 1000 ? 1 : 2;
          run_case(c, rng);
        }
    // A strided row vector with a transposed B takes the blocked path.
    Case c;
    c.M = 1;
    c.N = 40;
    c.K = 50;
    c.a_step = 3;
    c.tb = true;
    run_case(c, rng);
  });
}

TEST_CASE("gemm: K == 0 gives beta*C + epilogue") {
  std::mt19937 rng(kernel_test::test_seed("gemm k0"));
  kernel_test::for_each_target([&](const char*) {
    Case c;
    c.M = 9;
    c.N = 20;
    c.K = 0;
    c.beta = 0.5f;
    c.bias = 1;
    run_case(c, rng);
  });
}

TEST_CASE("gemm: few rows with B transposed (fully connected at small batch)") {
  std::mt19937 rng(kernel_test::test_seed("gemm dot"));
  kernel_test::for_each_target([&](const char*) {
    for (size_t M : {size_t{2}, size_t{3}, size_t{5}, size_t{8}, size_t{9}, size_t{16}})
      for (size_t N : {size_t{2}, size_t{3}, size_t{4}, size_t{7}, size_t{50}, size_t{301}})
        for (size_t K : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{100}}) {
          Case c;
          c.M = M;
          c.N = N;
          c.K = K;
          c.tb = true;
          c.bias = static_cast<int>((M + N + K) % 3);
          c.residual = (M + K) % 2 == 0;
          c.act = (N % 2) ? Activation::kRelu : Activation::kNone;
          c.beta = K % 2 ? 0.f : 0.5f;
          c.alpha = M == 9 ? 2.f : 1.f;
          c.batch = N == 7 ? 2 : 1;
          run_case(c, rng);
        }
  });
}

TEST_CASE("gemm: pre-packed A (conv weights), sizes around the tiles, batch, 1, 3 and 16 threads") {
  std::mt19937 rng(kernel_test::test_seed("gemm prepacked"));
  kernel_test::for_each_target([&](const char* name) {
    const bool slow = std::string(name) == "SCALAR";
    for (size_t M : {size_t{1}, size_t{5}, size_t{8}, size_t{9}, size_t{25}, size_t{150}})
      for (size_t N : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{49}, size_t{100}, size_t{500}})
        for (size_t K : {size_t{1}, size_t{17}, size_t{300}}) {
          if (slow && M * N * K > 200000) continue;
          Case c;
          c.M = M;
          c.N = N;
          c.K = K;
          c.prepacked = true;
          c.ta = (M + N) % 2 == 0;  // packing reads any A layout
          c.bias = static_cast<int>((M + N) % 3);
          c.residual = (N + K) % 2 == 1;
          c.act = Activation::kRelu;
          c.batch = N == 17 ? 3 : 1;
          c.shared_b = N == 17 && K == 17;
          run_case(c, rng);
        }
    // One row and a transposed B: the blocked path, not a GEMV.
    Case c;
    c.M = 1;
    c.N = 40;
    c.K = 50;
    c.tb = true;
    c.prepacked = true;
    run_case(c, rng);
    // More rows than one pre-packed A block: balanced row blocks.
    Case big;
    big.M = slow ? 97 : 1001;
    big.N = 20;
    big.K = 40;
    big.prepacked = true;
    big.bias = 1;
    big.act = Activation::kRelu;
    run_case(big, rng);
  });
}

// The 1x1-conv shapes (A pre-packed): column blocks of 240 and more columns run row panels
// outer and fetch the next B block (the task's next K block, or the next task's first) while
// they compute; all M in one row block up to 1056 rows, two past it. Odd row lengths (b_rs =
// N + 2) start B rows off cache lines; the last column block is partial. The micro-kernel reads
// B's rows in place; a last panel that is not a whole number of vectors (241, 250, 481, 500,
// 977 columns on AVX-512) comes packed. K = 1300 and 2100 take several K blocks on every target
// (pre-packed A is K-block major: up to 1024 deep on AVX-512, 256 elsewhere).
TEST_CASE("gemm: pre-packed A, wide column blocks (rows outer, B prefetched), batch, 1, 3 and 16 threads") {
  std::mt19937 rng(kernel_test::test_seed("gemm prepacked wide"));
  kernel_test::for_each_target([&](const char* name) {
    const bool slow = std::string(name) == "SCALAR";
    struct Shape {
      size_t M, N, K, batch;
    };
    const Shape shapes[] = {{37, 241, 64, 3}, {70, 500, 600, 2}, {9, 977, 300, 2}, {64, 1200, 17, 4},
                            {1100, 250, 20, 1}, {200, 480, 257, 1}, {8, 481, 1, 2},   {40, 784, 300, 2},
                            {24, 1536, 64, 1}, {40, 300, 1300, 1}, {16, 250, 2100, 2}};
    for (const Shape& s : shapes) {
      if (slow && s.M * s.N * s.K * s.batch > 2000000) continue;
      for (int variant = 0; variant < 2; ++variant) {
        Case c;
        c.M = s.M;
        c.N = s.N;
        c.K = s.K;
        c.batch = s.batch;
        c.prepacked = true;
        c.bias = 1;
        c.residual = variant == 0;
        c.act = Activation::kRelu;
        c.shared_b = variant == 1 && s.batch > 1;
        c.beta = variant == 1 ? 0.5f : 0.f;
        run_case(c, rng);
      }
    }
  });
}

// Every height of a last, partial row panel (the micro-kernel computes 1, 2, 4 or all rows of
// it): M = 1 .. 2 panels + 1, whole and partial column tiles, one and two K blocks (K = 1100 for
// pre-packed A on AVX-512, whose blocks are up to 1024 deep), the epilogue merged from registers
// and through the tile buffer.
TEST_CASE("gemm: every partial row panel height, 1, 3 and 16 threads") {
  std::mt19937 rng(kernel_test::test_seed("gemm row edges"));
  kernel_test::for_each_target([&](const char*) {
    const size_t mr = kernels::gemm_panel_layout().mr;
    for (size_t M = 2; M <= 2 * mr + 1; ++M)
      for (size_t N : {size_t{16}, size_t{49}, size_t{97}})
        for (size_t K : {size_t{37}, size_t{300}, size_t{1100}}) {
          Case c;
          c.M = M;
          c.N = N;
          c.K = K;
          c.prepacked = (M + N) % 2 == 0;
          c.bias = static_cast<int>(M % 3);
          c.residual = (M + K) % 2 == 1;
          c.beta = K == 37 && !c.residual ? 0.5f : 0.f;
          c.act = Activation::kRelu;
          run_case(c, rng);
        }
  });
}

// Column edges: a block whose width leaves 1-8 columns past its last whole vector runs those
// columns vectorised over rows (kernels/gemm.cpp edge_kernel on AVX-512: 8-row panels x up to 4
// columns, up to 6 panels at a time); 9-15 keep the vector tile. Every remainder, row counts
// around 1-7 panels, one and two K blocks (K = 1100 for pre-packed A on AVX-512), bias per row
// and per column, residual, in place (pre-packed A, B rows read where they are) and packed.
TEST_CASE("gemm: column edges (1-15 columns past a whole vector), every row count, 1, 3 and 16 threads") {
  std::mt19937 rng(kernel_test::test_seed("gemm column edges"));
  kernel_test::for_each_target([&](const char* name) {
    const bool slow = std::string(name) == "SCALAR";
    const size_t L = kernels::gemm_panel_layout().lanes;
    for (size_t r = 1; r < 16; ++r)
      for (size_t M : {size_t{1}, size_t{8}, size_t{13}, size_t{48}, size_t{57}, size_t{100}})
        for (size_t K : {size_t{37}, size_t{300}, size_t{1100}}) {
          const size_t N = (r % 3 == 0 ? 3 * L : L) + r;
          if (slow && M * N * K > 200000) continue;
          Case c;
          c.M = M;
          c.N = N;
          c.K = K;
          c.prepacked = (r + M) % 2 == 0;
          c.bias = static_cast<int>(1 + (r + K) % 2);
          c.residual = (M + r) % 3 != 0;
          c.act = Activation::kRelu;
          c.batch = M == 13 ? 2 : 1;
          run_case(c, rng);
        }
  });
}

// One edge column past whole 3-vector panels (ResNet's 7x7 maps: 49 = 48 + 1): on AVX-512 it
// rides along with the last whole panel's whole tiles (micro_kernel_e1) and the rows past the
// last whole panel take edge_kernel. Row counts with and without such rows, one and two K
// blocks (K = 300: two of the generic path's 256; K = 1100: two of the pre-packed path's 1024 on
// AVX-512), every bias kind, residual, alpha / beta (the tile's generic merge), in place and packed.
TEST_CASE("gemm: one edge column beside whole panels (N = 3qL + 1), 1, 3 and 16 threads") {
  std::mt19937 rng(kernel_test::test_seed("gemm edge column"));
  kernel_test::for_each_target([&](const char* name) {
    const bool slow = std::string(name) == "SCALAR";
    const size_t L = kernels::gemm_panel_layout().lanes;
    for (size_t q : {size_t{1}, size_t{2}})
      for (size_t M : {size_t{8}, size_t{13}, size_t{48}, size_t{64}, size_t{100}})
        for (size_t K : {size_t{37}, size_t{300}, size_t{1100}})
          for (int variant = 0; variant < 3; ++variant) {
            const size_t N = 3 * q * L + 1;
            if (slow && M * N * K > 200000) continue;
            Case c;
            c.M = M;
            c.N = N;
            c.K = K;
            c.prepacked = variant != 2;
            c.bias = static_cast<int>((M + variant) % 3);
            c.residual = variant == 1;
            c.act = (K + variant) % 2 == 0 ? Activation::kRelu : Activation::kNone;
            if (variant == 2) {
              c.alpha = 0.5f;
              c.beta = 0.25f;
            }
            c.batch = M == 13 ? 2 : 1;
            run_case(c, rng);
          }
  });
}

// gemm_packed_ab with B packed here, by the layout documented in kernels/gemm.h, and C rows
// computed in two calls split at a panel boundary.
TEST_CASE("gemm: packed A x packed B, row ranges") {
  std::mt19937 rng(kernel_test::test_seed("gemm packed ab"));
  kernel_test::for_each_target([&](const char*) {
    const kernels::GemmPanelLayout lay = kernels::gemm_panel_layout();
    for (size_t M : {size_t{3}, size_t{17}, size_t{260}})
      for (size_t N : {size_t{1}, size_t{17}, size_t{49}, size_t{97}, size_t{300}})
        for (size_t K : {size_t{5}, size_t{290}, size_t{1100}}) {
          INFO("M=", M, " N=", N, " K=", K);
          GemmParams p;
          p.M = M;
          p.N = N;
          p.K = K;
          p.a_rs = static_cast<ptrdiff_t>(K);
          p.b_rs = static_cast<ptrdiff_t>(N);
          p.ldc = N + 3;
          p.alpha = 1.f;
          const auto a = kernel_test::random_floats(rng, M * K, -1.f, 1.f);
          const auto b = kernel_test::random_floats(rng, K * N, -1.f, 1.f);
          const auto bias = kernel_test::random_floats(rng, M, -1.f, 1.f);
          const auto res = kernel_test::random_floats(rng, M * p.ldc, -1.f, 1.f);
          p.ep.bias = bias.data();
          p.ep.residual = res.data();
          p.ep.act = Activation::kRelu;
          std::vector<double> want, mag;
          ref::gemm_ref(p, a.data(), b.data(), nullptr, want, mag);

          std::vector<float> ap(kernels::gemm_packed_a_floats(M, K));
          kernels::gemm_pack_a(p, a.data(), ap.data());
          // Packing with its K blocks as parallel tasks writes the same floats.
          std::vector<float> ap3(ap.size(), std::numeric_limits<float>::quiet_NaN());
          kernels::gemm_pack_a(p, a.data(), ap3.data(), kernel_test::ThreadParallel(3));
          CHECK(std::memcmp(ap.data(), ap3.data(), ap.size() * sizeof(float)) == 0);
          std::vector<float> bp(kernels::gemm_packed_b_floats(N, K), std::numeric_limits<float>::quiet_NaN());
          size_t used = 0;
          for (size_t q0 = 0; q0 < N; q0 += lay.nr) {
            const size_t nq = std::min(lay.nr, N - q0);
            const size_t w = std::min(lay.nr, (nq + lay.lanes - 1) / lay.lanes * lay.lanes);
            for (size_t k = 0; k < K; ++k)
              for (size_t c = 0; c < w; ++c) bp[q0 * K + k * w + c] = c < nq ? b[k * N + q0 + c] : 0.f;
            used = q0 * K + K * w;
          }
          CHECK(used <= bp.size());
          std::vector<float> got(M * p.ldc, std::numeric_limits<float>::quiet_NaN());
          const size_t split = std::min(M, lay.mr * 2);
          kernels::gemm_packed_ab(p, ap.data(), bp.data(), got.data(), 0, split);
          kernels::gemm_packed_ab(p, ap.data(), bp.data(), got.data(), split, M);
          const double eps = std::numeric_limits<float>::epsilon();
          for (size_t i = 0; i < M; ++i)
            for (size_t j = 0; j < N; ++j) {
              const double tol = 1e-6 + 2.0 * eps * static_cast<double>(K + 4) * mag[i * N + j];
              if (!(std::fabs(got[i * p.ldc + j] - want[i * N + j]) <= tol)) {
                FAIL_CHECK("(", i, ",", j, ") got ", got[i * p.ldc + j], " expected ", want[i * N + j]);
                return;
              }
            }
        }
  });
}
