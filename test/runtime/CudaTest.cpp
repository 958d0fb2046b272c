//===- CudaTest.cpp - The CUDA backend --------------------------------===//
//
// Three layers:
//  - without a driver (a bogus path): clear FEMRT_ERROR_NO_CUDA_DEVICE;
//  - with the fake driver of fake_cuda.c: the whole backend's plumbing
//    (device, memory, modules, launches, error names) on any machine;
//  - with the real driver: a PTX kernel on a GPU, skipped with
//    "no CUDA device: ..." when there is none.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "runtime/src/cuda/CudaDriver.h"

#include <dlfcn.h>
#include <elf.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace femrt_test;
namespace cuda = femc::rt::cuda;

namespace {

/// Points the runtime at `path` as its CUDA driver for the test's duration.
class DriverOverride : public ::testing::Test {
protected:
  void useDriver(const char *path) { cuda::setDriverPathForTesting(path); }
  void SetUp() override {
    FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context));
  }
  void TearDown() override {
    EXPECT_EQ(femrt_context_destroy(context), FEMRT_OK) << femrt_last_error();
    cuda::setDriverPathForTesting(nullptr);
  }
  femrt_context *context = nullptr;
};

//===----------------------------------------------------------------------===//
// No driver
//===----------------------------------------------------------------------===//

using NoDriver = DriverOverride;

TEST_F(NoDriver, absentLibcudaIsNoCudaDevice) {
  useDriver("/nonexistent/libcuda.so.1");
  int available = -1;
  FEMRT_EXPECT_OK(femrt_cuda_available(&available));
  EXPECT_EQ(available, 0);
  femrt_device *device = nullptr;
  expectError(femrt_device_open_cuda(context, 0, &device),
              FEMRT_ERROR_NO_CUDA_DEVICE,
              {"femrt_device_open_cuda: no CUDA driver",
               "cannot load the CUDA driver '/nonexistent/libcuda.so.1'",
               "FEMRT_CUDA_DRIVER"});
  EXPECT_EQ(device, nullptr);
  int32_t count = -1;
  expectError(femrt_cuda_device_count(&count), FEMRT_ERROR_NO_CUDA_DEVICE,
              {"femrt_cuda_device_count: no CUDA driver"});
}

TEST_F(NoDriver, aLibraryThatIsNotADriver) {
  useDriver(FAKE_KERNELS_PATH);
  femrt_device *device = nullptr;
  expectError(femrt_device_open_cuda(context, 0, &device),
              FEMRT_ERROR_NO_CUDA_DEVICE,
              {"is not a usable CUDA driver: it lacks cuInit"});
}

TEST_F(NoDriver, aFifoOrATruncatedDriverIsRefusedBeforeDlopen) {
  // FEMRT_CUDA_DRIVER naming a FIFO blocked dlopen forever, and a truncated
  // copy of a library crashed the loader with SIGBUS (BI round 12).
  std::string fifo = ::testing::TempDir() + "femrt_driver_fifo";
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  useDriver(fifo.c_str());
  femrt_context_set_num_threads(nullptr, 1); // sets a known last error
  std::string before = femrt_last_error();
  int available = -1;
  FEMRT_EXPECT_OK(femrt_cuda_available(&available));
  EXPECT_EQ(available, 0);
  EXPECT_EQ(std::string(femrt_last_error()), before);
  int32_t count = -1;
  expectError(femrt_cuda_device_count(&count), FEMRT_ERROR_NO_CUDA_DEVICE,
              {"no CUDA driver: cannot load the CUDA driver: '" + fifo +
                   "' is not a regular file (a device, FIFO or socket), not "
                   "a shared library",
               "FEMRT_CUDA_DRIVER"});
  std::remove(fifo.c_str());

  std::string truncated = ::testing::TempDir() + "femrt_driver_truncated.so";
  {
    std::ifstream in(FAKE_KERNELS_PATH, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    ASSERT_GT(bytes.size(), 3000u);
    std::ofstream out(truncated, std::ios::binary);
    out.write(bytes.data(), 3000);
  }
  useDriver(truncated.c_str());
  expectError(femrt_cuda_device_count(&count), FEMRT_ERROR_NO_CUDA_DEVICE,
              {"no CUDA driver: cannot load the CUDA driver: '" + truncated +
                   "' is truncated",
               "FEMRT_CUDA_DRIVER"});
  std::remove(truncated.c_str());
}

TEST_F(NoDriver, driverLoadReportsWhy) {
  std::string error;
  EXPECT_EQ(cuda::Driver::load("/bogus/dir/libcuda.so.1", error), nullptr);
  EXPECT_NE(error.find("cannot load the CUDA driver '/bogus/dir/libcuda.so.1'"),
            std::string::npos)
      << error;
}

TEST_F(NoDriver, availableDoesNotTouchTheLastError) {
  useDriver("/nonexistent/libcuda.so.1");
  femrt_context_set_num_threads(nullptr, 1); // sets a known last error
  std::string before = femrt_last_error();
  int available = -1;
  FEMRT_EXPECT_OK(femrt_cuda_available(&available));
  EXPECT_EQ(std::string(femrt_last_error()), before);
}

//===----------------------------------------------------------------------===//
// Error names
//===----------------------------------------------------------------------===//

TEST(CudaErrors, builtinNames) {
  EXPECT_EQ(cuda::builtinErrorName(0), "CUDA_SUCCESS");
  EXPECT_EQ(cuda::builtinErrorName(200), "CUDA_ERROR_INVALID_IMAGE");
  EXPECT_EQ(cuda::builtinErrorName(218), "CUDA_ERROR_INVALID_PTX");
  EXPECT_EQ(cuda::builtinErrorName(700), "CUDA_ERROR_ILLEGAL_ADDRESS");
  EXPECT_EQ(cuda::builtinErrorName(12345), "CUDA_ERROR_UNKNOWN_12345");
}

TEST(CudaErrors, statusMapping) {
  EXPECT_EQ(cuda::statusFor(2), FEMRT_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(cuda::statusFor(500), FEMRT_ERROR_NOT_FOUND);
  EXPECT_EQ(cuda::statusFor(100), FEMRT_ERROR_NO_CUDA_DEVICE);
  EXPECT_EQ(cuda::statusFor(34), FEMRT_ERROR_NO_CUDA_DEVICE);
  EXPECT_EQ(cuda::statusFor(200), FEMRT_ERROR_CUDA);
  EXPECT_EQ(cuda::statusFor(719), FEMRT_ERROR_CUDA);
}

TEST(CudaErrors, namesComeFromTheDriverWithFallback) {
  std::string error;
  std::shared_ptr<cuda::Driver> driver =
      cuda::Driver::load(FAKE_CUDA_PATH, error);
  ASSERT_TRUE(driver) << error;
  EXPECT_EQ(driver->describe(200),
            "CUDA_ERROR_INVALID_IMAGE: device kernel image is invalid");
  // A name without a description.
  EXPECT_EQ(driver->describe(1), "CUDA_ERROR_INVALID_VALUE");
  // Unknown to the (fake) driver: the built-in table.
  EXPECT_EQ(driver->describe(701), "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES");
  EXPECT_EQ(cuda::formatError(*driver, 500, "cuModuleGetFunction"),
            "CUDA_ERROR_NOT_FOUND: named symbol not found (in "
            "cuModuleGetFunction)");
}

//===----------------------------------------------------------------------===//
// The fake driver
//===----------------------------------------------------------------------===//

class FakeDriver : public DriverOverride {
protected:
  void SetUp() override {
    DriverOverride::SetUp();
    handle = dlopen(FAKE_CUDA_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    configure = reinterpret_cast<void (*)(int, int)>(
        dlsym(handle, "fake_cuda_configure"));
    contextDepth =
        reinterpret_cast<int (*)()>(dlsym(handle, "fake_cuda_context_depth"));
    ASSERT_TRUE(configure && contextDepth);
    configure(0, 1);
    useDriver(FAKE_CUDA_PATH);
  }
  void TearDown() override {
    DriverOverride::TearDown();
    EXPECT_EQ(contextDepth(), 0) << "a context push was not popped";
    configure(0, 1);
    dlclose(handle);
  }

  femrt_device *openDevice() {
    femrt_device *device = nullptr;
    EXPECT_EQ(femrt_device_open_cuda(context, 0, &device), FEMRT_OK)
        << femrt_last_error();
    return device;
  }

  void *handle = nullptr;
  void (*configure)(int, int) = nullptr;
  int (*contextDepth)() = nullptr;
};

TEST_F(FakeDriver, initFailureIsNoCudaDevice) {
  configure(/*CUDA_ERROR_NO_DEVICE*/ 100, 0);
  int available = -1;
  FEMRT_EXPECT_OK(femrt_cuda_available(&available));
  EXPECT_EQ(available, 0);
  femrt_device *device = nullptr;
  expectError(femrt_device_open_cuda(context, 0, &device),
              FEMRT_ERROR_NO_CUDA_DEVICE,
              {"failed to initialize",
               "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected (in "
               "cuInit)"});
}

TEST_F(FakeDriver, zeroDevices) {
  configure(0, 0);
  int available = -1;
  FEMRT_EXPECT_OK(femrt_cuda_available(&available));
  EXPECT_EQ(available, 0);
  int32_t count = -1;
  FEMRT_EXPECT_OK(femrt_cuda_device_count(&count));
  EXPECT_EQ(count, 0);
  femrt_device *device = nullptr;
  expectError(femrt_device_open_cuda(context, 0, &device),
              FEMRT_ERROR_NO_CUDA_DEVICE,
              {"no CUDA device with ordinal 0", "reports 0 devices"});
}

TEST_F(FakeDriver, openDeviceAndQueryIt) {
  int available = 0;
  FEMRT_EXPECT_OK(femrt_cuda_available(&available));
  EXPECT_EQ(available, 1);
  femrt_device *device = openDevice();
  ASSERT_NE(device, nullptr);
  const char *name = nullptr;
  FEMRT_EXPECT_OK(femrt_device_get_name(device, &name));
  EXPECT_STREQ(name, "Fake CUDA Device");
  int32_t major = 0, minor = -1;
  FEMRT_EXPECT_OK(femrt_cuda_device_compute_capability(device, &major, &minor));
  EXPECT_EQ(major, 9);
  EXPECT_EQ(minor, 0);
  femrt_device *second = nullptr;
  expectError(femrt_device_open_cuda(context, 1, &second),
              FEMRT_ERROR_NO_CUDA_DEVICE,
              {"no CUDA device with ordinal 1", "reports 1 device)"});
  expectError(femrt_device_open_cuda(context, -1, &second),
              FEMRT_ERROR_INVALID_ARGUMENT, {"ordinal is -1"});
  FEMRT_EXPECT_OK(femrt_device_destroy(device));
  expectError(femrt_device_destroy(device), FEMRT_ERROR_INVALID_HANDLE,
              {"not a live femrt_device"});
}

TEST_F(FakeDriver, memoryRoundTripAndChecks) {
  femrt_device *device = openDevice();
  ASSERT_NE(device, nullptr);
  void *buffer = nullptr;
  FEMRT_ASSERT_OK(femrt_cuda_malloc(device, 16 * sizeof(float), &buffer));
  std::vector<float> host(16), back(16, 0.0f);
  for (int i = 0; i < 16; ++i)
    host[i] = 1.5f * i;
  FEMRT_EXPECT_OK(
      femrt_cuda_memcpy_htod(device, buffer, host.data(), 16 * sizeof(float)));
  FEMRT_EXPECT_OK(
      femrt_cuda_memcpy_dtoh(device, back.data(), buffer, 16 * sizeof(float)));
  EXPECT_EQ(host, back);
  // Copies past the end of an allocation are refused.
  expectError(femrt_cuda_memcpy_htod(device,
                                     static_cast<float *>(buffer) + 8,
                                     host.data(), 9 * sizeof(float)),
              FEMRT_ERROR_INVALID_ARGUMENT,
              {"36 bytes at dst_device", "overrun the allocation of 64 bytes"});
  expectError(femrt_cuda_malloc(device, 0, &buffer),
              FEMRT_ERROR_INVALID_ARGUMENT, {"size is 0"});
  FEMRT_EXPECT_OK(femrt_cuda_free(device, buffer));
  expectError(femrt_cuda_free(device, buffer), FEMRT_ERROR_INVALID_ARGUMENT,
              {"is not a live allocation", "freed already"});
  FEMRT_EXPECT_OK(femrt_cuda_free(device, nullptr));
  // Memory still allocated when the device goes is freed with it (LSan
  // would report it otherwise).
  void *leaked = nullptr;
  FEMRT_ASSERT_OK(femrt_cuda_malloc(device, 128, &leaked));
  FEMRT_EXPECT_OK(femrt_device_destroy(device));
}

TEST_F(FakeDriver, moduleLoadErrorsAreNamed) {
  femrt_device *device = openDevice();
  ASSERT_NE(device, nullptr);
  const char bogus[] = "this is not a cubin";
  femrt_cuda_module *module = nullptr;
  expectError(
      femrt_cuda_module_load_image(device, bogus, sizeof(bogus), &module),
      FEMRT_ERROR_CUDA,
      {"femrt_cuda_module_load_image: CUDA_ERROR_INVALID_IMAGE: device kernel "
       "image is invalid (in cuModuleLoadDataEx)",
       "JIT log: fake JIT: the image does not start with FAKE_MODULE"});
  expectError(femrt_cuda_module_load_image(device, nullptr, 4, &module),
              FEMRT_ERROR_INVALID_ARGUMENT, {"image is NULL"});
  expectError(femrt_cuda_module_load_image(device, bogus, 0, &module),
              FEMRT_ERROR_INVALID_ARGUMENT, {"image is empty"});
}

TEST_F(FakeDriver, truncatedOrForeignCubinsAndFatbinsAreRefused) {
  // cuModuleLoadData takes no size: it used to read a truncated cubin or
  // fatbin past the end of the caller's buffer.
  femrt_device *device = openDevice();
  ASSERT_NE(device, nullptr);
  femrt_cuda_module *module = nullptr;
  // A cubin header whose section header table (4 entries at byte 64) lies
  // beyond the 64 bytes given.
  Elf64_Ehdr cubin{};
  std::memcpy(cubin.e_ident, ELFMAG, SELFMAG);
  cubin.e_ident[EI_CLASS] = ELFCLASS64;
  cubin.e_ident[EI_DATA] = ELFDATA2LSB;
  cubin.e_ident[EI_VERSION] = EV_CURRENT;
  cubin.e_type = ET_EXEC;
  cubin.e_machine = 190; // EM_CUDA
  cubin.e_ehsize = sizeof(Elf64_Ehdr);
  cubin.e_shoff = sizeof(Elf64_Ehdr);
  cubin.e_shentsize = sizeof(Elf64_Shdr);
  cubin.e_shnum = 4;
  expectError(
      femrt_cuda_module_load_image(device, &cubin, sizeof(cubin), &module),
      FEMRT_ERROR_INVALID_ARGUMENT,
      {"femrt_cuda_module_load_image: the cubin image (64 bytes) is "
       "truncated: its section header table (4 entries from byte 64) ends at "
       "byte 320"});
  // The same bytes cut inside the ELF header.
  expectError(femrt_cuda_module_load_image(device, &cubin, 40, &module),
              FEMRT_ERROR_INVALID_ARGUMENT,
              {"the cubin image (40 bytes) is truncated: shorter than an ELF "
               "header (64 bytes)"});
  // A host shared object is no cubin.
  Elf64_Ehdr host = cubin;
  host.e_machine = EM_X86_64;
  host.e_shnum = 0;
  expectError(
      femrt_cuda_module_load_image(device, &host, sizeof(host), &module),
      FEMRT_ERROR_INVALID_ARGUMENT,
      {"the cubin image (64 bytes) is an ELF file for x86-64, not a CUDA "
       "cubin"});
  // A whole cubin header (no tables) reaches the driver, which refuses it.
  Elf64_Ehdr bare = cubin;
  bare.e_shnum = 0;
  bare.e_shoff = 0;
  expectError(
      femrt_cuda_module_load_image(device, &bare, sizeof(bare), &module),
      FEMRT_ERROR_CUDA, {"CUDA_ERROR_INVALID_IMAGE"});
  // A fatbin whose header announces more bytes than given.
  unsigned char fatbin[32] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0};
  uint64_t fatSize = 1000;
  std::memcpy(fatbin + 8, &fatSize, sizeof(fatSize));
  expectError(
      femrt_cuda_module_load_image(device, fatbin, sizeof(fatbin), &module),
      FEMRT_ERROR_INVALID_ARGUMENT,
      {"the fatbin image (32 bytes) is truncated: its header says 16 + 1000 "
       "bytes"});
  expectError(femrt_cuda_module_load_image(device, fatbin, 10, &module),
              FEMRT_ERROR_INVALID_ARGUMENT,
              {"the fatbin image (10 bytes) is truncated"});
  EXPECT_EQ(module, nullptr);
  FEMRT_EXPECT_OK(femrt_device_destroy(device));
}

TEST_F(FakeDriver, loadLaunchAndSynchronize) {
  femrt_device *device = openDevice();
  ASSERT_NE(device, nullptr);
  // PTX-like text without a terminating NUL: the runtime adds one.
  const char image[] = {'F', 'A', 'K', 'E', '_', 'M', 'O', 'D', 'U', 'L', 'E'};
  femrt_cuda_module *module = nullptr;
  FEMRT_ASSERT_OK(
      femrt_cuda_module_load_image(device, image, sizeof(image), &module));

  void *buffer = nullptr;
  FEMRT_ASSERT_OK(femrt_cuda_malloc(device, 8 * sizeof(float), &buffer));
  float value = 4.25f;
  int n = 8;
  void *params[] = {&buffer, &value, &n};
  uint32_t grid[3] = {1, 1, 1}, block[3] = {32, 1, 1};
  FEMRT_ASSERT_OK(
      femrt_cuda_launch_raw(module, "fill", grid, block, 0, nullptr, params));
  FEMRT_EXPECT_OK(femrt_cuda_synchronize(device, nullptr));
  std::vector<float> back(8, 0.0f);
  FEMRT_EXPECT_OK(
      femrt_cuda_memcpy_dtoh(device, back.data(), buffer, 8 * sizeof(float)));
  EXPECT_EQ(back, std::vector<float>(8, 4.25f));

  expectError(
      femrt_cuda_launch_raw(module, "nope", grid, block, 0, nullptr, params),
      FEMRT_ERROR_NOT_FOUND,
      {"the CUDA module has no function 'nope'",
       "CUDA_ERROR_NOT_FOUND: named symbol not found (in cuModuleGetFunction)"});
  uint32_t emptyGrid[3] = {0, 1, 1};
  expectError(femrt_cuda_launch_raw(module, "fill", emptyGrid, block, 0,
                                    nullptr, params),
              FEMRT_ERROR_INVALID_ARGUMENT, {"must not have zero extents"});
  expectError(
      femrt_cuda_launch_raw(module, "fill", nullptr, block, 0, nullptr, params),
      FEMRT_ERROR_INVALID_ARGUMENT, {"grid is NULL"});

  FEMRT_EXPECT_OK(femrt_cuda_module_destroy(module));
  expectError(femrt_cuda_module_destroy(module), FEMRT_ERROR_INVALID_HANDLE,
              {"not a live femrt_cuda_module"});
  FEMRT_EXPECT_OK(femrt_cuda_free(device, buffer));
}

TEST_F(FakeDriver, destroyingTheContextReleasesDevicesAndModules) {
  femrt_device *device = openDevice();
  ASSERT_NE(device, nullptr);
  femrt_cuda_module *module = nullptr;
  FEMRT_ASSERT_OK(
      femrt_cuda_module_load_image(device, "FAKE_MODULE", 12, &module));
  FEMRT_ASSERT_OK(femrt_context_destroy(context));
  expectError(femrt_cuda_module_destroy(module), FEMRT_ERROR_INVALID_HANDLE);
  expectError(femrt_device_destroy(device), FEMRT_ERROR_INVALID_HANDLE);
  FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context)); // for TearDown
}

//===----------------------------------------------------------------------===//
// A real GPU
//===----------------------------------------------------------------------===//

/// c[i] = a[i] + b[i] for i < n; PTX ISA 6.0 so that any driver since CUDA
/// 9 can JIT it for its GPU.
const char kAddPtx[] = R"(
.version 6.0
.target sm_50
.address_size 64

.visible .entry femrt_test_add(
    .param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<4>;
    .reg .b64 %rd<11>;
    ld.param.u64 %rd1, [a];
    ld.param.u64 %rd2, [b];
    ld.param.u64 %rd3, [c];
    ld.param.u32 %r2, [n];
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mov.u32 %r5, %tid.x;
    mad.lo.s32 %r1, %r3, %r4, %r5;
    setp.ge.u32 %p1, %r1, %r2;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd4, %rd1;
    cvta.to.global.u64 %rd5, %rd2;
    cvta.to.global.u64 %rd6, %rd3;
    mul.wide.u32 %rd7, %r1, 4;
    add.s64 %rd8, %rd4, %rd7;
    add.s64 %rd9, %rd5, %rd7;
    add.s64 %rd10, %rd6, %rd7;
    ld.global.f32 %f1, [%rd8];
    ld.global.f32 %f2, [%rd9];
    add.f32 %f3, %f1, %f2;
    st.global.f32 [%rd10], %f3;
DONE:
    ret;
}
)";

class RealCuda : public DriverOverride {
protected:
  void SetUp() override {
    DriverOverride::SetUp();
    useDriver(nullptr);
    femrt_status status = femrt_device_open_cuda(context, 0, &device);
    if (status != FEMRT_OK) {
      ASSERT_EQ(status, FEMRT_ERROR_NO_CUDA_DEVICE) << femrt_last_error();
      GTEST_SKIP() << "no CUDA device: " << femrt_last_error();
    }
  }
  femrt_device *device = nullptr;
};

TEST_F(RealCuda, ptxVectorAdd) {
  const char *name = nullptr;
  FEMRT_ASSERT_OK(femrt_device_get_name(device, &name));
  RecordProperty("cuda_device", name);
  femrt_cuda_module *module = nullptr;
  FEMRT_ASSERT_OK(
      femrt_cuda_module_load_image(device, kAddPtx, sizeof(kAddPtx), &module));
  const uint32_t n = 1000;
  std::vector<float> a(n), b(n), c(n, 0.0f);
  for (uint32_t i = 0; i < n; ++i) {
    a[i] = 0.5f * i;
    b[i] = 1000.0f - i;
  }
  void *da = nullptr, *db = nullptr, *dc = nullptr;
  FEMRT_ASSERT_OK(femrt_cuda_malloc(device, n * sizeof(float), &da));
  FEMRT_ASSERT_OK(femrt_cuda_malloc(device, n * sizeof(float), &db));
  FEMRT_ASSERT_OK(femrt_cuda_malloc(device, n * sizeof(float), &dc));
  FEMRT_ASSERT_OK(femrt_cuda_memcpy_htod(device, da, a.data(), n * 4));
  FEMRT_ASSERT_OK(femrt_cuda_memcpy_htod(device, db, b.data(), n * 4));
  uint32_t count = n;
  void *params[] = {&da, &db, &dc, &count};
  uint32_t grid[3] = {(n + 127) / 128, 1, 1}, block[3] = {128, 1, 1};
  FEMRT_ASSERT_OK(femrt_cuda_launch_raw(module, "femrt_test_add", grid, block,
                                        0, nullptr, params));
  FEMRT_ASSERT_OK(femrt_cuda_synchronize(device, nullptr));
  FEMRT_ASSERT_OK(femrt_cuda_memcpy_dtoh(device, c.data(), dc, n * 4));
  for (uint32_t i = 0; i < n; ++i)
    ASSERT_EQ(c[i], a[i] + b[i]) << i;

  expectError(
      femrt_cuda_launch_raw(module, "nope", grid, block, 0, nullptr, params),
      FEMRT_ERROR_NOT_FOUND, {"CUDA_ERROR_NOT_FOUND"});
  FEMRT_EXPECT_OK(femrt_cuda_free(device, da));
  FEMRT_EXPECT_OK(femrt_cuda_free(device, db));
  FEMRT_EXPECT_OK(femrt_cuda_free(device, dc));
  FEMRT_EXPECT_OK(femrt_cuda_module_destroy(module));
  FEMRT_EXPECT_OK(femrt_device_destroy(device));
}

TEST_F(RealCuda, invalidImageIsNamed) {
  const char bogus[] = "definitely not PTX";
  femrt_cuda_module *module = nullptr;
  femrt_status status =
      femrt_cuda_module_load_image(device, bogus, sizeof(bogus), &module);
  EXPECT_EQ(status, FEMRT_ERROR_CUDA) << femrt_last_error();
  EXPECT_NE(std::string(femrt_last_error()).find(": CUDA_ERROR_"),
            std::string::npos)
      << femrt_last_error();
}

} // namespace
