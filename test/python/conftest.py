"""Fixtures of the femc Python tests.

ctest (test/python/CMakeLists.txt) runs them as

    PYTHONPATH=build/python FEMC=build/bin/femc FEM_RUN=build/bin/fem-run \\
    FEMC_TEST_KERNELS=build/test/python/kernels/kernels.so \\
    FEMC_SOFTMAX_LIBRARY=build/test/python/softmax_fem/softmax_fem.so \\
    FEMC_SHARED_DIR=test/data  /usr/bin/python3 -m pytest -q test/python

Run by hand, every variable defaults to the build/ folder of the repository
(the kernel libraries are then compiled with femc into a temporary folder).
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")

if not any(os.path.isdir(os.path.join(p, "femc")) for p in sys.path if p):
    sys.path.insert(0, os.path.join(BUILD, "python"))
# The float64 numpy reference of examples/embed_python, and the torch op.
sys.path.insert(0, os.path.join(ROOT, "examples", "embed_python"))
sys.path.insert(0, os.path.join(ROOT, "examples", "torch_op"))


def _tool(env, name):
    path = os.environ.get(env) or os.path.join(BUILD, "bin", name)
    if not os.access(path, os.X_OK):
        pytest.skip(f"{name} not found (set {env})")
    return path


@pytest.fixture(scope="session")
def femc_bin():
    return _tool("FEMC", "femc")


@pytest.fixture(scope="session")
def fem_run_bin():
    return _tool("FEM_RUN", "fem-run")


def _library(env, model, femc_bin, factory):
    path = os.environ.get(env)
    if path:
        assert os.path.isfile(path), f"{env}={path} does not exist"
        return path
    out = factory.mktemp(os.path.splitext(os.path.basename(model))[0])
    subprocess.run([femc_bin, model, "-o", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return str(out / (os.path.splitext(os.path.basename(model))[0] + ".so"))


@pytest.fixture(scope="session")
def compile_model(femc_bin, tmp_path_factory):
    """compile_model(name, text): the .mlir `text` compiled by femc into a
    temporary folder as NAME.so, loaded with femc.load."""
    import femc

    def compile_(name, text):
        out = tmp_path_factory.mktemp(name)
        src = out / f"{name}.mlir"
        src.write_text(text)
        subprocess.run([femc_bin, str(src), "-o", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        return femc.load(str(out / f"{name}.so"))

    return compile_


@pytest.fixture(scope="session")
def kernels_lib(femc_bin, tmp_path_factory):
    """test/python/kernels.mlir: softmax_causal and softmax_full_mask, fully
    dynamic shapes, 16x16 tiles."""
    return _library("FEMC_TEST_KERNELS", os.path.join(HERE, "kernels.mlir"),
                    femc_bin, tmp_path_factory)


@pytest.fixture(scope="session")
def softmax_lib(femc_bin, tmp_path_factory):
    """examples/softmax_fem.mlir: causal, H = 8, dk = dv = 64 static."""
    return _library("FEMC_SOFTMAX_LIBRARY",
                    os.path.join(ROOT, "examples", "softmax_fem.mlir"),
                    femc_bin, tmp_path_factory)


@pytest.fixture(scope="session")
def vectors_dir():
    shared = os.environ.get("FEMC_SHARED_DIR") or \
        os.path.join(ROOT, "test", "data")
    path = os.path.join(shared, "vectors", "softmax_causal")
    if not os.path.isdir(path):
        pytest.skip(f"no reference vectors at {path}")
    return path
