// The static planner and its arena: buffer lifetimes agree with the steps, buffers live at the
// same time never share bytes, offsets are 64-byte aligned with a spare vector inside the arena,
// and the arena stays within 5% of the liveness lower bound (chain, residual diamonds, concat,
// elementwise net; unfused and after the pass pipeline; 1 and 2 threads). Then convoy::Session:
// one cached plan per input shape (batch sizes against a naive reference) and the guard against
// a concurrent run() on one session.
#include <doctest/doctest.h>
#include <onnx/onnx_pb.h>

#include <atomic>
#include <functional>
#include <random>
#include <thread>

#include "convoy/convoy.hpp"
#include "importer/pipeline.h"
#include "runtime/api/model_impl.h"
#include "passes/graph_builder.h"

using namespace convoy;
using namespace convoy::testing;

namespace {

// ---------------------------------------------------------------- plan invariants

size_t round64(size_t b) { return (b + 63) / 64 * 64; }

bool lifetimes_overlap(const Buffer& a, const Buffer& b) { return !(a.last < b.first || b.last < a.first); }

void check_plan_invariants(const Plan& plan) {
  const int n_steps = static_cast<int>(plan.steps.size());
  REQUIRE(!plan.buffers.empty());
  // Every buffer a step touches is live at that step.
  auto live_at = [&](const TensorLoc& l, int step) {
    if (l.buffer < 0) return;
    REQUIRE(static_cast<size_t>(l.buffer) < plan.buffers.size());
    const Buffer& b = plan.buffers[static_cast<size_t>(l.buffer)];
    CHECK_MESSAGE((b.first <= step && step <= b.last),
                  "step " << step << " (" << plan.steps[static_cast<size_t>(step)].node << ") uses buffer " << l.buffer
                          << " live over [" << b.first << ", " << b.last << "]");
  };
  for (int s = 0; s < n_steps; ++s) {
    const Step& st = plan.steps[static_cast<size_t>(s)];
    for (const TensorLoc& l : st.in) live_at(l, s);
    for (const TensorLoc& l : st.out) live_at(l, s);
    if (st.scratch >= 0) live_at(TensorLoc{st.scratch, 0, nullptr}, s);
  }
  for (const TensorLoc& l : plan.inputs) {
    REQUIRE(l.buffer >= 0);
    CHECK(plan.buffers[static_cast<size_t>(l.buffer)].first == -1);
  }
  for (const TensorLoc& l : plan.outputs)
    if (l.buffer >= 0) CHECK(plan.buffers[static_cast<size_t>(l.buffer)].last >= n_steps);

  // Alignment, and each buffer plus its spare vector inside the arena.
  for (size_t i = 0; i < plan.buffers.size(); ++i) {
    const Buffer& b = plan.buffers[i];
    CAPTURE(i);
    CHECK(b.offset % 64 == 0);
    CHECK(b.offset + round64(b.bytes) + 64 <= plan.arena_bytes);
  }
  // Buffers whose lifetimes overlap do not share bytes.
  size_t overlapping_pairs = 0;
  for (size_t i = 0; i < plan.buffers.size(); ++i)
    for (size_t j = i + 1; j < plan.buffers.size(); ++j) {
      const Buffer& a = plan.buffers[i];
      const Buffer& b = plan.buffers[j];
      if (!lifetimes_overlap(a, b) || a.bytes == 0 || b.bytes == 0) continue;
      ++overlapping_pairs;
      const bool disjoint = a.offset + a.bytes <= b.offset || b.offset + b.bytes <= a.offset;
      CHECK_MESSAGE(disjoint, "buffers " << i << " [" << a.offset << ", +" << a.bytes << ") and " << j << " ["
                                         << b.offset << ", +" << b.bytes << ") are live together and overlap");
    }
  CHECK(overlapping_pairs > 0);

  // The liveness bound, recomputed: the most (padded) bytes live at any one step. No arena can
  // be smaller; ours must stay within 5% of it.
  size_t bound = 0;
  for (int t = -1; t <= n_steps; ++t) {
    size_t live = 0;
    for (const Buffer& b : plan.buffers)
      if (b.first <= t && t <= b.last) live += round64(b.bytes) + 64;
    bound = std::max(bound, live);
  }
  CHECK(plan.live_bound_bytes == bound);
  CHECK(plan.arena_bytes >= bound);
  CHECK(static_cast<double>(plan.arena_bytes) <= 1.05 * static_cast<double>(bound));
  CHECK(plan.arena_bytes <= plan.intermediate_bytes);
  MESSAGE("steps " << n_steps << ", buffers " << plan.buffers.size() << ", arena " << plan.arena_bytes
                   << " B, live bound " << bound << " B, no reuse " << plan.intermediate_bytes << " B");
}

// ---------------------------------------------------------------- test graphs with naive references

std::vector<float> const_values(const Graph& g, const std::string& name) {
  const ConstTensor* t = g.constant(name);
  REQUIRE(t != nullptr);
  return std::vector<float>(t->f32(), t->f32() + t->numel());
}

std::vector<float> add(std::vector<float> a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return a;
}

struct TestNet {
  Graph g;
  Shape x_shape;
  std::function<std::vector<float>(const Graph&, const std::vector<float>&)> reference;
};

const Attrs kPad1 = {{"pads", attr_ints({1, 1, 1, 1})}};

// x [1,8,16,16] -> Conv 3x3 (8->16) -> Relu -> Conv 3x3 s2 (16->32) -> Relu -> Conv 1x1 (32->8)
// -> Relu -> Conv 3x3 (8->4)
TestNet chain_net() {
  GraphBuilder b;
  b.input("x", {1, 8, 16, 16});
  b.constant("w1", {16, 8, 3, 3});
  b.constant("b1", {16});
  b.constant("w2", {32, 16, 3, 3});
  b.constant("b2", {32});
  b.constant("w3", {8, 32, 1, 1});
  b.constant("b3", {8});
  b.constant("w4", {4, 8, 3, 3});
  b.node("Conv", {"x", "w1", "b1"}, "c1", kPad1);
  b.node("Relu", {"c1"}, "r1");
  b.node("Conv", {"r1", "w2", "b2"}, "c2", {{"pads", attr_ints({1, 1, 1, 1})}, {"strides", attr_ints({2, 2})}});
  b.node("Relu", {"c2"}, "r2");
  b.node("Conv", {"r2", "w3", "b3"}, "c3");
  b.node("Relu", {"c3"}, "r3");
  b.node("Conv", {"r3", "w4"}, "y", kPad1);
  b.output("y");
  TestNet t{b.graph(), {1, 8, 16, 16}, {}};
  t.reference = [](const Graph& g, const std::vector<float>& x) {
    auto r1 = naive_relu(naive_conv2d(x, {1, 8, 16, 16}, const_values(g, "w1"), {16, 8, 3, 3}, g.constant("b1")->f32(), 1, 1));
    auto r2 = naive_relu(naive_conv2d(r1, {1, 16, 16, 16}, const_values(g, "w2"), {32, 16, 3, 3}, g.constant("b2")->f32(), 2, 1));
    auto r3 = naive_relu(naive_conv2d(r2, {1, 32, 8, 8}, const_values(g, "w3"), {8, 32, 1, 1}, g.constant("b3")->f32(), 1, 0));
    return naive_conv2d(r3, {1, 8, 8, 8}, const_values(g, "w4"), {4, 8, 3, 3}, nullptr, 1, 1);
  };
  return t;
}

// Two residual blocks: h = relu(x + conv(relu(conv(x)))), y = relu(h + conv(relu(conv(h)))).
TestNet diamond_net() {
  GraphBuilder b;
  b.input("x", {2, 8, 12, 12});
  for (const char* w : {"wa", "wb", "wc", "wd"}) b.constant(w, {8, 8, 3, 3}, -0.3f, 0.3f);
  for (const char* bias : {"ba", "bb", "bc", "bd"}) b.constant(bias, {8});
  b.node("Conv", {"x", "wa", "ba"}, "a", kPad1);
  b.node("Relu", {"a"}, "ar");
  b.node("Conv", {"ar", "wb", "bb"}, "bconv", kPad1);
  b.node("Add", {"bconv", "x"}, "s1");
  b.node("Relu", {"s1"}, "h");
  b.node("Conv", {"h", "wc", "bc"}, "c", kPad1);
  b.node("Relu", {"c"}, "cr");
  b.node("Conv", {"cr", "wd", "bd"}, "d", kPad1);
  b.node("Add", {"h", "d"}, "s2");
  b.node("Relu", {"s2"}, "y");
  b.output("y");
  TestNet t{b.graph(), {2, 8, 12, 12}, {}};
  t.reference = [](const Graph& g, const std::vector<float>& x) {
    const Shape s = {2, 8, 12, 12}, ws = {8, 8, 3, 3};
    auto conv = [&](const std::vector<float>& in, const char* w, const char* bias) {
      return naive_conv2d(in, s, const_values(g, w), ws, g.constant(bias)->f32(), 1, 1);
    };
    auto h = naive_relu(add(conv(naive_relu(conv(x, "wa", "ba")), "wb", "bb"), x));
    return naive_relu(add(conv(naive_relu(conv(h, "wc", "bc")), "wd", "bd"), h));
  };
  return t;
}

// Inception-like: three branches of different widths concatenated on channels, then a Conv.
TestNet concat_net() {
  GraphBuilder b;
  b.input("x", {1, 6, 10, 10});
  b.constant("w1", {4, 6, 1, 1});
  b.constant("w2", {6, 6, 3, 3});
  b.constant("w3a", {3, 6, 1, 1});
  b.constant("w3b", {2, 3, 3, 3});
  b.constant("wo", {5, 12, 3, 3});
  b.constant("bo", {5});
  b.node("Conv", {"x", "w1"}, "p1");
  b.node("Conv", {"x", "w2"}, "p2", kPad1);
  b.node("Relu", {"p2"}, "p2r");
  b.node("Conv", {"x", "w3a"}, "p3a");
  b.node("Relu", {"p3a"}, "p3ar");
  b.node("Conv", {"p3ar", "w3b"}, "p3", kPad1);
  b.node("Concat", {"p1", "p2r", "p3"}, "cat", {{"axis", attr_int(1)}});
  b.node("Conv", {"cat", "wo", "bo"}, "o", kPad1);
  b.node("Relu", {"o"}, "y");
  b.output("y");
  TestNet t{b.graph(), {1, 6, 10, 10}, {}};
  t.reference = [](const Graph& g, const std::vector<float>& x) {
    const Shape s = {1, 6, 10, 10};
    auto p1 = naive_conv2d(x, s, const_values(g, "w1"), {4, 6, 1, 1}, nullptr, 1, 0);
    auto p2 = naive_relu(naive_conv2d(x, s, const_values(g, "w2"), {6, 6, 3, 3}, nullptr, 1, 1));
    auto p3a = naive_relu(naive_conv2d(x, s, const_values(g, "w3a"), {3, 6, 1, 1}, nullptr, 1, 0));
    auto p3 = naive_conv2d(p3a, {1, 3, 10, 10}, const_values(g, "w3b"), {2, 3, 3, 3}, nullptr, 1, 1);
    std::vector<float> cat;  // N = 1: channel blocks one after the other
    cat.insert(cat.end(), p1.begin(), p1.end());
    cat.insert(cat.end(), p2.begin(), p2.end());
    cat.insert(cat.end(), p3.begin(), p3.end());
    return naive_relu(naive_conv2d(cat, {1, 12, 10, 10}, const_values(g, "wo"), {5, 12, 3, 3}, g.constant("bo")->f32(), 1, 1));
  };
  return t;
}

// No convolutions (so no scratch): the arena holds activations only.
// c = tanh(sigmoid(x)) + x; p = maxpool2x2(c); y = Concat(relu(p), sigmoid(p)) * same
TestNet elementwise_net() {
  GraphBuilder b;
  b.input("x", {1, 8, 32, 32});
  b.node("Sigmoid", {"x"}, "a");
  b.node("Tanh", {"a"}, "t");
  b.node("Add", {"t", "x"}, "c");
  b.node("MaxPool", {"c"}, "p", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
  b.node("Relu", {"p"}, "q");
  b.node("Sigmoid", {"p"}, "r");
  b.node("Concat", {"q", "r"}, "cat", {{"axis", attr_int(1)}});
  b.node("Mul", {"cat", "cat"}, "y");
  b.output("y");
  TestNet t{b.graph(), {1, 8, 32, 32}, {}};
  t.reference = [](const Graph&, const std::vector<float>& x) {
    auto sigmoid = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
    std::vector<float> c(x.size());
    for (size_t i = 0; i < x.size(); ++i) c[i] = static_cast<float>(std::tanh(sigmoid(x[i])) + x[i]);
    std::vector<float> y(16 * 16 * 16);
    for (size_t ch = 0; ch < 8; ++ch)
      for (size_t i = 0; i < 16; ++i)
        for (size_t j = 0; j < 16; ++j) {
          float m = -INFINITY;
          for (size_t di = 0; di < 2; ++di)
            for (size_t dj = 0; dj < 2; ++dj) m = std::max(m, c[(ch * 32 + 2 * i + di) * 32 + 2 * j + dj]);
          const double q = m < 0 ? 0.0 : m, r = sigmoid(m);
          y[(ch * 16 + i) * 16 + j] = static_cast<float>(q * q);
          y[((ch + 8) * 16 + i) * 16 + j] = static_cast<float>(r * r);
        }
    return y;
  };
  return t;
}

void check_net(const TestNet& net) {
  for (bool optimized : {false, true}) {
    CAPTURE(optimized);
    Graph g = net.g;
    if (optimized) optimize_graph(g);
    for (size_t threads : {size_t{1}, size_t{2}}) {
      CAPTURE(threads);
      check_plan_invariants(Planner(g, threads).build({net.x_shape}));
    }
    const auto x = random_floats(numel(net.x_shape), 42);
    INFO("input seed 42");
    check_close(run_graph(g, {net.x_shape}, {x}).outputs[0], net.reference(net.g, x));
  }
}

// ---------------------------------------------------------------- ONNX models for Session

void set_float_tensor(onnx::TensorProto* t, const std::string& name, const Shape& shape, const std::vector<float>& v) {
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) t->add_dims(d);
  for (float f : v) t->add_float_data(f);
}

// dims: >= 0 a fixed size, -1 the symbolic batch "N".
void set_value_info(onnx::ValueInfoProto* vi, const std::string& name, const Shape& dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d >= 0) dim->set_dim_value(d);
    else dim->set_dim_param("N");
  }
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, std::vector<std::string> in, const std::string& out) {
  auto* n = g->add_node();
  n->set_name(out);
  n->set_op_type(op);
  for (const auto& i : in) n->add_input(i);
  n->add_output(out);
  return n;
}

void add_ints_attr(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void add_int_attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

std::shared_ptr<Model> model_from_proto(const onnx::ModelProto& m, const std::string& name) {
  std::string bytes;
  REQUIRE(m.SerializeToString(&bytes));
  return Model::from_bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), name);
}

onnx::ModelProto new_model(onnx::GraphProto** g) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("test_planner");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(13);
  *g = m.mutable_graph();
  (*g)->set_name("g");
  return m;
}

// x [N,3,6,6] -> Conv 3x3 pad 1 (3->4, bias) -> Relu -> Flatten -> Gemm (144->5, transB, bias) -> y [N,5]
struct TinyNet {
  std::vector<float> w, b, w2, b2;
  std::shared_ptr<Model> model;

  TinyNet() {
    w = random_floats(4 * 3 * 9, 1);
    b = random_floats(4, 2);
    w2 = random_floats(5 * 144, 3, -0.2f, 0.2f);
    b2 = random_floats(5, 4);
    onnx::GraphProto* g = nullptr;
    onnx::ModelProto m = new_model(&g);
    set_value_info(g->add_input(), "x", {-1, 3, 6, 6});
    set_value_info(g->add_output(), "y", {-1, 5});
    set_float_tensor(g->add_initializer(), "w", {4, 3, 3, 3}, w);
    set_float_tensor(g->add_initializer(), "b", {4}, b);
    set_float_tensor(g->add_initializer(), "w2", {5, 144}, w2);
    set_float_tensor(g->add_initializer(), "b2", {5}, b2);
    add_ints_attr(add_node(g, "Conv", {"x", "w", "b"}, "c"), "pads", {1, 1, 1, 1});
    add_node(g, "Relu", {"c"}, "r");
    add_int_attr(add_node(g, "Flatten", {"r"}, "f"), "axis", 1);
    add_int_attr(add_node(g, "Gemm", {"f", "w2", "b2"}, "y"), "transB", 1);
    model = model_from_proto(m, "tiny.onnx");
  }

  std::vector<float> reference(const std::vector<float>& x, int64_t batch) const {
    const auto r = naive_relu(naive_conv2d(x, {batch, 3, 6, 6}, w, {4, 3, 3, 3}, b.data(), 1, 1));
    return naive_gemm_bt(r, batch, 144, w2, 5, b2.data());
  }
};

}  // namespace

TEST_CASE("planner: arena of a chain of convolutions") { check_net(chain_net()); }
TEST_CASE("planner: arena of two residual diamonds") { check_net(diamond_net()); }
TEST_CASE("planner: arena of a three-branch concat") { check_net(concat_net()); }

// A conv with a fused residual writes its output over the residual when the conv is that
// tensor's last reader (the second diamond: h is read by conv c, then by the fused d), and not
// when the residual is a graph input (x, first diamond), is read later, or is a graph output.
TEST_CASE("planner: a fused residual's buffer becomes the conv's output only at its last reader") {
  auto step_of = [](const Plan& plan, const std::string& node) -> const Step& {
    for (const Step& s : plan.steps)
      if (s.node == node) return s;
    FAIL("no step for node " << node);
    return plan.steps.front();
  };
  {
    Graph g = diamond_net().g;
    optimize_graph(g);
    const Plan plan = Planner(g, 1).build({{2, 8, 12, 12}});
    const Step& d = step_of(plan, "d");
    REQUIRE(d.in.size() == 4);
    REQUIRE(d.in[3].buffer >= 0);
    CHECK(d.out[0].buffer == d.in[3].buffer);  // over h
    const Step& b = step_of(plan, "bconv");
    REQUIRE(b.in[3].buffer >= 0);
    CHECK(b.out[0].buffer != b.in[3].buffer);  // x is the graph input
    check_plan_invariants(plan);
  }
  {
    // h also a graph output: kept.
    TestNet net = diamond_net();
    net.g.outputs.push_back("h");
    optimize_graph(net.g);
    const Plan plan = Planner(net.g, 1).build({{2, 8, 12, 12}});
    const Step& d = step_of(plan, "d");
    REQUIRE(d.in[3].buffer >= 0);
    CHECK(d.out[0].buffer != d.in[3].buffer);
    const auto x = random_floats(numel(net.x_shape), 7);
    const auto outs = run_graph(net.g, {net.x_shape}, {x}).outputs;
    REQUIRE(outs.size() == 2);
    check_close(outs[0], net.reference(diamond_net().g, x));
    const Shape sh = {2, 8, 12, 12}, ws = {8, 8, 3, 3};
    auto conv = [&](const std::vector<float>& in, const char* w, const char* bias) {
      return naive_conv2d(in, sh, const_values(net.g, w), ws, net.g.constant(bias)->f32(), 1, 1);
    };
    check_close(outs[1], naive_relu(add(conv(naive_relu(conv(x, "wa", "ba")), "wb", "bb"), x)));
  }
  {
    // y = relu(conv(r) + r): the conv reads r everywhere, so its output cannot go over r.
    GraphBuilder gb;
    gb.input("x", {1, 8, 10, 10});
    gb.constant("w", {8, 8, 3, 3}, -0.3f, 0.3f);
    gb.constant("b", {8});
    gb.node("Relu", {"x"}, "r");
    gb.node("Conv", {"r", "w", "b"}, "c", kPad1);
    gb.node("Add", {"c", "r"}, "s");
    gb.node("Relu", {"s"}, "y");
    gb.output("y");
    Graph g = gb.graph();
    Graph unfused = g;
    optimize_graph(g);
    const Plan plan = Planner(g, 1).build({{1, 8, 10, 10}});
    const Step& c = step_of(plan, "c");
    REQUIRE(c.in.size() == 4);
    REQUIRE(c.in[3].buffer >= 0);
    CHECK(c.in[3].buffer == c.in[0].buffer);
    CHECK(c.out[0].buffer != c.in[3].buffer);
    const auto x = random_floats(100 * 8, 9);
    const auto r = naive_relu(x);
    const auto want =
        naive_relu(add(naive_conv2d(r, {1, 8, 10, 10}, const_values(unfused, "w"), {8, 8, 3, 3}, unfused.constant("b")->f32(), 1, 1), r));
    check_close(run_graph(g, {{1, 8, 10, 10}}, {x}).outputs[0], want);
  }
}
TEST_CASE("planner: arena of an elementwise net with a skip, a pool and a concat") { check_net(elementwise_net()); }

TEST_CASE("planner: assign_arena_offsets on hand-made lifetimes") {
  // Lifetimes (steps): A [-1,1] 1000 B, B [0,2] 4000 B, C [2,3] 1000 B, D [3,4] 4000 B,
  // E [1,4] 64 B. Best-fit must reuse A's bytes for C and B's for D.
  Plan plan;
  plan.steps.resize(4);
  auto buf = [&](size_t bytes, int first, int last) {
    Buffer b;
    b.bytes = bytes;
    b.first = first;
    b.last = last;
    plan.buffers.push_back(b);
  };
  buf(1000, -1, 1);
  buf(4000, 0, 2);
  buf(1000, 2, 3);
  buf(4000, 3, 4);
  buf(64, 1, 4);
  assign_arena_offsets(plan);
  for (const Buffer& b : plan.buffers) CHECK(b.offset % 64 == 0);
  for (size_t i = 0; i < plan.buffers.size(); ++i)
    for (size_t j = i + 1; j < plan.buffers.size(); ++j) {
      const Buffer& a = plan.buffers[i];
      const Buffer& b = plan.buffers[j];
      if (lifetimes_overlap(a, b)) CHECK((a.offset + a.bytes <= b.offset || b.offset + b.bytes <= a.offset));
    }
  // Padded sizes: 1088, 4096, 1088, 4096, 128. Live sets: t=2: B+C+E = 5312; t=1: A+B+E = 5312.
  CHECK(plan.live_bound_bytes == 5312);
  CHECK(plan.intermediate_bytes == 1088 + 4096 + 1088 + 4096 + 128);
  CHECK(plan.arena_bytes >= plan.live_bound_bytes);
  CHECK(static_cast<double>(plan.arena_bytes) <= 1.05 * static_cast<double>(plan.live_bound_bytes));
}

TEST_CASE("planner: assign_arena_offsets within 5% of the bound on ResNet-50's first bottleneck blocks") {
  // The lifetimes of ResNet-50's first 18 buffers at batch 1 (bytes, first step, last step): the
  // stem, then bottleneck blocks (3.2 MB block inputs/outputs, 0.8 MB 64-channel maps, the 2.56 MB
  // Winograd scratch, the GEMM scratch). Best fit in every fixed order left them 8% above the
  // live bound (8.03 vs 7.44 MB); the search must bring them within 5%.
  struct Life {
    size_t bytes;
    int first, last;
  };
  const Life lifetimes[] = {
      {602112, -1, 0}, {3211264, 0, 1}, {563904, 0, 0}, {802816, 1, 4}, {802816, 2, 3}, {192512, 2, 2},
      {802816, 3, 5}, {2555856, 3, 3}, {3211264, 4, 5}, {210944, 4, 4}, {3211264, 5, 8}, {210944, 5, 5},
      {802816, 6, 7}, {770048, 6, 6}, {802816, 7, 8}, {2555856, 7, 7}, {3211264, 8, 11}, {210944, 8, 8},
  };
  Plan plan;
  plan.steps.resize(12);
  for (const Life& l : lifetimes) {
    Buffer b;
    b.bytes = l.bytes;
    b.first = l.first;
    b.last = l.last;
    plan.buffers.push_back(b);
  }
  assign_arena_offsets(plan);
  for (size_t i = 0; i < plan.buffers.size(); ++i)
    for (size_t j = i + 1; j < plan.buffers.size(); ++j) {
      const Buffer& x = plan.buffers[i];
      const Buffer& y = plan.buffers[j];
      if (lifetimes_overlap(x, y)) CHECK((x.offset + x.bytes <= y.offset || y.offset + y.bytes <= x.offset));
      CHECK(x.offset + x.bytes <= plan.arena_bytes);
    }
  INFO("arena " << plan.arena_bytes << " bound " << plan.live_bound_bytes);
  CHECK(plan.live_bound_bytes == 7436544);
  CHECK(static_cast<double>(plan.arena_bytes) <= 1.05 * static_cast<double>(plan.live_bound_bytes));
  // Deterministic: the same lifetimes give the same offsets.
  Plan again = plan;
  assign_arena_offsets(again);
  for (size_t i = 0; i < plan.buffers.size(); ++i) CHECK(again.buffers[i].offset == plan.buffers[i].offset);
}

TEST_CASE("session: one cached plan per batch size, outputs right for each") {
  TinyNet net;
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    Session session(net.model, {.threads = threads});
    // Alternate: a new plan (2), a bigger one (5, the arena grows), cached ones after.
    for (int64_t batch : {2, 5, 2, 1, 5, 1}) {
      CAPTURE(batch);
      const uint32_t seed = 1000 + static_cast<uint32_t>(batch);
      INFO("input seed " << seed);
      const Shape xs = {batch, 3, 6, 6};
      Tensor x(xs, random_floats(numel(xs), seed));
      const std::vector<Tensor> y = session.run({x});
      REQUIRE(y.size() == 1);
      CHECK(y[0].shape() == std::vector<int64_t>{batch, 5});
      check_close(y[0].values(), net.reference(x.values(), batch));
    }
    const PlanInfo p2 = session.plan_info({{2, 3, 6, 6}});
    const PlanInfo p5 = session.plan_info({{5, 3, 6, 6}});
    REQUIRE(!p2.steps.empty());
    REQUIRE(!p5.steps.empty());
    CHECK(p2.steps.front().input_shapes.at(0) == std::vector<int64_t>{2, 3, 6, 6});
    CHECK(p5.steps.front().input_shapes.at(0) == std::vector<int64_t>{5, 3, 6, 6});
    CHECK(p2.steps.back().output_shape == std::vector<int64_t>{2, 5});
    CHECK(p5.steps.back().output_shape == std::vector<int64_t>{5, 5});
    CHECK(p5.arena_bytes > p2.arena_bytes);
  }
}

TEST_CASE("session: a second concurrent run on one session throws convoy::Error") {
  // A slow run (one large Gemm) in one thread; the other thread calls run() with no inputs in a
  // loop until the first run returns. Each of those calls either finds the session busy (the
  // error under test) or fails on its input count; the busy error must show up at least once
  // (the slow run takes milliseconds, each probe microseconds; the episode is repeated a few
  // times so that a stalled probe thread cannot make the test flaky).
  const int64_t M = 256, K = 1536, N = 1536;
  const auto a = random_floats(static_cast<size_t>(M * K), 77);
  const auto w = random_floats(static_cast<size_t>(N * K), 78);
  onnx::GraphProto* g = nullptr;
  onnx::ModelProto m = new_model(&g);
  set_value_info(g->add_input(), "a", {M, K});
  set_value_info(g->add_output(), "y", {M, N});
  set_float_tensor(g->add_initializer(), "w", {N, K}, w);
  add_int_attr(add_node(g, "Gemm", {"a", "w"}, "y"), "transB", 1);
  auto model = model_from_proto(m, "slow.onnx");
  Session session(model, {.threads = 1});
  const Tensor x({M, K}, a);

  bool saw_busy = false;
  std::string busy_message;
  std::vector<Tensor> y;
  for (int episode = 0; episode < 20 && !saw_busy; ++episode) {
    std::atomic<bool> started{false}, done{false};
    std::thread slow([&] {
      started = true;
      for (;;) {
        try {
          y = session.run({x});
          break;
        } catch (const Error&) {
          // The probe held the session for a moment: try again.
        }
      }
      done = true;
    });
    while (!started) std::this_thread::yield();
    while (!done) {
      try {
        session.run({});
        FAIL_CHECK("run() with no inputs must throw");
      } catch (const Error& e) {
        const std::string msg = e.what();
        if (msg.find("in progress") != std::string::npos) {
          saw_busy = true;
          busy_message = msg;
        } else {
          CHECK(msg.find("expected 1 inputs, got 0") != std::string::npos);
        }
      }
    }
    slow.join();
  }
  CHECK(saw_busy);
  CHECK(busy_message.find("slow.onnx") != std::string::npos);

  // The slow run's result is intact: spot-check entries against naive dot products.
  REQUIRE(y.size() == 1);
  REQUIRE(y[0].shape() == std::vector<int64_t>{M, N});
  std::mt19937 rng(5);
  for (int k = 0; k < 200; ++k) {
    const int64_t i = static_cast<int64_t>(rng() % M), j = static_cast<int64_t>(rng() % N);
    double s = 0, mag = 0;
    for (int64_t t = 0; t < K; ++t) {
      const double p = static_cast<double>(a[static_cast<size_t>(i * K + t)]) * w[static_cast<size_t>(j * K + t)];
      s += p;
      mag += std::abs(p);
    }
    CHECK(std::abs(y[0].data()[i * N + j] - s) <= 1e-5 * mag);
  }
  // And the session is free again.
  CHECK_NOTHROW(session.run({x}));
}

TEST_CASE("session: constants made at plan time outlive the planner") {
  // y = x * ConstantOfShape(Shape(x), 2.5): the constant exists only once the input shape is
  // known (Planner::build), and the Mul step reads it after the planner is gone.
  onnx::GraphProto* g = nullptr;
  onnx::ModelProto m = new_model(&g);
  set_value_info(g->add_input(), "x", {-1, 37});
  set_value_info(g->add_output(), "y", {-1, 37});
  add_node(g, "Shape", {"x"}, "s");
  auto* cos = add_node(g, "ConstantOfShape", {"s"}, "k");
  auto* value = cos->add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  set_float_tensor(value->mutable_t(), "value", {1}, {2.5f});
  add_node(g, "Mul", {"x", "k"}, "y");
  auto model = model_from_proto(m, "const_of_shape.onnx");
  Session session(model, {.threads = 1});
  for (int64_t batch : {3, 64, 3}) {
    CAPTURE(batch);
    const Shape xs = {batch, 37};
    Tensor x(xs, random_floats(numel(xs), 9));
    const auto y = session.run({x});
    REQUIRE(y.size() == 1);
    std::vector<float> want = x.values();
    for (float& v : want) v *= 2.5f;
    check_close(y[0].values(), want, 0.0);
  }
}

TEST_CASE("weight store: packed conv weights replace the raw ones, rebuilt exactly for new plans") {
  // Three convs, each weight read by one node: plain (packed-A panels), grouped (group 2), and a
  // 3x3/2 conv to a 3x3 map with M = 64, K = 576 (the transposed small-map layout), a 3x3/1 conv
  // with C = 64, M = 16 (Winograd, raw weights rearranged for its per-run transform), a 5x5/2
  // conv with C = 64, M = 16 (Winograd on its space-to-depth rewriting: 256 channels, 3x3); plus
  // two 1x1 convs sharing one initializer, which must stay raw. Outputs are checked against naive
  // convolutions for batch sizes and thread counts that make new plans after the raw copies are gone.
  const auto wa = random_floats(8 * 4 * 9, 21, -0.3f, 0.3f);    // [8, 4, 3, 3]
  const auto wg = random_floats(64 * 4 * 9, 22, -0.3f, 0.3f);   // [64, 4, 3, 3], group 2 on 8 channels
  const auto wt = random_floats(64 * 64 * 9, 23, -0.1f, 0.1f);  // [64, 64, 3, 3], stride 2
  const auto ws = random_floats(64 * 64, 24, -0.1f, 0.1f);      // shared [64, 64, 1, 1]
  const auto ww = random_floats(16 * 64 * 9, 25, -0.1f, 0.1f);  // [16, 64, 3, 3], Winograd
  const auto wq = random_floats(16 * 64 * 25, 26, -0.1f, 0.1f); // [16, 64, 5, 5], stride 2: s2d Winograd
  onnx::GraphProto* g = nullptr;
  onnx::ModelProto m = new_model(&g);
  set_value_info(g->add_input(), "x", {-1, 4, 5, 5});
  set_value_info(g->add_output(), "y", {-1, 64, 3, 3});
  set_value_info(g->add_output(), "z", {-1, 64, 5, 5});
  set_value_info(g->add_output(), "v", {-1, 16, 5, 5});
  set_value_info(g->add_output(), "u", {-1, 16, 3, 3});
  set_float_tensor(g->add_initializer(), "wa", {8, 4, 3, 3}, wa);
  set_float_tensor(g->add_initializer(), "wg", {64, 4, 3, 3}, wg);
  set_float_tensor(g->add_initializer(), "wt", {64, 64, 3, 3}, wt);
  set_float_tensor(g->add_initializer(), "ws", {64, 64, 1, 1}, ws);
  set_float_tensor(g->add_initializer(), "ww", {16, 64, 3, 3}, ww);
  add_ints_attr(add_node(g, "Conv", {"x", "wa"}, "a"), "pads", {1, 1, 1, 1});
  auto* grouped = add_node(g, "Conv", {"a", "wg"}, "b");
  add_ints_attr(grouped, "pads", {1, 1, 1, 1});
  add_int_attr(grouped, "group", 2);
  auto* strided = add_node(g, "Conv", {"b", "wt"}, "y");
  add_ints_attr(strided, "pads", {1, 1, 1, 1});
  add_ints_attr(strided, "strides", {2, 2});
  add_node(g, "Conv", {"b", "ws"}, "s1");
  add_node(g, "Conv", {"s1", "ws"}, "z");
  add_ints_attr(add_node(g, "Conv", {"b", "ww"}, "v"), "pads", {1, 1, 1, 1});
  set_float_tensor(g->add_initializer(), "wq", {16, 64, 5, 5}, wq);
  auto* s2d = add_node(g, "Conv", {"b", "wq"}, "u");
  add_ints_attr(s2d, "pads", {2, 2, 2, 2});
  add_ints_attr(s2d, "strides", {2, 2});
  auto model = model_from_proto(m, "store.onnx");
  const WeightStore& store = model->impl().store;

  auto reference = [&](const std::vector<float>& x, int64_t n) {
    const auto a = naive_conv2d(x, {n, 4, 5, 5}, wa, {8, 4, 3, 3}, nullptr, 1, 1);
    const auto b = naive_conv2d(a, {n, 8, 5, 5}, wg, {64, 4, 3, 3}, nullptr, 1, 1, 2);
    const auto y = naive_conv2d(b, {n, 64, 5, 5}, wt, {64, 64, 3, 3}, nullptr, 2, 1);
    const auto s1 = naive_conv2d(b, {n, 64, 5, 5}, ws, {64, 64, 1, 1}, nullptr, 1, 0);
    const auto z = naive_conv2d(s1, {n, 64, 5, 5}, ws, {64, 64, 1, 1}, nullptr, 1, 0);
    return std::make_tuple(y, z, naive_conv2d(b, {n, 64, 5, 5}, ww, {16, 64, 3, 3}, nullptr, 1, 1),
                           naive_conv2d(b, {n, 64, 5, 5}, wq, {16, 64, 5, 5}, nullptr, 2, 2));
  };
  for (int threads : {1, 3}) {
    CAPTURE(threads);
    Session session(model, {.threads = threads});
    for (int64_t batch : {1, 4, 2}) {
      CAPTURE(batch);
      const Shape xs = {batch, 4, 5, 5};
      Tensor x(xs, random_floats(numel(xs), 30 + static_cast<uint32_t>(batch)));
      const auto out = session.run({x});
      REQUIRE(out.size() == 4);
      const auto [y, z, v, u] = reference(x.values(), batch);
      check_close(out[0].values(), y);
      check_close(out[1].values(), z);
      check_close(out[2].values(), v, 1e-4);  // Winograd's error bound is looser than im2col's
      check_close(out[3].values(), u, 1e-4);
      // Each packed weight is the model's only copy from the first plan on; the shared one stays.
      CHECK(store.released("wa"));
      CHECK(store.released("wg"));
      CHECK(store.released("wt"));
      CHECK(store.released("ww"));
      CHECK(store.released("wq"));
      CHECK_FALSE(store.released("ws"));
      CHECK(model->impl().graph.constant("wa")->bytes.empty());
      CHECK(store.released_bytes() == (wa.size() + wg.size() + wt.size() + ww.size() + wq.size()) * sizeof(float));
    }
  }
  // The rebuilt values are the original ones, bit for bit.
  for (const auto& [name, want] : {std::pair{"wa", &wa}, std::pair{"wg", &wg}, std::pair{"wt", &wt}, std::pair{"ww", &ww},
                                   std::pair{"wq", &wq}}) {
    CAPTURE(name);
    const ConstPtr raw = store.restore(name);
    REQUIRE(static_cast<size_t>(raw->numel()) == want->size());
    CHECK(std::equal(want->begin(), want->end(), raw->f32()));
  }
}
