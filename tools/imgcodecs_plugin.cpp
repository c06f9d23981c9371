// libconvoy_imgcodecs.so: the only convoy code that calls OpenCV's imgcodecs, loaded on first use
// by tools/image_codecs.cpp (why: see tools/image_codecs.h).
//
// The interface is a few extern "C" functions; cv::Mat and std::vector cross it, which is safe
// because the loader and the plugin come from one build and share the process's single
// libopencv_core / libstdc++ (the loader checks kAbi and CV_VERSION before using anything else).
// No exception leaves the plugin: failures come back as a status and a message.
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <stdexcept>
#include <vector>

#include "tools/image_codecs.h"

#define CONVOY_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using convoy::cli::ImageRead;
static_assert(int(ImageRead::kUnchanged) == cv::IMREAD_UNCHANGED);
static_assert(int(ImageRead::kGrayscale) == cv::IMREAD_GRAYSCALE);
static_assert(int(ImageRead::kColor) == cv::IMREAD_COLOR);

// Bumped whenever a function below changes.
constexpr int kAbi = 1;

void copy_message(const char* text, char* err, size_t err_size) {
  if (!err || err_size == 0) return;
  std::strncpy(err, text, err_size - 1);
  err[err_size - 1] = '\0';
}

// Runs `f`; returns 0, or 1 with the exception's text in err (cv::Exception: its err field,
// without OpenCV's file/line decoration).
template <typename F>
int guarded(F&& f, char* err, size_t err_size) {
  try {
    f();
    return 0;
  } catch (const cv::Exception& e) {
    copy_message(e.err.c_str(), err, err_size);
  } catch (const std::exception& e) {
    copy_message(e.what(), err, err_size);
  } catch (...) {
    copy_message("unknown exception in OpenCV", err, err_size);
  }
  return 1;
}

}  // namespace

CONVOY_PLUGIN_EXPORT int convoy_imgcodecs_abi() { return kAbi; }

CONVOY_PLUGIN_EXPORT const char* convoy_imgcodecs_opencv_version() { return CV_VERSION; }

// cv::imdecode(data[0, size), flags) into *out (empty: not an image OpenCV decodes).
CONVOY_PLUGIN_EXPORT int convoy_imgcodecs_decode(const uint8_t* data, size_t size, int flags, cv::Mat* out, char* err,
                                                 size_t err_size) {
  return guarded(
      [&] {
        *out = cv::Mat();
        if (size == 0) return;
        if (size > size_t(INT_MAX)) throw std::length_error("the file is larger than OpenCV decodes (2 GiB)");
        // imdecode only reads the buffer; the Mat header just wraps it.
        const cv::Mat buf(1, int(size), CV_8U, const_cast<uint8_t*>(data));
        *out = cv::imdecode(buf, flags);
      },
      err, err_size);
}

// cv::imencode(".png", *image) into *out; returns 0 with *out empty if OpenCV declined.
CONVOY_PLUGIN_EXPORT int convoy_imgcodecs_encode_png(const cv::Mat* image, std::vector<uint8_t>* out, char* err,
                                                     size_t err_size) {
  return guarded(
      [&] {
        if (!cv::imencode(".png", *image, *out)) out->clear();
      },
      err, err_size);
}
