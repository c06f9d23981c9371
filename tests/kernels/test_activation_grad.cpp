// Relu/LeakyRelu backward (from the forward output), Dropout forward/backward and the bias
// gradient: finite differences / closed forms in double, odd sizes, in-place, every compiled
// target, 1 vs 3 threads bit-identical.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/activation_grad.h"
#include "kernels/bias_grad.h"
#include "kernels/targets_threads.h"
#include "reference/grad_ref.h"

using namespace convoy;
using kernels::ActGradKind;

namespace {

std::vector<size_t> act_sizes() {
  auto s = kernel_test::odd_sizes();
  s.push_back(100003);  // several parallel chunks
  return s;
}

}  // namespace

TEST_CASE("activation_backward: Relu/LeakyRelu vs finite differences, derivative at 0, in-place") {
  std::mt19937 rng(kernel_test::test_seed("activation_grad"));
  double worst = 0;
  for (ActGradKind kind : {ActGradKind::kRelu, ActGradKind::kLeakyRelu})
    for (size_t n : act_sizes()) {
      const float alpha = kind == ActGradKind::kRelu ? 0.f : 0.1f;
      INFO((kind == ActGradKind::kRelu ? "relu" : "leaky_relu"), " n=", n);
      auto x = kernel_test::random_floats(rng, n, -2.f, 2.f);
      for (size_t i = 0; i < n; ++i) {
        if (std::fabs(x[i]) < 0.01f) x[i] = 0.5f;  // finite differences need |x| > h
        if (i % 7 == 3) x[i] = 0.f;                // the derivative at 0: 0 (Relu) or alpha
      }
      const auto dy = kernel_test::random_floats(rng, n, -1.f, 1.f);
      auto f = [&](double v) { return v > 0 ? v : alpha * v; };
      std::vector<float> y(n);
      for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(f(x[i]));
      // Elementwise, so the per-element difference quotient is the whole finite difference.
      ref::DVec want(n);
      const double h = 1e-3;
      for (size_t i = 0; i < n; ++i)
        want[i] = x[i] == 0.f ? (kind == ActGradKind::kRelu ? 0.0 : alpha * static_cast<double>(dy[i]))
                              : dy[i] * (f(x[i] + h) - f(x[i] - h)) / (2 * h);
      kernels::ActGradParams p;
      p.count = n;
      p.kind = kind;
      p.alpha = alpha;
      kernel_test::for_each_target([&](const char*) {
        std::vector<float> dx1(n, std::nanf("")), dx3(n, std::nanf(""));
        kernels::activation_backward(p, y.data(), dy.data(), dx1.data(), kernels::SerialParallel());
        kernels::activation_backward(p, y.data(), dy.data(), dx3.data(), kernel_test::ThreadParallel(3));
        const ref::GradErr e = ref::grad_error(dx1.data(), want, 1e-6, 0.0);
        worst = std::max(worst, e.rel_norm);
        INFO("first bad ", e.first_bad);
        CHECK(e.elem_ok);
        CHECK(std::memcmp(dx1.data(), dx3.data(), n * sizeof(float)) == 0);
        std::vector<float> inplace = dy;
        kernels::activation_backward(p, y.data(), inplace.data(), inplace.data(), kernel_test::ThreadParallel(3));
        CHECK(std::memcmp(dx1.data(), inplace.data(), n * sizeof(float)) == 0);
      });
    }
  MESSAGE("activation backward max rel_norm: ", worst);
}

TEST_CASE("dropout: mask values, keep rate, determinism, backward") {
  std::mt19937 rng(kernel_test::test_seed("dropout"));
  for (float ratio : {0.f, 0.1f, 0.5f, 0.9f, 1.f}) {
    const size_t n = 200003;
    INFO("ratio ", ratio);
    const auto x = kernel_test::random_floats(rng, n, -2.f, 2.f);
    kernels::DropoutParams p;
    p.count = n;
    p.ratio = ratio;
    p.seed = 0x1234567890abcdefull;
    std::vector<float> y1(n), m1(n), y3(n), m3(n), y_nomask(n);
    kernels::dropout_forward(p, x.data(), y1.data(), m1.data(), kernels::SerialParallel());
    kernels::dropout_forward(p, x.data(), y3.data(), m3.data(), kernel_test::ThreadParallel(3));
    kernels::dropout_forward(p, x.data(), y_nomask.data(), nullptr, kernel_test::ThreadParallel(3));
    CHECK(std::memcmp(y1.data(), y3.data(), n * sizeof(float)) == 0);
    CHECK(std::memcmp(m1.data(), m3.data(), n * sizeof(float)) == 0);
    CHECK(std::memcmp(y1.data(), y_nomask.data(), n * sizeof(float)) == 0);
    const float scale = ratio < 1.f ? 1.f / (1.f - ratio) : 0.f;
    size_t kept = 0;
    bool values_ok = true;
    for (size_t i = 0; i < n; ++i) {
      if (m1[i] != 0.f) ++kept;
      values_ok = values_ok && (m1[i] == 0.f || m1[i] == scale) && y1[i] == x[i] * m1[i];
    }
    CHECK(values_ok);
    // Binomial(n, 1 - ratio): within 6 standard deviations.
    const double mean = static_cast<double>(n) * (1.0 - ratio);
    const double sd = std::sqrt(static_cast<double>(n) * ratio * (1.0 - ratio));
    CHECK(std::fabs(static_cast<double>(kept) - mean) <= 6 * sd + 0.5);
    // A pure function of (seed, i): a shorter call gives the same prefix; another seed differs.
    kernels::DropoutParams q = p;
    q.count = 1001;
    std::vector<float> mq(q.count), yq(q.count);
    kernels::dropout_forward(q, x.data(), yq.data(), mq.data(), kernels::SerialParallel());
    CHECK(std::memcmp(mq.data(), m1.data(), q.count * sizeof(float)) == 0);
    if (ratio > 0.f && ratio < 1.f) {
      q.seed = p.seed + 1;
      kernels::dropout_forward(q, x.data(), yq.data(), mq.data(), kernels::SerialParallel());
      CHECK(std::memcmp(mq.data(), m1.data(), q.count * sizeof(float)) != 0);
    }
    // Backward: the forward is x * mask, so dx = dy * mask exactly (one rounding).
    const auto dy = kernel_test::random_floats(rng, n, -1.f, 1.f);
    kernel_test::for_each_target([&](const char*) {
      std::vector<float> dx(n, std::nanf("")), inplace = dy;
      kernels::dropout_backward(n, dy.data(), m1.data(), dx.data(), kernel_test::ThreadParallel(3));
      kernels::dropout_backward(n, inplace.data(), m1.data(), inplace.data(), kernels::SerialParallel());
      bool ok = true;
      for (size_t i = 0; i < n; ++i) ok = ok && dx[i] == dy[i] * m1[i];
      CHECK(ok);
      CHECK(std::memcmp(dx.data(), inplace.data(), n * sizeof(float)) == 0);
    });
  }
}

TEST_CASE("bias_backward: sums in double, accumulate, conv and Gemm layouts") {
  std::mt19937 rng(kernel_test::test_seed("bias_grad"));
  struct Case {
    size_t outer, C, inner;
  };
  const Case cases[] = {{1, 1, 1},     {2, 3, 49},   {3, 5, 17},  {8, 64, 1},   {5, 1000, 1}, {2, 17, 3025},
                        {1, 300, 15},  {128, 10, 1}, {4, 7, 16},  {3, 2, 100003}};
  double worst = 0;
  for (const Case& cs : cases) {
    INFO("outer=", cs.outer, " C=", cs.C, " inner=", cs.inner);
    const auto dy = kernel_test::random_floats(rng, cs.outer * cs.C * cs.inner, -1.f, 1.f);
    ref::DVec want(cs.C, 0.0);
    for (size_t o = 0; o < cs.outer; ++o)
      for (size_t c = 0; c < cs.C; ++c)
        for (size_t i = 0; i < cs.inner; ++i) want[c] += dy[(o * cs.C + c) * cs.inner + i];
    const auto db0 = kernel_test::random_floats(rng, cs.C, -1.f, 1.f);
    ref::DVec want_acc(cs.C);
    for (size_t c = 0; c < cs.C; ++c) want_acc[c] = want[c] + db0[c];
    // Float sums of outer*inner terms of magnitude <= 1: absolute error bound 1e-7 per term.
    double max_ref = 1e-30;
    for (double v : want) max_ref = std::max(max_ref, std::fabs(v));
    const double afloor = 1e-7 * static_cast<double>(cs.outer * cs.inner) / max_ref;
    kernel_test::for_each_target([&](const char*) {
      kernels::BiasGradParams p;
      p.outer = cs.outer;
      p.C = cs.C;
      p.inner = cs.inner;
      std::vector<float> db1(cs.C, std::nanf("")), db3(cs.C, std::nanf(""));
      kernels::bias_backward(p, dy.data(), db1.data(), kernels::SerialParallel());
      kernels::bias_backward(p, dy.data(), db3.data(), kernel_test::ThreadParallel(3));
      ref::GradErr e = ref::grad_error(db1.data(), want, 1e-6, afloor);
      worst = std::max(worst, e.rel_norm);
      INFO("rel_norm ", e.rel_norm, " max_abs ", e.max_abs, " first bad ", e.first_bad);
      CHECK(e.rel_norm <= 1e-5);
      CHECK(e.elem_ok);
      CHECK(std::memcmp(db1.data(), db3.data(), cs.C * sizeof(float)) == 0);
      p.accumulate = true;
      std::vector<float> acc = db0;
      kernels::bias_backward(p, dy.data(), acc.data(), kernel_test::ThreadParallel(3));
      e = ref::grad_error(acc.data(), want_acc, 1e-6, afloor + 1e-6);
      CHECK(e.elem_ok);
    });
  }
  MESSAGE("bias backward max rel_norm: ", worst);
}
