//===- BindHostTest.cpp - The optional bind_host of kernel libraries ------===//
//
// femrt_kernel_library gained a trailing field, bind_host, after ABI 2's
// first release. These tests run a hand-written layer (one workgroup that
// runs a grid of its own) from a library that has the field and from one
// whose struct_size stops before it (FEMRT_KERNEL_LIBRARY_MIN_SIZE): the
// first gets a parallel_for on the launch's pool, the second must run its
// stages serially and libfemrt must not read the field at all.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <cstddef>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace femrt_test;

namespace {

/// What the fake layer and its bind_host saw; reset by each test.
struct Record {
  std::mutex mutex;
  std::set<std::thread::id> threads; // threads that ran a stage's index
  int binds = 0, unbinds = 0;        // bind_host(host) / bind_host(NULL)
  int serialRuns = 0, parallelRuns = 0;
  uint32_t hostStructSize = 0;
  bool boundOnLaunchingThread = true;
  std::thread::id bindThread;
};
Record *record = nullptr;

/// The services bind_host lent to the calling thread (the fake layer's
/// counterpart of what femc's generated layer keeps).
thread_local const femrt_host *boundHost = nullptr;

void bindHost(const femrt_host *host) {
  std::lock_guard<std::mutex> lock(record->mutex);
  if (host) {
    ++record->binds;
    record->hostStructSize = host->struct_size;
    record->bindThread = std::this_thread::get_id();
  } else {
    ++record->unbinds;
  }
  boundHost = host;
}

/// A bind_host that must never be called: installed behind a struct_size
/// that does not cover the field.
void bindHostBeyondStructSize(const femrt_host *) {
  ADD_FAILURE() << "bind_host was read although struct_size does not cover it";
}

struct Stage {
  int32_t *hits;
};

void stageBody(void *ctx, int64_t i) {
  auto *stage = static_cast<Stage *>(ctx);
  __atomic_fetch_add(&stage->hits[i], 1, __ATOMIC_RELAXED);
  std::lock_guard<std::mutex> lock(record->mutex);
  record->threads.insert(std::this_thread::get_id());
}

/// layer() -> hits: i32[N]: one workgroup whose stage adds 1 to every
/// element, through host->parallel_for when a host is bound, serially
/// otherwise.
void layerWorkgroup(void *const *args, int64_t, int64_t, int64_t) {
  const auto *out = static_cast<const femrt_memref *>(args[0]);
  Stage stage{static_cast<int32_t *>(out->aligned) + out->offset};
  int64_t n = out->dims[0];
  if (const femrt_host *host = boundHost) {
    {
      std::lock_guard<std::mutex> lock(record->mutex);
      ++record->parallelRuns;
      if (record->bindThread != std::this_thread::get_id())
        record->boundOnLaunchingThread = false;
    }
    host->parallel_for(host->pool, n, &stageBody, &stage);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(record->mutex);
    ++record->serialRuns;
  }
  for (int64_t i = 0; i < n; ++i)
    stageBody(&stage, i);
}

/// A library holding the fake layer; `structSize` is what it claims.
struct LayerLibrary {
  explicit LayerLibrary(uint32_t structSize, femrt_bind_host_fn bind) {
    arg.name = "hits";
    arg.dim_names = "N";
    arg.dtype_code = kDLInt;
    arg.dtype_bits = 32;
    arg.role = FEMRT_ARG_OUTPUT;
    arg.rank = 1;
    arg.shape[0] = -1;
    traits.struct_size = sizeof traits;
    traits.flags = FEMRT_KERNEL_LAYER;
    traits.prior = FEMRT_PRIOR_NONE;
    traits.layout = FEMRT_LAYOUT_NONE;
    for (femrt_grid_axis &axis : traits.grid)
      axis = {FEMRT_EXTENT_ONE, 0, 1};
    kernel.name = "layer";
    kernel.num_args = 1;
    kernel.args = &arg;
    kernel.prepare = nullptr; // grid (1, 1, 1)
    kernel.workgroup = &layerWorkgroup;
    kernel.description = "a fake layer with one parallel stage";
    kernel.traits = &traits;
    library.abi_version = FEMRT_KERNEL_ABI_VERSION;
    library.struct_size = structSize;
    library.producer = "bind_host test";
    library.target = "host:test";
    library.num_kernels = 1;
    library.kernel_info_size = sizeof(femrt_kernel_info);
    library.kernels = &kernel;
    library.bind_host = bind;
  }
  femrt_arg_info arg{};
  femrt_kernel_traits traits{};
  femrt_kernel_info kernel{};
  femrt_kernel_library library{};
};

class BindHostTest : public ::testing::Test {
protected:
  void SetUp() override {
    record = &rec;
    femrt_context_options options;
    femrt_context_options_init(&options);
    options.num_threads = 4;
    FEMRT_ASSERT_OK(femrt_context_create(&options, &context));
  }
  void TearDown() override {
    EXPECT_EQ(femrt_context_destroy(context), FEMRT_OK) << femrt_last_error();
    record = nullptr;
  }

  /// Loads `library` as a static module of the context and finds its
  /// kernel "layer" (use inside ASSERT_NO_FATAL_FAILURE).
  void openLayer(const femrt_kernel_library &library, femrt_module *&module,
                 femrt_kernel *&layer) {
    module = nullptr;
    layer = nullptr;
    FEMRT_ASSERT_OK(femrt_module_create_static(context, &library, &module));
    FEMRT_ASSERT_OK(femrt_module_get_kernel(module, "layer", &layer));
  }

  /// Launches the library's layer on `n` elements with at most `maxThreads`
  /// threads and checks that every element was written exactly once.
  void runLayer(const femrt_kernel_library &library, int64_t n,
                int32_t maxThreads) {
    femrt_module *module;
    femrt_kernel *layer;
    ASSERT_NO_FATAL_FAILURE(openLayer(library, module, layer));
    Tensor hits = Tensor::make({n}, kDLInt, 32);
    const DLTensor *args[] = {hits.dl()};
    femrt_launch_options options;
    FEMRT_ASSERT_OK(femrt_launch_options_init(&options));
    options.max_threads = maxThreads;
    FEMRT_ASSERT_OK(femrt_kernel_launch(layer, args, 1, &options));
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i)
      if (hits.as<int32_t>()[i] != 1 && wrong++ < 5)
        ADD_FAILURE() << "element " << i << " was written "
                      << hits.as<int32_t>()[i] << " times";
    EXPECT_EQ(wrong, 0) << "elements not written exactly once";
    FEMRT_EXPECT_OK(femrt_module_destroy(module));
  }

  Record rec;
  femrt_context *context = nullptr;
};

TEST_F(BindHostTest, theMinimumSizeIsWhatPrecedesBindHost) {
  EXPECT_EQ(FEMRT_KERNEL_LIBRARY_MIN_SIZE,
            offsetof(femrt_kernel_library, bind_host));
}

TEST_F(BindHostTest, aLibraryWithoutBindHostLoadsAndItsLayerRunsSerially) {
  // struct_size stops before bind_host; the field holds a function that
  // fails the test if libfemrt reads it anyway.
  LayerLibrary lib(uint32_t(FEMRT_KERNEL_LIBRARY_MIN_SIZE),
                   &bindHostBeyondStructSize);
  runLayer(lib.library, 1000, 0);
  EXPECT_EQ(rec.serialRuns, 1);
  EXPECT_EQ(rec.parallelRuns, 0);
  EXPECT_EQ(rec.binds, 0);
  EXPECT_EQ(rec.threads.size(), 1u);
}

TEST_F(BindHostTest, aNullBindHostRunsTheLayerSerially) {
  LayerLibrary lib(sizeof(femrt_kernel_library), nullptr);
  runLayer(lib.library, 1000, 0);
  EXPECT_EQ(rec.serialRuns, 1);
  EXPECT_EQ(rec.parallelRuns, 0);
}

TEST_F(BindHostTest, bindHostLendsAParallelForThatCoversEveryIndexOnce) {
  for (int32_t maxThreads : {0, 1, 2, 3}) {
    SCOPED_TRACE("max_threads " + std::to_string(maxThreads));
    rec.threads.clear();
    rec.binds = rec.unbinds = rec.serialRuns = rec.parallelRuns = 0;
    LayerLibrary lib(sizeof(femrt_kernel_library), &bindHost);
    runLayer(lib.library, 100003, maxThreads);
    // Bound once around the single workgroup, on the launching thread, and
    // unbound after it.
    EXPECT_EQ(rec.binds, 1);
    EXPECT_EQ(rec.unbinds, 1);
    EXPECT_EQ(rec.hostStructSize, sizeof(femrt_host));
    EXPECT_EQ(rec.parallelRuns, 1);
    EXPECT_EQ(rec.serialRuns, 0);
    EXPECT_TRUE(rec.boundOnLaunchingThread);
    EXPECT_GE(rec.threads.size(), 1u);
    // The stage's loop honours the launch's thread limit (0: the
    // context's 4 threads).
    EXPECT_LE(rec.threads.size(), size_t(maxThreads ? maxThreads : 4));
  }
  EXPECT_EQ(boundHost, nullptr) << "the host stayed bound after the launch";
}

TEST_F(BindHostTest, aParallelForOfNoIndicesCallsNothing) {
  LayerLibrary lib(sizeof(femrt_kernel_library), &bindHost);
  runLayer(lib.library, 0, 0);
  EXPECT_TRUE(rec.threads.empty());
}

/// A stage body that must not run: its loop was refused. It throws so that
/// a launch that runs it anyway reports it (and ends) instead of running
/// 2^62 indices.
void refusedStageBody(void *, int64_t) {
  ++record->serialRuns;
  throw std::runtime_error("a body of the refused loop ran");
}

/// layer(): asks host->parallel_for for more iterations than the pool runs,
/// then for an ordinary loop (which must not run after the failure).
void hugeStageWorkgroup(void *const *args, int64_t, int64_t, int64_t) {
  const auto *out = static_cast<const femrt_memref *>(args[0]);
  Stage stage{static_cast<int32_t *>(out->aligned) + out->offset};
  const femrt_host *host = boundHost;
  ASSERT_NE(host, nullptr);
  host->parallel_for(host->pool, int64_t(1) << 62, &refusedStageBody, nullptr);
  host->parallel_for(host->pool, out->dims[0], &stageBody, &stage);
}

TEST_F(BindHostTest, aLoopThePoolRefusesFailsTheLaunchAndRunsNothing) {
  LayerLibrary lib(sizeof(femrt_kernel_library), &bindHost);
  lib.kernel.workgroup = &hugeStageWorkgroup;
  femrt_module *module;
  femrt_kernel *layer;
  ASSERT_NO_FATAL_FAILURE(openLayer(lib.library, module, layer));
  Tensor hits = Tensor::make({16}, kDLInt, 32);
  const DLTensor *args[] = {hits.dl()};
  expectError(femrt_kernel_launch(layer, args, 1, nullptr),
              FEMRT_ERROR_INVALID_ARGUMENT,
              {"kernel 'layer': a stage of the layer asked for a parallel "
               "loop of 4611686018427387904 iterations"});
  EXPECT_EQ(rec.serialRuns, 0) << "a body of the refused loop ran";
  EXPECT_TRUE(rec.threads.empty()) << "a stage ran after the refused one";
  EXPECT_EQ(rec.unbinds, 1) << "the host stayed bound after the failure";
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

/// The blocks the scratch layer got, launch by launch.
std::vector<void *> scratchBlocks;

/// layer(): takes two 3 MiB scratch blocks from the host (as a compiled
/// layer takes its intermediates), writes them and gives them back.
void scratchWorkgroup(void *const *, int64_t, int64_t, int64_t) {
  const femrt_host *host = boundHost;
  ASSERT_NE(host, nullptr);
  ASSERT_GE(host->struct_size,
            offsetof(femrt_host, scratch_free) + sizeof host->scratch_free);
  ASSERT_NE(host->scratch_alloc, nullptr);
  ASSERT_NE(host->scratch_free, nullptr);
  constexpr uint64_t n = uint64_t(3) << 20;
  void *a = host->scratch_alloc(host->scratch, n);
  void *b = host->scratch_alloc(host->scratch, n);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 1, n);
  std::memset(b, 2, n);
  scratchBlocks.push_back(a);
  scratchBlocks.push_back(b);
  host->scratch_free(host->scratch, b, n);
  host->scratch_free(host->scratch, a, n);
}

TEST_F(BindHostTest, aLayerReusesItsScratchBlocksUntilTheyAreTrimmed) {
  LayerLibrary lib(sizeof(femrt_kernel_library), &bindHost);
  lib.kernel.workgroup = &scratchWorkgroup;
  femrt_module *module;
  femrt_kernel *layer;
  ASSERT_NO_FATAL_FAILURE(openLayer(lib.library, module, layer));
  Tensor hits = Tensor::make({1}, kDLInt, 32);
  const DLTensor *args[] = {hits.dl()};
  scratchBlocks.clear();
  uint64_t cached = 1, reused = 1;
  FEMRT_ASSERT_OK(femrt_module_scratch(module, 0, &cached, &reused));
  EXPECT_EQ(cached, 0u);
  EXPECT_EQ(reused, 0u);
  FEMRT_ASSERT_OK(femrt_kernel_launch(layer, args, 1, nullptr));
  FEMRT_ASSERT_OK(femrt_module_scratch(module, 0, &cached, &reused));
  EXPECT_EQ(cached, uint64_t(8) << 20) << "two 3 MiB blocks (in 2 MiB pages)";
  EXPECT_EQ(reused, 0u);
  // The second launch gets the same two blocks back.
  FEMRT_ASSERT_OK(femrt_kernel_launch(layer, args, 1, nullptr));
  FEMRT_ASSERT_OK(femrt_module_scratch(module, 0, &cached, &reused));
  EXPECT_EQ(reused, 2u);
  ASSERT_EQ(scratchBlocks.size(), 4u);
  EXPECT_EQ(std::set<void *>(scratchBlocks.begin(), scratchBlocks.end()),
            std::set<void *>(scratchBlocks.begin(), scratchBlocks.begin() + 2));
  // Trimmed: nothing kept; the next launch takes fresh blocks.
  FEMRT_ASSERT_OK(femrt_module_scratch(module, 1, &cached, nullptr));
  EXPECT_EQ(cached, 0u);
  FEMRT_ASSERT_OK(femrt_kernel_launch(layer, args, 1, nullptr));
  FEMRT_ASSERT_OK(femrt_module_scratch(module, 0, nullptr, &reused));
  EXPECT_EQ(reused, 2u);
  // Destroying the module frees what it keeps (ASan reports a leak if not).
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

TEST_F(BindHostTest, theScratchOfAModuleNeedsAModule) {
  uint64_t cached = 0;
  expectError(femrt_module_scratch(nullptr, 0, &cached, nullptr),
              FEMRT_ERROR_INVALID_ARGUMENT, {"femrt_module_scratch: module is NULL"});
}

TEST_F(BindHostTest, aStructSizeBelowTheMinimumIsRefusedNamingTheMinimum) {
  uint32_t tooSmall = uint32_t(FEMRT_KERNEL_LIBRARY_MIN_SIZE) - 1;
  LayerLibrary lib(tooSmall, &bindHost);
  femrt_module *module = nullptr;
  expectError(femrt_module_create_static(context, &lib.library, &module),
              FEMRT_ERROR_ABI_VERSION,
              {"struct_size " + std::to_string(tooSmall),
               "at least " + std::to_string(FEMRT_KERNEL_LIBRARY_MIN_SIZE)});
  EXPECT_EQ(module, nullptr);
}

} // namespace
