// weight_alloc / weight_free (runtime/huge_pages.h): packed weights in huge pages.
// Chunks of kChunkBytes, 2 MiB-aligned and advised into huge pages, hand out buffers first fit
// from a list of free ranges per chunk; a freed buffer's range merges with its free neighbours
// (so a session's packing that a shared copy replaces is reused by the next), the whole huge
// pages inside a free range are given back to the system, and an empty chunk is released.
#include "runtime/huge_pages.h"

#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace convoy {
namespace {

constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kChunkBytes = size_t{32} << 20;  // a multiple of kHuge
constexpr size_t kChunkMin = size_t{64} << 10;    // smaller buffers: plain allocations
constexpr size_t kChunkMax = kChunkBytes / 4;     // larger ones: a mapping of their own
constexpr size_t kHeader = 64;                    // keeps the payload 64-byte aligned

struct Chunk {
  char* base = nullptr;
  std::map<size_t, size_t> free;  // offset -> bytes, disjoint, not adjacent
};

// Every buffer is preceded by a header naming where it came from.
struct Header {
  Chunk* chunk;  // nullptr: a buffer of its own, allocated at the header
  size_t bytes;  // the range taken from the chunk, header included
};
static_assert(sizeof(Header) <= kHeader);

std::mutex g_mu;
std::vector<std::unique_ptr<Chunk>> g_chunks;

void* aligned_or_throw(size_t align, size_t bytes) {
  void* p = nullptr;
  if (::posix_memalign(&p, align, bytes) != 0) throw std::bad_alloc();
  return p;
}

// Gives the whole huge pages inside [off, off + n) of a chunk back to the system (they read as
// zeros when touched again).
void release_pages(const Chunk& c, size_t off, size_t n) {
  const size_t a = (off + kHuge - 1) / kHuge * kHuge, e = (off + n) / kHuge * kHuge;
  if (e > a) ::madvise(c.base + a, e - a, MADV_DONTNEED);
}

char* take(Chunk& c, size_t need) {
  for (auto it = c.free.begin(); it != c.free.end(); ++it) {
    if (it->second < need) continue;
    const size_t off = it->first, left = it->second - need;
    c.free.erase(it);
    if (left) c.free.emplace(off + need, left);
    return c.base + off;
  }
  return nullptr;
}

}  // namespace

void* weight_alloc(size_t bytes) {
  if (bytes > SIZE_MAX - kHuge - kHeader) throw std::bad_alloc();
  const size_t need = kHeader + (bytes + 63) / 64 * 64;
  if (bytes < kChunkMin || need > kChunkMax) {
    const bool huge = bytes >= kChunkMin;
    char* h = static_cast<char*>(aligned_or_throw(huge ? kHuge : 64, need));
    if (huge) advise_huge_pages(h, need);
    *reinterpret_cast<Header*>(h) = {nullptr, need};
    return h + kHeader;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  char* h = nullptr;
  Chunk* from = nullptr;
  for (auto& c : g_chunks)
    if ((h = take(*c, need))) {
      from = c.get();
      break;
    }
  if (!h) {
    auto c = std::make_unique<Chunk>();
    c->base = static_cast<char*>(aligned_or_throw(kHuge, kChunkBytes));
    advise_huge_pages(c->base, kChunkBytes);
    c->free.emplace(0, kChunkBytes);
    g_chunks.push_back(std::move(c));
    from = g_chunks.back().get();
    h = take(*from, need);
  }
  *reinterpret_cast<Header*>(h) = {from, need};
  return h + kHeader;
}

void weight_free(void* p) noexcept {
  if (!p) return;
  char* h = static_cast<char*>(p) - kHeader;
  const Header hd = *reinterpret_cast<Header*>(h);
  if (!hd.chunk) {
    std::free(h);
    return;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  Chunk& c = *hd.chunk;
  size_t off = static_cast<size_t>(h - c.base), n = hd.bytes;
  auto next = c.free.lower_bound(off);
  if (next != c.free.end() && off + n == next->first) {
    n += next->second;
    next = c.free.erase(next);
  }
  if (next != c.free.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      off = prev->first;
      n += prev->second;
      c.free.erase(prev);
    }
  }
  if (off == 0 && n == kChunkBytes) {  // empty: the chunk goes
    std::free(c.base);
    for (auto it = g_chunks.begin(); it != g_chunks.end(); ++it)
      if (it->get() == &c) {
        g_chunks.erase(it);
        break;
      }
    return;
  }
  c.free.emplace(off, n);
  release_pages(c, off, n);
}

}  // namespace convoy
