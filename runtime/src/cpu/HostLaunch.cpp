//===- HostLaunch.cpp - Checking arguments and running a CPU grid ---------===//
//
// femrt_kernel_launch for host kernels: every DLTensor is checked against the
// kernel's femrt_arg_info before anything runs, converted to an MLIR strided
// memref descriptor, the kernel's prepare checks shape relations and sizes
// the grid, and the grid's workgroups run on the context's thread pool.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/Objects.h"

#include <cstring>

namespace femc::rt {

namespace {

/// Extents are limited so that element counts and byte sizes cannot
/// overflow int64_t/uintptr_t arithmetic below.
constexpr int64_t kMaxElements = int64_t(1) << 56;

std::string dtypeName(unsigned code, unsigned bits, unsigned lanes) {
  std::string base;
  switch (code) {
  case kDLInt:
    base = concat("int", bits);
    break;
  case kDLUInt:
    base = concat("uint", bits);
    break;
  case kDLFloat:
    base = concat("float", bits);
    break;
  case kDLOpaqueHandle:
    base = concat("handle", bits);
    break;
  case kDLBfloat:
    base = concat("bfloat", bits);
    break;
  case kDLComplex:
    base = concat("complex", bits);
    break;
  case FEMRT_DLPACK_CODE_BOOL:
    base = bits == 8 ? std::string("bool") : concat("bool", bits);
    break;
  default:
    base = concat("dtype(code=", code, ", bits=", bits, ")");
    break;
  }
  if (lanes != 1)
    base += concat("x", lanes);
  return base;
}

/// The device type as an int. DLPack stores it as an enum, but producers may
/// send values that enum (of the DLPack version we were built with) does not
/// list, and loading such a value as the enum type is undefined behaviour.
int deviceTypeOf(const DLDevice &device) {
  static_assert(sizeof(device.device_type) == sizeof(int),
                "DLDeviceType is int-sized in every DLPack version");
  int type;
  std::memcpy(&type, &device.device_type, sizeof(type));
  return type;
}

std::string deviceName(const DLDevice &device) {
  const char *name = nullptr;
  int type = deviceTypeOf(device);
  switch (type) {
  case 1:
    name = "kDLCPU";
    break;
  case 2:
    name = "kDLCUDA";
    break;
  case 3:
    name = "kDLCUDAHost";
    break;
  case 4:
    name = "kDLOpenCL";
    break;
  case 7:
    name = "kDLVulkan";
    break;
  case 8:
    name = "kDLMetal";
    break;
  case 9:
    name = "kDLVPI";
    break;
  case 10:
    name = "kDLROCM";
    break;
  case 11:
    name = "kDLROCMHost";
    break;
  case 12:
    name = "kDLExtDev";
    break;
  case 13:
    name = "kDLCUDAManaged";
    break;
  case 14:
    name = "kDLOneAPI";
    break;
  case 15:
    name = "kDLWebGPU";
    break;
  case 16:
    name = "kDLHexagon";
    break;
  }
  if (name)
    return concat(name, ":", device.device_id);
  return concat("device type ", type, ":", device.device_id);
}

std::string formatList(const int64_t *values, int rank) {
  std::string result = "(";
  for (int d = 0; d < rank; ++d)
    result += concat(d ? ", " : "", values[d]);
  return result + ")";
}

/// The names in a comma-separated dim_names string ("B,T,H,dk").
std::vector<std::string> splitDimNames(const std::string &dimNames) {
  std::vector<std::string> names;
  if (dimNames.empty())
    return names;
  size_t start = 0;
  while (true) {
    size_t comma = dimNames.find(',', start);
    std::string name = dimNames.substr(start, comma - start);
    // Trim spaces.
    size_t first = name.find_first_not_of(' ');
    size_t last = name.find_last_not_of(' ');
    names.push_back(first == std::string::npos
                        ? std::string()
                        : name.substr(first, last - first + 1));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return names;
}

/// Compact row-major strides (in elements) of `shape`. The product is taken
/// in uint64_t: a tensor with a zero extent has no element-count limit on its
/// other extents (e.g. (0, 2^40, 2^40)), and its strides, which address no
/// element, may wrap; signed overflow would be undefined behaviour.
void compactStrides(const int64_t *shape, int rank, int64_t *strides) {
  uint64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    strides[d] = static_cast<int64_t>(stride);
    stride *= shape[d] > 0 ? static_cast<uint64_t>(shape[d]) : 0;
  }
}

/// What the checks learn about one argument.
struct CheckedArg {
  std::string label; // "argument 'x' (#0)"
  int64_t numElements = 0;
  uintptr_t begin = 0; // first byte
  uintptr_t end = 0;   // one past the last byte
};

/// Checks tensor `t` against `info` (argument #index of kernel `prefix`).
femrt_status checkArg(const std::string &prefix, const femrt_arg_info &info,
                      int32_t index, const DLTensor *t, CheckedArg &checked) {
  checked.label = concat("argument '", info.name, "' (#", index, ")");
  auto error = [&](femrt_status status, const std::string &what) {
    return fail(status, concat(prefix, checked.label, ": ", what));
  };

  // Null tensor, malformed shape, null data.
  if (!t)
    return error(FEMRT_ERROR_INVALID_ARGUMENT, "tensor is NULL");
  if (t->ndim < 0)
    return error(FEMRT_ERROR_INVALID_ARGUMENT,
                 concat("ndim is ", t->ndim));
  // Rank, before the shape is read: ndim says how many entries `shape`
  // holds, and a wrong one (e.g. 1 << 30) must not be trusted to read or
  // print them.
  if (t->ndim != info.rank) {
    std::string dims = info.dim_names[0] ? concat(" (", info.dim_names, ")")
                                         : std::string();
    return error(FEMRT_ERROR_SHAPE_MISMATCH,
                 concat("expected rank ", info.rank, dims, ", got rank ",
                        t->ndim));
  }
  if (t->ndim > 0 && !t->shape)
    return error(FEMRT_ERROR_INVALID_ARGUMENT,
                 concat("shape is NULL but ndim is ", t->ndim));
  int64_t numElements = 1;
  for (int d = 0; d < t->ndim; ++d) {
    if (t->shape[d] < 0)
      return error(FEMRT_ERROR_SHAPE_MISMATCH,
                   concat("negative extent ", t->shape[d], " in dimension ",
                          d, " of shape ", formatList(t->shape, t->ndim)));
    if (numElements != 0 && t->shape[d] > kMaxElements / numElements)
      return error(FEMRT_ERROR_INVALID_ARGUMENT,
                   concat("shape ", formatList(t->shape, t->ndim),
                          " has too many elements"));
    numElements *= t->shape[d];
  }
  if (!t->data && numElements != 0)
    return error(FEMRT_ERROR_INVALID_ARGUMENT,
                 concat("data is NULL but the tensor has ", numElements,
                        " elements"));
  checked.numElements = numElements;

  std::vector<std::string> dimNames = splitDimNames(info.dim_names);

  // Dtype. A byte mask (uint8 or bool in the kernel) takes any one-byte
  // boolean or integer tensor: numpy and torch export masks differently.
  constexpr unsigned kBoolCode = 6; // kDLBool (DLPack >= 0.8)
  auto isByteMaskCode = [](unsigned code) {
    return code == kBoolCode || code == kDLUInt || code == kDLInt;
  };
  bool byteMask = info.dtype_bits == 8 && t->dtype.bits == 8 &&
                  t->dtype.lanes == 1 &&
                  (info.dtype_code == kBoolCode || info.dtype_code == kDLUInt) &&
                  isByteMaskCode(t->dtype.code);
  if (!byteMask &&
      (t->dtype.code != info.dtype_code || t->dtype.bits != info.dtype_bits ||
       t->dtype.lanes != 1)) {
    std::string note = t->dtype.code == info.dtype_code &&
                               t->dtype.bits == info.dtype_bits
                           ? " (vector lanes are not supported)"
                           : "";
    return error(FEMRT_ERROR_DTYPE,
                 concat("expected dtype ",
                        dtypeName(info.dtype_code, info.dtype_bits, 1),
                        ", got ",
                        dtypeName(t->dtype.code, t->dtype.bits,
                                  t->dtype.lanes),
                        note));
  }

  // Static extents.
  for (int d = 0; d < info.rank; ++d) {
    if (info.shape[d] < 0 || info.shape[d] == t->shape[d])
      continue;
    std::string dimName = d < static_cast<int>(dimNames.size()) &&
                                  !dimNames[d].empty()
                              ? concat(" (", dimNames[d], ")")
                              : std::string();
    return error(FEMRT_ERROR_SHAPE_MISMATCH,
                 concat("dimension ", d, dimName, " must be ", info.shape[d],
                        ", got ", t->shape[d], " (shape ",
                        formatList(t->shape, t->ndim), ")"));
  }

  // Device.
  int deviceType = deviceTypeOf(t->device);
  if (deviceType != kDLCPU && deviceType != kDLCUDAHost)
    return error(FEMRT_ERROR_DEVICE,
                 concat("is on ", deviceName(t->device),
                        " but host kernels need host memory (kDLCPU or "
                        "kDLCUDAHost)"));

  // Strides.
  int64_t expected[FEMRT_MAX_RANK];
  compactStrides(t->shape, t->ndim, expected);
  if (t->strides && numElements != 0) {
    for (int d = 0; d < t->ndim; ++d) {
      if (t->shape[d] == 1 || t->strides[d] == expected[d])
        continue;
      return error(FEMRT_ERROR_LAYOUT,
                   concat("strides ", formatList(t->strides, t->ndim),
                          " are not compact row-major for shape ",
                          formatList(t->shape, t->ndim), " (expected ",
                          formatList(expected, t->ndim),
                          "; size-1 dimensions may have any stride); pass "
                          "a contiguous copy"));
    }
  }

  // byte_offset and alignment.
  uint64_t elementSize = info.dtype_bits / 8;
  std::string dtype = dtypeName(info.dtype_code, info.dtype_bits, 1);
  if (t->byte_offset % elementSize != 0)
    return error(FEMRT_ERROR_ALIGNMENT,
                 concat("byte_offset ", t->byte_offset,
                        " is not a multiple of the element size ",
                        elementSize, " (", dtype, ")"));
  uintptr_t base = reinterpret_cast<uintptr_t>(t->data);
  if (t->byte_offset > UINTPTR_MAX - base)
    return error(FEMRT_ERROR_INVALID_ARGUMENT,
                 concat("data ", formatAddress(base), " + byte_offset ",
                        t->byte_offset, " overflows"));
  uintptr_t begin = base + static_cast<uintptr_t>(t->byte_offset);
  if (numElements != 0 && begin % elementSize != 0)
    return error(FEMRT_ERROR_ALIGNMENT,
                 concat("data + byte_offset = ", formatAddress(begin),
                        " is not aligned to ", elementSize, " bytes (",
                        dtype, ")"));
  uint64_t bytes = static_cast<uint64_t>(numElements) * elementSize;
  if (bytes > UINTPTR_MAX - begin)
    return error(FEMRT_ERROR_INVALID_ARGUMENT,
                 concat("the tensor's ", bytes, " bytes from ",
                        formatAddress(begin), " overflow the address space"));
  checked.begin = begin;
  checked.end = begin + static_cast<uintptr_t>(bytes);
  return FEMRT_OK;
}

/// The pool and thread limit a layer's stages run on (femrt_host::pool), and
/// the first stage loop that could not run: the launch fails with it.
struct HostLoan {
  ThreadPool *pool;
  int maxThreads;
  femrt_status status = FEMRT_OK;
  std::string error;
};

/// Records the first failure of a stage loop; never throws.
void loanFailed(HostLoan &loan, femrt_status status,
                const std::string &message) noexcept {
  if (loan.status != FEMRT_OK)
    return;
  loan.status = status;
  try {
    loan.error = message;
  } catch (...) {
    loan.error.clear(); // launchHostKernel falls back to a fixed message
  }
}

/// femrt_host::parallel_for: body(ctx, i) for i in [0, n) on the pool. A
/// loop the pool refuses runs nothing and fails the launch (HostLoan), as
/// does every later stage loop: no index ever runs twice. No exception
/// leaves: the caller is C.
void hostParallelFor(void *loan, int64_t n, void (*body)(void *, int64_t),
                     void *ctx) noexcept {
  auto *l = static_cast<HostLoan *>(loan);
  if (n <= 0 || l->status != FEMRT_OK)
    return;
  try {
    if (n >= ThreadPool::kMaxIterations) {
      loanFailed(*l, FEMRT_ERROR_INVALID_ARGUMENT,
                 concat("a stage of the layer asked for a parallel loop of ",
                        n, " iterations; the thread pool runs fewer than ",
                        ThreadPool::kMaxIterations));
      return;
    }
    l->pool->parallelFor(
        n, [&](int64_t i) { body(ctx, i); }, l->maxThreads);
  } catch (const std::exception &e) {
    loanFailed(*l, FEMRT_ERROR_INTERNAL,
               concat("a stage's parallel loop of ", n,
                      " iterations failed: ", e.what()));
  } catch (...) {
    loanFailed(*l, FEMRT_ERROR_INTERNAL, "a stage's parallel loop failed");
  }
}

} // namespace

femrt_status launchHostKernel(const Kernel &kernel, const DLTensor *const *args,
                              int32_t numArgs,
                              const femrt_launch_options *options) {
  const KernelData &k = kernel.data();
  std::string prefix = concat("kernel '", k.name, "': ");

  int maxThreads = 0;
  if (options) {
    if (options->struct_size < sizeof(femrt_launch_options))
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(prefix, "options->struct_size is ",
                         options->struct_size, ", expected at least ",
                         sizeof(femrt_launch_options),
                         " (initialize with femrt_launch_options_init)"));
    if (options->max_threads < 0)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(prefix, "options->max_threads is ",
                         options->max_threads));
    if (options->stream)
      return fail(FEMRT_ERROR_UNSUPPORTED,
                  concat(prefix,
                         "options->stream is set, but host kernels do not "
                         "run on a CUDA stream; synchronize it first "
                         "(femrt_cuda_synchronize) and pass NULL"));
    maxThreads = options->max_threads;
  }

  int32_t expectedArgs = static_cast<int32_t>(k.args.size());
  if (numArgs != expectedArgs) {
    std::string names;
    for (int32_t i = 0; i < expectedArgs; ++i)
      names += concat(i ? ", " : "", k.argNames[i]);
    return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                concat(prefix, "takes ", expectedArgs, " arguments (", names,
                       "), got ", numArgs));
  }
  if (numArgs > 0 && !args)
    return fail(FEMRT_ERROR_INVALID_ARGUMENT, concat(prefix, "args is NULL"));

  std::vector<CheckedArg> checked(numArgs);
  for (int32_t i = 0; i < numArgs; ++i)
    if (femrt_status status =
            checkArg(prefix, k.args[i], i, args[i], checked[i]))
      return status;

  // Aliasing: an output may not overlap any other argument.
  for (int32_t i = 0; i < numArgs; ++i) {
    if (k.args[i].role != FEMRT_ARG_OUTPUT || checked[i].numElements == 0)
      continue;
    for (int32_t j = 0; j < numArgs; ++j) {
      if (j == i || checked[j].numElements == 0)
        continue;
      if (checked[i].begin < checked[j].end &&
          checked[j].begin < checked[i].end)
        return fail(
            FEMRT_ERROR_ALIASING,
            concat(prefix, "output ", checked[i].label, " overlaps ",
                   k.args[j].role == FEMRT_ARG_OUTPUT ? "output " : "input ",
                   checked[j].label, ": bytes [",
                   formatAddress(checked[i].begin), ", ",
                   formatAddress(checked[i].end), ") and [",
                   formatAddress(checked[j].begin), ", ",
                   formatAddress(checked[j].end),
                   "); outputs must not share memory with other arguments"));
    }
  }

  // MLIR strided memref descriptors: the aligned pointer is the first
  // element (data + byte_offset), offset 0, strides in elements.
  std::vector<femrt_memref> memrefs(numArgs);
  std::vector<void *> memrefPointers(numArgs);
  for (int32_t i = 0; i < numArgs; ++i) {
    const DLTensor *t = args[i];
    femrt_memref &memref = memrefs[i];
    std::memset(&memref, 0, sizeof(memref));
    memref.allocated = t->data;
    memref.aligned = reinterpret_cast<void *>(checked[i].begin);
    memref.offset = 0;
    for (int d = 0; d < t->ndim; ++d)
      memref.dims[d] = t->shape[d];
    compactStrides(t->shape, t->ndim, memref.dims + t->ndim);
    memrefPointers[i] = &memref;
  }

  int64_t grid[3] = {1, 1, 1};
  if (k.prepare) {
    char message[1024];
    message[0] = '\0';
    int rc = k.prepare(memrefPointers.data(), grid, message, sizeof(message));
    message[sizeof(message) - 1] = '\0';
    if (rc != 0)
      return fail(FEMRT_ERROR_SHAPE_MISMATCH,
                  message[0] ? concat(prefix, message)
                             : concat(prefix, "prepare failed with code ", rc,
                                      " and no message"));
  }
  // A negative extent is invalid; a zero extent anywhere makes the grid
  // empty, however large the others are; otherwise at most 2^61 workgroups.
  auto invalidGrid = [&] {
    return fail(FEMRT_ERROR_INTERNAL,
                concat(prefix, "prepare returned an invalid grid ",
                       formatList(grid, 3)));
  };
  for (int64_t extent : grid)
    if (extent < 0)
      return invalidGrid();
  for (int64_t extent : grid)
    if (extent == 0)
      return FEMRT_OK;
  int64_t total = 1;
  for (int64_t extent : grid) {
    if (total > (int64_t(1) << 61) / extent)
      return invalidGrid();
    total *= extent;
  }

  const int64_t gridX = grid[0], gridY = grid[1];
  femrt_workgroup_fn workgroup = k.workgroup;
  void *const *pointers = memrefPointers.data();
  // A layer is one workgroup that runs grids of its own (projections, FEM
  // reads): it runs on this thread with the pool lent to it, so its stages'
  // loops are not nested in a loop of the pool (which would run inline).
  ThreadPool &pool = kernel.module->context->pool;
  if (femrt_bind_host_fn bind = kernel.module->bindHost;
      bind && total == 1 && (k.hasTraits &&
                             (k.traits.flags & FEMRT_KERNEL_LAYER))) {
    HostLoan loan{&pool, maxThreads, FEMRT_OK, {}};
    femrt_host host{};
    host.struct_size = sizeof(femrt_host);
    host.pool = &loan;
    host.parallel_for = &hostParallelFor;
    host.scratch = &kernel.module->scratch;
    host.scratch_alloc = &ScratchCache::hostAlloc;
    host.scratch_free = &ScratchCache::hostFree;
    bind(&host);
    workgroup(pointers, 0, 0, 0);
    bind(nullptr);
    if (loan.status != FEMRT_OK)
      return fail(loan.status,
                  prefix + (loan.error.empty()
                                ? std::string("a stage's parallel loop failed")
                                : loan.error));
    return FEMRT_OK;
  }
  // A scan kernel whose grid leaves threads idle may run as segments of
  // its sequence (the chunk-level parallel prefix; the library decides).
  kernel.lastSegments.store(1, std::memory_order_relaxed);
  if (k.split) {
    int poolThreads = pool.getNumThreads();
    HostLoan loan{&pool, maxThreads, FEMRT_OK, {}};
    femrt_host host{};
    host.struct_size = sizeof(femrt_host);
    host.pool = &loan;
    host.parallel_for = &hostParallelFor;
    host.threads = maxThreads > 0 ? std::min(maxThreads, poolThreads)
                                  : poolThreads;
    int segments = k.split(pointers, grid, &host);
    if (segments < 0)
      return fail(FEMRT_ERROR_OUT_OF_MEMORY,
                  prefix + "no memory for the segment states of the split "
                           "sequence");
    if (segments > 0) {
      kernel.lastSegments.store(segments, std::memory_order_relaxed);
      if (loan.status != FEMRT_OK)
        return fail(loan.status,
                    prefix + (loan.error.empty()
                                  ? std::string("a phase's parallel loop failed")
                                  : loan.error));
      return FEMRT_OK;
    }
  }
  pool.parallelFor(
      total,
      [&](int64_t i) {
        int64_t x = i % gridX;
        int64_t rest = i / gridX;
        workgroup(pointers, x, rest % gridY, rest / gridY);
      },
      maxThreads);
  return FEMRT_OK;
}

} // namespace femc::rt
