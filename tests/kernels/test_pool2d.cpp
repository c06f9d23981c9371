#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/pool2d.h"
#include "kernels/pool_case.h"
#include "kernels/targets_threads.h"
#include "reference/pool2d_ref.h"

using namespace convoy;
using kernels::PoolKind;
using kernels::Pool2dParams;

namespace {

using Case = test::PoolCase;

// fill_neg_inf: every input is -inf (max must keep -inf for non-empty windows, lowest for empty ones).
void run_case(const Case& cs, PoolKind kind, bool cip, std::mt19937& rng, bool fill_neg_inf = false) {
  const Pool2dParams p = test::pool_params(cs, kind, cip);
  char buf[256];
  std::snprintf(buf, sizeof buf, "N=%zu C=%zu H=%zu W=%zu K=%zux%zu s=%zu,%zu pads=%zu,%zu,%zu,%zu dil=%zu,%zu ceil=%d OH=%zu OW=%zu %s cip=%d",
                cs.N, cs.C, cs.H, cs.W, cs.KH, cs.KW, cs.sh, cs.sw, cs.pt, cs.pl, cs.pb, cs.pr, cs.dh, cs.dw, cs.ceil_mode, p.OH,
                p.OW, kind == PoolKind::kMax ? "max" : "avg", cip);
  INFO(buf);
  auto in = kernel_test::random_floats(rng, p.N * p.C * p.H * p.W, -4.f, 4.f);
  if (fill_neg_inf) std::fill(in.begin(), in.end(), -std::numeric_limits<float>::infinity());
  const auto want = ref::pool2d_ref(p, in.data());
  const size_t out_size = want.size();
  std::vector<float> got1(out_size, std::nanf("")), got3(out_size, std::nanf(""));
  kernels::pool2d(p, in.data(), got1.data(), kernels::SerialParallel());
  kernels::pool2d(p, in.data(), got3.data(), kernel_test::ThreadParallel(3));
  // Max is exact; average: one rounding per add + the division.
  const double rtol = kind == PoolKind::kMax ? 0.0 : 4e-7 * static_cast<double>(p.KH * p.KW + 2);
  const double atol = kind == PoolKind::kMax ? 0.0 : 4.0 * rtol;
  kernel_test::all_close(got1, want, atol, rtol, buf);
  CHECK(std::memcmp(got1.data(), got3.data(), out_size * sizeof(float)) == 0);
}

// N, C, H, W, KH, KW, sh, sw, pt, pl, pb, pr, dh, dw, ceil
const Case kCases[] = {
    {1, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false},          // VGG
    {2, 3, 13, 13, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, false},        // AlexNet
    {1, 2, 15, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false},        // ResNet stem
    {1, 2, 14, 15, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, true},         // ceil mode, window past the input
    {1, 2, 11, 12, 3, 2, 2, 3, 1, 0, 1, 1, 1, 1, true},         // ceil mode + pads, past the padded input
    {1, 2, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},         // stride 1 (vector path)
    {1, 2, 9, 40, 3, 5, 1, 1, 2, 1, 0, 2, 2, 2, false},         // stride 1, dilation, asymmetric pads
    {2, 5, 7, 33, 2, 4, 1, 1, 1, 3, 1, 2, 1, 1, true},          // stride 1, ceil
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false},
    {1, 2, 5, 5, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, false},
    {1, 3, 12, 12, 3, 3, 3, 3, 1, 2, 0, 1, 2, 2, true},         // stride 3 dilation 2 ceil
    {1, 1, 224, 224, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false},       // AdaptiveAvgPool exported as 1x1
    {1, 2, 1, 5000, 1, 3, 1, 1, 0, 1, 0, 1, 1, 1, false},       // 1-D, several row chunks
    {1, 2, 1, 5003, 1, 7, 3, 3, 0, 3, 0, 3, 1, 1, true},        // 1-D strided, chunks, ceil
    {1, 1, 1, 5000, 1, 4500, 1, 1, 0, 0, 0, 0, 1, 1, false},    // window wider than the row buffer
    {1, 1, 2, 4700, 2, 2300, 1, 7, 1, 5, 0, 6, 1, 2, true},     // same, strided + dilated
};

// Output row widths around the vector length (16 floats with AVX-512: rows shorter than a vector,
// exact multiples, a partial last vector) and the model sizes, for the horizontal paths.
const size_t kWidths[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 34, 35, 55, 65, 112, 113};

}  // namespace

TEST_CASE("pool2d: max/avg, pads, strides, dilation, ceil mode, count_include_pad") {
  std::mt19937 rng(kernel_test::test_seed("pool2d"));
  kernel_test::for_each_target([&](const char*) {
    for (const Case& c : kCases) {
      run_case(c, PoolKind::kMax, false, rng);
      run_case(c, PoolKind::kAvg, false, rng);
      run_case(c, PoolKind::kAvg, true, rng);
    }
  });
}

TEST_CASE("pool2d: vector horizontal paths (stride 1, stride 2 de-interleaved, gathers) over row widths") {
  std::mt19937 rng(kernel_test::test_seed("pool2d_rows"));
  kernel_test::for_each_target([&](const char*) {
    for (size_t w : kWidths) {
      const size_t h = 5 + w % 4;
      // N, C, H, W, KH, KW, sh, sw, pt, pl, pb, pr, dh, dw, ceil
      const Case cases[] = {
          {1, 3, h, w, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false},  // ResNet stem 3x3/2 pad 1
          {1, 2, h + 2, w + 2, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, false},  // AlexNet 3x3/2
          {2, 2, h + 1, w + 1, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, true},   // ceil mode
          {1, 2, h, w, 2, 2, 2, 2, 0, 1, 1, 0, 1, 1, true},           // 2x2/2, asymmetric pads
          {1, 2, h + 4, w + 4, 3, 3, 2, 2, 1, 2, 0, 1, 2, 2, false},  // stride 2, dilation 2
          {1, 2, h, w, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},          // stride 1
          {1, 2, h + 2, w + 2, 3, 3, 3, 3, 1, 1, 0, 1, 1, 1, true},   // stride 3: gathers
          {1, 1, h + 3, w + 4, 5, 5, 4, 4, 2, 2, 2, 2, 1, 1, false},  // stride 4, 5x5
      };
      for (const Case& c : cases) {
        run_case(c, PoolKind::kMax, false, rng);
        run_case(c, PoolKind::kAvg, false, rng);
        run_case(c, PoolKind::kAvg, true, rng);
      }
    }
  });
}

TEST_CASE("pool2d: long rows in several buffer chunks, empty windows, -inf inputs") {
  std::mt19937 rng(kernel_test::test_seed("pool2d_chunks"));
  // N, C, H, W, KH, KW, sh, sw, pt, pl, pb, pr, dh, dw, ceil
  const Case cases[] = {
      {1, 2, 1, 9001, 1, 3, 1, 2, 0, 1, 0, 1, 1, 1, false},    // 1-D stride 2: 3 chunks
      {1, 2, 3, 12007, 3, 3, 2, 3, 1, 1, 1, 1, 1, 1, true},   // stride 3 gathers, chunks, ceil
      {1, 2, 6, 5, 3, 2, 2, 2, 1, 4, 0, 0, 1, 3, false},      // first window's columns all outside
      {1, 2, 6, 37, 3, 2, 2, 2, 1, 4, 0, 0, 1, 3, false},     // same, a vector wide
      {1, 1, 2, 40, 2, 3, 1, 1, 0, 5, 0, 5, 1, 1, false},      // stride 1, empty windows at both ends
  };
  kernel_test::for_each_target([&](const char*) {
    for (const Case& c : cases) {
      run_case(c, PoolKind::kMax, false, rng);
      run_case(c, PoolKind::kAvg, false, rng);
      run_case(c, PoolKind::kAvg, true, rng);
      run_case(c, PoolKind::kMax, false, rng, true);
    }
  });
}

TEST_CASE("global_pool: avg/max over odd plane sizes") {
  std::mt19937 rng(kernel_test::test_seed("global_pool"));
  kernel_test::for_each_target([&](const char*) {
    for (size_t hw : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{49}, size_t{127}, size_t{1000}})
      for (PoolKind kind : {PoolKind::kAvg, PoolKind::kMax}) {
        kernels::GlobalPoolParams p;
        p.NC = 7;
        p.HW = hw;
        p.kind = kind;
        const auto in = kernel_test::random_floats(rng, p.NC * p.HW, -4.f, 4.f);
        const auto want = ref::global_pool_ref(p, in.data());
        std::vector<float> got1(p.NC), got3(p.NC);
        kernels::global_pool(p, in.data(), got1.data(), kernels::SerialParallel());
        kernels::global_pool(p, in.data(), got3.data(), kernel_test::ThreadParallel(3));
        const double tol = kind == PoolKind::kMax ? 0.0 : 4e-7 * static_cast<double>(hw + 2);
        kernel_test::all_close(got1, want, tol, tol, "global_pool hw=" + std::to_string(hw));
        CHECK(std::memcmp(got1.data(), got3.data(), p.NC * sizeof(float)) == 0);
      }
  });
}
