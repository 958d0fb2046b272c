# lit configuration for femc's IR and tool tests.
import os
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
config.substitutions.append(("%femc_src", config.femc_src_root))
config.substitutions.append(("%shared", config.femc_shared_dir))

# CPU features of this machine, for tests of the launch-time CPU check.
try:
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    if " avx512f" in flags:
        config.available_features.add("avx512f")
except OSError:
    pass
