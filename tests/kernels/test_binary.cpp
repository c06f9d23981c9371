#include <doctest/doctest.h>

#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "kernels/binary.h"
#include "kernels/targets_threads.h"
#include "reference/elementwise_ref.h"

using namespace convoy;
using kernels::BinaryOp;
using kernels::BinaryParams;
using kernels::Dims;

namespace {

const BinaryOp kOps[] = {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv,
                         BinaryOp::kMax, BinaryOp::kMin, BinaryOp::kPow};
const char* op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "max", "min", "pow"};
  return names[static_cast<int>(op)];
}

Dims dims(std::initializer_list<int64_t> v) {
  Dims d;
  for (int64_t x : v) d.d[d.rank++] = x;
  return d;
}

Dims contiguous_strides(const Dims& shape) {
  Dims s;
  s.rank = shape.rank;
  int64_t st = 1;
  for (size_t k = shape.rank; k-- > 0;) {
    s.d[k] = st;
    st *= shape.d[k];
  }
  return s;
}

// Strides of an input of shape `in` broadcast to `out` (numpy rules, `in` right-aligned).
Dims broadcast_strides(const Dims& in, const Dims& out) {
  const Dims cs = contiguous_strides(in);
  Dims s;
  s.rank = out.rank;
  for (size_t k = 0; k < out.rank; ++k) {
    const size_t off = out.rank - in.rank;
    s.d[k] = k < off || in.d[k - off] == 1 ? 0 : cs.d[k - off];
  }
  return s;
}

size_t elems(const Dims& shape) {
  size_t n = 1;
  for (size_t k = 0; k < shape.rank; ++k) n *= static_cast<size_t>(shape.d[k]);
  return n;
}

// Positive bases and moderate exponents keep Pow finite; b away from 0 keeps Div finite.
std::vector<float> input_a(std::mt19937& rng, size_t n, BinaryOp op) {
  return op == BinaryOp::kPow ? kernel_test::random_floats(rng, n, 0.1f, 3.f) : kernel_test::random_floats(rng, n, -4.f, 4.f);
}
std::vector<float> input_b(std::mt19937& rng, size_t n, BinaryOp op) {
  if (op == BinaryOp::kPow) return kernel_test::random_floats(rng, n, -2.5f, 2.5f);
  auto v = kernel_test::random_floats(rng, n, 0.5f, 4.f);
  std::bernoulli_distribution neg(0.5);
  for (auto& x : v) x = neg(rng) ? -x : x;
  return v;
}

double rtol(BinaryOp op) { return op == BinaryOp::kPow ? 1e-6 : 1e-7; }

struct Case {
  std::string name;
  Dims out, a_in, b_in;  // input shapes broadcast to out
};

// Runs one broadcast case for every op, out-of-place and (when legal) in-place.
void run_case(std::mt19937& rng, const Case& c, const kernels::Parallel& par) {
  INFO("case ", c.name);
  const size_t n = elems(c.out), na = elems(c.a_in), nb = elems(c.b_in);
  for (BinaryOp op : kOps) {
    INFO("op ", op_name(op));
    BinaryParams p;
    p.op = op;
    p.out_shape = c.out;
    p.a_strides = broadcast_strides(c.a_in, c.out);
    p.b_strides = broadcast_strides(c.b_in, c.out);
    const auto a = input_a(rng, na, op), b = input_b(rng, nb, op);
    const auto ref = ref::binary(p, a.data(), b.data());
    std::vector<float> out(n, -123.f);
    kernels::binary(p, a.data(), b.data(), out.data(), par);
    kernel_test::all_close(out, ref, 0, rtol(op), "out-of-place");
    if (na == n) {
      auto inplace = a;
      kernels::binary(p, inplace.data(), b.data(), inplace.data(), par);
      kernel_test::all_close(inplace, ref, 0, rtol(op), "in-place on a");
    }
    if (nb == n) {
      auto inplace = b;
      kernels::binary(p, a.data(), inplace.data(), inplace.data(), par);
      kernel_test::all_close(inplace, ref, 0, rtol(op), "in-place on b");
    }
  }
}

std::vector<Case> broadcast_cases() {
  std::vector<Case> cs;
  for (size_t n : kernel_test::odd_sizes()) {
    const int64_t m = static_cast<int64_t>(n);
    cs.push_back({"same " + std::to_string(n), dims({m}), dims({m}), dims({m})});
    cs.push_back({"tensor-scalar " + std::to_string(n), dims({m}), dims({m}), dims({})});
    cs.push_back({"scalar-tensor " + std::to_string(n), dims({m}), dims({1}), dims({m})});
    cs.push_back({"row-col " + std::to_string(n), dims({3, m}), dims({3, 1}), dims({1, m})});
  }
  cs.push_back({"scalar-scalar", dims({}), dims({}), dims({})});
  cs.push_back({"same 4-D", dims({2, 3, 5, 7}), dims({2, 3, 5, 7}), dims({2, 3, 5, 7})});
  cs.push_back({"NCHW vs C11", dims({2, 5, 3, 7}), dims({2, 5, 3, 7}), dims({5, 1, 1})});
  cs.push_back({"C11 vs NCHW", dims({2, 5, 3, 7}), dims({5, 1, 1}), dims({2, 5, 3, 7})});
  cs.push_back({"NCHW vs 1C11 wide", dims({1, 3, 17, 19}), dims({1, 3, 17, 19}), dims({1, 3, 1, 1})});
  cs.push_back({"both broadcast", dims({4, 5, 6}), dims({4, 1, 6}), dims({5, 1})});
  cs.push_back({"rank difference", dims({3, 4, 13}), dims({3, 4, 13}), dims({13})});
  cs.push_back({"inner stride 0 on a", dims({7, 9}), dims({7, 1}), dims({7, 9})});
  cs.push_back({"inner stride 0 on both", dims({6, 5}), dims({6, 1}), dims({6, 1})});
  cs.push_back({"size-1 dims", dims({1, 4, 1, 3, 1}), dims({1, 4, 1, 3, 1}), dims({4, 1, 1, 1})});
  cs.push_back({"rank 8", dims({2, 1, 3, 2, 1, 2, 3, 5}), dims({2, 1, 3, 1, 1, 2, 1, 5}),
                dims({1, 3, 2, 1, 2, 3, 1})});
  cs.push_back({"empty", dims({3, 0, 4}), dims({3, 0, 4}), dims({1})});
  return cs;
}

}  // namespace

TEST_CASE("binary: broadcasting shapes, every op, every target") {
  std::mt19937 rng(kernel_test::test_seed("binary"));
  kernels::SerialParallel serial;
  const auto cases = broadcast_cases();
  kernel_test::for_each_target([&](const char*) {
    for (const Case& c : cases) run_case(rng, c, serial);
  });
}

TEST_CASE("binary: non-unit and negative inner strides (transposed / reversed input)") {
  std::mt19937 rng(kernel_test::test_seed("binary-strided"));
  kernels::SerialParallel serial;
  kernel_test::for_each_target([&](const char*) {
    for (BinaryOp op : kOps) {
      INFO("op ", op_name(op));
      // a is a [5, 11] matrix read transposed: out[i, j] = a[j, i] op b[i, j].
      BinaryParams p;
      p.op = op;
      p.out_shape = dims({11, 5});
      p.a_strides = dims({1, 11});
      p.b_strides = dims({5, 1});
      const auto a = input_a(rng, 55, op), b = input_b(rng, 55, op);
      std::vector<float> out(55);
      kernels::binary(p, a.data(), b.data(), out.data(), serial);
      kernel_test::all_close(out, ref::binary(p, a.data(), b.data()), 0, rtol(op), "transposed a");
      // b read backwards along the inner dimension (a Slice with step -1 left as a view).
      p.out_shape = dims({3, 17});
      p.a_strides = dims({17, 1});
      p.b_strides = dims({17, -1});
      const auto a2 = input_a(rng, 51, op), b2 = input_b(rng, 51, op);
      std::vector<float> out2(51);
      kernels::binary(p, a2.data(), b2.data() + 16, out2.data(), serial);
      kernel_test::all_close(out2, ref::binary(p, a2.data(), b2.data() + 16), 0, rtol(op), "reversed b");
    }
  });
}

TEST_CASE("binary: Pow with negative bases and integer exponents") {
  kernels::SerialParallel serial;
  const std::vector<float> a = {-2.f, -3.f, -0.5f, 0.f, 2.f, -1.5f, 4.f, -2.f, 3.f};
  const std::vector<float> b = {2.f, 3.f, -2.f, 2.f, 0.5f, 0.f, -0.5f, -3.f, 1.f};
  BinaryParams p;
  p.op = BinaryOp::kPow;
  p.out_shape = dims({9});
  p.a_strides = dims({1});
  p.b_strides = dims({1});
  kernel_test::for_each_target([&](const char*) {
    std::vector<float> out(9);
    kernels::binary(p, a.data(), b.data(), out.data(), serial);
    kernel_test::all_close(out, ref::binary(p, a.data(), b.data()), 0, 1e-7, "pow");
  });
}

TEST_CASE("binary: large tensors give identical results for 1 and 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("binary-parallel"));
  kernels::SerialParallel serial;
  kernel_test::ThreadParallel three(3);
  const std::vector<Case> cases = {
      {"long row", dims({70001}), dims({70001}), dims({70001})},
      {"long row vs scalar", dims({70001}), dims({70001}), dims({})},
      {"many short rows", dims({4001, 3, 7}), dims({4001, 3, 7}), dims({3, 1})},
      {"NCHW vs C11", dims({2, 64, 33, 35}), dims({2, 64, 33, 35}), dims({64, 1, 1})},
  };
  kernel_test::for_each_target([&](const char*) {
    for (const Case& c : cases) {
      run_case(rng, c, three);
      for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kDiv, BinaryOp::kPow}) {
        BinaryParams p;
        p.op = op;
        p.out_shape = c.out;
        p.a_strides = broadcast_strides(c.a_in, c.out);
        p.b_strides = broadcast_strides(c.b_in, c.out);
        const auto a = input_a(rng, elems(c.a_in), op), b = input_b(rng, elems(c.b_in), op);
        std::vector<float> o1(elems(c.out)), o3(elems(c.out));
        kernels::binary(p, a.data(), b.data(), o1.data(), serial);
        kernels::binary(p, a.data(), b.data(), o3.data(), three);
        CHECK(o1 == o3);
      }
    }
  });
}
