// Image decoding/encoding through OpenCV's imgcodecs, loaded on first use.
//
// Debian's libopencv_imgcodecs pulls in ~120 shared libraries (GDAL, poppler, HDF5, ...) and
// ~42 MiB of resident memory at start-up. The CLI, the Python module and the training pipeline
// link only opencv_core + imgproc; the codec calls live in a plugin module
// (tools/imgcodecs_plugin.cpp -> libconvoy_imgcodecs.so) that this loader dlopen()s the first
// time an image is decoded or encoded, so `convoy bench`, `run --input x.npy`, `import convoy`
// and Dask workers never map it.
//
// Where the plugin is looked for, in order:
//   1. $CONVOY_IMGCODECS_PLUGIN (a full path; when set, nothing else is tried);
//   2. the directory of the module holding this code (the `convoy` executable's directory, the
//      Python extension's package directory);
//   3. that directory + the relative path from the install bindir to <libdir>/convoy;
//   4. the absolute install path <prefix>/<libdir>/convoy.
// Not found or not loadable: convoy::Error with one line naming every path tried and dlerror().
// The load happens once per process (thread-safe); the plugin is never unloaded.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace convoy::cli {

// cv::ImreadModes values (opencv2/imgcodecs.hpp stays out of everything but the plugin, so a
// direct imdecode call cannot slip back in; the plugin static_asserts that they agree).
enum class ImageRead : int {
  kUnchanged = -1,  // as stored (depth, channels, alpha)
  kGrayscale = 0,   // 8-bit, 1 channel
  kColor = 1,       // 8-bit, 3 channels, BGR
};

// cv::imdecode(bytes, mode). Returns an empty Mat when the bytes are not an image OpenCV can
// decode; if the decoder threw a cv::Exception instead of returning empty, its text goes to
// `decoder_error` (when given). Throws convoy::Error only when the plugin cannot be loaded.
cv::Mat decode_image(const std::vector<uint8_t>& bytes, ImageRead mode, std::string* decoder_error = nullptr);

// cv::imencode(".png", image). Returns the PNG file's bytes, empty if OpenCV cannot encode the
// image (OpenCV's exception text, if it threw, to `encoder_error` when given). Throws
// convoy::Error only when the plugin cannot be loaded.
std::vector<uint8_t> encode_png(const cv::Mat& image, std::string* encoder_error = nullptr);

// Loads the plugin now if it is not loaded yet (convoy::Error as above) and returns its path.
const std::string& image_codecs_plugin_path();

}  // namespace convoy::cli
