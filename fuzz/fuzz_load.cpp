// libFuzzer target: bytes -> Model::from_bytes -> Session (1 thread, 256 MiB cap) -> plan for
// the declared input shapes (dynamic dimensions set to 1) -> one run on a small input.
// A hostile model must end in a convoy::Error: every other exception escapes and is a finding,
// as is any sanitizer report, crash, leak or timeout.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "convoy/convoy.hpp"

namespace {
constexpr size_t kMaxMemory = size_t{256} << 20;
constexpr int64_t kMaxRunElements = int64_t{1} << 20;  // run only when all tensors are small
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto model = convoy::Model::from_bytes(std::span<const uint8_t>(data, size), "fuzz.onnx");
    convoy::Session session(model, {.threads = 1, .max_memory = kMaxMemory});
    std::vector<std::vector<int64_t>> shapes;
    for (const convoy::TensorInfo& in : model->inputs()) {
      std::vector<int64_t> s = in.shape;
      for (int64_t& d : s)
        if (d < 0) d = 1;
      shapes.push_back(s);
    }
    const std::vector<std::vector<int64_t>> out_shapes = session.output_shapes(shapes);
    std::vector<convoy::Tensor> inputs;
    for (const auto& s : shapes) {
      int64_t n = 1;
      for (int64_t d : s) {
        if (d > kMaxRunElements || n * d > kMaxRunElements) return 0;  // planned; too big to run here
        n *= d;
      }
      convoy::Tensor t(s);
      for (size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(i % 17) * 0.125f - 1.0f;
      inputs.push_back(std::move(t));
    }
    for (const auto& s : out_shapes) {
      int64_t n = 1;
      for (int64_t d : s) {
        if (d > kMaxRunElements || n * d > kMaxRunElements) return 0;
        n *= d;
      }
    }
    session.run(inputs);
  } catch (const convoy::Error&) {
    // The expected outcome for a malformed model.
  }
  return 0;
}
