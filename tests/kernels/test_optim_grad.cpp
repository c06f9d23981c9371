// softmax_xent (loss, gradient, correct count) against a double reference and finite
// differences of the loss; sgd_step against PyTorch's update rule computed by hand, every
// compiled target, 1 vs 3 threads bit-identical.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "kernels/targets_threads.h"
#include "reference/grad_ref.h"

using namespace convoy;

TEST_CASE("softmax_xent: loss, gradient vs finite differences, accuracy count, large logits") {
  std::mt19937 rng(kernel_test::test_seed("softmax_xent"));
  struct Case {
    size_t N, K;
    float scale;
  };
  const Case cases[] = {{1, 1, 1.f}, {1, 2, 1.f}, {4, 10, 3.f}, {7, 17, 1.f}, {32, 10, 5.f}, {3, 1000, 2.f}, {5, 6, 1000.f}};
  double worst = 0;
  for (const Case& cs : cases) {
    INFO("N=", cs.N, " K=", cs.K, " scale=", cs.scale);
    const auto logits = kernel_test::random_floats(rng, cs.N * cs.K, -cs.scale, cs.scale);
    std::vector<int32_t> labels(cs.N);
    for (size_t n = 0; n < cs.N; ++n) labels[n] = static_cast<int32_t>(rng() % cs.K);
    ref::DVec grad_ref;
    const double loss_ref = ref::xent_ref(logits, labels, cs.N, cs.K, grad_ref);
    size_t correct_ref = 0;
    for (size_t n = 0; n < cs.N; ++n) {
      const float* l = logits.data() + n * cs.K;
      if (static_cast<size_t>(std::max_element(l, l + cs.K) - l) == static_cast<size_t>(labels[n])) ++correct_ref;
    }
    // Finite differences of the double loss (smooth: step 1e-4 of logits of order 1..1000).
    std::vector<float> lp = logits;
    ref::DVec fd(logits.size());
    for (size_t i = 0; i < logits.size() && cs.scale < 100.f; ++i) {
      std::vector<double> l2(logits.begin(), logits.end());
      auto loss_d = [&](const std::vector<double>& v) {
        double s = 0;
        for (size_t n = 0; n < cs.N; ++n) {
          double m = -1e300;
          for (size_t k = 0; k < cs.K; ++k) m = std::max(m, v[n * cs.K + k]);
          double z = 0;
          for (size_t k = 0; k < cs.K; ++k) z += std::exp(v[n * cs.K + k] - m);
          s += (m + std::log(z) - v[n * cs.K + static_cast<size_t>(labels[n])]) / static_cast<double>(cs.N);
        }
        return s;
      };
      const double h = 1e-4;
      l2[i] = logits[i] + h;
      const double a = loss_d(l2);
      l2[i] = logits[i] - h;
      const double b = loss_d(l2);
      fd[i] = (a - b) / (2 * h);
    }
    std::vector<float> g(logits.size(), std::nanf(""));
    const kernels::XentResult r = kernels::softmax_xent(logits.data(), labels.data(), cs.N, cs.K, g.data());
    CHECK(std::fabs(r.loss - loss_ref) <= 1e-6 * std::max(1.0, std::fabs(loss_ref)));
    CHECK(r.correct == correct_ref);
    ref::GradErr e = ref::grad_error(g.data(), grad_ref, 1e-5, 1e-7);
    INFO("rel_norm ", e.rel_norm, " first bad ", e.first_bad);
    CHECK(e.elem_ok);
    if (cs.scale < 100.f) {
      e = ref::grad_error(g.data(), fd, 1e-4, 1e-6);
      worst = std::max(worst, e.rel_norm);
      CHECK(e.rel_norm <= 1e-4);
      CHECK(e.elem_ok);
    }
    const kernels::XentResult r2 = kernels::softmax_xent(logits.data(), labels.data(), cs.N, cs.K, nullptr);
    CHECK(r2.loss == r.loss);
    CHECK(r2.correct == r.correct);
    // In place: dlogits over the logits.
    lp = logits;
    kernels::softmax_xent(lp.data(), labels.data(), cs.N, cs.K, lp.data());
    CHECK(std::memcmp(lp.data(), g.data(), g.size() * sizeof(float)) == 0);
  }
  MESSAGE("softmax_xent gradient max rel_norm vs finite differences: ", worst);
}

TEST_CASE("softmax_xent: ties count the first maximum") {
  const std::vector<float> logits = {1.f, 3.f, 3.f, 0.f, 2.f, 2.f};
  const std::vector<int32_t> labels = {1, 2};
  CHECK(kernels::softmax_xent(logits.data(), labels.data(), 2, 3, nullptr).correct == 1);
}

TEST_CASE("sgd_step: two steps of torch.optim.SGD semantics, momentum 0 and 0.9, weight decay") {
  std::mt19937 rng(kernel_test::test_seed("sgd"));
  auto sizes = kernel_test::odd_sizes();
  sizes.push_back(100003);
  for (float momentum : {0.f, 0.9f})
    for (size_t n : sizes) {
      INFO("n=", n, " momentum=", momentum);
      const auto w0 = kernel_test::random_floats(rng, n, -1.f, 1.f);
      const auto g1 = kernel_test::random_floats(rng, n, -1.f, 1.f);
      const auto g2 = kernel_test::random_floats(rng, n, -1.f, 1.f);
      kernels::SgdParams p;
      p.count = n;
      p.lr = 0.05f;
      p.momentum = momentum;
      p.weight_decay = 5e-4f;
      std::vector<float> w_ref = w0, v_ref(n, 0.f);
      ref::sgd_ref(n, p.lr, p.momentum, p.weight_decay, w_ref.data(), g1.data(), v_ref.data(), true);
      ref::sgd_ref(n, p.lr, p.momentum, p.weight_decay, w_ref.data(), g2.data(), v_ref.data(), false);
      kernel_test::for_each_target([&](const char*) {
        std::vector<float> w1 = w0, v1(n, 0.f), w3 = w0, v3(n, 0.f);
        const kernel_test::ThreadParallel par3(3);
        kernels::sgd_step(p, w1.data(), g1.data(), v1.data(), kernels::SerialParallel());
        kernels::sgd_step(p, w1.data(), g2.data(), v1.data(), kernels::SerialParallel());
        kernels::sgd_step(p, w3.data(), g1.data(), v3.data(), par3);
        kernels::sgd_step(p, w3.data(), g2.data(), v3.data(), par3);
        // One rounding per operation either way; a contracted multiply-add may differ by an ulp.
        kernel_test::all_close(w1, w_ref, 1e-7, 1e-6, "w");
        kernel_test::all_close(v1, v_ref, 1e-7, 1e-6, "velocity");
        CHECK(std::memcmp(w1.data(), w3.data(), n * sizeof(float)) == 0);
        CHECK(std::memcmp(v1.data(), v3.data(), n * sizeof(float)) == 0);
      });
    }
}
