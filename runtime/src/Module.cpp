//===- Module.cpp - Validating kernel libraries ---------------------------===//

#include "runtime/src/Objects.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <link.h>
#include <mutex>
#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace femc::rt {

/// Sanity limits on a library's tables, so that garbage is reported rather
/// than iterated over.
static constexpr int32_t kMaxKernels = 1 << 20;
static constexpr int32_t kMaxArgs = 1 << 12;

Module::~Module() {
  if (library)
    dlclose(library);
}

namespace {
/// The file behind a mapping: device (major, minor) and inode.
struct FileId {
  unsigned long major = 0, minor = 0, inode = 0;
  bool operator==(const FileId &o) const {
    return major == o.major && minor == o.minor && inode == o.inode;
  }
};
} // namespace

/// The file mapped at `address` in this process, from /proc/self/maps; false
/// when it cannot be told (no /proc, an anonymous mapping).
static bool mappedFile(const void *address, FileId &id) {
  FILE *maps = std::fopen("/proc/self/maps", "re");
  if (!maps)
    return false;
  auto target = reinterpret_cast<uintptr_t>(address);
  bool found = false;
  char line[4096 + 256];
  while (!found && std::fgets(line, sizeof line, maps)) {
    unsigned long start, end, major, minor, inode;
    if (std::sscanf(line, "%lx-%lx %*s %*s %lx:%lx %lu", &start, &end, &major,
                    &minor, &inode) != 5)
      continue;
    if (target >= start && target < end && inode != 0) {
      id = {major, minor, inode};
      found = true;
    }
  }
  std::fclose(maps);
  return found;
}

/// Whether the library loaded under `name` (if any) is the file `current`.
/// True when nothing is loaded under that name or it cannot be told.
static bool loadedIsCurrent(const std::string &name, const FileId &current) {
  void *loaded = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (!loaded)
    return true; // dlopen will open the file itself
  struct link_map *map = nullptr;
  FileId id;
  bool known = dlinfo(loaded, RTLD_DI_LINKMAP, &map) == 0 && map &&
               mappedFile(map->l_ld, id);
  dlclose(loaded);
  return !known || id == current;
}

void *openLibraryFile(const char *path) {
  struct stat st;
  if (!std::strchr(path, '/') || stat(path, &st) != 0)
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
  FileId current{major(st.st_dev), minor(st.st_dev),
                 static_cast<unsigned long>(st.st_ino)};
  // One loader at a time: the name chosen must still be the right one when
  // dlopen runs.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::string name = path;
  const char *slash = std::strrchr(path, '/');
  std::string dir(path, slash - path), base(slash + 1);
  // "D/N.so", "D/./N.so", "D/././N.so", ...: the same file under names
  // glibc matches as different strings; the first one that is unloaded or
  // loaded from this very file is used.
  for (int dots = 1; dots <= 64 && !loadedIsCurrent(name, current); ++dots) {
    name = dir + "/";
    for (int i = 0; i < dots; ++i)
      name += "./";
    name += base;
  }
  return dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
}

static std::string describeKernel(const femrt_kernel_info &kernel,
                                  int32_t index) {
  if (kernel.name)
    return concat("kernel #", index, " ('", kernel.name, "')");
  return concat("kernel #", index);
}

/// Why `t` is not valid kernel traits ("" when it is).
static std::string checkTraits(const femrt_kernel_traits &t) {
  if (t.struct_size < sizeof(femrt_kernel_traits))
    return concat("struct_size ", t.struct_size, ", but kernel ABI version ",
                  FEMRT_KERNEL_ABI_VERSION, " needs at least ",
                  sizeof(femrt_kernel_traits));
  if (t.flags & ~FEMRT_KERNEL_KNOWN_FLAGS)
    return concat("flags ", t.flags, ", which has unknown bits (known: ",
                  FEMRT_KERNEL_KNOWN_FLAGS, ")");
  if (t.prior < FEMRT_PRIOR_NONE || t.prior >= FEMRT_NUM_PRIORS)
    return concat("prior ", t.prior, " (expected -1 to ",
                  FEMRT_NUM_PRIORS - 1, ")");
  if (t.layout < FEMRT_LAYOUT_NONE || t.layout > FEMRT_LAYOUT_BHTD)
    return concat("layout ", t.layout, " (expected -1, 0 or 1)");
  bool read = t.prior != FEMRT_PRIOR_NONE;
  if (read == (t.layout == FEMRT_LAYOUT_NONE))
    return concat("prior ", t.prior, " and layout ", t.layout,
                  " (both are -1 exactly when the kernel is not a FEM read)");
  if (read && (t.flags & FEMRT_KERNEL_LAYER))
    return concat("prior ", t.prior,
                  " on a layer (a layer's prior is -1)");
  if (!std::isfinite(t.cap) || !std::isfinite(t.scale) ||
      !std::isfinite(t.eps))
    return concat("cap ", t.cap, ", scale ", t.scale, " and eps ", t.eps,
                  " (all must be finite)");
  if (read && !(t.eps > 0))
    return concat("eps ", t.eps, " (must be positive)");
  if (t.tile_q < 0 || t.tile_k < 0 || t.vec < 0)
    return concat("tiles q ", t.tile_q, ", k ", t.tile_k, ", vec ", t.vec,
                  " (must not be negative)");
  for (int i = 0; i < 3; ++i) {
    const femrt_grid_axis &axis = t.grid[i];
    if (axis.extent < FEMRT_EXTENT_ONE || axis.extent >= FEMRT_NUM_EXTENTS ||
        axis.divisor < 1)
      return concat("grid axis ", i, " extent ", axis.extent, " divisor ",
                    axis.divisor, " (expected extent -1 to ",
                    FEMRT_NUM_EXTENTS - 1, " and divisor >= 1)");
  }
  return "";
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
  if (library->struct_size < FEMRT_KERNEL_LIBRARY_MIN_SIZE)
    return fail(FEMRT_ERROR_ABI_VERSION,
                concat(origin, " has femrt_kernel_library struct_size ",
                       library->struct_size, ", but kernel ABI version ",
                       FEMRT_KERNEL_ABI_VERSION, " needs at least ",
                       FEMRT_KERNEL_LIBRARY_MIN_SIZE,
                       "; rebuild it with a femc that matches this runtime"));

  if (library->kernel_info_size < FEMRT_KERNEL_INFO_MIN_SIZE)
    return fail(FEMRT_ERROR_ABI_VERSION,
                concat(origin, " has femrt_kernel_info size ",
                       library->kernel_info_size, ", but kernel ABI version ",
                       FEMRT_KERNEL_ABI_VERSION, " needs at least ",
                       FEMRT_KERNEL_INFO_MIN_SIZE,
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
  // Optional trailing field: the services hook of libraries with layers.
  module.bindHost = nullptr;
  if (library->struct_size >= offsetof(femrt_kernel_library, bind_host) +
                                  sizeof(femrt_bind_host_fn))
    module.bindHost = library->bind_host;
  module.producer = library->producer ? library->producer : "";
  module.target = library->target ? library->target : "";
  module.kernels.clear();
  module.kernelIndex.clear();
  module.kernels.resize(library->num_kernels);

  for (int32_t k = 0; k < library->num_kernels; ++k) {
    // The producer's stride: a newer one may have appended fields.
    const femrt_kernel_info &info = *reinterpret_cast<const femrt_kernel_info *>(
        reinterpret_cast<const char *>(library->kernels) +
        size_t(k) * library->kernel_info_size);
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
    // Optional trailing field: the parallel prefix of a scan kernel.
    data.split = nullptr;
    if (library->kernel_info_size >=
        offsetof(femrt_kernel_info, split) + sizeof(info.split))
      data.split = info.split;
    if (info.traits) {
      if (std::string error = checkTraits(*info.traits); !error.empty())
        return invalid(concat(where, " has traits with ", error));
      data.hasTraits = true;
      std::memcpy(&data.traits, info.traits, sizeof(femrt_kernel_traits));
      data.traits.struct_size = sizeof(femrt_kernel_traits);
    }
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
