#include "tools/image_codecs.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "convoy/convoy.hpp"

// Set by CMakeLists.txt; the defaults only matter to a build that bypasses it.
#ifndef CONVOY_IMGCODECS_PLUGIN_NAME
#define CONVOY_IMGCODECS_PLUGIN_NAME "libconvoy_imgcodecs.so"
#endif
#ifndef CONVOY_IMGCODECS_BIN_TO_PLUGIN_DIR
#define CONVOY_IMGCODECS_BIN_TO_PLUGIN_DIR "../lib/convoy"
#endif
#ifndef CONVOY_IMGCODECS_INSTALL_DIR
#define CONVOY_IMGCODECS_INSTALL_DIR "/usr/local/lib/convoy"
#endif

namespace convoy::cli {
namespace fs = std::filesystem;
namespace {

// Must match kAbi in tools/imgcodecs_plugin.cpp.
constexpr int kPluginAbi = 1;
constexpr size_t kErrSize = 512;

using AbiFn = int (*)();
using VersionFn = const char* (*)();
using DecodeFn = int (*)(const uint8_t*, size_t, int, cv::Mat*, char*, size_t);
using EncodeFn = int (*)(const cv::Mat*, std::vector<uint8_t>*, char*, size_t);

struct Plugin {
  std::string path;
  DecodeFn decode = nullptr;
  EncodeFn encode = nullptr;
};

// The directory of the executable or shared object this function was linked into: the `convoy`
// executable's, the Python extension's. Empty if the dynamic loader cannot tell.
std::string own_module_dir() {
  Dl_info info;
  link_map* map = nullptr;
  if (!::dladdr1(reinterpret_cast<void*>(&own_module_dir), &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) || !map)
    return "";
  // The main program's link map has an empty name (dladdr's dli_fname is then argv[0], which
  // need not be a path); the kernel knows where the executable is.
  const std::string file = map->l_name[0] ? map->l_name : "/proc/self/exe";
  std::error_code ec;
  fs::path p = fs::canonical(file, ec);
  if (ec) p = fs::absolute(file, ec);
  if (ec) return "";
  return p.parent_path().string();
}

std::vector<std::string> candidates() {
  if (const char* env = std::getenv("CONVOY_IMGCODECS_PLUGIN"); env && *env) return {env};
  std::vector<fs::path> paths;
  if (const std::string dir = own_module_dir(); !dir.empty()) {
    paths.push_back(fs::path(dir) / CONVOY_IMGCODECS_PLUGIN_NAME);
    paths.push_back((fs::path(dir) / CONVOY_IMGCODECS_BIN_TO_PLUGIN_DIR / CONVOY_IMGCODECS_PLUGIN_NAME).lexically_normal());
  }
  paths.push_back(fs::path(CONVOY_IMGCODECS_INSTALL_DIR) / CONVOY_IMGCODECS_PLUGIN_NAME);
  std::vector<std::string> out;
  for (const fs::path& p : paths) {
    bool seen = false;
    for (const std::string& o : out) seen = seen || o == p.string();
    if (!seen) out.push_back(p.string());
  }
  return out;
}

// dlerror()'s text for `path`, which glibc usually starts with the path itself.
std::string failure(const std::string& path, const std::string& why) {
  return why.compare(0, path.size(), path) == 0 ? why : path + ": " + why;
}

std::string dl_error() {
  const char* e = ::dlerror();
  return e ? e : "unknown dynamic loader error";
}

// Opens `path` and checks it is a plugin of this build; "" and `plugin` filled on success,
// else why not.
std::string try_load(const std::string& path, Plugin& plugin) {
  ::dlerror();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return failure(path, dl_error());
  auto sym = [&](const char* name) { return ::dlsym(handle, name); };
  const auto abi = reinterpret_cast<AbiFn>(sym("convoy_imgcodecs_abi"));
  const auto version = reinterpret_cast<VersionFn>(sym("convoy_imgcodecs_opencv_version"));
  const auto decode = reinterpret_cast<DecodeFn>(sym("convoy_imgcodecs_decode"));
  const auto encode = reinterpret_cast<EncodeFn>(sym("convoy_imgcodecs_encode_png"));
  std::string why;
  if (!abi || !version || !decode || !encode)
    why = path + ": not a convoy image codec plugin (missing convoy_imgcodecs_* symbols)";
  else if (abi() != kPluginAbi)
    why = path + ": plugin interface " + std::to_string(abi()) + ", this convoy needs " + std::to_string(kPluginAbi);
  else if (std::strcmp(version(), CV_VERSION) != 0)
    why = path + ": built with OpenCV " + version() + ", this convoy with " + CV_VERSION;
  if (!why.empty()) {
    ::dlclose(handle);
    return why;
  }
  // Never closed: decoded Mats may outlive any scope, and OpenCV's codecs keep global state.
  plugin = {path, decode, encode};
  return "";
}

Plugin load_plugin() {
  std::string tried;
  for (const std::string& path : candidates()) {
    Plugin plugin;
    const std::string why = try_load(path, plugin);
    if (why.empty()) return plugin;
    tried += (tried.empty() ? "" : "; ") + why;
  }
  throw convoy::Error("cannot load the image codec plugin " CONVOY_IMGCODECS_PLUGIN_NAME " (tried " + tried +
                      "); set CONVOY_IMGCODECS_PLUGIN to its full path");
}

// Thread-safe one-time load; a failed load throws and is tried again on the next call.
const Plugin& plugin() {
  static const Plugin p = load_plugin();
  return p;
}

}  // namespace

const std::string& image_codecs_plugin_path() { return plugin().path; }

cv::Mat decode_image(const std::vector<uint8_t>& bytes, ImageRead mode, std::string* decoder_error) {
  const Plugin& p = plugin();
  cv::Mat img;
  char err[kErrSize] = {};
  if (p.decode(bytes.data(), bytes.size(), int(mode), &img, err, sizeof err) != 0) {
    if (decoder_error) *decoder_error = err;
    return cv::Mat();
  }
  return img;
}

std::vector<uint8_t> encode_png(const cv::Mat& image, std::string* encoder_error) {
  const Plugin& p = plugin();
  std::vector<uint8_t> png;
  char err[kErrSize] = {};
  if (p.encode(&image, &png, err, sizeof err) != 0) {
    if (encoder_error) *encoder_error = err;
    png.clear();
  }
  return png;
}

}  // namespace convoy::cli
