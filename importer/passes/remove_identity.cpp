#include "importer/passes/pass_util.h"
#include "importer/passes/passes.h"

namespace convoy::passes {

bool remove_identity(Graph& g) {
  bool changed = false;
  std::vector<Node> kept;
  for (Node& n : g.nodes) {
    bool bypass = false;
    if (n.op_type == "Identity" && n.domain.empty()) bypass = true;
    // Dropout without a mask output and not forced into training mode is the identity.
    if (n.op_type == "Dropout" && n.domain.empty() && n.inputs.size() < 3 &&
        (n.outputs.size() < 2 || n.outputs[1].empty()))
      bypass = true;
    if (bypass && !n.inputs.empty() && !n.inputs[0].empty() && !n.outputs.empty() && !is_graph_output(g, n.outputs[0])) {
      rename_uses(g, n.outputs[0], n.inputs[0]);
      changed = true;
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  return changed;
}

}  // namespace convoy::passes
