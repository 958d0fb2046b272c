/*===- femrt/femrt.h - libfemrt C API --------------------------------------===*
 *
 * libfemrt loads kernel libraries built by femc and launches their kernels on
 * DLPack tensors: on the CPU with a thread pool, and (raw PTX/cubin images) on
 * NVIDIA GPUs through the CUDA driver, which is loaded at run time so that
 * the library builds and runs without CUDA installed.
 *
 * Conventions of this API
 *  - Every function returns a femrt_status (except the few that return a
 *    string or a version number); outputs are `out_*` pointer parameters, last
 *    in the parameter list, and are written only on success.
 *  - Every failing call stores a message in a thread-local buffer, read with
 *    femrt_last_error(). Successful calls leave it unchanged.
 *  - No C++ exception ever crosses this API; an unexpected internal failure
 *    is FEMRT_ERROR_INTERNAL with the exception's text as the message.
 *  - Handles (femrt_context, femrt_module, ...) are opaque tokens, never
 *    pointers to memory the caller may read. Every handle is checked on every
 *    call against a registry of live handles, and handle values are never
 *    reused, so a destroyed ("dangling") handle, a double destroy, or a handle
 *    of the wrong kind is reported as FEMRT_ERROR_INVALID_HANDLE instead of
 *    crashing. Passing NULL where a handle is required is
 *    FEMRT_ERROR_INVALID_ARGUMENT; destroying NULL is a no-op returning
 *    FEMRT_OK (like free(NULL)).
 *  - All functions are thread-safe. A handle may be used from several threads
 *    at once; destroying a handle while another thread uses it is safe (the
 *    object lives until the in-flight call returns), but later calls with it
 *    fail with FEMRT_ERROR_INVALID_HANDLE.
 *
 * Ownership
 *  - femrt_context: created by femrt_context_create, released by
 *    femrt_context_destroy. Destroying a context also destroys every module,
 *    kernel, device and CUDA module created from it; their handles become
 *    invalid.
 *  - femrt_module: created by femrt_module_load_library or
 *    femrt_module_create_static, released by femrt_module_destroy (or with
 *    its context). A loaded library stays mapped until the module is
 *    destroyed and no launch of one of its kernels is running.
 *  - femrt_kernel: borrowed from its module; never released by the caller;
 *    valid until the module is destroyed.
 *  - femrt_device: created by femrt_device_open_cuda, released by
 *    femrt_device_destroy (or with its context). Destroying a device also
 *    destroys its CUDA modules and frees the device memory still allocated
 *    through femrt_cuda_malloc on it.
 *  - femrt_cuda_module: created by femrt_cuda_module_load_image, released by
 *    femrt_cuda_module_destroy (or with its device).
 *  - Strings, femrt_arg_info and femrt_kernel_traits pointers returned by the
 *    API are owned by the object they describe and valid until it is
 *    destroyed. The string from
 *    femrt_last_error() is valid until the next failing call on the same
 *    thread. femrt_status_string() returns static strings.
 *  - Tensors (DLTensor) and their memory are always owned by the caller; the
 *    runtime only reads and writes them during femrt_kernel_launch.
 *  - A femrt_kernel_library passed to femrt_module_create_static is borrowed
 *    and must outlive the module (it is normally a static constant).
 *
 * This header is C (C99 or later) and C++ compatible. The runtime itself is
 * POSIX-only (it uses dlopen).
 *===----------------------------------------------------------------------===*/
#ifndef FEMRT_FEMRT_H
#define FEMRT_FEMRT_H

#include <stddef.h>
#include <stdint.h>

#include "femrt/dlpack_compat.h"
#include "femrt/kernel_abi.h"

/* Version of libfemrt (the API); the kernel ABI has its own number,
 * FEMRT_KERNEL_ABI_VERSION in kernel_abi.h. runtime/CMakeLists.txt reads these
 * three lines, so this header is the single source of truth. */
#define FEMRT_VERSION_MAJOR 0
#define FEMRT_VERSION_MINOR 1
#define FEMRT_VERSION_PATCH 0

#if defined(__GNUC__) || defined(__clang__)
#define FEMRT_API __attribute__((visibility("default")))
#else
#define FEMRT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*===----------------------------------------------------------------------===*
 * Status codes and errors
 *===----------------------------------------------------------------------===*/

typedef enum femrt_status {
  FEMRT_OK = 0,
  /* A parameter is NULL, out of range, or otherwise malformed. */
  FEMRT_ERROR_INVALID_ARGUMENT,
  /* A tensor's rank or extents do not match the kernel's argument, or the
   * kernel's prepare rejected the shapes. */
  FEMRT_ERROR_SHAPE_MISMATCH,
  /* A tensor's dtype (code, bits, lanes) differs from the kernel's. */
  FEMRT_ERROR_DTYPE,
  /* A tensor lives on a device the kernel cannot access. */
  FEMRT_ERROR_DEVICE,
  /* A tensor's data pointer + byte_offset is not aligned to its element
   * size, or byte_offset is not a multiple of the element size. */
  FEMRT_ERROR_ALIGNMENT,
  /* An output tensor overlaps an input or another output. */
  FEMRT_ERROR_ALIASING,
  /* A named thing (kernel, symbol, CUDA function) does not exist. */
  FEMRT_ERROR_NOT_FOUND,
  /* A kernel library was built for another kernel ABI version. */
  FEMRT_ERROR_ABI_VERSION,
  /* A file could not be read or a library could not be loaded. */
  FEMRT_ERROR_IO,
  /* The CUDA driver is absent, failed to initialize, or has no such device. */
  FEMRT_ERROR_NO_CUDA_DEVICE,
  /* A CUDA driver call failed; the message names the CUresult. */
  FEMRT_ERROR_CUDA,
  /* Host or device memory is exhausted, or the system refused another
   * thread (thread limits such as ulimit -u). */
  FEMRT_ERROR_OUT_OF_MEMORY,
  /* A bug in libfemrt or in a kernel (e.g. an invalid grid, or an exception
   * escaping a callback). */
  FEMRT_ERROR_INTERNAL,
  /* A handle is not live: already destroyed, never created by libfemrt, or a
   * handle of another kind. */
  FEMRT_ERROR_INVALID_HANDLE,
  /* A tensor's strides are not compact row-major. */
  FEMRT_ERROR_LAYOUT,
  /* A kernel library's tables are malformed (NULL entry points, bad ranks,
   * duplicate names, ...). */
  FEMRT_ERROR_INVALID_LIBRARY,
  /* The request is valid but not supported by this build or backend. */
  FEMRT_ERROR_UNSUPPORTED
} femrt_status;

/* The name of a status code, e.g. "FEMRT_ERROR_SHAPE_MISMATCH"; a static
 * string ("FEMRT_ERROR_UNKNOWN" for values outside the enum). */
FEMRT_API const char *femrt_status_string(femrt_status status);

/* The message of the most recent failing call on the calling thread, or ""
 * if none failed yet. Valid until the next failing call on this thread. */
FEMRT_API const char *femrt_last_error(void);

/*===----------------------------------------------------------------------===*
 * Versions
 *===----------------------------------------------------------------------===*/

/* The version of the libfemrt binary (may differ from FEMRT_VERSION_* of the
 * header the caller compiled against). Any out pointer may be NULL. */
FEMRT_API femrt_status femrt_version(int *out_major, int *out_minor,
                                     int *out_patch);

/* The kernel ABI version this runtime accepts (FEMRT_KERNEL_ABI_VERSION of
 * the binary). */
FEMRT_API uint32_t femrt_kernel_abi_version(void);

/*===----------------------------------------------------------------------===*
 * Handles
 *===----------------------------------------------------------------------===*/

typedef struct femrt_context femrt_context;
typedef struct femrt_device femrt_device;
typedef struct femrt_module femrt_module;
typedef struct femrt_kernel femrt_kernel;
typedef struct femrt_cuda_module femrt_cuda_module;

/*===----------------------------------------------------------------------===*
 * Contexts
 *===----------------------------------------------------------------------===*/

/* The largest thread count a context accepts (num_threads of
 * femrt_context_options and femrt_context_set_num_threads). Larger counts are
 * FEMRT_ERROR_INVALID_ARGUMENT; the default (0) is the hardware concurrency
 * capped at this value. */
#define FEMRT_MAX_THREADS 1024

/* Options of femrt_context_create. Versioned by struct_size: initialize with
 * femrt_context_options_init, then change fields. */
typedef struct femrt_context_options {
  uint32_t struct_size; /* sizeof(femrt_context_options) */
  /* Threads that run CPU workgroups, including the thread that calls
   * femrt_kernel_launch: 0 = std::thread::hardware_concurrency() (at most
   * FEMRT_MAX_THREADS), or 1 to FEMRT_MAX_THREADS. */
  int32_t num_threads;
} femrt_context_options;

/* Fills *out_options with the defaults (num_threads = 0). */
FEMRT_API femrt_status
femrt_context_options_init(femrt_context_options *out_options);

/* Creates a context: the owner of modules and devices and of the CPU thread
 * pool. options may be NULL (defaults). Release with femrt_context_destroy.
 * Errors: FEMRT_ERROR_INVALID_ARGUMENT (num_threads < 0 or above
 * FEMRT_MAX_THREADS), FEMRT_ERROR_OUT_OF_MEMORY when the system refuses to
 * start a worker thread (e.g. the process limit of ulimit -u / RLIMIT_NPROC;
 * the threads already started are joined again, none is left running). */
FEMRT_API femrt_status femrt_context_create(const femrt_context_options *options,
                                            femrt_context **out_context);

/* Destroys the context and everything created from it, joining its worker
 * threads (after launches in flight on other threads have finished). */
FEMRT_API femrt_status femrt_context_destroy(femrt_context *context);

/* Changes the number of CPU threads (0 = hardware concurrency, or 1 to
 * FEMRT_MAX_THREADS). Waits for launches in flight on the context. Errors as
 * femrt_context_create; on any error the context keeps its previous threads
 * (threads started by the failing call are joined again). */
FEMRT_API femrt_status femrt_context_set_num_threads(femrt_context *context,
                                                     int32_t num_threads);

FEMRT_API femrt_status femrt_context_get_num_threads(femrt_context *context,
                                                     int32_t *out_num_threads);

/*===----------------------------------------------------------------------===*
 * Modules (kernel libraries)
 *===----------------------------------------------------------------------===*/

/* Loads a femc kernel library (a shared object) with dlopen, calls its
 * `femrt_library_query`, and checks its ABI version and tables. A path
 * without '/' is searched like dlopen does (LD_LIBRARY_PATH, ...). A path
 * with '/' is checked before dlopen sees it: a regular file with the ELF
 * magic, 64-bit, little-endian, for this host's machine (e_machine), a
 * shared object (ET_DYN), and its header tables and loadable segments inside
 * the file (a truncated copy is refused, not mapped); the message names the
 * path and the problem, e.g. "'x.so' is an ELF library for aarch64; this
 * host is x86-64".
 * Errors: FEMRT_ERROR_IO (cannot be loaded), FEMRT_ERROR_NOT_FOUND (does not
 * export femrt_library_query), FEMRT_ERROR_ABI_VERSION,
 * FEMRT_ERROR_INVALID_LIBRARY. Release with femrt_module_destroy. */
FEMRT_API femrt_status femrt_module_load_library(femrt_context *context,
                                                 const char *path,
                                                 femrt_module **out_module);

/* Creates a module from a kernel library linked into the program (for
 * embedding without dlopen), e.g. femrt_module_create_static(ctx,
 * femrt_library_query(), &module). The library is borrowed and must outlive
 * the module. Same checks as femrt_module_load_library. */
FEMRT_API femrt_status
femrt_module_create_static(femrt_context *context,
                           const femrt_kernel_library *library,
                           femrt_module **out_module);

/* Destroys the module; its kernel handles become invalid. */
FEMRT_API femrt_status femrt_module_destroy(femrt_module *module);

/* The library's producer (e.g. "femc 0.1.0") and target (e.g.
 * "host:x86-64+avx2"); either out pointer may be NULL. Strings are owned by
 * the module. */
FEMRT_API femrt_status femrt_module_get_info(femrt_module *module,
                                             const char **out_producer,
                                             const char **out_target);

FEMRT_API femrt_status femrt_module_num_kernels(femrt_module *module,
                                                int32_t *out_num_kernels);

/* The scratch memory the module keeps for its layers' intermediates between
 * launches (docs/runtime.md, "Layer scratch memory"): with trim non-zero the
 * kept blocks are freed first; then *out_cached_bytes is what it keeps now
 * and *out_reused how many of its layers' block requests were served from
 * kept blocks so far (either out pointer may be NULL). */
FEMRT_API femrt_status femrt_module_scratch(femrt_module *module,
                                            int32_t trim,
                                            uint64_t *out_cached_bytes,
                                            uint64_t *out_reused);

/* Looks a kernel up by name (FEMRT_ERROR_NOT_FOUND lists the names there
 * are). The kernel is owned by the module; repeated lookups return the same
 * handle. */
FEMRT_API femrt_status femrt_module_get_kernel(femrt_module *module,
                                               const char *name,
                                               femrt_kernel **out_kernel);

FEMRT_API femrt_status femrt_module_get_kernel_by_index(
    femrt_module *module, int32_t index, femrt_kernel **out_kernel);

/*===----------------------------------------------------------------------===*
 * Kernels
 *===----------------------------------------------------------------------===*/

FEMRT_API femrt_status femrt_kernel_get_name(femrt_kernel *kernel,
                                             const char **out_name);

/* The library's description, e.g. "prior=softmax causal=1 layout=bthd mask=0
 * cap=40 eps=1e-06 tile_q=64 tile_k=64 vec=8" ("" if it has none). For
 * humans: programs read femrt_kernel_get_traits. */
FEMRT_API femrt_status femrt_kernel_get_description(femrt_kernel *kernel,
                                                    const char **out_description);

/* The kernel's structured facts (prior, causal, layout, mask, scale, cap, eps,
 * tiles, grid; see femrt/kernel_abi.h), validated when the module was made,
 * in this runtime's layout (struct_size is this runtime's sizeof). Sets
 * *out_traits to NULL for a kernel whose library gave none. The pointer lives
 * as long as the kernel handle's module. */
FEMRT_API femrt_status femrt_kernel_get_traits(
    femrt_kernel *kernel, const femrt_kernel_traits **out_traits);

/* The number of segments the last launch through this handle ran its
 * sequence as (the chunk-level parallel prefix of a scan kernel, see
 * docs/runtime.md "Split sequences"): 1 when it ran its grid unsplit, 0
 * before the first launch. */
FEMRT_API femrt_status femrt_kernel_last_segments(femrt_kernel *kernel,
                                                  int32_t *out_segments);

FEMRT_API femrt_status femrt_kernel_num_args(femrt_kernel *kernel,
                                             int32_t *out_num_args);

/* The expectation for argument `index` (inputs first, outputs last): name,
 * dim_names (never NULL), dtype, role, rank and static extents (-1 where
 * dynamic). Owned by the module. */
FEMRT_API femrt_status femrt_kernel_get_arg_info(
    femrt_kernel *kernel, int32_t index, const femrt_arg_info **out_info);

/* The index of the argument called `name`, or FEMRT_ERROR_NOT_FOUND. */
FEMRT_API femrt_status femrt_kernel_find_arg(femrt_kernel *kernel,
                                             const char *name,
                                             int32_t *out_index);

/* Options of femrt_kernel_launch. Versioned by struct_size: initialize with
 * femrt_launch_options_init, then change fields. */
typedef struct femrt_launch_options {
  uint32_t struct_size; /* sizeof(femrt_launch_options) */
  /* At most this many threads (the caller included) run the grid; 0 = all
   * of the context's threads, 1 = the calling thread only. */
  int32_t max_threads;
  /* A CUDA stream (CUstream) for device kernels. Kernel libraries of this
   * ABI run on the host, so it must be NULL (FEMRT_ERROR_UNSUPPORTED
   * otherwise): synchronize the stream first with femrt_cuda_synchronize. */
  void *stream;
} femrt_launch_options;

FEMRT_API femrt_status
femrt_launch_options_init(femrt_launch_options *out_options);

/* Runs the kernel on `args` (num_args tensors, in the order of
 * femrt_kernel_get_arg_info) and returns when the whole workgroup grid has
 * run. options may be NULL (defaults). Before anything runs, every argument
 * is checked, in this order, and the first failure is returned with a
 * message naming the argument, e.g.
 *   "kernel 'attn': argument 'k' (#1): expected rank 4 (B,S,Hkv,dk), got
 *    rank 3":
 *  - num_args equals the kernel's argument count (INVALID_ARGUMENT);
 *  - the tensor is not NULL, and its data is not NULL unless it has zero
 *    elements (INVALID_ARGUMENT);
 *  - rank (SHAPE_MISMATCH); dtype code and bits, lanes == 1 (DTYPE);
 *    static extents (SHAPE_MISMATCH);
 *  - device is kDLCPU or kDLCUDAHost (DEVICE);
 *  - strides are compact row-major or NULL; size-1 dimensions may have any
 *    stride (LAYOUT);
 *  - byte_offset is a multiple of the element size and data + byte_offset
 *    is aligned to the element size (ALIGNMENT);
 *  - no output overlaps an input or another output (ALIASING);
 *  - the kernel's own prepare (shape relations between arguments;
 *    SHAPE_MISMATCH with the kernel's message).
 * Launches on one context from several threads are safe; their grids run
 * one after the other on the context's thread pool. */
FEMRT_API femrt_status femrt_kernel_launch(femrt_kernel *kernel,
                                           const DLTensor *const *args,
                                           int32_t num_args,
                                           const femrt_launch_options *options);

/*===----------------------------------------------------------------------===*
 * CUDA (driver API loaded at run time from libcuda.so.1, or from the path in
 * the environment variable FEMRT_CUDA_DRIVER)
 *===----------------------------------------------------------------------===*/

/* *out_available = 1 when the CUDA driver loads, initializes and reports at
 * least one device; 0 otherwise (not an error). Use femrt_device_open_cuda
 * to learn why CUDA is not available. */
FEMRT_API femrt_status femrt_cuda_available(int *out_available);

/* The number of CUDA devices; FEMRT_ERROR_NO_CUDA_DEVICE (with the reason)
 * when the driver is absent or fails to initialize. */
FEMRT_API femrt_status femrt_cuda_device_count(int32_t *out_count);

/* Opens CUDA device `ordinal` (retaining its primary context).
 * FEMRT_ERROR_NO_CUDA_DEVICE when libcuda is absent, fails to initialize, or
 * has no device with this ordinal. Release with femrt_device_destroy. */
FEMRT_API femrt_status femrt_device_open_cuda(femrt_context *context,
                                              int32_t ordinal,
                                              femrt_device **out_device);

FEMRT_API femrt_status femrt_device_destroy(femrt_device *device);

/* The device's name (e.g. "NVIDIA H100"); owned by the device. */
FEMRT_API femrt_status femrt_device_get_name(femrt_device *device,
                                             const char **out_name);

FEMRT_API femrt_status femrt_cuda_device_compute_capability(
    femrt_device *device, int32_t *out_major, int32_t *out_minor);

/* Loads a cubin, fatbin or PTX image (PTX need not be NUL-terminated; `size`
 * bytes are used). A cubin (ELF) or fatbin whose headers, sections or
 * segments reach beyond `size` bytes, or an ELF file that is not a 64-bit
 * cubin (e_machine EM_CUDA), is FEMRT_ERROR_INVALID_ARGUMENT before the
 * driver sees it (the driver takes no size and would read past the end). CUDA failures are FEMRT_ERROR_CUDA with the CUresult's
 * name, e.g. "CUDA_ERROR_INVALID_IMAGE: device kernel image is invalid", and
 * the JIT error log when there is one. Release with
 * femrt_cuda_module_destroy. */
FEMRT_API femrt_status femrt_cuda_module_load_image(
    femrt_device *device, const void *image, size_t size,
    femrt_cuda_module **out_module);

FEMRT_API femrt_status femrt_cuda_module_destroy(femrt_cuda_module *module);

/* Launches `function_name` of the module asynchronously on `stream` (a
 * CUstream; NULL = the default stream) with cuLaunchKernel's parameter
 * convention: params[i] points to the value of kernel parameter i. Unknown
 * function: FEMRT_ERROR_NOT_FOUND. Synchronize with femrt_cuda_synchronize. */
FEMRT_API femrt_status femrt_cuda_launch_raw(femrt_cuda_module *module,
                                             const char *function_name,
                                             const uint32_t grid[3],
                                             const uint32_t block[3],
                                             uint32_t shared_bytes,
                                             void *stream, void **params);

/* Allocates `size` bytes of device memory; *out_device_ptr is a CUdeviceptr
 * cast to a pointer (usable as DLTensor.data with kDLCUDA). Free with
 * femrt_cuda_free on the same device (or destroy the device). */
FEMRT_API femrt_status femrt_cuda_malloc(femrt_device *device, size_t size,
                                         void **out_device_ptr);

/* Frees memory from femrt_cuda_malloc. NULL is a no-op; a pointer that is
 * not a live allocation of this device (e.g. freed twice) is
 * FEMRT_ERROR_INVALID_ARGUMENT. */
FEMRT_API femrt_status femrt_cuda_free(femrt_device *device, void *device_ptr);

/* Synchronous copies. Copies into or out of an allocation made by
 * femrt_cuda_malloc are bounds-checked (FEMRT_ERROR_INVALID_ARGUMENT). */
FEMRT_API femrt_status femrt_cuda_memcpy_htod(femrt_device *device,
                                              void *dst_device,
                                              const void *src_host,
                                              size_t size);
FEMRT_API femrt_status femrt_cuda_memcpy_dtoh(femrt_device *device,
                                              void *dst_host,
                                              const void *src_device,
                                              size_t size);

/* Waits for `stream` (a CUstream), or for all work on the device's primary
 * context when stream is NULL. Asynchronous kernel faults surface here. */
FEMRT_API femrt_status femrt_cuda_synchronize(femrt_device *device,
                                              void *stream);

#ifdef __cplusplus
}
#endif
#endif /* FEMRT_FEMRT_H */
