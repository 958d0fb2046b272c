//===- Module.cpp - Validating kernel libraries ---------------------------===//

#include "runtime/src/Objects.h"

#include <dlfcn.h>

namespace femc::rt {

/// Sanity limits on a library's tables, so that garbage is reported rather
/// than iterated over.
static constexpr int32_t kMaxKernels = 1 << 20;
static constexpr int32_t kMaxArgs = 1 << 12;

Module::~Module() {
  if (library)
    dlclose(library);
}

static std::string describeKernel(const femrt_kernel_info &kernel,
                                  int32_t index) {
  if (kernel.name)
    return concat("kernel #", index, " ('", kernel.name, "')");
  return concat("kernel #", index);
}

femrt_status buildModule(const femrt_kernel_library *library,
                         const std::string &origin, Module &module) {
  // Only the two leading fields may be read before they are checked.
  if (library->abi_version != FEMRT_KERNEL_ABI_VERSION)
    return fail(FEMRT_ERROR_ABI_VERSION,
                concat(origin, " was built for femrt kernel ABI version ",
                       library->abi_version,
                       ", but this libfemrt supports kernel ABI version ",
                       FEMRT_KERNEL_ABI_VERSION,
                       "; rebuild it with a femc that matches this runtime"));
  if (library->struct_size < sizeof(femrt_kernel_library))
    return fail(FEMRT_ERROR_ABI_VERSION,
                concat(origin, " has femrt_kernel_library struct_size ",
                       library->struct_size, ", but kernel ABI version ",
                       FEMRT_KERNEL_ABI_VERSION, " needs at least ",
                       sizeof(femrt_kernel_library),
                       "; rebuild it with a femc that matches this runtime"));

  auto invalid = [&](const std::string &what) {
    return fail(FEMRT_ERROR_INVALID_LIBRARY,
                concat(origin, " is malformed: ", what));
  };
  if (library->num_kernels < 0 || library->num_kernels > kMaxKernels)
    return invalid(concat("num_kernels is ", library->num_kernels));
  if (library->num_kernels > 0 && !library->kernels)
    return invalid(concat("num_kernels is ", library->num_kernels,
                          " but the kernel table is NULL"));

  module.origin = origin;
  module.producer = library->producer ? library->producer : "";
  module.target = library->target ? library->target : "";
  module.kernels.clear();
  module.kernelIndex.clear();
  module.kernels.resize(library->num_kernels);

  for (int32_t k = 0; k < library->num_kernels; ++k) {
    const femrt_kernel_info &info = library->kernels[k];
    std::string where = describeKernel(info, k);
    if (!info.name || !*info.name)
      return invalid(concat(where, " has no name"));
    if (!module.kernelIndex.emplace(info.name, k).second)
      return invalid(concat("two kernels are named '", info.name, "'"));
    if (!info.workgroup)
      return invalid(concat(where, " has no workgroup function"));
    if (info.num_args < 0 || info.num_args > kMaxArgs)
      return invalid(concat(where, " has num_args ", info.num_args));
    if (info.num_args > 0 && !info.args)
      return invalid(concat(where, " has ", info.num_args,
                            " arguments but the argument table is NULL"));

    KernelData &data = module.kernels[k];
    data.name = info.name;
    data.description = info.description ? info.description : "";
    data.prepare = info.prepare;
    data.workgroup = info.workgroup;
    data.args.assign(info.args, info.args + info.num_args);
    data.argNames.resize(info.num_args);
    data.dimNames.resize(info.num_args);

    bool seenOutput = false;
    for (int32_t a = 0; a < info.num_args; ++a) {
      const femrt_arg_info &arg = info.args[a];
      std::string argWhere = concat(where, " argument #", a);
      if (!arg.name || !*arg.name)
        return invalid(concat(argWhere, " has no name"));
      argWhere = concat(where, " argument '", arg.name, "' (#", a, ")");
      for (int32_t b = 0; b < a; ++b)
        if (data.argNames[b] == arg.name)
          return invalid(concat(where, " has two arguments named '", arg.name,
                                "'"));
      if (arg.rank < 0 || arg.rank > FEMRT_MAX_RANK)
        return invalid(concat(argWhere, " has rank ", arg.rank,
                              " (supported: 0 to ", FEMRT_MAX_RANK, ")"));
      if (arg.role != FEMRT_ARG_INPUT && arg.role != FEMRT_ARG_OUTPUT)
        return invalid(concat(argWhere, " has role ", arg.role));
      if (arg.role == FEMRT_ARG_OUTPUT)
        seenOutput = true;
      else if (seenOutput)
        return invalid(concat(argWhere,
                              " is an input after an output (inputs must "
                              "come first)"));
      if (arg.dtype_bits == 0 || arg.dtype_bits % 8 != 0)
        return invalid(concat(argWhere, " has dtype_bits ",
                              unsigned(arg.dtype_bits),
                              " (must be a positive multiple of 8)"));
      for (int32_t d = 0; d < arg.rank; ++d)
        if (arg.shape[d] < -1)
          return invalid(concat(argWhere, " has extent ", arg.shape[d],
                                " in dimension ", d));
      data.argNames[a] = arg.name;
      data.dimNames[a] = arg.dim_names ? arg.dim_names : "";
    }
    // The strings are in place; point the copied table at them.
    for (int32_t a = 0; a < info.num_args; ++a) {
      data.args[a].name = data.argNames[a].c_str();
      data.args[a].dim_names = data.dimNames[a].c_str();
    }
  }
  return FEMRT_OK;
}

} // namespace femc::rt
