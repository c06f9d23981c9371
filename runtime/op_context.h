// What an op's plan function sees: its node, input values (shape, dtype, constant or not),
// helpers to read attributes, and ways to define its outputs: as constants (folded at plan
// time), as aliases of an input (Reshape & co.), or as arena tensors computed by steps.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/ir.h"
#include "runtime/plan.h"
#include "runtime/weight_store.h"

namespace convoy {

// A value during planning.
struct PValue {
  DType dtype = DType::kUndefined;
  Shape shape;
  ConstPtr constant;  // set when known at plan time
  TensorLoc loc;      // for runtime values
  int64_t numel() const { int64_t n = 1; for (int64_t d : shape) n *= d; return n; }
};

class Planner;

class OpContext {
 public:
  OpContext(Planner& planner, const Graph& g, const Node& n, std::vector<const PValue*> in);

  const Node& node() const { return node_; }
  int64_t opset() const { return graph_.opset; }
  size_t threads() const;  // threads the plan will run with
  std::string where() const { return graph_.where(node_); }
  [[noreturn]] void fail(const std::string& reason) const { convoy::fail(where() + ": " + reason); }

  // Inputs. Omitted optional inputs (empty name) read as absent.
  size_t num_inputs() const { return in_.size(); }
  bool has_input(size_t i) const { return i < in_.size() && in_[i] != nullptr; }
  const PValue& in(size_t i) const;
  const Shape& shape(size_t i) const { return in(i).shape; }
  bool is_const(size_t i) const { return has_input(i) && in_[i]->constant != nullptr; }
  bool all_const() const;
  const ConstTensor& const_input(size_t i, const char* what) const;  // fails when not constant
  std::vector<int64_t> const_ints(size_t i, const char* what) const;
  void require_float(size_t i) const;
  size_t num_outputs() const { return node_.outputs.size(); }
  bool output_used(size_t i) const { return i < node_.outputs.size() && !node_.outputs[i].empty(); }

  // Attributes.
  bool has_attr(const std::string& a) const { return node_.has(a); }
  int64_t attr_int(const std::string& a, int64_t def) const;
  float attr_float(const std::string& a, float def) const;
  std::string attr_str(const std::string& a, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& a, std::vector<int64_t> def = {}) const;
  std::vector<float> attr_floats(const std::string& a) const;
  const ConstTensor* attr_tensor(const std::string& a) const;
  // Normalises a possibly negative axis for a tensor of rank r, failing when out of range.
  int64_t axis(int64_t a, int64_t rank, const char* what = "axis") const;

  // Outputs: each output is defined exactly once by one of these.
  void set_const(size_t i, ConstPtr value);
  void set_alias(size_t i, size_t input, Shape shape);                 // same data, new shape
  TensorLoc set_tensor(size_t i, Shape shape);                         // new float32 arena tensor
  // set_tensor, but in the arena buffer of runtime input `input` when this node is its last
  // reader and nothing else can see that buffer (not a graph input or output, not viewed by
  // another value, the same size): for steps that read each element of that input only before
  // writing the same element of the output (a residual added in a conv's epilogue).
  TensorLoc set_tensor_over(size_t i, Shape shape, size_t input);
  TensorLoc set_window(size_t i, Shape shape, const TensorLoc& base, size_t elem_offset);

  // Steps. Inputs may be constants (their pointers are fixed) or runtime tensors.
  TensorLoc loc(size_t input) const;
  TensorLoc temp(size_t floats);                   // arena tensor used by later steps of this op
  TensorLoc keep_const(std::shared_ptr<const std::vector<float>> data);  // packed weights
  // keep_const() for the packed form of constant input `input`, which `unpack` turns back into
  // the raw values exactly: when this node is the constant's only reader, the model then holds
  // the packed copy only (runtime/weight_store.h).
  TensorLoc keep_packed(size_t input, std::shared_ptr<const std::vector<float>> data, WeightStore::Unpack unpack);
  Step& emit(std::string op, std::vector<TensorLoc> in, std::vector<TensorLoc> out, StepFn fn,
             size_t scratch_floats = 0, double flops = 0);

 private:
  friend class Planner;
  Planner& planner_;
  const Graph& graph_;
  const Node& node_;
  std::vector<const PValue*> in_;
  std::vector<PValue> out_;
  std::vector<bool> out_set_;
  size_t first_step_ = 0;
};

using OpPlanFn = void (*)(OpContext&);

struct OpDef {
  const char* name;
  int min_inputs, max_inputs;   // max -1: variadic
  int min_outputs, max_outputs;
  OpPlanFn plan;
};

// nullptr when convoy does not support the op (default domain only).
const OpDef* find_op(const std::string& op_type, const std::string& domain);
std::vector<std::string> supported_ops();

}  // namespace convoy
