/* convoy from C99: run a model on a float32 .npy tensor and print the top-5 classes of each
 * row, in the format of `convoy run MODEL --input FILE.npy`.
 *
 *   classify MODEL.onnx INPUT.npy
 *
 * Build against an installed convoy: see ../CMakeLists.txt (find_package) or ../Makefile
 * (pkg-config). */
#include <convoy/convoy.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a little-endian float32 C-order .npy (format 1.0-3.0) into *data, its shape into dims. */
static int read_npy(const char* path, float** data, int64_t* dims, size_t* rank) {
  FILE* f = fopen(path, "rb");
  unsigned char pre[10];
  char header[4096];
  size_t hlen, count = 1;
  const char* p;
  if (!f) return 0;
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) goto fail;
  if (pre[6] == 1) {
    hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
  } else {
    unsigned char more[2];
    if (fread(more, 1, 2, f) != 2) goto fail;
    hlen = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)more[0] << 16) | ((size_t)more[1] << 24);
  }
  if (hlen >= sizeof header || fread(header, 1, hlen, f) != hlen) goto fail;
  header[hlen] = '\0';
  if (!strstr(header, "'<f4'") || strstr(header, "'fortran_order': True")) goto fail;
  p = strstr(header, "'shape': (");
  if (!p) goto fail;
  p += 10;
  *rank = 0;
  while (*p && *p != ')' && *rank < 8) {
    char* end;
    long long d = strtoll(p, &end, 10);
    if (end == p) break;
    dims[(*rank)++] = d;
    count *= (size_t)d;
    p = end;
    while (*p == ',' || *p == ' ') ++p;
  }
  *data = (float*)malloc(count * sizeof(float) + 1);
  if (!*data || fread(*data, sizeof(float), count, f) != count) goto fail;
  fclose(f);
  return 1;
fail:
  fclose(f);
  return 0;
}

int main(int argc, char** argv) {
  convoy_model* model = NULL;
  convoy_session* session = NULL;
  float* x = NULL;
  float* y = NULL;
  int64_t dims[8], out_dims[8];
  size_t rank = 0, out_rank = 0, rows, classes, r, i, k, n = 1;
  const char* labels;
  char** names = NULL;
  size_t n_names = 0;
  int status = 1;

  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL.onnx INPUT.npy   (convoy %s)\n", argv[0], convoy_version());
    return 2;
  }
  if (convoy_model_load(argv[1], &model) != CONVOY_OK) {
    fprintf(stderr, "%s\n", convoy_last_error());
    return 1;
  }
  if (!read_npy(argv[2], &x, dims, &rank)) {
    fprintf(stderr, "%s: not a float32 C-order .npy file\n", argv[2]);
    goto done;
  }
  if (convoy_session_create(model, NULL, &session) != CONVOY_OK) goto error;
  {
    convoy_input in;
    in.data = x;
    in.shape = dims;
    in.rank = rank;
    if (convoy_session_output_shape(session, &in, 1, 0, out_dims, 8, &out_rank) != CONVOY_OK) goto error;
    for (i = 0; i < out_rank; ++i) n *= (size_t)out_dims[i];
    y = (float*)malloc(n * sizeof(float) + 1);
    if (!y) goto done;
    if (convoy_session_run(session, &in, 1, &y, &n, 1) != CONVOY_OK) goto error;
  }
  /* Labels from the model's convoy.labels metadata (newline separated), if any. */
  labels = convoy_model_metadata(model, "convoy.labels");
  if (labels) {
    const char* s = labels;
    size_t cap = 16;
    names = (char**)malloc(cap * sizeof(char*));
    while (names) {
      const char* e = strchr(s, '\n');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      if (n_names == cap) {
        char** grown = (char**)realloc(names, 2 * cap * sizeof(char*));
        if (!grown) break;
        names = grown;
        cap *= 2;
      }
      names[n_names] = (char*)malloc(len + 1);
      memcpy(names[n_names], s, len);
      names[n_names++][len] = '\0';
      if (!e) break;
      s = e + 1;
    }
  }
  rows = out_rank >= 2 ? (size_t)out_dims[0] : 1;
  classes = rows ? n / rows : 0;
  for (r = 0; r < rows; ++r) {
    const float* v = y + r * classes;
    size_t top = classes < 5 ? classes : 5;
    unsigned char* used = (unsigned char*)calloc(classes + 1, 1);
    printf("%s row %zu\n", argv[2], r);
    for (k = 0; k < top && used; ++k) { /* selection: highest first, ties by lower index */
      size_t best = classes;
      for (i = 0; i < classes; ++i)
        if (!used[i] && (best == classes || v[i] > v[best])) best = i;
      used[best] = 1;
      if (names && n_names == classes)
        printf("  %zu  %s (%zu)  %.6g\n", k + 1, names[best], best, (double)v[best]);
      else
        printf("  %zu  class_%zu (%zu)  %.6g\n", k + 1, best, best, (double)v[best]);
    }
    free(used);
  }
  status = 0;
  goto done;
error:
  fprintf(stderr, "%s\n", convoy_last_error());
done:
  for (i = 0; i < n_names; ++i) free(names[i]);
  free(names);
  free(x);
  free(y);
  convoy_session_free(session);
  convoy_model_free(model);
  return status;
}
