// Training engine (runtime/train/, include/convoy/train.hpp) against PyTorch autograd and
// torch.optim.SGD (tests/gen/gen_train_refs.py writes $CONVOY_TEST_DATA/train): parameter
// gradients, SGD updates (one and two steps: the momentum path), thread-count independence,
// memory of the frozen/suffix split, head replacement + export, checkpoints, bad options.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"
#include "convoy/train.hpp"
#include "npy_test_util.h"

namespace fs = std::filesystem;
using convoy::testing::NpyArray;
using convoy::testing::read_npy_f32;
using convoy::train::Trainer;
using convoy::train::TrainOptions;

namespace {

fs::path case_dir(const std::string& name) {
  const fs::path root = convoy::testing::test_data_dir();
  INFO(convoy::testing::kMissingDataHint);
  REQUIRE(!root.empty());
  const fs::path d = root / "train" / name;
  REQUIRE(fs::exists(d / "model.onnx"));
  return d;
}

std::string safe(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  return s;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream f(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

struct Batch {
  NpyArray x;
  std::vector<int32_t> y;
  size_t n() const { return static_cast<size_t>(x.shape[0]); }
};

Batch read_batch(const fs::path& d, int i) {
  Batch b;
  b.x = read_npy_f32(d / ("x" + std::to_string(i) + ".npy"));
  for (float v : read_npy_f32(d / ("y" + std::to_string(i) + ".npy")).data) b.y.push_back(static_cast<int32_t>(v));
  return b;
}

struct Diff {
  double rel_norm = 0;    // ||a - r|| / ||r||
  double max_abs = 0;     // max |a - r|
  double max_ref = 0;     // max |r|
};

Diff diff(const std::vector<float>& a, const std::vector<float>& r) {
  REQUIRE(a.size() == r.size());
  Diff d;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = static_cast<double>(a[i]) - r[i];
    num += e * e;
    den += static_cast<double>(r[i]) * r[i];
    d.max_abs = std::max(d.max_abs, std::fabs(e));
    d.max_ref = std::max(d.max_ref, std::fabs(static_cast<double>(r[i])));
  }
  d.rel_norm = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return d;
}

// Gradient check: relative norm <= 1e-4 and elementwise |g - g_t| <= 1e-4 * max|g_t| + 1e-9.
void check_grads(Trainer& t, const fs::path& d, const std::string& model) {
  const auto grads = t.last_gradients();
  const auto names = read_lines(d / "params.txt");
  REQUIRE(names.size() == grads.size());
  double worst = 0;
  for (const std::string& name : names) {
    REQUIRE(grads.count(name) == 1);
    const NpyArray ref = read_npy_f32(d / ("grad_" + safe(name) + ".npy"));
    const Diff e = diff(grads.at(name), ref.data);
    MESSAGE(model << " grad " << name << ": rel " << e.rel_norm << ", max abs " << e.max_abs << " (max |ref| "
                  << e.max_ref << ")");
    CHECK(e.rel_norm <= 1e-4);
    CHECK(e.max_abs <= 1e-4 * e.max_ref + 1e-9);
    worst = std::max(worst, e.rel_norm);
  }
  MESSAGE(model << ": worst gradient relative error " << worst);
}

// Parameters after SGD: relative norm <= 1e-5 and elementwise <= 1e-5 * max|p_t| + 1e-9.
void check_params(Trainer& t, const fs::path& d, int step, const std::string& model) {
  const auto params = t.parameters();
  for (const std::string& name : read_lines(d / "params.txt")) {
    const NpyArray ref = read_npy_f32(d / ("step" + std::to_string(step) + "_" + safe(name) + ".npy"));
    const Diff e = diff(params.at(name), ref.data);
    MESSAGE(model << " step " << step << " " << name << ": rel " << e.rel_norm << ", max abs " << e.max_abs);
    CHECK(e.rel_norm <= 1e-5);
    CHECK(e.max_abs <= 1e-5 * e.max_ref + 1e-9);
  }
}

TrainOptions opts(int last, int threads = 2) {
  TrainOptions o;
  o.train_last = last;
  o.lr = 0.01f;
  o.momentum = 0.9f;
  o.weight_decay = 5e-4f;
  o.threads = threads;
  return o;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const convoy::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("train: demo model, last 2 layers: gradients and two SGD steps equal PyTorch") {
  const fs::path d = case_dir("demo");
  Trainer t((d / "model.onnx").string(), opts(2));
  CHECK(t.num_classes() == 10);
  CHECK(t.input_shape() == std::vector<int64_t>{1, 28, 28});
  CHECK(t.trainable().size() == 4);
  const Batch b1 = read_batch(d, 1), b2 = read_batch(d, 2);
  const auto r1 = t.train_step(b1.x.data.data(), b1.y.data(), b1.n());
  CHECK(r1.count == b1.n());
  CHECK(std::isfinite(r1.loss));
  check_grads(t, d, "demo");
  check_params(t, d, 1, "demo");
  t.train_step(b2.x.data.data(), b2.y.data(), b2.n());
  check_params(t, d, 2, "demo");
  CHECK(t.steps() == 2);
}

TEST_CASE("train: predict before training equals convoy inference of the whole model") {
  const fs::path d = case_dir("demo");
  const Batch b = read_batch(d, 1);
  Trainer t((d / "model.onnx").string(), opts(2));
  const std::vector<float> logits = t.predict(b.x.data.data(), b.n());
  auto model = convoy::Model::load((d / "model.onnx").string());
  convoy::Session s(model);
  const auto out = s.run({convoy::Tensor(b.x.shape, b.x.data)});
  const Diff e = diff(logits, out[0].values());
  MESSAGE("demo predict vs Session::run: max abs " << e.max_abs);
  CHECK(e.max_abs <= 1e-5 * std::max(1.0, e.max_ref));
  // evaluate == the loss train_step reports (no update in evaluate).
  const auto ev = t.evaluate(b.x.data.data(), b.y.data(), b.n());
  const auto tr = t.train_step(b.x.data.data(), b.y.data(), b.n());
  CHECK(ev.loss == doctest::Approx(tr.loss).epsilon(1e-6));
  CHECK(ev.correct == tr.correct);
}

TEST_CASE("train: every suffix op, all layers trainable: gradients and two SGD steps equal PyTorch") {
  // Conv (pads, stride + groups, dilation, 1x1), LeakyRelu, LRN, BatchNormalization, Relu,
  // AveragePool, residual Add, MaxPool, GlobalAveragePool, Reshape, MatMul + Add, Gemm (alpha,
  // beta, scalar C), Gemm (transB, C [1, N]); the frontier is the graph input (no frozen part).
  const fs::path d = case_dir("ops");
  Trainer t((d / "model.onnx").string(), opts(7));
  CHECK(t.memory(4).frozen_arena_bytes == 0);
  const Batch b1 = read_batch(d, 1), b2 = read_batch(d, 2);
  t.train_step(b1.x.data.data(), b1.y.data(), b1.n());
  check_grads(t, d, "ops");
  check_params(t, d, 1, "ops");
  t.train_step(b2.x.data.data(), b2.y.data(), b2.n());
  check_params(t, d, 2, "ops");
  // Last 4 layers (c4, matmul, gemm, gemm2): the residual Add reads a frontier value produced by
  // the frozen prefix; same gradients for those parameters.
  Trainer s((d / "model.onnx").string(), opts(4));
  CHECK(s.memory(4).frozen_arena_bytes > 0);
  s.train_step(b1.x.data.data(), b1.y.data(), b1.n());
  const auto g = s.last_gradients();
  CHECK(g.size() == 8);
  for (const auto& kv : g) {
    INFO(kv.first);
    const Diff e = diff(kv.second, read_npy_f32(d / ("grad_" + safe(kv.first) + ".npy")).data);
    CHECK(e.rel_norm <= 1e-4);
  }
}

TEST_CASE("train: alexnet, last 3 layers (classifier.1/.4/.6): gradients equal PyTorch") {
  const fs::path d = case_dir("alexnet");
  Trainer t((d / "model.onnx").string(), opts(3));
  const auto tr = t.trainable();
  REQUIRE(tr.size() == 6);
  CHECK(tr[0].name == "classifier.1.weight");
  const Batch b1 = read_batch(d, 1);
  t.train_step(b1.x.data.data(), b1.y.data(), b1.n());
  check_grads(t, d, "alexnet");
}

TEST_CASE("train: resnet18 (BatchNormalization kept), layer4.1.conv2 + fc: gradients and SGD equal PyTorch") {
  const fs::path d = case_dir("resnet18");
  Trainer t((d / "model.onnx").string(), opts(2));
  REQUIRE(t.trainable().size() == 3);  // conv2 weight (no bias), fc weight and bias
  const Batch b1 = read_batch(d, 1), b2 = read_batch(d, 2);
  t.train_step(b1.x.data.data(), b1.y.data(), b1.n());
  check_grads(t, d, "resnet18");
  check_params(t, d, 1, "resnet18");
  t.train_step(b2.x.data.data(), b2.y.data(), b2.n());
  check_params(t, d, 2, "resnet18");
  const auto mem = t.memory(b1.n());
  MESSAGE("resnet18 batch 4: frozen arena " << mem.frozen_arena_bytes << " B, train arena " << mem.train_arena_bytes
                                            << " B (live bound " << mem.train_live_bound_bytes << "), params "
                                            << mem.param_bytes << " B, weights " << mem.weight_bytes << " B");
}

TEST_CASE("train: results do not depend on the thread count (bit-identical)") {
  const fs::path d = case_dir("demo");
  const Batch b1 = read_batch(d, 1), b2 = read_batch(d, 2);
  // Last 2 (Gemm) layers, and every layer: conv weight/data gradients, max-pool switches.
  for (int last : {2, 5}) {
    std::map<std::string, std::vector<float>> g[3], p[3];
    std::vector<float> logits[3];
    for (int k = 0; k < 3; ++k) {
      Trainer t((d / "model.onnx").string(), opts(last, k + 1));
      logits[k] = t.predict(b1.x.data.data(), b1.n());
      t.train_step(b1.x.data.data(), b1.y.data(), b1.n());
      t.train_step(b2.x.data.data(), b2.y.data(), b2.n());
      g[k] = t.last_gradients();
      p[k] = t.parameters();
    }
    CHECK(g[0].size() == (last == 2 ? 4u : 10u));
    for (int k = 1; k < 3; ++k) {
      CHECK(logits[0] == logits[k]);
      for (const auto& kv : g[0]) {
        INFO("train_last " << last << ", threads " << k + 1 << ": " << kv.first);
        CHECK(kv.second == g[k].at(kv.first));
        CHECK(p[0].at(kv.first) == p[k].at(kv.first));
      }
    }
  }
}

TEST_CASE("train: memory: the frozen prefix has no gradients or saved activations") {
  const fs::path d = case_dir("alexnet");
  const size_t batch = 4;
  Trainer last3((d / "model.onnx").string(), opts(3));
  Trainer all((d / "model.onnx").string(), opts(8));
  const auto m3 = last3.memory(batch), m8 = all.memory(batch);
  MESSAGE("alexnet batch 4, last 3: frozen arena " << m3.frozen_arena_bytes << " B, train arena " << m3.train_arena_bytes
                                                   << " B (live bound " << m3.train_live_bound_bytes << "), params "
                                                   << m3.param_bytes << " B, weights " << m3.weight_bytes << " B");
  MESSAGE("alexnet batch 4, all 8: frozen arena " << m8.frozen_arena_bytes << " B, train arena " << m8.train_arena_bytes
                                                  << " B (live bound " << m8.train_live_bound_bytes << ")");
  CHECK(m8.frozen_arena_bytes == 0);
  CHECK(m3.frozen_arena_bytes > 0);
  CHECK(m3.grad_bytes == m3.param_bytes);
  CHECK(m3.optimizer_bytes == m3.param_bytes);
  // The suffix of 3 FC layers holds [4, 9216]-sized tensors (and GEMM packing scratch); the
  // whole model's training plan keeps conv activations, pool switches and their gradients.
  CHECK(m3.train_arena_bytes * 4 < m8.train_arena_bytes);  // measured: 1.8 MB vs 19 MB
  CHECK(m3.train_arena_bytes >= m3.train_live_bound_bytes);
  CHECK(m8.train_arena_bytes >= m8.train_live_bound_bytes);
  // Weights are held once (frozen ones shared with the graph, trainable ones in place).
  CHECK(m3.weight_bytes <= fs::file_size(d / "model.onnx"));
  CHECK(m3.weight_bytes > fs::file_size(d / "model.onnx") * 9 / 10);
}

TEST_CASE("train: new head (num_classes 2) on alexnet: output [B, 2], exported model equals predict") {
  const fs::path d = case_dir("alexnet");
  TrainOptions o = opts(1);
  o.num_classes = 2;
  o.seed = 42;
  Trainer t((d / "model.onnx").string(), o);
  CHECK(t.num_classes() == 2);
  const auto tr = t.trainable();
  REQUIRE(tr.size() == 2);
  CHECK(tr[0].shape == std::vector<int64_t>{2, 4096});
  CHECK(tr[1].shape == std::vector<int64_t>{2});
  // N(0, 0.01) weights, zero bias.
  const auto p0 = t.parameters();
  double sum2 = 0;
  for (float v : p0.at(tr[0].name)) sum2 += static_cast<double>(v) * v;
  const double std_dev = std::sqrt(sum2 / 8192);
  CHECK(std_dev > 0.009);
  CHECK(std_dev < 0.011);
  for (float v : p0.at(tr[1].name)) CHECK(v == 0.f);
  Batch b = read_batch(d, 1);
  for (int32_t& y : b.y) y %= 2;
  t.train_step(b.x.data.data(), b.y.data(), b.n());
  const std::vector<float> logits = t.predict(b.x.data.data(), b.n());
  REQUIRE(logits.size() == b.n() * 2);
  const fs::path out = fs::temp_directory_path() / "convoy_test_train_head.onnx";
  t.export_onnx(out.string(), {{"convoy.labels", "cat\ndog"}});
  auto model = convoy::Model::load(out.string());
  convoy::Session s(model);
  const auto y = s.run({convoy::Tensor(b.x.shape, b.x.data)});
  CHECK(y[0].shape() == std::vector<int64_t>{static_cast<int64_t>(b.n()), 2});
  const Diff e = diff(y[0].values(), logits);
  MESSAGE("alexnet 2-class export vs predict: max abs " << e.max_abs << " (max |logit| " << e.max_ref << ")");
  CHECK(e.max_abs <= 1e-5 * std::max(1.0, e.max_ref));
  fs::remove(out);
  // Kaiming-uniform: every value within 1/sqrt(fan_in).
  o.head_init = TrainOptions::HeadInit::kKaiming;
  Trainer k((d / "model.onnx").string(), o);
  const float bound = 1.f / std::sqrt(4096.f);
  float max_abs = 0;
  double mean_abs = 0;
  for (const auto& [name, v] : k.parameters())
    for (float x : v) {
      max_abs = std::max(max_abs, std::fabs(x));
      mean_abs += std::fabs(x) / 8194.0;
    }
  CHECK(max_abs <= bound);
  CHECK(mean_abs == doctest::Approx(bound / 2).epsilon(0.05));  // uniform on [-b, b]: E|x| = b/2
}

TEST_CASE("train: checkpoint round trip, identical next step; bad checkpoints are errors") {
  const fs::path d = case_dir("demo");
  const Batch b1 = read_batch(d, 1), b2 = read_batch(d, 2);
  const fs::path ck = fs::temp_directory_path() / "convoy_test_train.ckpt";
  Trainer a((d / "model.onnx").string(), opts(3));
  a.train_step(b1.x.data.data(), b1.y.data(), b1.n());
  a.set_lr(0.005f);
  const std::string extra("loop\0state", 10);
  a.save_checkpoint(ck.string(), extra);
  CHECK(!fs::exists(ck.string() + ".tmp"));
  Trainer b((d / "model.onnx").string(), opts(3));
  CHECK(b.load_checkpoint(ck.string()) == extra);
  CHECK(b.steps() == 1);
  CHECK(b.lr() == 0.005f);
  CHECK(a.parameters() == b.parameters());
  const auto ra = a.train_step(b2.x.data.data(), b2.y.data(), b2.n());
  const auto rb = b.train_step(b2.x.data.data(), b2.y.data(), b2.n());
  CHECK(ra.loss == rb.loss);
  CHECK(a.parameters() == b.parameters());  // momentum restored too

  const std::string good = [&] {
    std::ifstream f(ck, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }();
  auto write = [&](const std::string& bytes) {
    std::ofstream f(ck, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  const auto before = b.parameters();
  write(good.substr(0, good.size() / 2));
  CHECK(error_of([&] { b.load_checkpoint(ck.string()); }).find(ck.string()) != std::string::npos);
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;
  write(flipped);
  CHECK(error_of([&] { b.load_checkpoint(ck.string()); }).find("corrupt") != std::string::npos);
  write("garbage garbage garbage garbage");
  CHECK(!error_of([&] { b.load_checkpoint(ck.string()); }).empty());
  CHECK(b.parameters() == before);  // a failed load changes nothing
  write(good);
  Trainer other((d / "model.onnx").string(), opts(2));
  CHECK(error_of([&] { other.load_checkpoint(ck.string()); }).find("another model") != std::string::npos);
  fs::remove(ck);
  CHECK(!error_of([&] { b.load_checkpoint(ck.string()); }).empty());
}

TEST_CASE("train: bad options are errors naming the model") {
  const fs::path d = case_dir("demo");
  const std::string m = (d / "model.onnx").string();
  CHECK(error_of([&] { Trainer t(m, opts(0)); }).find("train_last 0") != std::string::npos);
  CHECK(error_of([&] { Trainer t(m, opts(6)); }).find("5 trainable layers") != std::string::npos);
  TrainOptions o = opts(1);
  o.train_nodes = {"no_such_node"};
  const std::string e = error_of([&] { Trainer t(m, o); });
  CHECK(e.find(m) != std::string::npos);
  CHECK(e.find("no_such_node") != std::string::npos);
  CHECK(e.find("/classifier/classifier.5/Gemm") != std::string::npos);  // candidates listed
  // By name: only that layer.
  o.train_nodes = {"/features/features.8/Conv"};
  Trainer t(m, o);
  REQUIRE(t.trainable().size() == 2);
  CHECK(t.trainable()[0].node == "/features/features.8/Conv");
  const Batch b = read_batch(d, 1);
  std::vector<int32_t> bad = b.y;
  bad[0] = 10;
  CHECK(!error_of([&] { t.train_step(b.x.data.data(), bad.data(), b.n()); }).empty());
  CHECK(t.steps() == 0);
}

TEST_CASE("train: Dropout is active (seeded) in train_step and off in evaluate/predict; ops without backward") {
  const fs::path d = case_dir("small");
  const std::string m = (d / "model.onnx").string();
  // The conv is the 3rd layer from the end: Sigmoid joins the suffix and has no backward.
  const std::string e = error_of([&] { Trainer t(m, opts(3)); });
  CHECK(e.find("node 'sigmoid' (Sigmoid): no backward for Sigmoid; train fewer layers") != std::string::npos);
  CHECK(e.find(m) != std::string::npos);

  const Batch b = read_batch(d, 1);
  TrainOptions o = opts(2);
  o.seed = 5;
  Trainer a(m, o), same(m, o);
  o.seed = 6;
  Trainer other(m, o);
  // Dropout off: predict equals inference of the whole model (which ignores Dropout).
  auto model = convoy::Model::load(m);
  convoy::Session s(model);
  const auto ref = s.run({convoy::Tensor(b.x.shape, b.x.data)});
  const std::vector<float> logits = a.predict(b.x.data.data(), b.n());
  CHECK(diff(logits, ref[0].values()).max_abs <= 1e-6);
  const auto ev = a.evaluate(b.x.data.data(), b.y.data(), b.n());
  CHECK(a.evaluate(b.x.data.data(), b.y.data(), b.n()).loss == ev.loss);
  // Dropout on: the training loss differs from the evaluation loss; masks depend on (seed, step).
  const auto ra = a.train_step(b.x.data.data(), b.y.data(), b.n());
  const auto rs = same.train_step(b.x.data.data(), b.y.data(), b.n());
  const auto ro = other.train_step(b.x.data.data(), b.y.data(), b.n());
  CHECK(ra.loss != ev.loss);
  CHECK(ra.loss == rs.loss);
  CHECK(ra.loss != ro.loss);
  CHECK(a.last_gradients() == same.last_gradients());
  CHECK(a.last_gradients() != other.last_gradients());
  const auto r2 = a.train_step(b.x.data.data(), b.y.data(), b.n());
  const auto e2 = a.evaluate(b.x.data.data(), b.y.data(), b.n());
  CHECK(r2.loss != e2.loss);
  // Half the hidden units are dropped: about half of fc2's weight-gradient columns are zero.
  const std::vector<float> gw = a.last_gradients().at("fc2.w");  // [5, 32]
  size_t zero_cols = 0;
  for (size_t j = 0; j < 32; ++j) {
    bool zero = true;
    for (size_t i = 0; i < 5; ++i) zero = zero && gw[i * 32 + j] == 0.f;
    zero_cols += zero;
  }
  MESSAGE("fc2.w gradient: " << zero_cols << " of 32 columns zero (Dropout 0.5 and ReLU over 6 images)");
  CHECK(zero_cols > 0);
  CHECK(zero_cols < 32);
}

TEST_CASE("train: a final Softmax: the loss and predict() use its input (the logits)") {
  const fs::path d = case_dir("small");
  const Batch b = read_batch(d, 1);
  TrainOptions o = opts(2);
  o.seed = 3;
  Trainer plain((d / "model.onnx").string(), o), soft((d / "model_softmax.onnx").string(), o);
  CHECK(soft.num_classes() == 5);
  CHECK(soft.predict(b.x.data.data(), b.n()) == plain.predict(b.x.data.data(), b.n()));
  CHECK(soft.train_step(b.x.data.data(), b.y.data(), b.n()).loss ==
        plain.train_step(b.x.data.data(), b.y.data(), b.n()).loss);
  CHECK(soft.last_gradients() == plain.last_gradients());
}

TEST_CASE("train: new head on a Gemm with C [1, N] (Kaiming), exported and reloaded") {
  const fs::path d = case_dir("ops");
  TrainOptions o = opts(2);
  o.num_classes = 3;
  o.head_init = TrainOptions::HeadInit::kKaiming;
  Trainer t((d / "model.onnx").string(), o);
  CHECK(t.num_classes() == 3);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : t.trainable()) shapes[p.name] = p.shape;
  CHECK(shapes.at("g2.w") == std::vector<int64_t>{3, 5});
  CHECK(shapes.at("g2.c") == std::vector<int64_t>{1, 3});
  Batch b = read_batch(d, 1);
  for (int32_t& y : b.y) y %= 3;
  t.train_step(b.x.data.data(), b.y.data(), b.n());
  const std::vector<float> logits = t.predict(b.x.data.data(), b.n());
  const fs::path out = fs::temp_directory_path() / "convoy_test_train_ops_head.onnx";
  t.export_onnx(out.string());
  convoy::Session s(convoy::Model::load(out.string()));
  const auto y = s.run({convoy::Tensor(b.x.shape, b.x.data)});
  CHECK(y[0].shape() == std::vector<int64_t>{static_cast<int64_t>(b.n()), 3});
  CHECK(diff(y[0].values(), logits).max_abs <= 1e-5);
  fs::remove(out);
}

TEST_CASE("train: plans per batch size (a smaller last batch) do not disturb each other") {
  const fs::path d = case_dir("demo");
  const Batch b1 = read_batch(d, 1), b2 = read_batch(d, 2);
  const size_t small = 3;
  Trainer a((d / "model.onnx").string(), opts(3)), b((d / "model.onnx").string(), opts(3));
  const std::vector<float> before = a.predict(b2.x.data.data(), small);  // an eval plan for 3 first
  REQUIRE(before.size() == small * 10);
  for (Trainer* t : {&a, &b}) {
    t->train_step(b1.x.data.data(), b1.y.data(), b1.n());
    t->train_step(b2.x.data.data(), b2.y.data(), small);
    t->train_step(b1.x.data.data(), b1.y.data(), b1.n());
  }
  CHECK(a.parameters() == b.parameters());
  CHECK(a.predict(b2.x.data.data(), small) == b.predict(b2.x.data.data(), small));
  CHECK(a.predict(b2.x.data.data(), small) != before);
  // The 3-image plan's logits are rows 0..2 of the 8-image plan's.
  const std::vector<float> full = a.predict(b2.x.data.data(), b2.n());
  const Diff e = diff(std::vector<float>(full.begin(), full.begin() + small * 10), a.predict(b2.x.data.data(), small));
  CHECK(e.max_abs <= 1e-5 * std::max(1.0, e.max_ref));
}

TEST_CASE("train: biases deduplicated by the exporter (VGG-16's Identity nodes) train as their own parameters") {
  // torch.onnx.export stores VGG-16's equal zero biases once: classifier.3.bias is an Identity of
  // another initializer (tests/gen/export_torchvision.py's vgg16).
  const fs::path root = convoy::testing::test_data_dir();
  INFO(convoy::testing::kMissingDataHint);
  REQUIRE(!root.empty());
  const fs::path model = root / "models" / "vgg16_op13.onnx";
  REQUIRE(fs::exists(model));
  Trainer t(model.string(), opts(2));
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : t.trainable()) shapes[p.name] = p.shape;
  CHECK(shapes.count("classifier.3.bias") == 1);
  CHECK(shapes.count("classifier.6.bias") == 1);
  std::vector<float> x(3 * 224 * 224);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.001f * static_cast<float>(i));
  const int32_t label = 7;
  t.train_step(x.data(), &label, 1);
  const auto g = t.last_gradients().at("classifier.3.bias");
  CHECK(std::any_of(g.begin(), g.end(), [](float v) { return v != 0.f; }));
  const std::vector<float> logits = t.predict(x.data(), 1);
  const fs::path out = fs::temp_directory_path() / "convoy_test_train_vgg.onnx";
  t.export_onnx(out.string());
  convoy::Session s(convoy::Model::load(out.string()));
  const auto y = s.run({convoy::Tensor({1, 3, 224, 224}, x)});
  CHECK(diff(y[0].values(), logits).max_abs <= 1e-5 * std::max(1.0, diff(y[0].values(), logits).max_ref));
  fs::remove(out);
}
