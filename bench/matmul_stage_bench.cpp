// One projection of a layer, as fem-layer-matmul's stages run it: the packs of
// A and B (nn: B is (K, N); nt: nn.Linear's W, (N, K)) and the blocked matmul
// C(M,N) += A(M,K)·B, each stage's workgroups on `threads` threads (as
// libfemrt's pool runs them), timed apart. The stages are the public
// workgroup functions of any femc layer library that has them
// (`_mlir_ciface_<layer>_mm_pack_{a,nn,nt}_wg`, `_mlir_ciface_<layer>_mm_wg`);
// their grids come from passes/layer/LayerMatmulBlocking.h for the
// library's vector width. docs/benchmarks.md ("Matmul stages") and
// bench/matmul_bench.py, which builds this tool and adds numpy's and
// PyTorch's SGEMM of the same shapes.
//
//   clang++ -O2 -std=c++17 -I. bench/matmul_stage_bench.cpp -o mmbench -ldl
//   -pthread mmbench LIB LAYER LANES [--threads N] [--reps R] M,N,K[,nn|nt] ...
//
// LANES bf16x3 or bf16x6 times the AMX stages of a library compiled with
// that --matmul-precision (`<layer>_mmx_pack_a_wg` and
// `<layer>_mmx_pack_{nn,nt}_wg`, timed together as the pack, and
// `<layer>_mmx_wg`; grids from AmxBlocking).
//
// --cpu times the process's CPU time instead of wall time (with --threads
// 1: the stages' own time, robust to other jobs on the machine).
// --rows R and --vectors V override the header's register block, and
// --group-rows G runs ⌈M / G⌉ matmul workgroups (the grid of the library
// before tiles and K blocking: 6 x 2, G = 48 rows of every column).
// Prints one line per shape: median and minimum ms of the pack and of the
// matmul, the matmul's GFLOP/s (2·M·N·K / median) and that of pack + matmul,
// and the largest error of 256 sampled entries of C against a double
// product (relative to the largest |C| of the sample).
#include "passes/layer/LayerMatmulBlocking.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <ctime>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace {

template <int R> using Memref = femc::layer::StageMemref<R>;
using femc::layer::stageMemref;

/// Runs body(i) for i in [0, n) on the caller and threads - 1 workers, one
/// index at a time from a shared counter (libfemrt's pool does the same).
class Pool {
public:
  explicit Pool(int threads) {
    for (int t = 1; t < threads; ++t)
      workers.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> g(mu);
      stop = true;
      ++epoch;
    }
    cv.notify_all();
    for (std::thread &t : workers)
      t.join();
  }
  void run(int64_t n, std::function<void(int64_t)> f) {
    {
      std::lock_guard<std::mutex> g(mu);
      body = std::move(f);
      count = n;
      next = 0;
      busy = static_cast<int>(workers.size());
      ++epoch;
    }
    cv.notify_all();
    drain();
    std::unique_lock<std::mutex> l(mu);
    done.wait(l, [this] { return busy == 0; });
  }

private:
  void drain() {
    for (int64_t i; (i = next.fetch_add(1)) < count;)
      body(i);
  }
  void work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return epoch != seen; });
        seen = epoch;
        if (stop)
          return;
      }
      drain();
      std::lock_guard<std::mutex> g(mu);
      if (--busy == 0)
        done.notify_one();
    }
  }
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv, done;
  std::function<void(int64_t)> body;
  int64_t count = 0;
  std::atomic<int64_t> next{0};
  int busy = 0;
  uint64_t epoch = 0;
  bool stop = false;
};

using PackFn = void (*)(void *, void *, int64_t);
using bf16 = uint16_t;
using MatmulFn = void (*)(void *, void *, void *, int64_t);

/// Milliseconds of wall time, or with --cpu of this process's CPU time (on
/// a machine shared with other jobs, the time the kernels ran rather than
/// waited; the pool's workers sleep while idle, so it is the stages' work
/// summed over the threads).
bool cpuTime = false;
double nowMs() {
  if (cpuTime) {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int usage(const char *why) {
  std::fprintf(stderr,
               "matmul_stage_bench: %s\nusage: matmul_stage_bench LIB LAYER "
               "LANES [--threads N] [--reps R] [--cpu] [--rows R] [--vectors V]\n"
               "         [--group-rows G] M,N,K[,nn|nt] ...\n",
               why);
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 5)
    return usage("expected a library, a layer name, the lanes and a shape");
  const char *lib = argv[1];
  std::string layer = argv[2];
  std::string lanesArg = argv[3];
  // 0 pieces: the f32 stages; 2 or 3: the AMX ones.
  int64_t pieces = lanesArg == "bf16x3" ? 2 : lanesArg == "bf16x6" ? 3 : 0;
  int64_t lanes = pieces ? 16 : std::atoll(argv[3]);
  if (lanes != 4 && lanes != 8 && lanes != 16)
    return usage("LANES must be 4, 8, 16, bf16x3 or bf16x6");
  femc::layer::AmxBlocking amx{pieces};
#if defined(__linux__)
  // The glue asks Linux for AMX tile data before a launch; called directly,
  // the stages need the same (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
  if (pieces && syscall(SYS_arch_prctl, 0x1023, 18) != 0) {
    std::fprintf(stderr, "matmul_stage_bench: no AMX tile data for this "
                         "process (arch_prctl)\n");
    return 1;
  }
#endif
  int threads = 2, reps = 7;
  int64_t fixedGroupRows = 0;
  femc::layer::MatmulBlocking blk = femc::layer::matmulBlocking(lanes);
  std::vector<std::string> shapes;
  for (int a = 4; a < argc; ++a) {
    std::string s = argv[a];
    if ((s == "--threads" || s == "--reps") && a + 1 < argc)
      (s == "--threads" ? threads : reps) = std::atoi(argv[++a]);
    else if (s == "--cpu")
      cpuTime = true;
    else if (s == "--group-rows" && a + 1 < argc)
      fixedGroupRows = std::atoll(argv[++a]);
    else if ((s == "--rows" || s == "--vectors") && a + 1 < argc)
      (s == "--rows" ? blk.rows : blk.vectors) = std::atoll(argv[++a]);
    else
      shapes.push_back(s);
  }
  if (threads < 1 || reps < 1 || blk.rows < 1 || blk.vectors < 1 ||
      shapes.empty())
    return usage("--threads, --reps, --rows and --vectors must be at least "
                 "1, and a shape given");
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::fprintf(stderr, "matmul_stage_bench: %s\n", dlerror());
    return 1;
  }
  auto sym = [&](const std::string &stage) {
    std::string name = "_mlir_ciface_" + layer + "_" + stage + "_wg";
    void *f = dlsym(h, name.c_str());
    if (!f)
      std::fprintf(stderr, "matmul_stage_bench: %s has no %s\n", lib,
                   name.c_str());
    return f;
  };
  auto mm = reinterpret_cast<MatmulFn>(sym(pieces ? "mmx" : "mm"));
  if (!mm)
    return 1;
  Pool pool(threads);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::printf("%-22s %16s %16s %8s %8s %9s\n", "M,N,K,form",
              "pack ms med/min", "mm ms med/min", "mm GF/s", "all GF/s",
              "rel.err");
  for (const std::string &shape : shapes) {
    int64_t M = 0, N = 0, K = 0;
    char form[8] = "nt";
    if (std::sscanf(shape.c_str(), "%ld,%ld,%ld,%7s", &M, &N, &K, form) < 3 ||
        M < 1 || N < 1 || K < 1 ||
        (std::strcmp(form, "nt") && std::strcmp(form, "nn")))
      return usage(("bad shape '" + shape + "'").c_str());
    bool nt = !std::strcmp(form, "nt");
    auto pack = reinterpret_cast<PackFn>(
        sym(std::string(pieces ? "mmx" : "mm") + (nt ? "_pack_nt" : "_pack_nn")));
    auto packA =
        reinterpret_cast<PackFn>(sym(pieces ? "mmx_pack_a" : "mm_pack_a"));
    if (!pack || !packA)
      return 1;
    std::vector<float> A(M * K), B(N * K), C(M * N);
    for (float &v : A)
      v = dist(rng);
    for (float &v : B)
      v = dist(rng);
    int64_t panels = blk.packGroups(N);
    // 64-byte aligned, as the layer allocates it.
    size_t pBytes = sizeof(float) * panels * K * blk.panel();
    float *P = static_cast<float *>(std::aligned_alloc(64, (pBytes + 63) / 64 * 64));
    Memref<2> a = stageMemref<2>(A.data(), {M, K});
    Memref<2> b = nt ? stageMemref<2>(B.data(), {N, K})
                     : stageMemref<2>(B.data(), {K, N});
    Memref<3> p = stageMemref<3>(P, {panels, K, blk.panel()});
    Memref<2> c = stageMemref<2>(C.data(), {M, N});
    // The f32 stages' packed A (register blocks of rows, K, rows).
    int64_t blocks = pieces ? 0 : blk.packAGroups(M);
    float *Af = static_cast<float *>(std::aligned_alloc(
        64, (sizeof(float) * blocks * K * blk.rows + 127) / 64 * 64));
    Memref<3> af = stageMemref<3>(Af, {blocks, K, blk.rows});
    // The AMX stages' packed operands (bf16 pieces, rows of 32).
    int64_t rowsA = pieces ? amx.packedRowsA(M, K) : 0;
    int64_t rowsB = pieces ? amx.packedRowsB(N, K) : 0;
    bf16 *Ap = static_cast<bf16 *>(std::aligned_alloc(64, rowsA * 64 + 64));
    bf16 *Bp = static_cast<bf16 *>(std::aligned_alloc(64, rowsB * 64 + 64));
    auto ap = femc::layer::stageMemref<2, bf16>(Ap, {rowsA, 32});
    auto bp = femc::layer::stageMemref<2, bf16>(Bp, {rowsB, 32});
    std::vector<double> packMs, mmMs;
    for (int r = 0; r < reps + 1; ++r) {
      std::fill(C.begin(), C.end(), 0.0f);
      double t0 = nowMs();
      if (pieces) {
        pool.run(amx.rowTiles(M), [&](int64_t i) { packA(&a, &ap, i); });
        pool.run(amx.colTiles(N), [&](int64_t i) { pack(&b, &bp, i); });
      } else {
        pool.run(blocks, [&](int64_t i) { packA(&a, &af, i); });
        pool.run(panels, [&](int64_t i) { pack(&b, &p, i); });
      }
      double tp = nowMs() - t0;
      t0 = nowMs();
      int64_t groups = fixedGroupRows
                           ? (M + fixedGroupRows - 1) / fixedGroupRows
                           : blk.matmulGroups(M, N);
      if (pieces)
        pool.run(amx.matmulGroups(M, N),
                 [&](int64_t i) { mm(&ap, &bp, &c, i); });
      else
        pool.run(groups, [&](int64_t i) { mm(&af, &p, &c, i); });
      double tm = nowMs() - t0;
      if (r) { // the first run warms the caches and the pages
        packMs.push_back(tp);
        mmMs.push_back(tm);
      }
    }
    double err = 0, scale = 0;
    std::uniform_int_distribution<int64_t> ri(0, M - 1), ci(0, N - 1);
    for (int s = 0; s < 256; ++s) {
      int64_t i = ri(rng), j = ci(rng);
      double ref = 0;
      for (int64_t k = 0; k < K; ++k)
        ref += double(A[i * K + k]) * (nt ? B[j * K + k] : B[k * N + j]);
      err = std::max(err, std::fabs(ref - C[i * N + j]));
      scale = std::max(scale, std::fabs(ref));
    }
    std::free(P);
    std::free(Af);
    std::free(Ap);
    std::free(Bp);
    auto med = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    auto mn = [](const std::vector<double> &v) {
      return *std::min_element(v.begin(), v.end());
    };
    double flop = 2.0 * M * N * K;
    std::printf("%-22s %7.3f/%-8.3f %7.3f/%-8.3f %8.1f %8.1f %9.2e\n",
                shape.c_str(), med(packMs), mn(packMs), med(mmMs), mn(mmMs),
                flop / med(mmMs) * 1e-6,
                flop / (med(mmMs) + med(packMs)) * 1e-6,
                scale > 0 ? err / scale : err);
  }
  return 0;
}
