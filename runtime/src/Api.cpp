//===- Api.cpp - C entry points: contexts, modules, kernels ---------------===//
//
// Each entry point checks its parameters, resolves handles through the
// registry (never dereferencing a caller-supplied pointer as an object) and
// runs inside `guard`, so no exception crosses the C ABI.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/ElfCheck.h"
#include "runtime/src/Objects.h"

#include <dlfcn.h>

#include <cstring>
#include <system_error>

using namespace femc::rt;

static_assert(FEMRT_MAX_THREADS == ThreadPool::kMaxThreads,
              "femrt.h and ThreadPool disagree on the thread limit");

namespace {

/// num_threads must be 0 (one per core) or 1 to FEMRT_MAX_THREADS.
femrt_status checkNumThreads(const char *function, const char *param,
                             int32_t numThreads) {
  if (numThreads < 0 || numThreads > FEMRT_MAX_THREADS)
    return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                concat(function, ": ", param, " is ", numThreads,
                       ", expected 0 (one per core) or 1 to ",
                       FEMRT_MAX_THREADS, " (FEMRT_MAX_THREADS)"));
  return FEMRT_OK;
}

femrt_status checkContextOptions(const char *function,
                                 const femrt_context_options *options) {
  if (options->struct_size < sizeof(femrt_context_options))
    return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                concat(function, ": options->struct_size is ",
                       options->struct_size, ", expected at least ",
                       sizeof(femrt_context_options),
                       " (initialize with femrt_context_options_init)"));
  return checkNumThreads(function, "options->num_threads",
                         options->num_threads);
}

/// Runs `body`, which starts worker threads of a context; turns the
/// std::system_error of a thread the system refused into
/// FEMRT_ERROR_OUT_OF_MEMORY. `kept()` says what the context has afterwards.
template <typename Body, typename Kept>
femrt_status startingThreads(const char *function, Body &&body, Kept &&kept) {
  try {
    body();
  } catch (const std::system_error &e) {
    return fail(FEMRT_ERROR_OUT_OF_MEMORY,
                concat(function, ": ", e.what(),
                       "; the system refused another thread (see ulimit -u "
                       "/ RLIMIT_NPROC, or memory); ",
                       kept()));
  }
  return FEMRT_OK;
}

/// Registers a validated module and one handle per kernel.
femrt_status registerModule(const char *function, femrt_context *contextHandle,
                            std::shared_ptr<Module> module,
                            femrt_module **outModule) {
  HandleRegistry &registry = HandleRegistry::instance();
  uintptr_t handle =
      registry.add(HandleKind::Module, module, fromHandle(contextHandle));
  auto contextGone = [&] {
    return fail(FEMRT_ERROR_INVALID_HANDLE,
                concat(function,
                       ": the context was destroyed while the module was "
                       "being created"));
  };
  if (!handle)
    return contextGone();
  module->kernelHandles.resize(module->kernels.size());
  for (size_t i = 0; i < module->kernels.size(); ++i) {
    uintptr_t kernel = registry.add(
        HandleKind::Kernel,
        std::make_shared<Kernel>(module, static_cast<int32_t>(i)), handle);
    if (!kernel)
      return contextGone();
    module->kernelHandles[i] = kernel;
  }
  *outModule = toHandle<femrt_module>(handle);
  return FEMRT_OK;
}

/// The body of an accessor, inside `guard`: looks `handle` up as a T
/// (parameter `param`), checks the out parameter `out` (named `outParam`),
/// then returns `body(object)`, which fills `*out` or fails.
template <typename T, typename Handle, typename Out, typename Body>
femrt_status withObject(const char *function, Handle *handle, const char *param,
                        Out *out, const char *outParam, Body &&body) {
  return guard(function, [&] {
    std::shared_ptr<T> object;
    if (femrt_status s = lookup(handle, function, param, object))
      return s;
    if (femrt_status s = checkOut(out, function, outParam))
      return s;
    return body(*object);
  });
}

/// An accessor whose value cannot fail: `*out = get(object)`.
template <typename T, typename Handle, typename Out, typename Get>
femrt_status getField(const char *function, Handle *handle, const char *param,
                      Out *out, const char *outParam, Get &&get) {
  return withObject<T>(function, handle, param, out, outParam, [&](T &object) {
    *out = get(object);
    return FEMRT_OK;
  });
}

} // namespace

extern "C" {

//===----------------------------------------------------------------------===//
// Contexts
//===----------------------------------------------------------------------===//

femrt_status femrt_context_options_init(femrt_context_options *out_options) {
  const char *function = __func__;
  return guard(function, [&] {
    if (femrt_status s = checkOut(out_options, function, "out_options"))
      return s;
    std::memset(out_options, 0, sizeof(*out_options));
    out_options->struct_size = sizeof(femrt_context_options);
    out_options->num_threads = 0;
    return FEMRT_OK;
  });
}

femrt_status femrt_context_create(const femrt_context_options *options,
                                  femrt_context **out_context) {
  const char *function = __func__;
  return guard(function, [&] {
    if (femrt_status s = checkOut(out_context, function, "out_context"))
      return s;
    int numThreads = 0;
    if (options) {
      if (femrt_status s = checkContextOptions(function, options))
        return s;
      numThreads = options->num_threads;
    }
    std::shared_ptr<Context> context;
    if (femrt_status s = startingThreads(
            function, [&] { context = std::make_shared<Context>(numThreads); },
            [] { return std::string("no thread was left running"); }))
      return s;
    uintptr_t handle =
        HandleRegistry::instance().add(HandleKind::Context, context, 0);
    *out_context = toHandle<femrt_context>(handle);
    return FEMRT_OK;
  });
}

femrt_status femrt_context_destroy(femrt_context *context) {
  const char *function = __func__;
  return guard(function, [&] {
    return destroyHandle<Context>(context, function, "context");
  });
}

femrt_status femrt_context_set_num_threads(femrt_context *context,
                                           int32_t num_threads) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Context> ctx;
    if (femrt_status s = lookup(context, function, "context", ctx))
      return s;
    if (femrt_status s = checkNumThreads(function, "num_threads", num_threads))
      return s;
    return startingThreads(
        function, [&] { ctx->pool.setNumThreads(num_threads); }, [&] {
          return concat("the context keeps its ", ctx->pool.getNumThreads(),
                        " threads");
        });
  });
}

femrt_status femrt_context_get_num_threads(femrt_context *context,
                                           int32_t *out_num_threads) {
  return getField<Context>(
      __func__, context, "context", out_num_threads, "out_num_threads",
      [](const Context &ctx) { return ctx.pool.getNumThreads(); });
}

//===----------------------------------------------------------------------===//
// Modules
//===----------------------------------------------------------------------===//

/// What dlopen's "undefined symbol: __asan_..." means for a kernel library:
/// its C glue was compiled with femc --sanitize=LIST and needs that
/// sanitizer's runtime in the process ("" for any other error).
static std::string sanitizerHint(const std::string &error) {
  static const std::pair<const char *, const char *> runtimes[] = {
      {"undefined symbol: __asan_", "address"},
      {"undefined symbol: __ubsan_", "undefined"},
      {"undefined symbol: __tsan_", "thread"},
      {"undefined symbol: __msan_", "memory"},
      {"undefined symbol: __lsan_", "leak"},
      {"undefined symbol: __sanitizer_", "LIST"}};
  for (auto [symbol, name] : runtimes)
    if (error.find(symbol) != std::string::npos)
      return concat(" (the library was compiled with femc --sanitize=", name,
                    " and needs that sanitizer's runtime: load it from a "
                    "program built with -fsanitize=",
                    name, ", or compile it without --sanitize)");
  return "";
}

femrt_status femrt_module_load_library(femrt_context *context,
                                       const char *path,
                                       femrt_module **out_module) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Context> ctx;
    if (femrt_status s = lookup(context, function, "context", ctx))
      return s;
    if (!path || !*path)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": path is ", path ? "empty" : "NULL"));
    if (femrt_status s = checkOut(out_module, function, "out_module"))
      return s;

    std::string origin = concat("library '", path, "'");
    // A path with a '/' names a file: check it before dlopen maps it (a
    // truncated file would crash the loader with SIGBUS, a library for
    // another machine be reported as "No such file or directory").
    if (std::strchr(path, '/'))
      if (femrt_status s = checkElfLibrary(function, path))
        return s;
    // Not dlopen(path) alone: a library rebuilt at `path` while its old
    // file is loaded would give the old kernels (openLibraryFile).
    void *library = openLibraryFile(path);
    if (!library) {
      const char *error = dlerror();
      std::string text = error ? error : "dlopen failed";
      return fail(FEMRT_ERROR_IO, concat(function, ": cannot load ", origin,
                                         ": ", text, sanitizerHint(text)));
    }
    auto module = std::make_shared<Module>();
    module->library = library; // dlclosed by ~Module from here on
    module->context = ctx;

    dlerror();
    void *symbol = dlsym(library, FEMRT_LIBRARY_QUERY_SYMBOL);
    if (!symbol)
      return fail(FEMRT_ERROR_NOT_FOUND,
                  concat(function, ": ", origin, " does not export ",
                         FEMRT_LIBRARY_QUERY_SYMBOL,
                         " (is it a kernel library built by femc?)"));
    auto query = reinterpret_cast<femrt_library_query_fn>(symbol);
    const femrt_kernel_library *table = query();
    if (!table)
      return fail(FEMRT_ERROR_INVALID_LIBRARY,
                  concat(function, ": ", origin, ": ",
                         FEMRT_LIBRARY_QUERY_SYMBOL, "() returned NULL"));
    if (femrt_status s = buildModule(table, origin, *module)) {
      std::string message = concat(function, ": ", femrt_last_error());
      return fail(s, message);
    }
    return registerModule(function, context, std::move(module), out_module);
  });
}

femrt_status femrt_module_create_static(femrt_context *context,
                                        const femrt_kernel_library *library,
                                        femrt_module **out_module) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Context> ctx;
    if (femrt_status s = lookup(context, function, "context", ctx))
      return s;
    if (!library)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": library is NULL"));
    if (femrt_status s = checkOut(out_module, function, "out_module"))
      return s;
    std::string origin =
        library->abi_version == FEMRT_KERNEL_ABI_VERSION &&
                library->struct_size >= sizeof(femrt_kernel_library) &&
                library->producer
            ? concat("static library '", library->producer, "'")
            : std::string("static library");
    auto module = std::make_shared<Module>();
    module->context = ctx;
    if (femrt_status s = buildModule(library, origin, *module)) {
      std::string message = concat(function, ": ", femrt_last_error());
      return fail(s, message);
    }
    return registerModule(function, context, std::move(module), out_module);
  });
}

femrt_status femrt_module_destroy(femrt_module *module) {
  const char *function = __func__;
  return guard(function, [&] {
    return destroyHandle<Module>(module, function, "module");
  });
}

femrt_status femrt_module_get_info(femrt_module *module,
                                   const char **out_producer,
                                   const char **out_target) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Module> m;
    if (femrt_status s = lookup(module, function, "module", m))
      return s;
    if (out_producer)
      *out_producer = m->producer.c_str();
    if (out_target)
      *out_target = m->target.c_str();
    return FEMRT_OK;
  });
}

femrt_status femrt_module_num_kernels(femrt_module *module,
                                      int32_t *out_num_kernels) {
  return getField<Module>(
      __func__, module, "module", out_num_kernels, "out_num_kernels",
      [](const Module &m) { return static_cast<int32_t>(m.kernels.size()); });
}

femrt_status femrt_module_scratch(femrt_module *module, int32_t trim,
                                  uint64_t *out_cached_bytes,
                                  uint64_t *out_reused) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Module> m;
    if (femrt_status s = lookup(module, function, "module", m))
      return s;
    if (trim)
      m->scratch.trim();
    ScratchCache::Stats stats = m->scratch.stats();
    if (out_cached_bytes)
      *out_cached_bytes = stats.cachedBytes;
    if (out_reused)
      *out_reused = stats.reused;
    return FEMRT_OK;
  });
}

femrt_status femrt_module_get_kernel(femrt_module *module, const char *name,
                                     femrt_kernel **out_kernel) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Module> m;
    if (femrt_status s = lookup(module, function, "module", m))
      return s;
    if (!name)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": name is NULL"));
    if (femrt_status s = checkOut(out_kernel, function, "out_kernel"))
      return s;
    auto it = m->kernelIndex.find(name);
    if (it == m->kernelIndex.end()) {
      std::string available;
      for (size_t i = 0; i < m->kernels.size(); ++i)
        available += concat(i ? ", " : "", m->kernels[i].name);
      return fail(FEMRT_ERROR_NOT_FOUND,
                  concat(function, ": ", m->origin, " has no kernel named '",
                         name, "' (it has: ",
                         available.empty() ? "no kernels" : available, ")"));
    }
    *out_kernel = toHandle<femrt_kernel>(m->kernelHandles[it->second]);
    return FEMRT_OK;
  });
}

femrt_status femrt_module_get_kernel_by_index(femrt_module *module,
                                              int32_t index,
                                              femrt_kernel **out_kernel) {
  const char *function = __func__;
  return withObject<Module>(
      function, module, "module", out_kernel, "out_kernel", [&](Module &m) {
        if (index < 0 || index >= static_cast<int32_t>(m.kernels.size()))
          return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                      concat(function, ": index ", index, " is out of range (",
                             m.origin, " has ", m.kernels.size(), " kernels)"));
        *out_kernel = toHandle<femrt_kernel>(m.kernelHandles[index]);
        return FEMRT_OK;
      });
}

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

femrt_status femrt_kernel_get_name(femrt_kernel *kernel,
                                   const char **out_name) {
  return getField<Kernel>(
      __func__, kernel, "kernel", out_name, "out_name",
      [](const Kernel &k) { return k.data().name.c_str(); });
}

femrt_status femrt_kernel_get_description(femrt_kernel *kernel,
                                          const char **out_description) {
  return getField<Kernel>(
      __func__, kernel, "kernel", out_description, "out_description",
      [](const Kernel &k) { return k.data().description.c_str(); });
}

femrt_status femrt_kernel_get_traits(femrt_kernel *kernel,
                                     const femrt_kernel_traits **out_traits) {
  return getField<Kernel>(__func__, kernel, "kernel", out_traits, "out_traits",
                          [](const Kernel &k) {
                            return k.data().hasTraits ? &k.data().traits
                                                      : nullptr;
                          });
}

femrt_status femrt_kernel_last_segments(femrt_kernel *kernel,
                                        int32_t *out_segments) {
  return getField<Kernel>(__func__, kernel, "kernel", out_segments,
                          "out_segments", [](const Kernel &k) {
                            return k.lastSegments.load(
                                std::memory_order_relaxed);
                          });
}

femrt_status femrt_kernel_num_args(femrt_kernel *kernel,
                                   int32_t *out_num_args) {
  return getField<Kernel>(__func__, kernel, "kernel", out_num_args,
                          "out_num_args", [](const Kernel &k) {
                            return static_cast<int32_t>(k.data().args.size());
                          });
}

femrt_status femrt_kernel_get_arg_info(femrt_kernel *kernel, int32_t index,
                                       const femrt_arg_info **out_info) {
  const char *function = __func__;
  return withObject<Kernel>(
      function, kernel, "kernel", out_info, "out_info", [&](Kernel &k) {
        const KernelData &data = k.data();
        if (index < 0 || index >= static_cast<int32_t>(data.args.size()))
          return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                      concat(function, ": index ", index,
                             " is out of range (kernel '", data.name, "' has ",
                             data.args.size(), " arguments)"));
        *out_info = &data.args[index];
        return FEMRT_OK;
      });
}

femrt_status femrt_kernel_find_arg(femrt_kernel *kernel, const char *name,
                                   int32_t *out_index) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Kernel> k;
    if (femrt_status s = lookup(kernel, function, "kernel", k))
      return s;
    if (!name)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": name is NULL"));
    if (femrt_status s = checkOut(out_index, function, "out_index"))
      return s;
    const KernelData &data = k->data();
    for (size_t i = 0; i < data.argNames.size(); ++i) {
      if (data.argNames[i] == name) {
        *out_index = static_cast<int32_t>(i);
        return FEMRT_OK;
      }
    }
    return fail(FEMRT_ERROR_NOT_FOUND,
                concat(function, ": kernel '", data.name,
                       "' has no argument named '", name, "'"));
  });
}

femrt_status femrt_launch_options_init(femrt_launch_options *out_options) {
  const char *function = __func__;
  return guard(function, [&] {
    if (femrt_status s = checkOut(out_options, function, "out_options"))
      return s;
    std::memset(out_options, 0, sizeof(*out_options));
    out_options->struct_size = sizeof(femrt_launch_options);
    return FEMRT_OK;
  });
}

femrt_status femrt_kernel_launch(femrt_kernel *kernel,
                                 const DLTensor *const *args, int32_t num_args,
                                 const femrt_launch_options *options) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Kernel> k;
    if (femrt_status s = lookup(kernel, function, "kernel", k))
      return s;
    return launchHostKernel(*k, args, num_args, options);
  });
}

} // extern "C"
