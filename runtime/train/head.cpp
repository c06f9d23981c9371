// A fresh classification head: the last Conv/Gemm/MatMul re-created with num_classes outputs.
// Initialisation (reproducible on every platform: our own generator, no std:: distributions):
//   kNormal:  weight ~ N(0, 0.01^2) (std 0.01), bias = 0;
//   kKaiming: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's nn.Linear/nn.Conv2d
//             default (fan_in = K for Gemm/MatMul, C/group*KH*KW for Conv).
// Values are drawn in row-major order, weight first then bias, from splitmix64(seed).
#include <cmath>

#include "runtime/error.h"
#include "runtime/train/train_internal.h"

namespace convoy::train {

uint64_t Rng::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  // Box-Muller with u1 in (0, 1]: log never sees 0. One value per pair (no cached state).
  const double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
}

int64_t layer_outputs(const Graph& g, const Node& n) {
  const ConstTensor* w = g.constant(n.inputs[1]);
  if (!w || w->shape.empty()) fail(str_cat(g.where(n), ": weight is not a constant tensor"));
  if (n.op_type == "Conv") return w->shape[0];
  if (n.op_type == "Gemm") {
    auto it = n.attrs.find("transB");
    const bool tb = it != n.attrs.end() && it->second.i != 0;
    if (w->shape.size() != 2) fail(str_cat(g.where(n), ": weight must be 2-D"));
    return tb ? w->shape[0] : w->shape[1];
  }
  if (w->shape.size() != 2) fail(str_cat(g.where(n), ": weight must be 2-D to be trained"));
  return w->shape[1];  // MatMul
}

int matmul_bias_add(const Graph& g, size_t idx) {
  const std::string& y = g.nodes[idx].outputs[0];
  int found = -1, users = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (const std::string& in : g.nodes[k].inputs)
      if (in == y) {
        ++users;
        if (g.nodes[k].op_type == "Add") found = static_cast<int>(k);
      }
  if (users != 1 || found < 0) return -1;
  const Node& add = g.nodes[static_cast<size_t>(found)];
  const std::string& other = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
  const ConstTensor* b = g.constant(other);
  if (!b || b->dtype != DType::kFloat32) return -1;
  int64_t big = 0;
  for (int64_t d : b->shape)
    if (d != 1) ++big;
  return big <= 1 ? found : -1;
}

std::string layer_bias(const Graph& g, size_t idx) {
  const Node& n = g.nodes[idx];
  if (n.op_type == "MatMul") {
    const int add = matmul_bias_add(g, idx);
    if (add < 0) return "";
    const Node& a = g.nodes[static_cast<size_t>(add)];
    return a.inputs[0] == n.outputs[0] ? a.inputs[1] : a.inputs[0];
  }
  if (n.inputs.size() > 2 && !n.inputs[2].empty() && g.is_const(n.inputs[2])) return n.inputs[2];
  return "";
}

bool replace_head(Graph& g, size_t head, int num_classes, TrainOptions::HeadInit init, uint64_t seed) {
  const Node& n = g.nodes[head];
  const int64_t old_out = layer_outputs(g, n);
  const int64_t nc = num_classes;
  if (old_out == nc) return false;
  const ConstTensor& w = *g.constant(n.inputs[1]);
  Shape ws = w.shape;
  int64_t fan_in = 0;
  if (n.op_type == "Conv") {
    auto it = n.attrs.find("group");
    if (it != n.attrs.end() && it->second.i != 1)
      fail(str_cat(g.where(n), ": cannot replace a grouped convolution head (group ", it->second.i, ")"));
    ws[0] = nc;
    fan_in = 1;
    for (size_t k = 1; k < ws.size(); ++k) fan_in *= ws[k];
  } else if (n.op_type == "Gemm") {
    auto it = n.attrs.find("transB");
    const bool tb = it != n.attrs.end() && it->second.i != 0;
    (tb ? ws[0] : ws[1]) = nc;
    fan_in = tb ? ws[1] : ws[0];
  } else if (n.op_type == "MatMul") {
    ws[1] = nc;
    fan_in = ws[0];
  } else {
    fail(str_cat(g.where(n), ": the head must be a Conv, Gemm or MatMul to be replaced"));
  }
  Rng rng(seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  auto draw = [&](bool bias) -> float {
    if (init == TrainOptions::HeadInit::kKaiming) return static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
    return bias ? 0.f : static_cast<float>(0.01 * rng.normal());
  };
  auto nw = ConstTensor::make(DType::kFloat32, ws);
  for (int64_t i = 0; i < nw->numel(); ++i) nw->f32()[i] = draw(false);
  g.constants[n.inputs[1]] = nw;
  const std::string bias = layer_bias(g, head);
  if (!bias.empty()) {
    // Same rank; the class axis (the dim equal to the old output count) becomes num_classes. A
    // scalar or broadcast-to-all bias stays one value.
    Shape bs = g.constant(bias)->shape;
    for (int64_t& dim : bs)
      if (dim == old_out && old_out != 1) dim = nc;
    auto nb = ConstTensor::make(DType::kFloat32, bs);
    for (int64_t i = 0; i < nb->numel(); ++i) nb->f32()[i] = draw(true);
    g.constants[bias] = nb;
  }
  // The class axis of the output (axis 1 of [N, K] or [N, K, 1, 1]) changes.
  for (const std::string& o : g.outputs) {
    ValueInfo& info = g.infos[o];
    if (info.known_rank && info.shape.size() >= 2 && info.shape[1] == old_out) info.shape[1] = nc;
  }
  return true;
}

}  // namespace convoy::train
