#include "importer/pipeline.h"

#include "importer/passes/passes.h"
#include "runtime/error.h"
#include "runtime/op_context.h"

namespace convoy {

void check_supported_ops(const Graph& g) {
  std::string list;
  for (const Node& n : g.nodes) {
    if (find_op(n.op_type, n.domain)) continue;
    list += str_cat(list.empty() ? "" : ", ", n.domain.empty() ? "" : n.domain + ".", n.op_type, " (node ", n.name, ")");
  }
  if (!list.empty()) fail(str_cat(g.model_path, ": unsupported ops: ", list));
}

void optimize_graph(Graph& g) {
  // Clean-up: canonical form.
  passes::remove_identity(g);
  passes::fold_constants(g);
  passes::eliminate_dead_nodes(g);
  passes::fold_conv_batchnorm(g);
  // Lowering: epilogue fusion (residual before activation: y = act(conv + residual)).
  passes::fuse_residual_add(g);
  passes::fuse_activation(g);
  passes::eliminate_dead_nodes(g);
}

void prepare_fc_to_conv(Graph& g) {
  passes::remove_identity(g);
  passes::fold_constants(g);
  passes::eliminate_dead_nodes(g);
  passes::fc_to_conv(g);
}

}  // namespace convoy
