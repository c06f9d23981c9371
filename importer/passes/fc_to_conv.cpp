#include <algorithm>
#include <set>

#include "importer/passes/pass_util.h"
#include "importer/passes/passes.h"
#include "runtime/error.h"
#include "runtime/planner.h"

namespace convoy::passes {
namespace {

Attribute ints_attr(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}

Attribute int_attr(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  return a;
}

// Ops allowed in the head after the flatten point: they act per position on a conv map.
bool elementwise_head_op(const std::string& op) {
  static const std::set<std::string> kOps = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Dropout", "Identity"};
  return kOps.count(op) != 0;
}

}  // namespace

std::vector<int64_t> training_size(const Graph& g) {
  if (g.inputs.size() != 1)
    fail(str_cat(g.model_path, ": dense scoring needs a model with one image input, this one has ", g.inputs.size()));
  const ValueInfo& in = g.infos.at(g.inputs[0]);
  if (in.known_rank && in.shape.size() != 4)
    fail(str_cat(g.model_path, ": input '", g.inputs[0], "' has rank ", in.shape.size(),
                 "; dense scoring needs an NCHW image input"));
  if (in.known_rank && in.shape[2] > 0 && in.shape[3] > 0) return {in.shape[2], in.shape[3]};
  auto it = g.metadata.find("convoy.input_size");
  if (it != g.metadata.end()) {
    long long h = 0, w = 0;
    if (std::sscanf(it->second.c_str(), "%lldx%lld", &h, &w) == 2 && h > 0 && w > 0) return {h, w};
    fail(str_cat(g.model_path, ": metadata convoy.input_size '", it->second, "' is not HxW"));
  }
  fail(str_cat(g.model_path,
               ": the input's height and width are dynamic and there is no convoy.input_size metadata; "
               "the training size is unknown"));
}

bool fc_to_conv(Graph& g) {
  const std::vector<int64_t> hw = training_size(g);
  const ValueInfo& in_info = g.infos.at(g.inputs[0]);
  const int64_t channels = in_info.known_rank && in_info.shape[1] > 0 ? in_info.shape[1] : 1;
  std::map<std::string, Shape> shapes = infer_shapes(g, {{1, channels, hw[0], hw[1]}});
  auto shape_of = [&](const std::string& v) -> const Shape& {
    static const Shape kNone;
    auto it = shapes.find(v);
    return it == shapes.end() ? kNone : it->second;
  };
  // The flatten point: the last Flatten/Reshape turning a [1,C,H,W] map into [1, C*H*W].
  int flat = -1;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    if (n.op_type != "Flatten" && n.op_type != "Reshape") continue;
    const Shape& s_in = shape_of(n.inputs[0]);
    const Shape& s_out = shape_of(n.outputs[0]);
    if (s_in.size() == 4 && s_out.size() == 2 && s_out[0] == 1) flat = static_cast<int>(k);
  }
  if (flat < 0) {
    for (const std::string& o : g.outputs)
      if (shape_of(o).size() != 4)
        fail(str_cat(g.model_path, ": no Flatten/Reshape from a [N,C,H,W] map to [N,K] found before output '", o, "' (shape ",
                     shape_str(shape_of(o)), "); cannot convert the head"));
    return false;  // already fully convolutional
  }
  const Node flat_node = g.nodes[static_cast<size_t>(flat)];
  const std::string map4 = flat_node.inputs[0];
  const Shape map_shape = shape_of(map4);
  for (const std::string& o : g.outputs)
    if (o == flat_node.outputs[0])
      fail(str_cat(g.where(flat_node), ": the flattened map is the graph output '", o,
                   "'; there is no fully-connected layer to convert"));
  // Every node reachable from the flatten output must be a convertible head op.
  std::set<std::string> head_values = {flat_node.outputs[0]};
  std::vector<size_t> head_nodes;
  for (size_t k = static_cast<size_t>(flat) + 1; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    bool reads_head = false;
    for (const std::string& i : n.inputs) reads_head |= head_values.count(i) != 0;
    if (!reads_head) continue;
    const bool ok = elementwise_head_op(n.op_type) || n.op_type == "Gemm" || n.op_type == "MatMul" || n.op_type == "Add" ||
                    n.op_type == "Softmax" || n.op_type == "LogSoftmax";
    if (!ok) fail(str_cat(g.where(n), ": cannot convert this op of the fully-connected head to a convolution"));
    if ((n.op_type == "Gemm" || n.op_type == "MatMul") && (n.inputs.size() < 2 || !head_values.count(n.inputs[0])))
      fail(str_cat(g.where(n), ": the map must be the first input (the weights the second); cannot convert to a convolution"));
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const std::string& v = n.inputs[i];
      if (v.empty() || head_values.count(v)) continue;
      const bool weight_slot = (n.op_type == "Gemm" && i >= 1) || (n.op_type == "MatMul" && i == 1) || n.op_type == "Add" ||
                               i >= 1;  // Clip bounds, Dropout ratio
      if (!weight_slot || !g.is_const(v))
        fail(str_cat(g.where(n), ": head input '", v, "' is not a constant; cannot convert to a convolution"));
    }
    for (const std::string& o : n.outputs)
      if (!o.empty()) head_values.insert(o);
    head_nodes.push_back(k);
  }
  bool any_fc = false;
  for (size_t k : head_nodes) any_fc |= g.nodes[k].op_type == "Gemm" || g.nodes[k].op_type == "MatMul";
  if (!any_fc)
    fail(str_cat(g.where(flat_node), ": no Gemm/MatMul follows the flatten; the head is not a fully-connected layer to convert"));
  bool first_fc = true;
  for (size_t k : head_nodes) {
    Node& n = g.nodes[k];
    for (std::string& i : n.inputs)
      if (i == flat_node.outputs[0]) i = map4;
    if (n.op_type == "Gemm" || n.op_type == "MatMul") {
      const bool gemm = n.op_type == "Gemm";
      auto geti = [&](const char* a, int64_t d) { return n.has(a) ? n.attrs.at(a).i : d; };
      auto getf = [&](const char* a, float d) { return n.has(a) ? n.attrs.at(a).f : d; };
      if (gemm && geti("transA", 0) != 0) fail(str_cat(g.where(n), ": transA=1 cannot be converted to a convolution"));
      const ConstTensor& w = *g.constant(n.inputs[1]);
      if (w.dtype != DType::kFloat32 || w.shape.size() != 2)
        fail(str_cat(g.where(n), ": weights must be a 2-D float32 constant"));
      const bool tb = gemm && geti("transB", 0) != 0;
      const int64_t K = tb ? w.shape[1] : w.shape[0], O = tb ? w.shape[0] : w.shape[1];
      const int64_t C = first_fc ? map_shape[1] : K, kh = first_fc ? map_shape[2] : 1, kw = first_fc ? map_shape[3] : 1;
      if (C * kh * kw != K)
        fail(str_cat(g.where(n), ": weights ", shape_str(w.shape), " do not match the flattened map ", shape_str(map_shape)));
      const float alpha = gemm ? getf("alpha", 1.f) : 1.f;
      auto cw = ConstTensor::make(DType::kFloat32, {O, C, kh, kw});
      for (int64_t o = 0; o < O; ++o)
        for (int64_t q = 0; q < K; ++q) cw->f32()[o * K + q] = alpha * (tb ? w.f32()[o * K + q] : w.f32()[q * O + o]);
      const std::string wname = n.name + "/conv_weight";
      g.constants[wname] = cw;
      Node conv;
      conv.name = n.name;
      conv.op_type = "Conv";
      conv.inputs = {n.inputs[0], wname};
      conv.outputs = {n.outputs[0]};
      conv.attrs["kernel_shape"] = ints_attr({kh, kw});
      conv.attrs["strides"] = ints_attr({1, 1});
      conv.attrs["pads"] = ints_attr({0, 0, 0, 0});
      if (gemm && n.inputs.size() == 3 && !n.inputs[2].empty()) {
        const ConstTensor& c = *g.constant(n.inputs[2]);
        const float beta = getf("beta", 1.f);
        // C broadcasts to [1, O]: a per-output vector or one value.
        const bool scalar = c.numel() == 1 && c.shape.size() <= 2;
        if (c.dtype != DType::kFloat32 ||
            (!scalar && (c.numel() != O || c.shape.size() > 2 || (c.shape.size() == 2 && c.shape[0] != 1))))
          fail(str_cat(g.where(n), ": bias C ", shape_str(c.shape), " is not a per-output vector; cannot convert"));
        auto b = ConstTensor::make(DType::kFloat32, {O});
        for (int64_t o = 0; o < O; ++o) b->f32()[o] = beta * c.f32()[scalar ? 0 : o];
        const std::string bname = n.name + "/conv_bias";
        g.constants[bname] = b;
        conv.inputs.push_back(bname);
      }
      n = std::move(conv);
      first_fc = false;
    } else if (n.op_type == "Add") {
      // A bias vector [O] / [1,O] broadcasts over the score map once it is [O,1,1].
      for (std::string& i : n.inputs) {
        if (!g.is_const(i)) continue;
        const ConstTensor& c = *g.constant(i);
        if (c.numel() == 1 && c.shape.size() <= 2) continue;  // one value broadcasts over any map
        // Before the first FC the flat vector is the whole C*H*W map, not one value per channel.
        if (first_fc || c.shape.empty() || c.numel() != c.shape.back() || (c.shape.size() == 2 && c.shape[0] != 1) ||
            c.shape.size() > 2)
          fail(str_cat(g.where(n), ": constant ", shape_str(c.shape),
                       " is not a per-output vector after a fully-connected layer; cannot convert"));
        auto b = std::make_shared<ConstTensor>(c);
        b->shape = {c.numel(), 1, 1};
        const std::string bname = n.name + "/map_bias";
        g.constants[bname] = b;
        i = bname;
      }
    } else if (n.op_type == "Softmax" || n.op_type == "LogSoftmax") {
      if (first_fc)
        fail(str_cat(g.where(n), ": a softmax over the flattened map (before any fully-connected layer) cannot be converted"));
      if (g.opset < 13)
        fail(str_cat(g.where(n), ": at opset ", g.opset, " Softmax flattens its input; cannot move it to the channel axis"));
      n.attrs["axis"] = int_attr(1);
    }
  }
  // A global pool feeding the head becomes the training-time window sliding with stride 1.
  auto producers = g.producers();
  auto p = producers.find(map4);
  if (p != producers.end()) {
    Node& pool = g.nodes[p->second];
    const Shape& ps = shape_of(pool.inputs[0]);
    const bool gap = pool.op_type == "GlobalAveragePool";
    bool rmean = false;
    if (pool.op_type == "ReduceMean" && pool.has("axes")) {
      auto axes = pool.attrs.at("axes").ints;
      for (int64_t& a : axes) a = a < 0 ? a + 4 : a;
      std::sort(axes.begin(), axes.end());
      rmean = axes == std::vector<int64_t>{2, 3} && (!pool.has("keepdims") || pool.attrs.at("keepdims").i != 0);
    }
    if ((gap || rmean || pool.op_type == "GlobalMaxPool") && ps.size() == 4) {
      const bool max = pool.op_type == "GlobalMaxPool";
      pool.op_type = max ? "MaxPool" : "AveragePool";
      pool.attrs.clear();
      pool.inputs.resize(1);
      pool.attrs["kernel_shape"] = ints_attr({ps[2], ps[3]});
      pool.attrs["strides"] = ints_attr({1, 1});
    }
  }
  // Drop the flatten node (and its shape chain, later, as dead code).
  g.nodes.erase(g.nodes.begin() + flat);
  ValueInfo& in = g.infos[g.inputs[0]];
  in.known_rank = true;
  in.shape = {-1, channels, -1, -1};
  for (const std::string& o : g.outputs) {
    ValueInfo& oi = g.infos[o];
    oi.dtype = DType::kFloat32;
    oi.known_rank = true;
    const Shape& s = shape_of(o);
    oi.shape = {-1, s.size() >= 2 ? s[1] : -1, -1, -1};
  }
  if (!g.metadata.count("convoy.input_size")) g.metadata["convoy.input_size"] = str_cat(hw[0], "x", hw[1]);
  eliminate_dead_nodes(g);
  return true;
}

}  // namespace convoy::passes
