// conv2d_backward_data / conv2d_backward_weight against finite differences of a double
// forward (small shapes) and direct double backward loops (every shape), on every compiled
// Highway target, 1 vs 3 threads bit-identical, weight accumulation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d_grad.h"
#include "kernels/conv_case.h"
#include "kernels/targets_threads.h"
#include "reference/grad_ref.h"

using namespace convoy;
using kernels::Conv2dParams;

namespace {

using Case = kernel_test::ConvShape;
using kernel_test::conv_params;

// N, C, H, W, M, KH, KW, group, sh, sw, pt, pl, pb, pr, dh, dw
const Case kCases[] = {
    {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},       // 3x3 same padding
    {1, 4, 9, 8, 6, 3, 3, 2, 2, 2, 1, 0, 2, 1, 1, 1},       // groups 2, stride 2, asymmetric pads
    {2, 4, 9, 9, 4, 3, 3, 4, 1, 1, 1, 1, 1, 1, 1, 1},       // depthwise
    {1, 3, 11, 10, 3, 3, 3, 3, 2, 2, 0, 2, 1, 0, 1, 1},     // depthwise stride 2 asymmetric pads
    {1, 2, 10, 11, 2, 3, 2, 2, 1, 2, 1, 2, 0, 1, 2, 2},     // depthwise dilation 2
    {2, 3, 9, 11, 3, 3, 3, 3, 1, 1, 2, 0, 1, 2, 2, 2},      // depthwise stride 1, dilation 2, asymmetric pads
    {1, 2, 5, 6, 2, 3, 3, 2, 1, 1, 3, 1, 3, 1, 1, 1},       // depthwise stride 1, pad > kernel reach
    {2, 4, 5, 5, 4, 1, 1, 4, 1, 1, 0, 0, 0, 0, 1, 1},       // depthwise 1x1
    {2, 3, 10, 9, 5, 3, 3, 1, 1, 1, 2, 2, 2, 2, 2, 2},      // dilation 2
    {2, 5, 6, 7, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},       // 1x1 (pointwise path)
    {1, 6, 5, 7, 4, 1, 1, 2, 1, 1, 0, 0, 0, 0, 1, 1},       // 1x1 groups 2 (pointwise path)
    {2, 4, 7, 9, 3, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1},       // 1x1 stride 2 (im2col)
    {1, 3, 13, 11, 2, 5, 3, 1, 3, 2, 2, 1, 0, 2, 1, 2},     // odd kernel, stride 3x2, mixed dilation
    {1, 1, 5, 5, 1, 5, 5, 1, 1, 1, 0, 0, 0, 0, 1, 1},       // window = input, 1x1 output
    {1, 2, 4, 4, 3, 3, 3, 1, 1, 1, 3, 3, 3, 3, 1, 1},       // pads >= kernel: border outputs see only padding
    {1, 3, 1, 17, 2, 1, 5, 1, 1, 2, 0, 2, 0, 1, 1, 1},      // 1-D
    {1, 2, 6, 5, 6, 2, 2, 2, 2, 1, 0, 1, 1, 0, 1, 1},       // groups 2, even kernel
    {2, 4, 7, 7, 2, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1},       // one output channel per group (GEMV rows)
    {2, 3, 5, 6, 6, 1, 1, 3, 1, 1, 0, 0, 0, 0, 1, 1},       // channel multiplier 2, 1x1: one dw column per group
    {2, 3, 6, 6, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},       // channel multiplier 2, 3x3 (not the depthwise path)
};

// Larger shapes (direct reference only): several pixel tiles, several channel blocks of the data
// gradient, several row blocks of the weight gradient, groups with many rows.
const Case kLargeCases[] = {
    {2, 20, 15, 13, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},   // 180 dcol rows: 2 channel blocks; 195 px: 3 tiles
    {1, 32, 14, 14, 300, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},  // pointwise, 300 rows: 3 weight blocks
    {2, 8, 21, 19, 6, 3, 3, 2, 2, 2, 1, 1, 0, 1, 1, 1},
    {1, 6, 40, 40, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    // 1600 px: K blocking of the weight GEMM
    {2, 8, 17, 23, 8, 5, 5, 8, 2, 1, 2, 2, 2, 2, 1, 1},     // depthwise 5x5
    {1, 64, 9, 9, 160, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    // 576 dcol rows, 160 weight rows
    {3, 3, 30, 30, 7, 11, 11, 1, 4, 4, 2, 2, 2, 2, 1, 1},   // AlexNet-like stem (odd M)
    {5, 6, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     // weight tiles of 2 images, last one of 1
    {3, 4, 17, 16, 5, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},     // pointwise, 272 px: a 256 tile + 16
    {5, 16, 20, 20, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    // data tiles of 2 images, last one of 1
    {2, 16, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    // data tiles within an image (1024 px > 910)
};

struct MaxErr {
  double data = 0, weight = 0;
};

void check(const char* what, const std::vector<float>& got, const ref::DVec& want, double rtol, double afloor,
           const std::string& info, double& worst) {
  const ref::GradErr e = ref::grad_error(got.data(), want, rtol, afloor);
  worst = std::max(worst, e.rel_norm);
  INFO(info);
  INFO(what, ": rel_norm ", e.rel_norm, " max_abs ", e.max_abs, " first bad ", e.first_bad);
  CHECK(e.rel_norm <= 1e-3);
  CHECK(e.elem_ok);
}

void run_case(const Case& cs, bool with_fd, std::mt19937& rng, MaxErr& fd_err, MaxErr& ref_err) {
  const Conv2dParams p = conv_params(cs);
  const std::string buf = kernel_test::describe(cs) + " OH=" + std::to_string(p.OH) + " OW=" + std::to_string(p.OW);
  INFO(buf);
  const size_t Cg = p.C / p.group;
  const auto x = kernel_test::random_floats(rng, p.N * p.C * p.H * p.W, -1.f, 1.f);
  const auto w = kernel_test::random_floats(rng, p.M * Cg * p.KH * p.KW, -1.f, 1.f);
  const auto dy = kernel_test::random_floats(rng, p.N * p.M * p.OH * p.OW, -1.f, 1.f);
  const ref::DVec xd = ref::to_double(x), wd = ref::to_double(w), dyd = ref::to_double(dy);
  ref::DVec dx_ref, dw_ref;
  ref::conv2d_bwd(p, xd, wd, dyd, dx_ref, dw_ref);
  ref::DVec dx_fd, dw_fd;
  if (with_fd) {
    // The loss is linear in x and in w: central differences are exact up to rounding.
    dx_fd = ref::fd_grad([&](const ref::DVec& v) { return ref::conv2d_fwd(p, v, wd); }, xd, dyd, 0.5);
    dw_fd = ref::fd_grad([&](const ref::DVec& v) { return ref::conv2d_fwd(p, xd, v); }, wd, dyd, 0.5);
  }
  // Float sums of Cg*KH*KW (data) or N*OH*OW (weight) terms of magnitude <= 1.
  const double rtol = 1e-4, afloor = 1e-5;
  kernel_test::for_each_target([&](const char* target) {
    const std::string info = std::string(buf) + " target " + target;
    const kernel_test::ThreadParallel par3(3);
    const kernels::SerialParallel serial;
    std::vector<float> dx1(x.size(), std::nanf("")), dx3(x.size(), std::nanf(""));
    std::vector<float> dw1(w.size(), std::nanf("")), dw3(w.size(), std::nanf(""));
    std::vector<float> s1(kernels::conv2d_backward_data_scratch_floats(p, 1) + 1);
    std::vector<float> s3(kernels::conv2d_backward_data_scratch_floats(p, 3) + 1);
    kernels::conv2d_backward_data(p, dy.data(), w.data(), dx1.data(), s1.data(), serial);
    kernels::conv2d_backward_data(p, dy.data(), w.data(), dx3.data(), s3.data(), par3);
    s1.assign(kernels::conv2d_backward_weight_scratch_floats(p, 1) + 1, 0.f);
    s3.assign(kernels::conv2d_backward_weight_scratch_floats(p, 3) + 1, 0.f);
    kernels::conv2d_backward_weight(p, x.data(), dy.data(), dw1.data(), false, s1.data(), serial);
    kernels::conv2d_backward_weight(p, x.data(), dy.data(), dw3.data(), false, s3.data(), par3);
    check("dx vs direct", dx1, dx_ref, rtol, afloor, info, ref_err.data);
    check("dw vs direct", dw1, dw_ref, rtol, afloor, info, ref_err.weight);
    if (with_fd) {
      check("dx vs finite differences", dx1, dx_fd, rtol, afloor, info, fd_err.data);
      check("dw vs finite differences", dw1, dw_fd, rtol, afloor, info, fd_err.weight);
    }
    CHECK_MESSAGE(std::memcmp(dx1.data(), dx3.data(), dx1.size() * sizeof(float)) == 0, info, ": dx 1 vs 3 threads");
    CHECK_MESSAGE(std::memcmp(dw1.data(), dw3.data(), dw1.size() * sizeof(float)) == 0, info, ": dw 1 vs 3 threads");
    // Other thread counts change the weight gradient's column blocks (never the result).
    for (size_t threads : {size_t{2}, size_t{5}}) {
      s3.assign(kernels::conv2d_backward_weight_scratch_floats(p, threads) + 1, 0.f);
      dw3.assign(w.size(), std::nanf(""));
      kernels::conv2d_backward_weight(p, x.data(), dy.data(), dw3.data(), false, s3.data(),
                                      kernel_test::ThreadParallel(threads));
      CHECK_MESSAGE(std::memcmp(dw1.data(), dw3.data(), dw1.size() * sizeof(float)) == 0, info, ": dw 1 vs ", threads,
                    " threads");
    }
    // Accumulation: dw = dw0 + gradient.
    const auto dw0 = kernel_test::random_floats(rng, w.size(), -1.f, 1.f);
    std::vector<float> acc = dw0;
    kernels::conv2d_backward_weight(p, x.data(), dy.data(), acc.data(), true, s3.data(), par3);
    ref::DVec want(w.size());
    for (size_t i = 0; i < w.size(); ++i) want[i] = dw0[i] + dw_ref[i];
    double unused = 0;
    check("dw accumulate", acc, want, rtol, afloor, info, unused);
  });
}

}  // namespace

TEST_CASE("conv2d backward: finite differences and direct reference, small shapes") {
  std::mt19937 rng(kernel_test::test_seed("conv2d_grad"));
  MaxErr fd, direct;
  for (const Case& c : kCases) run_case(c, true, rng, fd, direct);
  MESSAGE("conv2d grad max rel_norm vs finite differences: dx ", fd.data, " dw ", fd.weight, "; vs direct: dx ",
          direct.data, " dw ", direct.weight);
}

TEST_CASE("conv2d backward: direct reference, tiled and blocked shapes") {
  std::mt19937 rng(kernel_test::test_seed("conv2d_grad_large"));
  MaxErr fd, direct;
  for (const Case& c : kLargeCases) run_case(c, false, rng, fd, direct);
  MESSAGE("conv2d grad (large) max rel_norm vs direct: dx ", direct.data, " dw ", direct.weight);
}

TEST_CASE("conv2d backward: empty batch and zero-sized output") {
  Conv2dParams p = conv_params({0, 2, 4, 4, 3, 3, 3, 1, 1, 1, 0, 0, 0, 0, 1, 1});
  std::vector<float> dw(3 * 2 * 9, 7.f), scratch(1);
  kernels::conv2d_backward_weight(p, nullptr, nullptr, dw.data(), false, scratch.data(), kernels::SerialParallel());
  CHECK(std::all_of(dw.begin(), dw.end(), [](float v) { return v == 0.f; }));
  std::fill(dw.begin(), dw.end(), 7.f);
  kernels::conv2d_backward_weight(p, nullptr, nullptr, dw.data(), true, scratch.data(), kernels::SerialParallel());
  CHECK(std::all_of(dw.begin(), dw.end(), [](float v) { return v == 7.f; }));
}
