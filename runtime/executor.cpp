#include <chrono>
#include <cstring>

#include "runtime/planner.h"

namespace convoy {

void execute_plan(const Plan& plan, char* arena, const std::vector<const float*>& inputs,
                  const std::vector<float*>& outputs, const kernels::Parallel& par, std::vector<double>* step_seconds) {
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
  if (step_seconds) step_seconds->assign(plan.steps.size(), 0.0);
  for (size_t si = 0; si < plan.steps.size(); ++si) {
    const Step& s = plan.steps[si];
    StepArgs a;
    for (size_t k = 0; k < s.in.size(); ++k) a.in[k] = resolve(s.in[k]);
    for (size_t k = 0; k < s.out.size(); ++k) a.out[k] = resolve(s.out[k]);
    if (s.scratch >= 0) a.scratch = reinterpret_cast<float*>(arena + plan.buffers[static_cast<size_t>(s.scratch)].offset);
    if (!step_seconds) {
      s.fn(a, par);
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    s.fn(a, par);
    (*step_seconds)[si] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  for (size_t i = 0; i < plan.outputs.size(); ++i)  // an empty output may have no buffer (null): skip it
    if (const size_t n = numel(plan.output_shapes[i])) std::memcpy(outputs[i], resolve(plan.outputs[i]), n * sizeof(float));
}

}  // namespace convoy
