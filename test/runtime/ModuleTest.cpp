//===- ModuleTest.cpp - Loading libraries, lookups, introspection ---------===//

#include "TestUtil.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace femrt_test;

namespace {

class ModuleTest : public ::testing::Test {
protected:
  void SetUp() override {
    FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context));
  }
  void TearDown() override {
    EXPECT_EQ(femrt_context_destroy(context), FEMRT_OK) << femrt_last_error();
  }
  femrt_context *context = nullptr;
};

TEST_F(ModuleTest, loadsALibraryAndListsItsKernels) {
  femrt_module *module = nullptr;
  FEMRT_ASSERT_OK(femrt_module_load_library(context, FAKE_KERNELS_PATH, &module));
  const char *producer = nullptr, *target = nullptr;
  FEMRT_EXPECT_OK(femrt_module_get_info(module, &producer, &target));
  EXPECT_STREQ(producer, "fake_kernels 1.0");
  EXPECT_STREQ(target, "host:test");
  int32_t count = 0;
  FEMRT_EXPECT_OK(femrt_module_num_kernels(module, &count));
  EXPECT_EQ(count, 3);
  const char *names[] = {"axpy", "touch", "copy_f16"};
  for (int32_t i = 0; i < count; ++i) {
    femrt_kernel *byIndex = nullptr, *byName = nullptr;
    FEMRT_EXPECT_OK(femrt_module_get_kernel_by_index(module, i, &byIndex));
    FEMRT_EXPECT_OK(femrt_module_get_kernel(module, names[i], &byName));
    EXPECT_EQ(byIndex, byName);
    const char *name = nullptr;
    FEMRT_EXPECT_OK(femrt_kernel_get_name(byIndex, &name));
    EXPECT_STREQ(name, names[i]);
  }
  femrt_kernel *kernel = nullptr;
  expectError(femrt_module_get_kernel_by_index(module, 3, &kernel),
              FEMRT_ERROR_INVALID_ARGUMENT, {"index 3 is out of range"});
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

TEST_F(ModuleTest, unknownKernelNameListsTheKernels) {
  femrt_module *module = nullptr;
  FEMRT_ASSERT_OK(femrt_module_load_library(context, FAKE_KERNELS_PATH, &module));
  femrt_kernel *kernel = nullptr;
  expectError(femrt_module_get_kernel(module, "attention", &kernel),
              FEMRT_ERROR_NOT_FOUND,
              {"no kernel named 'attention'", "axpy, touch, copy_f16"});
  EXPECT_EQ(kernel, nullptr);
  expectError(femrt_module_get_kernel(module, nullptr, &kernel),
              FEMRT_ERROR_INVALID_ARGUMENT, {"name is NULL"});
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

TEST_F(ModuleTest, kernelIntrospection) {
  femrt_module *module = nullptr;
  FEMRT_ASSERT_OK(femrt_module_load_library(context, FAKE_KERNELS_PATH, &module));
  femrt_kernel *axpy = nullptr, *copy = nullptr;
  FEMRT_ASSERT_OK(femrt_module_get_kernel(module, "axpy", &axpy));
  FEMRT_ASSERT_OK(femrt_module_get_kernel(module, "copy_f16", &copy));

  const char *description = nullptr;
  FEMRT_EXPECT_OK(femrt_kernel_get_description(axpy, &description));
  EXPECT_STREQ(description, "out = alpha * x + y, 4 columns per workgroup");
  FEMRT_EXPECT_OK(femrt_kernel_get_description(copy, &description));
  EXPECT_STREQ(description, ""); // NULL in the library

  int32_t numArgs = 0;
  FEMRT_EXPECT_OK(femrt_kernel_num_args(axpy, &numArgs));
  ASSERT_EQ(numArgs, 4);
  const femrt_arg_info *info = nullptr;
  FEMRT_ASSERT_OK(femrt_kernel_get_arg_info(axpy, 0, &info));
  EXPECT_STREQ(info->name, "alpha");
  EXPECT_EQ(info->rank, 0);
  FEMRT_ASSERT_OK(femrt_kernel_get_arg_info(axpy, 1, &info));
  EXPECT_STREQ(info->name, "x");
  EXPECT_STREQ(info->dim_names, "M,N");
  EXPECT_EQ(info->rank, 2);
  EXPECT_EQ(info->dtype_code, kDLFloat);
  EXPECT_EQ(info->dtype_bits, 32);
  EXPECT_EQ(info->role, FEMRT_ARG_INPUT);
  EXPECT_EQ(info->shape[0], -1);
  FEMRT_ASSERT_OK(femrt_kernel_get_arg_info(axpy, 3, &info));
  EXPECT_STREQ(info->name, "out");
  EXPECT_EQ(info->role, FEMRT_ARG_OUTPUT);
  FEMRT_ASSERT_OK(femrt_kernel_get_arg_info(copy, 0, &info));
  EXPECT_EQ(info->dtype_bits, 16);
  EXPECT_EQ(info->shape[1], 8);
  expectError(femrt_kernel_get_arg_info(axpy, 4, &info),
              FEMRT_ERROR_INVALID_ARGUMENT, {"index 4 is out of range"});
  expectError(femrt_kernel_get_arg_info(axpy, -1, &info),
              FEMRT_ERROR_INVALID_ARGUMENT);

  int32_t index = -1;
  FEMRT_EXPECT_OK(femrt_kernel_find_arg(axpy, "y", &index));
  EXPECT_EQ(index, 2);
  expectError(femrt_kernel_find_arg(axpy, "z", &index), FEMRT_ERROR_NOT_FOUND,
              {"no argument named 'z'"});
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

TEST_F(ModuleTest, nonexistentPathIsAnIoError) {
  femrt_module *module = nullptr;
  expectError(femrt_module_load_library(context, "/nonexistent/libkernels.so",
                                        &module),
              FEMRT_ERROR_IO,
              {"cannot open library '/nonexistent/libkernels.so'",
               "No such file or directory"});
  EXPECT_EQ(module, nullptr);
  // A bare name goes through dlopen's search.
  expectError(femrt_module_load_library(context, "libfemrt-no-such-lib.so",
                                        &module),
              FEMRT_ERROR_IO, {"cannot load library 'libfemrt-no-such-lib.so'"});
}

TEST_F(ModuleTest, aFileThatIsNotALibraryIsAnIoError) {
  std::string path = ::testing::TempDir() + "femrt_not_a_library.so";
  {
    std::ofstream file(path);
    file << "this is not an ELF file\n";
  }
  femrt_module *module = nullptr;
  expectError(femrt_module_load_library(context, path.c_str(), &module),
              FEMRT_ERROR_IO, {"'" + path + "' is not an ELF file"});
  std::remove(path.c_str());
}

TEST_F(ModuleTest, aLibraryNeedingASanitizerRuntimeSaysSo) {
  // A library compiled with femc --sanitize=address, loaded by a program
  // without AddressSanitizer: dlopen's "undefined symbol: __asan_..." did
  // not say where the symbol comes from (BI round 12).
  if (dlsym(RTLD_DEFAULT, "__asan_option_detect_stack_use_after_return"))
    GTEST_SKIP() << "this test program has AddressSanitizer's runtime";
  femrt_module *module = nullptr;
  expectError(
      femrt_module_load_library(context, FAKE_NEEDS_ASAN_PATH, &module),
      FEMRT_ERROR_IO,
      {"undefined symbol: __asan_option_detect_stack_use_after_return",
       "(the library was compiled with femc --sanitize=address and needs "
       "that sanitizer's runtime: load it from a program built with "
       "-fsanitize=address, or compile it without --sanitize)"});
  EXPECT_EQ(module, nullptr);
}

TEST_F(ModuleTest, missingQuerySymbolIsNotFound) {
  femrt_module *module = nullptr;
  expectError(
      femrt_module_load_library(context, FAKE_NOQUERY_PATH, &module),
      FEMRT_ERROR_NOT_FOUND,
      {"does not export femrt_library_query", "built by femc"});
}

TEST_F(ModuleTest, incompatibleAbiVersionNamesBothVersions) {
  femrt_module *module = nullptr;
  expectError(femrt_module_load_library(context, FAKE_ABI999_PATH, &module),
              FEMRT_ERROR_ABI_VERSION,
              {"built for femrt kernel ABI version 999",
               "supports kernel ABI version 2"});
  EXPECT_EQ(module, nullptr);
}

TEST_F(ModuleTest, aVersion1LibraryIsRefusedNamingBothVersions) {
  // Laid out exactly as femc wrote libraries for kernel ABI version 1.
  femrt_module *module = nullptr;
  expectError(femrt_module_load_library(context, FAKE_ABI1_PATH, &module),
              FEMRT_ERROR_ABI_VERSION,
              {"built for femrt kernel ABI version 1,",
               "supports kernel ABI version 2",
               "rebuild it with a femc that matches this runtime"});
  EXPECT_EQ(module, nullptr);
}

TEST_F(ModuleTest, argumentsAreChecked) {
  femrt_module *module = nullptr;
  expectError(femrt_module_load_library(nullptr, FAKE_KERNELS_PATH, &module),
              FEMRT_ERROR_INVALID_ARGUMENT, {"context is NULL"});
  expectError(femrt_module_load_library(context, nullptr, &module),
              FEMRT_ERROR_INVALID_ARGUMENT, {"path is NULL"});
  expectError(femrt_module_load_library(context, "", &module),
              FEMRT_ERROR_INVALID_ARGUMENT, {"path is empty"});
  expectError(femrt_module_load_library(context, FAKE_KERNELS_PATH, nullptr),
              FEMRT_ERROR_INVALID_ARGUMENT, {"out_module is NULL"});
  expectError(femrt_module_create_static(context, nullptr, &module),
              FEMRT_ERROR_INVALID_ARGUMENT, {"library is NULL"});
}

TEST_F(ModuleTest, doubleDestroyOfAModule) {
  femrt_module *module = nullptr;
  FEMRT_ASSERT_OK(femrt_module_load_library(context, FAKE_KERNELS_PATH, &module));
  femrt_kernel *kernel = nullptr;
  FEMRT_ASSERT_OK(femrt_module_get_kernel(module, "touch", &kernel));
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
  expectError(femrt_module_destroy(module), FEMRT_ERROR_INVALID_HANDLE,
              {"femrt_module_destroy", "not a live femrt_module"});
  int32_t numArgs = 0;
  expectError(femrt_kernel_num_args(kernel, &numArgs),
              FEMRT_ERROR_INVALID_HANDLE, {"not a live femrt_kernel"});
}

TEST_F(ModuleTest, loadingTwiceGivesIndependentModules) {
  femrt_module *first = nullptr, *second = nullptr;
  FEMRT_ASSERT_OK(femrt_module_load_library(context, FAKE_KERNELS_PATH, &first));
  FEMRT_ASSERT_OK(femrt_module_load_library(context, FAKE_KERNELS_PATH, &second));
  EXPECT_NE(first, second);
  FEMRT_EXPECT_OK(femrt_module_destroy(first));
  femrt_kernel *kernel = nullptr;
  FEMRT_EXPECT_OK(femrt_module_get_kernel(second, "axpy", &kernel));
  FEMRT_EXPECT_OK(femrt_module_destroy(second));
}

/// Copies `from` to a new file and renames it over `to`, as a linker writes
/// its output: `to` then names a new file (another inode).
static void replaceFile(const std::string &from, const std::string &to) {
  std::string temp = to + ".new";
  {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    ASSERT_TRUE(in && out) << from << " -> " << temp;
    out << in.rdbuf();
  }
  ASSERT_EQ(std::rename(temp.c_str(), to.c_str()), 0) << to;
}

// A library rebuilt at the same path while the old one is still loaded (femc
// recompiling into the folder a Python session loaded from): glibc's dlopen
// returned the library already loaded under that name, so the old kernels
// ran without a word. The file the path names now is what is loaded.
TEST_F(ModuleTest, aLibraryReplacedOnDiskIsLoadedFromTheNewFile) {
  std::string path = ::testing::TempDir() + "femrt_replaced_" +
                     std::to_string(getpid()) + ".so";
  replaceFile(FAKE_KERNELS_PATH, path);
  femrt_module *old = nullptr, *again = nullptr, *fresh = nullptr;
  FEMRT_ASSERT_OK(femrt_module_load_library(context, path.c_str(), &old));
  // The path now names a library of another ABI version: loading it must
  // read that file, not hand back the one still loaded.
  replaceFile(FAKE_ABI999_PATH, path);
  femrt_module *module = nullptr;
  expectError(femrt_module_load_library(context, path.c_str(), &module),
              FEMRT_ERROR_ABI_VERSION,
              {"built for femrt kernel ABI version 999"});
  // A good library again (a third file), while the first is still loaded.
  replaceFile(FAKE_KERNELS_PATH, path);
  FEMRT_ASSERT_OK(femrt_module_load_library(context, path.c_str(), &fresh));
  FEMRT_ASSERT_OK(femrt_module_load_library(context, path.c_str(), &again));
  femrt_kernel *kernel = nullptr;
  FEMRT_EXPECT_OK(femrt_module_get_kernel(old, "axpy", &kernel));
  FEMRT_EXPECT_OK(femrt_module_get_kernel(fresh, "axpy", &kernel));
  for (femrt_module *m : {old, fresh, again})
    FEMRT_EXPECT_OK(femrt_module_destroy(m));
  std::remove(path.c_str());
}

//===----------------------------------------------------------------------===//
// Statically linked libraries
//===----------------------------------------------------------------------===//

TEST_F(ModuleTest, staticLibraryRunsWithoutDlopen) {
  femrt_module *module = nullptr;
  FEMRT_ASSERT_OK(
      femrt_module_create_static(context, fake_kernels_static_query(), &module));
  femrt_kernel *touch = nullptr;
  FEMRT_ASSERT_OK(femrt_module_get_kernel(module, "touch", &touch));
  Tensor hits = Tensor::make({2, 3, 5}, kDLInt, 32);
  const DLTensor *args[] = {hits.dl()};
  FEMRT_ASSERT_OK(femrt_kernel_launch(touch, args, 1, nullptr));
  for (int64_t i = 0; i < hits.numElements(); ++i)
    EXPECT_EQ(hits.as<int32_t>()[i], 1) << i;
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

/// A copy of the fake library's tables that a test may break.
struct MutableLibrary {
  MutableLibrary() {
    const femrt_kernel_library *original = fake_kernels_static_query();
    library = *original;
    kernels.assign(original->kernels,
                   original->kernels + original->num_kernels);
    for (const femrt_kernel_info &kernel : kernels)
      args.emplace_back(kernel.args, kernel.args + kernel.num_args);
    for (size_t k = 0; k < kernels.size(); ++k)
      kernels[k].args = args[k].data();
    library.kernels = kernels.data();
  }
  femrt_kernel_library library;
  std::vector<femrt_kernel_info> kernels;
  std::vector<std::vector<femrt_arg_info>> args;
};

TEST_F(ModuleTest, staticLibraryVersionAndSizeAreChecked) {
  femrt_module *module = nullptr;
  {
    MutableLibrary lib;
    lib.library.abi_version = 7;
    expectError(femrt_module_create_static(context, &lib.library, &module),
                FEMRT_ERROR_ABI_VERSION,
                {"built for femrt kernel ABI version 7",
                 "supports kernel ABI version 2"});
  }
  {
    MutableLibrary lib;
    lib.library.struct_size = 16;
    expectError(femrt_module_create_static(context, &lib.library, &module),
                FEMRT_ERROR_ABI_VERSION, {"struct_size 16", "at least"});
  }
  {
    // A newer producer's larger struct is accepted.
    MutableLibrary lib;
    lib.library.struct_size = sizeof(femrt_kernel_library) + 16;
    FEMRT_ASSERT_OK(femrt_module_create_static(context, &lib.library, &module));
    FEMRT_EXPECT_OK(femrt_module_destroy(module));
  }
  {
    MutableLibrary lib;
    lib.library.kernel_info_size = FEMRT_KERNEL_INFO_MIN_SIZE - 8;
    expectError(femrt_module_create_static(context, &lib.library, &module),
                FEMRT_ERROR_ABI_VERSION,
                {"femrt_kernel_info size", "needs at least"});
  }
}

/// Copies `lib`'s kernel entries (the first `copied` bytes of each) into
/// `table` at `stride` bytes apart, the rest 0xab, creates the module from it
/// and opens kernel 2, checking that its name survived the stride.
static void openWithStride(MutableLibrary &lib, size_t stride, size_t copied,
                           std::vector<unsigned char> &table,
                           femrt_module *&module, femrt_kernel *&kernel,
                           femrt_context *context) {
  table.assign(stride * lib.kernels.size() + 64, 0xab);
  for (size_t k = 0; k < lib.kernels.size(); ++k)
    std::memcpy(table.data() + k * stride, &lib.kernels[k], copied);
  lib.library.kernel_info_size = uint32_t(stride);
  lib.library.kernels =
      reinterpret_cast<const femrt_kernel_info *>(table.data());
  FEMRT_ASSERT_OK(femrt_module_create_static(context, &lib.library, &module));
  FEMRT_ASSERT_OK(femrt_module_get_kernel_by_index(module, 2, &kernel));
  const char *name = nullptr;
  FEMRT_EXPECT_OK(femrt_kernel_get_name(kernel, &name));
  EXPECT_STREQ(name, "copy_f16");
}

TEST_F(ModuleTest, aNewerProducersLargerKernelInfoIsSteppedOver) {
  // Kernel entries 24 bytes larger than ours, with garbage in the tail.
  MutableLibrary lib;
  std::vector<unsigned char> table;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  openWithStride(lib, sizeof(femrt_kernel_info) + 24, sizeof(femrt_kernel_info),
                 table, module, kernel, context);
  if (HasFatalFailure())
    return;
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

TEST_F(ModuleTest, kernelInfoWithoutTheSplitFieldIsAccepted) {
  // A producer from before femrt_kernel_info::split: entries end after
  // `traits`; the next entry's bytes must not be read as a split function.
  MutableLibrary lib;
  std::vector<unsigned char> table;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  openWithStride(lib, FEMRT_KERNEL_INFO_MIN_SIZE, FEMRT_KERNEL_INFO_MIN_SIZE,
                 table, module, kernel, context);
  if (HasFatalFailure())
    return;
  int32_t segments = -1;
  FEMRT_EXPECT_OK(femrt_kernel_last_segments(kernel, &segments));
  EXPECT_EQ(segments, 0); // not launched yet
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

/// Traits as femc writes them for a causal softmax read.
static femrt_kernel_traits softmaxTraits() {
  femrt_kernel_traits t{};
  t.struct_size = sizeof(femrt_kernel_traits);
  t.flags = FEMRT_KERNEL_CAUSAL | FEMRT_KERNEL_HAS_SCALE;
  t.prior = FEMRT_PRIOR_SOFTMAX;
  t.layout = FEMRT_LAYOUT_BHTD;
  t.scale = 0.125;
  t.cap = 40;
  t.eps = 4.9e-324; // the smallest subnormal is a legal eps
  t.tile_q = 192;
  t.tile_k = 64;
  t.vec = 8;
  t.grid[0] = {FEMRT_EXTENT_T, 0, 192};
  t.grid[1] = {FEMRT_EXTENT_HKV, 0, 1};
  t.grid[2] = {FEMRT_EXTENT_B, 0, 1};
  return t;
}

TEST_F(ModuleTest, traitsAreCopiedAndReturned) {
  MutableLibrary lib;
  // A newer producer's larger traits: the tail is not copied.
  struct {
    femrt_kernel_traits traits;
    double appended = 7;
  } newer;
  newer.traits = softmaxTraits();
  newer.traits.struct_size = sizeof newer;
  lib.kernels[0].traits = &newer.traits;
  femrt_module *module = nullptr;
  FEMRT_ASSERT_OK(femrt_module_create_static(context, &lib.library, &module));
  femrt_kernel *axpy = nullptr, *touch = nullptr;
  FEMRT_ASSERT_OK(femrt_module_get_kernel(module, "axpy", &axpy));
  FEMRT_ASSERT_OK(femrt_module_get_kernel(module, "touch", &touch));
  newer.traits.cap = -1; // the module holds a copy
  const femrt_kernel_traits *t = nullptr;
  FEMRT_ASSERT_OK(femrt_kernel_get_traits(axpy, &t));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->struct_size, sizeof(femrt_kernel_traits));
  EXPECT_EQ(t->prior, FEMRT_PRIOR_SOFTMAX);
  EXPECT_EQ(t->layout, FEMRT_LAYOUT_BHTD);
  EXPECT_EQ(t->flags, FEMRT_KERNEL_CAUSAL | FEMRT_KERNEL_HAS_SCALE);
  EXPECT_EQ(t->scale, 0.125);
  EXPECT_EQ(t->cap, 40);
  EXPECT_EQ(t->eps, 4.9e-324);
  EXPECT_EQ(t->tile_q, 192);
  EXPECT_EQ(t->tile_k, 64);
  EXPECT_EQ(t->vec, 8);
  EXPECT_EQ(t->grid[0].extent, FEMRT_EXTENT_T);
  EXPECT_EQ(t->grid[0].divisor, 192);
  EXPECT_EQ(t->grid[1].extent, FEMRT_EXTENT_HKV);
  EXPECT_EQ(t->grid[2].extent, FEMRT_EXTENT_B);
  // A kernel whose library gave no traits.
  t = &newer.traits;
  FEMRT_ASSERT_OK(femrt_kernel_get_traits(touch, &t));
  EXPECT_EQ(t, nullptr);
  expectError(femrt_kernel_get_traits(touch, nullptr),
              FEMRT_ERROR_INVALID_ARGUMENT, {"out_traits is NULL"});
  expectError(femrt_kernel_get_traits(nullptr, &t),
              FEMRT_ERROR_INVALID_ARGUMENT, {"kernel is NULL"});
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

TEST_F(ModuleTest, malformedTraitsAreRejected) {
  struct Case {
    const char *what;
    void (*breakIt)(femrt_kernel_traits &);
    const char *expected;
  };
  const Case cases[] = {
      {"small struct_size", [](femrt_kernel_traits &t) { t.struct_size = 8; },
       "traits with struct_size 8, but kernel ABI version 2 needs at least"},
      {"unknown flag", [](femrt_kernel_traits &t) { t.flags |= 0x100; },
       "flags 261, which has unknown bits (known: 15)"},
      {"prior out of range", [](femrt_kernel_traits &t) { t.prior = 5; },
       "prior 5 (expected -1 to 4)"},
      {"layout out of range", [](femrt_kernel_traits &t) { t.layout = 2; },
       "layout 2 (expected -1, 0 or 1)"},
      {"read without layout",
       [](femrt_kernel_traits &t) { t.layout = FEMRT_LAYOUT_NONE; },
       "prior 0 and layout -1 (both are -1 exactly when"},
      {"layer with a prior",
       [](femrt_kernel_traits &t) { t.flags |= FEMRT_KERNEL_LAYER; },
       "prior 0 on a layer"},
      {"infinite cap", [](femrt_kernel_traits &t) { t.cap = 1e308 * 10; },
       "cap inf, scale 0.125 and eps 4.94066e-324 (all must be finite)"},
      {"NaN scale",
       [](femrt_kernel_traits &t) { t.scale = std::nan(""); },
       "(all must be finite)"},
      {"zero eps", [](femrt_kernel_traits &t) { t.eps = 0; },
       "eps 0 (must be positive)"},
      {"negative tile", [](femrt_kernel_traits &t) { t.tile_k = -64; },
       "tiles q 192, k -64, vec 8 (must not be negative)"},
      {"unknown grid extent",
       [](femrt_kernel_traits &t) { t.grid[1].extent = 9; },
       "grid axis 1 extent 9 divisor 1 (expected extent -1 to 8 and divisor "
       ">= 1)"},
      {"zero divisor", [](femrt_kernel_traits &t) { t.grid[0].divisor = 0; },
       "grid axis 0 extent 1 divisor 0"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    MutableLibrary lib;
    femrt_kernel_traits traits = softmaxTraits();
    c.breakIt(traits);
    lib.kernels[1].traits = &traits;
    femrt_module *module = nullptr;
    expectError(femrt_module_create_static(context, &lib.library, &module),
                FEMRT_ERROR_INVALID_LIBRARY,
                {"static library 'fake_kernels 1.0' is malformed: kernel #1 "
                 "('touch') has traits with ",
                 c.expected});
    EXPECT_EQ(module, nullptr);
  }
  {
    // A layer: no prior, no layout, no eps; accepted.
    MutableLibrary lib;
    femrt_kernel_traits layer{};
    layer.struct_size = sizeof layer;
    layer.flags = FEMRT_KERNEL_LAYER;
    layer.prior = FEMRT_PRIOR_NONE;
    layer.layout = FEMRT_LAYOUT_NONE;
    for (femrt_grid_axis &axis : layer.grid)
      axis = {FEMRT_EXTENT_ONE, 0, 1};
    lib.kernels[1].traits = &layer;
    femrt_module *module = nullptr;
    FEMRT_ASSERT_OK(femrt_module_create_static(context, &lib.library, &module));
    FEMRT_EXPECT_OK(femrt_module_destroy(module));
  }
}

TEST_F(ModuleTest, malformedTablesAreRejected) {
  struct Case {
    const char *what;
    void (*breakIt)(MutableLibrary &);
    const char *expected;
  };
  const Case cases[] = {
      {"negative num_kernels",
       [](MutableLibrary &l) { l.library.num_kernels = -1; },
       "num_kernels is -1"},
      {"NULL kernel table",
       [](MutableLibrary &l) { l.library.kernels = nullptr; },
       "the kernel table is NULL"},
      {"NULL kernel name",
       [](MutableLibrary &l) { l.kernels[1].name = nullptr; },
       "kernel #1 has no name"},
      {"duplicate kernel names",
       [](MutableLibrary &l) { l.kernels[2].name = "axpy"; },
       "two kernels are named 'axpy'"},
      {"NULL workgroup",
       [](MutableLibrary &l) { l.kernels[0].workgroup = nullptr; },
       "kernel #0 ('axpy') has no workgroup function"},
      {"NULL argument table",
       [](MutableLibrary &l) { l.kernels[0].args = nullptr; },
       "the argument table is NULL"},
      {"rank too large",
       [](MutableLibrary &l) { l.args[0][1].rank = FEMRT_MAX_RANK + 1; },
       "argument 'x' (#1) has rank 9"},
      {"bad role", [](MutableLibrary &l) { l.args[0][1].role = 5; },
       "has role 5"},
      {"input after output",
       [](MutableLibrary &l) { l.args[2][2].role = FEMRT_ARG_INPUT; },
       "is an input after an output"},
      {"sub-byte dtype", [](MutableLibrary &l) { l.args[0][1].dtype_bits = 4; },
       "dtype_bits 4"},
      {"duplicate argument names",
       [](MutableLibrary &l) { l.args[0][2].name = "x"; },
       "two arguments named 'x'"},
      {"NULL argument name",
       [](MutableLibrary &l) { l.args[0][2].name = nullptr; },
       "argument #2 has no name"},
      {"bad static extent",
       [](MutableLibrary &l) { l.args[2][0].shape[1] = -5; },
       "has extent -5 in dimension 1"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    MutableLibrary lib;
    c.breakIt(lib);
    femrt_module *module = nullptr;
    expectError(femrt_module_create_static(context, &lib.library, &module),
                FEMRT_ERROR_INVALID_LIBRARY,
                {"static library 'fake_kernels 1.0' is malformed", c.expected});
    EXPECT_EQ(module, nullptr);
  }
}

} // namespace
