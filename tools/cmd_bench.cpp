// convoy bench: latency, throughput, effective GFLOP/s and peak RSS of a model, per-step times
// with --per-op; --train-last times training steps (convoy::train::Trainer) instead of inference;
// --peak measures this machine's FMA peak, streaming read bandwidth and CPU hand-off latency.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>

#include "convoy/train.hpp"
#include "kernels/peak.h"
#include "tools/cli_common.h"
#include "tools/cli_handoff.h"
#include "tools/npy.h"

namespace convoy::cli {
namespace {

constexpr FlagSpec kFlags[] = {{"--batch", true},  {"--threads", true},     {"--warmup", true}, {"--iters", true},
                               {"--json", false},  {"--per-op", false},     {"--size", true},   {"--peak", false},
                               {"--classes", true}, {"--train-last", true}};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Nearest-rank percentile of sorted samples: the smallest sample with at least q of them <= it.
double percentile(const std::vector<double>& sorted, double q) {
  const size_t n = sorted.size();
  const size_t rank = static_cast<size_t>(std::ceil(q * double(n)));
  return sorted[std::min(n - 1, rank == 0 ? 0 : rank - 1)];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

size_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<size_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

std::string json_string(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      r += buf;
    } else {
      r += c;
    }
  }
  return r + "\"";
}

std::string json_shape(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// ---- convoy bench --peak ----

// {"pairs": P, "min": ..., "median": ..., "max": ...} in ns, or null.
std::string handoff_json(const std::optional<HandoffReport>& h) {
  if (!h) return "null";
  char buf[160];
  std::snprintf(buf, sizeof buf, "{\"pairs\": %zu, \"min\": %.1f, \"median\": %.1f, \"max\": %.1f}", h->pairs,
                h->min_ns, h->median_ns, h->max_ns);
  return buf;
}

// Runs body(thread) on `threads` threads released together; returns the wall seconds until the
// last one finishes.
template <class F>
double timed_on_threads(size_t threads, F body) {
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t)
    pool.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(t);
    });
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  body(0);
  for (auto& th : pool) th.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

volatile float g_sink = 0;  // results of the probes land here so no loop is optimised away

// Best of `reps` GFLOP/s with every thread running `iters` FMA rounds.
double fma_gflops(size_t threads, size_t iters, int reps) {
  double best = 0;
  const double flops = double(kernels::fma_peak_flops_per_iteration()) * double(iters) * double(threads);
  for (int r = 0; r < reps; ++r) {
    const double s = timed_on_threads(threads, [&](size_t) { g_sink = g_sink + kernels::fma_peak(iters); });
    best = std::max(best, flops / s * 1e-9);
  }
  return best;
}

// Best of `reps` GB/s, `threads` threads each reading its own contiguous part of the buffer.
double read_gbps(const float* buf, size_t n, size_t threads, int reps) {
  const size_t part = n / threads / 16 * 16;  // stream_read wants multiples of 16 floats
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const double s = timed_on_threads(threads, [&](size_t t) { g_sink = g_sink + kernels::stream_read(buf + t * part, part); });
    best = std::max(best, double(part * threads * sizeof(float)) / s * 1e-9);
  }
  return best;
}

int peak_main(int threads_flag, bool json) {
  const size_t threads = threads_flag > 0 ? size_t(threads_flag) : std::max(1u, std::thread::hardware_concurrency());
  // Calibrate the FMA loop to ~0.2 s per repetition on one core.
  size_t iters = 1 << 20;
  const auto t0 = Clock::now();
  g_sink = g_sink + kernels::fma_peak(iters);
  const double cal = std::max(1e-4, ms_since(t0) * 1e-3);
  iters = std::max<size_t>(1 << 20, size_t(double(iters) * 0.2 / cal));
  const double fma1 = fma_gflops(1, iters, 5);
  const double fma_all = fma_gflops(threads, iters, 5);

  // 256 MiB: far beyond any last-level cache, so the reads come from DRAM.
  const size_t n = (size_t{256} << 20) / sizeof(float);
  std::unique_ptr<float, decltype(&std::free)> buf(static_cast<float*>(std::aligned_alloc(64, n * sizeof(float))), &std::free);
  if (!buf) throw convoy::Error("bench --peak: cannot allocate the 256 MiB read buffer");
  std::fill(buf.get(), buf.get() + n, 1.0f);  // touch every page before timing
  const double bw1 = read_gbps(buf.get(), n, 1, 5);
  const double bw_all = read_gbps(buf.get(), n, threads, 5);
  const std::optional<HandoffReport> handoff = measure_handoff(threads);

  if (json) {
    std::printf("{\"target\": %s, \"threads\": %zu, \"fma_gflops_1thread\": %.2f, \"fma_gflops_all\": %.2f, "
                "\"read_gbps_1thread\": %.2f, \"read_gbps_all\": %.2f, \"handoff_ns\": %s}\n",
                json_string(kernels::peak_target_name()).c_str(), threads, fma1, fma_all, bw1, bw_all,
                handoff_json(handoff).c_str());
  } else {
    std::printf("target            %s\n", kernels::peak_target_name());
    std::printf("FMA peak          %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %zu threads\n", fma1, fma_all, threads);
    std::printf("streaming read    %.1f GB/s on 1 thread, %.1f GB/s on %zu threads\n", bw1, bw_all, threads);
    if (handoff) std::printf("CPU hand-off      %s round trip\n", handoff_summary(*handoff).c_str());
  }
  return 0;
}

// ---- convoy bench MODEL --train-last N ----

struct TrainBenchOptions {
  int threads = 0;
  bool json = false;
  int64_t train_last = 1, classes = 0, batch = 32, warmup = 2, iters = 10;
};

// KiB below one MiB, so that a small head's parameters do not print as 0.00 MiB.
std::string human_bytes(size_t bytes) {
  char buf[32];
  if (bytes < (size_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.1f KiB", double(bytes) / (1 << 10));
  else
    std::snprintf(buf, sizeof buf, "%.2f MiB", double(bytes) / (1 << 20));
  return buf;
}

// Times Trainer::train_step on one seeded random batch (uniform [-1, 1) images, uniform labels),
// the same batch every step: the kernels' cost does not depend on the values.
int train_main(const std::string& path, const TrainBenchOptions& o) {
  convoy::train::TrainOptions topt;
  topt.train_last = int(o.train_last);
  topt.num_classes = int(o.classes);
  topt.threads = o.threads;
  auto t0 = Clock::now();
  convoy::train::Trainer trainer(path, topt);
  const double load_ms = ms_since(t0);

  const size_t batch = size_t(o.batch);
  std::vector<int64_t> shape = trainer.input_shape();  // [C, H, W]
  size_t per_image = 1;
  for (int64_t d : shape) per_image *= size_t(d);
  shape.insert(shape.begin(), o.batch);
  const int classes = trainer.num_classes();
  std::vector<float> images(batch * per_image);
  std::vector<int32_t> labels(batch);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (float& x : images) x = dist(rng);
  std::uniform_int_distribution<int32_t> label_dist(0, classes - 1);
  for (int32_t& y : labels) y = label_dist(rng);

  t0 = Clock::now();
  const convoy::train::MemoryReport mem = trainer.memory(batch);  // builds both plans for this batch
  const double plan_ms = ms_since(t0);
  const std::vector<convoy::train::ParamInfo> params = trainer.trainable();
  size_t param_values = 0;
  for (const auto& p : params) {
    size_t n = 1;
    for (int64_t d : p.shape) n *= size_t(d);
    param_values += n;
  }

  t0 = Clock::now();
  const convoy::train::StepResult first = trainer.train_step(images.data(), labels.data(), batch);
  const double first_ms = ms_since(t0);
  for (int64_t i = 0; i < o.warmup; ++i) trainer.train_step(images.data(), labels.data(), batch);
  std::vector<double> samples;  // ms, in step order
  convoy::train::StepResult last;
  for (int64_t i = 0; i < o.iters; ++i) {
    t0 = Clock::now();
    last = trainer.train_step(images.data(), labels.data(), batch);
    samples.push_back(ms_since(t0));
  }
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  const double med = median(samples);
  const size_t rss = peak_rss_bytes();
  const double images_per_s = double(batch) / (med * 1e-3);
  const int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));

  if (o.json) {
    // The inference report's keys keep their meaning (compare_ort.py-style tools read them);
    // arena_bytes is the frozen prefix's arena plus the training arena.
    std::printf("{\n  \"model\": %s,\n  \"mode\": \"train\",\n  \"inputs\": [{\"shape\": %s}],\n", json_string(path).c_str(),
                json_shape(shape).c_str());
    std::printf("  \"batch\": %lld,\n  \"threads\": %d,\n  \"warmup\": %lld,\n  \"iters\": %lld,\n",
                static_cast<long long>(o.batch), threads, static_cast<long long>(o.warmup), static_cast<long long>(o.iters));
    std::printf("  \"train_last\": %lld,\n  \"classes\": %d,\n  \"trainable\": [", static_cast<long long>(o.train_last),
                classes);
    for (size_t i = 0; i < params.size(); ++i)
      std::printf("%s{\"name\": %s, \"node\": %s, \"shape\": %s}", i ? ", " : "", json_string(params[i].name).c_str(),
                  json_string(params[i].node).c_str(), json_shape(params[i].shape).c_str());
    std::printf("],\n  \"trainable_values\": %zu,\n", param_values);
    std::printf("  \"load_ms\": %.3f,\n  \"plan_ms\": %.3f,\n  \"first_run_ms\": %.3f,\n", load_ms, plan_ms, first_ms);
    std::printf("  \"latency_ms\": {\"min\": %.4f, \"median\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"max\": %.4f},\n",
                sorted.front(), med, percentile(sorted, 0.9), percentile(sorted, 0.99), sorted.back());
    std::printf("  \"samples_ms\": [");
    for (size_t i = 0; i < samples.size(); ++i) std::printf("%s%.4f", i ? ", " : "", samples[i]);
    std::printf("],\n  \"throughput_images_per_s\": %.3f,\n", images_per_s);
    std::printf("  \"loss_first\": %.6g,\n  \"loss_last\": %.6g,\n  \"correct_last\": %zu,\n", first.loss, last.loss,
                last.correct);
    std::printf("  \"memory\": {\"frozen_arena_bytes\": %zu, \"train_arena_bytes\": %zu, \"train_live_bound_bytes\": %zu, "
                "\"param_bytes\": %zu, \"grad_bytes\": %zu, \"optimizer_bytes\": %zu, \"weight_bytes\": %zu},\n",
                mem.frozen_arena_bytes, mem.train_arena_bytes, mem.train_live_bound_bytes, mem.param_bytes, mem.grad_bytes,
                mem.optimizer_bytes, mem.weight_bytes);
    std::printf("  \"peak_rss_bytes\": %zu,\n  \"arena_bytes\": %zu,\n  \"weight_bytes\": %zu\n}\n", rss,
                mem.frozen_arena_bytes + mem.train_arena_bytes, mem.weight_bytes);
    return 0;
  }

  std::printf("model        %s\n", path.c_str());
  std::printf("training     last %lld layer%s: %zu parameter tensors, %zu values; %d classes\n",
              static_cast<long long>(o.train_last), o.train_last == 1 ? "" : "s", params.size(), param_values, classes);
  for (const auto& p : params)
    std::printf("  trainable  %s %s (node %s)\n", p.name.c_str(), shape_string(p.shape).c_str(), p.node.c_str());
  std::printf("input        %s (seeded random images and labels)\n", shape_string(shape).c_str());
  std::printf("threads      %d\n", threads);
  std::printf("load         %.2f ms\n", load_ms);
  std::printf("plan         %.2f ms\n", plan_ms);
  std::printf("first step   %.2f ms\n", first_ms);
  std::printf("step         min %.3f  median %.3f  p90 %.3f  p99 %.3f  max %.3f ms (%lld steps after %lld warm-up)\n",
              sorted.front(), med, percentile(sorted, 0.9), percentile(sorted, 0.99), sorted.back(),
              static_cast<long long>(o.iters), static_cast<long long>(o.warmup));
  std::printf("throughput   %.2f images/s\n", images_per_s);
  std::printf("loss         %.4f at the first step, %.4f at the last\n", first.loss, last.loss);
  std::printf("memory       frozen arena %s, train arena %s (live bound %s)\n", human_bytes(mem.frozen_arena_bytes).c_str(),
              human_bytes(mem.train_arena_bytes).c_str(), human_bytes(mem.train_live_bound_bytes).c_str());
  std::printf("             trainable %s, gradients %s, momentum %s, all weights %s\n",
              human_bytes(mem.param_bytes).c_str(), human_bytes(mem.grad_bytes).c_str(),
              human_bytes(mem.optimizer_bytes).c_str(), human_bytes(mem.weight_bytes).c_str());
  std::printf("peak RSS     %.1f MiB\n", double(rss) / (1 << 20));
  return 0;
}

// ---- convoy bench MODEL ----

struct OpTime {
  size_t step;
  double seconds;
};

int bench_main(const std::vector<std::string>& argv) {
  const ParsedArgs a = parse_args(argv, kFlags);
  int threads = 0;
  if (auto v = a.get("--threads")) threads = int(parse_int_flag("--threads", *v, 0, 4096));
  const bool json = a.has("--json");
  if (a.has("--peak")) {
    if (!a.positional.empty()) throw UsageError("--peak takes no MODEL");
    for (const char* f : {"--batch", "--warmup", "--iters", "--per-op", "--size", "--train-last", "--classes"})
      if (a.has(f)) throw UsageError(std::string(f) + " does not apply to --peak");
    return peak_main(threads, json);
  }
  if (a.positional.empty()) throw UsageError("missing MODEL");
  if (a.positional.size() > 1) throw UsageError("unexpected argument '" + a.positional[1] + "'");
  if (a.has("--train-last")) {
    for (const char* f : {"--per-op", "--size"})
      if (a.has(f)) throw UsageError(std::string(f) + " does not apply to --train-last");
    TrainBenchOptions o;
    o.threads = threads;
    o.json = json;
    o.train_last = parse_int_flag("--train-last", *a.get("--train-last"), 1, 1 << 20);
    if (auto v = a.get("--classes")) o.classes = parse_int_flag("--classes", *v, 2, 1 << 24);
    if (auto v = a.get("--batch")) o.batch = parse_int_flag("--batch", *v, 1, 1 << 20);
    if (auto v = a.get("--warmup")) o.warmup = parse_int_flag("--warmup", *v, 0, 1 << 20);
    if (auto v = a.get("--iters")) o.iters = parse_int_flag("--iters", *v, 1, 1 << 20);
    return train_main(a.positional[0], o);
  }
  if (a.has("--classes")) throw UsageError("--classes applies only with --train-last");
  int64_t batch = 1, warmup = 3, iters = 20;
  if (auto v = a.get("--batch")) batch = parse_int_flag("--batch", *v, 1, 1 << 20);
  if (auto v = a.get("--warmup")) warmup = parse_int_flag("--warmup", *v, 0, 1 << 20);
  if (auto v = a.get("--iters")) iters = parse_int_flag("--iters", *v, 1, 1 << 20);
  const std::optional<HxW> size = parse_size_flag(a);
  const bool per_op = a.has("--per-op");

  auto t0 = Clock::now();
  auto model = convoy::Model::load(a.positional[0]);
  const double load_ms = ms_since(t0);
  const std::string name = model_name(*model);

  // Seeded uniform [-1, 1) inputs: timings do not depend on values for these kernels.
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<float>> inputs;
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (const auto& in : model->inputs()) {
    if (in.dtype != "float32")
      throw convoy::Error(name + ": input '" + in.name + "' has dtype " + in.dtype + "; convoy bench feeds float32");
    shapes.push_back(concrete_input_shape(*model, in, batch, size));
    size_t n = 1;
    for (int64_t d : shapes.back()) n *= size_t(d);
    inputs.emplace_back(n);
    for (float& x : inputs.back()) x = dist(rng);
  }

  convoy::Session session(model, {.threads = threads});
  t0 = Clock::now();
  const auto out_shapes = session.output_shapes(shapes);  // builds the plan (and packs weights)
  const double plan_ms = ms_since(t0);
  const convoy::PlanInfo plan = session.plan_info(shapes);  // the cached plan: no cost

  std::vector<std::span<const float>> in_spans(inputs.begin(), inputs.end());
  std::vector<std::vector<float>> outputs;
  for (const auto& s : out_shapes) {
    size_t n = 1;
    for (int64_t d : s) n *= size_t(d);
    outputs.emplace_back(n);
  }
  std::vector<std::span<float>> out_spans(outputs.begin(), outputs.end());

  t0 = Clock::now();
  session.run(in_spans, shapes, out_spans);
  const double first_ms = ms_since(t0);
  for (int64_t i = 0; i < warmup; ++i) session.run(in_spans, shapes, out_spans);
  // Several threads: the CPU hand-off latency right before and after the timed runs (the
  // placement of a VM's vCPUs can change in between; see tools/cli_handoff.h).
  const size_t pool_threads = size_t(std::max(1, session.threads()));
  const std::optional<HandoffReport> handoff_before = measure_handoff(pool_threads);
  std::vector<double> samples;  // ms, in run order
  for (int64_t i = 0; i < iters; ++i) {
    t0 = Clock::now();
    session.run(in_spans, shapes, out_spans);
    samples.push_back(ms_since(t0));
  }
  const std::optional<HandoffReport> handoff_after = measure_handoff(pool_threads);
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  const double med = median(samples);

  // --per-op: separate timed runs (the per-step clock reads stay out of the latency figures);
  // each step's time is its median over the runs.
  std::vector<OpTime> ops;
  double ops_total = 0;
  if (per_op) {
    std::vector<convoy::Tensor> tin;
    for (size_t i = 0; i < inputs.size(); ++i) tin.emplace_back(shapes[i], inputs[i]);
    std::vector<std::vector<double>> per_step(plan.steps.size());
    std::vector<double> secs;
    for (int64_t i = 0; i < iters; ++i) {
      session.run_profiled(tin, &secs);
      for (size_t k = 0; k < secs.size() && k < per_step.size(); ++k) per_step[k].push_back(secs[k]);
    }
    for (size_t k = 0; k < per_step.size(); ++k) {
      ops.push_back({k, median(per_step[k])});
      ops_total += ops.back().seconds;
    }
    std::stable_sort(ops.begin(), ops.end(), [](const OpTime& x, const OpTime& y) { return x.seconds > y.seconds; });
  }
  const size_t rss = peak_rss_bytes();
  const double images_per_s = double(batch) / (med * 1e-3);
  const double gflops_per_s = plan.flops / (med * 1e-3) * 1e-9;
  const auto share = [&](const OpTime& o) { return ops_total > 0 ? o.seconds / ops_total : 0.0; };
  const auto op_gflops = [&](const OpTime& o) { return o.seconds > 0 ? plan.steps[o.step].flops / o.seconds * 1e-9 : 0.0; };
  // Bytes of every operand and the output touched once (float32): for an FC layer at batch 1,
  // its weights, so the figure is the bandwidth its weight stream reached.
  const auto op_gbps = [&](const OpTime& o) {
    const auto& st = plan.steps[o.step];
    const auto numel = [](const std::vector<int64_t>& shape) {
      double n = 1;
      for (int64_t d : shape) n *= double(std::max<int64_t>(d, 0));
      return n;
    };
    double elems = numel(st.output_shape);
    for (const auto& shape : st.input_shapes) elems += numel(shape);
    return o.seconds > 0 ? elems * sizeof(float) / o.seconds * 1e-9 : 0.0;
  };

  if (json) {
    std::printf("{\n  \"model\": %s,\n  \"inputs\": [", json_string(model->path()).c_str());
    for (size_t i = 0; i < shapes.size(); ++i)
      std::printf("%s{\"name\": %s, \"shape\": %s}", i ? ", " : "", json_string(model->inputs()[i].name).c_str(),
                  json_shape(shapes[i]).c_str());
    std::printf("],\n  \"batch\": %lld,\n  \"threads\": %d,\n  \"warmup\": %lld,\n  \"iters\": %lld,\n",
                static_cast<long long>(batch), session.threads(), static_cast<long long>(warmup),
                static_cast<long long>(iters));
    std::printf("  \"load_ms\": %.3f,\n  \"plan_ms\": %.3f,\n  \"first_run_ms\": %.3f,\n", load_ms, plan_ms, first_ms);
    std::printf("  \"latency_ms\": {\"min\": %.4f, \"median\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"max\": %.4f},\n",
                sorted.front(), med, percentile(sorted, 0.9), percentile(sorted, 0.99), sorted.back());
    std::printf("  \"samples_ms\": [");
    for (size_t i = 0; i < samples.size(); ++i) std::printf("%s%.4f", i ? ", " : "", samples[i]);
    std::printf("],\n  \"throughput_images_per_s\": %.3f,\n  \"gflops_per_run\": %.6f,\n  \"gflop_per_s\": %.3f,\n",
                images_per_s, plan.flops * 1e-9, gflops_per_s);
    std::printf("  \"peak_rss_bytes\": %zu,\n  \"arena_bytes\": %zu,\n  \"weight_bytes\": %zu,\n"
                "  \"held_weight_bytes\": %zu,\n  \"steps\": %zu",
                rss, plan.arena_bytes, plan.weight_bytes, plan.held_weight_bytes, plan.steps.size());
    std::printf(",\n  \"handoff_ns\": {\"before\": %s, \"after\": %s}", handoff_json(handoff_before).c_str(),
                handoff_json(handoff_after).c_str());
    if (per_op) {
      std::printf(",\n  \"per_op\": [");
      for (size_t i = 0; i < ops.size(); ++i) {
        const auto& s = plan.steps[ops[i].step];
        std::printf("%s\n    {\"step\": %zu, \"op\": %s, \"fused\": %s, \"node\": %s, \"ms\": %.6g, \"share\": %.5f, "
                    "\"gflop_per_s\": %.6g, \"gb_per_s\": %.6g}",
                    i ? "," : "", ops[i].step, json_string(s.op).c_str(), json_string(s.fused).c_str(),
                    json_string(s.node).c_str(), ops[i].seconds * 1e3, share(ops[i]), op_gflops(ops[i]), op_gbps(ops[i]));
      }
      std::printf("\n  ]");
    }
    std::printf("\n}\n");
    return 0;
  }

  std::printf("model        %s\n", model->path().c_str());
  for (size_t i = 0; i < shapes.size(); ++i)
    std::printf("input        %s %s\n", model->inputs()[i].name.c_str(), shape_string(shapes[i]).c_str());
  std::printf("threads      %d\n", session.threads());
  std::printf("load         %.2f ms\n", load_ms);
  std::printf("plan         %.2f ms\n", plan_ms);
  std::printf("first run    %.2f ms\n", first_ms);
  std::printf("latency      min %.3f  median %.3f  p90 %.3f  p99 %.3f  max %.3f ms (%lld runs after %lld warm-up)\n",
              sorted.front(), med, percentile(sorted, 0.9), percentile(sorted, 0.99), sorted.back(),
              static_cast<long long>(iters), static_cast<long long>(warmup));
  if (handoff_before && handoff_after)
    std::printf("hand-off     %s round trip between CPUs before the timed runs, %s after\n",
                handoff_summary(*handoff_before).c_str(), handoff_summary(*handoff_after).c_str());
  std::printf("throughput   %.2f images/s\n", images_per_s);
  std::printf("compute      %.4f GFLOPs per run, %.2f GFLOP/s effective (direct-conv FLOPs at the median)\n",
              plan.flops * 1e-9, gflops_per_s);
  std::printf("peak RSS     %.1f MiB (arena %.1f MiB, weights %.1f MiB, held as %.1f MiB raw + packed)\n",
              double(rss) / (1 << 20), double(plan.arena_bytes) / (1 << 20), double(plan.weight_bytes) / (1 << 20),
              double(plan.held_weight_bytes) / (1 << 20));
  if (per_op) {
    int w_op = 2, w_fused = 5, w_node = 4;
    for (const auto& s : plan.steps) {
      w_op = std::max(w_op, int(s.op.size()));
      w_fused = std::max(w_fused, int(s.fused.size()));
      w_node = std::max(w_node, int(s.node.size()));
    }
    std::printf("\nper step (median of %lld timed runs, slowest first; sum %.3f ms)\n", static_cast<long long>(iters),
                ops_total * 1e3);
    std::printf("  %4s  %-*s  %-*s  %-*s  %9s  %6s  %9s  %7s\n", "step", w_op, "op", w_fused, "fused", w_node, "node", "ms",
                "share", "GFLOP/s", "GB/s");
    for (const auto& o : ops) {
      const auto& s = plan.steps[o.step];
      std::printf("  %4zu  %-*s  %-*s  %-*s  %9.4f  %5.1f%%  %9.2f  %7.2f\n", o.step, w_op, s.op.c_str(), w_fused,
                  s.fused.empty() ? "-" : s.fused.c_str(), w_node, s.node.c_str(), o.seconds * 1e3, 100 * share(o),
                  op_gflops(o), op_gbps(o));
    }
  }
  return 0;
}

}  // namespace

const Command kBenchCommand = {
    "bench",
    "time a model's inference or training steps, or measure machine peaks",
    "convoy bench MODEL [--batch B] [--threads N] [--warmup W] [--iters K] [--size HxW] [--per-op] [--json]\n"
    "       convoy bench MODEL --train-last N [--classes K] [--batch B] [--threads N] [--warmup W] [--iters K] [--json]\n"
    "       convoy bench --peak [--threads N] [--json]",
    "Loads MODEL, plans it for one input shape and runs it on seeded random inputs: 1 first run,\n"
    "W warm-up runs, then K timed runs. Reports load, plan (includes weight packing) and first-run\n"
    "times, latency min/median/p90/p99/max (nearest rank), throughput (batch / median), effective\n"
    "GFLOP/s (the plan's direct-convolution FLOPs / median) and the process's peak RSS.\n"
    "\n"
    "  --batch B    batch size for a dynamic batch dimension (default 1)\n"
    "  --threads N  worker threads (default 0: all hardware threads)\n"
    "  --warmup W   untimed runs before the timed ones (default 3)\n"
    "  --iters K    timed runs (default 20)\n"
    "  --size HxW   spatial size for dynamic H, W (default: convoy.input_size metadata)\n"
    "  --per-op     also K more runs timing every plan step: op, fused ops, node, median ms,\n"
    "               share of the step total, GFLOP/s and GB/s (every operand and the output\n"
    "               read or written once: an FC layer's weight stream), slowest first\n"
    "  --json       one JSON object on stdout instead of text (includes every latency sample)\n"
    "  --peak       no model: single-thread and N-thread FMA peak GFLOP/s and streaming read\n"
    "               bandwidth (GB/s, from a 256 MiB buffer), best of 5, and the CPU hand-off\n"
    "               round trip (below)\n"
    "\n"
    "With several threads bench also reports the CPU hand-off round trip, right before and after\n"
    "the timed runs: a cache line passed between threads pinned to the first CPU this process may\n"
    "use and each of the next N-1 (best of 3 trials per pair). ~50 ns means the CPUs share a\n"
    "last-level cache, 300 ns and more that they do not (another CCD or socket); a VM's vCPUs can\n"
    "move between the two while it runs, and multi-threaded timings move with them.\n"
    "\n"
    "Training (--train-last N): times SGD training steps (convoy::train::Trainer; lr 0.01, momentum\n"
    "0.9, weight decay 5e-4, mean softmax cross-entropy) of the last N layers with weights on one\n"
    "seeded random batch of the model's input size with seeded random labels: load, plan (the\n"
    "frozen prefix's inference plan and the trainable suffix's training plan), first step, then\n"
    "step latency min/median/p90/p99/max, throughput (batch / median), the loss of the first and\n"
    "last steps, the memory report (frozen arena, training arena and its liveness bound, trainable\n"
    "parameters, gradients, momentum, all weights) and the process's peak RSS.\n"
    "\n"
    "  --train-last N  train the last N Conv/Gemm/MatMul layers; the rest is frozen\n"
    "  --classes K     replace the head by a fresh one with K >= 2 outputs when the model has another\n"
    "                  class count (default: keep the model's head)\n"
    "  --batch B       images per step (default 32 when training)\n"
    "  --warmup W      untimed steps after the first (default 2 when training)\n"
    "  --iters K       timed steps (default 10 when training)\n",
    bench_main,
};

}  // namespace convoy::cli
