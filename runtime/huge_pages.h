// Large weight buffers in transparent huge pages. Fully connected layers at a small batch stream
// their weights from DRAM on every run; with 4 KiB pages each weight stream takes a TLB miss and
// the hardware prefetcher restarts at every page, which measured ~25% below the streaming
// bandwidth (AlexNet's 9216x4096 FC at 1 thread: 20.6 -> 26.5 GB/s with 2 MiB pages). Debian's
// default THP mode is "madvise", so the buffer has to ask before its pages are first touched.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

namespace convoy {

inline constexpr size_t kHugePageMinBytes = size_t{4} << 20;  // smaller buffers gain little

// Hints (errors ignored) that the 2 MiB-aligned interior of [p, p+n) should use huge pages.
inline void advise_huge_pages(const void* p, size_t n) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(kHuge - 1);
  if (e > a) ::madvise(reinterpret_cast<void*>(a), e - a, MADV_HUGEPAGE);
#else
  (void)p;
  (void)n;
#endif
}

// s.resize(n) for an empty s, with huge pages advised before the first touch when n is large.
inline void resize_for_weights(std::string& s, size_t n) {
  if (n >= kHugePageMinBytes && s.empty()) {
    s.reserve(n);  // a fresh mapping: its pages are not touched yet
    advise_huge_pages(s.data(), n);
  }
  s.resize(n);
}

// Memory for packed weights in huge pages (runtime/huge_pages.cpp). Convolution weights are
// streamed from DRAM on every run (ResNet-50 holds 97 MiB, past any L3), each layer's a few MiB
// or less; with 4 KiB pages (glibc's heap) ResNet-50 at 1 thread measured 0.5-1.3% slower (whole
// runs alternating: the same binary with glibc.malloc.hugetlb=1 and without). Buffers of 64 KiB
// up to 8 MiB share 32 MiB chunks of huge pages (freed ranges are reused, an empty chunk is
// released); larger ones get a 2 MiB-aligned allocation of their own.
void* weight_alloc(size_t bytes);  // 64-byte aligned; throws std::bad_alloc
void weight_free(void* p) noexcept;

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(weight_alloc(n * sizeof(T)));
  }
  void deallocate(T* p, size_t) noexcept { weight_free(p); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const HugePageAllocator<U>&) const noexcept { return false; }
};

// Packed weights (WeightCache, WeightStore, OpContext::keep_const / keep_packed).
using PackedFloats = std::vector<float, HugePageAllocator<float>>;

}  // namespace convoy
