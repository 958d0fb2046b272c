//===- TargetTest.cpp - the target registry and the CPU targets -----------===//
//
// Part of the femc project.
//
// driver/Target.h: lookupTarget finds host, x86-64-v3 and x86-64-v4 and
// nothing else; the CPU targets carry today's descriptions, fem-tile
// strings, vector widths and launch checks; the tile hook is the prior
// table's rule; the kernel object comes out of the target's machine.
// HostCpu: FEMC_HOST_CPU masks this machine's features to a named CPU's,
// never adds one, and a host below x86-64-v3 or a bad name is refused.
//
//===----------------------------------------------------------------------===//
#include "driver/Target.h"
#include "target/cpu/CpuTarget.h"
#include "target/cpu/HostCpu.h"

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Target/TargetMachine.h"

#include <gtest/gtest.h>

using femc::driver::lookupTarget;
using femc::driver::Target;

namespace {

/// Whether the LLVM feature string `features` ("+avx2,+fma,...") turns
/// `feature` on.
bool hasFeature(llvm::StringRef features, llvm::StringRef feature) {
  llvm::SmallVector<llvm::StringRef> list;
  features.split(list, ',', -1, /*KeepEmpty=*/false);
  return llvm::is_contained(list, ("+" + feature).str());
}

TEST(Target, RegistryListsTheCpuTargets) {
  EXPECT_EQ(femc::driver::targetNames(),
            (std::vector<std::string>{"host", "x86-64-v3", "x86-64-v4",
                                      "sm_80", "sm_90", "cuda"}));
  for (const std::string &name : femc::driver::targetNames()) {
    // A host below x86-64-v3 is listed but refused (HostTargetFollows...).
    if (name == "host" && !femc::target::cpu::hostCpu().unsupported().empty())
      continue;
    const Target *t = lookupTarget(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->name(), name);
  }
  EXPECT_EQ(lookupTarget("sm_75"), nullptr);
  EXPECT_EQ(lookupTarget("x86-64-v2"), nullptr);
  EXPECT_EQ(lookupTarget(""), nullptr);
}

TEST(Target, UnsupportedMessageNamesTheSupportedTargets) {
  EXPECT_EQ(femc::driver::unsupportedTargetMessage("sm_75"),
            "unsupported target 'sm_75'; supported: host, x86-64-v3, "
            "x86-64-v4, sm_80, sm_90, cuda (the NVIDIA targets are sm_80 "
            "and sm_90)");
  EXPECT_EQ(femc::driver::unsupportedTargetMessage("aarch64"),
            "unsupported target 'aarch64'; supported: host, x86-64-v3, "
            "x86-64-v4, sm_80, sm_90, cuda");
}

TEST(Target, FixedCpuTargets) {
  const Target *v3 = lookupTarget("x86-64-v3");
  ASSERT_NE(v3, nullptr);
  EXPECT_EQ(v3->description(), "x86-64-v3 (AVX2, FMA)");
  EXPECT_EQ(v3->cpu(), "x86-64-v3");
  // The level's features are stamped like any named CPU's (the lowering
  // reads them from fem.target_features).
  EXPECT_TRUE(hasFeature(v3->features(), "avx2")) << v3->features();
  EXPECT_TRUE(hasFeature(v3->features(), "fma")) << v3->features();
  EXPECT_FALSE(hasFeature(v3->features(), "avx512f")) << v3->features();
  EXPECT_EQ(v3->tileTarget(), "avx2");
  EXPECT_EQ(v3->defaultVectorWidth(), 8);
  EXPECT_EQ(v3->requiredFeatures(),
            (std::vector<std::string>{"avx2", "fma"}));

  const Target *v4 = lookupTarget("x86-64-v4");
  ASSERT_NE(v4, nullptr);
  EXPECT_EQ(v4->description(), "x86-64-v4 (AVX-512)");
  EXPECT_EQ(v4->cpu(), "x86-64-v4");
  EXPECT_EQ(v4->tileTarget(), "avx512");
  EXPECT_EQ(v4->defaultVectorWidth(), 16);
  for (const char *f : {"avx512f", "avx512vl", "avx512bw", "avx2", "fma"})
    EXPECT_TRUE(hasFeature(v4->features(), f)) << f << ": " << v4->features();
  for (const char *f : {"avx512bf16", "amx-tile", "amx-bf16"})
    EXPECT_FALSE(hasFeature(v4->features(), f)) << f << ": " << v4->features();
  EXPECT_EQ(v4->requiredFeatures(),
            (std::vector<std::string>{"avx512f", "avx2", "fma"}));
}

// Named CPUs stamp the features LLVM says they have, with the x86-64
// baseline (cmov, which LLVM's znver3 list leaves out) and what they imply.
TEST(Target, NamedCpusStampTheirFeatures) {
  std::string error;
  const Target *zen3 = femc::target::cpu::lookupCpuTarget("znver3", error);
  ASSERT_NE(zen3, nullptr) << error;
  for (const char *f : {"avx2", "fma", "cmov", "sse2"})
    EXPECT_TRUE(hasFeature(zen3->features(), f)) << f << ": " << zen3->features();
  for (const char *f : {"avx512f", "avx512bf16", "amx-tile", "amx-bf16"})
    EXPECT_FALSE(hasFeature(zen3->features(), f)) << f << ": " << zen3->features();
  const Target *spr =
      femc::target::cpu::lookupCpuTarget("sapphirerapids", error);
  ASSERT_NE(spr, nullptr) << error;
  for (const char *f : {"avx512f", "avx512bf16", "amx-tile", "amx-bf16"})
    EXPECT_TRUE(hasFeature(spr->features(), f)) << f << ": " << spr->features();
  // The same list FEMC_HOST_CPU masks the host to; none for a bad name.
  EXPECT_TRUE(femc::target::cpu::namedCpuFeatures("znver3").lookup("cmov"));
  EXPECT_TRUE(femc::target::cpu::namedCpuFeatures("zen3").empty());
}

TEST(Target, HostIsThisCpu) {
  if (std::string why = femc::target::cpu::hostCpu().unsupported(); !why.empty())
    GTEST_SKIP() << why;
  const Target *host = lookupTarget("host");
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->description(), "host:" + host->cpu());
  EXPECT_EQ(host->tileTarget(), "host");
  int64_t vec = host->defaultVectorWidth();
  EXPECT_TRUE(vec == 4 || vec == 8 || vec == 16) << vec;
  for (const std::string &f : host->requiredFeatures())
    EXPECT_TRUE(f == "avx512f" || f == "avx2" || f == "fma" ||
                f == "avx512bf16" || f == "amx-tile" || f == "amx-bf16")
        << f;
  // The widest vectors need their feature at launch.
  auto needs = [&](const char *f) {
    auto r = host->requiredFeatures();
    return std::find(r.begin(), r.end(), f) != r.end();
  };
  if (vec == 16)
    EXPECT_TRUE(needs("avx512f"));
}

TEST(Target, TileHookIsThePriorTable) {
  const femc::priors::PriorInfo *softmax = femc::priors::findPrior("softmax");
  const femc::priors::PriorInfo *linear = femc::priors::findPrior("linear");
  ASSERT_NE(softmax, nullptr);
  ASSERT_NE(linear, nullptr);
  const Target *v3 = lookupTarget("x86-64-v3");
  const Target *v4 = lookupTarget("x86-64-v4");
  ASSERT_TRUE(v3 && v4);
  for (const Target *t : {v3, v4})
    for (const femc::priors::PriorInfo *p : {softmax, linear}) {
      femc::priors::Tiles tiles = t->defaultTiles(*p);
      EXPECT_EQ(tiles.vec, t->defaultVectorWidth());
      EXPECT_EQ(t->checkTiles(*p, tiles), std::nullopt) << t->name().str();
    }
  // q = 24 is a multiple of 2 * 8 for neither: refused as the table says.
  femc::priors::Tiles bad{24, 64, 8};
  auto why = v3->checkTiles(*softmax, bad);
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, *femc::priors::checkTiles(*softmax, bad));
  EXPECT_NE(why->find("tile-q"), std::string::npos) << *why;
}

TEST(Target, EmitsAnObjectWithItsMachine) {
  const Target *v3 = lookupTarget("x86-64-v3");
  ASSERT_NE(v3, nullptr);
  std::string error;
  std::unique_ptr<llvm::TargetMachine> machine =
      v3->createTargetMachine(3, error);
  ASSERT_NE(machine, nullptr) << error;
  EXPECT_EQ(machine->getTargetCPU(), "x86-64-v3");
  EXPECT_EQ(machine->getTargetTriple().str(), v3->triple());

  llvm::LLVMContext context;
  llvm::Module module("empty", context);
  module.setDataLayout(machine->createDataLayout());
  module.setTargetTriple(machine->getTargetTriple());
  llvm::SmallString<128> path;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("femc-target", "o", path));
  ASSERT_TRUE(v3->emitKernelFile(*machine, module, path,
                                 llvm::CodeGenFileType::ObjectFile));
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer));
  EXPECT_TRUE((*buffer)->getBuffer().starts_with("\x7f"
                                                 "ELF"));
  llvm::sys::fs::remove(path);

  // A path that cannot be written is reported, not a crash.
  testing::internal::CaptureStderr();
  EXPECT_FALSE(v3->emitKernelFile(*machine, module,
                                  "/nonexistent-femc-dir/kernel.o",
                                  llvm::CodeGenFileType::ObjectFile));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("femc: error: cannot write '/nonexistent-femc-dir/"
                     "kernel.o'"),
            std::string::npos)
      << err;
}

// FEMC_HOST_CPU (target/cpu/HostCpu.h): the named CPU's features mask this
// machine's; none is ever added.
using femc::target::cpu::resolveHostCpu;

llvm::StringMap<bool> machine(std::initializer_list<const char *> on) {
  llvm::StringMap<bool> features;
  for (const char *f : {"64bit", "sse2", "avx", "avx2", "fma", "avx512f",
                        "avx512bw", "avx512bf16", "amx-tile", "amx-bf16"})
    features[f] = false;
  for (const char *f : on)
    features[f] = true;
  return features;
}

TEST(HostCpu, UnsetIsThisMachine) {
  auto real = machine({"64bit", "sse2", "avx2", "fma", "avx512f"});
  auto host = resolveHostCpu("", "sapphirerapids", real);
  EXPECT_EQ(host.name, "sapphirerapids");
  EXPECT_EQ(host.describe(), "sapphirerapids");
  EXPECT_TRUE(host.has("avx512f"));
  EXPECT_EQ(host.unsupported(), "");
}

TEST(HostCpu, NamedCpuMasksAvx512AndAmx) {
  auto real = machine({"64bit", "sse2", "avx", "avx2", "fma", "avx512f",
                       "avx512bw", "avx512bf16", "amx-tile", "amx-bf16"});
  auto host = resolveHostCpu("znver3", "sapphirerapids", real);
  EXPECT_EQ(host.error, "");
  EXPECT_EQ(host.name, "znver3");
  EXPECT_EQ(host.describe(), "znver3 (FEMC_HOST_CPU, on a sapphirerapids)");
  for (const char *f : {"64bit", "sse2", "avx", "avx2", "fma"})
    EXPECT_TRUE(host.has(f)) << f;
  for (const char *f : {"avx512f", "avx512bw", "avx512bf16", "amx-tile",
                        "amx-bf16"})
    EXPECT_FALSE(host.has(f)) << f;
  EXPECT_EQ(host.unsupported(), "");
}

TEST(HostCpu, NamedCpuNeverAddsFeatures) {
  auto real = machine({"64bit", "sse2", "avx"});
  auto host = resolveHostCpu("sapphirerapids", "sandybridge", real);
  EXPECT_TRUE(host.has("avx"));
  for (const char *f : {"avx2", "fma", "avx512f", "amx-tile"})
    EXPECT_FALSE(host.has(f)) << f;
  EXPECT_EQ(host.unsupported(),
            "this host's CPU, sapphirerapids (FEMC_HOST_CPU, on a "
            "sandybridge), has no avx2 and fma, which femc's CPU code needs "
            "(x86-64-v3 or later); compile for another machine with "
            "--target=x86-64-v3 or --target=<cpu>");
}

TEST(HostCpu, BelowX8664V3IsRefusedByName) {
  auto real = machine({"64bit", "sse2", "avx", "avx2", "fma", "avx512f"});
  auto host = resolveHostCpu("x86-64-v2", "emeraldrapids", real);
  EXPECT_FALSE(host.has("avx"));
  EXPECT_NE(host.unsupported().find("x86-64-v2 (FEMC_HOST_CPU, on a "
                                    "emeraldrapids), has no avx2 and fma"),
            std::string::npos)
      << host.unsupported();
}

TEST(HostCpu, UnknownNameIsAnErrorAndMasksNothing) {
  auto real = machine({"64bit", "sse2", "avx2", "fma", "avx512f"});
  auto host = resolveHostCpu("zen3", "emeraldrapids", real);
  EXPECT_EQ(host.unsupported(),
            "FEMC_HOST_CPU='zen3' is not a 64-bit x86 CPU LLVM knows (e.g. "
            "znver3, haswell, x86-64-v3, x86-64-v2); unset it to compile for "
            "this machine's CPU, emeraldrapids");
  EXPECT_TRUE(host.has("avx512f"));
  EXPECT_EQ(host.name, "emeraldrapids");
}

TEST(HostCpu, HostTargetFollowsTheHostCpu) {
  // This process's host (FEMC_HOST_CPU as ctest or the shell set it).
  const auto &cpu = femc::target::cpu::hostCpu();
  const Target *host = lookupTarget("host");
  if (!cpu.unsupported().empty()) {
    EXPECT_EQ(host, nullptr);
    EXPECT_EQ(femc::driver::unsupportedTargetMessage("host"),
              "unsupported target 'host': " + cpu.unsupported());
    return;
  }
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->cpu(), cpu.name);
  EXPECT_EQ(host->defaultVectorWidth(), cpu.has("avx512f") ? 16 : 8);
  auto r = host->requiredFeatures();
  EXPECT_EQ(std::find(r.begin(), r.end(), "avx512f") != r.end(),
            cpu.has("avx512f"));
  EXPECT_EQ(std::find(r.begin(), r.end(), "amx-tile") != r.end(),
            cpu.has("amx-tile"));
}

} // namespace
