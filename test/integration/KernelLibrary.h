//===- KernelLibrary.h - one femc library loaded through libfemrt -*- C++ -*-===//
//
// The shape-matrix tests load a library that femc built at build time and
// launch its kernels through libfemrt; this holds the context and module,
// and launch() runs a kernel on a vector of DLTensors.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TEST_INTEGRATION_KERNELLIBRARY_H
#define FEMC_TEST_INTEGRATION_KERNELLIBRARY_H

#include "femrt/femrt.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace femc::test {

/// Launches `kernel` on `tensors` (its arguments in order, inputs then
/// outputs) and returns libfemrt's status; femrt_last_error() says why.
inline femrt_status launch(femrt_kernel *kernel,
                           const std::vector<DLTensor> &tensors,
                           const femrt_launch_options *options = nullptr) {
  std::vector<const DLTensor *> args;
  for (const DLTensor &t : tensors)
    args.push_back(&t);
  return femrt_kernel_launch(kernel, args.data(),
                             static_cast<int32_t>(args.size()), options);
}

/// A libfemrt context (all cores) and one loaded kernel library; failures
/// are reported as test failures.
class KernelLibrary {
public:
  explicit KernelLibrary(const char *path) {
    EXPECT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK)
        << femrt_last_error();
    EXPECT_EQ(femrt_module_load_library(ctx, path, &module), FEMRT_OK)
        << femrt_last_error();
  }
  ~KernelLibrary() {
    if (module)
      femrt_module_destroy(module);
    if (ctx)
      femrt_context_destroy(ctx);
  }
  KernelLibrary(const KernelLibrary &) = delete;
  KernelLibrary &operator=(const KernelLibrary &) = delete;

  femrt_kernel *kernel(const std::string &name) {
    femrt_kernel *k = nullptr;
    EXPECT_EQ(femrt_module_get_kernel(module, name.c_str(), &k), FEMRT_OK)
        << femrt_last_error();
    return k;
  }

  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
};

} // namespace femc::test

#endif // FEMC_TEST_INTEGRATION_KERNELLIBRARY_H
