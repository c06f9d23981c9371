#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/strided_copy.h"
#include "kernels/targets_threads.h"
#include "reference/movement_ref.h"

using namespace convoy;
using kernels::Dims;
using kernels::StridedCopyParams;

namespace {

Dims dims(const std::vector<int64_t>& v) {
  Dims d;
  for (int64_t x : v) d.d[d.rank++] = x;
  return d;
}

std::vector<int64_t> contiguous(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t st = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    s[k] = st;
    st *= shape[k];
  }
  return s;
}

int64_t product(const std::vector<int64_t>& v) {
  int64_t n = 1;
  for (int64_t x : v) n *= x;
  return n;
}

// Runs the kernel and the reference on copies of the same sentinel-filled dst buffer and
// compares the whole buffer (so writes outside the window are caught).
void check_copy(std::mt19937& rng, const StridedCopyParams& p, size_t src_size, int64_t src_offset, size_t dst_size,
                int64_t dst_offset, const kernels::Parallel& par) {
  const auto src = kernel_test::random_floats(rng, src_size, -10.f, 10.f);
  std::vector<float> want(dst_size, -1e9f), got(dst_size, -1e9f);
  ref::strided_copy(p, src.data() + src_offset, want.data() + dst_offset);
  kernels::strided_copy(p, src.data() + src_offset, got.data() + dst_offset, par);
  CHECK(got == want);
}

}  // namespace

TEST_CASE("strided_copy: transposes of rank 2-5, every permutation") {
  std::mt19937 rng(kernel_test::test_seed("strided_copy-transpose"));
  kernels::SerialParallel serial;
  const std::vector<std::vector<int64_t>> shapes = {
      {17, 13}, {1, 33}, {40, 70}, {3, 5, 7}, {2, 3, 4, 5}, {16, 1, 9, 33}, {2, 3, 2, 5, 3}};
  for (const auto& shape : shapes) {
    std::vector<size_t> perm(shape.size());
    std::iota(perm.begin(), perm.end(), 0);
    const auto in_strides = contiguous(shape);
    do {
      // out = transpose(in, perm): out shape[k] = shape[perm[k]], reads in stride[perm[k]].
      std::vector<int64_t> out_shape(shape.size()), src_strides(shape.size());
      for (size_t k = 0; k < perm.size(); ++k) {
        out_shape[k] = shape[perm[k]];
        src_strides[k] = in_strides[perm[k]];
      }
      StridedCopyParams p;
      p.shape = dims(out_shape);
      p.src_strides = dims(src_strides);
      p.dst_strides = dims(contiguous(out_shape));
      const size_t n = static_cast<size_t>(product(shape));
      check_copy(rng, p, n, 0, n, 0, serial);
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
}

TEST_CASE("strided_copy: slices with negative and positive steps, broadcast, concat windows") {
  std::mt19937 rng(kernel_test::test_seed("strided_copy-slices"));
  kernels::SerialParallel serial;
  // Source [6, 9, 13]; slice [5:0:-2, ::3, 12::-1] -> shape [3, 3, 13].
  {
    StridedCopyParams p;
    p.shape = dims({3, 3, 13});
    p.src_strides = dims({-2 * 117, 3 * 13, -1});
    p.dst_strides = dims({39, 13, 1});
    check_copy(rng, p, 6 * 9 * 13, 5 * 117 + 12, 3 * 3 * 13, 0, serial);
  }
  // Reverse a whole 1-D tensor of odd length.
  for (int64_t n : {1, 7, 16, 17, 127}) {
    StridedCopyParams p;
    p.shape = dims({n});
    p.src_strides = dims({-1});
    p.dst_strides = dims({1});
    check_copy(rng, p, static_cast<size_t>(n), n - 1, static_cast<size_t>(n), 0, serial);
  }
  // Expand [3, 1, 5] -> [2, 3, 4, 5] (stride 0 on broadcast dims), and a scalar to [7, 11].
  {
    StridedCopyParams p;
    p.shape = dims({2, 3, 4, 5});
    p.src_strides = dims({0, 5, 0, 1});
    p.dst_strides = dims({60, 20, 5, 1});
    check_copy(rng, p, 15, 0, 120, 0, serial);
    p.shape = dims({7, 11});
    p.src_strides = dims({0, 0});
    p.dst_strides = dims({11, 1});
    check_copy(rng, p, 1, 0, 77, 0, serial);
    // Broadcast along the inner dimension only: [5, 1] -> [5, 9].
    p.shape = dims({5, 9});
    p.src_strides = dims({1, 0});
    p.dst_strides = dims({9, 1});
    check_copy(rng, p, 5, 0, 45, 0, serial);
  }
  // Concat along axis 1: an input [2, 3, 5] written into the window [:, 4:7, :] of [2, 10, 5].
  {
    StridedCopyParams p;
    p.shape = dims({2, 3, 5});
    p.src_strides = dims({15, 5, 1});
    p.dst_strides = dims({50, 5, 1});
    check_copy(rng, p, 30, 0, 100, 4 * 5, serial);
  }
  // Rank 8 with size-1 dimensions, rank 0 and empty shapes.
  {
    StridedCopyParams p;
    p.shape = dims({2, 1, 3, 1, 2, 1, 2, 3});
    const auto dst = contiguous({2, 1, 3, 1, 2, 1, 2, 3});
    p.dst_strides = dims(dst);
    p.src_strides = dims({1, 7, 2, 5, 6, 9, 12, 24});  // a permuted [3, 2, 2, 2] layout
    check_copy(rng, p, 72, 0, 72, 0, serial);
    p.shape = dims({});
    p.src_strides = dims({});
    p.dst_strides = dims({});
    check_copy(rng, p, 1, 0, 1, 0, serial);
    p.shape = dims({3, 0});
    p.src_strides = dims({1, 1});
    p.dst_strides = dims({1, 1});
    check_copy(rng, p, 1, 0, 1, 0, serial);
  }
}

TEST_CASE("strided_copy: large copies give identical results for 1 and 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("strided_copy-parallel"));
  kernel_test::ThreadParallel three(3);
  // NCHW -> NHWC of [2, 67, 37, 41]; a contiguous copy; a reversed long row; an expand.
  {
    const std::vector<int64_t> in = {2, 67, 37, 41};
    const auto s = contiguous(in);
    StridedCopyParams p;
    p.shape = dims({2, 37, 41, 67});
    p.src_strides = dims({s[0], s[2], s[3], s[1]});
    p.dst_strides = dims(contiguous({2, 37, 41, 67}));
    check_copy(rng, p, 2 * 67 * 37 * 41, 0, 2 * 67 * 37 * 41, 0, three);
  }
  {
    StridedCopyParams p;
    p.shape = dims({3, 50001});
    p.src_strides = dims({50001, 1});
    p.dst_strides = dims({50001, 1});
    check_copy(rng, p, 150003, 0, 150003, 0, three);
    p.src_strides = dims({50001, -1});
    check_copy(rng, p, 150003, 50000, 150003, 0, three);
    p.src_strides = dims({1, 0});
    check_copy(rng, p, 3, 0, 150003, 0, three);
  }
}
