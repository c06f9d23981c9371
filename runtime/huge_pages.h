// Large weight buffers in transparent huge pages. Fully connected layers at a small batch stream
// their weights from DRAM on every run; with 4 KiB pages each weight stream takes a TLB miss and
// the hardware prefetcher restarts at every page, which measured ~25% below the streaming
// bandwidth (AlexNet's 9216x4096 FC at 1 thread: 20.6 -> 26.5 GB/s with 2 MiB pages). Debian's
// default THP mode is "madvise", so the buffer has to ask before its pages are first touched.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <string>

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

}  // namespace convoy
