// convoy run: classify images (or run an .npy tensor) and print the top-K classes.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "tools/cli_common.h"
#include "tools/image_input.h"
#include "tools/npy.h"

namespace convoy::cli {
namespace {

constexpr FlagSpec kFlags[] = {
    {"--input", true}, {"--output", true}, {"--top", true},   {"--labels", true}, {"--threads", true},
    {"--mean", true},  {"--std", true},    {"--scale", true}, {"--bgr", false},   {"--size", true},
    {"--max-memory", true},
};

struct RunArgs {
  std::string model;
  std::vector<std::string> images;
  std::optional<std::string> input, output, labels;
  int64_t top = 5;
  int threads = 0;
  size_t max_memory = 0;  // MiB; 0: no cap
  std::optional<HxW> size;
  PreprocessFlags pre;
};

RunArgs parse_run_args(const std::vector<std::string>& argv) {
  const ParsedArgs a = parse_args(argv, kFlags);
  RunArgs r;
  if (a.positional.empty()) throw UsageError("missing MODEL");
  r.model = a.positional[0];
  r.images.assign(a.positional.begin() + 1, a.positional.end());
  r.input = a.get("--input");
  r.output = a.get("--output");
  r.labels = a.get("--labels");
  if (r.input && !r.images.empty()) throw UsageError("give IMAGE files or --input, not both");
  if (!r.input && r.images.empty()) throw UsageError("nothing to run: give IMAGE files or --input FILE.npy");
  if (auto v = a.get("--top")) r.top = parse_int_flag("--top", *v, 1, 1 << 30);
  if (auto v = a.get("--threads")) r.threads = int(parse_int_flag("--threads", *v, 0, 4096));
  if (auto v = a.get("--max-memory")) r.max_memory = size_t(parse_int_flag("--max-memory", *v, 1, int64_t{1} << 30));
  r.size = parse_size_flag(a);
  r.pre = parse_preprocess_flags(a);
  if (r.input && (r.size || r.pre.mean || r.pre.std || r.pre.scale || r.pre.bgr))
    throw UsageError("--size, --mean, --std, --scale and --bgr apply to images, not to --input");
  return r;
}

// Whether `have` fits the model's declared shape (-1 matches any size).
bool shape_fits(const std::vector<int64_t>& declared, const std::vector<int64_t>& have) {
  if (declared.size() != have.size()) return false;
  for (size_t i = 0; i < have.size(); ++i)
    if (declared[i] >= 0 && declared[i] != have[i]) return false;
  return true;
}

convoy::Tensor tensor_from_npy(const convoy::Model& model, const convoy::TensorInfo& in, const std::string& path) {
  NpyArray a;
  try {
    a = read_npy(path);
  } catch (const NpyError& e) {
    throw convoy::Error(model_name(model) + ": input '" + in.name + "': " + e.what());
  }
  if (!shape_fits(in.shape, a.shape))
    throw convoy::Error(model_name(model) + ": input '" + in.name + "' expects shape " + shape_string(in.shape) + " (" +
                        in.dtype + "), " + path + " has " + shape_string(a.shape));
  return convoy::Tensor(std::move(a.shape), std::move(a.data));
}

convoy::Tensor tensor_from_images(const convoy::Model& model, const convoy::TensorInfo& in, const RunArgs& r) {
  const int64_t n = int64_t(r.images.size());
  std::vector<int64_t> shape = concrete_input_shape(model, in, n, r.size);
  // A fixed batch of 1 runs image by image (run_rows); any other fixed batch must match exactly.
  if (shape[0] != n && shape[0] != 1)
    throw convoy::Error(model_name(model) + ": input '" + in.name + "' " + shape_string(in.shape) + " has a fixed batch of " +
                        std::to_string(shape[0]) + ", got " + std::to_string(n) + " images");
  shape[0] = n;
  const Preprocess p = make_preprocess(model, shape, r.pre);
  convoy::Tensor t(shape);
  const size_t per_image = t.size() / size_t(n);
  for (int64_t i = 0; i < n; ++i) load_image(r.images[size_t(i)], p, t.data() + size_t(i) * per_image);
  return t;
}

// Runs `x`; when the model fixes the batch at 1 and x holds more rows, one row at a time, the first
// outputs concatenated along dim 0.
convoy::Tensor run_first_output(convoy::Session& session, const convoy::TensorInfo& in, const convoy::Tensor& x) {
  const auto& shape = x.shape();
  if (in.shape.empty() || in.shape[0] != 1 || shape.empty() || shape[0] <= 1) return std::move(session.run({x}).at(0));
  std::vector<int64_t> row_shape = shape;
  row_shape[0] = 1;
  const size_t row_size = x.size() / size_t(shape[0]);
  std::vector<float> all;
  std::vector<int64_t> out_shape;
  for (int64_t i = 0; i < shape[0]; ++i) {
    const float* src = x.data() + size_t(i) * row_size;
    convoy::Tensor row(row_shape, std::vector<float>(src, src + row_size));
    convoy::Tensor y = std::move(session.run({row}).at(0));
    if (out_shape.empty()) out_shape = y.shape();
    all.insert(all.end(), y.values().begin(), y.values().end());
  }
  if (!out_shape.empty()) out_shape[0] = shape[0];
  return convoy::Tensor(std::move(out_shape), std::move(all));
}

void print_top(const convoy::Tensor& y, const std::vector<std::string>& row_names, const std::vector<std::string>& labels,
               int64_t top) {
  const auto& s = y.shape();
  const size_t rows = s.size() >= 2 ? size_t(s[0]) : 1;
  const size_t classes = rows ? y.size() / rows : 0;
  const size_t k = std::min(size_t(top), classes);
  std::vector<size_t> order(classes);
  for (size_t r = 0; r < rows; ++r) {
    const float* v = y.data() + r * classes;
    std::iota(order.begin(), order.end(), size_t(0));
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(),
                      [v](size_t a, size_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
    std::printf("%s\n", r < row_names.size() ? row_names[r].c_str() : ("row " + std::to_string(r)).c_str());
    for (size_t i = 0; i < k; ++i) {
      const size_t c = order[i];
      const std::string label = c < labels.size() ? labels[c] : "class_" + std::to_string(c);
      std::printf("  %zu  %s (%zu)  %.6g\n", i + 1, label.c_str(), c, double(v[c]));
    }
  }
}

int run_main(const std::vector<std::string>& argv) {
  const RunArgs r = parse_run_args(argv);
  auto model = convoy::Model::load(r.model);
  const std::string name = model_name(*model);
  if (model->inputs().size() != 1)
    throw convoy::Error(name + ": the model has " + std::to_string(model->inputs().size()) +
                        " inputs; convoy run feeds single-input models");
  if (model->outputs().empty()) throw convoy::Error(name + ": the model has no outputs");
  const convoy::TensorInfo& in = model->inputs()[0];
  if (in.dtype != "float32")
    throw convoy::Error(name + ": input '" + in.name + "' has dtype " + in.dtype + "; convoy run feeds float32");

  std::vector<std::string> labels;
  if (r.labels) {
    labels = read_labels_file(*r.labels);
  } else if (auto it = model->metadata().find("convoy.labels"); it != model->metadata().end()) {
    labels = split_labels(it->second);
  }

  const convoy::Tensor x = r.input ? tensor_from_npy(*model, in, *r.input) : tensor_from_images(*model, in, r);
  convoy::SessionOptions options;
  options.threads = r.threads;
  options.max_memory = r.max_memory << 20;
  convoy::Session session(model, options);
  const convoy::Tensor y = run_first_output(session, in, x);

  const size_t rows = y.shape().size() >= 2 ? size_t(y.shape()[0]) : 1;
  const size_t classes = rows ? y.size() / rows : 0;
  if (!labels.empty() && labels.size() != classes)
    throw convoy::Error((r.labels ? *r.labels : name + ": metadata convoy.labels") + ": " + std::to_string(labels.size()) +
                        " labels, but output '" + model->outputs()[0].name + "' has " + std::to_string(classes) +
                        " classes per row");

  // Written before printing so that a failed write leaves no half-reported run behind.
  if (r.output) write_npy_atomic(*r.output, y.shape(), y.data());

  std::vector<std::string> row_names = r.images;
  if (r.input)
    for (size_t i = 0; i < rows; ++i) row_names.push_back(*r.input + " row " + std::to_string(i));
  print_top(y, row_names, labels, r.top);
  return 0;
}

}  // namespace

const Command kRunCommand = {
    "run",
    "run a model on images or an .npy tensor and print the top-K classes",
    "convoy run MODEL [IMAGE...] [--input in.npy] [--output out.npy] [--top K] [--labels FILE]\n"
    "                 [--threads N] [--max-memory MB] [--mean a,b,c] [--std a,b,c] [--scale S] [--bgr] [--size HxW]",
    "Images are decoded and preprocessed as the model's convoy.* metadata says (ImageNet\n"
    "defaults otherwise; the flags below override it) and batched into one input. Prints, for\n"
    "each image (or row of --input), the top-K classes as \"rank label (index) score\".\n"
    "\n"
    "  --input FILE     feed a float32 .npy (C order) instead of images\n"
    "  --output FILE    write the whole first output as a float32 .npy (atomically)\n"
    "  --top K          classes to print per row (default 5)\n"
    "  --labels FILE    class names, one per line (default: convoy.labels metadata)\n"
    "  --threads N      worker threads (default 0: all hardware threads)\n"
    "  --max-memory MB  refuse to run when weights + arena would exceed MB MiB\n"
    "  --mean a,b,c     per-channel mean after scaling (default convoy.mean, else ImageNet)\n"
    "  --std a,b,c      per-channel std (default convoy.std, else ImageNet)\n"
    "  --scale S        pixel divisor applied first (default convoy.scale, else 255)\n"
    "  --bgr            feed channels in B,G,R order\n"
    "  --size HxW       input size when the model leaves it dynamic (default convoy.input_size)\n",
    run_main,
};

}  // namespace convoy::cli
