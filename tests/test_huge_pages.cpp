// Packed-weight memory (runtime/huge_pages.h): weight_alloc's buffers are 64-byte aligned, do
// not overlap whatever their size (plain, carved from a shared chunk, or a mapping of their own),
// keep their values while others come and go, and those of 64 KiB and more lie in memory
// advised into huge pages (the "hg" VmFlag of their mapping in /proc/self/smaps); a freed range
// is handed out again (a session's packing that the shared copy replaces costs nothing lasting).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/huge_pages.h"

using convoy::weight_alloc;
using convoy::weight_free;

namespace {

// VmFlags of the mapping holding p, or "" when /proc/self/smaps is unreadable.
std::string vm_flags_of(const void* p) {
  std::ifstream f("/proc/self/smaps");
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(f, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

void fill(float* p, size_t n, float v) {
  for (size_t i = 0; i < n; ++i) p[i] = v + static_cast<float>(i % 1000);
}
bool holds(const float* p, size_t n, float v) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != v + static_cast<float>(i % 1000)) return false;
  return true;
}

}  // namespace

TEST_CASE("weight memory: aligned, disjoint buffers that keep their values") {
  // Plain (< 64 KiB), carved from chunks (64 KiB .. 8 MiB), own mappings (> 8 MiB), with chunk
  // boundaries crossed several times.
  const std::vector<size_t> floats = {1, 3, 1000, 16384, 16385, 250000, 262144, 1 << 20, 2000000, 3 << 20, 16,
                                      40000, 500000, 700000, 1500000, 262145, 5};
  std::vector<float*> bufs;
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < floats.size(); ++i) {
      auto* p = static_cast<float*>(weight_alloc(floats[i] * sizeof(float)));
      REQUIRE(p != nullptr);
      CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
      fill(p, floats[i], static_cast<float>(bufs.size()));
      bufs.push_back(p);
    }
  // Free every other buffer, allocate again in between, then check all that are left.
  for (size_t i = 0; i < bufs.size(); i += 2) {
    weight_free(bufs[i]);
    bufs[i] = nullptr;
  }
  std::vector<float*> more;
  for (size_t i = 0; i < floats.size(); ++i) {
    auto* p = static_cast<float*>(weight_alloc(floats[i] * sizeof(float)));
    fill(p, floats[i], -1000.f - static_cast<float>(i));
    more.push_back(p);
  }
  for (size_t i = 1; i < bufs.size(); i += 2)
    CHECK_MESSAGE(holds(bufs[i], floats[i % floats.size()], static_cast<float>(i)), "buffer " << i);
  for (size_t i = 0; i < more.size(); ++i) CHECK(holds(more[i], floats[i], -1000.f - static_cast<float>(i)));
  for (float* p : bufs) weight_free(p);
  for (float* p : more) weight_free(p);
  weight_free(nullptr);  // like free()
}

TEST_CASE("weight memory: buffers of 64 KiB and more are advised into huge pages") {
  for (size_t bytes : {size_t{64} << 10, size_t{1} << 20, size_t{20} << 20}) {
    void* p = weight_alloc(bytes);
    std::memset(p, 1, bytes);
    const std::string flags = vm_flags_of(p);
    if (flags.empty()) {
      MESSAGE("no /proc/self/smaps: huge page advice not checked");
    } else {
      CHECK_MESSAGE(flags.find(" hg") != std::string::npos, bytes << " bytes: " << flags);
    }
    weight_free(p);
  }
}

TEST_CASE("weight memory: PackedFloats is a vector like any other") {
  convoy::PackedFloats v(300000, 2.5f);
  CHECK(v.size() == 300000);
  CHECK(reinterpret_cast<uintptr_t>(v.data()) % 64 == 0);
  v.resize(600000, 1.f);
  CHECK(v[299999] == 2.5f);
  CHECK(v[300000] == 1.f);
  convoy::PackedFloats w = v;
  CHECK(w == v);
}

TEST_CASE("weight memory: a freed range is reused") {
  void* keep = weight_alloc(size_t{3} << 20);  // the chunk stays while this lives
  void* first = weight_alloc(size_t{1} << 20);
  for (int i = 0; i < 50; ++i) {
    weight_free(first);
    void* again = weight_alloc(size_t{1} << 20);
    CHECK(again == first);
    first = again;
  }
  // Two halves freed merge into one range that a buffer of both sizes fits.
  void* a = weight_alloc(size_t{512} << 10);
  void* b = weight_alloc(size_t{512} << 10);
  weight_free(first);
  weight_free(a);
  void* big = weight_alloc((size_t{3} << 19) + 64);  // 1.5 MiB + a header: needs the merged range
  CHECK(big == first);
  weight_free(big);
  weight_free(b);
  weight_free(keep);
}
