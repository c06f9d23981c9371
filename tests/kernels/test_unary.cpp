#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/targets_threads.h"
#include "kernels/unary.h"
#include "reference/elementwise_ref.h"

using namespace convoy;
using kernels::UnaryOp;
using kernels::UnaryParams;

namespace {

struct OpCase {
  UnaryOp op;
  const char* name;
  float lo, hi;       // input range
  double atol, rtol;  // tolerance against the double reference
};

const OpCase kCases[] = {
    {UnaryOp::kCopy, "copy", -5, 5, 0, 0},
    {UnaryOp::kRelu, "relu", -5, 5, 0, 0},
    {UnaryOp::kLeakyRelu, "leaky_relu", -5, 5, 0, 1e-7},
    {UnaryOp::kClip, "clip", -5, 5, 0, 0},
    {UnaryOp::kSigmoid, "sigmoid", -30, 30, 1e-30, 1e-6},
    {UnaryOp::kTanh, "tanh", -6, 6, 1e-7, 1e-6},
    {UnaryOp::kExp, "exp", -20, 20, 1e-30, 1e-6},
    {UnaryOp::kNeg, "neg", -5, 5, 0, 0},
    {UnaryOp::kAbs, "abs", -5, 5, 0, 0},
    {UnaryOp::kSqrt, "sqrt", 0, 100, 0, 1e-7},
};

UnaryParams params(const OpCase& c, size_t n) {
  UnaryParams p;
  p.count = n;
  p.op = c.op;
  p.alpha = c.op == UnaryOp::kClip ? -1.5f : 0.1f;
  p.beta = 2.25f;
  return p;
}

}  // namespace

TEST_CASE("unary: every op, odd sizes, every target, in-place") {
  std::mt19937 rng(kernel_test::test_seed("unary"));
  kernels::SerialParallel serial;
  kernel_test::for_each_target([&](const char*) {
    for (const OpCase& c : kCases) {
      INFO("op ", c.name);
      for (size_t n : kernel_test::odd_sizes()) {
        INFO("n ", n);
        const UnaryParams p = params(c, n);
        const auto in = kernel_test::random_floats(rng, n, c.lo, c.hi);
        const auto ref = ref::unary(p, in);
        std::vector<float> out(n, -7.f);
        kernels::unary(p, in.data(), out.data(), serial);
        kernel_test::all_close(out, ref, c.atol, c.rtol, c.name);
        auto inplace = in;
        kernels::unary(p, inplace.data(), inplace.data(), serial);
        kernel_test::all_close(inplace, ref, c.atol, c.rtol, c.name);
      }
    }
  });
}

TEST_CASE("unary: the kernel writes exactly [0, count)") {
  kernels::SerialParallel serial;
  kernel_test::for_each_target([&](const char*) {
    for (const OpCase& c : kCases) {
      for (size_t n : {size_t{1}, size_t{5}, size_t{17}}) {
        std::vector<float> in(n + 8, 0.5f), out(n + 8, -9.f);
        kernels::unary(params(c, n), in.data() + 4, out.data() + 4, serial);
        for (size_t i = 0; i < 4; ++i) CHECK(out[i] == -9.f);
        for (size_t i = n + 4; i < n + 8; ++i) CHECK(out[i] == -9.f);
      }
    }
  });
}

TEST_CASE("unary: extreme inputs (no overflow, NaN/inf)") {
  kernels::SerialParallel serial;
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> in = {-1e30f, -1000.f, -110.f, -100.f, -88.f, -20.f, -1e-30f, 0.f,
                                 1e-30f, 20.f,    88.f,   89.f,   100.f,  1000.f, 1e30f, inf, -inf};
  kernel_test::for_each_target([&](const char*) {
    for (UnaryOp op : {UnaryOp::kSigmoid, UnaryOp::kTanh, UnaryOp::kExp}) {
      UnaryParams p;
      p.count = in.size();
      p.op = op;
      std::vector<double> ref(in.size());
      for (size_t i = 0; i < in.size(); ++i) ref[i] = ref::unary_one(op, in[i], 0, 0);
      // Results that underflow float become 0 or a denormal: the absolute tolerance covers it.
      std::vector<float> out(in.size());
      kernels::unary(p, in.data(), out.data(), serial);
      for (size_t i = 0; i < in.size(); ++i) {
        INFO("op ", static_cast<int>(op), " x ", in[i]);
        if (std::isinf(ref[i]) || ref[i] > std::numeric_limits<float>::max()) {
          CHECK(out[i] == inf);
        } else {
          CHECK(std::fabs(out[i] - ref[i]) <= 1e-37 + 1e-6 * std::fabs(ref[i]));
        }
      }
      const float nan = std::numeric_limits<float>::quiet_NaN();
      float x = nan;
      p.count = 1;
      kernels::unary(p, &x, &x, serial);
      CHECK(std::isnan(x));
    }
  });
}

TEST_CASE("unary: large counts split into tasks give identical results for 1 and 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("unary-parallel"));
  const size_t n = 100003;
  kernels::SerialParallel serial;
  kernel_test::ThreadParallel three(3);
  kernel_test::for_each_target([&](const char*) {
    for (const OpCase& c : kCases) {
      INFO("op ", c.name);
      const UnaryParams p = params(c, n);
      const auto in = kernel_test::random_floats(rng, n, c.lo, c.hi);
      std::vector<float> a(n), b(n);
      kernels::unary(p, in.data(), a.data(), serial);
      kernels::unary(p, in.data(), b.data(), three);
      CHECK(a == b);
      kernel_test::all_close(a, ref::unary(p, in), c.atol, c.rtol, c.name);
    }
  });
}
