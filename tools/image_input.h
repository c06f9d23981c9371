// Image files -> normalised NCHW float32, following the model's convoy.* preprocessing metadata
// (docs: metadata keys in docs/ARCHITECTURE.md). OpenCV stays inside image_input.cpp; image decoding goes through tools/image_codecs.h (the codecs plugin, loaded on first use).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convoy/convoy.hpp"

namespace convoy::cli {

// Metadata value parsing, shared with the command line.
struct HxW {
  int64_t height = 0, width = 0;
};
// "224x224" -> {224, 224}; nullopt unless both sides are positive integers.
std::optional<HxW> parse_hxw(std::string_view text);
// Comma-separated finite floats; nullopt on any malformed entry.
std::optional<std::vector<float>> parse_float_list(std::string_view text);
std::optional<float> parse_float(std::string_view text);

// What the command line reads of a model besides running it: its path, inputs and metadata
// (the accessors mirror convoy::Model's). A copy lets a command drop the Model and its weights
// early: `convoy finetune` keeps only this while the Trainer loads its own copy of the model.
class ModelHeader {
 public:
  explicit ModelHeader(const convoy::Model& m) : path_(m.path()), inputs_(m.inputs()), metadata_(m.metadata()) {}
  const std::string& path() const { return path_; }
  const std::vector<convoy::TensorInfo>& inputs() const { return inputs_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::vector<convoy::TensorInfo> inputs_;
  std::map<std::string, std::string> metadata_;
};

// The model file's base name, which error messages start with.
std::string model_name(const ModelHeader& model);
inline std::string model_name(const convoy::Model& model) { return model_name(ModelHeader(model)); }

struct Preprocess {
  int64_t height = 0, width = 0;
  int channels = 3;
  bool bgr = false;           // tensor channel order B,G,R (OpenCV's own) instead of R,G,B
  bool center_crop = true;    // torchvision Resize(256/224 * size) + CenterCrop, else stretch
  float scale = 255.0f;       // pixel divisor applied first
  std::vector<float> mean;    // one per channel
  std::vector<float> std;
};

// Command-line flags that override the metadata.
struct PreprocessFlags {
  std::optional<std::vector<float>> mean, std;
  std::optional<float> scale;
  bool bgr = false;
};

// `nchw` is the concrete input shape [N, C, H, W] (see concrete_input_shape). Bad metadata or flag
// values that contradict the model (e.g. 3 means for a 1-channel model) are convoy::Errors.
Preprocess make_preprocess(const ModelHeader& model, const std::vector<int64_t>& nchw, const PreprocessFlags& flags);
inline Preprocess make_preprocess(const convoy::Model& model, const std::vector<int64_t>& nchw,
                                  const PreprocessFlags& flags) {
  return make_preprocess(ModelHeader(model), nchw, flags);
}

// Decodes `path` and writes channels * height * width floats to `out`. An unreadable or
// undecodable file is a convoy::Error naming it.
void load_image(const std::string& path, const Preprocess& p, float* out);

}  // namespace convoy::cli
