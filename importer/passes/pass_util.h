// Small helpers shared by the passes.
#pragma once
#include <algorithm>
#include <string>

#include "runtime/ir.h"

namespace convoy::passes {

inline bool is_graph_output(const Graph& g, const std::string& v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

// Replaces every read of `from` by `to`.
inline void rename_uses(Graph& g, const std::string& from, const std::string& to) {
  for (Node& n : g.nodes)
    for (std::string& i : n.inputs)
      if (i == from) i = to;
}

// True when `v` is read by exactly one node and is not a graph output.
inline bool single_use(const Graph& g, const std::string& v) {
  auto uses = g.use_counts();
  auto it = uses.find(v);
  return it != uses.end() && it->second == 1 && !is_graph_output(g, v);
}

}  // namespace convoy::passes
