// Many sessions of one Model running concurrently (run under TSan by .ci/sanitize.sh):
// 8 threads x 4 sessions each, different inputs and batch sizes; every output must equal the
// single-threaded result bit for bit (kernels split work over output tiles, never over a
// reduction), which itself matches naive loops. Packed weights are held once per Model, and
// misuse (two runs on one session at once) is detected.
#include <doctest/doctest.h>

#include "kernels/conv2d.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "convoy/convoy.hpp"
#include "embed_test_model.h"

using convoy::testing::SmallCnn;

// clang spells "built with a sanitizer" __has_feature, gcc __SANITIZE_*__.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CONVOY_HAS_SANITIZER 1
#endif
#endif
#ifndef CONVOY_HAS_SANITIZER
#define CONVOY_HAS_SANITIZER 0
#endif

namespace {

// Resident set size of this process in KiB (/proc/self/status VmRSS).
long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

std::shared_ptr<convoy::Model> load(const SmallCnn& cnn, const char* name) {
  const std::string bytes = cnn.onnx_bytes();
  return convoy::Model::from_bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                                   name);
}

struct Case {
  convoy::Tensor x;
  std::vector<float> expect;  // single-threaded convoy output
};

}  // namespace

TEST_CASE("concurrency: 8 threads x 4 sessions on one model equal the single-threaded reference") {
  SmallCnn cnn(11);
  auto model = load(cnn, "small.onnx");

  // Inputs of batch 1, 2 and 3; the single-threaded reference, checked against naive loops.
  std::vector<Case> cases;
  {
    convoy::Session ref(model, {.threads = 1});
    for (int k = 0; k < 9; ++k) {
      const int64_t n = 1 + k % 3;
      std::vector<float> x = convoy::testing::small_cnn_input(n, 100 + static_cast<uint32_t>(k));
      convoy::Tensor t({n, 3, 12, 12}, x);
      std::vector<float> y = ref.run({t}).at(0).values();
      const std::vector<double> naive = cnn.reference(x, n);
      REQUIRE(y.size() == naive.size());
      for (size_t i = 0; i < y.size(); ++i) REQUIRE(std::abs(y[i] - naive[i]) <= 1e-4 * (1 + std::abs(naive[i])));
      cases.push_back({std::move(t), std::move(y)});
    }
  }

  constexpr int kThreads = 8, kSessionsPerThread = 4, kRunsPerThread = 200;
  std::vector<std::vector<std::unique_ptr<convoy::Session>>> sessions(kThreads);
  for (int t = 0; t < kThreads; ++t)
    for (int s = 0; s < kSessionsPerThread; ++s)  // a mix of serial and pooled sessions
      sessions[size_t(t)].push_back(std::make_unique<convoy::Session>(model, convoy::SessionOptions{.threads = 1 + s % 2}));

  std::atomic<int> mismatches{0}, errors{0}, runs{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRunsPerThread; ++r) {
        const Case& c = cases[size_t(t * 7 + r) % cases.size()];
        convoy::Session& s = *sessions[size_t(t)][size_t(r % kSessionsPerThread)];
        try {
          const std::vector<convoy::Tensor> y = s.run({c.x});
          if (y.size() != 1 || y[0].values() != c.expect) ++mismatches;
        } catch (const std::exception&) {
          ++errors;
        }
        ++runs;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(runs.load() == kThreads * kRunsPerThread);
  CHECK(errors.load() == 0);
  CHECK(mismatches.load() == 0);
}

TEST_CASE("concurrency: packed weights are held once per model (memory report)") {
  // Wide enough that the packed weights (~1.2 MB) show in the RSS.
  SmallCnn cnn(5, 128, 256);
  auto model = load(cnn, "wide.onnx");
  const std::vector<float> x = convoy::testing::small_cnn_input(1, 1);
  const convoy::Tensor t({1, 3, 12, 12}, x);
  const std::vector<double> naive = cnn.reference(x, 1);
  double max_ref = 0;
  for (double v : naive) max_ref = std::max(max_ref, std::abs(v));

  const long rss_model = rss_kib();
  convoy::Session first(model, {.threads = 1});
  const std::vector<float> y = first.run({t}).at(0).values();
  for (size_t i = 0; i < y.size(); ++i) CHECK(std::abs(y[i] - naive[i]) <= 1e-5 * (1 + max_ref));
  const size_t packed_one = model->packed_weight_bytes();
  // Conv weights are used in place when their packed layout is the ONNX one
  // (kernels::conv2d_packing_is_identity): then no packed copy exists at all.
  if (convoy::kernels::conv2d_packing_is_identity(convoy::kernels::Conv2dParams{}))
    CHECK(packed_one < cnn.w2.size() * sizeof(float));
  else
    CHECK(packed_one >= cnn.w2.size() * sizeof(float));  // conv2's weights at least
  const long rss_one = rss_kib();

  constexpr int kSessions = 32;
  std::vector<std::unique_ptr<convoy::Session>> more;
  for (int s = 0; s < kSessions - 1; ++s) {
    more.push_back(std::make_unique<convoy::Session>(model, convoy::SessionOptions{.threads = 1}));
    CHECK(more.back()->run({t}).at(0).values() == y);
  }
  const long rss_all = rss_kib();
  // Held once: 32 sessions hold the same packed bytes as one.
  CHECK(model->packed_weight_bytes() == packed_one);
  // Each session reports what it uses; the packed part is the shared copy.
  CHECK(first.memory_bytes() >= packed_one);
  MESSAGE("weights " << model->weight_bytes() / 1024 << " KiB, packed (shared) " << packed_one / 1024
                     << " KiB, session arena+packed " << first.memory_bytes() / 1024 << " KiB; RSS after load "
                     << rss_model << " KiB, +1 session " << (rss_one - rss_model) << " KiB, +" << kSessions - 1
                     << " more sessions " << (rss_all - rss_one) << " KiB (unshared packing would add ~"
                     << (kSessions - 1) * static_cast<long>(packed_one / 1024) << " KiB)");
  // Each further session adds its own arena, but at most a fraction of a packed copy (its
  // packing is dropped for the shared one); unshared, each would add a whole copy.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && !CONVOY_HAS_SANITIZER
  const long arena_kib = static_cast<long>((first.memory_bytes() - packed_one) / 1024);
  // (Sanitizer allocators keep freed memory in quarantine: RSS says nothing there.)
  CHECK(rss_all - rss_one < (kSessions - 1) * (arena_kib + static_cast<long>(packed_one / 1024) / 2));
#endif

  // Packed weights die with the last plan holding them.
  more.clear();
  CHECK(model->packed_weight_bytes() == packed_one);
}

TEST_CASE("concurrency: a second run on a busy session is refused, the first is unaffected") {
  SmallCnn cnn(3);
  auto model = load(cnn, "small.onnx");
  convoy::Session session(model, {.threads = 1});
  const int64_t n = 64;  // a few ms per run, so that runs overlap
  std::vector<float> x = convoy::testing::small_cnn_input(n, 9);
  const convoy::Tensor t({n, 3, 12, 12}, x);
  std::vector<float> expect;
  {
    convoy::Session ref(model, {.threads = 1});
    expect = ref.run({t}).at(0).values();
  }
  std::atomic<bool> stop{false};
  std::atomic<int> busy{0}, ok{0}, wrong{0}, other{0};
  auto worker = [&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
      try {
        if (session.run({t}).at(0).values() == expect) ++ok;
        else ++wrong;
      } catch (const convoy::Error& e) {
        if (std::string(e.what()).find("another run on the same session") != std::string::npos) {
          ++busy;
          stop.store(true);
        } else {
          ++other;
        }
      }
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  CHECK(busy.load() >= 1);
  CHECK(wrong.load() == 0);
  CHECK(other.load() == 0);
  // The session is usable afterwards.
  CHECK(session.run({t}).at(0).values() == expect);
}
