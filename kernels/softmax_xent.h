// Softmax cross-entropy loss over logits [N, K] with integer class labels, mean over the batch
// (PyTorch nn.CrossEntropyLoss, reduction 'mean'):
//   loss = -1/N * sum_n log softmax(logits[n])[label[n]]
//   dlogits[n, k] = (softmax(logits[n])[k] - [k == label[n]]) / N
// Also counts rows whose arg-max equals the label. Numerically stable (max subtracted); the
// loss is accumulated in double. dlogits may be null (evaluation only).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convoy::kernels {

struct XentResult {
  double loss = 0;      // mean over the batch
  size_t correct = 0;   // rows with argmax == label (first maximum on ties)
};
XentResult softmax_xent(const float* logits, const int32_t* labels, size_t N, size_t K, float* dlogits);

}  // namespace convoy::kernels
