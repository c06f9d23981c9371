// Space-to-depth rewriting of strided convolutions (kernels/space_to_depth.h): the rewritten
// stride-1 conv of D with w', computed by the naive double reference, must equal the naive
// reference of the original conv (exact math, different order of the sums); the weights go there
// and back bit for bit; and where the rewritten kernel is 3x3, 4x4 or 5x5, the Winograd kernel on D
// (what the planner runs for AlexNet's first conv and the ResNet stem) meets the Winograd error bound of
// tests/kernels/test_winograd.cpp, bit-identical on 1 and 3 threads, every target.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv_case.h"
#include "kernels/conv_operands.h"
#include "kernels/space_to_depth.h"
#include "kernels/targets_threads.h"
#include "kernels/winograd.h"
#include "reference/conv2d_ref.h"

using namespace convoy;
using kernels::Activation;
using kernels::Conv2dParams;

namespace {

using Case = kernel_test::ConvEpilogueCase;
using kernel_test::describe;

// N, C, H, W, M, KH, KW, group, sh, sw, pt, pl, pb, pr, dh, dw, bias, residual, act
const Case kCases[] = {
    {1, 3, 224, 224, 64, 11, 11, 1, 4, 4, 2, 2, 2, 2, 1, 1, true, false, Activation::kRelu},   // AlexNet features.0
    {2, 3, 31, 29, 20, 11, 11, 1, 4, 4, 2, 1, 0, 3, 1, 1, true, true, Activation::kLeakyRelu},  // odd sizes, batch 2
    {1, 2, 17, 18, 17, 5, 5, 1, 2, 2, 2, 2, 2, 2, 1, 1, false, true, Activation::kClip},        // 5x5 / 2 -> 3x3
    {1, 4, 20, 23, 33, 6, 6, 1, 2, 2, 0, 1, 1, 0, 1, 1, true, false, Activation::kNone},        // 6x6 / 2: no zero taps
    {1, 1, 40, 41, 16, 9, 9, 1, 3, 3, 4, 4, 4, 4, 1, 1, true, true, Activation::kRelu},         // stride 3, big pads
    {1, 2, 25, 30, 18, 10, 10, 1, 2, 2, 1, 2, 3, 0, 1, 1, true, false, Activation::kRelu},      // 10x10 / 2 -> 5x5
    {1, 3, 16, 19, 8, 7, 5, 1, 3, 2, 1, 2, 0, 1, 1, 1, false, false, Activation::kNone},       // unequal strides
    {1, 3, 11, 11, 5, 11, 11, 1, 4, 4, 0, 0, 0, 0, 1, 1, true, true, Activation::kRelu},        // 1x1 output
    {1, 3, 9, 9, 5, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, false, Activation::kRelu},           // -> 2x2: rewrite only
    {1, 2, 12, 9, 4, 7, 7, 1, 2, 2, 3, 3, 3, 3, 1, 1, false, true, Activation::kNone},          // 7x7 / 2 -> 4x4 (a ResNet stem)
};

}  // namespace

TEST_CASE("space to depth: the rewritten conv equals the strided one; weights there and back") {
  std::mt19937 rng(kernel_test::test_seed("space to depth"));
  for (const Case& cs : kCases) {
    INFO(describe(cs));
    Conv2dParams p = kernel_test::conv_params(cs);
    REQUIRE(kernels::space_to_depth_applicable(p));
    const kernel_test::ConvOperands ops = kernel_test::conv_operands(rng, p, cs.bias, cs.residual, cs.act);
    const Conv2dParams q = kernels::space_to_depth_params(p);
    CHECK(q.stride_h == 1);
    CHECK(q.OH == p.OH);
    CHECK(q.OW == p.OW);
    CHECK(q.H == q.OH + q.KH - 1);
    std::vector<float> d(kernels::space_to_depth_input_floats(p), std::numeric_limits<float>::quiet_NaN());
    kernels::space_to_depth_input(p, ops.in.data(), d.data(), kernel_test::ThreadParallel(3));
    std::vector<float> ws(q.M * q.C * q.KH * q.KW, std::numeric_limits<float>::quiet_NaN());
    kernels::space_to_depth_weights(p, ops.w.data(), ws.data());
    std::vector<float> back(ops.w.size(), std::numeric_limits<float>::quiet_NaN());
    kernels::space_to_depth_weights_back(p, ws.data(), back.data());
    CHECK(std::memcmp(back.data(), ops.w.data(), back.size() * sizeof(float)) == 0);
    // Every weight appears once in w', the rest is zeros.
    size_t nonzero = 0;
    for (float v : ws) nonzero += v != 0.f;
    CHECK(nonzero <= ops.w.size());
    std::vector<double> got, mag;
    ref::conv2d_ref(q, d.data(), ws.data(), got, mag);
    REQUIRE(got.size() == ops.want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      // Double sums of the same float products in another order.
      if (!(std::fabs(got[i] - ops.want[i]) <= 1e-12 * (ops.mag[i] + 1))) {
        FAIL_CHECK("index ", i, " rewritten ", got[i], " direct ", ops.want[i]);
        break;
      }
    }
  }
}

TEST_CASE("space to depth + Winograd: strided convs against the naive reference, every target, 1 vs 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("space to depth winograd"));
  size_t ran = 0;
  kernel_test::for_each_target([&](const char*) {
    for (const Case& cs : kCases) {
      INFO(describe(cs));
      Conv2dParams p = kernel_test::conv_params(cs);
      const Conv2dParams q0 = kernels::space_to_depth_params(p);
      if (!kernels::winograd_applicable(q0)) continue;
      ++ran;
      const kernel_test::ConvOperands ops = kernel_test::conv_operands(rng, p, cs.bias, cs.residual, cs.act);
      Conv2dParams q = kernels::space_to_depth_params(p);  // with the epilogue conv_operands set
      std::vector<float> ws(q.M * q.C * q.KH * q.KW);
      kernels::space_to_depth_weights(p, ops.w.data(), ws.data());
      std::vector<float> packed(kernels::winograd_packed_weight_floats(q));
      kernels::pack_winograd_weights(q, ws.data(), packed.data());
      const size_t out_size = p.N * p.M * p.OH * p.OW;
      std::vector<float> got[2];
      for (int t = 0; t < 2; ++t) {
        const size_t threads = t == 0 ? 1 : 3;
        std::vector<float> d(kernels::space_to_depth_input_floats(p));
        std::vector<float> scratch(kernels::winograd_scratch_floats(q, threads));
        got[t].assign(out_size, std::numeric_limits<float>::quiet_NaN());
        if (t == 0) {
          kernels::space_to_depth_input(p, ops.in.data(), d.data(), kernels::SerialParallel());
          kernels::winograd_conv(q, d.data(), packed.data(), got[t].data(), scratch.data(), kernels::SerialParallel());
        } else {
          const kernel_test::ThreadParallel par(3);
          kernels::space_to_depth_input(p, ops.in.data(), d.data(), par);
          kernels::winograd_conv(q, d.data(), packed.data(), got[t].data(), scratch.data(), par);
        }
      }
      // tests/kernels/test_winograd.cpp's bounds, in units of sqrt(K'^2 C') eps of the rewritten conv.
      const double eps = std::numeric_limits<float>::epsilon();
      const double unit = std::sqrt(static_cast<double>(q.KH * q.KW * q.C)) * eps;
      const double bound = q.KH == 3 ? 500.0 : 250.0;
      for (size_t i = 0; i < out_size; ++i) {
        const double err = std::fabs(got[0][i] - ops.want[i]);
        if (!(err <= bound * unit + 4 * eps * std::fabs(ops.want[i]))) {
          FAIL_CHECK("index ", i, " got ", got[0][i], " expected ", ops.want[i]);
          break;
        }
      }
      CHECK(std::memcmp(got[0].data(), got[1].data(), out_size * sizeof(float)) == 0);
    }
  });
  CHECK(ran > 0);
}

TEST_CASE("space to depth: applicability") {
  Conv2dParams p = kernel_test::conv_params({1, 3, 20, 20, 8, 5, 5, 1, 2, 2, 0, 0, 0, 0, 1, 1});
  CHECK(kernels::space_to_depth_applicable(p));
  Conv2dParams q = p;
  q.stride_h = q.stride_w = 1;
  CHECK_FALSE(kernels::space_to_depth_applicable(q));
  q = p;
  q.dil_h = 2;
  CHECK_FALSE(kernels::space_to_depth_applicable(q));
  q = p;
  q.group = 3;
  CHECK_FALSE(kernels::space_to_depth_applicable(q));
}
