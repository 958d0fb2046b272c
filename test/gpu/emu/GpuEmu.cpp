//===- GpuEmu.cpp - run a femc GPU kernel on the CPU, check it ------------===//
//
// femc-gpu-emu: the device-free correctness check of the NVIDIA kernels
// (docs/gpu.md). The kernel's LLVM IR (mlir-translate of the output of
// fem-tiled-to-nvvm) is compiled for the host after renaming the NVVM
// intrinsics it calls, `@llvm.nvvm.X` → `@femc_emu_X` (see emu-compile.sh);
// this program provides those functions and runs every block of the grid
// with one user-level thread (ucontext) per GPU thread:
//
//   read.ptx.sreg.{tid,ntid,ctaid,nctaid}.{x,y,z}  the thread's coordinates
//   barrier.cta.sync.aligned.all                    a block-wide barrier
//   shfl.sync.bfly.f32                              a butterfly exchange
//                                                   among the 32 lanes of a
//                                                   warp (full mask only)
//   mma.m16n8k16.row.col.{bf16,f32.f32}             the warp's tensor-core
//                                                   product (through
//                                                   Inputs/emu-mma.ll)
//   llvm.exp2.f32 (ex2.approx.f32 on the GPU)       2^x off by 1 or 2 ulp
//                                                   (emu-run.sh renames it)
//
// A thread runs until it reaches a barrier or a shuffle; a group (block or
// warp) moves on when all its threads have arrived. Threads of one block
// waiting at different kinds of synchronisation is a deadlock on a GPU and
// an error here, as is a shuffle with a partial mask. Blocks run one after
// the other, so the kernel's shared memory (module globals) is the block's.
//
// The launch geometry comes from the kernel's attributes in the MLIR file
// (fem.gpu.grid, fem.gpu.block), as a driver reads them. Inputs are the
// reference's random inputs (rounded to f16/bf16 for those kernels; the
// reference then reads the rounded values); `out` is filled with NaN and
// guarded by NaN canaries, so unwritten elements and writes past the end
// fail. The output is compared with the double reference:
// max|err| <= tol * max|out|.
//
// Usage: femc-gpu-emu KERNEL.so MODULE.mlir [--B n --T n --S n --H n
//        --Hkv n --causal 0|1 --mask 0|1 --layout bthd|bhtd --seed n
//        --tol x --scale x --order forward|reverse --v-scale x]
//
// --needle k sets every value to 0 but those of key k, which become
// --v-scale's x: one outlying value among equal ones, whose output is far
// below the values (docs/semantics.md, "Known limit (outputs far below the
// values' resolution)": the centred tilt keeps it within the tolerance).
// --v-scale multiplies the random values (standard normal) by x, so that
// beta*v reaches the clip and the tilted values e^(beta*v - M) reach
// e^(-2 cap).
//
//===----------------------------------------------------------------------===//
#include "reference/Reference.h"
#include "support/Random.h"

#include <dlfcn.h>
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "femc-gpu-emu: error: %s\n", message.c_str());
  std::exit(2);
}

// --- the emulated block ------------------------------------------------------

enum class State { Runnable, AtBarrier, AtShuffle, Done };

struct Block {
  int threads = 0;
  int ctaid[3] = {0, 0, 0};
  int nctaid[3] = {1, 1, 1};
  int current = 0;
  std::vector<ucontext_t> ctx;
  std::vector<std::vector<char>> stacks;
  std::vector<State> state;
  ucontext_t scheduler;
  int atBarrier = 0;
  std::vector<int> atShuffle; // per warp
  std::vector<float> slots;   // per thread
  void (*entry)() = nullptr;
};

Block *block = nullptr;
/// Run the threads of a block from the last to the first between
/// synchronisation points (--order reverse): a missing barrier shows up as
/// a read before the write in one order or an overwrite before the read in
/// the other.
bool reverseOrder = false;

/// Parks the current thread in `wait` until its group has arrived.
void arrive(State wait) {
  Block &bk = *block;
  int t = bk.current;
  bk.state[t] = wait;
  if (wait == State::AtBarrier) {
    if (++bk.atBarrier == bk.threads) {
      bk.atBarrier = 0;
      for (State &s : bk.state)
        if (s == State::AtBarrier)
          s = State::Runnable;
    }
  } else {
    int warp = t / 32;
    int lanes = std::min(32, bk.threads - warp * 32);
    if (++bk.atShuffle[warp] == lanes) {
      bk.atShuffle[warp] = 0;
      for (int l = 0; l < lanes; ++l)
        if (bk.state[warp * 32 + l] == State::AtShuffle)
          bk.state[warp * 32 + l] = State::Runnable;
    }
  }
  swapcontext(&bk.ctx[t], &bk.scheduler);
}

void threadMain() {
  block->entry();
  block->state[block->current] = State::Done;
  // uc_link returns to the scheduler.
}

void runBlock(int threads, void (*entry)()) {
  Block &bk = *block;
  bk.threads = threads;
  bk.entry = entry;
  bk.ctx.assign(threads, ucontext_t{});
  bk.stacks.resize(threads);
  bk.state.assign(threads, State::Runnable);
  bk.atBarrier = 0;
  bk.atShuffle.assign((threads + 31) / 32, 0);
  bk.slots.assign(threads, 0.0f);
  for (int t = 0; t < threads; ++t) {
    bk.stacks[t].resize(1 << 20);
    getcontext(&bk.ctx[t]);
    bk.ctx[t].uc_stack.ss_sp = bk.stacks[t].data();
    bk.ctx[t].uc_stack.ss_size = bk.stacks[t].size();
    bk.ctx[t].uc_link = &bk.scheduler;
    makecontext(&bk.ctx[t], threadMain, 0);
  }
  int done = 0;
  while (done < threads) {
    bool ran = false;
    for (int i = 0; i < threads; ++i) {
      int t = reverseOrder ? threads - 1 - i : i;
      if (bk.state[t] != State::Runnable)
        continue;
      bk.current = t;
      swapcontext(&bk.scheduler, &bk.ctx[t]);
      ran = true;
      if (bk.state[t] == State::Done)
        ++done;
    }
    if (!ran && done < threads) {
      int barrier = 0, shuffle = 0;
      for (State s : bk.state) {
        barrier += s == State::AtBarrier;
        shuffle += s == State::AtShuffle;
      }
      fail("deadlock in block (" + std::to_string(bk.ctaid[0]) + ", " +
           std::to_string(bk.ctaid[1]) + ", " + std::to_string(bk.ctaid[2]) +
           "): " + std::to_string(barrier) + " threads at a barrier, " +
           std::to_string(shuffle) + " at a shuffle, " +
           std::to_string(done) + " done");
    }
  }
}

} // namespace

// The NVVM intrinsics of the kernel, renamed (emu-compile.sh).
#define FEMC_EMU_SREG(reg, axis, expr)                                        \
  extern "C" int emu_##reg##_##axis() __asm__(                              \
      "femc_emu_read.ptx.sreg." #reg "." #axis);                            \
  extern "C" int emu_##reg##_##axis() { return expr; }

FEMC_EMU_SREG(tid, x, block->current)
FEMC_EMU_SREG(tid, y, 0)
FEMC_EMU_SREG(tid, z, 0)
FEMC_EMU_SREG(ntid, x, block->threads)
FEMC_EMU_SREG(ntid, y, 1)
FEMC_EMU_SREG(ntid, z, 1)
FEMC_EMU_SREG(ctaid, x, block->ctaid[0])
FEMC_EMU_SREG(ctaid, y, block->ctaid[1])
FEMC_EMU_SREG(ctaid, z, block->ctaid[2])
FEMC_EMU_SREG(nctaid, x, block->nctaid[0])
FEMC_EMU_SREG(nctaid, y, block->nctaid[1])
FEMC_EMU_SREG(nctaid, z, block->nctaid[2])

extern "C" void emu_barrier(int) __asm__(
    "femc_emu_barrier.cta.sync.aligned.all");
extern "C" void emu_barrier(int) { arrive(State::AtBarrier); }
extern "C" void emu_barrier0() __asm__("femc_emu_barrier0");
extern "C" void emu_barrier0() { arrive(State::AtBarrier); }

// NVPTX turns llvm.exp2.f32 into ex2.approx.f32 (the softmax weights, the
// tensor-core kernel's panel), which the PTX ISA bounds at 2 ulp where the
// host's exp2f is correctly rounded. So the emulator errs on purpose: 2^x
// moved 1 or 2 ulp up or down, the step chosen by a hash of x's bits
// (deterministic; the same x, the same error), so that the kernels' results
// are checked with an ex2 no better than the hardware's.
extern "C" float emu_ex2_approx(float x) __asm__("femc_emu_ex2.approx.f32");
extern "C" float emu_ex2_approx(float x) {
  float r = std::exp2(x);
  if (!std::isfinite(r) || r == 0.0f)
    return r;
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  uint32_t h = bits * 2654435761u;
  int steps = 1 + static_cast<int>((h >> 29) & 1);
  float toward = (h >> 31) ? INFINITY : 0.0f;
  for (int i = 0; i < steps; ++i)
    r = std::nextafter(r, toward);
  return r;
}

extern "C" float emu_shfl_bfly(int mask, float v, int offset, int clamp)
    __asm__("femc_emu_shfl.sync.bfly.f32");
extern "C" float emu_shfl_bfly(int mask, float v, int offset, int clamp) {
  if (mask != -1 || clamp != 31)
    fail("shfl.sync.bfly with mask " + std::to_string(mask) + " and clamp " +
         std::to_string(clamp) + "; the emulator models full warps only");
  int t = block->current;
  block->slots[t] = v;
  arrive(State::AtShuffle);
  int partner = (t & ~31) | ((t & 31) ^ (offset & 31));
  float r = partner < block->threads ? block->slots[partner] : v;
  arrive(State::AtShuffle);
  return r;
}

namespace {
float fromF16(uint16_t u);
float fromBf16(uint16_t h);

/// The fragments one lane passes to mma.sync.m16n8k16.
struct MmaSlot {
  uint32_t a[4], b[2];
  float c[4];
};
std::vector<MmaSlot> mmaSlots;

/// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32, from the
/// fragment layouts of the PTX ISA ("Matrix Fragments for mma.m16n8k16 with
/// floating point type"), lane l = 4g + q:
///   A (16 x 16): a0 = A[g][2q, 2q+1], a1 = A[g+8][2q, 2q+1],
///                a2 = A[g][2q+8, 2q+9], a3 = A[g+8][2q+8, 2q+9]
///   B (16 x 8):  b0 = B[2q, 2q+1][g], b1 = B[2q+8, 2q+9][g]
///   C, D (16 x 8, f32): c0, c1 = C[g][2q, 2q+1], c2, c3 = C[g+8][2q, 2q+1]
/// (the lower half of a register holds the lower column or row index).
void emuMma(bool bf16, const uint32_t a[4], const uint32_t bReg[2],
            const float c[4], float *d) {
  Block &bk = *block;
  int t = bk.current;
  if (mmaSlots.size() < static_cast<size_t>(bk.threads))
    mmaSlots.resize(bk.threads);
  MmaSlot &mine = mmaSlots[t];
  std::memcpy(mine.a, a, sizeof(mine.a));
  std::memcpy(mine.b, bReg, sizeof(mine.b));
  std::memcpy(mine.c, c, sizeof(mine.c));
  arrive(State::AtShuffle);
  auto half = [&](uint32_t reg, int hi) {
    uint16_t h = static_cast<uint16_t>(hi ? reg >> 16 : reg & 0xffff);
    return static_cast<double>(bf16 ? fromBf16(h) : fromF16(h));
  };
  double A[16][16], B[16][8], C[16][8];
  int warp = t & ~31;
  for (int l = 0; l < 32; ++l) {
    const MmaSlot &s = mmaSlots[warp + l];
    int g = l / 4, q = l % 4;
    for (int h = 0; h < 2; ++h) {
      A[g][2 * q + h] = half(s.a[0], h);
      A[g + 8][2 * q + h] = half(s.a[1], h);
      A[g][2 * q + 8 + h] = half(s.a[2], h);
      A[g + 8][2 * q + 8 + h] = half(s.a[3], h);
      B[2 * q + h][g] = half(s.b[0], h);
      B[2 * q + 8 + h][g] = half(s.b[1], h);
      C[g][2 * q + h] = s.c[h];
      C[g + 8][2 * q + h] = s.c[2 + h];
    }
  }
  int g = (t & 31) / 4, q = (t & 31) % 4;
  int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * q, 2 * q + 1, 2 * q,
                                                 2 * q + 1};
  float out[4];
  for (int i = 0; i < 4; ++i) {
    double sum = C[rows[i]][cols[i]];
    for (int k = 0; k < 16; ++k)
      sum += A[rows[i]][k] * B[k][cols[i]];
    out[i] = static_cast<float>(sum);
  }
  arrive(State::AtShuffle); // every lane has read the slots
  std::memcpy(d, out, sizeof(out));
}

} // namespace

extern "C" void femc_emu_mma_f16(uint32_t a0, uint32_t a1, uint32_t a2,
                                 uint32_t a3, uint32_t b0, uint32_t b1,
                                 float c0, float c1, float c2, float c3,
                                 float *d) {
  uint32_t a[4] = {a0, a1, a2, a3}, bReg[2] = {b0, b1};
  float c[4] = {c0, c1, c2, c3};
  emuMma(false, a, bReg, c, d);
}
extern "C" void femc_emu_mma_bf16(uint32_t a0, uint32_t a1, uint32_t a2,
                                  uint32_t a3, uint32_t b0, uint32_t b1,
                                  float c0, float c1, float c2, float c3,
                                  float *d) {
  uint32_t a[4] = {a0, a1, a2, a3}, bReg[2] = {b0, b1};
  float c[4] = {c0, c1, c2, c3};
  emuMma(true, a, bReg, c, d);
}

namespace {

// --- half-precision storage ----------------------------------------------------

uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000)
    return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}
float fromBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t toF16(float f) {
  _Float16 h = static_cast<_Float16>(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}
float fromF16(uint16_t u) {
  _Float16 h;
  std::memcpy(&h, &u, 2);
  return static_cast<float>(h);
}

/// One kernel argument in device storage.
struct Tensor {
  std::string dtype; // f32, f16, bf16 or i8
  std::vector<unsigned char> bytes;
  size_t count = 0;
  size_t size() const {
    return dtype == "f32" ? 4 : dtype == "i8" ? 1 : 2;
  }
  void set(const std::vector<float> &v) {
    count = v.size();
    bytes.assign((count + 64) * size(), 0);
    for (size_t i = 0; i < count; ++i)
      store(i, v[i]);
  }
  void store(size_t i, float f) {
    unsigned char *p = bytes.data() + i * size();
    if (dtype == "f32") {
      std::memcpy(p, &f, 4);
    } else {
      uint16_t h = dtype == "f16" ? toF16(f) : toBf16(f);
      std::memcpy(p, &h, 2);
    }
  }
  float load(size_t i) const {
    const unsigned char *p = bytes.data() + i * size();
    if (dtype == "f32") {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, p, 2);
    return dtype == "f16" ? fromF16(h) : fromBf16(h);
  }
};

/// The kernel's attributes in the MLIR file.
struct KernelAttrs {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> argTypes; // element types of the pointers
  std::string dtype;
  int threads = 0;
  int64_t rowsPerBlock = 0;
  std::string gridX, gridY, gridZ;
};

KernelAttrs readAttrs(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    fail("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  KernelAttrs a;
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"(llvm\.func @(\w+)\()")))
    fail(path + " has no llvm.func kernel");
  a.name = m[1];
  if (!std::regex_search(text, m,
                         std::regex(R"(fem\.arg_names = \[([^\]]*)\])")))
    fail(path + ": the kernel has no fem.arg_names");
  std::string names = m[1];
  std::regex word("\"(\\w+)\"");
  for (auto it = std::sregex_iterator(names.begin(), names.end(), word);
       it != std::sregex_iterator(); ++it)
    a.args.push_back((*it)[1]);
  if (!std::regex_search(text, m,
                         std::regex(R"(fem\.gpu\.block = \[(\d+), 1, 1\])")))
    fail(path + ": the kernel has no fem.gpu.block = [n, 1, 1]");
  a.threads = std::stoi(m[1]);
  if (!std::regex_search(
          text, m,
          std::regex(
              R"re(fem\.gpu\.grid = \[\["(\w+)", (\d+)\], \["(\w+)", 1\], \["(\w+)", 1\]\])re")))
    fail(path + ": the kernel has no fem.gpu.grid of the expected form");
  a.gridX = m[1];
  a.rowsPerBlock = std::stoll(m[2]);
  a.gridY = m[3];
  a.gridZ = m[4];
  if (!std::regex_search(text, m,
                         std::regex(R"re(fem\.gpu\.dtype = "(\w+)")re")))
    fail(path + ": the kernel has no fem.gpu.dtype");
  a.dtype = m[1];
  return a;
}

int64_t extentOf(const std::string &name, const femc::ref::Problem &p) {
  if (name == "T")
    return p.T;
  if (name == "H")
    return p.H;
  if (name == "B")
    return p.B;
  if (name == "Hkv")
    return p.Hkv;
  fail("unknown grid extent '" + name + "'");
}

using Kernel7 = void (*)(void *, void *, void *, void *, void *, void *,
                         void *, int64_t, int64_t, int64_t, int64_t, int64_t);
using Kernel8 = void (*)(void *, void *, void *, void *, void *, void *,
                         void *, void *, int64_t, int64_t, int64_t, int64_t,
                         int64_t);
void *kernelFn = nullptr;
std::vector<void *> kernelPtrs;
int64_t kernelExtents[5];

void callKernel() {
  int64_t *e = kernelExtents;
  void **p = kernelPtrs.data();
  if (kernelPtrs.size() == 7)
    reinterpret_cast<Kernel7>(kernelFn)(p[0], p[1], p[2], p[3], p[4], p[5],
                                        p[6], e[0], e[1], e[2], e[3], e[4]);
  else
    reinterpret_cast<Kernel8>(kernelFn)(p[0], p[1], p[2], p[3], p[4], p[5],
                                        p[6], p[7], e[0], e[1], e[2], e[3],
                                        e[4]);
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 3)
    fail("usage: femc-gpu-emu KERNEL.so MODULE.mlir [--B n --T n --S n --H n "
         "--Hkv n --causal 0|1 --mask 0|1 --layout bthd|bhtd --seed n --tol x "
         "--scale x --order forward|reverse --v-scale x --needle k]");
  std::map<std::string, std::string> opt = {
      {"B", "2"},    {"T", "37"},          {"S", "0"},       {"H", "1"},
      {"Hkv", "0"},  {"causal", "1"},      {"mask", "0"},    {"layout", "bthd"},
      {"seed", "1"}, {"tol", "1e-4"},      {"scale", ""},    {"dk", "0"},
      {"dv", "0"},   {"order", "forward"}, {"v-scale", "1"}, {"needle", "-1"}};
  for (int i = 3; i < argc; i += 2) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || i + 1 >= argc ||
        !opt.count(key.substr(2)))
      fail("unknown or incomplete option '" + key + "'");
    opt[key.substr(2)] = argv[i + 1];
  }
  if (opt["order"] != "forward" && opt["order"] != "reverse")
    fail("--order takes forward or reverse, found '" + opt["order"] + "'");
  reverseOrder = opt["order"] == "reverse";
  float vScale = std::stof(opt["v-scale"]);
  long long needle = std::stoll(opt["needle"]);
  KernelAttrs attrs = readAttrs(argv[2]);
  std::string libPath = argv[1];
  if (libPath.find('/') == std::string::npos)
    libPath = "./" + libPath; // a path, not a library search
  void *lib = dlopen(libPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    fail(std::string("dlopen: ") + dlerror());
  kernelFn = dlsym(lib, attrs.name.c_str());
  if (!kernelFn)
    fail("no symbol '" + attrs.name + "' in " + argv[1]);

  femc::ref::Problem p;
  p.prior = femc::ref::Prior::Softmax;
  p.B = std::stoll(opt["B"]);
  p.T = std::stoll(opt["T"]);
  p.S = std::stoll(opt["S"]) ? std::stoll(opt["S"]) : p.T;
  p.H = std::stoll(opt["H"]);
  p.Hkv = std::stoll(opt["Hkv"]) ? std::stoll(opt["Hkv"]) : p.H;
  p.dk = std::stoll(opt["dk"]);
  p.dv = std::stoll(opt["dv"]);
  p.causal = opt["causal"] == "1";
  p.hasMask = opt["mask"] == "1";
  p.layout = opt["layout"] == "bhtd" ? femc::ref::Layout::BHTD
                                     : femc::ref::Layout::BTHD;
  if (!opt["scale"].empty())
    p.scale = std::stod(opt["scale"]);
  if (p.dk <= 0 || p.dv <= 0)
    fail("--dk and --dv are required");
  std::string error;
  if (!femc::ref::validate(p, error))
    fail(error);

  // Inputs: the reference's random inputs, rounded to the kernel's storage.
  femc::Rng rng(std::stoull(opt["seed"]));
  std::map<std::string, std::vector<float>> values;
  std::vector<uint8_t> mask;
  femc::ref::Inputs in;
  std::vector<Tensor> tensors;
  for (const std::string &name : attrs.args) {
    Tensor t;
    t.dtype = name == "mask" ? "i8" : attrs.dtype;
    std::optional<std::vector<int64_t>> shape = femc::ref::tensorShape(p, name);
    if (!shape)
      fail("the reference has no tensor '" + name + "'");
    size_t n = 1;
    for (int64_t d : *shape)
      n *= static_cast<size_t>(d);
    if (name == "mask") {
      mask.resize(n);
      for (size_t i = 0; i < n; ++i)
        mask[i] = rng.uniform01() < 0.25 ? 0 : 1;
      t.count = n;
      t.bytes.assign(n + 64, 0);
      std::memcpy(t.bytes.data(), mask.data(), n);
      in.mask = mask.data();
    } else if (name == "out") {
      t.set(std::vector<float>(n, NAN));
      for (size_t i = n; i < n + 64; ++i)
        t.store(i, NAN);
    } else {
      std::vector<float> v;
      v.resize(n);
      femc::ref::generateInput(name, v, rng);
      if (name == "v" && needle >= 0) { // 0 but key `needle`: vScale
        if (needle >= p.S)
          fail("--needle must be below S = " + std::to_string(p.S));
        std::fill(v.begin(), v.end(), 0.0f);
        for (int64_t b = 0; b < p.B; ++b)
          for (int64_t h = 0; h < p.Hkv; ++h)
            for (int64_t c = 0; c < p.dv; ++c) {
              int64_t at = p.layout == femc::ref::Layout::BHTD
                               ? ((b * p.Hkv + h) * p.S + needle) * p.dv + c
                               : ((b * p.S + needle) * p.Hkv + h) * p.dv + c;
              v[static_cast<size_t>(at)] = vScale;
            }
      } else if (name == "v") { // wide values: the clip, tilts to e^(-2 cap)
        for (float &x : v)
          x *= vScale;
      }
      t.set(v);
      for (size_t i = 0; i < n; ++i)
        v[i] = t.load(i); // the reference reads the rounded values
      values[name] = std::move(v);
      *femc::ref::floatInput(in, name) = values[name].data();
    }
    tensors.push_back(std::move(t));
  }
  for (Tensor &t : tensors)
    kernelPtrs.push_back(t.bytes.data());
  int64_t ext[5] = {p.B, p.T, p.S, p.H, p.Hkv};
  std::memcpy(kernelExtents, ext, sizeof(ext));

  Block bk;
  block = &bk;
  bk.nctaid[0] = static_cast<int>(
      (extentOf(attrs.gridX, p) + attrs.rowsPerBlock - 1) / attrs.rowsPerBlock);
  bk.nctaid[1] = static_cast<int>(extentOf(attrs.gridY, p));
  bk.nctaid[2] = static_cast<int>(extentOf(attrs.gridZ, p));
  for (int z = 0; z < bk.nctaid[2]; ++z)
    for (int y = 0; y < bk.nctaid[1]; ++y)
      for (int x = 0; x < bk.nctaid[0]; ++x) {
        bk.ctaid[0] = x;
        bk.ctaid[1] = y;
        bk.ctaid[2] = z;
        runBlock(attrs.threads, callKernel);
      }

  std::optional<femc::ref::Result> ref = femc::ref::run(p, in, error);
  if (!ref)
    fail(error);
  const Tensor &out = tensors.back();
  for (size_t i = out.count; i < out.count + 64; ++i)
    if (!std::isnan(out.load(i)))
      fail("the kernel wrote past the end of out (element " +
           std::to_string(i) + ")");
  double maxOut = 0, maxErr = 0;
  size_t worst = 0;
  for (size_t i = 0; i < out.count; ++i)
    maxOut = std::max(maxOut, std::fabs(ref->out[i]));
  for (size_t i = 0; i < out.count; ++i) {
    double got = out.load(i), want = ref->out[i];
    double err = std::isnan(want) ? (std::isnan(got) ? 0 : INFINITY)
                                  : std::fabs(got - want);
    if (std::isnan(err))
      err = INFINITY;
    if (err > maxErr) {
      maxErr = err;
      worst = i;
    }
  }
  double tol = std::stod(opt["tol"]);
  std::printf("kernel %s dtype %s grid (%d, %d, %d) block %d: B=%lld T=%lld "
              "S=%lld H=%lld Hkv=%lld dk=%lld dv=%lld causal=%d mask=%d "
              "layout=%s\n",
              attrs.name.c_str(), attrs.dtype.c_str(), bk.nctaid[0],
              bk.nctaid[1], bk.nctaid[2], attrs.threads, (long long)p.B,
              (long long)p.T, (long long)p.S, (long long)p.H,
              (long long)p.Hkv, (long long)p.dk, (long long)p.dv, p.causal,
              p.hasMask, opt["layout"].c_str());
  std::printf("max|err| = %.3g, max|out| = %.3g, ratio = %.3g (tolerance "
              "%g)\n",
              maxErr, maxOut, maxOut > 0 ? maxErr / maxOut : maxErr, tol);
  if (!(maxErr <= tol * std::max(maxOut, 1e-30))) {
    std::printf("FAIL: element %zu: got %.9g, want %.9g\n", worst,
                out.load(worst), ref->out[worst]);
    return 1;
  }
  std::printf("PASS\n");
  return 0;
}
