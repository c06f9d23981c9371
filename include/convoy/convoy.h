/* convoy C API (C99): load an ONNX model once, run it from sessions.
 *
 *   convoy_model* model = NULL;
 *   if (convoy_model_load("model.onnx", &model) != CONVOY_OK) {
 *     fprintf(stderr, "%s\n", convoy_last_error());
 *     return 1;
 *   }
 *   convoy_session* session = NULL;
 *   convoy_session_create(model, NULL, &session);            (NULL options: defaults)
 *   const int64_t shape[4] = {1, 3, 224, 224};
 *   convoy_input in = {pixels, shape, 4};
 *   float scores[1000];
 *   float* outs[1] = {scores};
 *   size_t caps[1] = {1000};
 *   convoy_session_run(session, &in, 1, outs, caps, 1);
 *   convoy_session_free(session);
 *   convoy_model_free(model);
 *
 * Errors: every function that can fail returns a convoy_status; on failure the message
 * ("<model>: node '<name>' (<Op>): <reason>") is kept per thread and returned by
 * convoy_last_error() until the next failing call in that thread. No C++ exception crosses
 * this API. Out-parameters are left untouched on failure.
 *
 * Threads: a model may be shared by any number of sessions and threads (its packed weights
 * are held once). A session runs one call at a time; a second concurrent run on the same
 * session fails with CONVOY_ERROR_MODEL ("use one session per thread"). Handles may be freed
 * in any order: a session keeps its model alive.
 */
#ifndef CONVOY_CONVOY_H_
#define CONVOY_CONVOY_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CONVOY_C_API __attribute__((visibility("default")))
#else
#define CONVOY_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CONVOY_VERSION_MAJOR 0
#define CONVOY_VERSION_MINOR 1
#define CONVOY_VERSION_PATCH 0

typedef enum convoy_status {
  CONVOY_OK = 0,
  CONVOY_ERROR_INVALID_ARGUMENT = 1, /* null handle/pointer, index out of range, buffer too small */
  CONVOY_ERROR_MODEL = 2,            /* the model, an input or a plan was refused (load, validation,
                                        planning, memory cap, session busy): see the message */
  CONVOY_ERROR_OUT_OF_MEMORY = 3,    /* an allocation failed */
  CONVOY_ERROR_INTERNAL = 4          /* anything else (a bug: please report the message) */
} convoy_status;

typedef struct convoy_model convoy_model;     /* immutable after load; thread-safe */
typedef struct convoy_session convoy_session; /* one run at a time */

/* Library version, e.g. "0.1.0" (static storage). */
CONVOY_C_API const char* convoy_version(void);
/* Short name of a status code, e.g. "CONVOY_ERROR_MODEL" (static storage). */
CONVOY_C_API const char* convoy_status_name(convoy_status status);
/* Message of the last failed call in this thread; "" when none failed yet. Valid until the next
 * failing call in this thread. */
CONVOY_C_API const char* convoy_last_error(void);

/* ---- models ---- */
CONVOY_C_API convoy_status convoy_model_load(const char* path, convoy_model** out);
/* `name` (may be NULL) is used in messages; external data is refused for in-memory models. */
CONVOY_C_API convoy_status convoy_model_from_bytes(const void* data, size_t size, const char* name,
                                                   convoy_model** out);
CONVOY_C_API void convoy_model_free(convoy_model* model); /* NULL is a no-op */

CONVOY_C_API size_t convoy_model_input_count(const convoy_model* model);
CONVOY_C_API size_t convoy_model_output_count(const convoy_model* model);
/* NULL when the index is out of range. Strings live as long as the model. */
CONVOY_C_API const char* convoy_model_input_name(const convoy_model* model, size_t index);
CONVOY_C_API const char* convoy_model_output_name(const convoy_model* model, size_t index);
/* Index of a named input/output, in *index. */
CONVOY_C_API convoy_status convoy_model_input_index(const convoy_model* model, const char* name, size_t* index);
CONVOY_C_API convoy_status convoy_model_output_index(const convoy_model* model, const char* name, size_t* index);
/* Declared shape (-1 for a dynamic dimension): the rank goes to *rank, the dimensions to
 * dims[0..rank) when capacity >= rank (else CONVOY_ERROR_INVALID_ARGUMENT, *rank still set). */
CONVOY_C_API convoy_status convoy_model_input_shape(const convoy_model* model, size_t index, int64_t* dims,
                                                    size_t capacity, size_t* rank);
CONVOY_C_API convoy_status convoy_model_output_shape(const convoy_model* model, size_t index, int64_t* dims,
                                                     size_t capacity, size_t* rank);
/* ONNX metadata_props value for `key` (e.g. "convoy.labels"); NULL when absent. Lives as long as
 * the model. */
CONVOY_C_API const char* convoy_model_metadata(const convoy_model* model, const char* key);
CONVOY_C_API int64_t convoy_model_opset(const convoy_model* model);

/* ---- sessions ---- */
typedef struct convoy_session_options {
  int threads;       /* worker threads; 0: all hardware threads */
  size_t max_memory; /* bytes; 0: no cap. A plan whose arena + weights exceed it is refused */
} convoy_session_options;

/* Fills the defaults (threads 0, max_memory 0). */
CONVOY_C_API void convoy_session_options_init(convoy_session_options* options);
/* `options` may be NULL (defaults). */
CONVOY_C_API convoy_status convoy_session_create(const convoy_model* model, const convoy_session_options* options,
                                                 convoy_session** out);
CONVOY_C_API void convoy_session_free(convoy_session* session); /* NULL is a no-op */

/* One input: `data` holds product(shape[0..rank)) floats, C order. */
typedef struct convoy_input {
  const float* data;
  const int64_t* shape;
  size_t rank;
} convoy_input;

/* Shape of output `index` for these inputs (builds and caches the plan); same rules as
 * convoy_model_input_shape for dims/capacity/rank. */
CONVOY_C_API convoy_status convoy_session_output_shape(convoy_session* session, const convoy_input* inputs,
                                                       size_t input_count, size_t index, int64_t* dims,
                                                       size_t capacity, size_t* rank);
/* Runs the model: inputs in the model's input order; outputs[i] receives output i and holds
 * capacities[i] floats (at least the output's element count). */
CONVOY_C_API convoy_status convoy_session_run(convoy_session* session, const convoy_input* inputs,
                                              size_t input_count, float* const* outputs,
                                              const size_t* capacities, size_t output_count);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CONVOY_CONVOY_H_ */
