// Trainable layer selection and the frozen/suffix split (see include/convoy/train.hpp).
//   D = nodes depending (transitively) on a trainable parameter: the suffix, trained.
//   Frozen = the others: planned and run by the inference runtime, all passes on.
//   Frontier = runtime values the suffix reads that the frozen part (or the graph input) makes.
#include <algorithm>
#include <set>

#include "importer/onnx_reader.h"
#include "importer/passes/passes.h"
#include "importer/pipeline.h"
#include "runtime/error.h"
#include "runtime/train/train_internal.h"

namespace convoy::train {

namespace {

bool is_layer(const Graph& g, const Node& n) {
  if (n.op_type != "Conv" && n.op_type != "Gemm" && n.op_type != "MatMul") return false;
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  if (n.inputs.size() < 2) return false;
  const ConstTensor* w = g.constant(n.inputs[1]);
  return w && w->dtype == DType::kFloat32;
}

std::vector<int64_t> input_chw(const Graph& g) {
  const ValueInfo& in = g.infos.at(g.inputs[0]);
  if (!in.known_rank || in.shape.size() != 4)
    fail(str_cat(g.model_path, ": training needs an NCHW image input; input '", g.inputs[0], "' has shape ",
                 in.known_rank ? shape_str(in.shape) : std::string("of unknown rank")));
  if (in.shape[1] <= 0) fail(str_cat(g.model_path, ": the input's channel count is dynamic"));
  const std::vector<int64_t> hw = passes::training_size(g);
  return {in.shape[1], hw[0], hw[1]};
}

size_t node_index(const Graph& g, const std::string& name) {
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (g.nodes[k].name == name) return k;
  fail(str_cat(g.model_path, ": internal: node '", name, "' vanished"));
}

// torch.onnx.export stores equal initializers once and reads the duplicates through Identity
// nodes (VGG-16's zero biases). A trainable layer's bias read that way would be shared with
// another layer: it gets its own initializer, named after the Identity's output, and the
// Identity node goes (the exported graph computes the same). `chosen` (node indices) is updated.
void materialize_identity_biases(Graph& g, std::vector<size_t>& chosen) {
  std::vector<std::string> names;
  for (size_t k : chosen) names.push_back(g.nodes[k].name);
  std::set<std::string> biases;
  for (size_t k : chosen) {
    const Node& n = g.nodes[k];
    if (n.op_type != "MatMul" && n.inputs.size() > 2 && !n.inputs[2].empty() && !g.is_const(n.inputs[2]))
      biases.insert(n.inputs[2]);
  }
  std::vector<Node> kept;
  for (Node& n : g.nodes) {
    const ConstTensor* src = n.op_type == "Identity" && n.inputs.size() == 1 ? g.constant(n.inputs[0]) : nullptr;
    if (src && src->dtype == DType::kFloat32 && biases.count(n.outputs[0])) {
      g.constants[n.outputs[0]] = std::make_shared<ConstTensor>(*src);
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  chosen.clear();
  for (const std::string& name : names) chosen.push_back(node_index(g, name));
}

}  // namespace

SplitModel split_model(const std::string& path, const TrainOptions& opt) {
  SplitModel m;
  m.source = read_onnx_file(path);
  Graph& src = m.source;
  check_supported_ops(src);
  if (src.inputs.size() != 1 || src.outputs.size() != 1)
    fail(str_cat(path, ": training needs one input and one output; the model has ", src.inputs.size(), " inputs and ",
                 src.outputs.size(), " outputs"));
  m.input_chw = input_chw(src);

  // Candidates: Conv/Gemm/MatMul with a constant weight initializer, in graph order.
  std::vector<size_t> cand;
  for (size_t k = 0; k < src.nodes.size(); ++k)
    if (is_layer(src, src.nodes[k])) cand.push_back(k);
  if (cand.empty()) fail(str_cat(path, ": no trainable layer (Conv, Gemm or MatMul with a constant weight)"));
  auto cand_list = [&] {
    std::string s;
    for (size_t k : cand) s += (s.empty() ? "" : ", ") + src.nodes[k].name;
    return s;
  };
  std::vector<size_t> chosen;
  if (!opt.train_nodes.empty()) {
    for (const std::string& name : opt.train_nodes) {
      auto it = std::find_if(cand.begin(), cand.end(), [&](size_t k) { return src.nodes[k].name == name; });
      if (it == cand.end())
        fail(str_cat(path, ": '", name, "' is not a trainable layer; candidates: ", cand_list()));
      if (std::find(chosen.begin(), chosen.end(), *it) == chosen.end()) chosen.push_back(*it);
    }
  } else {
    if (opt.train_last < 1 || static_cast<size_t>(opt.train_last) > cand.size())
      fail(str_cat(path, ": train_last ", opt.train_last, " is out of range: the model has ", cand.size(),
                   " trainable layers (", cand_list(), ")"));
    chosen.assign(cand.end() - opt.train_last, cand.end());
  }
  // The head: the last layer. A new one (another class count) is always trainable.
  if (opt.num_classes < 0) fail(str_cat(path, ": num_classes ", opt.num_classes, " is negative"));
  const bool new_head = opt.num_classes > 0 && layer_outputs(src, src.nodes[cand.back()]) != opt.num_classes;
  if (new_head && std::find(chosen.begin(), chosen.end(), cand.back()) == chosen.end()) chosen.push_back(cand.back());
  const std::string head_name = src.nodes[cand.back()].name;
  materialize_identity_biases(src, chosen);
  const size_t head = node_index(src, head_name);
  if (new_head) {
    replace_head(src, head, opt.num_classes, opt.head_init, opt.seed);
    m.head_replaced = true;
  }
  std::sort(chosen.begin(), chosen.end());

  // Parameters: copies owned by Param, put back into the graph in place of the initializers
  // (the originals are dropped: each weight is held once).
  std::set<std::string> param_names;
  for (size_t k : chosen) {
    const Node& n = src.nodes[k];
    m.trainable_nodes.push_back(n.name);
    for (const std::string& name : {n.inputs[1], layer_bias(src, k)}) {
      if (name.empty() || param_names.count(name)) continue;
      const ConstTensor* c = src.constant(name);
      if (c->dtype != DType::kFloat32) fail(str_cat(src.where(n), ": parameter '", name, "' is not float32"));
      auto p = std::make_unique<Param>();
      p->name = name;
      p->node = n.name;
      p->value = std::make_shared<ConstTensor>(*c);
      p->grad.assign(p->numel(), 0.f);
      p->velocity.assign(p->numel(), 0.f);
      src.constants[name] = p->value;
      param_names.insert(name);
      m.params.push_back(std::move(p));
    }
  }
  // A parameter read by a node other than its own layer (shared weights) is not supported.
  std::map<std::string, std::set<std::string>> readers;  // param -> nodes allowed to read it
  for (size_t k : chosen) {
    const Node& n = src.nodes[k];
    readers[n.inputs[1]].insert(n.name);
    const std::string bias = layer_bias(src, k);
    if (bias.empty()) continue;
    const int add = n.op_type == "MatMul" ? matmul_bias_add(src, k) : -1;
    readers[bias].insert(add >= 0 ? src.nodes[static_cast<size_t>(add)].name : n.name);
  }
  for (const Node& n : src.nodes)
    for (const std::string& in : n.inputs)
      if (param_names.count(in) && !readers[in].count(n.name))
        fail(str_cat(src.where(n), ": reads '", in,
                     "', a parameter of another trainable layer (shared weights cannot be trained)"));

  // The working graph: constant subgraphs folded (shape chains), weights shared with source.
  Graph work = src;
  passes::fold_constants(work);

  std::set<std::string> dvals;
  std::vector<bool> is_d(work.nodes.size(), false);
  for (size_t k = 0; k < work.nodes.size(); ++k) {
    const Node& n = work.nodes[k];
    for (const std::string& in : n.inputs)
      if (!in.empty() && (param_names.count(in) || dvals.count(in))) is_d[k] = true;
    if (is_d[k])
      for (const std::string& o : n.outputs)
        if (!o.empty()) dvals.insert(o);
  }
  std::vector<std::string> frontier;
  for (size_t k = 0; k < work.nodes.size(); ++k) {
    if (!is_d[k]) continue;
    for (const std::string& in : work.nodes[k].inputs)
      if (!in.empty() && !work.is_const(in) && !dvals.count(in) &&
          std::find(frontier.begin(), frontier.end(), in) == frontier.end())
        frontier.push_back(in);
  }
  if (!dvals.count(work.outputs[0]))
    fail(str_cat(path, ": the output '", work.outputs[0], "' does not depend on the trainable layers"));
  m.frontier = frontier;

  // Frozen prefix: the non-D nodes computing the frontier; optimised like any inference graph.
  Graph& fz = m.frozen;
  fz.model_path = work.model_path;
  fz.name = work.name;
  fz.opset = work.opset;
  fz.ir_version = work.ir_version;
  fz.inputs = work.inputs;
  fz.infos[work.inputs[0]] = work.infos.at(work.inputs[0]);
  // Any batch size: a model exported with a fixed batch of 1 still trains on batches (a shape
  // baked into the graph, e.g. Reshape to [1, K], then fails planning with its own message).
  fz.infos[work.inputs[0]].shape[0] = -1;
  for (const std::string& v : frontier) {
    const bool is_input = v == work.inputs[0];
    m.frontier_is_input.push_back(is_input);
    if (!is_input) fz.outputs.push_back(v);
  }
  if (!fz.outputs.empty()) {
    for (size_t k = 0; k < work.nodes.size(); ++k)
      if (!is_d[k]) fz.nodes.push_back(work.nodes[k]);
    for (const auto& kv : work.constants)
      if (!param_names.count(kv.first)) fz.constants.insert(kv);
    for (const std::string& v : fz.outputs) fz.infos[v] = ValueInfo{DType::kFloat32, {}, false};
    optimize_graph(fz);
  }

  // Trainable suffix: the D nodes, reading the frontier.
  Graph& sx = m.suffix;
  sx.model_path = work.model_path;
  sx.name = work.name;
  sx.opset = work.opset;
  sx.ir_version = work.ir_version;
  sx.inputs = frontier;
  for (const std::string& v : frontier) sx.infos[v] = ValueInfo{DType::kFloat32, {}, false};
  sx.outputs = work.outputs;
  sx.infos[work.outputs[0]] = work.infos.at(work.outputs[0]);
  for (size_t k = 0; k < work.nodes.size(); ++k)
    if (is_d[k]) sx.nodes.push_back(work.nodes[k]);
  std::set<std::string> used;
  for (const Node& n : sx.nodes) used.insert(n.inputs.begin(), n.inputs.end());
  for (const auto& kv : work.constants)
    if (used.count(kv.first)) sx.constants.insert(kv);
  return m;
}

}  // namespace convoy::train
