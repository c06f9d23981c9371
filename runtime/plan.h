// A static plan: every shape known, every intermediate tensor at a fixed arena offset.
// Plain data the executor walks; `convoy inspect` prints it.
#pragma once
#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/parallel.h"
#include "runtime/ir.h"

namespace convoy {

// Where a tensor lives: in an arena buffer (at an element offset, for aliases such as a
// Concat window), or in constant storage owned by the model/plan.
struct TensorLoc {
  int buffer = -1;
  size_t elem_offset = 0;
  const float* cptr = nullptr;
  bool is_const() const { return cptr != nullptr; }
};

inline constexpr size_t kMaxStepInputs = 4;
inline constexpr size_t kMaxStepOutputs = 2;

struct StepArgs {
  std::array<const float*, kMaxStepInputs> in{};
  std::array<float*, kMaxStepOutputs> out{};
  float* scratch = nullptr;
};

using StepFn = std::function<void(const StepArgs&, const kernels::Parallel&)>;

struct Step {
  std::string node;   // source node
  std::string op;     // kernel family shown by inspect, e.g. "Conv"
  std::string fused;  // e.g. "Relu", "Add+Relu"
  std::vector<TensorLoc> in, out;
  int scratch = -1;   // arena buffer live during this step only, or -1
  StepFn fn;
  double flops = 0;
  std::vector<Shape> in_shapes;
  Shape out_shape;
};

struct Buffer {
  size_t bytes = 0;
  int first = -1;  // first step writing it (-1: a graph input, written before step 0)
  int last = -1;   // last step reading it (INT_MAX-ish for graph outputs)
  size_t offset = 0;
};

struct Plan {
  std::vector<Step> steps;
  std::vector<Buffer> buffers;
  size_t arena_bytes = 0;
  size_t intermediate_bytes = 0;  // sum of all buffers, no reuse
  size_t live_bound_bytes = 0;    // max over steps of bytes live at once
  std::vector<Shape> input_shapes, output_shapes;
  std::vector<TensorLoc> inputs, outputs;
  std::vector<std::shared_ptr<const void>> keep_alive;  // packed weights, folded constants
  size_t packed_bytes = 0;  // bytes of the packed weights (keep_const) this plan holds
  double flops = 0;
};

}  // namespace convoy
