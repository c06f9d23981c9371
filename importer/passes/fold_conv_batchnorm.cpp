#include <cmath>

#include "importer/passes/pass_util.h"
#include "importer/passes/passes.h"

namespace convoy::passes {
namespace {

bool const_f32(const Graph& g, const std::string& v) {
  const ConstTensor* t = g.constant(v);
  return t && t->dtype == DType::kFloat32;
}

// Match: Conv with constant weights (and bias), whose only reader is an inference
// BatchNormalization with constant parameters and a single output.
bool matches(const Graph& g, const Node& conv, const Node& bn) {
  if (conv.op_type != "Conv" || !conv.domain.empty() || conv.inputs.size() > 3 || conv.has("_act")) return false;
  if (bn.op_type != "BatchNormalization" || !bn.domain.empty() || bn.inputs.size() != 5) return false;
  if (bn.outputs.size() != 1 || bn.has("_act") || (bn.has("training_mode") && bn.attrs.at("training_mode").i != 0)) return false;
  if (bn.inputs[0] != conv.outputs[0] || !single_use(g, conv.outputs[0])) return false;
  if (!const_f32(g, conv.inputs[1])) return false;
  if (conv.inputs.size() == 3 && !conv.inputs[2].empty() && !const_f32(g, conv.inputs[2])) return false;
  const ConstTensor* w = g.constant(conv.inputs[1]);
  if (w->shape.empty()) return false;
  for (size_t i = 1; i < 5; ++i) {
    const ConstTensor* t = g.constant(bn.inputs[i]);
    if (!t || t->dtype != DType::kFloat32 || t->shape != Shape{w->shape[0]}) return false;
  }
  return true;
}

}  // namespace

bool fold_conv_batchnorm(Graph& g) {
  bool changed = false;
  auto producers = g.producers();
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& bn = g.nodes[k];
    if (bn.op_type != "BatchNormalization" || bn.inputs.empty()) continue;
    auto p = producers.find(bn.inputs[0]);
    if (p == producers.end() || drop[p->second]) continue;
    Node& conv = g.nodes[p->second];
    if (!matches(g, conv, bn)) continue;
    // w' = w * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)
    const ConstTensor& w = *g.constant(conv.inputs[1]);
    const int64_t M = w.shape[0], per = w.numel() / M;
    const float eps = bn.has("epsilon") ? bn.attrs.at("epsilon").f : 1e-5f;
    const float* gamma = g.constant(bn.inputs[1])->f32();
    const float* beta = g.constant(bn.inputs[2])->f32();
    const float* mean = g.constant(bn.inputs[3])->f32();
    const float* var = g.constant(bn.inputs[4])->f32();
    const bool has_bias = conv.inputs.size() == 3 && !conv.inputs[2].empty();
    const float* b = has_bias ? g.constant(conv.inputs[2])->f32() : nullptr;
    auto nw = ConstTensor::make(DType::kFloat32, w.shape);
    auto nb = ConstTensor::make(DType::kFloat32, {M});
    for (int64_t m = 0; m < M; ++m) {
      const double s = static_cast<double>(gamma[m]) / std::sqrt(static_cast<double>(var[m]) + eps);
      for (int64_t i = 0; i < per; ++i) nw->f32()[m * per + i] = static_cast<float>(w.f32()[m * per + i] * s);
      nb->f32()[m] = static_cast<float>(((b ? b[m] : 0.0) - mean[m]) * s + beta[m]);
    }
    const std::string wname = bn.name + "/folded_weight", bname = bn.name + "/folded_bias";
    g.constants[wname] = nw;
    g.constants[bname] = nb;
    conv.inputs.resize(3);
    conv.inputs[1] = wname;
    conv.inputs[2] = bname;
    conv.outputs[0] = bn.outputs[0];
    conv.fused.push_back("BatchNormalization");
    drop[k] = true;
    changed = true;
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!drop[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
  return changed;
}

}  // namespace convoy::passes
