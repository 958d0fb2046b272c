//===- Glue.cpp - the C glue, header and manifest of a library ------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "driver/Glue.h"
#include "driver/CText.h"
#include "driver/Compiler.h"
#include "driver/ScanSplitGlue.h"
#include "femc/Version.h"

#include "dialect/FEMOps.h"
#include "dialect/Priors.h"
#include "runtime/include/femrt/kernel_abi.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>

using namespace mlir;
using llvm::StringRef;

namespace femc::driver {

// The kernel ABI's C enums name the dialect's prior kinds and layouts and
// Priors.h's extents by number: they must agree.
static_assert(FEMRT_PRIOR_SOFTMAX == int(mlir::fem::PriorKind::softmax) &&
                  FEMRT_PRIOR_LINEAR == int(mlir::fem::PriorKind::linear) &&
                  FEMRT_PRIOR_GLA == int(mlir::fem::PriorKind::gla) &&
                  FEMRT_PRIOR_AFT == int(mlir::fem::PriorKind::aft) &&
                  FEMRT_PRIOR_SSM == int(mlir::fem::PriorKind::ssm),
              "femrt_prior_kind (kernel_abi.h) disagrees with PriorKind");
static_assert(FEMRT_LAYOUT_BTHD == int(mlir::fem::Layout::bthd) &&
                  FEMRT_LAYOUT_BHTD == int(mlir::fem::Layout::bhtd),
              "femrt_layout (kernel_abi.h) disagrees with fem::Layout");
static_assert(FEMRT_NUM_EXTENTS == femc::priors::kNumExtents &&
                  femc::priors::kExtents[FEMRT_EXTENT_B] == "B" &&
                  femc::priors::kExtents[FEMRT_EXTENT_T] == "T" &&
                  femc::priors::kExtents[FEMRT_EXTENT_S] == "S" &&
                  femc::priors::kExtents[FEMRT_EXTENT_H] == "H" &&
                  femc::priors::kExtents[FEMRT_EXTENT_HKV] == "Hkv" &&
                  femc::priors::kExtents[FEMRT_EXTENT_DK] == "dk" &&
                  femc::priors::kExtents[FEMRT_EXTENT_DV] == "dv" &&
                  femc::priors::kExtents[FEMRT_EXTENT_E] == "E" &&
                  femc::priors::kExtents[FEMRT_EXTENT_N] == "N",
              "femrt_extent (kernel_abi.h) disagrees with Priors.h kExtents");

/// The initializer of kernel `k`'s femrt_kernel_traits (kernel ABI v2): the
/// facts clients read instead of parsing the description.
static std::string traitsInitializer(const KernelInfo &k) {
  std::string s;
  llvm::raw_string_ostream os(s);
  int prior = FEMRT_PRIOR_NONE, layout = FEMRT_LAYOUT_NONE;
  std::vector<std::string> flags;
  if (k.layer) {
    flags.push_back("FEMRT_KERNEL_LAYER");
  } else {
    const femc::priors::PriorInfo *info = femc::priors::findPrior(k.prior);
    assert(info && "kernel of a prior the table does not know");
    prior = femc::priors::priorIndex(*info);
    layout = k.layout == "bhtd" ? FEMRT_LAYOUT_BHTD : FEMRT_LAYOUT_BTHD;
    if (k.causal)
      flags.push_back("FEMRT_KERNEL_CAUSAL");
    if (k.hasMask)
      flags.push_back("FEMRT_KERNEL_MASK");
    if (k.scale)
      flags.push_back("FEMRT_KERNEL_HAS_SCALE");
  }
  os << "{(uint32_t)sizeof(femrt_kernel_traits), "
     << (flags.empty() ? "0" : llvm::join(flags, " | ")) << ", " << prior
     << ", " << layout << ", " << cDouble(k.scale.value_or(0.0)) << ", "
     << cDouble(k.layer ? 0.0 : k.cap) << ", "
     << cDouble(k.layer ? 0.0 : k.eps) << ", " << k.tileQ << ", " << k.tileK
     << ", " << k.vec << ", {";
  for (size_t i = 0; i < 3; ++i) {
    int extent = FEMRT_EXTENT_ONE;
    int64_t divisor = 1;
    if (!k.layer && i < k.grid.size())
      std::tie(extent, divisor) = k.grid[i];
    os << (i ? ", " : "") << "{" << extent << ", 0, " << divisor << "}";
  }
  os << "}}";
  return s;
}

/// The names the lowered code's memory functions get in a library (the
/// pipeline lowers memref.alloc/dealloc to finalize-memref-to-llvm's generic
/// `_mlir_memref_to_llvm_alloc`/`_free`; renameMemoryFunctions gives them
/// these, so that two femc objects link into one program).
static std::string memoryFunctionName(StringRef stem, StringRef what) {
  return "femc_" + stemIdent(stem) + "_" + what.str();
}

/// Renames the lowered module's generic memory functions to the library's
/// own (memoryFunctionName), which emitMemoryFunctions defines.
void renameMemoryFunctions(llvm::Module &llvmModule, StringRef stem) {
  for (StringRef what : {"alloc", "free"})
    if (llvm::Function *f =
            llvmModule.getFunction(("_mlir_memref_to_llvm_" + what).str())) {
      f->setName(memoryFunctionName(stem, what));
      f->setVisibility(llvm::GlobalValue::HiddenVisibility);
    }
}

/// The lowered code's memory functions (renameMemoryFunctions). A library
/// with layers also keeps the services libfemrt lends the layer running on
/// this thread (femrt_host, bound by femc_bind_host): while they include
/// scratch blocks, a block comes from there and goes back there, so a
/// layer's multi-MiB intermediates reuse the pages of the last call instead
/// of faulting in fresh ones (libfemrt's ScratchCache); everything else
/// (other threads, a serial entry, an older libfemrt) uses malloc. A 64-byte
/// header in front of each block says where it came from.
static void emitMemoryFunctions(raw_ostream &os, StringRef stem, bool anyLayer) {
  std::string alloc = memoryFunctionName(stem, "alloc"),
              release = memoryFunctionName(stem, "free");
  os << "/* memref.alloc / memref.dealloc of the lowered code. */\n"
     << "__attribute__((visibility(\"hidden\"))) void *" << alloc
     << "(uint64_t n);\n"
     << "__attribute__((visibility(\"hidden\"))) void " << release
     << "(void *p);\n";
  if (!anyLayer) {
    os << "void *" << alloc << "(uint64_t n) { return malloc(n); }\n"
       << "void " << release << "(void *p) { free(p); }\n\n";
    return;
  }
  os << R"C(/* The services libfemrt lends the layer running on this thread. */
static _Thread_local const femrt_host *femc_host;
static void femc_bind_host(const femrt_host *host) { femc_host = host; }
/* In front of each block: who gives it back, and its size with the header. */
typedef struct femc_block {
  void (*release)(void *scratch, void *block, uint64_t n);
  void *scratch;
  uint64_t n;
} femc_block;
#define FEMC_BLOCK_HEADER 64
_Static_assert(sizeof(femc_block) <= FEMC_BLOCK_HEADER, "block header");
)C";
  os << "void *" << alloc << "(uint64_t n) {\n"
     << R"C(  const femrt_host *h = femc_host;
  femc_block b = {0, 0, 0};
  unsigned char *p = 0;
  if (__builtin_add_overflow(n, (uint64_t)FEMC_BLOCK_HEADER, &b.n)) {
    fprintf(stderr, "femc: the lowered code asked for %llu bytes\n",
            (unsigned long long)n);
    abort();
  }
  if (h && h->struct_size >= offsetof(femrt_host, scratch_free) +
                                 sizeof h->scratch_free &&
      h->scratch_alloc && h->scratch_free) {
    p = (unsigned char *)h->scratch_alloc(h->scratch, b.n);
    if (p) {
      b.release = h->scratch_free;
      b.scratch = h->scratch;
    }
  }
  if (!p)
    p = (unsigned char *)malloc(b.n);
  if (!p) {
    fprintf(stderr, "femc: no memory for a buffer of %llu bytes\n",
            (unsigned long long)n);
    abort();
  }
  memcpy(p, &b, sizeof b);
  return p + FEMC_BLOCK_HEADER;
}
)C";
  os << "void " << release << "(void *q) {\n"
     << R"C(  femc_block b;
  unsigned char *p;
  if (!q)
    return;
  p = (unsigned char *)q - FEMC_BLOCK_HEADER;
  memcpy(&b, p, sizeof b);
  if (b.release)
    b.release(b.scratch, p, b.n);
  else
    free(p);
}

)C";
}

/// The C glue of layers' stages. A layer calls `<kernel>_run` for each FEM
/// read (the read's prepare, then its grid) and, for each projection
/// (passes/layer/LayerMatmul.cpp), `<layer>_mm_pack_{nn,nt}_run` and
/// `<layer>_mm_run` with its buffers and a workgroup count. Every grid runs
/// through femc_parallel: on the pool libfemrt binds to the launching
/// thread (femrt_bind_host_fn) or, without one, serially. The layer's own
/// prepare has checked the shapes its stages are built from.
static void emitLayerStages(raw_ostream &os, const std::vector<KernelInfo> &kernels) {
  if (llvm::none_of(kernels, [](auto &k) { return k.layer; }))
    return;
  os << R"C(/* body(ctx, i) for i in [0, n): on the lent pool, else here. */
static void femc_parallel(int64_t n, void (*body)(void *, int64_t), void *ctx) {
  const femrt_host *h = femc_host;
  if (h && h->parallel_for && n > 1) {
    h->parallel_for(h->pool, n, body, ctx);
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    body(ctx, i);
}
/* One FEM read's grid: flat index i = x + gx * (y + gy * z). */
struct femc_grid {
  void *const *args;
  int64_t gx, gy;
  femrt_workgroup_fn workgroup;
};
static void femc_grid_body(void *ctx, int64_t i) {
  const struct femc_grid *g = (const struct femc_grid *)ctx;
  g->workgroup(g->args, i % g->gx, (i / g->gx) % g->gy, i / g->gx / g->gy);
}
)C";
  for (const KernelInfo &k : kernels)
    for (const std::string &mixer : k.mixers) {
      auto kernel = llvm::find_if(
          kernels, [&](const KernelInfo &other) { return other.name == mixer; });
      assert(kernel != kernels.end() && "layer names a kernel it does not have");
      std::string id =
          "femc_k" + std::to_string(std::distance(kernels.begin(), kernel));
      size_t n = kernel->args.size();
      std::string params;
      for (size_t i = 0; i < n; ++i)
        params += (i ? ", femrt_memref *a" : "femrt_memref *a") +
                  std::to_string(i);
      os << "void _mlir_ciface_" << mixer << "_run(" << params << ");\n"
         << "void _mlir_ciface_" << mixer << "_run(" << params << ") {\n"
         << "  void *args[" << n << "] = {";
      for (size_t i = 0; i < n; ++i)
        os << "a" << i << ", ";
      os << "};\n  int64_t grid[3] = {1, 1, 1};\n  char err[512];\n"
         << "  struct femc_grid g;\n"
         << "  if (" << id << "_prepare(args, grid, err, sizeof err)) {\n"
         << "    fprintf(stderr, \"femc: layer kernel %s: %s\\n\", "
         << cString(mixer) << ", err);\n    abort();\n  }\n"
         << "  g.args = args;\n  g.gx = grid[0];\n  g.gy = grid[1];\n"
         << "  g.workgroup = " << id << "_workgroup;\n"
         << "  femc_parallel(grid[0] * grid[1] * grid[2], femc_grid_body, "
            "&g);\n}\n";
    }
  // The stages of fem-layer-matmul (packs, matmuls, element-wise stages),
  // one wrapper each, as the lowered module calls them.
  for (const KernelInfo &k : kernels) {
    for (const auto &[stage, buffers] : k.stages) {
      std::string base = k.name + "_" + stage;
      std::string params, args, decl;
      for (unsigned i = 0; i < buffers; ++i) {
        params += "void *a" + std::to_string(i) + ", ";
        args += "a[" + std::to_string(i) + "], ";
        decl += "void *, ";
      }
      os << "extern void _mlir_ciface_" << base << "_wg(" << decl
         << "int64_t);\n"
         << "static void femc_" << base << "_body(void *ctx, int64_t i) {\n"
         << "  void **a = (void **)ctx;\n  _mlir_ciface_" << base << "_wg("
         << args << "i);\n}\n"
         << "void _mlir_ciface_" << base << "_run(" << params << "int64_t n);\n"
         << "void _mlir_ciface_" << base << "_run(" << params
         << "int64_t n) {\n  void *a[" << buffers << "] = {";
      for (unsigned i = 0; i < buffers; ++i)
        os << "a" << i << ", ";
      os << "};\n  femc_parallel(n, femc_" << base << "_body, a);\n}\n";
    }
  }
}

/// The stages each layer's lowered body calls: declarations
/// `_mlir_ciface_<layer>_<stage>_run(buffers..., n)` with a stage name
/// fem-layer-matmul makes (mm, mm_pack_a, mm_pack_nn, mm_pack_nt, mmx*,
/// ew<N>) or fem-layer-loop-stages (loop<N>).
void collectLayerStages(const llvm::Module &llvmModule,
                        std::vector<KernelInfo> &kernels) {
  auto isStage = [](StringRef s) {
    return s == "mm" || s == "mm_pack_a" || s == "mm_pack_nn" ||
           s == "mm_pack_nt" || s == "mmx" || s == "mmx_pack_a" ||
           s == "mmx_pack_nn" || s == "mmx_pack_nt" ||
           ((s.consume_front("ew") || s.consume_front("loop")) && !s.empty() &&
            llvm::all_of(s, llvm::isDigit));
  };
  for (KernelInfo &k : kernels) {
    if (!k.layer)
      continue;
    std::string prefix = "_mlir_ciface_" + k.name + "_";
    for (const llvm::Function &f : llvmModule) {
      StringRef name = f.getName();
      if (!f.isDeclaration() || f.arg_empty() || !name.consume_front(prefix) ||
          !name.consume_back("_run") || !isStage(name))
        continue;
      k.stages.emplace_back(name.str(), f.arg_size() - 1);
    }
  }
}

/// The C glue: argument tables, shape checks and grid, workgroup trampolines,
/// the library descriptor and a serial convenience entry per kernel. Kernel
/// i's own tables and functions are `femc_k<i>_*` (user names cannot start
/// with femc_); every name and description is written through cString or
/// cComment.
std::string emitGlue(const std::vector<KernelInfo> &kernels, StringRef stem,
                     StringRef source, StringRef targetDescription,
                     ArrayRef<std::string> requiredFeatures,
                     const DeviceGlue *device) {
  std::string s;
  llvm::raw_string_ostream os(s);
  bool anyLayer = llvm::any_of(kernels, [](auto &k) { return k.layer; });
  bool anyKernel = llvm::any_of(kernels, [](auto &k) { return !k.layer; });
  os << "/* Generated by " << version() << " from " << cComment(source)
     << ". Do not edit. */\n"
     << "#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
     << "#include <string.h>\n"
     << "#include \"femrt/kernel_abi.h\"\n\n";
  if (llvm::is_contained(requiredFeatures, "amx-tile"))
    os << "#include <errno.h>\n\n";
  // Checks shared by both binders: rank-`rank` extents, compact row-major
  // strides, no overflow, data present. Sets *count to the element count.
  os << R"C(/* Checks the memref of argument a: extents against the static shape,
 * compact row-major strides, element count, data pointer. */
static int femc_check(const femrt_arg_info *info, int a, const femrt_memref *m,
                      const char *const *dim_names, char *err, size_t len) {
  int rank = info[a].rank;
  int64_t count = 1;
  int empty = 0;
  if (!m) {
    snprintf(err, len, "argument '%s' (#%d) is null", info[a].name, a);
    return 1;
  }
  /* An empty tensor has no elements to address: its strides and the
     product of its other extents (which may overflow) do not matter. */
  for (int d = 0; d < rank; ++d)
    empty |= m->dims[d] == 0;
  for (int d = rank - 1; d >= 0; --d) {
    int64_t e = m->dims[d];
    if (e < 0) {
      snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) is negative: %lld",
               info[a].name, a, d, dim_names[d], (long long)e);
      return 1;
    }
    if (info[a].shape[d] >= 0 && info[a].shape[d] != e) {
      snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) must be %lld, found %lld",
               info[a].name, a, d, dim_names[d], (long long)info[a].shape[d], (long long)e);
      return 1;
    }
    if (empty)
      continue;
    if (e != 1 && m->dims[rank + d] != count) {
      snprintf(err, len, "argument '%s' (#%d) must be contiguous row-major: stride of dimension %d is %lld, expected %lld",
               info[a].name, a, d, (long long)m->dims[rank + d], (long long)count);
      return 1;
    }
    if (__builtin_mul_overflow(count, e, &count)) {
      snprintf(err, len, "argument '%s' (#%d) has too many elements", info[a].name, a);
      return 1;
    }
  }
  if (empty)
    count = 0;
  if (!m->aligned && count != 0) {
    snprintf(err, len, "argument '%s' (#%d) has no data: its pointer is NULL but it has %lld elements",
             info[a].name, a, (long long)count);
    return 1;
  }
  return 0;
}

)C";
  if (anyKernel)
    os << R"C(static const char *const femc_symbols[9] = {"B", "T", "S", "H", "Hkv", "dk", "dv", "E", "N"};

/* Binds the FEM extents across arguments; reports the first mismatch. */
static int femc_bind(const femrt_arg_info *info, const int (*syms)[9],
                     int nargs, void *const *args, int64_t sym[9],
                     char *err, size_t len) {
  int src[9];
  int64_t e_expected;
  for (int i = 0; i < 9; ++i) { sym[i] = -1; src[i] = -1; }
  for (int a = 0; a < nargs; ++a) {
    const femrt_memref *m = (const femrt_memref *)args[a];
    const char *dim_names[8];
    /* An extent outside the table (-1: the state's Ks) is static. */
    for (int d = 0; d < info[a].rank; ++d)
      dim_names[d] = syms[a][d] < 0 ? "Ks" : femc_symbols[syms[a][d]];
    if (femc_check(info, a, m, dim_names, err, len)) return 1;
    for (int d = 0; d < info[a].rank; ++d) {
      int64_t e = m->dims[d];
      int s = syms[a][d];
      if (s < 0) continue;
      if (sym[s] < 0) { sym[s] = e; src[s] = a; continue; }
      if (sym[s] != e) {
        snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) is %lld but argument '%s' has %s = %lld",
                 info[a].name, a, d, femc_symbols[s], (long long)e, info[src[s]].name,
                 femc_symbols[s], (long long)sym[s]);
        return 1;
      }
    }
  }
  if (sym[4] == 0 && sym[3] > 0) {
    snprintf(err, len, "argument 'k' has Hkv = %lld key/value heads; expected at least 1", (long long)sym[4]);
    return 1;
  }
  if (sym[4] > 0 && sym[3] % sym[4] != 0) {
    snprintf(err, len, "the query heads H = %lld (argument 'q') must be a multiple of the key/value heads Hkv = %lld (argument 'k')",
             (long long)sym[3], (long long)sym[4]);
    return 1;
  }
  if (__builtin_mul_overflow(sym[3], sym[6], &e_expected)) {
    snprintf(err, len, "H * dv = %lld * %lld (arguments 'q' and 'v') does not fit in 64 bits",
             (long long)sym[3], (long long)sym[6]);
    return 1;
  }
  if (sym[7] != e_expected) {
    snprintf(err, len, "argument 'beta_raw' has E = %lld entries but H * dv = %lld * %lld = %lld",
             (long long)sym[7], (long long)sym[3], (long long)sym[6], (long long)e_expected);
    return 1;
  }
  return 0;
}

)C";
  // Layers: extents named by fem.dims, bound across arguments by name. The
  // caller's sym/src arrays have one entry per name (nsyms).
  if (anyLayer)
    os << R"C(/* Binds the named extents of a layer's arguments; no FEM relations.
 * sym and src have nsyms entries, one per name. */
static int femc_bind_named(const femrt_arg_info *info, const int (*syms)[9],
                           int nargs, const char *const *names, int nsyms,
                           void *const *args, int64_t *sym, int *src,
                           char *err, size_t len) {
  for (int i = 0; i < nsyms; ++i) { sym[i] = -1; src[i] = -1; }
  for (int a = 0; a < nargs; ++a) {
    const femrt_memref *m = (const femrt_memref *)args[a];
    const char *dim_names[8];
    for (int d = 0; d < info[a].rank; ++d) dim_names[d] = names[syms[a][d]];
    if (femc_check(info, a, m, dim_names, err, len)) return 1;
    for (int d = 0; d < info[a].rank; ++d) {
      int s = syms[a][d];
      int64_t e = m->dims[d];
      if (sym[s] < 0) { sym[s] = e; src[s] = a; continue; }
      if (sym[s] != e) {
        snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) is %lld but argument '%s' has %s = %lld",
                 info[a].name, a, d, names[s], (long long)e, info[src[s]].name, names[s], (long long)sym[s]);
        return 1;
      }
    }
  }
  return 0;
}

)C";
  // A device target's library refuses host launches (its prepare fails
  // with the target's message before anything runs).
  if (device)
    os << "static int femc_cpu_ok(char *err, size_t len) {\n"
       << "  snprintf(err, len, \"%s\", "
       << cString(device->target->hostLaunchRefusal())
       << ");\n  return 0;\n}\n\n";
  // Refuse to run on a CPU that lacks the instructions the code uses.
  else {
  os << "static int femc_cpu_ok(char *err, size_t len) {\n"
     << "#if defined(__x86_64__)\n  __builtin_cpu_init();\n";
  for (const std::string &f : requiredFeatures)
    os << "  if (!__builtin_cpu_supports(" << cString(f) << ")) {\n"
       << "    snprintf(err, len, \"this kernel library was compiled for %s, "
          "which needs %s, and this CPU does not have it; recompile with "
          "femc --target=host on this machine\", "
       << cString(targetDescription) << ", " << cString(f)
       << ");\n    return 0;\n  }\n";
  // AMX tile data stays off until the process asks Linux for it; the first
  // tile instruction would raise SIGILL. Asked once, before any kernel runs.
  if (llvm::is_contained(requiredFeatures, "amx-tile"))
    os << "#if defined(__linux__)\n  {\n"
       << "    extern long syscall(long, ...);\n"
       << "    static volatile int femc_amx_granted;\n"
       << "    /* arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) */\n"
       << "    if (!femc_amx_granted && syscall(158, 0x1023, 18) != 0) {\n"
       << "      snprintf(err, len, \"this kernel library uses AMX tiles and "
          "Linux refused them to this process (arch_prctl "
          "ARCH_REQ_XCOMP_PERM: %s; AMX needs Linux 5.16 or later); "
          "recompile for a target without +amx, e.g. femc "
          "--target=x86-64-v4\", strerror(errno));\n"
       << "      return 0;\n    }\n    femc_amx_granted = 1;\n  }\n#endif\n";
  os << "#endif\n  (void)err; (void)len;\n  return 1;\n}\n\n";
  } // the host check

  if (!device)
    emitMemoryFunctions(os, stem, anyLayer);
  auto list = [&](auto &&range) {
    // An empty C initializer list is not C11: write {0}.
    if (std::empty(range))
      os << "0";
    else
      llvm::interleaveComma(range, os);
  };
  for (auto [index, k] : llvm::enumerate(kernels)) {
    std::string id = "femc_k" + std::to_string(index);
    size_t n = k.args.size();
    os << "/* kernel " << cComment(k.name) << ": " << cComment(describe(k))
       << " */\n";
    if (device) {
      // No host code: the workgroup function is never called (prepare
      // refuses), and the device half below launches the kernel.
    } else if (k.layer) {
      os << "extern void " << k.wgSymbol << "(";
      // MLIR's C interface: the returned buffer's descriptor comes first.
      os << "femrt_memref *";
      for (size_t i = 0; i + 1 < n; ++i)
        os << ", void *";
      os << ");\n";
    } else {
      os << "extern void " << k.wgSymbol << "(";
      for (size_t i = 0; i < n; ++i)
        os << "void *, ";
      os << "int64_t, int64_t, int64_t);\n";
    }
    os << "static const femrt_arg_info " << id << "_args[" << n << "] = {\n";
    for (const auto &a : k.args) {
      os << "  {" << cString(a.name) << ", " << cString(a.dims) << ", "
         << a.code << ", " << a.bits << ", "
         << (a.output ? "FEMRT_ARG_OUTPUT" : "FEMRT_ARG_INPUT") << ", "
         << a.shape.size() << ", {";
      list(a.shape);
      os << "}},\n";
    }
    os << "};\n";
    os << "static const int " << id << "_syms[" << n << "][9] = {";
    for (const auto &a : k.args) {
      os << "{";
      list(a.symbols);
      os << "}, ";
    }
    os << "};\n";
    if (k.layer) {
      size_t nsyms = k.symbolNames.size();
      // Arrays of exactly nsyms entries (at least one: C has no empty arrays).
      size_t size = std::max<size_t>(nsyms, 1);
      os << "static const char *const " << id << "_names[" << size << "] = {";
      if (nsyms == 0)
        os << "0";
      for (const std::string &name : k.symbolNames)
        os << cString(name) << ", ";
      os << "};\n";
      os << "static int " << id
         << "_prepare(void *const *args, int64_t grid[3], char *err, size_t "
            "len) {\n"
         << "  int64_t sym[" << size << "];\n  int src[" << size << "];\n"
         << "  if (!femc_cpu_ok(err, len)) return 1;\n"
         << "  if (femc_bind_named(" << id << "_args, " << id << "_syms, " << n
         << ", " << id << "_names, " << nsyms
         << ", args, sym, src, err, len)) return 1;\n"
         << "  grid[0] = grid[1] = grid[2] = 1;\n  return 0;\n}\n";
      // The layer returns its result in a buffer it allocated: copy it into
      // the caller's output and free it. Prepare checked the output against
      // the names of its fem.dims; an extent no input fixes can still differ
      // from what the layer computed, and a workgroup cannot fail: such a
      // mismatch (or a strided result) stops the process with a message
      // instead of writing past the output.
      const KernelInfo::Arg &out = k.args.back();
      size_t rank = out.shape.size();
      os << "static void " << id
         << "_workgroup(void *const *a, int64_t x, int64_t y, int64_t z) {\n"
         << "  femrt_memref r;\n  femrt_memref *o = (femrt_memref *)a[" << n - 1
         << "];\n  size_t count = 1;\n  int64_t stride = 1;\n"
         << "  (void)x; (void)y; (void)z;\n"
         // An empty output: nothing to compute (its intermediates, sized by
         // the other extents, could be too large to allocate).
         << "  for (int d = 0; d < " << rank << "; ++d)\n"
         << "    if (o->dims[d] == 0) return;\n"
         << "  memset(&r, 0, sizeof r);\n  " << k.wgSymbol << "(&r";
      for (size_t i = 0; i + 1 < n; ++i)
        os << ", a[" << i << "]";
      os << ");\n"
         << "  for (int d = " << rank << " - 1; d >= 0; --d) {\n"
         << "    if (r.dims[d] != o->dims[d]) {\n"
         << "      fprintf(stderr, \"femc: layer %s computed a result with "
            "extent %lld in dimension %d, but its output 'out' has %lld "
            "there (%s): name the result's extents in fem.dims after extents "
            "of the inputs\\n\", "
         << cString(k.name) << ", (long long)r.dims[d], d, (long long)o->dims[d], "
         << cString(out.dims) << ");\n      abort();\n    }\n"
         << "    if (r.dims[d] != 1 && r.dims[" << rank << " + d] != stride) {\n"
         << "      fprintf(stderr, \"femc: layer %s returned a strided result; "
            "this version copies only contiguous results\\n\", "
         << cString(k.name) << ");\n      abort();\n    }\n"
         << "    stride *= r.dims[d];\n"
         << "    count *= (size_t)r.dims[d];\n  }\n"
         << "  if (count)\n"
         << "    memcpy((float *)o->aligned + o->offset, (float *)r.aligned + "
            "r.offset, count * sizeof(float));\n"
         << "  " << memoryFunctionName(stem, "free")
         << "(r.allocated);\n}\n";
    } else {
      os << "static int " << id
         << "_prepare(void *const *args, int64_t grid[3], char *err, size_t "
            "len) {\n"
         << "  int64_t sym[9];\n"
         << "  if (!femc_cpu_ok(err, len)) return 1;\n"
         << "  if (femc_bind(" << id << "_args, " << id << "_syms, " << n
         << ", args, sym, err, len)) return 1;\n";
      // dk = 0 (priors with keys) and N = 0 (ssm): refused as the
      // reference and the verifier refuse them (the kernel wrote NaN).
      if (const femc::priors::PriorInfo *info = femc::priors::findPrior(k.prior))
        for (auto [extent, what, arg, needed] :
             {std::tuple{"dk", "the width of q and k", "q", info->usesKeys},
              std::tuple{"N", "the state size of A, Bs and Cs", "A",
                         info->algorithm == femc::priors::ReadAlgorithm::SsmScan}})
          if (needed)
            os << "  if (sym[" << femc::priors::extentIndex(extent)
               << "] < 1) {\n    snprintf(err, len, \"prior '" << k.prior
               << "' needs " << extent << " >= 1 (" << what << "), found "
               << extent << " = %lld (argument '" << arg
               << "')\", (long long)sym[" << femc::priors::extentIndex(extent)
               << "]);\n    return 1;\n  }\n";
      if (k.dkDividesDv)
        os << "  if (sym[5] <= 0 || 2 * sym[6] % sym[5] != 0) {\n"
           << "    snprintf(err, len, \"prior '" << k.prior
           << "' needs dk to divide the read width 2 * dv, found dk = %lld "
              "(argument 'q') and dv = %lld\", (long long)sym[5], "
              "(long long)sym[6]);\n"
           << "    return 1;\n  }\n";
      // The grid fem-tile stamped on the workgroup function (fem.grid).
      for (size_t i = 0; i < k.grid.size(); ++i) {
        auto [symbol, divisor] = k.grid[i];
        if (divisor == 1)
          os << "  grid[" << i << "] = sym[" << symbol << "];\n";
        else
          os << "  grid[" << i << "] = sym[" << symbol << "] / " << divisor
             << " + (sym[" << symbol << "] % " << divisor << " != 0);\n";
      }
      os << "  return 0;\n}\n";
      if (device) {
        os << "static void " << id
           << "_workgroup(void *const *a, int64_t x, int64_t y, int64_t z) "
              "{\n  (void)a; (void)x; (void)y; (void)z;\n"
           << "  fprintf(stderr, \"femc: kernel %s runs on a CUDA device; "
              "its host workgroup cannot run\\n\", "
           << cString(k.name) << ");\n  abort();\n}\n";
        continue;
      }
      os << "static void " << id
         << "_workgroup(void *const *a, int64_t x, int64_t y, int64_t z) {\n  "
         << k.wgSymbol << "(";
      for (size_t i = 0; i < n; ++i)
        os << "a[" << i << "], ";
      os << "x, y, z);\n}\n";
    }
    // Serial convenience entry, as declared in the header. Its locals are
    // femc_-prefixed: parameters never are.
    os << "int " << k.name << "(";
    for (size_t i = 0; i < n; ++i)
      os << (k.args[i].output ? "" : "const ") << "femrt_memref *"
         << paramName(k.args[i].name, i) << ", ";
    os << "char *err, size_t err_len) {\n  void *femc_args[" << n << "] = {";
    for (size_t i = 0; i < n; ++i)
      os << "(void *)" << paramName(k.args[i].name, i) << ", ";
    os << "};\n  int64_t femc_grid[3];\n  char femc_local[256];\n"
       << "  if (!err) { err = femc_local; err_len = sizeof femc_local; }\n"
       << "  if (" << id
       << "_prepare(femc_args, femc_grid, err, err_len)) return 1;\n"
       << "  for (int64_t z = 0; z < femc_grid[2]; ++z)\n"
       << "    for (int64_t y = 0; y < femc_grid[1]; ++y)\n"
       << "      for (int64_t x = 0; x < femc_grid[0]; ++x)\n"
       << "        " << id << "_workgroup(femc_args, x, y, z);\n"
       << "  return 0;\n}\n\n";
  }
  // The stages of layers (their FEM reads and fem-layer-matmul's
  // projections) run their grids through femc_parallel, on the pool
  // libfemrt lends the layer (femrt_host).
  emitLayerStages(os, kernels);
  // Scan kernels split along the sequence (ScanSplitGlue.h).
  auto splits = [&](const KernelInfo &k) { return !device && k.splitKs > 0; };
  if (llvm::any_of(kernels, splits))
    emitSplitCommon(os);
  for (auto [index, k] : llvm::enumerate(kernels)) {
    if (!splits(k))
      continue;
    SplitGlueKernel g;
    g.id = "femc_k" + std::to_string(index);
    g.wgName = k.wgName;
    g.prior = femc::priors::findPrior(k.prior);
    g.causal = k.causal;
    g.chunk = k.tileQ;
    g.ks = k.splitKs;
    g.epsLiteral = cDouble(static_cast<float>(k.eps));
    for (const KernelInfo::Arg &a : k.args)
      g.args.push_back({a.name, a.symbols, a.bits / 8});
    emitSplitKernel(os, g);
  }
  if (device) {
    std::vector<GlueKernel> glue;
    for (auto [index, k] : llvm::enumerate(kernels)) {
      GlueKernel g;
      g.id = "femc_k" + std::to_string(index);
      g.name = k.name;
      g.nameLiteral = cString(k.name);
      g.causal = k.causal;
      g.dkDividesDv = k.dkDividesDv;
      g.device = &device->kernels[index];
      for (auto [i, a] : llvm::enumerate(k.args)) {
        g.params.push_back(paramName(a.name, i));
        g.outputs.push_back(a.output);
        g.elementBytes.push_back(a.bits / 8);
      }
      glue.push_back(std::move(g));
    }
    device->target->writeDeviceGlue(os, stemIdent(stem), glue, device->image,
                                    device->assembly);
  }
  for (auto [index, k] : llvm::enumerate(kernels))
    os << "static const femrt_kernel_traits femc_k" << index
       << "_traits = " << traitsInitializer(k) << ";\n";
  os << "static const femrt_kernel_info femc_kernels[" << kernels.size()
     << "] = {\n";
  for (auto [index, k] : llvm::enumerate(kernels)) {
    std::string id = "femc_k" + std::to_string(index);
    os << "  {" << cString(k.name) << ", " << k.args.size() << ", " << id
       << "_args, " << id << "_prepare, " << id << "_workgroup, "
       << cString(describe(k)) << ", &" << id << "_traits, "
       << (splits(k) ? id + "_split" : std::string("0")) << "},\n";
  }
  os << "};\n"
     << "static const femrt_kernel_library femc_library = {\n"
     << "  FEMRT_KERNEL_ABI_VERSION, (uint32_t)sizeof(femrt_kernel_library), "
     << cString(version()) << ", " << cString(targetDescription) << ", "
     << kernels.size()
     << ", (uint32_t)sizeof(femrt_kernel_info), femc_kernels, "
     << (llvm::any_of(kernels, [](auto &k) { return k.layer; })
             ? "femc_bind_host"
             : "0")
     << "};\n"
     << "const femrt_kernel_library *femc_" << stemIdent(stem)
     << "_library(void) { return &femc_library; }\n"
     << "/* Weak, so several femc objects can be linked into one program. */\n"
     << "__attribute__((weak)) const femrt_kernel_library "
        "*femrt_library_query(void) { return &femc_library; }\n";
  return s;
}

std::string emitHeader(const std::vector<KernelInfo> &kernels, StringRef stem,
                       StringRef source, StringRef targetDescription,
                       const Target *device) {
  std::string s;
  llvm::raw_string_ostream os(s);
  std::string lib = stemIdent(stem);
  std::string guard = "FEMC_" + StringRef(lib).upper() + "_H";
  std::string file = cComment(stem);
  os << "/* Generated by " << version() << " from " << cComment(source)
     << " for " << cComment(targetDescription) << ". Do not edit.\n";
  if (device) {
    // A device library: typed entry points that launch on the caller's
    // device and stream (target/nvidia/CudaGlue.cpp).
    os << " *\n * Link " << file << ".so (it needs libfemrt) and launch a "
          "kernel with the entry\n"
       << " * point below on a device from femrt_device_open_cuda and a "
          "CUDA stream\n"
       << " * (NULL: the default stream); the launch is asynchronous.\n"
       << " * Every argument is a contiguous row-major femrt_memref whose "
          "pointers are\n"
       << " * device addresses, 16-byte aligned; entry points return 0, or "
          "non-zero with\n * a message in err.\n"
       << " */\n#ifndef " << guard << "\n#define " << guard << "\n\n"
       << "#include \"femrt/femrt.h\"\n\n#ifdef __cplusplus\nextern \"C\" "
          "{\n#endif\n\n"
       << "const femrt_kernel_library *femc_" << lib << "_library(void);\n"
       << "/* Kernel number `kernel` of the library's table on `args` "
          "(femrt_memref *). */\n"
       << "int femc_" << lib
       << "_cuda_launch(int32_t kernel, femrt_device *device, void *stream, "
          "void *const *args, char *err, size_t err_len);\n\n";
  } else
  os << " *\n * Link " << file << ".o (or " << file
     << ".so) and run a kernel either\n"
     << " *  - serially on the calling thread with the entry point below, or\n"
     << " *  - on a thread pool through libfemrt: femrt_module_create_static(\n"
     << " *    ctx, femc_" << lib << "_library(), ...).\n"
     << " * Every argument is a contiguous row-major femrt_memref (strides in\n"
     << " * elements); entry points return 0, or non-zero with a message in err.\n"
     << " */\n#ifndef " << guard << "\n#define " << guard << "\n\n"
     << "#include \"femrt/kernel_abi.h\"\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
     << "const femrt_kernel_library *femc_" << lib << "_library(void);\n\n";
  for (const KernelInfo &k : kernels) {
    os << "/* " << k.name << ": " << cComment(describe(k)) << "\n";
    for (auto [i, a] : llvm::enumerate(k.args)) {
      std::string param = paramName(a.name, i);
      std::string name = cComment(a.name);
      if (param != a.name)
        name = param + " ('" + name + "')";
      os << " *   " << llvm::left_justify(name, 9) << " " << a.dtype << " [";
      SmallVector<StringRef> dims;
      StringRef(a.dims).split(dims, ',');
      for (size_t d = 0; d < a.shape.size(); ++d) {
        if (d)
          os << ", ";
        if (a.shape[d] < 0)
          os << cComment(dims[d]);
        else
          os << a.shape[d];
      }
      os << "]  (" << cComment(a.dims) << ")" << (a.output ? "  output" : "")
         << "\n";
    }
    if (k.layer)
      os << " * grid: one workgroup */\n";
    else
      os << " * grid: (" << gridText(k) << ") workgroups */\n";
    os << "int " << k.name << "("
       << (device ? device->entryParameters() : std::string());
    for (auto [i, a] : llvm::enumerate(k.args))
      os << (a.output ? "" : "const ") << "femrt_memref *" << paramName(a.name, i)
         << ", ";
    os << "char *err, size_t err_len);\n\n";
  }
  os << "#ifdef __cplusplus\n}\n#endif\n#endif\n";
  return s;
}

std::string emitManifest(const std::vector<KernelInfo> &kernels,
                         StringRef source, StringRef targetDescription,
                         ArrayRef<std::string> files,
                         const DeviceGlue *device) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "{\n  \"producer\": " << jsonString(version())
     << ",\n  \"abi_version\": " << FEMRT_KERNEL_ABI_VERSION << ",\n"
     << "  \"source\": " << jsonString(source)
     << ",\n  \"target\": " << jsonString(targetDescription);
  if (device)
    os << ",\n  \"device\": " << jsonString(device->target->device())
       << ", \"arch\": " << jsonString(device->target->cpu());
  os << ",\n  \"files\": [";
  llvm::interleaveComma(files, os, [&](const std::string &f) {
    os << jsonString(llvm::sys::path::filename(f));
  });
  os << "],\n  \"kernels\": [\n";
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelInfo &k = kernels[i];
    os << "    {\"name\": " << jsonString(k.name)
       << ", \"prior\": " << jsonString(k.prior)
       << ", \"causal\": " << (k.causal ? "true" : "false")
       << ", \"layout\": " << jsonString(k.layout)
       << ", \"mask\": " << (k.hasMask ? "true" : "false")
       << ", \"scale\": " << (k.scale ? cDouble(*k.scale) : "null")
       << ", \"cap\": " << cDouble(k.layer ? 0.0 : k.cap)
       << ", \"eps\": " << cDouble(k.layer ? 0.0 : k.eps)
       << ",\n     \"tiles\": {\"q\": " << k.tileQ << ", \"k\": " << k.tileK
       << ", \"vec\": " << k.vec << "}, \"grid\": "
       << (k.layer ? std::string("[\"1\", \"1\", \"1\"]") : gridJson(k))
       << ",\n";
    // fem-tune's pool threads (docs/tuning.md): fem-run and femc.compile
    // launch with them unless told otherwise.
    if (k.threads > 0)
      os << "     \"threads\": " << k.threads << ",\n";
    // The chunk-level parallel prefix (ScanSplitGlue.h): when it may split.
    if (!k.layer && !device && k.splitKs > 0)
      os << "     \"split\": {\"min_t\": " << kDefaultSplitMinT
         << ", \"max_segments\": " << kMaxSplitSegments
         << ", \"chunk\": " << k.tileQ << "},\n";
    else if (!k.splitWhy.empty())
      os << "     \"split\": null, \"split_refused\": "
         << jsonString(k.splitWhy) << ",\n";
    if (!k.layerConfig.empty())
      os << "     \"layer\": " << k.layerConfig << ",\n";
    if (device) {
      const DeviceKernel &d = device->kernels[i];
      os << "     \"entry\": " << jsonString(d.symbol) << ", \"block\": ["
         << d.block[0] << ", " << d.block[1] << ", " << d.block[2]
         << "], \"shared_bytes\": " << d.sharedBytes
         << ", \"static_shared_bytes\": " << d.staticSharedBytes
         << ", \"dtype\": " << jsonString(d.dtype) << ",\n";
    }
    os << "     \"args\": [\n";
    for (size_t j = 0; j < k.args.size(); ++j) {
      const auto &a = k.args[j];
      os << "       {\"name\": " << jsonString(a.name) << ", \"role\": \""
         << (a.output ? "output" : "input")
         << "\", \"dtype\": " << jsonString(a.dtype)
         << ", \"dims\": " << jsonString(a.dims) << ", \"shape\": [";
      llvm::interleaveComma(a.shape, os);
      os << "]}" << (j + 1 < k.args.size() ? "," : "") << "\n";
    }
    os << "     ]}" << (i + 1 < kernels.size() ? "," : "") << "\n";
  }
  os << "  ]\n}\n";
  return s;
}

} // namespace femc::driver
