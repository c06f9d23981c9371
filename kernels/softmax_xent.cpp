// Softmax cross-entropy over [N, K] logits (see softmax_xent.h). Serial: N*K is a classifier's
// output, small next to the rest of a training step. Per row: m = max, lse = m + log(sum exp(l - m))
// (accumulated in double), loss_n = lse - l[label].
#include <cmath>

#include "kernels/softmax_xent.h"

namespace convoy::kernels {

XentResult softmax_xent(const float* logits, const int32_t* labels, size_t N, size_t K, float* dlogits) {
  XentResult r;
  if (N == 0 || K == 0) return r;
  const double inv_n = 1.0 / static_cast<double>(N);
  for (size_t n = 0; n < N; ++n) {
    const float* l = logits + n * K;
    const size_t label = static_cast<size_t>(labels[n]);
    size_t arg = 0;
    for (size_t k = 1; k < K; ++k)
      if (l[k] > l[arg]) arg = k;
    if (arg == label) ++r.correct;
    const double m = l[arg];
    double sum = 0;
    for (size_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(l[k]) - m);
    const double lse = m + std::log(sum);
    r.loss += (lse - static_cast<double>(l[label])) * inv_n;
    if (dlogits) {
      float* g = dlogits + n * K;
      for (size_t k = 0; k < K; ++k) {
        const double prob = std::exp(static_cast<double>(l[k]) - lse);
        g[k] = static_cast<float>((prob - (k == label ? 1.0 : 0.0)) * inv_n);
      }
    }
  }
  return r;
}

}  // namespace convoy::kernels
