// convoy._core: pybind11 over the public C++ API (include/convoy/convoy.hpp) and the CLI's image
// preprocessing (tools/image_input.h), so Python and `convoy run` share one path from file to
// logits. The Python-facing classes (InferenceSession, NodeArg) live in convoy/__init__.py.
//
// Threads: a Session runs one call at a time, so _core.Session keeps a small pool of
// convoy::Sessions over one shared Model (packed weights are held once per Model): concurrent
// run() calls from Python threads each take an idle one (or create one), with the GIL released
// while the plan runs. Inputs that are C-contiguous, aligned, native float32 are read in place.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>

#include "convoy/convoy.hpp"
#include "tools/cli_common.h"
#include "tools/image_codecs.h"
#include "tools/image_input.h"
#include "tools/npy.h"

namespace py = pybind11;

namespace convoy::python {
namespace {

using Shape = std::vector<int64_t>;

std::string quoted_names(const std::vector<convoy::TensorInfo>& infos) {
  std::string s;
  for (const auto& t : infos) s += (s.empty() ? "'" : ", '") + t.name + "'";
  return s.empty() ? "none" : s;
}

// Whether `have` fits the declared shape (-1 matches any size); the same rule as `convoy run --input`.
bool shape_fits(const Shape& declared, const Shape& have) {
  if (declared.size() != have.size()) return false;
  for (size_t i = 0; i < have.size(); ++i)
    if (declared[i] >= 0 && declared[i] != have[i]) return false;
  return true;
}

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// A convoy::Session borrowed from the pool for one run; returned on every path out.
class SessionPool {
 public:
  SessionPool(std::shared_ptr<const convoy::Model> model, int threads) : model_(std::move(model)), threads_(threads) {
    idle_.push_back(std::make_unique<convoy::Session>(model_, convoy::SessionOptions{.threads = threads_}));
    resolved_threads_ = idle_.back()->threads();
  }

  class Lease {
   public:
    Lease(SessionPool& pool, std::unique_ptr<convoy::Session> s) : pool_(pool), s_(std::move(s)) {}
    ~Lease() { pool_.put_back(std::move(s_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    convoy::Session& operator*() { return *s_; }
    convoy::Session* operator->() { return s_.get(); }

   private:
    SessionPool& pool_;
    std::unique_ptr<convoy::Session> s_;
  };

  // Call without the GIL: creating a session starts its thread pool.
  std::unique_ptr<Lease> take() {
    std::unique_ptr<convoy::Session> s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        s = std::move(idle_.back());
        idle_.pop_back();
      } else {
        ++created_;
      }
    }
    if (!s) s = std::make_unique<convoy::Session>(model_, convoy::SessionOptions{.threads = threads_});
    return std::make_unique<Lease>(*this, std::move(s));
  }

  int threads() const { return resolved_threads_; }
  size_t sessions_created() const {
    std::lock_guard<std::mutex> lock(mu_);
    return created_;
  }

 private:
  void put_back(std::unique_ptr<convoy::Session> s) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(s));
  }

  std::shared_ptr<const convoy::Model> model_;
  int threads_;
  int resolved_threads_ = 0;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<convoy::Session>> idle_;
  size_t created_ = 1;
};

class PySession {
 public:
  PySession(std::shared_ptr<const convoy::Model> model, int threads) : model_(model), pool_(std::move(model), threads) {}

  const convoy::Model& model() const { return *model_; }
  std::shared_ptr<const convoy::Model> model_ptr() const { return model_; }
  int threads() const { return pool_.threads(); }
  size_t input_copies() const { return input_copies_.load(); }
  size_t sessions() const { return pool_.sessions_created(); }

  py::list run(const py::object& output_names, const py::object& feeds_obj) {
    const std::string name = convoy::cli::model_name(*model_);
    const auto& ins = model_->inputs();
    const auto& outs = model_->outputs();

    // Which outputs to return, in the order asked for.
    std::vector<size_t> wanted;
    if (output_names.is_none()) {
      for (size_t i = 0; i < outs.size(); ++i) wanted.push_back(i);
    } else {
      if (py::isinstance<py::str>(output_names))
        throw convoy::Error(name + ": output_names must be a list of output names or None, not a string");
      for (const py::handle h : output_names) {
        if (!py::isinstance<py::str>(h)) throw convoy::Error(name + ": output names must be strings");
        const std::string out_name = h.cast<std::string>();
        const int idx = model_->output_index(out_name);
        if (idx < 0)
          throw convoy::Error(name + ": unknown output '" + out_name + "'; the model's outputs are " + quoted_names(outs));
        wanted.push_back(size_t(idx));
      }
    }

    // Inputs by name: every model input exactly once, float32 of a fitting shape.
    if (!py::isinstance<py::dict>(feeds_obj))
      throw convoy::Error(name + ": input_feed must be a dict {input name: numpy.ndarray}");
    const py::dict feeds = feeds_obj.cast<py::dict>();
    std::vector<py::array> arrays(ins.size());
    std::vector<bool> given(ins.size(), false);
    for (const auto& kv : feeds) {
      if (!py::isinstance<py::str>(kv.first)) throw convoy::Error(name + ": input names must be strings");
      const std::string in_name = kv.first.cast<std::string>();
      const int idx = model_->input_index(in_name);
      if (idx < 0) throw convoy::Error(name + ": unknown input '" + in_name + "'; the model's inputs are " + quoted_names(ins));
      const convoy::TensorInfo& info = ins[size_t(idx)];
      if (!py::isinstance<py::array>(kv.second))
        throw convoy::Error(name + ": input '" + in_name + "' must be a numpy.ndarray of float32, got " +
                            py::str(py::type::of(kv.second).attr("__name__")).cast<std::string>());
      py::array a = kv.second.cast<py::array>();
      if (a.dtype().kind() != 'f' || a.dtype().itemsize() != 4)
        throw convoy::Error(name + ": input '" + in_name + "' expects float32, got a " + dtype_name(a) +
                            " array; convert it with .astype(numpy.float32)");
      const Shape shape(a.shape(), a.shape() + a.ndim());
      if (!shape_fits(info.shape, shape))
        throw convoy::Error(name + ": input '" + in_name + "' expects shape " + convoy::cli::shape_string(info.shape) + " (" +
                            info.dtype + "), got " + convoy::cli::shape_string(shape));
      // Transposed views, strided slices, unaligned or byte-swapped data: one copy in C order.
      const bool in_place = py::isinstance<py::array_t<float, py::array::c_style>>(a) &&
                            (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_);
      if (!in_place) {
        a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
        if (!a) throw py::error_already_set();
        ++input_copies_;
      }
      arrays[size_t(idx)] = std::move(a);
      given[size_t(idx)] = true;
    }
    for (size_t i = 0; i < ins.size(); ++i)
      if (!given[i]) throw convoy::Error(name + ": input '" + ins[i].name + "' is missing from input_feed");

    std::vector<Shape> in_shapes;
    std::vector<std::span<const float>> in_spans;
    for (const py::array& a : arrays) {
      in_shapes.emplace_back(a.shape(), a.shape() + a.ndim());
      in_spans.emplace_back(static_cast<const float*>(a.data()), size_t(a.size()));
    }

    // Plan (cached per shape) without the GIL, outputs allocated as numpy arrays with it, then the
    // run itself without it again: results are written straight into the returned arrays.
    std::unique_ptr<SessionPool::Lease> lease;
    std::vector<Shape> out_shapes;
    {
      py::gil_scoped_release nogil;
      lease = pool_.take();
      out_shapes = (*lease)->output_shapes(in_shapes);
    }
    std::vector<py::array_t<float>> results;
    std::vector<std::span<float>> out_spans;
    for (const Shape& s : out_shapes) {
      results.emplace_back(std::vector<py::ssize_t>(s.begin(), s.end()));
      out_spans.emplace_back(results.back().mutable_data(), size_t(results.back().size()));
    }
    {
      py::gil_scoped_release nogil;
      (*lease)->run(in_spans, in_shapes, out_spans);
      lease.reset();
    }
    py::list r;
    for (size_t i : wanted) r.append(results[i]);
    return r;
  }

 private:
  std::shared_ptr<const convoy::Model> model_;
  SessionPool pool_;
  std::atomic<size_t> input_copies_{0};
};

// load_image() redirects file descriptor 2 while OpenCV decodes (to quote libpng's complaint in
// the error): process-wide state, so decodes from several Python threads take turns.
std::mutex g_decode_mutex;

py::object preprocess(const convoy::Model& model, const std::vector<std::string>& paths,
                      std::optional<std::pair<int64_t, int64_t>> size, std::optional<std::vector<float>> mean,
                      std::optional<std::vector<float>> std_, std::optional<float> scale, bool bgr, bool collect_errors) {
  const std::string name = convoy::cli::model_name(model);
  if (model.inputs().size() != 1)
    throw convoy::Error(name + ": the model has " + std::to_string(model.inputs().size()) +
                        " inputs; images feed single-input models");
  const convoy::TensorInfo& in = model.inputs()[0];
  if (in.dtype != "float32") throw convoy::Error(name + ": input '" + in.name + "' has dtype " + in.dtype + "; images feed float32");
  std::optional<convoy::cli::HxW> hxw;
  if (size) {
    if (size->first <= 0 || size->second <= 0) throw convoy::Error(name + ": size must be two positive integers (height, width)");
    hxw = convoy::cli::HxW{size->first, size->second};
  }
  const int64_t n = int64_t(paths.size());
  // The same shape rule as `convoy run IMAGE...` (a batch of one row when there are no paths).
  Shape shape = convoy::cli::concrete_input_shape(model, in, std::max<int64_t>(n, 1), hxw);
  shape[0] = n;
  const convoy::cli::PreprocessFlags flags{.mean = std::move(mean), .std = std::move(std_), .scale = scale, .bgr = bgr};
  const convoy::cli::Preprocess p = convoy::cli::make_preprocess(model, shape, flags);

  py::array_t<float> x(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  float* data = x.mutable_data();
  const size_t per_image = size_t(shape[1] * shape[2] * shape[3]);
  std::vector<std::optional<std::string>> errors(paths.size());
  {
    py::gil_scoped_release nogil;
    for (size_t i = 0; i < paths.size(); ++i) {
      float* row = data + i * per_image;
      try {
        std::lock_guard<std::mutex> lock(g_decode_mutex);
        convoy::cli::load_image(paths[i], p, row);
      } catch (const std::exception& e) {
        if (!collect_errors) throw;
        std::memset(row, 0, per_image * sizeof(float));
        errors[i] = e.what();
      }
    }
  }
  if (!collect_errors) return x;
  py::list errs;
  for (auto& e : errors) errs.append(e ? py::object(py::str(*e)) : py::object(py::none()));
  return py::make_tuple(std::move(x), errs);
}

// Dense scoring inputs, as `convoy dense MODEL IMAGE` makes them (tools/cmd_dense.cpp): the
// image's size first, then the image stretched to each scale's h x w with the model's
// normalisation and never centre-cropped.
std::pair<int64_t, int64_t> image_size(const std::string& path) {
  py::gil_scoped_release nogil;
  std::lock_guard<std::mutex> lock(g_decode_mutex);
  {
    // load_image reports unreadable or undecodable files in the CLI's words.
    convoy::cli::Preprocess probe_p;
    probe_p.height = probe_p.width = 1;
    probe_p.mean = {0.f, 0.f, 0.f};
    probe_p.std = {1.f, 1.f, 1.f};
    float sink[3];
    convoy::cli::load_image(path, probe_p, sink);
  }
  std::ifstream f(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const cv::Mat probe = convoy::cli::decode_image(bytes, convoy::cli::ImageRead::kUnchanged);
  if (probe.empty()) throw convoy::Error(path + ": cannot decode image");
  return {probe.rows, probe.cols};
}

py::array_t<float> dense_input(const convoy::Model& model, const std::string& path, int64_t h, int64_t w) {
  const std::string name = convoy::cli::model_name(model);
  if (model.inputs().size() != 1)
    throw convoy::Error(name + ": dense scoring needs a model with one image input and a score output");
  const convoy::TensorInfo& in = model.inputs()[0];
  if (in.dtype != "float32" || in.shape.size() != 4)
    throw convoy::Error(name + ": input '" + in.name + "' " + convoy::cli::shape_string(in.shape) + " (" + in.dtype +
                        ") is not a float32 NCHW image");
  if (h <= 0 || w <= 0) throw convoy::Error(name + ": size must be two positive integers (height, width)");
  const Shape shape = convoy::cli::concrete_input_shape(model, in, 1, convoy::cli::HxW{h, w});
  convoy::cli::Preprocess p = convoy::cli::make_preprocess(model, shape, {});
  p.center_crop = false;  // dense scoring sees the whole image: stretch to h x w, never crop
  py::array_t<float> x(std::vector<py::ssize_t>{1, py::ssize_t(shape[1]), py::ssize_t(h), py::ssize_t(w)});
  float* data = x.mutable_data();
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(g_decode_mutex);
    convoy::cli::load_image(path, p, data);
  }
  return x;
}

}  // namespace
}  // namespace convoy::python

PYBIND11_MODULE(_core, m) {
  using namespace convoy::python;
  m.doc() = "convoy native module (use the `convoy` package)";
  py::register_exception<convoy::Error>(m, "Error", PyExc_RuntimeError);
  // .npy and usage errors from the shared CLI helpers are convoy errors too.
  py::register_exception<convoy::cli::NpyError>(m, "_NpyError", m.attr("Error"));
  py::register_exception<convoy::cli::UsageError>(m, "_UsageError", m.attr("Error"));

  m.def("version", &convoy::version);

  py::class_<convoy::TensorInfo>(m, "TensorInfo")
      .def_readonly("name", &convoy::TensorInfo::name)
      .def_readonly("shape", &convoy::TensorInfo::shape)
      .def_readonly("dtype", &convoy::TensorInfo::dtype)
      .def("__repr__", [](const convoy::TensorInfo& t) {
        return "TensorInfo(name='" + t.name + "', shape=" + convoy::cli::shape_string(t.shape) + ", dtype=" + t.dtype + ")";
      });

  py::class_<convoy::Model, std::shared_ptr<convoy::Model>>(m, "Model")
      .def_static(
          "load",
          [](const std::string& path, bool optimize, bool fc_to_conv) {
            py::gil_scoped_release nogil;
            return convoy::Model::load(path, {.optimize = optimize, .fc_to_conv = fc_to_conv});
          },
          py::arg("path"), py::arg("optimize") = true, py::arg("fc_to_conv") = false)
      .def_static(
          "from_bytes",
          [](const py::bytes& b, const std::string& name, bool optimize, bool fc_to_conv) {
            const std::string_view v = b;
            const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(v.data()), v.size());
            py::gil_scoped_release nogil;
            return convoy::Model::from_bytes(bytes, name, {.optimize = optimize, .fc_to_conv = fc_to_conv});
          },
          py::arg("data"), py::arg("name") = "<memory>", py::arg("optimize") = true, py::arg("fc_to_conv") = false)
      .def_property_readonly("path", &convoy::Model::path)
      .def_property_readonly("inputs", &convoy::Model::inputs)
      .def_property_readonly("outputs", &convoy::Model::outputs)
      .def_property_readonly("metadata", &convoy::Model::metadata)
      .def_property_readonly("opset", &convoy::Model::opset)
      .def_property_readonly("producer", &convoy::Model::producer)
      .def_property_readonly("parameter_count", &convoy::Model::parameter_count)
      .def_property_readonly("node_count", &convoy::Model::node_count)
      .def_property_readonly("training_size", &convoy::Model::training_size,
                             "[H, W] of one crop (one score-map cell) for dense scoring")
      .def_property_readonly("dense_stride", &convoy::Model::dense_stride, "total stride of the conv/pool stack");

  py::class_<PySession>(m, "Session")
      .def(py::init([](std::shared_ptr<convoy::Model> model, int threads) {
             if (!model) throw convoy::Error("Session: no model");
             if (threads < 0) throw convoy::Error("Session: threads must be >= 0, got " + std::to_string(threads));
             py::gil_scoped_release nogil;
             return std::make_unique<PySession>(std::move(model), threads);
           }),
           py::arg("model"), py::arg("threads") = 0)
      .def_property_readonly("model", &PySession::model_ptr)
      .def_property_readonly("threads", &PySession::threads)
      .def_property_readonly("input_copies", &PySession::input_copies,
                             "inputs copied so far because they were not C-contiguous aligned float32")
      .def_property_readonly("sessions", &PySession::sessions, "C++ sessions created for concurrent calls")
      .def("run", &PySession::run, py::arg("output_names"), py::arg("input_feed"));

  m.def("preprocess", &preprocess, py::arg("model"), py::arg("paths"), py::arg("size") = py::none(),
        py::arg("mean") = py::none(), py::arg("std") = py::none(), py::arg("scale") = py::none(), py::arg("bgr") = false,
        py::arg("collect_errors") = false);
  m.def("image_size", &image_size, py::arg("path"), "(height, width) of an image file, as `convoy dense` reads it");
  m.def("dense_input", &dense_input, py::arg("model"), py::arg("path"), py::arg("height"), py::arg("width"),
        "[1, C, height, width] float32: the image stretched to height x width and normalised, as `convoy dense`");
}
