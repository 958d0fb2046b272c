/*===- embed_static.c - A femc kernel linked into a C program --------------===*
 *
 *   embed_static [B T [seed [out.f32]]]
 *
 * Links the object femc wrote for examples/softmax_fem.mlir (softmax_fem.o,
 * with its header softmax_fem.h) and libfemrt.a into one executable: no
 * dlopen, no shared library. Fills q, k, v, beta_raw, lam and gate from a
 * 64-bit LCG (so any other program can make the same inputs), then runs the
 * kernel twice:
 *
 *  1. through libfemrt: femrt_module_create_static(ctx,
 *     femc_softmax_fem_library(), ...) and femrt_kernel_launch on DLTensors,
 *     the workgroups spread over the context's thread pool;
 *  2. through the serial entry point femc wrote, softmax_fem(&q, ..., &out,
 *     err, len), on femrt_memref descriptors, on this thread alone.
 *
 * Workgroups are independent, so both must give the same bits. Prints the
 * checksum (sum of out, as %.6e) and writes out as raw float32 to out.f32
 * when given. Exit status 0 when both paths ran, agree exactly and the
 * output is finite; 1 otherwise; 2 on a usage error.
 *
 * The inputs, element by element in row-major order from one LCG stream
 * (state = state * 6364136223846793005 + 1442695040888963407, starting at
 * the seed; u = (state >> 40) / 2^24, drawn after each step):
 *   q, k, v: 4u - 2;  beta_raw: 3u - 1;  lam, gate: 2u - 1.
 *===----------------------------------------------------------------------===*/
#include "femrt/femrt.h"
#include "softmax_fem.h" /* written by femc next to softmax_fem.o */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { H = 8, DK = 64, DV = 64, E = H * DV, NUM_ARGS = 7 };

static uint64_t lcgState;

/* The next uniform number in [0, 1), with 24 random bits (exact as float). */
static double lcgNext(void) {
  lcgState = lcgState * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(lcgState >> 40) / 16777216.0;
}

static void fill(float *x, int64_t n, double scale, double shift) {
  int64_t i;
  for (i = 0; i < n; ++i)
    x[i] = (float)(scale * lcgNext() + shift);
}

static int64_t parseCount(const char *text, const char *what) {
  char *end = NULL;
  long long value;
  errno = 0;
  value = strtoll(text, &end, 10);
  if (end == text || *end || value < 0 || errno == ERANGE) {
    fprintf(stderr,
            "embed_static: %s must be a count from 0 to %lld, got '%s'\n", what,
            (long long)INT64_MAX, text);
    exit(2);
  }
  return value;
}

/* The LCG's seed: any 64-bit unsigned value. strtoll saturated every seed
 * from 2^63 up to 2^63 - 1 (all of them made the same inputs). */
static uint64_t parseSeed(const char *text) {
  char *end = NULL;
  unsigned long long value;
  errno = 0;
  value = strtoull(text, &end, 10);
  if (end == text || *end || errno == ERANGE || strchr(text, '-')) {
    fprintf(stderr,
            "embed_static: seed must be a whole number from 0 to %llu, "
            "got '%s'\n",
            (unsigned long long)UINT64_MAX, text);
    exit(2);
  }
  return (uint64_t)value;
}

/* A compact row-major femrt_memref over `data` (what the serial entry point
 * takes: MLIR's strided memref descriptor). */
static femrt_memref memref(float *data, int rank, const int64_t *shape) {
  femrt_memref m;
  int64_t stride = 1;
  int d;
  memset(&m, 0, sizeof m);
  m.allocated = data;
  m.aligned = data;
  m.offset = 0;
  for (d = rank - 1; d >= 0; --d) {
    m.dims[d] = shape[d];
    m.dims[rank + d] = stride;
    stride *= shape[d];
  }
  return m;
}

int main(int argc, char **argv) {
  int64_t B = 2, T = 100;
  uint64_t seed = 1;
  const char *outPath = NULL;
  femrt_context *context = NULL;
  femrt_module *module = NULL;
  femrt_kernel *kernel = NULL;
  float *buffers[NUM_ARGS] = {0}, *serialOut = NULL;
  int exitCode = 1, a, finite = 1;
  int64_t i, tokens, elements[NUM_ARGS];
  double checksum = 0.0;

  if (argc != 1 && argc != 3 && argc != 4 && argc != 5) {
    fprintf(stderr, "usage: %s [B T [seed [out.f32]]]\n", argv[0]);
    return 2;
  }
  if (argc >= 3) {
    B = parseCount(argv[1], "B");
    T = parseCount(argv[2], "T");
  }
  if (argc >= 4)
    seed = parseSeed(argv[3]);
  if (argc == 5)
    outPath = argv[4];

  /* Shapes in the kernel's argument order: q k v beta_raw lam gate out. */
  int64_t tokenShape[4] = {B, T, H, DK}, betaShape[1] = {E};
  const int64_t *shapes[NUM_ARGS] = {tokenShape, tokenShape, tokenShape,
                                     betaShape,  tokenShape, tokenShape,
                                     tokenShape};
  const int ranks[NUM_ARGS] = {4, 4, 4, 1, 4, 4, 4};
  /* B * T * H * DK floats per tensor, and its bytes, must not overflow. */
  if (T != 0 && B > (int64_t)(SIZE_MAX / sizeof(float) / H / DK) / T) {
    fprintf(stderr,
            "embed_static: B = %lld and T = %lld make tensors of more than "
            "%zu bytes\n",
            (long long)B, (long long)T, (size_t)SIZE_MAX);
    return 2;
  }
  tokens = B * T * H * DK; /* DK == DV */
  for (a = 0; a < NUM_ARGS; ++a) {
    elements[a] = a == 3 ? E : tokens;
    /* At least one element, so that B = 0 or T = 0 still gets a buffer. */
    buffers[a] = malloc((size_t)(elements[a] ? elements[a] : 1) * sizeof(float));
    if (!buffers[a]) {
      fprintf(stderr, "embed_static: out of memory\n");
      goto cleanup;
    }
  }
  serialOut = malloc((size_t)(tokens ? tokens : 1) * sizeof(float));
  if (!serialOut)
    goto cleanup;

  lcgState = seed;
  fill(buffers[0], tokens, 4.0, -2.0); /* q */
  fill(buffers[1], tokens, 4.0, -2.0); /* k */
  fill(buffers[2], tokens, 4.0, -2.0); /* v */
  fill(buffers[3], E, 3.0, -1.0);      /* beta_raw */
  fill(buffers[4], tokens, 2.0, -1.0); /* lam */
  fill(buffers[5], tokens, 2.0, -1.0); /* gate */
  for (i = 0; i < tokens; ++i) {       /* NaN: any element not written shows */
    buffers[6][i] = NAN;
    serialOut[i] = NAN;
  }

  /* 1. Through libfemrt, from the table linked into this program. */
  {
    DLTensor tensors[NUM_ARGS];
    const DLTensor *args[NUM_ARGS];
    femrt_status status;
    int32_t threads = 0;
    memset(tensors, 0, sizeof tensors);
    for (a = 0; a < NUM_ARGS; ++a) {
      tensors[a].data = buffers[a];
      tensors[a].device.device_type = kDLCPU;
      tensors[a].ndim = ranks[a];
      tensors[a].dtype.code = kDLFloat;
      tensors[a].dtype.bits = 32;
      tensors[a].dtype.lanes = 1;
      tensors[a].shape = (int64_t *)shapes[a];
      args[a] = &tensors[a];
    }
    if ((status = femrt_context_create(NULL, &context)) != FEMRT_OK ||
        (status = femrt_module_create_static(
             context, femc_softmax_fem_library(), &module)) != FEMRT_OK ||
        (status = femrt_module_get_kernel(module, "softmax_fem", &kernel)) !=
            FEMRT_OK ||
        (status = femrt_context_get_num_threads(context, &threads)) !=
            FEMRT_OK ||
        (status = femrt_kernel_launch(kernel, args, NUM_ARGS, NULL)) !=
            FEMRT_OK) {
      fprintf(stderr, "embed_static: libfemrt: %s: %s\n",
              femrt_status_string(status), femrt_last_error());
      goto cleanup;
    }
    printf("libfemrt (static module, %d threads): ok\n", threads);
  }

  /* 2. Through the serial entry point, on memref descriptors. */
  {
    femrt_memref m[NUM_ARGS];
    char err[1024] = "";
    for (a = 0; a < NUM_ARGS; ++a)
      m[a] = memref(a == 6 ? serialOut : buffers[a], ranks[a], shapes[a]);
    if (softmax_fem(&m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], err,
                    sizeof err) != 0) {
      fprintf(stderr, "embed_static: softmax_fem: %s\n", err);
      goto cleanup;
    }
    printf("serial entry point softmax_fem(): ok\n");
  }

  for (i = 0; i < tokens; ++i) {
    checksum += buffers[6][i];
    finite &= isfinite(buffers[6][i]) != 0;
  }
  printf("out (%lld, %lld, %d, %d): checksum %.6e\n", (long long)B,
         (long long)T, H, DV, checksum);
  if (memcmp(buffers[6], serialOut, (size_t)tokens * sizeof(float)) != 0) {
    fprintf(stderr, "embed_static: the two paths disagree\n");
    goto cleanup;
  }
  printf("both paths agree bit for bit\n");
  if (!finite) {
    fprintf(stderr, "embed_static: out has NaN or Inf\n");
    goto cleanup;
  }
  if (outPath) {
    FILE *file = fopen(outPath, "wb");
    if (!file || fwrite(buffers[6], sizeof(float), (size_t)tokens, file) !=
                     (size_t)tokens) {
      fprintf(stderr, "embed_static: cannot write %s\n", outPath);
      if (file)
        fclose(file);
      goto cleanup;
    }
    fclose(file);
    printf("wrote out to %s\n", outPath);
  }
  exitCode = 0;

cleanup:
  if (context)
    femrt_context_destroy(context); /* also destroys the module */
  for (a = 0; a < NUM_ARGS; ++a)
    free(buffers[a]);
  free(serialOut);
  return exitCode;
}
