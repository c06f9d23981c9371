// Shared pieces of the `convoy` command line: the verb table, argument parsing, number parsing
// and the concrete input shape a verb runs a model at.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "convoy/convoy.hpp"
#include "tools/image_input.h"  // HxW, parse_hxw, parse_float(_list), model_name

namespace convoy::cli {

// A mistake in the command line itself: main prints it with the verb's usage and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One verb. main() answers `--help` / `-h` for every verb from `help`, so verbs never see them.
struct Command {
  std::string_view name;
  std::string_view summary;  // one line for `convoy --help`
  std::string_view usage;    // the synopsis, printed after usage errors
  std::string_view help;     // the full `convoy <verb> --help` text, without the synopsis
  int (*run)(const std::vector<std::string>& args);
};
extern const Command kRunCommand;
extern const Command kInspectCommand;
extern const Command kDenseCommand;
extern const Command kConvertCommand;
extern const Command kBenchCommand;
extern const Command kFinetuneCommand;

struct FlagSpec {
  std::string_view name;  // "--top"
  bool takes_value;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string, std::less<>> values;  // last occurrence wins; "" for switches

  bool has(std::string_view flag) const { return values.find(flag) != values.end(); }
  std::optional<std::string> get(std::string_view flag) const;
};

// Accepts "--flag value" and "--flag=value"; "--" ends the flags. Throws UsageError for an
// unknown flag, a missing value, or a value given to a switch.
ParsedArgs parse_args(const std::vector<std::string>& args, std::span<const FlagSpec> flags);

// Strict number parsing for flag values (the whole text must parse, finite, within range);
// throws UsageError naming the flag.
int64_t parse_int_flag(std::string_view flag, const std::string& text, int64_t min, int64_t max);
float parse_float_flag(std::string_view flag, const std::string& text);
std::vector<float> parse_float_list_flag(std::string_view flag, const std::string& text);
// --size HxW when given (`example` shows in the usage error of a malformed value).
std::optional<HxW> parse_size_flag(const ParsedArgs& a, std::string_view example = "224x224");
// The image preprocessing overrides --mean, --std, --scale, --bgr (run, finetune).
PreprocessFlags parse_preprocess_flags(const ParsedArgs& a);

// The concrete shape to run `input` at: a dynamic batch (dim 0) becomes `batch`; for 4-d NCHW
// inputs a dynamic channel dim comes from convoy.channels (default 3) and dynamic H, W from `size`
// or convoy.input_size. A `size` that contradicts static H, W, or a dimension nothing decides, is
// a convoy::Error naming the model and the input.
std::vector<int64_t> concrete_input_shape(const ModelHeader& model, const convoy::TensorInfo& input, int64_t batch,
                                          std::optional<HxW> size);
inline std::vector<int64_t> concrete_input_shape(const convoy::Model& model, const convoy::TensorInfo& input,
                                                 int64_t batch, std::optional<HxW> size) {
  return concrete_input_shape(ModelHeader(model), input, batch, size);
}

// Class labels, one per line (a trailing empty line is ignored, "\r\n" accepted).
std::vector<std::string> split_labels(std::string_view text);
std::vector<std::string> read_labels_file(const std::string& path);

}  // namespace convoy::cli
