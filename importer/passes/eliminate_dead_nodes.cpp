#include <set>

#include "importer/passes/passes.h"

namespace convoy::passes {

bool eliminate_dead_nodes(Graph& g) {
  std::set<std::string> live(g.outputs.begin(), g.outputs.end());
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t k = g.nodes.size(); k-- > 0;) {
    const Node& n = g.nodes[k];
    for (const std::string& o : n.outputs)
      if (!o.empty() && live.count(o)) keep[k] = true;
    if (keep[k])
      for (const std::string& i : n.inputs)
        if (!i.empty()) live.insert(i);
  }
  bool changed = false;
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    if (!keep[k]) { changed = true; continue; }
    kept.push_back(std::move(g.nodes[k]));
  }
  g.nodes = std::move(kept);
  for (auto it = g.constants.begin(); it != g.constants.end();) {
    if (!live.count(it->first)) { it = g.constants.erase(it); changed = true; }
    else ++it;
  }
  return changed;
}

}  // namespace convoy::passes
