// A small CNN written as ONNX bytes in code (onnx protobuf, no generated data) and its forward
// pass by naive double loops, for the embedding tests (C API, concurrency, install).
//
//   input [N,3,12,12] (N dynamic)
//   -> Conv M1x3x3x3 pad 1 + bias -> Relu              (M1 = 8 by default)
//   -> Conv M2xM1x3x3 stride 2 pad 1 + bias -> Relu     [N,M2,6,6] (M2 = 16 by default)
//   -> GlobalAveragePool -> Flatten                     [N,M2]
//   -> Gemm (transB) 10xM2 + bias                       "scores" [N,10]
// Metadata: convoy.labels = "c0\nc1\n...\nc9".
#pragma once
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace convoy::testing {

struct SmallCnn {
  static constexpr int64_t kC = 3, kH = 12, kW = 12, kClasses = 10;
  int64_t kM1 = 8, kM2 = 16;
  std::vector<float> w1, b1, w2, b2, fc, fcb;

  explicit SmallCnn(uint32_t seed = 42, int64_t m1 = 8, int64_t m2 = 16) : kM1(m1), kM2(m2) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    auto fill = [&](std::vector<float>& v, int64_t n) {
      v.resize(static_cast<size_t>(n));
      for (float& x : v) x = u(rng);
    };
    fill(w1, kM1 * kC * 9);
    fill(b1, kM1);
    fill(w2, kM2 * kM1 * 9);
    fill(b2, kM2);
    fill(fc, kClasses * kM2);
    fill(fcb, kClasses);
  }

  std::string onnx_bytes() const {
    onnx::ModelProto m;
    m.set_ir_version(7);
    m.set_producer_name("convoy-tests");
    auto* op = m.add_opset_import();
    op->set_domain("");
    op->set_version(13);
    auto* md = m.add_metadata_props();
    md->set_key("convoy.labels");
    std::string labels;
    for (int64_t i = 0; i < kClasses; ++i) labels.append(i ? "\nc" : "c").append(std::to_string(i));
    md->set_value(labels);
    onnx::GraphProto* g = m.mutable_graph();
    g->set_name("small_cnn");
    auto value = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
      v->set_name(name);
      auto* t = v->mutable_type()->mutable_tensor_type();
      t->set_elem_type(onnx::TensorProto::FLOAT);
      auto* s = t->mutable_shape();
      for (int64_t d : dims) {
        auto* dim = s->add_dim();
        if (d < 0) dim->set_dim_param("batch");
        else dim->set_dim_value(d);
      }
    };
    value(g->add_input(), "input", {-1, kC, kH, kW});
    value(g->add_output(), "scores", {-1, kClasses});
    auto init = [&](const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v) {
      auto* t = g->add_initializer();
      t->set_name(name);
      t->set_data_type(onnx::TensorProto::FLOAT);
      for (int64_t d : dims) t->add_dims(d);
      t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    };
    init("w1", {kM1, kC, 3, 3}, w1);
    init("b1", {kM1}, b1);
    init("w2", {kM2, kM1, 3, 3}, w2);
    init("b2", {kM2}, b2);
    init("fc", {kClasses, kM2}, fc);
    init("fcb", {kClasses}, fcb);
    auto node = [&](const std::string& type, const std::string& name, std::vector<std::string> in, std::string out) {
      auto* n = g->add_node();
      n->set_op_type(type);
      n->set_name(name);
      for (auto& s : in) n->add_input(s);
      n->add_output(out);
      return n;
    };
    auto ints = [](onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
      auto* a = n->add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::INTS);
      for (int64_t x : v) a->add_ints(x);
    };
    auto* c1 = node("Conv", "conv1", {"input", "w1", "b1"}, "c1");
    ints(c1, "pads", {1, 1, 1, 1});
    node("Relu", "relu1", {"c1"}, "r1");
    auto* c2 = node("Conv", "conv2", {"r1", "w2", "b2"}, "c2");
    ints(c2, "pads", {1, 1, 1, 1});
    ints(c2, "strides", {2, 2});
    node("Relu", "relu2", {"c2"}, "r2");
    node("GlobalAveragePool", "pool", {"r2"}, "p");
    node("Flatten", "flatten", {"p"}, "f");
    auto* fcn = node("Gemm", "fc", {"f", "fc", "fcb"}, "scores");
    auto* tb = fcn->add_attribute();
    tb->set_name("transB");
    tb->set_type(onnx::AttributeProto::INT);
    tb->set_i(1);
    return m.SerializeAsString();
  }

  // Forward pass by naive loops in double: x [n,3,12,12] -> [n,10].
  std::vector<double> reference(const std::vector<float>& x, int64_t n) const {
    auto conv = [](const std::vector<double>& in, int64_t N, int64_t C, int64_t H, int64_t W, const std::vector<float>& w,
                   const std::vector<float>& b, int64_t M, int64_t stride, int64_t* OH, int64_t* OW) {
      *OH = (H + 2 - 3) / stride + 1;
      *OW = (W + 2 - 3) / stride + 1;
      std::vector<double> out(static_cast<size_t>(N * M * *OH * *OW));
      for (int64_t i = 0; i < N; ++i)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t oh = 0; oh < *OH; ++oh)
            for (int64_t ow = 0; ow < *OW; ++ow) {
              double s = b[static_cast<size_t>(m)];
              for (int64_t c = 0; c < C; ++c)
                for (int64_t kh = 0; kh < 3; ++kh)
                  for (int64_t kw = 0; kw < 3; ++kw) {
                    const int64_t ih = oh * stride + kh - 1, iw = ow * stride + kw - 1;
                    if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
                    s += in[static_cast<size_t>(((i * C + c) * H + ih) * W + iw)] *
                         w[static_cast<size_t>(((m * C + c) * 3 + kh) * 3 + kw)];
                  }
              out[static_cast<size_t>(((i * M + m) * *OH + oh) * *OW + ow)] = std::max(s, 0.0);  // + Relu
            }
      return out;
    };
    std::vector<double> a(x.begin(), x.end());
    int64_t h1, w1o, h2, w2o;
    std::vector<double> r1 = conv(a, n, kC, kH, kW, w1, b1, kM1, 1, &h1, &w1o);
    std::vector<double> r2 = conv(r1, n, kM1, h1, w1o, w2, b2, kM2, 2, &h2, &w2o);
    std::vector<double> out(static_cast<size_t>(n * kClasses));
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> pooled(static_cast<size_t>(kM2), 0.0);
      for (int64_t m = 0; m < kM2; ++m) {
        for (int64_t k = 0; k < h2 * w2o; ++k) pooled[static_cast<size_t>(m)] += r2[static_cast<size_t>((i * kM2 + m) * h2 * w2o + k)];
        pooled[static_cast<size_t>(m)] /= static_cast<double>(h2 * w2o);
      }
      for (int64_t j = 0; j < kClasses; ++j) {
        double s = fcb[static_cast<size_t>(j)];
        for (int64_t m = 0; m < kM2; ++m) s += pooled[static_cast<size_t>(m)] * fc[static_cast<size_t>(j * kM2 + m)];
        out[static_cast<size_t>(i * kClasses + j)] = s;
      }
    }
    return out;
  }
};

// Deterministic input in [-1, 1) for batch n.
inline std::vector<float> small_cnn_input(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n * SmallCnn::kC * SmallCnn::kH * SmallCnn::kW));
  for (float& v : x) v = u(rng);
  return x;
}

}  // namespace convoy::testing
