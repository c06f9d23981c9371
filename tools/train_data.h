// The image-folder data pipeline of `convoy finetune`: dataset discovery, the stratified split,
// seeded per-epoch shuffling and augmentation, and batches decoded on a background thread.
// OpenCV stays inside train_data.cpp (and image_input.cpp, whose decoding it reuses).
//
// Determinism: every random draw is a pure function of (seed, epoch, sample id) through
// splitmix64, where the sample id is the sample's index in the training list (not its position
// in a batch). So results do not depend on thread counts, on which files fail to decode, or on
// whether the run was resumed from a checkpoint.
#pragma once
#include <cstdint>
#include <future>
#include <string>
#include <vector>

#include "tools/image_input.h"

namespace convoy::cli {

// ---- discovery ----

struct Sample {
  std::string path;
  int32_t label = 0;
};

enum class DatasetLayout { kKaggle, kFolders };

struct Dataset {
  std::string root;                  // the directory the samples were found in
  DatasetLayout layout = DatasetLayout::kFolders;
  std::vector<std::string> classes;  // sorted by name (byte order); label = index
  std::vector<Sample> samples;       // sorted by (label, path)
};

// Image extensions, case-insensitive: jpg jpeg png bmp.
bool is_image_file(const std::string& name);

// Finds the classes and images of `dir`, trying in order:
//   1. Kaggle layout in dir: files "<class>.<anything>.<ext>" (class = name up to the first dot);
//   2. Kaggle layout in dir/train;
//   3. one sub-folder per class (class = folder name; images anywhere below it).
// Hidden files and folders (".name") are ignored. Throws convoy::Error naming `dir` when it is
// missing, or when fewer than `min_classes` classes are found (saying what was looked for).
Dataset discover_dataset(const std::string& dir, size_t min_classes = 2);

// Relabels `ds` (e.g. a --val-dir set) to the indices of `classes`; throws convoy::Error naming
// ds.root and the class when one of its classes is not among them.
void relabel_dataset(Dataset& ds, const std::vector<std::string>& classes);

// ---- split, shuffling, random draws ----

// One splitmix64 step: advances `state`, returns the next 64-bit value.
uint64_t splitmix64(uint64_t& state);
// A generator state for (seed, a, b, c): the hash of the key, so nearby keys are unrelated.
uint64_t seed_state(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
// Uniform in [0, 1) from the next draw.
double uniform01(uint64_t& state);

struct Split {
  std::vector<Sample> train, val;
};
// Per class, a seeded shuffle of its samples; round(n * val_fraction) of them go to validation
// (at least 1 when val_fraction > 0 and the class has 2+ samples; at least 1 stays for training).
// Both lists keep the (label, path) order.
Split stratified_split(const std::vector<Sample>& samples, size_t num_classes, double val_fraction, uint64_t seed);

// The order of epoch `epoch`'s training samples: a Fisher-Yates shuffle of 0..n-1 seeded by
// (seed, epoch).
std::vector<size_t> epoch_permutation(size_t n, uint64_t seed, uint64_t epoch);

// ---- augmentation ----

// Applied to the preprocessed (resized, cropped, normalised) tensor, as one affine
// (cv::warpAffine, bilinear, reflected border) about the image centre, then noise:
//   horizontal flip with p = flip_p; rotation uniform in +-max_rotate_deg; scale uniform in
//   [min_scale, max_scale]; translation uniform in +-max_shift of the width / height;
//   Gaussian noise of sigma noise_sigma in pixel units after the scale divisor (0.02 = 2% of the
//   0..1 pixel range), i.e. noise_sigma / std[c] in channel c's normalised units.
struct AugmentOptions {
  double flip_p = 0.5;
  double max_rotate_deg = 10;
  double min_scale = 0.9, max_scale = 1.1;
  double max_shift = 0.08;
  double noise_sigma = 0.02;
};

struct AugmentDraw {
  bool flip = false;
  double angle_deg = 0, scale = 1, shift_x = 0, shift_y = 0;  // shifts as fractions of the size
  uint64_t noise_state = 0;                                   // generator state of the noise
};

// The draw for sample `sample_id` in epoch `epoch`: a pure function of its arguments.
AugmentDraw draw_augment(const AugmentOptions& o, uint64_t seed, uint64_t epoch, uint64_t sample_id);

// Augments one preprocessed image in place: `chw` holds p.channels x p.height x p.width floats.
void apply_augment(const AugmentDraw& d, const AugmentOptions& o, const Preprocess& p, float* chw);

// ---- batches ----

struct Batch {
  std::vector<float> images;    // [count, C, H, W]
  std::vector<int32_t> labels;  // [count]
  size_t count = 0;             // images that decoded
  size_t skipped = 0;           // files that did not
  std::string first_failure;    // "path: reason" of the first of them
};

// What to load: samples[order[begin..end)], augmented with (seed, epoch, order[i]) when
// `augment` is set. A file that fails to decode is skipped (counted in the batch) and leaves
// the other samples' draws unchanged.
struct BatchRequest {
  const std::vector<Sample>* samples = nullptr;
  const std::vector<size_t>* order = nullptr;  // nullptr: identity
  size_t begin = 0, end = 0;
  bool augment = false;
  uint64_t seed = 0, epoch = 0;
};

Batch load_batch(const BatchRequest& r, const Preprocess& p, const AugmentOptions& aug);

// Loads batches one ahead on a background thread: next() returns the batch requested by the
// previous prefetch() (or loads it now when there was none).
class BatchPrefetcher {
 public:
  BatchPrefetcher(Preprocess p, AugmentOptions aug) : p_(std::move(p)), aug_(aug) {}
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  void prefetch(const BatchRequest& r);
  Batch next(const BatchRequest& r);  // `r` must equal the prefetched request, if any

 private:
  Preprocess p_;
  AugmentOptions aug_;
  std::future<Batch> pending_;
};

// ---- files ----


// Training curves as a PNG (encoded in memory): loss of train and val, accuracy of train and
// val, against the epoch, with axes, ticks and legends. NaN values are left out.
struct CurvePoint {
  int epoch = 0;
  double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0;
};
std::string plot_curves_png(const std::vector<CurvePoint>& points);

}  // namespace convoy::cli
