//===- ApiTest.cpp - Versions, statuses, errors, contexts, handles --------===//

#include "TestUtil.h"

#include "runtime/src/Handles.h"

#include <thread>

using namespace femrt_test;

namespace {

TEST(Version, matchesHeader) {
  int major = -1, minor = -1, patch = -1;
  FEMRT_EXPECT_OK(femrt_version(&major, &minor, &patch));
  EXPECT_EQ(major, FEMRT_VERSION_MAJOR);
  EXPECT_EQ(minor, FEMRT_VERSION_MINOR);
  EXPECT_EQ(patch, FEMRT_VERSION_PATCH);
  FEMRT_EXPECT_OK(femrt_version(nullptr, &minor, nullptr));
  EXPECT_EQ(femrt_kernel_abi_version(), FEMRT_KERNEL_ABI_VERSION);
}

TEST(Status, everyCodeHasItsName) {
  EXPECT_STREQ(femrt_status_string(FEMRT_OK), "FEMRT_OK");
  EXPECT_STREQ(femrt_status_string(FEMRT_ERROR_SHAPE_MISMATCH),
               "FEMRT_ERROR_SHAPE_MISMATCH");
  EXPECT_STREQ(femrt_status_string(FEMRT_ERROR_NO_CUDA_DEVICE),
               "FEMRT_ERROR_NO_CUDA_DEVICE");
  EXPECT_STREQ(femrt_status_string(FEMRT_ERROR_UNSUPPORTED),
               "FEMRT_ERROR_UNSUPPORTED");
  for (int s = FEMRT_OK; s <= FEMRT_ERROR_UNSUPPORTED; ++s)
    EXPECT_STRNE(femrt_status_string(static_cast<femrt_status>(s)),
                 "FEMRT_ERROR_UNKNOWN")
        << s;
  EXPECT_STREQ(femrt_status_string(static_cast<femrt_status>(12345)),
               "FEMRT_ERROR_UNKNOWN");
  // The values the brief fixed.
  EXPECT_EQ(FEMRT_ERROR_INVALID_ARGUMENT, 1);
  EXPECT_EQ(FEMRT_ERROR_INTERNAL, 13);
}

TEST(LastError, isPerThreadAndKeptBySuccessfulCalls) {
  femrt_context *context = nullptr;
  expectError(femrt_context_create(nullptr, nullptr),
              FEMRT_ERROR_INVALID_ARGUMENT,
              {"femrt_context_create", "out_context is NULL"});
  std::string here = femrt_last_error();
  std::string there = "unset";
  std::thread([&] { there = femrt_last_error(); }).join();
  EXPECT_EQ(there, "");
  std::thread([&] {
    femrt_context_set_num_threads(nullptr, 1);
    there = femrt_last_error();
  }).join();
  EXPECT_NE(there.find("context is NULL"), std::string::npos) << there;
  EXPECT_EQ(std::string(femrt_last_error()), here);
  FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context));
  EXPECT_EQ(std::string(femrt_last_error()), here);
  FEMRT_EXPECT_OK(femrt_context_destroy(context));
}

TEST(Context, defaultsToHardwareConcurrency) {
  femrt_context *context = nullptr;
  FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context));
  int32_t threads = 0;
  FEMRT_EXPECT_OK(femrt_context_get_num_threads(context, &threads));
  unsigned hw = std::thread::hardware_concurrency();
  EXPECT_EQ(threads, hw == 0 ? 1 : static_cast<int32_t>(hw));
  FEMRT_EXPECT_OK(femrt_context_set_num_threads(context, 3));
  FEMRT_EXPECT_OK(femrt_context_get_num_threads(context, &threads));
  EXPECT_EQ(threads, 3);
  expectError(femrt_context_set_num_threads(context, -2),
              FEMRT_ERROR_INVALID_ARGUMENT, {"num_threads is -2"});
  FEMRT_EXPECT_OK(femrt_context_destroy(context));
}

TEST(Context, optionsAreChecked) {
  femrt_context_options options;
  FEMRT_ASSERT_OK(femrt_context_options_init(&options));
  EXPECT_EQ(options.struct_size, sizeof(femrt_context_options));
  EXPECT_EQ(options.num_threads, 0);
  femrt_context *context = nullptr;

  options.num_threads = 7;
  FEMRT_ASSERT_OK(femrt_context_create(&options, &context));
  int32_t threads = 0;
  FEMRT_EXPECT_OK(femrt_context_get_num_threads(context, &threads));
  EXPECT_EQ(threads, 7);
  FEMRT_EXPECT_OK(femrt_context_destroy(context));

  options.num_threads = -1;
  expectError(femrt_context_create(&options, &context),
              FEMRT_ERROR_INVALID_ARGUMENT, {"num_threads is -1"});
  femrt_context_options uninitialized{};
  expectError(femrt_context_create(&uninitialized, &context),
              FEMRT_ERROR_INVALID_ARGUMENT,
              {"struct_size is 0", "femrt_context_options_init"});
  expectError(femrt_context_options_init(nullptr),
              FEMRT_ERROR_INVALID_ARGUMENT, {"out_options is NULL"});
}

TEST(Handles, doubleDestroyIsAnErrorNotACrash) {
  femrt_context *context = nullptr;
  FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context));
  FEMRT_EXPECT_OK(femrt_context_destroy(context));
  expectError(femrt_context_destroy(context), FEMRT_ERROR_INVALID_HANDLE,
              {"femrt_context_destroy", "is not a live femrt_context",
               "already destroyed"});
  // Using it is reported the same way.
  int32_t threads = 0;
  expectError(femrt_context_get_num_threads(context, &threads),
              FEMRT_ERROR_INVALID_HANDLE, {"not a live femrt_context"});
  // NULL is a no-op, like free(NULL).
  FEMRT_EXPECT_OK(femrt_context_destroy(nullptr));
  FEMRT_EXPECT_OK(femrt_module_destroy(nullptr));
}

TEST(Handles, aHandleOfAnotherKindIsRejected) {
  femrt_context *context = nullptr;
  FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context));
  auto *asModule = reinterpret_cast<femrt_module *>(context);
  expectError(femrt_module_destroy(asModule), FEMRT_ERROR_INVALID_HANDLE,
              {"is a femrt_context, not a femrt_module"});
  auto *asKernel = reinterpret_cast<femrt_kernel *>(context);
  const char *name = nullptr;
  expectError(femrt_kernel_get_name(asKernel, &name),
              FEMRT_ERROR_INVALID_HANDLE,
              {"is a femrt_context, not a femrt_kernel"});
  // The context is unharmed.
  FEMRT_EXPECT_OK(femrt_context_destroy(context));
}

TEST(Handles, garbageHandlesAreRejected) {
  int notAHandle = 0;
  auto *bogus = reinterpret_cast<femrt_context *>(&notAHandle);
  expectError(femrt_context_destroy(bogus), FEMRT_ERROR_INVALID_HANDLE,
              {"not a live femrt_context"});
  expectError(femrt_context_set_num_threads(nullptr, 1),
              FEMRT_ERROR_INVALID_ARGUMENT, {"context is NULL"});
}

TEST(Handles, destroyingAContextReleasesEverythingUnderIt) {
  auto &registry = femc::rt::HandleRegistry::instance();
  size_t before = registry.size();
  femrt_context *context = nullptr;
  FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context));
  femrt_module *module = nullptr;
  FEMRT_ASSERT_OK(femrt_module_load_library(context, FAKE_KERNELS_PATH, &module));
  femrt_kernel *kernel = nullptr;
  FEMRT_ASSERT_OK(femrt_module_get_kernel(module, "axpy", &kernel));
  // context + module + 3 kernels
  EXPECT_EQ(registry.size(), before + 5);
  FEMRT_EXPECT_OK(femrt_context_destroy(context));
  EXPECT_EQ(registry.size(), before);
  const char *name = nullptr;
  expectError(femrt_kernel_get_name(kernel, &name), FEMRT_ERROR_INVALID_HANDLE,
              {"not a live femrt_kernel", "destroyed with its owner"});
  expectError(femrt_module_destroy(module), FEMRT_ERROR_INVALID_HANDLE,
              {"not a live femrt_module"});
}

TEST(Handles, handlesAreNeverReused) {
  femrt_context *first = nullptr, *second = nullptr;
  FEMRT_ASSERT_OK(femrt_context_create(nullptr, &first));
  FEMRT_EXPECT_OK(femrt_context_destroy(first));
  FEMRT_ASSERT_OK(femrt_context_create(nullptr, &second));
  EXPECT_NE(first, second);
  expectError(femrt_context_destroy(first), FEMRT_ERROR_INVALID_HANDLE);
  FEMRT_EXPECT_OK(femrt_context_destroy(second));
}

} // namespace
