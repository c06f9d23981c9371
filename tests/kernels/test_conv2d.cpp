#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/conv_case.h"
#include "kernels/conv_operands.h"
#include "kernels/targets_threads.h"
#include "reference/conv2d_ref.h"

using namespace convoy;
using kernels::Activation;
using kernels::Conv2dParams;

namespace {

using Case = kernel_test::ConvEpilogueCase;

void run_case(const Case& cs, std::mt19937& rng) {
  INFO(kernel_test::describe(cs));
  Conv2dParams p = kernel_test::conv_params(cs);
  const size_t out_size = p.N * p.M * p.OH * p.OW;
  const kernel_test::ConvOperands ops = kernel_test::conv_operands(rng, p, cs.bias, cs.residual, cs.act);
  const std::vector<float>& in = ops.in;
  const std::vector<float>& w = ops.w;
  const std::vector<double>& want = ops.want;
  const std::vector<double>& mag = ops.mag;

  std::vector<float> packed(kernels::conv2d_packed_weight_floats(p));
  kernels::pack_conv2d_weights(p, w.data(), packed.data());
  // 1, 2, 3 and 16 threads: the im2col path's per-tile split (plan_tiles) and its shared col
  // matrix (few tiles for the threads) both run with several threads; past 4 threads the
  // transposed path splits the pixels too.
  std::vector<float> got[4];
  const size_t threads[4] = {1, 2, 3, 16};
  for (int t = 0; t < 4; ++t) {
    got[t].assign(out_size, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> scratch(std::max<size_t>(kernels::conv2d_scratch_floats(p, threads[t]), 1));
    if (t == 0) {
      kernels::conv2d(p, in.data(), packed.data(), got[t].data(), scratch.data(), kernels::SerialParallel());
    } else {
      kernels::conv2d(p, in.data(), packed.data(), got[t].data(), scratch.data(),
                      kernel_test::ThreadParallel(threads[t]));
    }
  }
  const double eps = std::numeric_limits<float>::epsilon();
  const size_t K = p.C / p.group * p.KH * p.KW;
  for (size_t i = 0; i < out_size; ++i) {
    const double tol = 1e-6 + 2.0 * eps * static_cast<double>(K + 4) * mag[i];
    if (!(std::fabs(got[0][i] - want[i]) <= tol)) {
      FAIL_CHECK("index ", i, " got ", got[0][i], " expected ", want[i], " tol ", tol);
      break;
    }
  }
  CHECK(std::memcmp(got[0].data(), got[1].data(), out_size * sizeof(float)) == 0);
  CHECK(std::memcmp(got[0].data(), got[2].data(), out_size * sizeof(float)) == 0);
  CHECK(std::memcmp(got[0].data(), got[3].data(), out_size * sizeof(float)) == 0);
  kernel_test::check_residual_in_output(p, ops, got[0], [&](const Conv2dParams& q, float* out, size_t t,
                                                            const kernels::Parallel& par) {
    std::vector<float> scratch(std::max<size_t>(kernels::conv2d_scratch_floats(q, t), 1));
    kernels::conv2d(q, in.data(), packed.data(), out, scratch.data(), par);
  });
}

// N, C, H, W, M, KH, KW, group, sh, sw, pt, pl, pb, pr, dh, dw, bias, residual, act
const Case kCases[] = {
    // 1x1 stride 1 no pad: GEMM directly on the input.
    {2, 13, 7, 9, 17, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, false, Activation::kRelu},
    {2, 8, 5, 11, 12, 1, 1, 4, 1, 1, 0, 0, 0, 0, 1, 1, true, true, Activation::kRelu},
    {1, 50, 1, 1, 30, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, true, Activation::kNone},   // GEMV shape
    {3, 1, 4, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false, false, Activation::kNone},
    // 1x1 with stride / pad: subsampled (the samples gathered into aligned rows, then pointwise).
    {1, 6, 9, 9, 5, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, true, false, Activation::kNone},
    {2, 40, 13, 21, 70, 1, 1, 1, 4, 2, 0, 0, 1, 1, 1, 1, true, true, Activation::kRelu},  // pads never read
    {1, 24, 28, 28, 50, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, false, true, Activation::kRelu},  // 196 px: edge
    {1, 7, 8, 10, 9, 1, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1, true, true, Activation::kRelu},  // last row/col padding
    {1, 3, 6, 7, 4, 1, 1, 1, 1, 1, 1, 0, 1, 2, 1, 1, false, true, Activation::kLeakyRelu},
    {2, 12, 9, 11, 10, 1, 1, 2, 2, 2, 1, 0, 0, 1, 1, 1, true, true, Activation::kRelu},  // groups, pads, batch
    {1, 256, 28, 28, 136, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, true, true, Activation::kNone},  // ResNet downsample-like
    // General.
    {1, 5, 11, 13, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false, Activation::kNone},
    {2, 4, 12, 10, 6, 3, 3, 1, 2, 2, 0, 1, 1, 0, 1, 1, true, true, Activation::kRelu},
    {1, 3, 17, 17, 5, 5, 5, 1, 3, 3, 3, 2, 1, 3, 2, 2, false, false, Activation::kLeakyRelu},
    {1, 6, 9, 8, 4, 3, 3, 2, 1, 2, 1, 1, 1, 1, 2, 1, true, false, Activation::kClip},
    {1, 3, 1, 50, 4, 1, 7, 1, 1, 1, 0, 3, 0, 3, 1, 1, true, false, Activation::kNone},    // 1-D
    {1, 64, 20, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true, Activation::kRelu},  // several pixel tiles
    {1, 4, 10, 10, 8, 3, 3, 4, 1, 1, 1, 1, 1, 1, 1, 1, true, false, Activation::kNone},   // channel multiplier 2
    {1, 3, 7, 7, 2, 7, 7, 1, 2, 2, 3, 3, 3, 3, 1, 1, true, false, Activation::kNone},
    {1, 2, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 2, 2, 1, 1, true, false, Activation::kNone},     // mostly padding
    // Packed-B tiles: one 49-pixel tile split over output-channel parts (3 threads), several
    // K blocks, a narrow last panel; many tiles whose count depends on the threads; stem-like
    // strided convs; pointwise with K blocks and batch.
    {1, 40, 7, 7, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true, Activation::kRelu},
    {1, 2, 40, 40, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true, Activation::kRelu},
    {2, 20, 15, 15, 33, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, true, true, Activation::kNone},
    {1, 3, 30, 30, 10, 7, 7, 1, 2, 2, 3, 3, 3, 3, 1, 1, true, false, Activation::kRelu},
    {1, 3, 40, 40, 9, 11, 11, 1, 4, 4, 2, 2, 2, 2, 1, 1, true, false, Activation::kRelu},
    {3, 300, 5, 7, 37, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, true, Activation::kRelu},
    {2, 64, 3, 3, 130, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, false, Activation::kNone},
    {1, 130, 9, 9, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true, Activation::kRelu},  // K = 1170: 2 blocks on AVX-512 too
    // Transposed GEMM for small maps (< 64 pixels, not a multiple of 16, M >= 64, K >= 512): pointwise,
    // 1x1 stride 2 with batch, 3x3 stride 2 with several K blocks, stride 1; M not a multiple
    // of a panel or of the lanes.
    {1, 520, 7, 7, 80, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, true, Activation::kRelu},
    {2, 600, 14, 14, 64, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, true, true, Activation::kNone},
    {1, 300, 9, 9, 100, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, true, Activation::kRelu},
    {1, 60, 6, 6, 131, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, true, Activation::kClip},
    {3, 530, 5, 11, 67, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, false, Activation::kLeakyRelu},
    {1, 256, 7, 7, 512, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, true, Activation::kRelu},  // K < 512: usual path
    {1, 256, 14, 14, 512, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, false, Activation::kRelu},  // ResNet-50 layer4.0.conv2
    // Wide rows: the vector de-interleave of strides 2 and 4 on every target (AVX-512 too).
    {1, 2, 9, 80, 3, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, false, Activation::kNone},
    {1, 2, 7, 150, 3, 5, 5, 1, 4, 4, 2, 2, 2, 2, 1, 1, false, true, Activation::kNone},
    {1, 1, 5, 131, 2, 3, 3, 1, 2, 2, 0, 0, 0, 0, 1, 1, false, false, Activation::kNone},
    // Staged input rows (im2col): 1x1 and 1xN kernels with a row stride (every stride_h-th row
    // staged), 1x1 with pads, output rows shorter than a vector (7, 14 pixels) and around it
    // (15-17), pads wider than the kernel, a stem-like conv whose pixel tiles end mid-row.
    {1, 3, 15, 29, 8, 1, 1, 1, 3, 2, 0, 0, 0, 0, 1, 1, true, true, Activation::kNone},
    {1, 4, 9, 9, 6, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, false, Activation::kRelu},
    {1, 3, 11, 12, 5, 1, 3, 1, 2, 1, 0, 1, 0, 1, 1, 1, false, true, Activation::kNone},
    {1, 8, 14, 14, 20, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, true, Activation::kRelu},
    {1, 8, 28, 28, 24, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, false, Activation::kNone},
    {1, 3, 6, 33, 5, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, true, false, Activation::kNone},
    {1, 3, 5, 31, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, false, Activation::kRelu},
    {1, 5, 4, 17, 4, 3, 3, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, false, Activation::kNone},
    {1, 2, 3, 3, 4, 1, 1, 1, 1, 1, 2, 3, 2, 1, 1, 1, true, false, Activation::kNone},
    {1, 2, 5, 6, 3, 2, 2, 1, 4, 3, 1, 0, 2, 3, 1, 1, true, true, Activation::kNone},
    {1, 3, 60, 60, 8, 7, 7, 1, 2, 2, 3, 3, 3, 3, 1, 1, true, false, Activation::kRelu},
    {2, 6, 20, 22, 8, 5, 5, 2, 3, 3, 2, 2, 2, 2, 2, 2, true, true, Activation::kLeakyRelu},
    // Transposed GEMM with staged rows: stride 3 with dilation 2 and asymmetric pads, a 1x3
    // kernel with a row stride.
    {1, 100, 13, 13, 70, 3, 3, 1, 3, 3, 2, 1, 2, 1, 2, 2, true, true, Activation::kRelu},
    {1, 200, 9, 10, 64, 1, 3, 1, 2, 1, 0, 1, 0, 1, 1, 1, false, true, Activation::kRelu},
    // Staged rows split by column phase (kernels wider than 3 with a column stride; strides
    // other than 1, 2 and 4): dilations that keep the phase (2 with stride 2) or step it (3),
    // stride 4 with dilation 2, wide rows (vector de-interleave), different row and column
    // strides, a 1xN kernel with a row stride, groups, batch with pixel tiles ending mid-row,
    // AlexNet's 11x11/4 and the transposed GEMM's gather.
    {1, 3, 19, 23, 6, 5, 5, 1, 2, 2, 2, 1, 2, 3, 2, 2, true, true, Activation::kRelu},
    {1, 2, 21, 37, 5, 7, 7, 1, 2, 2, 3, 3, 3, 3, 3, 3, true, false, Activation::kNone},
    {1, 2, 12, 90, 4, 5, 5, 1, 4, 4, 1, 3, 0, 2, 2, 2, false, true, Activation::kNone},
    {1, 3, 9, 150, 5, 11, 11, 1, 4, 4, 2, 2, 2, 2, 1, 1, true, false, Activation::kRelu},
    {1, 3, 10, 41, 4, 3, 5, 1, 1, 2, 1, 2, 1, 2, 1, 1, true, true, Activation::kLeakyRelu},
    {1, 3, 9, 70, 4, 1, 7, 1, 3, 2, 0, 3, 0, 3, 1, 1, true, false, Activation::kNone},
    {1, 4, 17, 20, 7, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1, true, false, Activation::kRelu},
    {1, 6, 15, 31, 4, 5, 5, 2, 2, 2, 2, 2, 2, 2, 1, 1, true, false, Activation::kNone},
    {2, 3, 45, 47, 9, 7, 7, 1, 2, 2, 3, 3, 2, 3, 1, 1, true, true, Activation::kRelu},
    {1, 3, 63, 63, 10, 11, 11, 1, 4, 4, 2, 2, 2, 2, 1, 1, true, false, Activation::kRelu},
    {1, 24, 13, 13, 70, 5, 5, 1, 2, 2, 2, 2, 2, 2, 1, 1, true, true, Activation::kRelu},
    {2, 30, 11, 12, 64, 5, 5, 1, 2, 3, 1, 2, 2, 1, 1, 2, false, true, Activation::kClip},
    // Per-tile split with several threads (images x tiles >= 2 x threads: no shared col), a
    // stem-like conv with many tiles in batch, groups.
    {3, 64, 20, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true, Activation::kRelu},
    {2, 3, 120, 118, 8, 7, 7, 1, 2, 2, 3, 3, 3, 3, 1, 1, true, true, Activation::kRelu},
    {2, 12, 30, 30, 9, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, false, Activation::kNone},
    // Depthwise (group == C == M).
    {2, 19, 15, 15, 19, 3, 3, 19, 1, 1, 1, 1, 1, 1, 1, 1, true, false, Activation::kClip},
    {1, 5, 16, 33, 5, 3, 3, 5, 2, 2, 1, 1, 0, 0, 2, 2, true, true, Activation::kRelu},
    {1, 3, 20, 23, 3, 5, 5, 3, 3, 3, 2, 1, 2, 3, 1, 1, false, false, Activation::kNone},
    {1, 4, 9, 17, 4, 3, 3, 4, 1, 1, 0, 0, 0, 0, 1, 1, false, true, Activation::kLeakyRelu},
    {1, 1, 8, 40, 1, 3, 5, 1, 1, 1, 1, 2, 1, 2, 1, 1, true, false, Activation::kNone},
};

}  // namespace

TEST_CASE("conv2d: pointwise, im2col and depthwise paths against the naive reference") {
  std::mt19937 rng(kernel_test::test_seed("conv2d"));
  kernel_test::for_each_target([&](const char*) {
    for (const Case& c : kCases) run_case(c, rng);
  });
}

TEST_CASE("conv2d: residual + relu, strides 1-3, dilation 1-2 sweep") {
  std::mt19937 rng(kernel_test::test_seed("conv2d sweep"));
  kernel_test::for_each_target([&](const char*) {
    for (size_t s = 1; s <= 3; ++s)
      for (size_t dil = 1; dil <= 2; ++dil)
        for (size_t group : {size_t{1}, size_t{3}}) {
          Case c{1, 6, 13, 14, group == 3 ? size_t{6} : size_t{5}, 3, 3, group, s, s, 1, 2, 2, 0, dil, dil, true, true,
                 Activation::kRelu};
          if (group == 3 && s == 2) c.M = 3, c.group = 3, c.C = 3;  // depthwise
          run_case(c, rng);
        }
  });
}
