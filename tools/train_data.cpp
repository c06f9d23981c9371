#include "tools/train_data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <numbers>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <system_error>

#include "tools/image_codecs.h"

namespace convoy::cli {
namespace fs = std::filesystem;
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

// Regular files (following links) directly in `dir`, sorted; errors name the directory.
std::vector<fs::path> list_dir(const fs::path& dir, bool want_dirs) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw convoy::Error(dir.string() + ": cannot list the directory (" + ec.message() + ")");
  for (; it != end; it.increment(ec)) {
    if (ec) throw convoy::Error(dir.string() + ": cannot list the directory (" + ec.message() + ")");
    const fs::path& p = it->path();
    if (hidden(p)) continue;
    std::error_code sec;
    const bool is_dir = fs::is_directory(p, sec);
    const bool is_file = !is_dir && fs::is_regular_file(p, sec);
    if (want_dirs ? is_dir : is_file) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Images below `dir` (recursively, hidden entries skipped), sorted.
std::vector<fs::path> images_below(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const fs::path& f : list_dir(dir, false))
    if (is_image_file(f.filename().string())) out.push_back(f);
  for (const fs::path& d : list_dir(dir, true)) {
    auto sub = images_below(d);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Kaggle-named images ("<class>.<anything>.<ext>") directly in `dir`, by class.
std::map<std::string, std::vector<std::string>> kaggle_files(const fs::path& dir) {
  std::map<std::string, std::vector<std::string>> by_class;
  for (const fs::path& f : list_dir(dir, false)) {
    const std::string name = f.filename().string();
    if (!is_image_file(name)) continue;
    const size_t first = name.find('.'), last = name.rfind('.');
    if (first == 0 || first == last) continue;  // no "<class>." before "<anything>.<ext>"
    by_class[name.substr(0, first)].push_back(f.string());
  }
  return by_class;
}

Dataset make_dataset(const fs::path& root, DatasetLayout layout, const std::map<std::string, std::vector<std::string>>& by_class) {
  Dataset ds;
  ds.root = root.string();
  ds.layout = layout;
  for (const auto& [name, files] : by_class) {  // std::map: sorted by name
    const auto label = int32_t(ds.classes.size());
    ds.classes.push_back(name);
    for (const std::string& f : files) ds.samples.push_back({f, label});
  }
  return ds;
}

}  // namespace

bool is_image_file(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string ext = lower(name.substr(dot + 1));
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "bmp";
}

Dataset discover_dataset(const std::string& dir, size_t min_classes) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw convoy::Error(dir + ": no such data directory");
  if (!fs::is_directory(dir, ec)) throw convoy::Error(dir + ": not a directory");

  Dataset ds;
  if (auto k = kaggle_files(dir); !k.empty()) {
    ds = make_dataset(dir, DatasetLayout::kKaggle, k);
  } else if (fs::path train = fs::path(dir) / "train"; fs::is_directory(train, ec) && !(k = kaggle_files(train)).empty()) {
    ds = make_dataset(train, DatasetLayout::kKaggle, k);
  } else {
    std::map<std::string, std::vector<std::string>> by_class;
    for (const fs::path& sub : list_dir(dir, true)) {
      std::vector<std::string> files;
      for (const fs::path& f : images_below(sub)) files.push_back(f.string());
      if (!files.empty()) by_class[sub.filename().string()] = std::move(files);
    }
    ds = make_dataset(dir, DatasetLayout::kFolders, by_class);
  }
  const char* looked =
      " (looked for images named <class>.<anything>.<ext> in it and in its train/ folder, and for one sub-folder of images "
      "per class; extensions jpg, jpeg, png, bmp)";
  if (ds.classes.empty()) throw convoy::Error(dir + ": no class found" + looked);
  if (ds.classes.size() < min_classes) {
    std::string names;
    for (const auto& c : ds.classes) names += (names.empty() ? "'" : ", '") + c + "'";
    throw convoy::Error(dir + ": found only " + std::to_string(ds.classes.size()) + " class (" + names + ", " +
                        std::to_string(ds.samples.size()) + " images); fine-tuning needs at least " +
                        std::to_string(min_classes) + looked);
  }
  return ds;
}

void relabel_dataset(Dataset& ds, const std::vector<std::string>& classes) {
  std::vector<int32_t> map(ds.classes.size());
  for (size_t i = 0; i < ds.classes.size(); ++i) {
    auto it = std::find(classes.begin(), classes.end(), ds.classes[i]);
    if (it == classes.end())
      throw convoy::Error(ds.root + ": class '" + ds.classes[i] + "' is not one of the " + std::to_string(classes.size()) +
                          " training classes");
    map[i] = int32_t(it - classes.begin());
  }
  for (Sample& s : ds.samples) s.label = map[size_t(s.label)];
  ds.classes = classes;
  std::stable_sort(ds.samples.begin(), ds.samples.end(),
                   [](const Sample& a, const Sample& b) { return a.label < b.label || (a.label == b.label && a.path < b.path); });
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t seed_state(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t s = seed;
  uint64_t h = splitmix64(s);
  for (uint64_t v : {a, b, c}) {
    s = h ^ v;
    h = splitmix64(s);
  }
  return h;
}

double uniform01(uint64_t& state) { return double(splitmix64(state) >> 11) * 0x1.0p-53; }

namespace {
// Streams of seed_state's first key part, so the different uses never share draws.
constexpr uint64_t kSplitStream = 1, kShuffleStream = 2, kAugmentStream = 3;

// Fisher-Yates with draws from `state` (the bounded draw's bias is < 2^-40 for our sizes).
void shuffle(std::vector<size_t>& v, uint64_t state) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = size_t(splitmix64(state) % i);
    std::swap(v[i - 1], v[j]);
  }
}
}  // namespace

Split stratified_split(const std::vector<Sample>& samples, size_t num_classes, double val_fraction, uint64_t seed) {
  std::vector<std::vector<size_t>> per_class(num_classes);
  for (size_t i = 0; i < samples.size(); ++i) per_class.at(size_t(samples[i].label)).push_back(i);
  std::vector<bool> to_val(samples.size(), false);
  for (size_t c = 0; c < num_classes; ++c) {
    std::vector<size_t>& idx = per_class[c];
    const size_t n = idx.size();
    size_t k = size_t(std::llround(double(n) * val_fraction));
    if (val_fraction > 0 && n >= 2) k = std::max<size_t>(k, 1);
    k = std::min(k, n > 0 ? n - 1 : 0);
    shuffle(idx, seed_state(seed, kSplitStream, c, 0));
    for (size_t i = 0; i < k; ++i) to_val[idx[i]] = true;
  }
  Split s;
  for (size_t i = 0; i < samples.size(); ++i) (to_val[i] ? s.val : s.train).push_back(samples[i]);
  return s;
}

std::vector<size_t> epoch_permutation(size_t n, uint64_t seed, uint64_t epoch) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  shuffle(v, seed_state(seed, kShuffleStream, epoch, 0));
  return v;
}

AugmentDraw draw_augment(const AugmentOptions& o, uint64_t seed, uint64_t epoch, uint64_t sample_id) {
  uint64_t st = seed_state(seed, kAugmentStream, epoch, sample_id);
  AugmentDraw d;
  d.flip = uniform01(st) < o.flip_p;
  d.angle_deg = (2 * uniform01(st) - 1) * o.max_rotate_deg;
  d.scale = o.min_scale + uniform01(st) * (o.max_scale - o.min_scale);
  d.shift_x = (2 * uniform01(st) - 1) * o.max_shift;
  d.shift_y = (2 * uniform01(st) - 1) * o.max_shift;
  d.noise_state = splitmix64(st);
  return d;
}

void apply_augment(const AugmentDraw& d, const AugmentOptions& o, const Preprocess& p, float* chw) {
  const int h = int(p.height), w = int(p.width);
  // dst(x) = A * src(x): about the centre, flip, then rotate+scale, then translate.
  const cv::Point2f centre(float(w - 1) * 0.5f, float(h - 1) * 0.5f);
  cv::Mat rs = cv::getRotationMatrix2D(centre, d.angle_deg, d.scale);  // 2x3 CV_64F
  if (d.flip) {  // rs * F where F maps x -> (w - 1) - x
    rs.at<double>(0, 2) += rs.at<double>(0, 0) * (w - 1);
    rs.at<double>(1, 2) += rs.at<double>(1, 0) * (w - 1);
    rs.at<double>(0, 0) = -rs.at<double>(0, 0);
    rs.at<double>(1, 0) = -rs.at<double>(1, 0);
  }
  rs.at<double>(0, 2) += d.shift_x * w;
  rs.at<double>(1, 2) += d.shift_y * h;
  uint64_t noise = d.noise_state;
  for (int c = 0; c < p.channels; ++c) {
    float* plane = chw + size_t(c) * size_t(h) * size_t(w);
    cv::Mat src(h, w, CV_32F, plane);
    cv::Mat dst;
    cv::warpAffine(src, dst, rs, src.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
    dst.copyTo(src);
    if (o.noise_sigma > 0) {
      const double sigma = o.noise_sigma / double(p.std[size_t(c)]);
      // Box-Muller from splitmix64 draws: the same numbers on every platform and thread count.
      for (int i = 0; i < h * w; i += 2) {
        const double u1 = 1.0 - uniform01(noise), u2 = uniform01(noise);
        const double r = std::sqrt(-2.0 * std::log(u1)) * sigma, t = 2 * std::numbers::pi * u2;
        plane[i] += float(r * std::cos(t));
        if (i + 1 < h * w) plane[i + 1] += float(r * std::sin(t));
      }
    }
  }
}

Batch load_batch(const BatchRequest& r, const Preprocess& p, const AugmentOptions& aug) {
  const size_t per_image = size_t(p.channels) * size_t(p.height) * size_t(p.width);
  Batch b;
  b.images.resize((r.end - r.begin) * per_image);
  b.labels.reserve(r.end - r.begin);
  for (size_t i = r.begin; i < r.end; ++i) {
    const size_t id = r.order ? (*r.order)[i] : i;
    const Sample& s = (*r.samples)[id];
    float* out = b.images.data() + b.count * per_image;
    try {
      load_image(s.path, p, out);
    } catch (const std::exception& e) {
      if (b.skipped++ == 0) b.first_failure = e.what();
      continue;
    }
    if (r.augment) apply_augment(draw_augment(aug, r.seed, r.epoch, id), aug, p, out);
    b.labels.push_back(s.label);
    ++b.count;
  }
  b.images.resize(b.count * per_image);
  return b;
}

BatchPrefetcher::~BatchPrefetcher() {
  if (pending_.valid()) pending_.wait();
}

void BatchPrefetcher::prefetch(const BatchRequest& r) {
  if (pending_.valid()) pending_.wait();
  pending_ = std::async(std::launch::async, [this, r] { return load_batch(r, p_, aug_); });
}

Batch BatchPrefetcher::next(const BatchRequest& r) {
  if (pending_.valid()) return pending_.get();
  return load_batch(r, p_, aug_);
}

namespace {

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

struct Series {
  std::string name;
  cv::Scalar color;
  std::vector<std::pair<double, double>> xy;
};

// Tick spacing 1, 2 or 5 times a power of ten giving about five intervals over [lo, hi].
double nice_step(double lo, double hi) {
  const double raw = (hi - lo) / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return mag * (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10);
}

// One panel: title and legend above, frame, grid, ticks with labels, polylines with markers.
void draw_panel(cv::Mat& img, cv::Rect area, const std::string& title, const std::vector<Series>& series, int max_epoch,
                double y_lo, double y_hi) {
  const cv::Scalar black(0, 0, 0), grey(215, 215, 215);
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const cv::Rect plot(area.x + 75, area.y + 50, area.width - 100, area.height - 105);
  if (!(y_hi > y_lo)) y_hi = y_lo + 1;
  const double step = nice_step(y_lo, y_hi);
  y_lo = std::floor(y_lo / step + 1e-9) * step;
  y_hi = std::ceil(y_hi / step - 1e-9) * step;
  const int x_lo = 1, x_hi = std::max(2, max_epoch);
  auto px = [&](double e) { return plot.x + int(std::lround((e - x_lo) / (x_hi - x_lo) * plot.width)); };
  auto py = [&](double v) { return plot.y + plot.height - int(std::lround((v - y_lo) / (y_hi - y_lo) * plot.height)); };

  cv::putText(img, title, {plot.x, area.y + 22}, font, 0.55, black, 1, cv::LINE_AA);
  int lx = plot.x;
  for (const Series& s : series) {  // legend: one row under the title
    cv::line(img, {lx, area.y + 36}, {lx + 25, area.y + 36}, s.color, 2, cv::LINE_AA);
    cv::circle(img, {lx + 12, area.y + 36}, 3, s.color, cv::FILLED, cv::LINE_AA);
    cv::putText(img, s.name, {lx + 32, area.y + 41}, font, 0.45, black, 1, cv::LINE_AA);
    lx += 140;
  }
  const int n_ticks = int(std::lround((y_hi - y_lo) / step));
  for (int i = 0; i <= n_ticks; ++i) {
    const double v = y_lo + step * i;
    const int y = py(v);
    cv::line(img, {plot.x, y}, {plot.x + plot.width, y}, grey, 1);
    cv::line(img, {plot.x - 5, y}, {plot.x, y}, black, 1);
    const std::string label = tick_label(std::abs(v) < step * 1e-6 ? 0.0 : v);
    int base = 0;
    const cv::Size size = cv::getTextSize(label, font, 0.4, 1, &base);
    cv::putText(img, label, {plot.x - 9 - size.width, y + 5}, font, 0.4, black, 1, cv::LINE_AA);
  }
  // x ticks: every epoch, or every k-th when there are many.
  const int x_step = std::max(1, (x_hi - x_lo) / 10 + 1);
  for (int e = x_lo; e <= x_hi; e += x_step) {
    const int x = px(e);
    cv::line(img, {x, plot.y + plot.height}, {x, plot.y + plot.height + 5}, black, 1);
    cv::putText(img, std::to_string(e), {x - 5, plot.y + plot.height + 20}, font, 0.4, black, 1, cv::LINE_AA);
  }
  cv::rectangle(img, plot, black, 1);
  cv::putText(img, "epoch", {plot.x + plot.width / 2 - 20, plot.y + plot.height + 42}, font, 0.5, black, 1, cv::LINE_AA);

  for (const Series& s : series) {
    std::vector<cv::Point> pts;
    for (auto [e, v] : s.xy)
      if (std::isfinite(v)) pts.emplace_back(px(e), py(v));
    if (pts.size() > 1) cv::polylines(img, pts, false, s.color, 2, cv::LINE_AA);
    for (const cv::Point& p : pts) cv::circle(img, p, 3, s.color, cv::FILLED, cv::LINE_AA);
  }
}

}  // namespace

std::string plot_curves_png(const std::vector<CurvePoint>& points) {
  cv::Mat img(400, 1000, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar blue(200, 90, 30), orange(20, 130, 240);  // BGR
  Series tl{"train loss", blue, {}}, vl{"val loss", orange, {}}, ta{"train acc", blue, {}}, va{"val acc", orange, {}};
  int max_epoch = 1;
  double lo = INFINITY, hi = -INFINITY;
  for (const CurvePoint& p : points) {
    max_epoch = std::max(max_epoch, p.epoch);
    tl.xy.emplace_back(p.epoch, p.train_loss);
    vl.xy.emplace_back(p.epoch, p.val_loss);
    ta.xy.emplace_back(p.epoch, p.train_acc);
    va.xy.emplace_back(p.epoch, p.val_acc);
    for (double v : {p.train_loss, p.val_loss})
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  lo = std::min(lo, 0.0);  // losses are >= 0: the axis starts at 0
  double acc_lo = 1;
  for (const CurvePoint& p : points)
    for (double v : {p.train_acc, p.val_acc})
      if (std::isfinite(v)) acc_lo = std::min(acc_lo, v);
  acc_lo = std::min(acc_lo, 0.9);
  draw_panel(img, {0, 0, 500, 400}, "loss (softmax cross-entropy)", {tl, vl}, max_epoch, lo, hi);
  draw_panel(img, {500, 0, 500, 400}, "accuracy", {ta, va}, max_epoch, acc_lo, 1.0);
  std::string why;
  const std::vector<uint8_t> png = encode_png(img, &why);
  if (png.empty()) throw convoy::Error("cannot encode the training curves as PNG" + (why.empty() ? "" : " (" + why + ")"));
  return std::string(png.begin(), png.end());
}

}  // namespace convoy::cli
