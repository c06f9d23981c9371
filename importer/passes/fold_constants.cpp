#include "importer/passes/passes.h"
#include "runtime/planner.h"

namespace convoy::passes {

bool fold_constants(Graph& g) {
  std::vector<bool> folded;
  std::map<std::string, ConstPtr> values;
  {
    Planner planner(g);
    values = planner.fold_constant_nodes(&folded);
  }
  bool changed = false;
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    if (folded[k]) { changed = true; continue; }
    kept.push_back(std::move(g.nodes[k]));
  }
  g.nodes = std::move(kept);
  for (auto& kv : values) g.constants[kv.first] = std::move(kv.second);
  return changed;
}

}  // namespace convoy::passes
