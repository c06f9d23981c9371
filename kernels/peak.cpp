// Peak probes (see peak.h). The FMA loop needs enough independent accumulators to cover FMA
// latency x FMA pipes (Zen 4/5 and Skylake-X: 4 cycles x 2 pipes = 8 vectors in flight); 16 on
// targets with 32 vector registers, 12 with 16 registers (AVX2: 12 + 2 operands, no spills).
#include "kernels/peak.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/peak.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr size_t kAccumulators = 12;
#else
constexpr size_t kAccumulators = 16;
#endif

size_t fma_peak_flops_per_iteration_impl() {
  const hn::ScalableTag<float> d;
  return kAccumulators * hn::Lanes(d) * 2;
}

float fma_peak_impl(size_t iterations) {
  const hn::ScalableTag<float> d;
  // x <- x * m + a with m slightly below 1 converges to a/(1-m): values stay finite.
  const auto m = hn::Set(d, 0.999999f), a = hn::Set(d, 1e-6f);
  auto v0 = hn::Set(d, 0.f), v1 = hn::Set(d, 1.f), v2 = hn::Set(d, 2.f), v3 = hn::Set(d, 3.f);
  auto v4 = hn::Set(d, 4.f), v5 = hn::Set(d, 5.f), v6 = hn::Set(d, 6.f), v7 = hn::Set(d, 7.f);
  auto v8 = hn::Set(d, 8.f), v9 = hn::Set(d, 9.f), v10 = hn::Set(d, 10.f), v11 = hn::Set(d, 11.f);
#if !(HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3)
  auto v12 = hn::Set(d, 12.f), v13 = hn::Set(d, 13.f), v14 = hn::Set(d, 14.f), v15 = hn::Set(d, 15.f);
#endif
  for (size_t i = 0; i < iterations; ++i) {
    v0 = hn::MulAdd(v0, m, a), v1 = hn::MulAdd(v1, m, a), v2 = hn::MulAdd(v2, m, a), v3 = hn::MulAdd(v3, m, a);
    v4 = hn::MulAdd(v4, m, a), v5 = hn::MulAdd(v5, m, a), v6 = hn::MulAdd(v6, m, a), v7 = hn::MulAdd(v7, m, a);
    v8 = hn::MulAdd(v8, m, a), v9 = hn::MulAdd(v9, m, a), v10 = hn::MulAdd(v10, m, a), v11 = hn::MulAdd(v11, m, a);
#if !(HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3)
    v12 = hn::MulAdd(v12, m, a), v13 = hn::MulAdd(v13, m, a), v14 = hn::MulAdd(v14, m, a), v15 = hn::MulAdd(v15, m, a);
#endif
  }
  auto s = hn::Add(hn::Add(hn::Add(v0, v1), hn::Add(v2, v3)), hn::Add(hn::Add(v4, v5), hn::Add(v6, v7)));
  s = hn::Add(s, hn::Add(hn::Add(v8, v9), hn::Add(v10, v11)));
#if !(HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3)
  s = hn::Add(s, hn::Add(hn::Add(v12, v13), hn::Add(v14, v15)));
#endif
  return hn::GetLane(hn::SumOfLanes(d, s));
}

float stream_read_impl(const float* HWY_RESTRICT p, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::Add(s0, hn::Load(d, p + i));
    s1 = hn::Add(s1, hn::Load(d, p + i + N));
    s2 = hn::Add(s2, hn::Load(d, p + i + 2 * N));
    s3 = hn::Add(s3, hn::Load(d, p + i + 3 * N));
  }
  for (; i + N <= n; i += N) s0 = hn::Add(s0, hn::Load(d, p + i));  // n % 16 == 0: no scalar tail
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
}

int64_t peak_target_impl() { return HWY_TARGET; }

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(fma_peak_impl);
HWY_EXPORT(fma_peak_flops_per_iteration_impl);
HWY_EXPORT(stream_read_impl);
HWY_EXPORT(peak_target_impl);

float fma_peak(size_t iterations) { return HWY_DYNAMIC_DISPATCH(fma_peak_impl)(iterations); }
size_t fma_peak_flops_per_iteration() { return HWY_DYNAMIC_DISPATCH(fma_peak_flops_per_iteration_impl)(); }
float stream_read(const float* p, size_t n) { return HWY_DYNAMIC_DISPATCH(stream_read_impl)(p, n); }
const char* peak_target_name() { return hwy::TargetName(HWY_DYNAMIC_DISPATCH(peak_target_impl)()); }

}  // namespace convoy::kernels
#endif  // HWY_ONCE
