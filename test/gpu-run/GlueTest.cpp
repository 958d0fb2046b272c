//===- GlueTest.cpp - the launch checks of an NVIDIA glue library ---------===//
//
// Part of the femc project.
//
// A `femc --target=sm_90` library (Inputs/gpu_f32_causal.mlir, compiled at
// build time) called through its header's entry points on libfemrt's
// stand-in CUDA driver (test/runtime/fake_cuda.c: one device of compute
// capability 9.0 that loads no real image). What the glue checks before the
// image is loaded needs no GPU: the device handle, the shapes, the
// alignment of the device addresses, CUDA's grid limits, the kernel index;
// and libfemrt's opt-in for large dynamic shared memory.
//
//===----------------------------------------------------------------------===//
#include "femrt/femrt.h"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Entry = int (*)(femrt_device *, void *, const femrt_memref *,
                      const femrt_memref *, const femrt_memref *,
                      const femrt_memref *, const femrt_memref *,
                      const femrt_memref *, femrt_memref *, char *, size_t);
using IndexedEntry = int (*)(int32_t, femrt_device *, void *, void *const *,
                             char *, size_t);

/// A dense row-major memref of `shape` at device address `address`.
femrt_memref memref(uintptr_t address, std::vector<int64_t> shape) {
  femrt_memref m{};
  m.allocated = m.aligned = reinterpret_cast<void *>(address);
  int rank = static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    m.dims[d] = shape[d];
    m.dims[rank + d] = stride;
    stride *= shape[d];
  }
  return m;
}

class Glue : public ::testing::Test {
protected:
  void SetUp() override {
    setenv("FEMRT_CUDA_DRIVER", FAKE_CUDA_PATH, 1);
    library = dlopen(GLUE_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(library, nullptr) << dlerror();
    entry = reinterpret_cast<Entry>(dlsym(library, "gpu_f32_causal"));
    indexed = reinterpret_cast<IndexedEntry>(
        dlsym(library, "femc_gpu_f32_causal_cuda_launch"));
    ASSERT_NE(entry, nullptr);
    ASSERT_NE(indexed, nullptr);
    ASSERT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK);
    ASSERT_EQ(femrt_device_open_cuda(ctx, 0, &device), FEMRT_OK)
        << femrt_last_error();
    setShapes(1, 40);
  }
  void TearDown() override {
    femrt_context_destroy(ctx);
    if (library)
      dlclose(library);
  }
  /// q, k, v, lam, gate, out of (B, T, 8, 64) and beta_raw of 512, at
  /// distinct 256-byte aligned fake device addresses.
  void setShapes(int64_t B, int64_t T) {
    uintptr_t base = 0x100000;
    for (femrt_memref *m : {&q, &k, &v, &lam, &gate, &out}) {
      *m = memref(base, {B, T, 8, 64});
      base += 0x100000;
    }
    beta = memref(base, {512});
  }
  int call(femrt_device *d) {
    return entry(d, nullptr, &q, &k, &v, &beta, &lam, &gate, &out, err,
                 sizeof err);
  }

  void *library = nullptr;
  Entry entry = nullptr;
  IndexedEntry indexed = nullptr;
  femrt_context *ctx = nullptr;
  femrt_device *device = nullptr;
  femrt_memref q, k, v, beta, lam, gate, out;
  char err[1024] = "";
};

TEST_F(Glue, NullDeviceIsNamed) {
  EXPECT_NE(call(nullptr), 0);
  EXPECT_STREQ(err, "no CUDA device given (femrt_device is NULL); open one "
                    "with femrt_device_open_cuda");
}

TEST_F(Glue, MisalignedDeviceAddressIsNamed) {
  q = memref(0x100004, {1, 40, 8, 64});
  EXPECT_NE(call(device), 0);
  EXPECT_STREQ(err, "argument 'q' (#0): the device address 0x100004 is not "
                    "aligned to 16 bytes, which the GPU kernel needs");
}

TEST_F(Glue, GridBeyondCudaLimitsIsNamed) {
  setShapes(70000, 40);
  EXPECT_NE(call(device), 0);
  EXPECT_STREQ(err, "the grid (2, 8, 70000) is beyond CUDA's limits "
                    "(2^31-1, 65535, 65535): the axes are (ceil(T/32), H, B)");
}

TEST_F(Glue, ShapesAreBoundAsOnTheCpu) {
  k = memref(0x900000, {1, 41, 8, 64});
  EXPECT_NE(call(device), 0);
  EXPECT_STREQ(err, "argument 'k' (#1) dimension 1 (T) is 41 but argument "
                    "'q' has T = 40");
}

TEST_F(Glue, ZeroDkIsRefusedBeforeTheLaunch) {
  // dk = 0 is refused at launch as on the CPU: the GPU kernels have a static
  // dk (femc refuses a dynamic one for sm_XX, femc-nvidia-errors.test), so
  // the extent check of femc_bind names it; nothing is launched.
  q = memref(0x100000, {1, 40, 8, 0});
  k = memref(0x200000, {1, 40, 8, 0});
  EXPECT_NE(call(device), 0);
  EXPECT_STREQ(err, "argument 'q' (#0) dimension 3 (dk) must be 64, found 0");
}

TEST_F(Glue, EmptyGridLaunchesNothing) {
  setShapes(1, 0);
  EXPECT_EQ(call(device), 0) << err;
}

TEST_F(Glue, KernelIndexIsChecked) {
  void *args[7] = {&q, &k, &v, &beta, &lam, &gate, &out};
  EXPECT_NE(indexed(3, device, nullptr, args, err, sizeof err), 0);
  EXPECT_STREQ(err,
               "kernel index 3 is out of range: the library has 1 kernel");
}

TEST_F(Glue, CubinOfThisArchReachesTheImageLoad) {
  // Compute capability 9.0 passes; the stand-in refuses the real image.
  EXPECT_NE(call(device), 0);
  EXPECT_NE(std::string(err).find("cannot load the kernels' cubin"),
            std::string::npos)
      << err;
}

TEST_F(Glue, LargeDynamicSharedMemoryNeedsTheOptIn) {
  // The stand-in driver has no cuFuncSetAttribute.
  static const char image[] = "FAKE_MODULE";
  femrt_cuda_module *module = nullptr;
  ASSERT_EQ(femrt_cuda_module_load_image(device, image, sizeof image, &module),
            FEMRT_OK)
      << femrt_last_error();
  void *dst = nullptr;
  ASSERT_EQ(femrt_cuda_malloc(device, 64, &dst), FEMRT_OK);
  float value = 1;
  int n = 16;
  void *params[] = {&dst, &value, &n};
  uint32_t grid[3] = {1, 1, 1}, block[3] = {16, 1, 1};
  EXPECT_EQ(femrt_cuda_launch_raw(module, "fill", grid, block, 48 * 1024,
                                  nullptr, params),
            FEMRT_OK)
      << femrt_last_error();
  EXPECT_EQ(femrt_cuda_launch_raw(module, "fill", grid, block,
                                  48 * 1024 + 1, nullptr, params),
            FEMRT_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(femrt_last_error())
                .find("launching 'fill' with 49153 bytes of dynamic shared "
                      "memory needs cuFuncSetAttribute, which the CUDA "
                      "driver"),
            std::string::npos)
      << femrt_last_error();
}

} // namespace
