// convoy convert: rewrite a model as another ONNX model. --fc-to-conv turns the fully-connected
// head into convolutions with a dynamic HxW input (the same conversion `convoy dense` runs),
// so any ONNX runtime can produce dense score maps.
#include <cstdio>

#include "tools/cli_common.h"
#include "tools/npy.h"

namespace convoy::cli {
namespace {

constexpr FlagSpec kFlags[] = {{"--fc-to-conv", false}};

int convert_main(const std::vector<std::string>& argv) {
  const ParsedArgs a = parse_args(argv, kFlags);
  if (a.positional.size() < 2) throw UsageError(a.positional.empty() ? "missing MODEL and OUT.onnx" : "missing OUT.onnx");
  if (a.positional.size() > 2) throw UsageError("unexpected argument '" + a.positional[2] + "'");
  if (!a.has("--fc-to-conv")) throw UsageError("say which conversion: --fc-to-conv");
  const std::string& in = a.positional[0];
  const std::string& out = a.positional[1];
  convoy::convert_fc_to_conv(in, out);

  // Report what was written, read back as any user of the file would.
  auto model = convoy::Model::load(out);
  std::printf("%s: fully-connected head converted to convolutions\n", out.c_str());
  for (const auto& t : model->inputs()) std::printf("  input  %-16s %s\n", t.name.c_str(), shape_string(t.shape).c_str());
  for (const auto& t : model->outputs()) std::printf("  output %-16s %s\n", t.name.c_str(), shape_string(t.shape).c_str());
  const std::vector<int64_t> size = model->training_size();
  std::printf("  one score-map cell = one %lldx%lld crop; cells %lld pixels apart (convoy.input_size metadata)\n",
              static_cast<long long>(size[0]), static_cast<long long>(size[1]), static_cast<long long>(model->dense_stride()));
  return 0;
}

}  // namespace

const Command kConvertCommand = {
    "convert",
    "rewrite a model as ONNX: --fc-to-conv makes its classifier fully convolutional",
    "convoy convert MODEL OUT.onnx --fc-to-conv",
    "Writes OUT.onnx, a standard ONNX model (same opset) that any ONNX runtime loads:\n"
    "\n"
    "  --fc-to-conv   the fully-connected head (Flatten/Reshape + Gemm or MatMul+Add, ReLU,\n"
    "                 Dropout, Softmax; a global average pool before it) becomes convolutions\n"
    "                 with the same weights, and the input's height and width become dynamic.\n"
    "                 At the training size the output is [N, K, 1, 1] and equals the original's\n"
    "                 [N, K]; on a larger image it is the [N, K, rows, cols] map of crop scores\n"
    "                 (see convoy dense and docs/DENSE.md). convoy.input_size records the\n"
    "                 training size. A head that cannot be converted exactly is an error naming\n"
    "                 the node, and nothing is written.\n"
    "\n"
    "The output file appears whole or not at all (written to a temporary file, then renamed).\n",
    convert_main,
};

}  // namespace convoy::cli
