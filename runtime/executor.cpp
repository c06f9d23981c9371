#include <cstring>

#include "runtime/planner.h"

namespace convoy {

void execute_plan(const Plan& plan, char* arena, const std::vector<const float*>& inputs,
                  const std::vector<float*>& outputs, const kernels::Parallel& par) {
  auto resolve = [&](const TensorLoc& l) -> float* {
    if (l.cptr) return const_cast<float*>(l.cptr);  // kernels only read inputs
    if (l.buffer < 0) return nullptr;                 // an absent optional operand
    return reinterpret_cast<float*>(arena + plan.buffers[static_cast<size_t>(l.buffer)].offset) + l.elem_offset;
  };
  auto numel = [](const Shape& s) {
    size_t n = 1;
    for (int64_t d : s) n *= static_cast<size_t>(d);
    return n;
  };
  for (size_t i = 0; i < plan.inputs.size(); ++i)
    std::memcpy(resolve(plan.inputs[i]), inputs[i], numel(plan.input_shapes[i]) * sizeof(float));
  for (const Step& s : plan.steps) {
    StepArgs a;
    for (size_t k = 0; k < s.in.size(); ++k) a.in[k] = resolve(s.in[k]);
    for (size_t k = 0; k < s.out.size(); ++k) a.out[k] = resolve(s.out[k]);
    if (s.scratch >= 0) a.scratch = reinterpret_cast<float*>(arena + plan.buffers[static_cast<size_t>(s.scratch)].offset);
    s.fn(a, par);
  }
  for (size_t i = 0; i < plan.outputs.size(); ++i)
    std::memcpy(outputs[i], resolve(plan.outputs[i]), numel(plan.output_shapes[i]) * sizeof(float));
}

}  // namespace convoy
