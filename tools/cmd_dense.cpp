// convoy dense: score every crop position of a large image in one pass per scale, with the
// model's fully-connected head converted to convolutions (LoadOptions::fc_to_conv).
//
// Geometry (docs/DENSE.md): with training size T (crop) and network stride S, cell (i, j) of a
// scale's score map is the T-sized crop whose top-left pixel is (i*s, j*s) in that scale's input,
// s the output stride. A stride s = S/k < S comes from k*k shifted passes (OverFeat): pass (a, b)
// runs on the input without its first a*s rows and b*s columns, and its cell (i, j) becomes cell
// (i*k + a, j*k + b) of the interleaved map.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <tuple>

#include "tools/atomic_file.h"
#include "tools/cli_common.h"
#include "tools/image_codecs.h"
#include "tools/image_input.h"
#include "tools/npy.h"

namespace convoy::cli {
namespace {

constexpr FlagSpec kFlags[] = {
    {"--size", true},   {"--scales", true},  {"--stride", true}, {"--class", true}, {"--json", true},   {"--heatmap", true},
    {"--output", true}, {"--threads", true}, {"--input", true},  {"--top", true},   {"--labels", true},
};

struct DenseArgs {
  std::string model;
  std::optional<std::string> image, input, json, heatmap, output, labels, class_name;
  std::optional<HxW> size;
  std::vector<double> scales;  // empty: one pass at the image's own size (or --size)
  int64_t stride = 0;          // 0: auto (the network's stride)
  int64_t top = 5;
  int threads = 0;
};

DenseArgs parse_dense_args(const std::vector<std::string>& argv) {
  const ParsedArgs a = parse_args(argv, kFlags);
  DenseArgs r;
  if (a.positional.empty()) throw UsageError("missing MODEL");
  r.model = a.positional[0];
  if (a.positional.size() > 2) throw UsageError("unexpected argument '" + a.positional[2] + "' (one IMAGE at a time)");
  if (a.positional.size() == 2) r.image = a.positional[1];
  r.input = a.get("--input");
  if (r.input && r.image) throw UsageError("give an IMAGE or --input, not both");
  if (!r.input && !r.image) throw UsageError("nothing to score: give an IMAGE or --input FILE.npy");
  r.json = a.get("--json");
  r.heatmap = a.get("--heatmap");
  r.output = a.get("--output");
  r.labels = a.get("--labels");
  r.class_name = a.get("--class");
  r.size = parse_size_flag(a, "384x384");
  if (auto v = a.get("--scales")) {
    for (float s : parse_float_list_flag("--scales", *v)) {
      if (!(s > 0.f) || s > 64.f) throw UsageError("option '--scales': " + std::to_string(s) + " is not in (0, 64]");
      r.scales.push_back(double(s));
    }
  }
  if (r.size && !r.scales.empty()) throw UsageError("give --size or --scales, not both");
  if (r.input && (r.size || !r.scales.empty())) throw UsageError("--size and --scales resize images; not with --input");
  if (r.input && r.heatmap) throw UsageError("--heatmap draws over an IMAGE; not with --input");
  if (auto v = a.get("--stride"); v && *v != "auto") r.stride = parse_int_flag("--stride", *v, 1, 1 << 16);
  if (auto v = a.get("--top")) r.top = parse_int_flag("--top", *v, 0, 1 << 20);
  if (auto v = a.get("--threads")) r.threads = int(parse_int_flag("--threads", *v, 0, 4096));
  return r;
}

// A 4-d float tensor [N, C, H, W] as plain data.
struct Nchw {
  int64_t n = 0, c = 0, h = 0, w = 0;
  std::vector<float> data;
};

// One scale's result: the interleaved score map [N, K, rows, cols] and where its cells are.
struct ScaleMap {
  double scale_y = 1, scale_x = 1;  // scaled-input pixels per image pixel
  int64_t in_h = 0, in_w = 0;       // the scaled input the passes ran on
  int64_t rows = 0, cols = 0;
  std::vector<float> scores;  // [N, K, rows, cols]
  std::string output_path;
};

struct Geometry {
  int64_t crop_h = 0, crop_w = 0;  // training size
  int64_t net_stride = 1;          // of the conv/pool stack
  int64_t stride = 1;              // of the output grid
  int64_t k = 1;                   // shifted passes per axis
};

// x[:, :, oy:, ox:] as its own tensor.
Nchw shifted(const Nchw& x, int64_t oy, int64_t ox) {
  if (oy == 0 && ox == 0) return x;
  Nchw s{x.n, x.c, x.h - oy, x.w - ox, {}};
  s.data.resize(size_t(s.n * s.c * s.h * s.w));
  float* dst = s.data.data();
  for (int64_t p = 0; p < x.n * x.c; ++p)
    for (int64_t y = 0; y < s.h; ++y) {
      const float* src = x.data.data() + (p * x.h + y + oy) * x.w + ox;
      dst = std::copy(src, src + s.w, dst);
    }
  return s;
}

// Runs the k*k shifted passes over x and interleaves them (see the file comment).
ScaleMap dense_scale(convoy::Session& session, const std::string& name, const Nchw& x, const Geometry& g, int64_t& classes) {
  struct Pass {
    int64_t rows = 0, cols = 0;
    convoy::Tensor y;
  };
  std::vector<Pass> passes(size_t(g.k * g.k));
  for (int64_t a = 0; a < g.k; ++a)
    for (int64_t b = 0; b < g.k; ++b) {
      const int64_t oy = a * g.stride, ox = b * g.stride;
      // A pass whose input holds no full crop adds no cell (and its rows/cols end the grid).
      if (x.h - oy < g.crop_h || x.w - ox < g.crop_w) continue;
      Nchw s = shifted(x, oy, ox);
      convoy::Tensor in({s.n, s.c, s.h, s.w}, std::move(s.data));
      Pass& p = passes[size_t(a * g.k + b)];
      p.y = std::move(session.run({in}).at(0));
      const auto& ys = p.y.shape();
      if (ys.size() != 4 || ys[0] != x.n)
        throw convoy::Error(name + ": the converted model's output has shape " + shape_string(ys) +
                            "; dense scoring needs an [N, K, H, W] score map");
      if (classes >= 0 && ys[1] != classes) throw convoy::Error(name + ": score maps of different class counts");
      classes = ys[1];
      p.rows = ys[2];
      p.cols = ys[3];
    }
  // Row r of the grid is row r / k of the passes with a = r % k: the grid ends at the first row
  // some pass lacks (rows of pass (a, *) depend on a only; likewise columns on b).
  ScaleMap m;
  m.in_h = x.h;
  m.in_w = x.w;
  m.rows = m.cols = INT64_MAX;
  for (int64_t a = 0; a < g.k; ++a) m.rows = std::min(m.rows, passes[size_t(a * g.k)].rows * g.k + a);
  for (int64_t b = 0; b < g.k; ++b) m.cols = std::min(m.cols, passes[size_t(b)].cols * g.k + b);
  if (m.rows <= 0 || m.cols <= 0 || classes <= 0)
    throw convoy::Error(name + ": the score map is empty at input size " + std::to_string(x.h) + "x" + std::to_string(x.w));
  m.scores.assign(size_t(x.n * classes * m.rows * m.cols), 0.f);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) {
      const Pass& p = passes[size_t((r % g.k) * g.k + c % g.k)];
      const int64_t i = r / g.k, j = c / g.k;
      for (int64_t n = 0; n < x.n; ++n)
        for (int64_t q = 0; q < classes; ++q)
          m.scores[size_t(((n * classes + q) * m.rows + r) * m.cols + c)] =
              p.y.data()[size_t(((n * classes + q) * p.rows + i) * p.cols + j)];
    }
  return m;
}

// Per-cell class probabilities: the scores themselves when the head already ends in a softmax
// (every cell non-negative and summing to 1), else a softmax over the class axis.
std::vector<float> probabilities(const ScaleMap& m, int64_t n_images, int64_t classes) {
  const int64_t cells = m.rows * m.cols;
  std::vector<float> p(m.scores.size());
  bool already = true;
  for (int64_t n = 0; n < n_images && already; ++n)
    for (int64_t cell = 0; cell < cells && already; ++cell) {
      double sum = 0;
      for (int64_t q = 0; q < classes; ++q) {
        const float v = m.scores[size_t((n * classes + q) * cells + cell)];
        if (!(v >= 0.f && v <= 1.f)) already = false;
        sum += v;
      }
      if (std::abs(sum - 1.0) > 1e-3) already = false;
    }
  if (already) return m.scores;
  for (int64_t n = 0; n < n_images; ++n)
    for (int64_t cell = 0; cell < cells; ++cell) {
      auto at = [&](int64_t q) { return size_t((n * classes + q) * cells + cell); };
      float mx = -INFINITY;
      for (int64_t q = 0; q < classes; ++q) mx = std::max(mx, m.scores[at(q)]);
      double sum = 0;
      for (int64_t q = 0; q < classes; ++q) sum += std::exp(double(m.scores[at(q)] - mx));
      for (int64_t q = 0; q < classes; ++q) p[at(q)] = float(std::exp(double(m.scores[at(q)] - mx)) / sum);
    }
  return p;
}

struct Window {
  size_t scale = 0;
  int64_t image = 0, row = 0, col = 0, cls = 0;
  float score = 0, prob = 0;
};

// The `top` best cells over all scales: for one class by its score, for all classes by each
// cell's best class.
std::vector<Window> best_windows(const std::vector<ScaleMap>& maps, const std::vector<std::vector<float>>& probs,
                                 int64_t n_images, int64_t classes, int64_t cls, int64_t top) {
  std::vector<Window> all;
  for (size_t s = 0; s < maps.size(); ++s) {
    const ScaleMap& m = maps[s];
    const int64_t cells = m.rows * m.cols;
    for (int64_t n = 0; n < n_images; ++n)
      for (int64_t cell = 0; cell < cells; ++cell) {
        int64_t best = cls;
        if (cls < 0) {
          best = 0;
          for (int64_t q = 1; q < classes; ++q)
            if (m.scores[size_t((n * classes + q) * cells + cell)] > m.scores[size_t((n * classes + best) * cells + cell)])
              best = q;
        }
        const size_t at = size_t((n * classes + best) * cells + cell);
        all.push_back({s, n, cell / m.cols, cell % m.cols, best, m.scores[at], probs[s][at]});
      }
  }
  const size_t k = std::min(all.size(), size_t(top));
  std::partial_sort(all.begin(), all.begin() + std::ptrdiff_t(k), all.end(), [](const Window& a, const Window& b) {
    if (a.score != b.score) return a.score > b.score;
    return std::tie(a.scale, a.image, a.row, a.col) < std::tie(b.scale, b.image, b.row, b.col);
  });
  all.resize(k);
  return all;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string json_num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

template <class T, class F>
std::string json_list(const std::vector<T>& v, F f) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + f(v[i]);
  return out + "]";
}

std::vector<int64_t> origins(int64_t count, int64_t stride) {
  std::vector<int64_t> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) v[size_t(i)] = i * stride;
  return v;
}

// The heat map of `probs` for class `cls` in image pixels: each cell's value sits at the centre of
// its crop, bilinear in between (clamped at the edges), the maximum over scales.
cv::Mat heat_values(const std::vector<ScaleMap>& maps, const std::vector<std::vector<float>>& probs, int64_t cls,
                    const Geometry& g, int img_h, int img_w) {
  cv::Mat heat(img_h, img_w, CV_32F, cv::Scalar(0));
  for (size_t s = 0; s < maps.size(); ++s) {
    const ScaleMap& m = maps[s];
    const float* v = probs[s].data() + size_t(cls * m.rows * m.cols);  // image 0
    auto coord = [&](int p, double scale, int64_t crop, int64_t count) {
      const double u = ((p + 0.5) * scale - 0.5 - (double(crop) - 1) / 2) / double(g.stride);
      return std::clamp(u, 0.0, double(count - 1));
    };
    for (int y = 0; y < img_h; ++y) {
      const double u = coord(y, m.scale_y, g.crop_h, m.rows);
      const int64_t i0 = int64_t(u), i1 = std::min(i0 + 1, m.rows - 1);
      const float fy = float(u - double(i0));
      float* row = heat.ptr<float>(y);
      for (int x = 0; x < img_w; ++x) {
        const double w = coord(x, m.scale_x, g.crop_w, m.cols);
        const int64_t j0 = int64_t(w), j1 = std::min(j0 + 1, m.cols - 1);
        const float fx = float(w - double(j0));
        const float top = v[i0 * m.cols + j0] * (1 - fx) + v[i0 * m.cols + j1] * fx;
        const float bot = v[i1 * m.cols + j0] * (1 - fx) + v[i1 * m.cols + j1] * fx;
        row[x] = std::max(row[x], top * (1 - fy) + bot * fy);
      }
    }
  }
  return heat;
}

void write_heatmap(const std::string& path, const std::string& image_path, const cv::Mat& heat) {
  std::ifstream f(image_path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  cv::Mat img = decode_image(bytes, ImageRead::kColor);
  if (img.empty()) throw convoy::Error(image_path + ": cannot decode image");
  cv::Mat heat8, color, out;
  heat.convertTo(heat8, CV_8U, 255.0);
  cv::applyColorMap(heat8, color, cv::COLORMAP_JET);
  cv::addWeighted(img, 0.45, color, 0.55, 0.0, out);
  std::string why;
  const std::vector<uint8_t> png = encode_png(out, &why);
  if (png.empty()) throw convoy::Error(path + ": cannot encode the heat map as PNG" + (why.empty() ? "" : " (" + why + ")"));
  write_file_atomic(path, std::string(png.begin(), png.end()));
}

// "scores.npy" -> "scores_s1.npy" for scale 1 of several.
std::string scale_path(const std::string& path, size_t s, size_t count) {
  if (count == 1) return path;
  const std::string suffix = "_s" + std::to_string(s);
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return path + suffix;
  return path.substr(0, dot) + suffix + path.substr(dot);
}

int64_t find_class(const std::string& name, const std::string& text, const std::vector<std::string>& labels, int64_t classes) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] == text) return int64_t(i);
  int64_t idx = -1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, idx);
  if (ec == std::errc() && ptr == end && idx >= 0 && idx < classes) return idx;
  std::string some;
  for (size_t i = 0; i < labels.size() && i < 5; ++i) some += (i ? ", " : "") + labels[i];
  if (labels.size() > 5) some += ", ...";
  throw convoy::Error(name + ": --class '" + text + "' is neither a class label" +
                      (labels.empty() ? std::string(" (the model has no labels)") : " (" + some + ")") +
                      " nor a class index in [0, " + std::to_string(classes) + ")");
}

int dense_main(const std::vector<std::string>& argv) {
  const DenseArgs r = parse_dense_args(argv);
  auto model = convoy::Model::load(r.model, {.fc_to_conv = true});
  const std::string name = model_name(*model);
  if (model->inputs().size() != 1 || model->outputs().empty())
    throw convoy::Error(name + ": dense scoring needs a model with one image input and a score output");
  const convoy::TensorInfo& in = model->inputs()[0];
  if (in.dtype != "float32" || in.shape.size() != 4)
    throw convoy::Error(name + ": input '" + in.name + "' " + shape_string(in.shape) + " (" + in.dtype +
                        ") is not a float32 NCHW image");

  Geometry g;
  const std::vector<int64_t> t = model->training_size();
  g.crop_h = t.at(0);
  g.crop_w = t.at(1);
  g.net_stride = model->dense_stride();
  g.stride = r.stride ? r.stride : g.net_stride;
  if (g.stride > g.net_stride || g.net_stride % g.stride != 0) {
    std::string ok;
    for (int64_t s = g.net_stride; s >= 1; --s)
      if (g.net_stride % s == 0) ok += (ok.empty() ? "" : ", ") + std::to_string(s);
    throw convoy::Error(name + ": --stride " + std::to_string(g.stride) + " does not divide the network's stride " +
                        std::to_string(g.net_stride) + " (shifted passes need one of " + ok + ")");
  }
  g.k = g.net_stride / g.stride;

  // The inputs, one per scale.
  std::vector<Nchw> inputs;
  std::vector<ScaleMap> maps;
  int img_h = 0, img_w = 0;
  if (r.input) {
    NpyArray a;
    try {
      a = read_npy(*r.input);
    } catch (const NpyError& e) {
      throw convoy::Error(name + ": input '" + in.name + "': " + e.what());
    }
    if (a.shape.size() != 4 || (in.shape[1] >= 0 && a.shape[1] != in.shape[1]) || a.shape[0] < 1)
      throw convoy::Error(name + ": input '" + in.name + "' expects an [N, " +
                          (in.shape[1] >= 0 ? std::to_string(in.shape[1]) : "C") + ", H, W] tensor, " + *r.input + " has " +
                          shape_string(a.shape));
    inputs.push_back({a.shape[0], a.shape[1], a.shape[2], a.shape[3], std::move(a.data)});
    maps.emplace_back();
  } else {
    // load_image reports unreadable or undecodable files in the CLI's usual words (and keeps
    // the decoders' stderr chatter out of the one-line error); then the image's own size.
    {
      Preprocess probe_p;
      probe_p.height = probe_p.width = 1;
      probe_p.mean = {0.f, 0.f, 0.f};
      probe_p.std = {1.f, 1.f, 1.f};
      float sink[3];
      load_image(*r.image, probe_p, sink);
    }
    std::ifstream f(*r.image, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const cv::Mat probe = decode_image(bytes, ImageRead::kUnchanged);
    if (probe.empty()) throw convoy::Error(*r.image + ": cannot decode image");
    std::vector<std::pair<int64_t, int64_t>> sizes;
    img_h = probe.rows;
    img_w = probe.cols;
    if (r.size) {
      sizes.push_back({r.size->height, r.size->width});
    } else if (r.scales.empty()) {
      sizes.push_back({img_h, img_w});
    } else {
      for (double s : r.scales)
        sizes.push_back({std::max<int64_t>(1, std::llround(s * img_h)), std::max<int64_t>(1, std::llround(s * img_w))});
    }
    for (auto [h, w] : sizes) {
      const std::vector<int64_t> shape = concrete_input_shape(*model, in, 1, HxW{h, w});
      Preprocess p = make_preprocess(*model, shape, {});
      p.center_crop = false;  // dense scoring sees the whole image: stretch to h x w, never crop
      Nchw x{1, shape[1], h, w, std::vector<float>(size_t(shape[1] * h * w))};
      if (h >= g.crop_h && w >= g.crop_w) load_image(*r.image, p, x.data.data());
      inputs.push_back(std::move(x));
      ScaleMap m;
      m.scale_y = double(h) / img_h;
      m.scale_x = double(w) / img_w;
      maps.push_back(m);
    }
  }
  for (size_t s = 0; s < inputs.size(); ++s)
    if (inputs[s].h < g.crop_h || inputs[s].w < g.crop_w) {
      std::string at = r.input ? *r.input : *r.image;
      if (!r.input && !r.scales.empty()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", r.scales[s]);
        at += std::string(" at scale ") + buf;
      } else if (r.size)
        at += " resized";
      throw convoy::Error(name + ": " + at + " is " + std::to_string(inputs[s].h) + "x" + std::to_string(inputs[s].w) +
                          ", smaller than the " + std::to_string(g.crop_h) + "x" + std::to_string(g.crop_w) +
                          " crop the model was trained on; dense scoring needs at least one whole crop (use --size or --scales)");
    }

  convoy::Session session(model, {.threads = r.threads});
  int64_t classes = -1;
  const int64_t n_images = inputs[0].n;
  for (size_t s = 0; s < inputs.size(); ++s) {
    ScaleMap m = dense_scale(session, name, inputs[s], g, classes);
    m.scale_y = maps[s].scale_y;
    m.scale_x = maps[s].scale_x;
    maps[s] = std::move(m);
  }

  std::vector<std::string> labels;
  if (r.labels) {
    labels = read_labels_file(*r.labels);
  } else if (auto it = model->metadata().find("convoy.labels"); it != model->metadata().end()) {
    labels = split_labels(it->second);
  }
  if (!labels.empty() && int64_t(labels.size()) != classes)
    throw convoy::Error((r.labels ? *r.labels : name + ": metadata convoy.labels") + ": " + std::to_string(labels.size()) +
                        " labels, but the score map has " + std::to_string(classes) + " classes");
  auto label = [&](int64_t c) { return c < int64_t(labels.size()) ? labels[size_t(c)] : "class_" + std::to_string(c); };
  int64_t cls = -1;
  if (r.class_name && *r.class_name != "all") cls = find_class(name, *r.class_name, labels, classes);

  std::vector<std::vector<float>> probs;
  for (const ScaleMap& m : maps) probs.push_back(probabilities(m, n_images, classes));
  const std::vector<Window> best = best_windows(maps, probs, n_images, classes, cls, std::max<int64_t>(r.top, 1));

  // Files first (each atomically), then the report.
  if (r.output)
    for (size_t s = 0; s < maps.size(); ++s) {
      maps[s].output_path = scale_path(*r.output, s, maps.size());
      write_npy_atomic(maps[s].output_path, {n_images, classes, maps[s].rows, maps[s].cols}, maps[s].scores.data());
    }
  int64_t heat_class = cls >= 0 ? cls : (best.empty() ? 0 : best[0].cls);
  if (r.heatmap) write_heatmap(*r.heatmap, *r.image, heat_values(maps, probs, heat_class, g, img_h, img_w));
  if (r.json) {
    std::string j = "{\n";
    j += "  \"model\": " + json_string(r.model) + ",\n";
    j += "  \"source\": " + json_string(r.input ? *r.input : *r.image) + ",\n";
    if (!r.input) j += "  \"image_size\": [" + std::to_string(img_h) + ", " + std::to_string(img_w) + "],\n";
    j += "  \"images\": " + std::to_string(n_images) + ",\n";
    j += "  \"classes\": " + std::to_string(classes) + ",\n";
    j += "  \"class\": " + (cls >= 0 ? std::to_string(cls) : std::string("\"all\"")) + ",\n";
    if (r.heatmap) j += "  \"heatmap_class\": " + std::to_string(heat_class) + ",\n";
    j += "  \"crop_size\": [" + std::to_string(g.crop_h) + ", " + std::to_string(g.crop_w) + "],\n";
    j += "  \"network_stride\": " + std::to_string(g.net_stride) + ",\n";
    j += "  \"stride\": " + std::to_string(g.stride) + ",\n";
    j += "  \"passes\": " + std::to_string(g.k * g.k) + ",\n";
    j += "  \"scales\": [\n";
    for (size_t s = 0; s < maps.size(); ++s) {
      const ScaleMap& m = maps[s];
      auto image_px = [](double scale) { return [scale](int64_t v) { return json_num(double(v) / scale); }; };
      auto ints = [](int64_t v) { return std::to_string(v); };
      j += "    {\"scale\": [" + json_num(m.scale_y) + ", " + json_num(m.scale_x) + "], ";
      j += "\"input_size\": [" + std::to_string(m.in_h) + ", " + std::to_string(m.in_w) + "], ";
      j += "\"map_size\": [" + std::to_string(m.rows) + ", " + std::to_string(m.cols) + "],\n";
      j += "     \"row_origins\": " + json_list(origins(m.rows, g.stride), ints) + ",\n";
      j += "     \"col_origins\": " + json_list(origins(m.cols, g.stride), ints) + ",\n";
      j += "     \"image_row_origins\": " + json_list(origins(m.rows, g.stride), image_px(m.scale_y)) + ",\n";
      j += "     \"image_col_origins\": " + json_list(origins(m.cols, g.stride), image_px(m.scale_x)) + ",\n";
      j += "     \"image_crop_size\": [" + json_num(double(g.crop_h) / m.scale_y) + ", " +
           json_num(double(g.crop_w) / m.scale_x) + "]";
      if (!m.output_path.empty()) j += ",\n     \"output\": " + json_string(m.output_path);
      j += s + 1 < maps.size() ? "},\n" : "}\n";
    }
    j += "  ],\n  \"best\": [\n";
    for (size_t i = 0; i < best.size(); ++i) {
      const Window& w = best[i];
      const ScaleMap& m = maps[w.scale];
      j += "    {\"scale\": " + std::to_string(w.scale) + ", \"image\": " + std::to_string(w.image) +
           ", \"row\": " + std::to_string(w.row) + ", \"col\": " + std::to_string(w.col) +
           ", \"class\": " + std::to_string(w.cls) + ", \"label\": " + json_string(label(w.cls)) +
           ", \"score\": " + json_num(w.score) + ", \"probability\": " + json_num(w.prob) + ", \"box\": [" +
           json_num(double(w.col * g.stride) / m.scale_x) + ", " + json_num(double(w.row * g.stride) / m.scale_y) + ", " +
           json_num(double(g.crop_w) / m.scale_x) + ", " + json_num(double(g.crop_h) / m.scale_y) + "]}" +
           (i + 1 < best.size() ? ",\n" : "\n");
    }
    j += "  ]\n}\n";
    write_file_atomic(*r.json, j);
  }

  std::printf("%s: crop %lldx%lld, network stride %lld, stride %lld (%lld pass%s per scale), %lld classes\n", name.c_str(),
              (long long)g.crop_h, (long long)g.crop_w, (long long)g.net_stride, (long long)g.stride, (long long)(g.k * g.k),
              g.k * g.k == 1 ? "" : "es", (long long)classes);
  for (size_t s = 0; s < maps.size(); ++s)
    std::printf("  scale %zu: input %lldx%lld -> score map %lldx%lld\n", s, (long long)maps[s].in_h, (long long)maps[s].in_w,
                (long long)maps[s].rows, (long long)maps[s].cols);
  if (r.top > 0) {
    std::printf("best windows%s (x, y, w, h in image pixels):\n", cls >= 0 ? (" for " + label(cls)).c_str() : "");
    for (const Window& w : best) {
      const ScaleMap& m = maps[w.scale];
      std::printf("  %-20s %.6g (p=%.3f)  scale %zu%s cell (%lld, %lld)  box %.1f %.1f %.1f %.1f\n", label(w.cls).c_str(),
                  double(w.score), double(w.prob), w.scale, n_images > 1 ? (" image " + std::to_string(w.image)).c_str() : "",
                  (long long)w.row, (long long)w.col, double(w.col * g.stride) / m.scale_x, double(w.row * g.stride) / m.scale_y,
                  double(g.crop_w) / m.scale_x, double(g.crop_h) / m.scale_y);
    }
  }
  return 0;
}

}  // namespace

const Command kDenseCommand = {
    "dense",
    "score every crop position of a large image in one pass (FC head as convolutions)",
    "convoy dense MODEL (IMAGE | --input x.npy) [--size HxW | --scales a,b,...] [--stride auto|S]\n"
    "                   [--class NAME|INDEX|all] [--json out.json] [--heatmap out.png]\n"
    "                   [--output scores.npy] [--top K] [--labels FILE] [--threads N]",
    "Loads MODEL with its fully-connected head converted to convolutions and runs it once over the\n"
    "whole image (per scale): cell (i, j) of the score map is the score of the crop of the model's\n"
    "training size (convoy.input_size or the input's static HxW) whose top-left pixel is\n"
    "(i*S, j*S), S the stride, in the scale's input. Convolution padding makes cells near a crop's\n"
    "border see real image where a lone crop sees zeros: see docs/DENSE.md.\n"
    "\n"
    "  --input FILE     score a float32 .npy [N, C, H, W] (already preprocessed) instead of an image\n"
    "  --size HxW       resize (stretch) the image to HxW first (default: its own size)\n"
    "  --scales a,b     one pass per scale, the image resized by each factor (e.g. 1,1.5,2)\n"
    "  --stride S       output stride: auto (the network's) or a divisor of it, by S/stride squared\n"
    "                   shifted passes interleaved (OverFeat)\n"
    "  --class C        class label or index whose windows and heat map to report (default all:\n"
    "                   each cell's best class; the heat map then shows the best window's class)\n"
    "  --output FILE    the score map [N, K, rows, cols] as float32 .npy; with several scales\n"
    "                   FILE_s0.npy, FILE_s1.npy, ...\n"
    "  --json FILE      grid geometry per scale (crop origins in input and image pixels) and the\n"
    "                   best windows\n"
    "  --heatmap FILE   PNG of the image overlaid with the class probability per crop centre\n"
    "  --top K          best windows to print and write (default 5)\n"
    "  --labels FILE    class names, one per line (default: convoy.labels metadata)\n"
    "  --threads N      worker threads (default 0: all hardware threads)\n",
    dense_main,
};

}  // namespace convoy::cli
