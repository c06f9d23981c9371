#include <limits>

#include "importer/passes/pass_util.h"
#include "importer/passes/passes.h"

namespace convoy::passes {
namespace {

// Reads Clip bounds (opset < 11 attributes, 11+ constant inputs); false when not constant.
bool clip_bounds(const Graph& g, const Node& n, float* lo, float* hi) {
  *lo = -std::numeric_limits<float>::infinity();
  *hi = std::numeric_limits<float>::infinity();
  if (g.opset < 11) {
    if (n.has("min")) *lo = n.attrs.at("min").f;
    if (n.has("max")) *hi = n.attrs.at("max").f;
    return true;
  }
  for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
    if (n.inputs[i].empty()) continue;
    const ConstTensor* t = g.constant(n.inputs[i]);
    if (!t || t->numel() != 1 || t->dtype != DType::kFloat32) return false;
    (i == 1 ? *lo : *hi) = t->f32()[0];
  }
  return true;
}

Attribute float_attr(float v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = v;
  return a;
}

}  // namespace

bool fuse_activation(Graph& g) {
  bool changed = false;
  auto producers = g.producers();
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& act = g.nodes[k];
    if (!act.domain.empty() || act.inputs.empty()) continue;
    float alpha = 0, beta = 0;
    if (act.op_type == "Relu") {
    } else if (act.op_type == "LeakyRelu") {
      alpha = act.has("alpha") ? act.attrs.at("alpha").f : 0.01f;
    } else if (act.op_type == "Clip") {
      if (!clip_bounds(g, act, &alpha, &beta)) continue;
    } else {
      continue;
    }
    auto p = producers.find(act.inputs[0]);
    if (p == producers.end() || drop[p->second]) continue;
    Node& prod = g.nodes[p->second];
    const bool kind_ok = prod.op_type == "Conv" || prod.op_type == "Gemm" || prod.op_type == "BatchNormalization";
    if (!kind_ok || !prod.domain.empty() || prod.has("_act") || prod.outputs.size() != 1) continue;
    if (!single_use(g, act.inputs[0])) continue;
    Attribute name;
    name.kind = Attribute::Kind::kString;
    name.s = act.op_type;
    prod.attrs["_act"] = name;
    prod.attrs["_act_alpha"] = float_attr(alpha);
    prod.attrs["_act_beta"] = float_attr(beta);
    prod.outputs[0] = act.outputs[0];
    prod.fused.push_back(act.op_type);
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
