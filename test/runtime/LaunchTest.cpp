//===- LaunchTest.cpp - femrt_kernel_launch: checks and execution ---------===//

#include "TestUtil.h"

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>

using namespace femrt_test;

namespace {

/// Arguments of the fake `axpy` kernel: out = alpha * x + y on M x N.
struct Axpy {
  Axpy(int64_t m, int64_t n, float alphaValue = 2.0f)
      : alpha(Tensor::make({})), x(Tensor::make({m, n})),
        y(Tensor::make({m, n})), out(Tensor::make({m, n})) {
    *alpha.as<float>() = alphaValue;
    for (int64_t i = 0; i < m * n; ++i) {
      x.as<float>()[i] = static_cast<float>(i);
      y.as<float>()[i] = static_cast<float>(1000 - i);
      out.as<float>()[i] = -1.0f;
    }
  }
  std::vector<const DLTensor *> args() {
    return {alpha.dl(), x.dl(), y.dl(), out.dl()};
  }
  void expectComputed() {
    float a = *alpha.as<float>();
    for (int64_t i = 0; i < out.numElements(); ++i)
      ASSERT_EQ(out.as<float>()[i], a * x.as<float>()[i] + y.as<float>()[i])
          << "element " << i;
  }
  Tensor alpha, x, y, out;
};

class LaunchTest : public KernelTest {
protected:
  femrt_status launch(const char *name, std::vector<const DLTensor *> args,
                      const femrt_launch_options *options = nullptr) {
    return femrt_kernel_launch(kernel(name), args.data(),
                               static_cast<int32_t>(args.size()), options);
  }
};

//===----------------------------------------------------------------------===//
// Correct launches
//===----------------------------------------------------------------------===//

TEST_F(LaunchTest, axpyComputesTheRightResult) {
  Axpy a(5, 11);
  FEMRT_ASSERT_OK(launch("axpy", a.args()));
  a.expectComputed();
}

class LaunchThreads : public LaunchTest,
                      public ::testing::WithParamInterface<int> {};

TEST_P(LaunchThreads, resultsAgreeForAnyThreadCount) {
  FEMRT_ASSERT_OK(femrt_context_set_num_threads(context, GetParam()));
  // Grids of 1, a few and many more workgroups than threads.
  for (auto [m, n] : {std::pair<int64_t, int64_t>{1, 3}, {3, 9}, {64, 37},
                      {257, 130}}) {
    SCOPED_TRACE(testing::Message() << m << "x" << n);
    Axpy a(m, n, 0.5f);
    FEMRT_ASSERT_OK(launch("axpy", a.args()));
    a.expectComputed();
  }
  // Every workgroup of a 3-D grid runs exactly once, at the right (x, y, z).
  Tensor hits = Tensor::make({6, 7, 29}, kDLInt, 32);
  FEMRT_ASSERT_OK(launch("touch", {hits.dl()}));
  for (int64_t i = 0; i < hits.numElements(); ++i)
    ASSERT_EQ(hits.as<int32_t>()[i], 1) << "workgroup " << i;
  // max_threads = 1 runs everything on the calling thread.
  femrt_launch_options options;
  FEMRT_ASSERT_OK(femrt_launch_options_init(&options));
  options.max_threads = 1;
  FEMRT_ASSERT_OK(launch("touch", {hits.dl()}, &options));
  for (int64_t i = 0; i < hits.numElements(); ++i)
    ASSERT_EQ(hits.as<int32_t>()[i], 2) << "workgroup " << i;
}

INSTANTIATE_TEST_SUITE_P(Threads, LaunchThreads, ::testing::Values(1, 2, 7));

TEST_F(LaunchTest, concurrentLaunchesFromTwoThreads) {
  FEMRT_ASSERT_OK(femrt_context_set_num_threads(context, 3));
  femrt_kernel *touch = kernel("touch");
  std::atomic<int> failures{0};
  auto worker = [&](int64_t extent) {
    Tensor hits = Tensor::make({3, 5, extent}, kDLInt, 32);
    const DLTensor *args[] = {hits.dl()};
    for (int round = 0; round < 40; ++round)
      if (femrt_kernel_launch(touch, args, 1, nullptr) != FEMRT_OK)
        ++failures;
    for (int64_t i = 0; i < hits.numElements(); ++i)
      if (hits.as<int32_t>()[i] != 40)
        ++failures;
  };
  std::thread first(worker, 17), second(worker, 23);
  first.join();
  second.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(LaunchTest, destroyingTheModuleWhileAnotherThreadLaunches) {
  femrt_kernel *touch = kernel("touch");
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, invalid{0}, other{0};
  std::thread launcher([&] {
    Tensor hits = Tensor::make({2, 2, 64}, kDLInt, 32);
    const DLTensor *args[] = {hits.dl()};
    while (!stop) {
      femrt_status s = femrt_kernel_launch(touch, args, 1, nullptr);
      if (s == FEMRT_OK)
        ++ok;
      else if (s == FEMRT_ERROR_INVALID_HANDLE)
        ++invalid;
      else
        ++other;
      if (s == FEMRT_ERROR_INVALID_HANDLE)
        break;
    }
  });
  while (ok.load() < 5)
    std::this_thread::yield();
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
  launcher.join();
  EXPECT_GE(ok.load(), 5);
  EXPECT_EQ(invalid.load(), 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_F(LaunchTest, zeroSizedTensorsMayHaveNullDataAndRunNothing) {
  Tensor hits = Tensor::view(nullptr, {0, 4, 4}, kDLInt, 32);
  FEMRT_EXPECT_OK(launch("touch", {hits.dl()}));
  Axpy a(1, 1);
  Tensor x = Tensor::view(nullptr, {0, 3});
  Tensor y = Tensor::view(nullptr, {0, 3});
  Tensor out = Tensor::view(nullptr, {0, 3});
  FEMRT_EXPECT_OK(launch("axpy", {a.alpha.dl(), x.dl(), y.dl(), out.dl()}));
}

/// What recordingPrepare saw of its one argument.
femrt_memref recordedMemref;

int recordingPrepare(void *const *args, int64_t grid[3], char *, size_t) {
  std::memcpy(&recordedMemref, args[0], sizeof(recordedMemref));
  grid[0] = 0;
  return 0;
}

void neverRunWorkgroup(void *const *, int64_t, int64_t, int64_t) {
  ADD_FAILURE() << "a workgroup of an empty grid ran";
}

TEST_F(LaunchTest, zeroSizedTensorsWithHugeOtherExtentsRunNothing) {
  // A zero extent lifts the element-count limit from the other extents:
  // their compact strides used to overflow int64_t (undefined behaviour,
  // reported by UBSan), and touch's grid (2^40, 2^40, 0) was refused as
  // "invalid" instead of being empty.
  const int64_t huge = int64_t(1) << 40;
  Tensor hits = Tensor::view(nullptr, {0, huge, huge}, kDLInt, 32);
  FEMRT_EXPECT_OK(launch("touch", {hits.dl()}));

  static const femrt_arg_info args[] = {
      {"t", "A,B,C", kDLInt, 32, FEMRT_ARG_INPUT, 3, {-1, -1, -1}}};
  static const femrt_kernel_info kernels[] = {
      {"record", 1, args, recordingPrepare, neverRunWorkgroup, "", nullptr}};
  static const femrt_kernel_library library = {
      FEMRT_KERNEL_ABI_VERSION, sizeof(femrt_kernel_library), "test", "host",
      1, sizeof(femrt_kernel_info), kernels};
  femrt_module *recording = nullptr;
  FEMRT_ASSERT_OK(femrt_module_create_static(context, &library, &recording));
  femrt_kernel *k = nullptr;
  FEMRT_ASSERT_OK(femrt_module_get_kernel(recording, "record", &k));
  Tensor t = Tensor::view(nullptr, {0, huge, huge}, kDLInt, 32);
  const DLTensor *tensors[] = {t.dl()};
  FEMRT_EXPECT_OK(femrt_kernel_launch(k, tensors, 1, nullptr));
  EXPECT_EQ(recordedMemref.dims[0], 0);
  EXPECT_EQ(recordedMemref.dims[1], huge);
  EXPECT_EQ(recordedMemref.dims[2], huge);
  // Strides (huge * huge wraps to 0 in 64 bits), huge, 1: no element is
  // addressed through them.
  EXPECT_EQ(recordedMemref.dims[3], 0);
  EXPECT_EQ(recordedMemref.dims[4], huge);
  EXPECT_EQ(recordedMemref.dims[5], 1);
  FEMRT_EXPECT_OK(femrt_module_destroy(recording));
}

TEST_F(LaunchTest, explicitCompactStridesAndSizeOneDimensionsAreAccepted) {
  Axpy a(4, 6);
  a.x.setStrides({6, 1});
  a.out.setStrides({6, 1});
  FEMRT_ASSERT_OK(launch("axpy", a.args()));
  a.expectComputed();

  Axpy b(1, 6);
  b.x.setStrides({12345, 1}); // size-1 dimension: any stride
  FEMRT_ASSERT_OK(launch("axpy", b.args()));
  b.expectComputed();
}

TEST_F(LaunchTest, byteOffsetSelectsASubview) {
  // out lives 16 floats into a larger buffer.
  Axpy a(2, 3);
  Tensor big = Tensor::make({2 * 3 + 16});
  Tensor out = Tensor::view(big.t.data, {2, 3});
  out.t.byte_offset = 16 * sizeof(float);
  FEMRT_ASSERT_OK(launch("axpy", {a.alpha.dl(), a.x.dl(), a.y.dl(), out.dl()}));
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_EQ(big.as<float>()[16 + i],
              2.0f * a.x.as<float>()[i] + a.y.as<float>()[i]);
  EXPECT_EQ(big.as<float>()[15], 0.0f);
}

TEST_F(LaunchTest, pinnedHostMemoryIsAccepted) {
  Axpy a(3, 3);
  a.x.t.device = {kDLCUDAHost, 0};
  FEMRT_ASSERT_OK(launch("axpy", a.args()));
  a.expectComputed();
}

TEST_F(LaunchTest, inputsMayAliasEachOther) {
  Axpy a(3, 4);
  FEMRT_ASSERT_OK(
      launch("axpy", {a.alpha.dl(), a.x.dl(), a.x.dl(), a.out.dl()}));
  for (int64_t i = 0; i < 12; ++i)
    EXPECT_EQ(a.out.as<float>()[i], 3.0f * a.x.as<float>()[i]);
}

//===----------------------------------------------------------------------===//
// Rejected launches: each check, with the argument named
//===----------------------------------------------------------------------===//

TEST_F(LaunchTest, wrongArgumentCount) {
  Axpy a(2, 2);
  std::vector<const DLTensor *> args = a.args();
  args.pop_back();
  expectError(launch("axpy", args), FEMRT_ERROR_INVALID_ARGUMENT,
              {"kernel 'axpy': takes 4 arguments (alpha, x, y, out), got 3"});
  expectError(femrt_kernel_launch(kernel("axpy"), nullptr, 4, nullptr),
              FEMRT_ERROR_INVALID_ARGUMENT, {"args is NULL"});
}

TEST_F(LaunchTest, nullTensor) {
  Axpy a(2, 2);
  std::vector<const DLTensor *> args = a.args();
  args[2] = nullptr;
  expectError(launch("axpy", args), FEMRT_ERROR_INVALID_ARGUMENT,
              {"argument 'y' (#2): tensor is NULL"});
}

TEST_F(LaunchTest, nullDataWithElements) {
  Axpy a(2, 2);
  a.x.t.data = nullptr;
  expectError(launch("axpy", a.args()), FEMRT_ERROR_INVALID_ARGUMENT,
              {"argument 'x' (#1): data is NULL but the tensor has 4 elements"});
}

TEST_F(LaunchTest, nullShapeAndNegativeExtents) {
  Axpy a(2, 2);
  a.x.t.shape = nullptr;
  expectError(launch("axpy", a.args()), FEMRT_ERROR_INVALID_ARGUMENT,
              {"argument 'x' (#1): shape is NULL but ndim is 2"});
  Axpy b(2, 2);
  b.y.shape[1] = -3;
  expectError(launch("axpy", b.args()), FEMRT_ERROR_SHAPE_MISMATCH,
              {"argument 'y' (#2): negative extent -3 in dimension 1"});
}

TEST_F(LaunchTest, wrongRank) {
  Axpy a(2, 2);
  Tensor x3 = Tensor::make({2, 2, 1});
  expectError(launch("axpy", {a.alpha.dl(), x3.dl(), a.y.dl(), a.out.dl()}),
              FEMRT_ERROR_SHAPE_MISMATCH,
              {"kernel 'axpy': argument 'x' (#1): expected rank 2 (M,N), got "
               "rank 3"});
  Tensor alpha1 = Tensor::make({1});
  expectError(launch("axpy", {alpha1.dl(), a.x.dl(), a.y.dl(), a.out.dl()}),
              FEMRT_ERROR_SHAPE_MISMATCH,
              {"argument 'alpha' (#0): expected rank 0, got rank 1"});
  // A rank far larger than the shape array: refused on the rank alone,
  // before the shape is read or printed.
  Tensor x4 = Tensor::make({2, 2, 1, 1});
  x4.t.ndim = 1 << 30;
  expectError(launch("axpy", {a.alpha.dl(), x4.dl(), a.y.dl(), a.out.dl()}),
              FEMRT_ERROR_SHAPE_MISMATCH,
              {"argument 'x' (#1): expected rank 2 (M,N), got rank "
               "1073741824"});
}

TEST_F(LaunchTest, wrongDtype) {
  Axpy a(2, 2);
  a.y.t.dtype = {kDLFloat, 64, 1};
  expectError(launch("axpy", a.args()), FEMRT_ERROR_DTYPE,
              {"argument 'y' (#2): expected dtype float32, got float64"});
  Axpy b(2, 2);
  b.out.t.dtype = {kDLInt, 32, 1};
  expectError(launch("axpy", b.args()), FEMRT_ERROR_DTYPE,
              {"argument 'out' (#3): expected dtype float32, got int32"});
  Axpy c(2, 2);
  c.x.t.dtype = {kDLFloat, 32, 4};
  expectError(launch("axpy", c.args()), FEMRT_ERROR_DTYPE,
              {"argument 'x' (#1): expected dtype float32, got float32x4",
               "lanes"});
  Tensor q = Tensor::make({3, 8}, kDLBfloat, 16);
  Tensor o1 = Tensor::make({3, 8}, kDLFloat, 16);
  Tensor o2 = Tensor::make({3, 8}, kDLFloat, 16);
  expectError(launch("copy_f16", {q.dl(), o1.dl(), o2.dl()}), FEMRT_ERROR_DTYPE,
              {"argument 'q' (#0): expected dtype float16, got bfloat16"});
}

TEST_F(LaunchTest, wrongStaticExtent) {
  Tensor q = Tensor::make({3, 4}, kDLFloat, 16);
  Tensor o1 = Tensor::make({3, 8}, kDLFloat, 16);
  Tensor o2 = Tensor::make({3, 8}, kDLFloat, 16);
  expectError(launch("copy_f16", {q.dl(), o1.dl(), o2.dl()}),
              FEMRT_ERROR_SHAPE_MISMATCH,
              {"argument 'q' (#0): dimension 1 (dk) must be 8, got 4 (shape "
               "(3, 4))"});
}

TEST_F(LaunchTest, wrongDevice) {
  Axpy a(2, 2);
  a.y.t.device = {kDLCUDA, 1};
  expectError(launch("axpy", a.args()), FEMRT_ERROR_DEVICE,
              {"argument 'y' (#2): is on kDLCUDA:1", "kDLCPU or kDLCUDAHost"});
  Axpy b(2, 2);
  b.out.t.device = {static_cast<DLDeviceType>(99), 0};
  expectError(launch("axpy", b.args()), FEMRT_ERROR_DEVICE,
              {"argument 'out' (#3): is on device type 99:0"});
}

TEST_F(LaunchTest, nonCompactStrides) {
  Axpy a(3, 4);
  a.x.setStrides({1, 3}); // column-major
  expectError(launch("axpy", a.args()), FEMRT_ERROR_LAYOUT,
              {"argument 'x' (#1): strides (1, 3) are not compact row-major "
               "for shape (3, 4) (expected (4, 1)"});
  Axpy b(3, 4);
  b.out.setStrides({8, 1}); // padded rows
  expectError(launch("axpy", b.args()), FEMRT_ERROR_LAYOUT,
              {"argument 'out' (#3): strides (8, 1)"});
}

TEST_F(LaunchTest, misalignedData) {
  Axpy a(2, 2);
  Tensor x = Tensor::view(static_cast<char *>(a.x.t.data) + 2, {2, 2});
  expectError(launch("axpy", {a.alpha.dl(), x.dl(), a.y.dl(), a.out.dl()}),
              FEMRT_ERROR_ALIGNMENT,
              {"argument 'x' (#1): data + byte_offset = 0x",
               "is not aligned to 4 bytes (float32)"});
}

TEST_F(LaunchTest, byteOffsetNotAMultipleOfTheElementSize) {
  Axpy a(2, 2);
  a.y.t.byte_offset = 6;
  expectError(launch("axpy", a.args()), FEMRT_ERROR_ALIGNMENT,
              {"argument 'y' (#2): byte_offset 6 is not a multiple of the "
               "element size 4 (float32)"});
}

TEST_F(LaunchTest, outputAliasingAnInput) {
  Axpy a(2, 3);
  expectError(launch("axpy", {a.alpha.dl(), a.x.dl(), a.y.dl(), a.x.dl()}),
              FEMRT_ERROR_ALIASING,
              {"output argument 'out' (#3) overlaps input argument 'x' (#1)"});
  // A partial overlap through byte_offset.
  Tensor big = Tensor::make({12});
  Tensor x = Tensor::view(big.t.data, {2, 3});
  Tensor out = Tensor::view(big.t.data, {2, 3});
  out.t.byte_offset = 5 * sizeof(float);
  expectError(launch("axpy", {a.alpha.dl(), x.dl(), a.y.dl(), out.dl()}),
              FEMRT_ERROR_ALIASING,
              {"output argument 'out' (#3) overlaps input argument 'x' (#1)"});
  // Adjacent but disjoint is fine.
  out.t.byte_offset = 6 * sizeof(float);
  FEMRT_EXPECT_OK(launch("axpy", {a.alpha.dl(), x.dl(), a.y.dl(), out.dl()}));
}

TEST_F(LaunchTest, outputAliasingAnotherOutput) {
  Tensor q = Tensor::make({3, 8}, kDLFloat, 16);
  Tensor o = Tensor::make({3, 8}, kDLFloat, 16);
  expectError(launch("copy_f16", {q.dl(), o.dl(), o.dl()}),
              FEMRT_ERROR_ALIASING,
              {"output argument 'a' (#1) overlaps output argument 'b' (#2)"});
}

TEST_F(LaunchTest, prepareMessageIsPassedThrough) {
  Axpy a(2, 3);
  Tensor y = Tensor::make({2, 4});
  expectError(launch("axpy", {a.alpha.dl(), a.x.dl(), y.dl(), a.out.dl()}),
              FEMRT_ERROR_SHAPE_MISMATCH,
              {"kernel 'axpy': argument 'y' has shape (2, 4) but 'x' has "
               "shape (2, 3)"});
  // Nothing ran.
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_EQ(a.out.as<float>()[i], -1.0f);
}

TEST_F(LaunchTest, checksRunInTheDocumentedOrder) {
  // Rank is reported before dtype, dtype before device, device before
  // strides, strides before alignment, and all of them before aliasing.
  Axpy a(2, 2);
  Tensor x = Tensor::make({2, 2, 2}, kDLInt, 8);
  x.t.device = {kDLCUDA, 0};
  expectError(launch("axpy", {a.alpha.dl(), x.dl(), a.y.dl(), a.out.dl()}),
              FEMRT_ERROR_SHAPE_MISMATCH, {"expected rank 2"});
  Tensor x2 = Tensor::make({2, 2}, kDLInt, 8);
  x2.t.device = {kDLCUDA, 0};
  expectError(launch("axpy", {a.alpha.dl(), x2.dl(), a.y.dl(), a.out.dl()}),
              FEMRT_ERROR_DTYPE);
  Tensor x3 = Tensor::make({2, 2});
  x3.t.device = {kDLCUDA, 0};
  x3.setStrides({1, 2});
  expectError(launch("axpy", {a.alpha.dl(), x3.dl(), a.y.dl(), a.out.dl()}),
              FEMRT_ERROR_DEVICE);
  Tensor x4 = Tensor::make({2, 2});
  x4.setStrides({1, 2});
  x4.t.byte_offset = 1;
  expectError(launch("axpy", {a.alpha.dl(), x4.dl(), a.y.dl(), a.out.dl()}),
              FEMRT_ERROR_LAYOUT);
  // The first bad argument wins.
  Axpy b(2, 2);
  b.x.t.dtype = {kDLFloat, 16, 1};
  b.y.t.device = {kDLCUDA, 0};
  expectError(launch("axpy", b.args()), FEMRT_ERROR_DTYPE, {"'x' (#1)"});
}

TEST_F(LaunchTest, launchOptionsAreChecked) {
  Axpy a(2, 2);
  femrt_launch_options options{};
  expectError(launch("axpy", a.args(), &options), FEMRT_ERROR_INVALID_ARGUMENT,
              {"struct_size is 0", "femrt_launch_options_init"});
  FEMRT_ASSERT_OK(femrt_launch_options_init(&options));
  options.max_threads = -1;
  expectError(launch("axpy", a.args(), &options), FEMRT_ERROR_INVALID_ARGUMENT,
              {"max_threads is -1"});
  options.max_threads = 0;
  int fakeStream = 0;
  options.stream = &fakeStream;
  expectError(launch("axpy", a.args(), &options), FEMRT_ERROR_UNSUPPORTED,
              {"host kernels do not run on a CUDA stream"});
}

TEST_F(LaunchTest, staleAndNullKernelHandles) {
  Tensor hits = Tensor::make({1, 1, 1}, kDLInt, 32);
  const DLTensor *args[] = {hits.dl()};
  expectError(femrt_kernel_launch(nullptr, args, 1, nullptr),
              FEMRT_ERROR_INVALID_ARGUMENT, {"kernel is NULL"});
  femrt_kernel *touch = kernel("touch");
  FEMRT_ASSERT_OK(femrt_module_destroy(module));
  expectError(femrt_kernel_launch(touch, args, 1, nullptr),
              FEMRT_ERROR_INVALID_HANDLE,
              {"femrt_kernel_launch", "not a live femrt_kernel"});
}

//===----------------------------------------------------------------------===//
// Kernels that misbehave
//===----------------------------------------------------------------------===//

extern "C" int badGridPrepare(void *const *, int64_t grid[3], char *, size_t) {
  grid[0] = -4;
  return 0;
}
extern "C" int silentFailurePrepare(void *const *, int64_t *, char *, size_t) {
  return 3;
}
extern "C" int fourPrepare(void *const *, int64_t grid[3], char *, size_t) {
  grid[0] = 4;
  return 0;
}
extern "C" void throwingWorkgroup(void *const *, int64_t x, int64_t, int64_t) {
  if (x == 2)
    throw std::runtime_error("workgroup 2 threw");
}

TEST_F(LaunchTest, misbehavingKernelsAreInternalErrors) {
  static const femrt_arg_info args[] = {
      {"hits", "Z,Y,X", kDLInt, 32, FEMRT_ARG_OUTPUT, 3, {-1, -1, -1}}};
  static const femrt_kernel_info kernels[] = {
      {"bad_grid", 1, args, badGridPrepare, throwingWorkgroup, "", nullptr},
      {"silent", 1, args, silentFailurePrepare, throwingWorkgroup, "", nullptr},
      {"throws", 1, args, fourPrepare, throwingWorkgroup, "", nullptr},
      {"single", 1, args, nullptr, throwingWorkgroup, "", nullptr},
  };
  static const femrt_kernel_library library = {
      FEMRT_KERNEL_ABI_VERSION, sizeof(femrt_kernel_library), "test", "host",
      4, sizeof(femrt_kernel_info), kernels};
  femrt_module *misbehaving = nullptr;
  FEMRT_ASSERT_OK(femrt_module_create_static(context, &library, &misbehaving));
  Tensor hits = Tensor::make({1, 1, 1}, kDLInt, 32);
  const DLTensor *tensors[] = {hits.dl()};
  femrt_kernel *k = nullptr;

  FEMRT_ASSERT_OK(femrt_module_get_kernel(misbehaving, "bad_grid", &k));
  expectError(femrt_kernel_launch(k, tensors, 1, nullptr), FEMRT_ERROR_INTERNAL,
              {"kernel 'bad_grid': prepare returned an invalid grid (-4, 1, 1)"});
  FEMRT_ASSERT_OK(femrt_module_get_kernel(misbehaving, "silent", &k));
  expectError(femrt_kernel_launch(k, tensors, 1, nullptr),
              FEMRT_ERROR_SHAPE_MISMATCH,
              {"kernel 'silent': prepare failed with code 3 and no message"});
  // An exception escaping a workgroup does not cross the C API.
  FEMRT_ASSERT_OK(femrt_module_get_kernel(misbehaving, "throws", &k));
  expectError(femrt_kernel_launch(k, tensors, 1, nullptr), FEMRT_ERROR_INTERNAL,
              {"femrt_kernel_launch: internal error: workgroup 2 threw"});
  // No prepare: a grid of one workgroup, (0, 0, 0), which does not throw.
  FEMRT_ASSERT_OK(femrt_module_get_kernel(misbehaving, "single", &k));
  FEMRT_EXPECT_OK(femrt_kernel_launch(k, tensors, 1, nullptr));
  FEMRT_EXPECT_OK(femrt_module_destroy(misbehaving));
}

} // namespace
