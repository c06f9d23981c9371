#include "tools/image_input.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "tools/image_codecs.h"
#include "tools/npy.h"

namespace convoy::cli {
namespace {

const std::vector<float> kImageNetMean = {0.485f, 0.456f, 0.406f};
const std::vector<float> kImageNetStd = {0.229f, 0.224f, 0.225f};

std::string meta_or(const ModelHeader& model, const std::string& key, const std::string& fallback) {
  auto it = model.metadata().find(key);
  return it == model.metadata().end() ? fallback : it->second;
}

// A per-channel list from a flag, the metadata, or the default; one value applies to every channel.
std::vector<float> per_channel(const ModelHeader& model, const std::string& key, const std::optional<std::vector<float>>& flag,
                               const std::vector<float>& fallback, int channels) {
  std::vector<float> v;
  std::string origin;
  if (flag) {
    v = *flag;
    origin = "--" + key.substr(key.find('.') + 1);
  } else if (auto it = model.metadata().find(key); it != model.metadata().end()) {
    auto parsed = parse_float_list(it->second);
    if (!parsed) throw convoy::Error(model_name(model) + ": metadata " + key + " '" + it->second + "' is not a list of numbers");
    v = *parsed;
    origin = "metadata " + key;
  } else {
    v = fallback;
    origin = "the ImageNet default of " + key;
  }
  if (v.size() == 1) v.assign(size_t(channels), v[0]);
  if (v.size() != size_t(channels))
    throw convoy::Error(model_name(model) + ": " + origin + " has " + std::to_string(v.size()) + " values but the model takes " +
                        std::to_string(channels) + " channel(s)" + (flag ? "" : "; pass --mean and --std"));
  return v;
}

// Redirects file descriptor 2 into a temporary file for its lifetime (callers serialise it).
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    saved_ = file_ ? ::dup(2) : -1;
    if (saved_ >= 0) ::dup2(::fileno(file_), 2);
  }
  ~StderrCapture() {
    restore();
    if (file_) std::fclose(file_);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  std::string first_line() {
    restore();
    if (!file_) return "";
    std::rewind(file_);
    char buf[512] = {};
    if (!std::fgets(buf, sizeof buf, file_)) return "";
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return line;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

// Resize (and crop) to exactly p.height x p.width. INTER_AREA when shrinking, INTER_LINEAR otherwise.
cv::Mat resize_to(const cv::Mat& img, const Preprocess& p) {
  auto resized = [](const cv::Mat& src, int h, int w) {
    if (src.rows == h && src.cols == w) return src;
    const bool shrinking = h <= src.rows && w <= src.cols;
    cv::Mat dst;
    cv::resize(src, dst, cv::Size(w, h), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
    return dst;
  };
  const int h = int(p.height), w = int(p.width);
  if (!p.center_crop) return resized(img, h, w);
  // torchvision's Resize(256) + CenterCrop(224) at 224, generalised to HxW: scale so the image
  // covers (256/224) * HxW keeping its aspect ratio, sizes truncated as torchvision does, then
  // cut the centre with its offsets (Python's round: half to even, as std::lrint).
  const double k = 256.0 / 224.0;
  const double f = std::max(k * h / img.rows, k * w / img.cols);
  const int rh = std::max(h, int(img.rows * f + 1e-6)), rw = std::max(w, int(img.cols * f + 1e-6));
  cv::Mat big = resized(img, rh, rw);
  const int top = int(std::lrint((rh - h) / 2.0)), left = int(std::lrint((rw - w) / 2.0));
  return big(cv::Rect(left, top, w, h));
}

}  // namespace

std::optional<float> parse_float(std::string_view text) {
  float v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<std::vector<float>> parse_float_list(std::string_view text) {
  std::vector<float> out;
  while (true) {
    const size_t comma = text.find(',');
    auto v = parse_float(text.substr(0, comma));
    if (!v) return std::nullopt;
    out.push_back(*v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<HxW> parse_hxw(std::string_view text) {
  const size_t x = text.find('x');
  if (x == std::string_view::npos) return std::nullopt;
  auto side = [](std::string_view s) -> int64_t {
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || v <= 0 || v > (1 << 20)) return 0;
    return v;
  };
  HxW hw{side(text.substr(0, x)), side(text.substr(x + 1))};
  if (!hw.height || !hw.width) return std::nullopt;
  return hw;
}

std::string model_name(const ModelHeader& model) {
  const std::string& p = model.path();
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

Preprocess make_preprocess(const ModelHeader& model, const std::vector<int64_t>& nchw, const PreprocessFlags& flags) {
  const std::string name = model_name(model);
  if (nchw.size() != 4)
    throw convoy::Error(name + ": input '" + model.inputs()[0].name + "' " + shape_string(model.inputs()[0].shape) +
                        " is not NCHW; images need a 4-d input (use --input with an .npy)");
  Preprocess p;
  p.channels = int(nchw[1]);
  p.height = nchw[2];
  p.width = nchw[3];
  if (p.channels != 1 && p.channels != 3)
    throw convoy::Error(name + ": input '" + model.inputs()[0].name + "' has " + std::to_string(p.channels) +
                        " channels; images give 1 (gray) or 3 (color)");

  const std::string color = meta_or(model, "convoy.color", p.channels == 1 ? "gray" : "rgb");
  if (color != "rgb" && color != "bgr" && color != "gray")
    throw convoy::Error(name + ": metadata convoy.color '" + color + "' is not rgb, bgr or gray");
  if (color == "gray" && p.channels != 1)
    throw convoy::Error(name + ": metadata convoy.color is gray but the input takes " + std::to_string(p.channels) + " channels");
  p.bgr = flags.bgr || color == "bgr";

  const std::string resize = meta_or(model, "convoy.resize", p.channels == 1 ? "stretch" : "center_crop");
  if (resize != "stretch" && resize != "center_crop")
    throw convoy::Error(name + ": metadata convoy.resize '" + resize + "' is not stretch or center_crop");
  p.center_crop = resize == "center_crop";

  if (flags.scale) {
    p.scale = *flags.scale;
  } else {
    const std::string s = meta_or(model, "convoy.scale", "255");
    auto v = parse_float(s);
    if (!v) throw convoy::Error(name + ": metadata convoy.scale '" + s + "' is not a number");
    p.scale = *v;
  }
  if (p.scale == 0) throw convoy::Error(name + ": pixel scale must not be 0");

  p.mean = per_channel(model, "convoy.mean", flags.mean, kImageNetMean, p.channels);
  p.std = per_channel(model, "convoy.std", flags.std, kImageNetStd, p.channels);
  for (float s : p.std)
    if (s == 0) throw convoy::Error(name + ": a std value is 0");
  return p;
}

void load_image(const std::string& path, const Preprocess& p, float* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw convoy::Error(path + ": cannot read image (" + std::strerror(errno) + ")");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw convoy::Error(path + ": cannot read image (read error)");

  const ImageRead mode = p.channels == 1 ? ImageRead::kGrayscale : ImageRead::kColor;
  image_codecs_plugin_path();  // load the plugin (or fail with its own error) before fd 2 is captured
  cv::Mat img;
  std::string decoder_says;
  {
    // libpng and friends print straight to stderr; keep their words for our one-line error.
    // The capture redirects the process's fd 2, so decodes from several threads take turns.
    static std::mutex capture_mutex;
    std::lock_guard<std::mutex> lock(capture_mutex);
    StderrCapture capture;
    if (!bytes.empty()) img = decode_image(bytes, mode, &decoder_says);
    if (decoder_says.empty()) decoder_says = capture.first_line();
  }
  if (img.empty())
    throw convoy::Error(path + ": cannot decode image (" +
                        (decoder_says.empty() ? "not an image format OpenCV reads" : decoder_says) + ")");
  if (img.depth() != CV_8U) img.convertTo(img, CV_8U);  // imdecode without ANYDEPTH gives 8 bits
  if (p.channels == 3 && !p.bgr) cv::cvtColor(img, img, cv::COLOR_BGR2RGB);

  const cv::Mat sized = resize_to(img, p);
  const int64_t h = p.height, w = p.width;
  const int c_count = p.channels;
  for (int64_t y = 0; y < h; ++y) {
    const uchar* row = sized.ptr<uchar>(int(y));
    for (int64_t x = 0; x < w; ++x)
      for (int c = 0; c < c_count; ++c) {
        const float px = row[x * c_count + c];
        out[(c * h + y) * w + x] = (px / p.scale - p.mean[c]) / p.std[c];
      }
  }
}

}  // namespace convoy::cli
