// A 64-byte aligned heap buffer (arena, fold scratch). Contents are uninitialised: every
// tensor in it is written by a step before it is read. Large buffers ask for huge pages
// (runtime/huge_pages.h) before their first touch.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "runtime/huge_pages.h"

namespace convoy {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes) { resize(bytes); }
  ~AlignedBuffer() { std::free(p_); }
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  // Discards the contents when it grows.
  void resize(size_t bytes) {
    if (bytes <= n_) return;
    std::free(p_);
    p_ = nullptr;
    n_ = 0;
    const size_t rounded = (bytes + 63) / 64 * 64;
    p_ = static_cast<char*>(std::aligned_alloc(64, rounded == 0 ? 64 : rounded));
    if (!p_) throw std::bad_alloc();
    n_ = rounded;
    if (n_ >= kHugePageMinBytes) advise_huge_pages(p_, n_);
  }
  char* data() { return p_; }
  size_t size() const { return n_; }

 private:
  char* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace convoy
