#include "tools/cli_common.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tools/npy.h"

namespace convoy::cli {

std::optional<std::string> ParsedArgs::get(std::string_view flag) const {
  auto it = values.find(flag);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

ParsedArgs parse_args(const std::vector<std::string>& args, std::span<const FlagSpec> flags) {
  ParsedArgs out;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_done || a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& f : flags)
      if (f.name == name) spec = &f;
    if (!spec) throw UsageError("unknown option '" + name + "'");
    if (!spec->takes_value) {
      if (eq != std::string::npos) throw UsageError("option '" + name + "' takes no value");
      out.values[name] = "";
    } else if (eq != std::string::npos) {
      out.values[name] = a.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) throw UsageError("option '" + name + "' needs a value");
      out.values[name] = args[++i];
    }
  }
  return out;
}

int64_t parse_int_flag(std::string_view flag, const std::string& text, int64_t min, int64_t max) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty())
    throw UsageError("option '" + std::string(flag) + "': '" + text + "' is not an integer");
  if (v < min || v > max)
    throw UsageError("option '" + std::string(flag) + "': " + text + " is out of range [" + std::to_string(min) + ", " +
                     std::to_string(max) + "]");
  return v;
}

float parse_float_flag(std::string_view flag, const std::string& text) {
  auto v = parse_float(text);
  if (!v) throw UsageError("option '" + std::string(flag) + "': '" + text + "' is not a number");
  return *v;
}

std::vector<float> parse_float_list_flag(std::string_view flag, const std::string& text) {
  auto v = parse_float_list(text);
  if (!v) throw UsageError("option '" + std::string(flag) + "': '" + text + "' is not a comma-separated list of numbers");
  return *v;
}

std::optional<HxW> parse_size_flag(const ParsedArgs& a, std::string_view example) {
  const auto v = a.get("--size");
  if (!v) return std::nullopt;
  const auto size = parse_hxw(*v);
  if (!size) throw UsageError("option '--size': '" + *v + "' is not HxW (e.g. " + std::string(example) + ")");
  return size;
}

PreprocessFlags parse_preprocess_flags(const ParsedArgs& a) {
  PreprocessFlags pre;
  if (auto v = a.get("--mean")) pre.mean = parse_float_list_flag("--mean", *v);
  if (auto v = a.get("--std")) pre.std = parse_float_list_flag("--std", *v);
  if (auto v = a.get("--scale")) pre.scale = parse_float_flag("--scale", *v);
  pre.bgr = a.has("--bgr");
  return pre;
}

std::vector<int64_t> concrete_input_shape(const ModelHeader& model, const convoy::TensorInfo& input, int64_t batch,
                                          std::optional<HxW> size) {
  const std::string where = model_name(model) + ": input '" + input.name + "' " + shape_string(input.shape);
  const auto& meta = model.metadata();
  std::vector<int64_t> shape = input.shape;
  const bool nchw = shape.size() == 4;

  if (nchw) {
    if (!size) {
      if (auto it = meta.find("convoy.input_size"); it != meta.end()) {
        size = parse_hxw(it->second);
        if (!size) throw convoy::Error(model_name(model) + ": metadata convoy.input_size '" + it->second + "' is not HxW");
      }
    }
    if (size && ((shape[2] >= 0 && shape[2] != size->height) || (shape[3] >= 0 && shape[3] != size->width)))
      throw convoy::Error(where + " has a fixed spatial size; " + std::to_string(size->height) + "x" +
                          std::to_string(size->width) + " does not fit it");
    if (shape[1] < 0) {
      shape[1] = 3;
      if (auto it = meta.find("convoy.channels"); it != meta.end()) {
        if (it->second != "1" && it->second != "3")
          throw convoy::Error(model_name(model) + ": metadata convoy.channels '" + it->second + "' is not 1 or 3");
        shape[1] = it->second == "1" ? 1 : 3;
      }
    }
    if (size) {
      shape[2] = size->height;
      shape[3] = size->width;
    }
  }
  if (!shape.empty() && shape[0] < 0) shape[0] = batch;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] >= 0) continue;
    if (nchw && (d == 2 || d == 3))
      throw convoy::Error(where + " has a dynamic spatial size and the model has no convoy.input_size metadata; pass --size HxW");
    throw convoy::Error(where + ": dimension " + std::to_string(d) + " is dynamic and nothing decides it");
  }
  return shape;
}

std::vector<std::string> split_labels(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.emplace_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::vector<std::string> read_labels_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw convoy::Error(path + ": cannot open labels file (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << f.rdbuf();
  return split_labels(ss.view());
}

}  // namespace convoy::cli
