//===- TestUtil.h - Helpers for the libfemrt tests --------------*- C++ -*-===//
#ifndef FEMRT_TEST_TESTUTIL_H
#define FEMRT_TEST_TESTUTIL_H

#include "femrt/femrt.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

extern "C" const femrt_kernel_library *fake_kernels_static_query(void);

namespace femrt_test {

/// A DLTensor that owns its shape/strides arrays and (optionally) memory.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  std::vector<uint8_t> storage; // owned memory, if any
  DLTensor t{};

  /// A compact tensor with owned, zero-filled memory (64-byte aligned).
  static Tensor make(std::vector<int64_t> shape, uint8_t code = kDLFloat,
                     uint8_t bits = 32) {
    Tensor result;
    result.shape = std::move(shape);
    int64_t n = 1;
    for (int64_t extent : result.shape)
      n *= extent;
    result.storage.assign(static_cast<size_t>(n) * (bits / 8) + 64, 0);
    result.t.data = result.alignedBase();
    result.t.device = {kDLCPU, 0};
    result.t.ndim = static_cast<int>(result.shape.size());
    result.t.dtype = {code, bits, 1};
    result.t.shape = result.shape.data();
    result.t.strides = nullptr;
    result.t.byte_offset = 0;
    return result;
  }

  /// A view of `data` (not owned).
  static Tensor view(void *data, std::vector<int64_t> shape,
                     uint8_t code = kDLFloat, uint8_t bits = 32) {
    Tensor result;
    result.shape = std::move(shape);
    result.t.data = data;
    result.t.device = {kDLCPU, 0};
    result.t.ndim = static_cast<int>(result.shape.size());
    result.t.dtype = {code, bits, 1};
    result.t.shape = result.shape.data();
    return result;
  }

  // Moving keeps the vectors' buffers, so t's pointers stay valid.
  Tensor() = default;
  Tensor(Tensor &&) = default;
  Tensor &operator=(Tensor &&) = default;
  Tensor(const Tensor &) = delete;
  Tensor &operator=(const Tensor &) = delete;

  void setStrides(std::vector<int64_t> s) {
    strides = std::move(s);
    t.strides = strides.data();
  }

  void *alignedBase() {
    if (storage.empty())
      return nullptr;
    uintptr_t p = reinterpret_cast<uintptr_t>(storage.data());
    return reinterpret_cast<void *>((p + 63) & ~uintptr_t(63));
  }

  template <typename T>
  T *as() {
    return reinterpret_cast<T *>(static_cast<uint8_t *>(t.data) +
                                 t.byte_offset);
  }

  int64_t numElements() const {
    int64_t n = 1;
    for (int64_t extent : shape)
      n *= extent;
    return n;
  }

  const DLTensor *dl() const { return &t; }
};

/// Expects `status` to be `expected` and the last error to contain each of
/// `fragments`.
inline void expectError(femrt_status status, femrt_status expected,
                        std::vector<std::string> fragments = {}) {
  EXPECT_EQ(femrt_status_string(status), std::string(femrt_status_string(expected)))
      << "last error: " << femrt_last_error();
  std::string message = femrt_last_error();
  for (const std::string &fragment : fragments)
    EXPECT_NE(message.find(fragment), std::string::npos)
        << "message \"" << message << "\" lacks \"" << fragment << "\"";
}

#define FEMRT_ASSERT_OK(expr)                                                  \
  do {                                                                         \
    femrt_status _status = (expr);                                             \
    ASSERT_EQ(_status, FEMRT_OK) << femrt_status_string(_status) << ": "      \
                                 << femrt_last_error();                        \
  } while (0)

#define FEMRT_EXPECT_OK(expr)                                                  \
  do {                                                                         \
    femrt_status _status = (expr);                                             \
    EXPECT_EQ(_status, FEMRT_OK) << femrt_status_string(_status) << ": "      \
                                 << femrt_last_error();                        \
  } while (0)

/// A context with the fake kernel library loaded from disk.
class KernelTest : public ::testing::Test {
protected:
  void SetUp() override {
    femrt_context_options options;
    FEMRT_ASSERT_OK(femrt_context_options_init(&options));
    options.num_threads = 4;
    FEMRT_ASSERT_OK(femrt_context_create(&options, &context));
    FEMRT_ASSERT_OK(
        femrt_module_load_library(context, FAKE_KERNELS_PATH, &module));
  }
  void TearDown() override {
    if (context) {
      EXPECT_EQ(femrt_context_destroy(context), FEMRT_OK) << femrt_last_error();
    }
  }

  femrt_kernel *kernel(const char *name) {
    femrt_kernel *k = nullptr;
    EXPECT_EQ(femrt_module_get_kernel(module, name, &k), FEMRT_OK)
        << femrt_last_error();
    return k;
  }

  femrt_context *context = nullptr;
  femrt_module *module = nullptr;
};

} // namespace femrt_test

#endif // FEMRT_TEST_TESTUTIL_H
