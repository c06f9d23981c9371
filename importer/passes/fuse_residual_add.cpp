#include "importer/passes/pass_util.h"
#include "importer/passes/passes.h"

namespace convoy::passes {

// Match: Add(a, b) where one operand is the single-use output of a Conv without epilogue
// activation or residual, and the other is a run-time tensor (a constant is a bias, not a
// residual). The fused Conv takes the Add's place in the order, so the residual is ready.
bool fuse_residual_add(Graph& g) {
  bool changed = false;
  auto producers = g.producers();
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& add = g.nodes[k];
    if (add.op_type != "Add" || !add.domain.empty() || add.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& mine = add.inputs[static_cast<size_t>(side)];
      const std::string& other = add.inputs[static_cast<size_t>(1 - side)];
      auto p = producers.find(mine);
      if (p == producers.end() || drop[p->second] || p->second >= k) continue;
      Node& conv = g.nodes[p->second];
      if (conv.op_type != "Conv" || !conv.domain.empty() || conv.has("_act") || conv.inputs.size() > 3) continue;
      if (!single_use(g, mine) || g.is_const(other) || other == mine) continue;
      Node fused = conv;
      fused.inputs.resize(4);
      fused.inputs[3] = other;
      fused.outputs[0] = add.outputs[0];
      fused.fused.push_back("Add");
      drop[p->second] = true;
      add = std::move(fused);
      changed = true;
      break;
    }
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!drop[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
  return changed;
}

}  // namespace convoy::passes
