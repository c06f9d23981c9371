// The backward kernels against PyTorch autograd (tests/gen/gen_grad_data.py writes the cases into
// $CONVOY_TEST_DATA/grad): conv (groups, stride, asymmetric pads, dilation, depthwise, 1x1),
// linear through kernels::gemm + bias_backward, max/avg pooling (ceil mode, count_include_pad,
// ties), adaptive average pooling to 1x1, LRN, Relu/LeakyRelu, Dropout with a given mask,
// cross-entropy, and two torch.optim.SGD steps.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/activation_grad.h"
#include "kernels/bias_grad.h"
#include "kernels/conv2d_grad.h"
#include "kernels/gemm.h"
#include "kernels/lrn_grad.h"
#include "kernels/pool2d_grad.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "npy_test_util.h"

using namespace convoy;
namespace fs = std::filesystem;

namespace {

struct Loaded {
  fs::path dir;
  std::string name;
  std::vector<float> params;
  testing::NpyArray get(const std::string& key) const { return testing::read_npy_f32(dir / (name + "." + key + ".npy")); }
  std::vector<float> data(const std::string& key) const { return get(key).data; }
  size_t p(size_t i) const { return static_cast<size_t>(params.at(i)); }
};

// Worst relative norm per family, reported at the end.
std::map<std::string, double>& worst() {
  static std::map<std::string, double> w;
  return w;
}

// ||got - want|| / ||want|| <= rel_norm_tol, and elementwise |got - want| <= 1e-3 * |want| +
// 1e-4 * max|want|.
void compare(const std::string& family, const std::string& what, const std::vector<float>& got,
             const std::vector<float>& want, double rel_norm_tol = 1e-4) {
  REQUIRE(got.size() == want.size());
  double num = 0, den = 0, max_ref = 0;
  for (float v : want) max_ref = std::max(max_ref, std::fabs(static_cast<double>(v)));
  size_t bad = want.size();
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
    if (bad == want.size() && !(std::fabs(d) <= 1e-3 * std::fabs(want[i]) + 1e-4 * max_ref)) bad = i;
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  double& w = worst()[family];
  w = std::max(w, rel);
  INFO(what, ": rel_norm ", rel);
  CHECK(rel <= rel_norm_tol);
  if (bad < want.size()) FAIL_CHECK(what, ": index ", bad, " got ", got[bad], " expected ", want[bad]);
}

void run_conv(const Loaded& c) {
  kernels::Conv2dParams p;
  p.N = c.p(0), p.C = c.p(1), p.H = c.p(2), p.W = c.p(3), p.M = c.p(4), p.KH = c.p(5), p.KW = c.p(6);
  p.group = c.p(7), p.stride_h = c.p(8), p.stride_w = c.p(9), p.pad_top = c.p(10), p.pad_left = c.p(11);
  p.dil_h = c.p(14), p.dil_w = c.p(15);
  const testing::NpyArray dy = c.get("dy");
  REQUIRE(dy.shape.size() == 4);
  p.OH = static_cast<size_t>(dy.shape[2]);
  p.OW = static_cast<size_t>(dy.shape[3]);
  CHECK(p.OH == (p.H + c.p(10) + c.p(12) - ((p.KH - 1) * p.dil_h + 1)) / p.stride_h + 1);
  const auto x = c.data("x"), w = c.data("w");
  const kernels::SerialParallel par;
  std::vector<float> dx(x.size()), dw(w.size()), db(p.M);
  std::vector<float> scratch(std::max(kernels::conv2d_backward_data_scratch_floats(p, 1),
                                      kernels::conv2d_backward_weight_scratch_floats(p, 1)) +
                             1);
  kernels::conv2d_backward_data(p, dy.data.data(), w.data(), dx.data(), scratch.data(), par);
  kernels::conv2d_backward_weight(p, x.data(), dy.data.data(), dw.data(), false, scratch.data(), par);
  kernels::BiasGradParams bp;
  bp.outer = p.N;
  bp.C = p.M;
  bp.inner = p.OH * p.OW;
  kernels::bias_backward(bp, dy.data.data(), db.data(), par);
  compare("conv", "dx", dx, c.data("dx"));
  compare("conv", "dw", dw, c.data("dw"));
  compare("conv", "db", db, c.data("db"));
}

void run_linear(const Loaded& c) {
  const size_t N = c.p(0), IN = c.p(1), OUT = c.p(2);
  const auto x = c.data("x"), w = c.data("w"), dy = c.data("dy");
  const kernels::SerialParallel par;
  // dx[N, IN] = dy[N, OUT] * w[OUT, IN]
  kernels::GemmParams gx;
  gx.M = N, gx.N = IN, gx.K = OUT;
  gx.a_rs = static_cast<ptrdiff_t>(OUT), gx.a_cs = 1;
  gx.b_rs = static_cast<ptrdiff_t>(IN), gx.b_cs = 1;
  gx.ldc = IN;
  // dw[OUT, IN] = dy^T * x: A(i, k) = dy[k][i]
  kernels::GemmParams gw;
  gw.M = OUT, gw.N = IN, gw.K = N;
  gw.a_rs = 1, gw.a_cs = static_cast<ptrdiff_t>(OUT);
  gw.b_rs = static_cast<ptrdiff_t>(IN), gw.b_cs = 1;
  gw.ldc = IN;
  std::vector<float> scratch(std::max(kernels::gemm_scratch_floats(gx, 1), kernels::gemm_scratch_floats(gw, 1)) + 1);
  std::vector<float> dx(N * IN), dw(OUT * IN), db(OUT);
  kernels::gemm(gx, dy.data(), w.data(), dx.data(), scratch.data(), par);
  kernels::gemm(gw, dy.data(), x.data(), dw.data(), scratch.data(), par);
  kernels::BiasGradParams bp;
  bp.outer = N;
  bp.C = OUT;
  bp.inner = 1;
  kernels::bias_backward(bp, dy.data(), db.data(), par);
  compare("linear", "dx", dx, c.data("dx"));
  compare("linear", "dw", dw, c.data("dw"));
  compare("linear", "db", db, c.data("db"));
}

// PyTorch pads symmetrically; its ceil-mode windows may run past the padded input, and its
// count_include_pad divisor counts only positions inside [-pad, size + pad): ONNX pads
// (pad, pad, pad, pad) with the output size taken from PyTorch's y.
kernels::Pool2dParams pool_params(const Loaded& c, const testing::NpyArray& y, kernels::PoolKind kind) {
  kernels::Pool2dParams p;
  p.N = c.p(0), p.C = c.p(1), p.H = c.p(2), p.W = c.p(3), p.KH = c.p(4), p.KW = c.p(5);
  p.stride_h = c.p(6), p.stride_w = c.p(7), p.pad_top = c.p(8), p.pad_left = c.p(9);
  p.pad_bottom = p.pad_top;
  p.pad_right = p.pad_left;
  p.kind = kind;
  p.count_include_pad = kind == kernels::PoolKind::kAvg && c.p(11) != 0;
  REQUIRE(y.shape.size() == 4);
  p.OH = static_cast<size_t>(y.shape[2]);
  p.OW = static_cast<size_t>(y.shape[3]);
  return p;
}

void run_maxpool(const Loaded& c) {
  const testing::NpyArray y_ref = c.get("y");
  const kernels::Pool2dParams p = pool_params(c, y_ref, kernels::PoolKind::kMax);
  const auto x = c.data("x"), dy = c.data("dy");
  const kernels::SerialParallel par;
  std::vector<float> y(y_ref.data.size()), dx(x.size());
  std::vector<int32_t> arg(y.size());
  kernels::maxpool2d_forward_argmax(p, x.data(), y.data(), arg.data(), par);
  kernels::maxpool2d_backward(p, dy.data(), arg.data(), dx.data(), par);
  CHECK(y == y_ref.data);
  compare("maxpool", "dx", dx, c.data("dx"), 1e-6);
}

void run_avgpool(const Loaded& c) {
  const testing::NpyArray y_ref = c.get("y");
  const kernels::Pool2dParams p = pool_params(c, y_ref, kernels::PoolKind::kAvg);
  const auto dy = c.data("dy");
  std::vector<float> dx(p.N * p.C * p.H * p.W);
  kernels::avgpool2d_backward(p, dy.data(), dx.data(), kernels::SerialParallel());
  compare("avgpool", "dx", dx, c.data("dx"), 1e-6);
}

void run_gap(const Loaded& c) {
  kernels::GlobalPoolParams p;
  p.NC = c.p(0) * c.p(1);
  p.HW = c.p(2) * c.p(3);
  const auto dy = c.data("dy");
  std::vector<float> dx(p.NC * p.HW);
  kernels::global_avgpool_backward(p, dy.data(), dx.data(), kernels::SerialParallel());
  compare("gap", "dx", dx, c.data("dx"), 1e-6);
}

void run_lrn(const Loaded& c) {
  kernels::LrnParams p;
  p.N = c.p(0), p.C = c.p(1), p.HW = c.p(2) * c.p(3), p.size = c.p(4);
  p.alpha = c.params.at(5), p.beta = c.params.at(6), p.bias = c.params.at(7);
  const auto x = c.data("x"), dy = c.data("dy");
  std::vector<float> dx(x.size());
  kernels::lrn_backward(p, x.data(), dy.data(), dx.data(), kernels::SerialParallel());
  compare("lrn", "dx", dx, c.data("dx"));
}

void run_relu(const Loaded& c) {
  kernels::ActGradParams p;
  p.count = c.p(0);
  const float alpha = c.params.at(1);
  p.kind = alpha < 0.f ? kernels::ActGradKind::kRelu : kernels::ActGradKind::kLeakyRelu;
  p.alpha = alpha < 0.f ? 0.f : alpha;
  const auto y = c.data("y"), dy = c.data("dy");
  std::vector<float> dx(p.count);
  kernels::activation_backward(p, y.data(), dy.data(), dx.data(), kernels::SerialParallel());
  compare("relu", "dx", dx, c.data("dx"), 1e-7);
}

void run_dropout(const Loaded& c) {
  const size_t n = c.p(0);
  const auto mask = c.data("mask"), dy = c.data("dy");
  std::vector<float> dx(n);
  kernels::dropout_backward(n, dy.data(), mask.data(), dx.data(), kernels::SerialParallel());
  compare("dropout", "dx", dx, c.data("dx"), 1e-7);
}

void run_xent(const Loaded& c) {
  const size_t N = c.p(0), K = c.p(1);
  const auto logits = c.data("logits"), labels_f = c.data("labels");
  std::vector<int32_t> labels(labels_f.begin(), labels_f.end());
  std::vector<float> g(N * K);
  const kernels::XentResult r = kernels::softmax_xent(logits.data(), labels.data(), N, K, g.data());
  const double loss_ref = c.data("loss").at(0);
  INFO("loss ", r.loss, " torch ", loss_ref);
  CHECK(std::fabs(r.loss - loss_ref) <= 1e-6 * std::max(1.0, std::fabs(loss_ref)));
  compare("xent", "dlogits", g, c.data("dlogits"), 1e-5);
}

void run_sgd(const Loaded& c) {
  kernels::SgdParams p;
  p.count = c.p(0);
  p.lr = c.params.at(1), p.momentum = c.params.at(2), p.weight_decay = c.params.at(3);
  auto w = c.data("w0");
  std::vector<float> v(p.count, 0.f);
  kernels::sgd_step(p, w.data(), c.data("g1").data(), v.data(), kernels::SerialParallel());
  kernels::sgd_step(p, w.data(), c.data("g2").data(), v.data(), kernels::SerialParallel());
  const auto w2 = c.data("w2"), v2 = c.data("v2");
  double max_w = 0, max_v = 0;
  for (size_t i = 0; i < p.count; ++i) {
    max_w = std::max(max_w, std::fabs(static_cast<double>(w[i]) - w2[i]));
    max_v = std::max(max_v, std::fabs(static_cast<double>(v[i]) - v2[i]));
  }
  MESSAGE("sgd vs torch.optim.SGD after two steps: max |dw| ", max_w, " max |dv| ", max_v);
  CHECK(max_w <= 1e-6);
  CHECK(max_v <= 1e-6);
}

}  // namespace

TEST_CASE("backward kernels agree with PyTorch autograd") {
  const fs::path dir = testing::test_data_dir() / "grad";
  REQUIRE_MESSAGE(fs::exists(dir / "cases.txt"), testing::kMissingDataHint);
  std::ifstream list(dir / "cases.txt");
  std::string line;
  size_t n_cases = 0;
  const std::map<std::string, void (*)(const Loaded&)> runners = {
      {"conv", run_conv},         {"linear", run_linear}, {"maxpool", run_maxpool}, {"avgpool", run_avgpool},
      {"gap", run_gap},           {"lrn", run_lrn},       {"relu", run_relu},       {"dropout", run_dropout},
      {"xent", run_xent},         {"sgd", run_sgd}};
  while (std::getline(list, line)) {
    std::istringstream ls(line);
    std::string family, name;
    if (!(ls >> family >> name)) continue;
    INFO("case ", name);
    const auto it = runners.find(family);
    REQUIRE_MESSAGE(it != runners.end(), "unknown family ", family);
    Loaded c{dir, name, {}};
    c.params = c.data("params");
    it->second(c);
    ++n_cases;
  }
  CHECK(n_cases >= 20);
  for (const auto& [family, rel] : worst()) MESSAGE(family, ": worst rel_norm vs PyTorch ", rel);
}
