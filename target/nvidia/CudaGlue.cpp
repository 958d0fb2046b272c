//===- CudaGlue.cpp - the device half of an NVIDIA kernel library ---------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
#include "target/nvidia/CudaGlue.h"

#include "passes/nvidia/KernelAbi.h"

#include "llvm/Support/Format.h"

namespace femc::target::nvidia {

namespace {

/// The grid expression of one axis: ceil(sym[extent] / divisor).
std::string axisExpression(const std::pair<std::string, int64_t> &axis,
                           bool causal) {
  int index = priors::extentIndex(axis.first);
  // A causal read's keys have the length T: it binds no S.
  if (causal && axis.first == "S")
    index = priors::extentIndex("T");
  std::string sym = "sym[" + std::to_string(index) + "]";
  if (axis.second == 1)
    return sym;
  std::string d = std::to_string(axis.second);
  return "(" + sym + " / " + d + " + (" + sym + " % " + d + " != 0))";
}

} // namespace

/// `bytes` as the initializer of a C byte array (at least one byte: C has
/// no empty arrays).
static void writeBytes(llvm::raw_ostream &os, llvm::StringRef bytes) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i % 16 == 0)
      os << "\n ";
    os << " " << llvm::format("0x%02x", static_cast<unsigned char>(bytes[i]))
       << ",";
  }
  if (bytes.empty())
    os << "0";
  os << "\n};\n\n";
}

void writeCudaGlue(llvm::raw_ostream &os, llvm::StringRef stem,
                   const std::vector<driver::GlueKernel> &kernels,
                   llvm::StringRef image, llvm::StringRef ptx, int64_t arch,
                   llvm::StringRef description) {
  const int64_t major = arch / 10, minor = arch % 10;
  os << "/* ---- The device half (target/nvidia/CudaGlue.cpp): the cubin, "
        "loaded once per\n * device through libfemrt, and the launches of "
        "passes/nvidia/KernelAbi.h. */\n"
     << "#include \"femrt/femrt.h\"\n#include <pthread.h>\n\n";
  // The cubin, 16-byte aligned (it is an ELF image the driver parses), and
  // the PTX it was assembled from: a driver that cannot load the cubin (one
  // older than the ptxas that made it) compiles the PTX instead.
  os << "static const unsigned char femc_image[" << std::max<size_t>(1, image.size())
     << "] __attribute__((aligned(16))) = {";
  writeBytes(os, image);
  os << "static const unsigned char femc_ptx[" << std::max<size_t>(1, ptx.size())
     << "] = {";
  writeBytes(os, ptx);
  os << R"C(/* The image loaded on each device it ran on. A device destroyed since is
 * noticed when its handle stops answering, and its entry is reused. */
#define FEMC_MAX_DEVICES 64
static pthread_mutex_t femc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { femrt_device *device; femrt_cuda_module *module; }
    femc_loaded[FEMC_MAX_DEVICES];

static int femc_cuda_error(char *err, size_t len, const char *what,
                           femrt_status status) {
  snprintf(err, len, "%s: %s (%s)", what, femrt_last_error(),
           femrt_status_string(status));
  return 1;
}

/* The module of the image on `device`, loaded on first use after checking
 * the device's compute capability; `stale` (a module a launch found
 * destroyed) is dropped first. */
static int femc_module(femrt_device *device, femrt_cuda_module *stale,
                       femrt_cuda_module **out, char *err, size_t len) {
  int32_t major = 0, minor = 0;
  const char *name = "?";
  femrt_status s;
  int free_slot = -1, i;
  pthread_mutex_lock(&femc_lock);
  for (i = 0; i < FEMC_MAX_DEVICES; ++i) {
    if (femc_loaded[i].device == device && device) {
      if (femc_loaded[i].module != stale) {
        *out = femc_loaded[i].module;
        pthread_mutex_unlock(&femc_lock);
        return 0;
      }
      femc_loaded[i].device = 0;
      femc_loaded[i].module = 0;
    }
    if (!femc_loaded[i].device && free_slot < 0) free_slot = i;
  }
  if (free_slot < 0) {
    /* Reuse the entry of a device that was destroyed meanwhile. */
    const char *unused;
    for (i = 0; i < FEMC_MAX_DEVICES && free_slot < 0; ++i)
      if (femrt_device_get_name(femc_loaded[i].device, &unused) ==
          FEMRT_ERROR_INVALID_HANDLE)
        free_slot = i;
  }
  if (free_slot < 0) {
    pthread_mutex_unlock(&femc_lock);
    snprintf(err, len, "this kernel library is loaded on %d devices already; "
             "destroy a femrt_device first", FEMC_MAX_DEVICES);
    return 1;
  }
  s = femrt_cuda_device_compute_capability(device, &major, &minor);
  if (s != FEMRT_OK) {
    pthread_mutex_unlock(&femc_lock);
    return femc_cuda_error(err, len, "cannot query the CUDA device", s);
  }
  femrt_device_get_name(device, &name);
)C";
  os << "  if (major != " << major << " || minor < " << minor << ") {\n"
     << "    pthread_mutex_unlock(&femc_lock);\n"
     << "    snprintf(err, len, \"this kernel library was compiled for "
     << description
     << " and CUDA device '%s' has compute capability %d.%d; recompile "
        "the model with femc --target=sm_%d%d\", name, (int)major, "
        "(int)minor, (int)major, (int)minor);\n"
     << "    return 1;\n  }\n";
  os << R"C(  s = femrt_cuda_module_load_image(device, femc_image, sizeof femc_image,
                                   out);
  if (s == FEMRT_ERROR_CUDA) {
    /* E.g. a driver older than the ptxas that made the cubin: JIT the PTX. */
    char cubin_error[512];
    snprintf(cubin_error, sizeof cubin_error, "%s", femrt_last_error());
    s = femrt_cuda_module_load_image(device, femc_ptx, sizeof femc_ptx, out);
    if (s != FEMRT_OK) {
      pthread_mutex_unlock(&femc_lock);
      snprintf(err, len, "cannot load the kernels' cubin (%s) nor compile "
               "their PTX (%s)", cubin_error, femrt_last_error());
      return 1;
    }
  }
  if (s != FEMRT_OK) {
    pthread_mutex_unlock(&femc_lock);
    return femc_cuda_error(err, len, "cannot load the kernels' cubin", s);
  }
  femc_loaded[free_slot].device = device;
  femc_loaded[free_slot].module = *out;
  pthread_mutex_unlock(&femc_lock);
  return 0;
}

/* Launches `symbol` with `params`; loads the image first, and once more when
 * the module was destroyed (with its device's earlier handle). */
static int femc_cuda_run(femrt_device *device, void *stream, const char *symbol,
                         const uint32_t grid[3], const uint32_t block[3],
                         uint32_t shared, void **params, char *err,
                         size_t len) {
  femrt_cuda_module *module = 0, *stale = 0;
  femrt_status s;
  int attempt;
  if (!device) {
    snprintf(err, len, "no CUDA device given (femrt_device is NULL); open one "
             "with femrt_device_open_cuda");
    return 1;
  }
  for (attempt = 0; attempt < 2; ++attempt) {
    if (femc_module(device, stale, &module, err, len)) return 1;
    s = femrt_cuda_launch_raw(module, symbol, grid, block, shared, stream,
                              params);
    if (s == FEMRT_OK) return 0;
    if (s != FEMRT_ERROR_INVALID_HANDLE) break;
    stale = module;
  }
  return femc_cuda_error(err, len, "the kernel launch failed", s);
}

/* The device address of element 0 of argument a, which must be aligned to
 * 16 bytes (passes/nvidia/KernelAbi.h, section 6) unless it is empty. */
static int femc_device_pointer(const femrt_arg_info *info, int a,
                               const femrt_memref *m, int bytes, void **out,
                               char *err, size_t len) {
  int64_t count = 1;
  int d;
  for (d = 0; d < info[a].rank; ++d) count *= m->dims[d];
  *out = (char *)m->aligned + m->offset * bytes;
  if (count != 0 && ((uintptr_t)*out & 15) != 0) {
    snprintf(err, len, "argument '%s' (#%d): the device address %p is not "
             "aligned to 16 bytes, which the GPU kernel needs",
             info[a].name, a, *out);
    return 1;
  }
  return 0;
}

)C";
  const int kExtentB = priors::extentIndex("B"), kExtentT = priors::extentIndex("T"),
            kExtentS = priors::extentIndex("S"), kExtentH = priors::extentIndex("H"),
            kExtentHkv = priors::extentIndex("Hkv"),
            kExtentDk = priors::extentIndex("dk"), kExtentDv = priors::extentIndex("dv");
  for (const driver::GlueKernel &k : kernels) {
    const driver::DeviceKernel &dev = *k.device;
    size_t n = k.params.size();
    os << "/* kernel " << k.nameLiteral << " on the GPU: entry " << dev.symbol
       << ", block (" << dev.block[0] << ", " << dev.block[1] << ", "
       << dev.block[2] << "), " << dev.sharedBytes
       << " bytes of dynamic shared memory, " << dev.staticSharedBytes
       << " static, " << dev.dtype << " */\n";
    os << "static int " << k.id
       << "_cuda(femrt_device *device, void *stream, void *const *args, char "
          "*err, size_t len) {\n"
       << "  int64_t sym[9], extents[" << femc::nvidia::kNumExtentParams
       << "], g[3];\n"
       << "  void *pointers[" << n << "];\n"
       << "  void *params[" << n + femc::nvidia::kNumExtentParams << "];\n"
       << "  uint32_t grid[3], block[3] = {" << dev.block[0] << ", "
       << dev.block[1] << ", " << dev.block[2] << "};\n"
       << "  int i;\n"
       << "  if (femc_bind(" << k.id << "_args, " << k.id << "_syms, " << n
       << ", args, sym, err, len)) return 1;\n";
    if (k.dkDividesDv)
      os << "  if (sym[" << kExtentDk << "] <= 0 || sym[" << kExtentDv << "] % sym["
         << kExtentDk << "] != 0) {\n"
         << "    snprintf(err, len, \"the prior needs dk to divide dv, found "
            "dk = %lld and dv = %lld\", (long long)sym["
         << kExtentDk << "], (long long)sym[" << kExtentDv << "]);\n    return 1;\n  }\n";
    if (k.causal)
      os << "  sym[" << kExtentS << "] = sym[" << kExtentT
         << "]; /* causal: the keys have the length T */\n";
    for (size_t i = 0; i < dev.grid.size(); ++i)
      os << "  g[" << i << "] = " << axisExpression(dev.grid[i], k.causal)
         << ";\n";
    os << "  /* An empty grid is a CUDA error: no block, nothing to write. */\n"
       << "  if (g[0] == 0 || g[1] == 0 || g[2] == 0) return 0;\n"
       << "  if (g[0] > 2147483647 || g[1] > 65535 || g[2] > 65535) {\n"
       << "    snprintf(err, len, \"the grid (%lld, %lld, %lld) is beyond "
          "CUDA's limits (2^31-1, 65535, 65535): the axes are (";
    for (size_t i = 0; i < dev.grid.size(); ++i)
      os << (i ? ", " : "")
         << (dev.grid[i].second == 1
                 ? dev.grid[i].first
                 : "ceil(" + dev.grid[i].first + "/" +
                       std::to_string(dev.grid[i].second) + ")");
    os << ")\", (long long)g[0], (long long)g[1], (long long)g[2]);\n"
       << "    return 1;\n  }\n"
       << "  for (i = 0; i < 3; ++i) grid[i] = (uint32_t)g[i];\n";
    for (size_t i = 0; i < n; ++i)
      os << "  if (femc_device_pointer(" << k.id << "_args, " << i
         << ", (const femrt_memref *)args[" << i << "], " << k.elementBytes[i]
         << ", &pointers[" << i << "], err, len)) return 1;\n";
    os << "  extents[0] = sym[" << kExtentB << "]; extents[1] = sym[" << kExtentT
       << "]; extents[2] = sym[" << kExtentS << "];\n"
       << "  extents[3] = sym[" << kExtentH << "]; extents[4] = sym[" << kExtentHkv
       << "];\n"
       << "  for (i = 0; i < " << n << "; ++i) params[i] = &pointers[i];\n"
       << "  for (i = 0; i < " << femc::nvidia::kNumExtentParams
       << "; ++i) params[" << n << " + i] = &extents[i];\n"
       << "  return femc_cuda_run(device, stream, \"" << dev.symbol
       << "\", grid, block, " << dev.sharedBytes << "u, params, err, len);\n}\n";
    // The typed entry point of the header.
    os << "int " << k.name
       << "(femrt_device *femc_device, void *femc_stream, ";
    for (size_t i = 0; i < n; ++i)
      os << (k.outputs[i] ? "" : "const ") << "femrt_memref *" << k.params[i]
         << ", ";
    os << "char *err, size_t err_len) {\n  void *femc_args[" << n << "] = {";
    for (size_t i = 0; i < n; ++i)
      os << "(void *)" << k.params[i] << ", ";
    os << "};\n  char femc_local[256];\n"
       << "  if (!err) { err = femc_local; err_len = sizeof femc_local; }\n"
       << "  return " << k.id
       << "_cuda(femc_device, femc_stream, femc_args, err, err_len);\n}\n\n";
  }
  // One entry point by kernel index, for tools (fem-run --device cuda) that
  // learn the arguments from the library's tables.
  os << "typedef int (*femc_cuda_entry)(femrt_device *, void *, void *const *, "
        "char *, size_t);\n"
     << "static const femc_cuda_entry femc_cuda_entries[" << kernels.size()
     << "] = {";
  for (const driver::GlueKernel &k : kernels)
    os << k.id << "_cuda, ";
  os << "};\n"
     << "int femc_" << stem
     << "_cuda_launch(int32_t kernel, femrt_device *device, void *stream, "
        "void *const *args, char *err, size_t err_len) {\n"
     << "  char femc_local[256];\n"
     << "  if (!err) { err = femc_local; err_len = sizeof femc_local; }\n"
     << "  if (kernel < 0 || kernel >= " << kernels.size() << ") {\n"
     << "    snprintf(err, err_len, \"kernel index %d is out of range: the "
        "library has "
     << kernels.size() << (kernels.size() == 1 ? " kernel" : " kernels")
     << "\", (int)kernel);\n    return 1;\n  }\n"
     << "  return femc_cuda_entries[kernel](device, stream, args, err, "
        "err_len);\n}\n"
     << "/* Weak, so several femc objects can be linked into one program. */\n"
     << "__attribute__((weak)) int femc_cuda_launch(int32_t kernel, "
        "femrt_device *device, void *stream, void *const *args, char *err, "
        "size_t err_len) {\n  return femc_"
     << stem << "_cuda_launch(kernel, device, stream, args, err, err_len);\n}\n";
}

} // namespace femc::target::nvidia
