// The C API (include/convoy/convoy.h) over the C++ API: every entry point catches everything at
// the boundary and turns it into a status code plus a per-thread message.
#include "convoy/convoy.h"

#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"

struct convoy_model {
  std::shared_ptr<convoy::Model> model;
};

struct convoy_session {
  std::shared_ptr<convoy::Model> model;  // keeps the model alive after convoy_model_free
  std::unique_ptr<convoy::Session> session;
};

namespace {

thread_local std::string g_last_error;

convoy_status set_error(convoy_status s, const char* message) {
  try {
    g_last_error = message;
  } catch (...) {  // no memory for the message: keep the status
  }
  return s;
}

// Runs `f` (returning void) and maps what it throws.
template <typename F>
convoy_status guarded(F&& f) noexcept {
  try {
    f();
    return CONVOY_OK;
  } catch (const convoy::Error& e) {
    return set_error(CONVOY_ERROR_MODEL, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(CONVOY_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::invalid_argument& e) {  // thrown by this file for bad C arguments
    return set_error(CONVOY_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const std::exception& e) {
    return set_error(CONVOY_ERROR_INTERNAL, e.what());
  } catch (...) {
    return set_error(CONVOY_ERROR_INTERNAL, "unknown exception");
  }
}

convoy_status invalid(const char* message) { return set_error(CONVOY_ERROR_INVALID_ARGUMENT, message); }

convoy_status copy_shape(const std::vector<int64_t>& shape, int64_t* dims, size_t capacity, size_t* rank) {
  if (!rank) return invalid("rank is NULL");
  *rank = shape.size();
  if (shape.size() > capacity) return invalid("dims has room for fewer dimensions than the rank");
  if (!shape.empty() && !dims) return invalid("dims is NULL");
  for (size_t i = 0; i < shape.size(); ++i) dims[i] = shape[i];
  return CONVOY_OK;
}

// The shapes of the C input array; throws std::invalid_argument naming a bad input.
std::vector<std::vector<int64_t>> input_shapes(const convoy_input* inputs, size_t count) {
  if (count > 0 && !inputs) throw std::invalid_argument("inputs is NULL");
  std::vector<std::vector<int64_t>> shapes;
  for (size_t i = 0; i < count; ++i) {
    if (inputs[i].rank > 0 && !inputs[i].shape) throw std::invalid_argument("input #" + std::to_string(i) + ": shape is NULL");
    shapes.emplace_back(inputs[i].shape, inputs[i].shape + inputs[i].rank);
  }
  return shapes;
}

}  // namespace

extern "C" {

#define CONVOY_STR_(x) #x
#define CONVOY_STR(x) CONVOY_STR_(x)
const char* convoy_version(void) {
  return CONVOY_STR(CONVOY_VERSION_MAJOR) "." CONVOY_STR(CONVOY_VERSION_MINOR) "." CONVOY_STR(CONVOY_VERSION_PATCH);
}

const char* convoy_status_name(convoy_status status) {
  switch (status) {
    case CONVOY_OK: return "CONVOY_OK";
    case CONVOY_ERROR_INVALID_ARGUMENT: return "CONVOY_ERROR_INVALID_ARGUMENT";
    case CONVOY_ERROR_MODEL: return "CONVOY_ERROR_MODEL";
    case CONVOY_ERROR_OUT_OF_MEMORY: return "CONVOY_ERROR_OUT_OF_MEMORY";
    case CONVOY_ERROR_INTERNAL: return "CONVOY_ERROR_INTERNAL";
  }
  return "CONVOY_STATUS_UNKNOWN";
}

const char* convoy_last_error(void) { return g_last_error.c_str(); }

convoy_status convoy_model_load(const char* path, convoy_model** out) {
  if (!path) return invalid("path is NULL");
  if (!out) return invalid("out is NULL");
  return guarded([&] {
    auto m = std::make_unique<convoy_model>();
    m->model = convoy::Model::load(path);
    *out = m.release();
  });
}

convoy_status convoy_model_from_bytes(const void* data, size_t size, const char* name, convoy_model** out) {
  if (!data && size > 0) return invalid("data is NULL");
  if (!out) return invalid("out is NULL");
  return guarded([&] {
    auto m = std::make_unique<convoy_model>();
    m->model = convoy::Model::from_bytes(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size),
                                         name ? name : "<memory>");
    *out = m.release();
  });
}

void convoy_model_free(convoy_model* model) { delete model; }

size_t convoy_model_input_count(const convoy_model* model) { return model ? model->model->inputs().size() : 0; }
size_t convoy_model_output_count(const convoy_model* model) { return model ? model->model->outputs().size() : 0; }

const char* convoy_model_input_name(const convoy_model* model, size_t index) {
  if (!model || index >= model->model->inputs().size()) return nullptr;
  return model->model->inputs()[index].name.c_str();
}

const char* convoy_model_output_name(const convoy_model* model, size_t index) {
  if (!model || index >= model->model->outputs().size()) return nullptr;
  return model->model->outputs()[index].name.c_str();
}

convoy_status convoy_model_input_index(const convoy_model* model, const char* name, size_t* index) {
  if (!model || !name || !index) return invalid("model, name or index is NULL");
  const int i = model->model->input_index(name);
  if (i < 0)
    return guarded([&] { throw convoy::Error(model->model->path() + ": the model has no input '" + name + "'"); });
  *index = static_cast<size_t>(i);
  return CONVOY_OK;
}

convoy_status convoy_model_output_index(const convoy_model* model, const char* name, size_t* index) {
  if (!model || !name || !index) return invalid("model, name or index is NULL");
  const int i = model->model->output_index(name);
  if (i < 0)
    return guarded([&] { throw convoy::Error(model->model->path() + ": the model has no output '" + name + "'"); });
  *index = static_cast<size_t>(i);
  return CONVOY_OK;
}

convoy_status convoy_model_input_shape(const convoy_model* model, size_t index, int64_t* dims, size_t capacity,
                                       size_t* rank) {
  if (!model) return invalid("model is NULL");
  if (index >= model->model->inputs().size()) return invalid("input index out of range");
  return copy_shape(model->model->inputs()[index].shape, dims, capacity, rank);
}

convoy_status convoy_model_output_shape(const convoy_model* model, size_t index, int64_t* dims, size_t capacity,
                                        size_t* rank) {
  if (!model) return invalid("model is NULL");
  if (index >= model->model->outputs().size()) return invalid("output index out of range");
  return copy_shape(model->model->outputs()[index].shape, dims, capacity, rank);
}

const char* convoy_model_metadata(const convoy_model* model, const char* key) {
  if (!model || !key) return nullptr;
  const auto& md = model->model->metadata();
  auto it = md.find(key);
  return it == md.end() ? nullptr : it->second.c_str();
}

int64_t convoy_model_opset(const convoy_model* model) { return model ? model->model->opset() : 0; }

void convoy_session_options_init(convoy_session_options* options) {
  if (!options) return;
  options->threads = 0;
  options->max_memory = 0;
}

convoy_status convoy_session_create(const convoy_model* model, const convoy_session_options* options,
                                    convoy_session** out) {
  if (!model) return invalid("model is NULL");
  if (!out) return invalid("out is NULL");
  convoy::SessionOptions o;
  if (options) {
    o.threads = options->threads;
    o.max_memory = options->max_memory;
  }
  return guarded([&] {
    auto s = std::make_unique<convoy_session>();
    s->model = model->model;
    s->session = std::make_unique<convoy::Session>(s->model, o);
    *out = s.release();
  });
}

void convoy_session_free(convoy_session* session) { delete session; }

convoy_status convoy_session_output_shape(convoy_session* session, const convoy_input* inputs, size_t input_count,
                                          size_t index, int64_t* dims, size_t capacity, size_t* rank) {
  if (!session) return invalid("session is NULL");
  std::vector<std::vector<int64_t>> outs;
  convoy_status s = guarded([&] { outs = session->session->output_shapes(input_shapes(inputs, input_count)); });
  if (s != CONVOY_OK) return s;
  if (index >= outs.size()) return invalid("output index out of range");
  return copy_shape(outs[index], dims, capacity, rank);
}

convoy_status convoy_session_run(convoy_session* session, const convoy_input* inputs, size_t input_count,
                                 float* const* outputs, const size_t* capacities, size_t output_count) {
  if (!session) return invalid("session is NULL");
  if (output_count > 0 && (!outputs || !capacities)) return invalid("outputs or capacities is NULL");
  return guarded([&] {
    const std::vector<std::vector<int64_t>> shapes = input_shapes(inputs, input_count);
    std::vector<std::span<const float>> in;
    for (size_t i = 0; i < input_count; ++i) {
      size_t n = 1;
      for (int64_t d : shapes[i]) n = d > 0 ? n * static_cast<size_t>(d) : 0;
      if (!inputs[i].data && n > 0) throw std::invalid_argument("input #" + std::to_string(i) + ": data is NULL");
      in.emplace_back(inputs[i].data, n);
    }
    // The plan for these shapes (built once, then a cache lookup) gives the sizes to check.
    const std::vector<std::vector<int64_t>> out_shapes = session->session->output_shapes(shapes);
    if (output_count != out_shapes.size())
      throw std::invalid_argument("the model has " + std::to_string(out_shapes.size()) + " outputs, got " +
                                  std::to_string(output_count) + " output buffers");
    std::vector<std::span<float>> out;
    for (size_t i = 0; i < output_count; ++i) {
      if (!outputs[i]) throw std::invalid_argument("output #" + std::to_string(i) + ": buffer is NULL");
      size_t need = 1;
      for (int64_t d : out_shapes[i]) need *= static_cast<size_t>(d);  // planned shapes: checked, positive
      if (capacities[i] < need)
        throw std::invalid_argument("output #" + std::to_string(i) + " needs " + std::to_string(need) +
                                    " floats, its buffer holds " + std::to_string(capacities[i]));
      out.emplace_back(outputs[i], capacities[i]);
    }
    session->session->run(in, shapes, out);
  });
}

}  // extern "C"
