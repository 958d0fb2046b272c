# lit configuration for femc's IR and tool tests.
import os
import shutil
import subprocess

import lit.formats

config.name = "femc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.femc_obj_root, "test")
# fuzz/: corpora and regression inputs, replayed by ctest, not lit tests.
# matrix.mlir, priors.mlir: models compiled for the gtest shape matrices.
config.excludes = ["Inputs", "CMakeLists.txt", "reference", "runtime", "python",
                   "embed", "fuzz", "matrix.mlir", "priors.mlir"]

# Tools under test first, then FileCheck/not/count from LLVM.
config.environment["PATH"] = os.pathsep.join(
    [config.femc_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", os.environ["PATH"])])
config.environment["FEMC_INCLUDE_DIR"] = os.path.join(config.femc_src_root, "runtime", "include")
# FEMC_HOST_CPU (target/cpu/HostCpu.h) reaches femc, fem-opt and fem-tune, so
# the whole suite can run as for a smaller host (scripts/test.sh --host-cpu).
if os.environ.get("FEMC_HOST_CPU"):
    config.environment["FEMC_HOST_CPU"] = os.environ["FEMC_HOST_CPU"]
config.substitutions.append(("%femc_src", config.femc_src_root))
config.substitutions.append(("%shared", config.femc_shared_dir))
config.substitutions.append(("%femc_version", config.femc_version))

# CPU features of this machine, for tests of the launch-time CPU check (the
# glue asks the CPU itself, so FEMC_HOST_CPU does not mask these).
try:
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    if " avx512f" in flags:
        config.available_features.add("avx512f")
except OSError:
    pass

# The NVIDIA tests (test/gpu, test/gpu-run): nvptx = llc has the NVPTX back
# end; ptxas = CUDA's ptxas (FEMC_PTXAS, PATH or /usr/local/cuda/bin), which
# femc --target=sm_XX needs for the cubin.
llc = shutil.which("llc", path=config.environment["PATH"])
try:
    targets = subprocess.run([llc, "--version"], capture_output=True,
                             text=True).stdout if llc else ""
except OSError:
    targets = ""
if "nvptx64" in targets:
    config.available_features.add("nvptx")
else:
    lit_config.note("llc has no NVPTX back end; the PTX tests are skipped")

ptxas = os.environ.get("FEMC_PTXAS") or shutil.which("ptxas") or \
    "/usr/local/cuda/bin/ptxas"
if os.access(ptxas, os.X_OK):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))
else:
    lit_config.note("ptxas not found (set FEMC_PTXAS, or install "
                    "the CUDA toolkit in /usr/local/cuda): the PTX assembly, "
                    "register and shared-memory checks are skipped")

