#include "importer/onnx_writer.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <string>

#include "importer/onnx_wire.h"
#include "onnx/onnx_pb.h"
#include "runtime/error.h"

namespace convoy {
namespace {

// The tensor's header (name, type, dims); raw_data separately.
void put_tensor_header(const ConstTensor& c, const std::string& name, onnx::TensorProto* t) {
  t->set_name(name);
  t->set_data_type(static_cast<int32_t>(c.dtype));
  for (int64_t d : c.shape) t->add_dims(d);
}

void put_tensor(const ConstTensor& c, const std::string& name, onnx::TensorProto* t) {
  put_tensor_header(c, name, t);
  t->set_raw_data(c.bytes);
}

// Writes one initializer as a ModelProto fragment: graph { initializer { the tensor header,
// raw_data } } (importer/onnx_wire.h's fields). A parser merges repeated occurrences of a message
// field, so the fragments appended after the model add their initializers to its graph; the
// weight bytes go from the graph's constant to the file without a protobuf copy of them.
void write_initializer(std::ostream& f, const ConstTensor& c, const std::string& name) {
  onnx::TensorProto t;
  put_tensor_header(c, name, &t);
  const size_t n = c.bytes.size();
  std::string tensor;  // the tensor message up to its payload
  t.SerializeToString(&tensor);
  write_length_prefix(tensor, kTensorRawDataField, n);
  std::string graph;  // the graph fragment up to the payload
  write_length_prefix(graph, kGraphInitializerField, tensor.size() + n);
  graph += tensor;
  std::string model;
  write_length_prefix(model, kModelGraphField, graph.size() + n);
  model += graph;
  f.write(model.data(), static_cast<std::streamsize>(model.size()));
  f.write(c.bytes.data(), static_cast<std::streamsize>(n));
}

void put_value_info(const std::string& name, const ValueInfo& v, onnx::ValueInfoProto* out, size_t index) {
  out->set_name(name);
  auto* tt = out->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.dtype == DType::kUndefined ? DType::kFloat32 : v.dtype));
  if (!v.known_rank) return;
  auto* shape = tt->mutable_shape();
  static const char* kNames[] = {"batch", "channels", "height", "width"};
  for (size_t k = 0; k < v.shape.size(); ++k) {
    auto* d = shape->add_dim();
    if (v.shape[k] >= 0) d->set_dim_value(v.shape[k]);
    else d->set_dim_param(k < 4 ? str_cat(kNames[k], index ? std::to_string(index) : "") : str_cat("d", index, "_", k));
  }
}

void put_attribute(const Graph& g, const Node& n, const std::string& name, const Attribute& a, onnx::AttributeProto* out) {
  if (!name.empty() && name[0] == '_')
    fail(str_cat(g.where(n), ": internal attribute '", name, "' cannot be written to ONNX"));
  out->set_name(name);
  using A = onnx::AttributeProto;
  switch (a.kind) {
    case Attribute::Kind::kFloat: out->set_type(A::FLOAT); out->set_f(a.f); break;
    case Attribute::Kind::kInt: out->set_type(A::INT); out->set_i(a.i); break;
    case Attribute::Kind::kString: out->set_type(A::STRING); out->set_s(a.s); break;
    case Attribute::Kind::kTensor: out->set_type(A::TENSOR); put_tensor(*a.t, "", out->mutable_t()); break;
    case Attribute::Kind::kFloats: out->set_type(A::FLOATS); for (float f : a.floats) out->add_floats(f); break;
    case Attribute::Kind::kInts: out->set_type(A::INTS); for (int64_t i : a.ints) out->add_ints(i); break;
    case Attribute::Kind::kStrings: out->set_type(A::STRINGS); for (const auto& s : a.strings) out->add_strings(s); break;
    default: fail(str_cat(g.where(n), ": attribute '", name, "' of this kind cannot be written"));
  }
}

}  // namespace

void write_onnx_file(const Graph& g, const std::string& path) {
  onnx::ModelProto m;
  m.set_ir_version(g.ir_version > 0 ? g.ir_version : 8);
  m.set_producer_name("convoy");
  m.set_producer_version(version());
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(g.opset);
  for (const auto& kv : g.metadata) {
    auto* p = m.add_metadata_props();
    p->set_key(kv.first);
    p->set_value(kv.second);
  }
  onnx::GraphProto* gp = m.mutable_graph();
  gp->set_name(g.name.empty() ? "convoy" : g.name);
  for (size_t i = 0; i < g.inputs.size(); ++i) put_value_info(g.inputs[i], g.infos.at(g.inputs[i]), gp->add_input(), i);
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    auto it = g.infos.find(g.outputs[i]);
    put_value_info(g.outputs[i], it == g.infos.end() ? ValueInfo{} : it->second, gp->add_output(), 100 + i);
  }
  // Initializers are streamed after the rest (write_initializer): the model's weights are not
  // copied into the protobuf (VGG-16: 528 MB less at export).
  for (const Node& n : g.nodes) {
    auto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& [name, a] : n.attrs) put_attribute(g, n, name, a, np->add_attribute());
  }
  const std::string tmp = str_cat(path, ".tmp.", ::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(str_cat(path, ": cannot write (", tmp, " could not be created)"));
    bool ok = m.SerializeToOstream(&f);
    for (const auto& kv : g.constants)
      if (ok) write_initializer(f, *kv.second, kv.first);
    if (!ok || !f.flush()) {
      f.close();
      std::remove(tmp.c_str());
      fail(str_cat(path, ": write failed (disk full? model over 2 GB?)"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(str_cat(path, ": cannot move the written model into place"));
  }
}

}  // namespace convoy
