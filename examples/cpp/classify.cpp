// convoy from C++: run a model on a float32 .npy tensor and print the top-5 classes of each
// row, in the format of `convoy run MODEL --input FILE.npy`.
//
//   classify_cpp MODEL.onnx INPUT.npy
#include <convoy/convoy.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// A little-endian float32 C-order .npy (format 1.0-3.0).
convoy::Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char pre[10];
  if (!f.read(pre, 10) || std::string(pre, 6) != "\x93NUMPY") throw std::runtime_error(path + ": not an .npy file");
  size_t hlen = static_cast<unsigned char>(pre[8]) | static_cast<size_t>(static_cast<unsigned char>(pre[9])) << 8;
  if (pre[6] != 1) {
    char more[2];
    f.read(more, 2);
    hlen |= static_cast<size_t>(static_cast<unsigned char>(more[0])) << 16 |
            static_cast<size_t>(static_cast<unsigned char>(more[1])) << 24;
  }
  std::string header(hlen, '\0');
  f.read(header.data(), static_cast<std::streamsize>(hlen));
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': True") != std::string::npos)
    throw std::runtime_error(path + ": not a float32 C-order array");
  std::vector<int64_t> shape;
  std::istringstream dims(header.substr(header.find("'shape': (") + 10));
  for (int64_t d; dims >> d;) {
    shape.push_back(d);
    if (dims.peek() == ',') dims.ignore();
    if (dims.peek() == ' ') dims.ignore();
  }
  convoy::Tensor t(shape);
  f.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(t.size() * sizeof(float)));
  if (!f) throw std::runtime_error(path + ": truncated");
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " MODEL.onnx INPUT.npy   (convoy " << convoy::version() << ")\n";
    return 2;
  }
  try {
    std::shared_ptr<convoy::Model> model = convoy::Model::load(argv[1]);
    convoy::Session session(model);
    const std::string input_name = model->inputs().at(0).name;
    std::map<std::string, convoy::Tensor> outputs = session.run_named({{input_name, read_npy(argv[2])}});
    const convoy::Tensor& y = outputs.at(model->outputs().at(0).name);

    std::vector<std::string> labels;
    if (auto it = model->metadata().find("convoy.labels"); it != model->metadata().end()) {
      std::istringstream ls(it->second);
      for (std::string l; std::getline(ls, l);) labels.push_back(l);
    }
    const size_t rows = y.shape().size() >= 2 ? static_cast<size_t>(y.shape()[0]) : 1;
    const size_t classes = rows ? y.size() / rows : 0;
    if (labels.size() != classes) labels.clear();
    for (size_t r = 0; r < rows; ++r) {
      const float* v = y.data() + r * classes;
      std::vector<size_t> order(classes);
      std::iota(order.begin(), order.end(), size_t{0});
      const size_t k = std::min<size_t>(5, classes);
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                        [v](size_t a, size_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
      std::printf("%s row %zu\n", argv[2], r);
      for (size_t i = 0; i < k; ++i) {
        const size_t c = order[i];
        const std::string label = labels.empty() ? "class_" + std::to_string(c) : labels[c];
        std::printf("  %zu  %s (%zu)  %.6g\n", i + 1, label.c_str(), c, static_cast<double>(v[c]));
      }
    }
  } catch (const std::exception& e) {  // convoy::Error: "<model>: node '<name>' (<Op>): <reason>"
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
