//===- Objects.h - Runtime objects behind the C API handles -----*- C++ -*-===//
#ifndef FEMRT_SRC_OBJECTS_H
#define FEMRT_SRC_OBJECTS_H

#include "femrt/femrt.h"
#include "runtime/src/Handles.h"
#include "runtime/src/ScratchCache.h"
#include "runtime/src/ThreadPool.h"

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace femc::rt {

/// A femrt_context: owns the CPU thread pool.
struct Context {
  static constexpr HandleKind handleKind = HandleKind::Context;

  explicit Context(int numThreads) : pool(numThreads) {}

  ThreadPool pool;
};

/// One kernel of a library, with the library's strings copied and
/// normalized (NULL strings become "").
struct KernelData {
  std::string name;
  std::string description;
  std::vector<std::string> argNames;
  std::vector<std::string> dimNames;
  /// The library's argument table with `name`/`dim_names` pointing into
  /// argNames/dimNames.
  std::vector<femrt_arg_info> args;
  femrt_prepare_fn prepare = nullptr;
  femrt_workgroup_fn workgroup = nullptr;
  /// femrt_kernel_info::split (NULL: the kernel is never split).
  int (*split)(void *const *, const int64_t *, const femrt_host *) = nullptr;
  /// The library's traits, validated, in this runtime's layout (a newer
  /// producer's appended fields dropped); valid only when hasTraits.
  bool hasTraits = false;
  femrt_kernel_traits traits{};
};

/// A femrt_module: a validated kernel library, possibly dlopen'ed.
struct Module {
  static constexpr HandleKind handleKind = HandleKind::Module;

  Module() = default;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;
  /// dlcloses the library, if one was loaded.
  ~Module();

  std::shared_ptr<Context> context;
  /// The dlopen handle (null for a static library).
  void *library = nullptr;
  /// For messages: "library '/path/lib.so'" or "static library 'producer'".
  std::string origin;
  std::string producer;
  std::string target;
  std::vector<KernelData> kernels;
  /// The library's femrt_bind_host_fn; null if it has none.
  femrt_bind_host_fn bindHost = nullptr;
  /// The scratch blocks its layers' intermediates reuse from launch to
  /// launch (femrt_host::scratch_alloc); freed with the module.
  ScratchCache scratch;
  std::unordered_map<std::string, int32_t> kernelIndex;
  /// The handle of each kernel (registered as children of the module).
  std::vector<uintptr_t> kernelHandles;
};

/// A femrt_kernel: one kernel of a module (keeps the module alive).
struct Kernel {
  static constexpr HandleKind handleKind = HandleKind::Kernel;

  Kernel(std::shared_ptr<Module> module, int32_t index)
      : module(std::move(module)), index(index) {}

  const KernelData &data() const { return module->kernels[index]; }

  std::shared_ptr<Module> module;
  int32_t index;
  /// Segments of the last launch through this handle (1: not split;
  /// femrt_kernel_last_segments).
  mutable std::atomic<int> lastSegments{0};
};

/// Validates `library` (ABI version, struct size, every table) and fills
/// `module`'s origin-independent fields. `origin` is used in messages.
femrt_status buildModule(const femrt_kernel_library *library,
                         const std::string &origin, Module &module);

/// dlopen(path, RTLD_NOW | RTLD_LOCAL) of the file `path` names now. glibc
/// returns a library already loaded under the same name without looking at
/// the file, so a library rebuilt at the same path (femc writes a new file
/// and renames it over the old one) while the old one is still loaded would
/// give the old kernels without a word. When the loaded library is another
/// file than `path` names now (device and inode, from /proc/self/maps), the
/// file is opened under an equivalent name glibc has not seen ("D/./N.so").
/// Returns NULL with dlerror() set as dlopen does.
void *openLibraryFile(const char *path);

/// Checks the arguments and runs `kernel`'s grid on the context's pool
/// (runtime/src/cpu/HostLaunch.cpp).
femrt_status launchHostKernel(const Kernel &kernel, const DLTensor *const *args,
                              int32_t numArgs,
                              const femrt_launch_options *options);

} // namespace femc::rt

#endif // FEMRT_SRC_OBJECTS_H
