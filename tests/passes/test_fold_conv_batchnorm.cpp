// passes::fold_conv_batchnorm: Conv -> inference BatchNormalization becomes one Conv with scaled
// weights and bias. It must not match when the Conv output has another reader or is a graph
// output, when BN parameters or Conv weights are not constants, or when an epilogue
// activation already sits between the two.
#include <doctest/doctest.h>

#include "importer/passes/passes.h"
#include "passes/graph_builder.h"

using namespace convoy;
using namespace convoy::testing;

namespace {

// BN parameters for M channels: gamma, beta, mean, var (> 0), as constants <prefix>_*.
std::vector<std::string> bn_params(GraphBuilder& b, const std::string& prefix, int64_t M) {
  return {b.constant(prefix + "_gamma", {M}, 0.5f, 1.5f), b.constant(prefix + "_beta", {M}),
          b.constant(prefix + "_mean", {M}), b.constant(prefix + "_var", {M}, 0.1f, 2.f)};
}

std::vector<std::string> with_x(const std::string& x, std::vector<std::string> params) {
  params.insert(params.begin(), x);
  return params;
}

struct ConvBn {
  GraphBuilder b;
  Shape x_shape;
};

// x -> Conv(w, [bias]) -> "c" -> BN -> "y"
ConvBn conv_bn(bool conv_bias, int64_t group = 1, float epsilon = -1.f) {
  ConvBn t;
  GraphBuilder& b = t.b;
  t.x_shape = {2, 4, 6, 6};
  b.input("x", t.x_shape);
  b.constant("w", {6, 4 / group, 3, 3});
  std::vector<std::string> conv_in = {"x", "w"};
  if (conv_bias) conv_in.push_back(b.constant("bias", {6}));
  b.node("Conv", conv_in, "c", {{"pads", attr_ints({1, 1, 1, 1})}, {"group", attr_int(group)}});
  Attrs bn_attrs;
  if (epsilon > 0) bn_attrs.push_back({"epsilon", attr_float(epsilon)});
  b.node("BatchNormalization", with_x("c", bn_params(b, "bn", 6)), "y", bn_attrs);
  b.output("y");
  return t;
}

}  // namespace

TEST_CASE("fold_conv_batchnorm: Conv+BN becomes one Conv with the same outputs") {
  struct Variant {
    const char* name;
    bool bias;
    int64_t group;
    float eps;
  };
  for (const Variant& v : {Variant{"with bias", true, 1, -1.f}, Variant{"without bias", false, 1, -1.f},
                           Variant{"grouped, epsilon 1e-3", true, 2, 1e-3f}}) {
    CAPTURE(v.name);
    ConvBn t = conv_bn(v.bias, v.group, v.eps);
    Graph& g = t.b.graph();
    const Graph before = g;
    CHECK(count_ops(g, "Conv") == 1);
    CHECK(count_ops(g, "BatchNormalization") == 1);
    CHECK(passes::fold_conv_batchnorm(g));
    CHECK(count_ops(g, "Conv") == 1);
    CHECK(count_ops(g, "BatchNormalization") == 0);
    const Node& conv = g.nodes.at(0);
    CHECK(conv.outputs == std::vector<std::string>{"y"});
    REQUIRE(conv.inputs.size() == 3);
    CHECK(g.constant(conv.inputs[2])->shape == Shape{6});
    CHECK(conv.fused == std::vector<std::string>{"BatchNormalization"});
    check_same_outputs(before, g, {t.x_shape});
  }
}

TEST_CASE("fold_conv_batchnorm: folded weights and bias against the BN formula") {
  ConvBn t = conv_bn(true);
  Graph& g = t.b.graph();
  const Graph before = g;
  REQUIRE(passes::fold_conv_batchnorm(g));
  const Node& conv = g.nodes.at(0);
  const float* w0 = before.constant("w")->f32();
  const float* b0 = before.constant("bias")->f32();
  const float* gamma = before.constant("bn_gamma")->f32();
  const float* beta = before.constant("bn_beta")->f32();
  const float* mean = before.constant("bn_mean")->f32();
  const float* var = before.constant("bn_var")->f32();
  const ConstTensor& w = *g.constant(conv.inputs[1]);
  const ConstTensor& bias = *g.constant(conv.inputs[2]);
  REQUIRE(w.shape == Shape{6, 4, 3, 3});
  for (size_t m = 0; m < 6; ++m) {
    const double s = gamma[m] / std::sqrt(static_cast<double>(var[m]) + 1e-5);
    for (size_t i = 0; i < 36; ++i) CHECK(w.f32()[m * 36 + i] == doctest::Approx(w0[m * 36 + i] * s).epsilon(1e-6));
    CHECK(bias.f32()[m] == doctest::Approx((b0[m] - mean[m]) * s + beta[m]).epsilon(1e-6));
  }
}

TEST_CASE("fold_conv_batchnorm: two Convs sharing weights, each with its BN, both fold") {
  GraphBuilder b;
  b.input("x", {1, 3, 5, 5});
  b.constant("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, "c1");
  b.node("Conv", {"x", "w"}, "c2", {{"pads", attr_ints({1, 1, 1, 1})}});
  b.node("BatchNormalization", with_x("c1", bn_params(b, "bn1", 4)), "y1");
  b.node("BatchNormalization", with_x("c2", bn_params(b, "bn2", 4)), "y2");
  b.output("y1");
  b.output("y2");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(passes::fold_conv_batchnorm(g));
  CHECK(count_ops(g, "BatchNormalization") == 0);
  CHECK(count_ops(g, "Conv") == 2);
  CHECK(g.nodes[0].inputs[1] != g.nodes[1].inputs[1]);  // each has its own scaled weights
  check_same_outputs(before, g, {{1, 3, 5, 5}});
}

TEST_CASE("fold_conv_batchnorm: does not match a Conv output with two readers") {
  ConvBn t = conv_bn(true);
  t.b.node("Relu", {"c"}, "r");
  t.b.output("r");
  Graph& g = t.b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fold_conv_batchnorm(g));
  CHECK(count_ops(g, "BatchNormalization") == 1);
  check_same_outputs(before, g, {t.x_shape});
}

TEST_CASE("fold_conv_batchnorm: does not match a Conv output that is a graph output") {
  ConvBn t = conv_bn(false);
  t.b.output("c");
  Graph& g = t.b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fold_conv_batchnorm(g));
  CHECK(count_ops(g, "BatchNormalization") == 1);
  check_same_outputs(before, g, {t.x_shape});
}

TEST_CASE("fold_conv_batchnorm: does not match non-constant BN parameters") {
  // The running mean arrives as a runtime input.
  GraphBuilder b;
  b.input("x", {1, 3, 5, 5});
  b.input("mean", {4});
  b.constant("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, "c");
  auto p = bn_params(b, "bn", 4);
  p[2] = "mean";
  b.node("BatchNormalization", with_x("c", p), "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fold_conv_batchnorm(g));
  CHECK(count_ops(g, "BatchNormalization") == 1);
  check_same_outputs(before, g, {{1, 3, 5, 5}, {4}});
}

TEST_CASE("fold_conv_batchnorm: does not match non-constant Conv weights") {
  GraphBuilder b;
  b.input("x", {1, 3, 5, 5});
  b.input("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, "c");
  b.node("BatchNormalization", with_x("c", bn_params(b, "bn", 4)), "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fold_conv_batchnorm(g));
  CHECK(count_ops(g, "BatchNormalization") == 1);
  check_same_outputs(before, g, {{1, 3, 5, 5}, {4, 3, 3, 3}});
}

TEST_CASE("fold_conv_batchnorm: does not match a Conv already carrying _act") {
  // Conv -> Relu -> BN; after fuse_activation the Conv carries the Relu, so BN(relu(conv))
  // is not a scaled conv.
  GraphBuilder b;
  b.input("x", {1, 3, 5, 5});
  b.constant("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, "c");
  b.node("Relu", {"c"}, "r");
  b.node("BatchNormalization", with_x("r", bn_params(b, "bn", 4)), "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  REQUIRE(passes::fuse_activation(g));
  REQUIRE(g.nodes[0].has("_act"));
  CHECK_FALSE(passes::fold_conv_batchnorm(g));
  CHECK(count_ops(g, "BatchNormalization") == 1);
  check_same_outputs(before, g, {{1, 3, 5, 5}});
}

TEST_CASE("fold_conv_batchnorm: a BN already carrying _act keeps its activation") {
  // Conv -> BN -> Relu with fuse_activation run first: the BN carries the Relu. Folding the
  // BN into the Conv must not lose it (either keep the BN, or move _act onto the Conv).
  GraphBuilder b;
  b.input("x", {1, 3, 5, 5});
  b.constant("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, "c");
  b.node("BatchNormalization", with_x("c", bn_params(b, "bn", 4)), "n");
  b.node("Relu", {"n"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  REQUIRE(passes::fuse_activation(g));
  REQUIRE(count_ops(g, "Relu") == 0);
  passes::fold_conv_batchnorm(g);
  check_same_outputs(before, g, {{1, 3, 5, 5}});
}

TEST_CASE("fold_conv_batchnorm: does not match a training-mode BN or a BN with statistics outputs") {
  SUBCASE("training_mode = 1") {
    ConvBn t = conv_bn(true);
    t.b.graph().nodes[1].attrs["training_mode"] = attr_int(1);
    CHECK_FALSE(passes::fold_conv_batchnorm(t.b.graph()));
    CHECK(count_ops(t.b.graph(), "BatchNormalization") == 1);
  }
  SUBCASE("running statistics outputs") {
    ConvBn t = conv_bn(true);
    t.b.graph().nodes[1].outputs = {"y", "running_mean", "running_var"};
    CHECK_FALSE(passes::fold_conv_batchnorm(t.b.graph()));
    CHECK(count_ops(t.b.graph(), "BatchNormalization") == 1);
  }
}
