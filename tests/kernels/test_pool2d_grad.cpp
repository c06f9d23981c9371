// Pooling backward: maxpool2d_forward_argmax against kernels::pool2d (bit-identical output) and
// the first-maximum rule on ties; max/avg/global-avg backward against finite differences of a
// double forward; every compiled Highway target; 1 vs 3 threads bit-identical.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/pool2d.h"
#include "kernels/pool2d_grad.h"
#include "kernels/pool_case.h"
#include "kernels/targets_threads.h"
#include "reference/grad_ref.h"

using namespace convoy;
using kernels::Pool2dParams;
using kernels::PoolKind;

namespace {

using Case = test::PoolCase;

// N, C, H, W, KH, KW, sh, sw, pt, pl, pb, pr, dh, dw, ceil
const Case kCases[] = {
    {2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false},     // VGG 2x2 s2
    {2, 2, 13, 13, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, false},   // AlexNet 3x3 s2: overlapping windows
    {1, 2, 15, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false},   // ResNet stem: pads
    {1, 2, 14, 15, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, true},    // ceil mode: last window past the input
    {1, 2, 11, 12, 3, 2, 2, 3, 1, 0, 1, 1, 1, 1, true},    // ceil + pads: past the padded input
    {1, 2, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},    // stride 1
    {1, 2, 9, 20, 3, 5, 1, 1, 2, 1, 0, 2, 2, 2, false},    // dilation, asymmetric pads
    {2, 3, 7, 9, 2, 4, 1, 1, 1, 3, 1, 2, 1, 1, true},      // stride 1 ceil
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false},
    {1, 2, 5, 5, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, false},     // windows larger than half the input
    {1, 2, 12, 12, 3, 3, 3, 3, 1, 2, 0, 1, 2, 2, true},    // stride 3 dilation 2 ceil
    {1, 1, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, false},     // pads >= kernel: windows entirely in padding
    {1, 2, 1, 23, 1, 3, 1, 2, 0, 1, 0, 1, 1, 1, true},     // 1-D
};

std::string describe(const Case& cs, const Pool2dParams& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "N=%zu C=%zu H=%zu W=%zu K=%zux%zu s=%zu,%zu pads=%zu,%zu,%zu,%zu dil=%zu,%zu ceil=%d OH=%zu OW=%zu %s cip=%d",
                cs.N, cs.C, cs.H, cs.W, cs.KH, cs.KW, cs.sh, cs.sw, cs.pt, cs.pl, cs.pb, cs.pr, cs.dh, cs.dw, cs.ceil_mode,
                p.OH, p.OW, p.kind == PoolKind::kMax ? "max" : "avg", p.count_include_pad);
  return buf;
}

void check_grad(const std::vector<float>& got, const ref::DVec& want, double rtol, double afloor, double& worst) {
  const ref::GradErr e = ref::grad_error(got.data(), want, rtol, afloor);
  worst = std::max(worst, e.rel_norm);
  INFO("rel_norm ", e.rel_norm, " max_abs ", e.max_abs, " first bad ", e.first_bad);
  CHECK(e.rel_norm <= 1e-3);
  CHECK(e.elem_ok);
}

}  // namespace

TEST_CASE("maxpool2d_forward_argmax: same output as pool2d, first maximum on ties") {
  std::mt19937 rng(kernel_test::test_seed("maxpool_argmax"));
  kernel_test::for_each_target([&](const char*) {
    for (const Case& cs : kCases)
      for (bool ties : {false, true}) {
        const Pool2dParams p = test::pool_params(cs, PoolKind::kMax, false);
        INFO(describe(cs, p), " ties=", ties);
        auto x = kernel_test::random_floats(rng, p.N * p.C * p.H * p.W, -4.f, 4.f);
        if (ties)
          for (float& v : x) v = std::floor(v * 0.5f);  // values in {-2, ..., 1}: many equal maxima
        const size_t n_out = p.N * p.C * p.OH * p.OW;
        std::vector<float> want(n_out), got1(n_out), got3(n_out);
        std::vector<int32_t> arg1(n_out), arg3(n_out);
        kernels::pool2d(p, x.data(), want.data(), kernels::SerialParallel());
        kernels::maxpool2d_forward_argmax(p, x.data(), got1.data(), arg1.data(), kernels::SerialParallel());
        kernels::maxpool2d_forward_argmax(p, x.data(), got3.data(), arg3.data(), kernel_test::ThreadParallel(3));
        CHECK(std::memcmp(want.data(), got1.data(), n_out * sizeof(float)) == 0);
        CHECK(std::memcmp(got1.data(), got3.data(), n_out * sizeof(float)) == 0);
        CHECK(arg1 == ref::maxpool_argmax(p, x));
        CHECK(arg1 == arg3);
      }
  });
}

TEST_CASE("maxpool2d_backward: finite differences (distinct values) and scatter on ties") {
  std::mt19937 rng(kernel_test::test_seed("maxpool_backward"));
  double worst = 0;
  for (const Case& cs : kCases) {
    const Pool2dParams p = test::pool_params(cs, PoolKind::kMax, false);
    INFO(describe(cs, p));
    const auto x = kernel_test::random_floats(rng, p.N * p.C * p.H * p.W, -4.f, 4.f);
    const auto dy = kernel_test::random_floats(rng, p.N * p.C * p.OH * p.OW, -1.f, 1.f);
    // Piecewise linear: a step far below the gaps between the values keeps every argmax.
    const ref::DVec fd = ref::fd_grad([&](const ref::DVec& v) { return ref::pool2d_fwd(p, v); }, ref::to_double(x),
                                      ref::to_double(dy), 1e-6);
    // Ties: the gradient goes to the first maximum of each window only.
    auto xt = x;
    for (float& v : xt) v = std::floor(v * 0.5f);
    const auto arg_t = ref::maxpool_argmax(p, xt);
    ref::DVec want_t(x.size(), 0.0);
    for (size_t o = 0; o < arg_t.size(); ++o)
      if (arg_t[o] >= 0) want_t[o / (p.OH * p.OW) * p.H * p.W + static_cast<size_t>(arg_t[o])] += dy[o];
    kernel_test::for_each_target([&](const char*) {
      const size_t n_out = dy.size();
      std::vector<float> y(n_out);
      std::vector<int32_t> arg(n_out);
      std::vector<float> dx1(x.size(), std::nanf("")), dx3(x.size(), std::nanf(""));
      kernels::maxpool2d_forward_argmax(p, x.data(), y.data(), arg.data(), kernels::SerialParallel());
      kernels::maxpool2d_backward(p, dy.data(), arg.data(), dx1.data(), kernels::SerialParallel());
      kernels::maxpool2d_backward(p, dy.data(), arg.data(), dx3.data(), kernel_test::ThreadParallel(3));
      check_grad(dx1, fd, 1e-5, 1e-6, worst);
      CHECK(std::memcmp(dx1.data(), dx3.data(), x.size() * sizeof(float)) == 0);
      kernels::maxpool2d_forward_argmax(p, xt.data(), y.data(), arg.data(), kernels::SerialParallel());
      kernels::maxpool2d_backward(p, dy.data(), arg.data(), dx1.data(), kernel_test::ThreadParallel(3));
      check_grad(dx1, want_t, 1e-6, 1e-7, worst);
    });
  }
  MESSAGE("maxpool backward max rel_norm: ", worst);
}

TEST_CASE("avgpool2d_backward: finite differences, count_include_pad 0/1") {
  std::mt19937 rng(kernel_test::test_seed("avgpool_backward"));
  double worst = 0;
  for (const Case& cs : kCases)
    for (bool cip : {false, true}) {
      const Pool2dParams p = test::pool_params(cs, PoolKind::kAvg, cip);
      INFO(describe(cs, p));
      const auto x = kernel_test::random_floats(rng, p.N * p.C * p.H * p.W, -4.f, 4.f);
      const auto dy = kernel_test::random_floats(rng, p.N * p.C * p.OH * p.OW, -1.f, 1.f);
      const ref::DVec fd = ref::fd_grad([&](const ref::DVec& v) { return ref::pool2d_fwd(p, v); }, ref::to_double(x),
                                        ref::to_double(dy), 0.5);  // linear: exact
      kernel_test::for_each_target([&](const char*) {
        std::vector<float> dx1(x.size(), std::nanf("")), dx3(x.size(), std::nanf(""));
        kernels::avgpool2d_backward(p, dy.data(), dx1.data(), kernels::SerialParallel());
        kernels::avgpool2d_backward(p, dy.data(), dx3.data(), kernel_test::ThreadParallel(3));
        check_grad(dx1, fd, 1e-5, 1e-6, worst);
        CHECK(std::memcmp(dx1.data(), dx3.data(), x.size() * sizeof(float)) == 0);
      });
    }
  MESSAGE("avgpool backward max rel_norm: ", worst);
}

TEST_CASE("global_avgpool_backward: finite differences") {
  std::mt19937 rng(kernel_test::test_seed("global_avgpool_backward"));
  double worst = 0;
  for (size_t hw : {size_t{1}, size_t{7}, size_t{16}, size_t{49}, size_t{1000}, size_t{3000}}) {
    kernels::GlobalPoolParams p;
    p.NC = hw >= 1000 ? 37 : 5;  // 37 planes of 1000+: several tasks
    p.HW = hw;
    const auto x = kernel_test::random_floats(rng, p.NC * p.HW, -4.f, 4.f);
    const auto dy = kernel_test::random_floats(rng, p.NC, -1.f, 1.f);
    // Finite differences on the small planes; the large ones (too slow for them) against the
    // closed form dy / HW that the small ones confirm.
    ref::DVec fd(x.size());
    if (hw < 1000) {
      fd = ref::fd_grad(
          [&](const ref::DVec& v) {
            ref::DVec y(p.NC, 0.0);
            for (size_t i = 0; i < v.size(); ++i) y[i / p.HW] += v[i] / static_cast<double>(p.HW);
            return y;
          },
          ref::to_double(x), ref::to_double(dy), 0.5);
    } else {
      for (size_t i = 0; i < x.size(); ++i) fd[i] = dy[i / p.HW] / static_cast<double>(p.HW);
    }
    kernel_test::for_each_target([&](const char*) {
      std::vector<float> dx1(x.size(), std::nanf("")), dx3(x.size(), std::nanf(""));
      kernels::global_avgpool_backward(p, dy.data(), dx1.data(), kernels::SerialParallel());
      kernels::global_avgpool_backward(p, dy.data(), dx3.data(), kernel_test::ThreadParallel(3));
      INFO("hw=", hw);
      check_grad(dx1, fd, 1e-6, 1e-7, worst);
      CHECK(std::memcmp(dx1.data(), dx3.data(), x.size() * sizeof(float)) == 0);
    });
  }
  MESSAGE("global avgpool backward max rel_norm: ", worst);
}
