// Direct convolution for few input channels (kernels/conv_direct.h) against the naive double
// reference (tests/reference/conv2d_ref.h): map widths 1-37 around the vector and register-tile
// widths, output channels 1-70 around the channel tile and the weight panel, kernels 1x1 to 7x7,
// pads 0-2 and asymmetric, C = 1-4, batch 1 and 3, bias, residual, every activation, every
// compiled target, 1 vs 3 threads bit-identical; large outputs (the streamed stores); the
// packing gives the weights back bit for bit. KW = 3 (the 1-D Winograd F(2,3) path of the
// AVX-512 targets): widths 1-70 around the pair vector (2 L pixels) with KH 1-5, and a bound
// that covers its transforms (wino_bound).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv_direct.h"
#include "kernels/conv_case.h"
#include "kernels/conv_operands.h"
#include "kernels/targets_threads.h"
#include "reference/conv2d_ref.h"

using namespace convoy;
using kernels::Activation;
using kernels::Conv2dParams;

namespace {

struct Case {
  size_t N, C, H, W, M, KH, KW;
  size_t pt, pl, pb, pr;
  bool bias, residual;
  Activation act;
};

kernel_test::ConvShape shape(const Case& c) {
  return {c.N, c.C, c.H, c.W, c.M, c.KH, c.KW, 1, 1, 1, c.pt, c.pl, c.pb, c.pr, 1, 1};
}

std::string describe(const Case& c) { return kernel_test::describe(shape(c), c.bias, c.residual, c.act); }

Conv2dParams params(const Case& c) { return kernel_test::conv_params(shape(c)); }

// A float vector whose data starts 64 B-aligned (as the arena's) plus `shift` floats, followed
// by at least 16 more floats.
struct Buffer {
  std::vector<float> storage;
  float* data;
  Buffer(size_t n, size_t shift, float fill) : storage(n + 32 + shift, fill) {
    const size_t mis = reinterpret_cast<uintptr_t>(storage.data()) / sizeof(float) % 16;
    data = storage.data() + (16 - mis) % 16 + shift;
  }
};

// Error bound magnitude of the 1-D Winograd F(2,3) path (kernels/conv_direct.cpp) for each
// output. Its output pair (2i, 2i + 1) sums, over (c, kh), products U_k G_k of transformed
// inputs (U0 = d0 - d2, U1 = d1 + d2, U2 = d2 - d1, U3 = d1 - d3 of the padded inputs d0..d3 =
// x[2i .. 2i + 3]) and transformed weights (G0 = g0, G1 = (g0 + g1 + g2) / 2,
// G2 = (g0 - g1 + g2) / 2, G3 = g2), in 4 sums of C KH terms (one starting at the bias), then
// adds 2 of them (+ residual). With D = sum |d_t| and S = sum |g_kw|:
// sum_k |U_k| |G_k| <= (|d0| + |d2|)|g0| + (|d1| + |d2|) S + (|d1| + |d3|)|g2| <= 2 D S, so every
// rounding is relative to at most 2 sum_(c,kh) D S + |bias| + |residual| (returned here), and
// there are at most C KH + 6 of them in a row.
std::vector<double> wino_bound(const Conv2dParams& p, const std::vector<float>& in, const std::vector<float>& w) {
  std::vector<double> b(p.N * p.M * p.OH * p.OW, 0.0);
  auto x = [&](size_t n, size_t c, long ih, long iw) -> double {
    if (ih < 0 || iw < 0 || ih >= static_cast<long>(p.H) || iw >= static_cast<long>(p.W)) return 0.0;
    return std::fabs(in[((n * p.C + c) * p.H + static_cast<size_t>(ih)) * p.W + static_cast<size_t>(iw)]);
  };
  for (size_t n = 0; n < p.N; ++n)
    for (size_t m = 0; m < p.M; ++m)
      for (size_t oh = 0; oh < p.OH; ++oh)
        for (size_t ow = 0; ow < p.OW; ++ow) {
          double sum = 0;
          for (size_t c = 0; c < p.C; ++c)
            for (size_t kh = 0; kh < p.KH; ++kh) {
              const long ih = static_cast<long>(oh + kh) - static_cast<long>(p.pad_top);
              const long iw0 = static_cast<long>(ow - ow % 2) - static_cast<long>(p.pad_left);
              double D = 0, S = 0;
              for (long t = 0; t < 4; ++t) D += x(n, c, ih, iw0 + t);
              for (size_t kw = 0; kw < p.KW; ++kw) S += std::fabs(w[((m * p.C + c) * p.KH + kh) * p.KW + kw]);
              sum += D * S;
            }
          const size_t o = ((n * p.M + m) * p.OH + oh) * p.OW + ow;
          b[o] = 2 * sum + (p.ep.bias ? std::fabs(p.ep.bias[m]) : 0.0) +
                 (p.ep.residual ? std::fabs(p.ep.residual[o]) : 0.0);
        }
  return b;
}

// Runs the case on every compiled target with 1 and 3 threads: each result within the
// reference's rounding bound (for KW = 3, the larger of it and the Winograd path's), the two
// thread counts bit-identical.
void run_case(const Case& cs, std::mt19937& rng) {
  INFO(describe(cs));
  Conv2dParams p = params(cs);
  REQUIRE(p.OH > 0);
  REQUIRE(p.OW > 0);
  REQUIRE(kernels::conv_direct_applicable(p));
  const size_t out_size = p.N * p.M * p.OH * p.OW;
  const kernel_test::ConvOperands ops = kernel_test::conv_operands(rng, p, cs.bias, cs.residual, cs.act);
  const std::vector<float>& in = ops.in;
  const std::vector<float>& w = ops.w;
  const std::vector<double>& want = ops.want;
  const std::vector<double>& mag = ops.mag;

  std::vector<float> packed(kernels::conv_direct_packed_weight_floats(p), std::numeric_limits<float>::quiet_NaN());
  kernels::pack_conv_direct_weights(p, w.data(), packed.data());
  {
    // The model keeps only this copy: unpacking must give the weights back bit for bit.
    std::vector<float> back(w.size(), std::numeric_limits<float>::quiet_NaN());
    kernels::unpack_conv_direct_weights(p, packed.data(), back.data());
    CHECK(std::memcmp(back.data(), w.data(), w.size() * sizeof(float)) == 0);
  }
  const double eps = std::numeric_limits<float>::epsilon();
  const double K = static_cast<double>(p.C * p.KH * p.KW);
  const std::vector<double> wmag = p.KW == 3 ? wino_bound(p, in, w) : std::vector<double>();
  const double KW3 = static_cast<double>(p.C * p.KH + 6);
  kernel_test::for_each_target([&](const char*) {
    std::vector<float> got[2];
    const size_t threads[2] = {1, 3};
    for (int t = 0; t < 2; ++t) {
      // Output and scratch 64 B-aligned with 1 thread, misaligned by a float with 3: the
      // results must not depend on it (only an aligned, large output is streamed).
      Buffer out(out_size, static_cast<size_t>(t), std::numeric_limits<float>::quiet_NaN());
      Buffer scratch(kernels::conv_direct_scratch_floats(p, threads[t]), static_cast<size_t>(t),
                     std::numeric_limits<float>::quiet_NaN());
      if (t == 0) {
        kernels::conv_direct(p, in.data(), packed.data(), out.data, scratch.data, kernels::SerialParallel());
      } else {
        kernels::conv_direct(p, in.data(), packed.data(), out.data, scratch.data, kernel_test::ThreadParallel(3));
      }
      got[t].assign(out.data, out.data + out_size);
      for (size_t i = 0; i < 16; ++i) REQUIRE(std::isnan(out.data[out_size + i]));  // nothing written past the output
    }
    for (size_t i = 0; i < out_size; ++i) {
      double tol = 1e-6 + 2.0 * eps * (K + 4) * mag[i];
      if (p.KW == 3) tol = std::max(tol, 1e-6 + 2.0 * eps * KW3 * wmag[i]);
      if (!(std::fabs(got[0][i] - want[i]) <= tol)) {
        FAIL_CHECK("index ", i, " got ", got[0][i], " expected ", want[i], " tol ", tol);
        return;
      }
    }
    CHECK(std::memcmp(got[0].data(), got[1].data(), out_size * sizeof(float)) == 0);
    kernel_test::check_residual_in_output(p, ops, got[0], [&](const Conv2dParams& q, float* out, size_t t,
                                                              const kernels::Parallel& par) {
      Buffer scratch(kernels::conv_direct_scratch_floats(q, t), 0, std::numeric_limits<float>::quiet_NaN());
      kernels::conv_direct(q, in.data(), packed.data(), out, scratch.data, par);
    });
  });
}

// N, C, H, W, M, KH, KW, pt, pl, pb, pr, bias, residual, act
const Case kCases[] = {
    {1, 3, 224, 224, 64, 3, 3, 1, 1, 1, 1, true, false, Activation::kRelu},  // VGG-16 features.0 (streamed)
    {1, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, false, false, Activation::kNone},       // 1x1 everything
    {1, 1, 1, 1, 5, 3, 3, 1, 1, 1, 1, true, true, Activation::kRelu},         // all padding but the centre
    {3, 2, 9, 13, 17, 3, 3, 1, 1, 1, 1, true, true, Activation::kLeakyRelu},  // batch 3, odd sizes
    {1, 4, 12, 33, 70, 5, 5, 2, 2, 2, 2, true, false, Activation::kClip},     // 5x5, pads 2
    {1, 3, 15, 37, 9, 7, 7, 3, 3, 3, 3, false, true, Activation::kRelu},      // 7x7, pads 3
    {1, 3, 8, 20, 33, 3, 3, 0, 2, 1, 0, true, true, Activation::kNone},       // asymmetric pads
    {2, 1, 6, 64, 8, 1, 1, 0, 0, 0, 0, true, false, Activation::kRelu},       // 1x1, whole vectors
    {1, 3, 5, 48, 65, 3, 3, 1, 1, 1, 1, true, true, Activation::kRelu},       // 3 whole AVX-512 vectors
    {3, 4, 4, 17, 3, 3, 5, 0, 1, 2, 3, true, true, Activation::kClip},        // non-square kernel
    {1, 2, 1, 37, 12, 1, 7, 0, 3, 0, 3, true, false, Activation::kLeakyRelu}, // 1-D (H = KH = 1)
    {1, 3, 40, 3, 16, 3, 3, 2, 0, 2, 0, false, false, Activation::kNone},     // OW = 1, no side pads
    {1, 8, 11, 19, 20, 3, 3, 1, 1, 1, 1, true, true, Activation::kRelu},      // more channels
    {2, 15, 6, 33, 19, 3, 3, 1, 1, 1, 1, true, true, Activation::kRelu},      // the planner's largest C
    {1, 3, 700, 48, 64, 3, 3, 1, 1, 1, 1, true, false, Activation::kRelu},    // streamed, 1.5 pair vectors
    {1, 3, 160, 208, 64, 3, 3, 1, 1, 1, 1, true, false, Activation::kRelu},   // streamed, 6.5 pair vectors
    {2, 2, 40, 50, 12, 5, 3, 2, 1, 2, 1, true, true, Activation::kClip},      // KH 5 x KW 3, row blocks
};

}  // namespace

TEST_CASE("conv_direct: against the naive reference, every target, 1 vs 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("conv_direct"));
  for (const Case& c : kCases) run_case(c, rng);
}

TEST_CASE("conv_direct: widths 1-37, channels 1-70, kernels 1-7, pads 0-2, each activation") {
  std::mt19937 rng(kernel_test::test_seed("conv_direct sweep"));
  const Activation acts[] = {Activation::kNone, Activation::kRelu, Activation::kLeakyRelu, Activation::kClip};
  const size_t ks[] = {1, 3, 5, 7};
  const size_t ms[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 70};
  size_t i = 0;
  for (size_t w = 1; w <= 37; ++w) {
    // Cycle through the other parameters so that each value meets several widths.
    const size_t k = ks[i % 4], pad = i % 3, c = 1 + i % 4, m = ms[i % 14];
    const size_t n = i % 5 == 0 ? 3 : 1, h = 1 + (i * 7) % 9;
    const size_t pb = (pad + i) % 3, pr = (pad + 2 * i) % 3;
    const Case cs{n, c, h, w, m, k, k, pad, pad, pb, pr, i % 2 == 0, i % 3 == 0, acts[i % 4]};
    ++i;
    if (cs.H + cs.pt + cs.pb < cs.KH || cs.W + cs.pl + cs.pr < cs.KW) continue;
    run_case(cs, rng);
  }
}

TEST_CASE("conv_direct: KW = 3 (Winograd F(2,3) along W), widths 1-70, 88-97, 121-129, KH 1-5, pads 0-2") {
  std::mt19937 rng(kernel_test::test_seed("conv_direct kw3"));
  const Activation acts[] = {Activation::kNone, Activation::kRelu, Activation::kLeakyRelu, Activation::kClip};
  const size_t ms[] = {1, 3, 4, 5, 8, 9, 13, 16, 17, 64};
  const size_t khs[] = {3, 1, 5, 3, 2};
  std::vector<size_t> widths;
  for (size_t w = 1; w <= 70; ++w) widths.push_back(w);
  for (size_t w = 88; w <= 97; ++w) widths.push_back(w);
  for (size_t w = 121; w <= 129; ++w) widths.push_back(w);
  for (size_t i = 0; i < widths.size(); ++i) {
    // Cycle through the other parameters so that each value meets several widths: odd and even,
    // around 32, 64, 96 and 128 pixels (1-4 AVX-512 pair vectors; the kernel takes the Winograd
    // path when at most 1/10 of the last one is empty: e.g. 30-32, 59-64, 88-96, 116-128).
    const size_t w = widths[i];
    const size_t kh = khs[i % 5], c = 1 + i % 4, m = ms[i % 10], n = i % 7 == 0 ? 2 : 1;
    const size_t pl = i % 3, pr = (i / 3) % 3, pt = (i / 2) % 3, pb = i % 2;
    const size_t h = 1 + (i * 5) % 7 + kh;
    const Case cs{n, c, h, w, m, kh, 3, pt, pl, pb, pr, i % 2 == 1, i % 3 == 2, acts[i % 4]};
    if (cs.W + cs.pl + cs.pr < cs.KW) continue;
    run_case(cs, rng);
  }
}

TEST_CASE("conv_direct: packing is a bit-exact rearrangement, zero past M") {
  std::mt19937 rng(kernel_test::test_seed("conv_direct packing"));
  for (size_t M : {1, 7, 8, 9, 64, 70}) {
    Conv2dParams p = params({1, 3, 5, 5, M, 3, 3, 1, 1, 1, 1, false, false, Activation::kNone});
    auto w = kernel_test::random_floats(rng, p.M * p.C * 9, -1.f, 1.f);
    w[0] = -0.f;  // signed zero and non-finite values survive too
    w[w.size() - 1] = std::numeric_limits<float>::infinity();
    std::vector<float> packed(kernels::conv_direct_packed_weight_floats(p), std::numeric_limits<float>::quiet_NaN());
    REQUIRE(packed.size() == (M + 7) / 8 * 8 * p.C * 9);
    kernels::pack_conv_direct_weights(p, w.data(), packed.data());
    // Panel P[m / 8][c][kh][kw][m % 8]: the channels past M are +0.
    const size_t taps = p.C * 9;
    for (size_t m = M; m < (M + 7) / 8 * 8; ++m)
      for (size_t t = 0; t < taps; ++t) {
        const float v = packed[(m / 8 * taps + t) * 8 + m % 8];
        CHECK((v == 0.f && !std::signbit(v)));
      }
    std::vector<float> back(w.size(), std::numeric_limits<float>::quiet_NaN());
    kernels::unpack_conv_direct_weights(p, packed.data(), back.data());
    CHECK(std::memcmp(back.data(), w.data(), w.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("conv_direct: applicability") {
  Conv2dParams p = params({1, 3, 10, 10, 8, 3, 3, 1, 1, 1, 1, false, false, Activation::kNone});
  CHECK(kernels::conv_direct_applicable(p));
  Conv2dParams q = p;
  q.stride_h = q.stride_w = 2;
  CHECK_FALSE(kernels::conv_direct_applicable(q));
  q = p;
  q.dil_w = 2;
  CHECK_FALSE(kernels::conv_direct_applicable(q));
  q = p;
  q.group = 3;
  q.M = 9;
  CHECK_FALSE(kernels::conv_direct_applicable(q));
}
