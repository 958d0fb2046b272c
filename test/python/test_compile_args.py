"""femc.compile's arguments (docs/python.md "Compiling from Python"): a
malformed tile, matmul precision or manifest "threads" is refused with a
CompileError naming it, what was expected and what was found, before femc
runs; a layer compiled with matmul_precision="f32" runs and matches the
float64 layer reference.
"""

import json
import os
import sys

import numpy as np
import pytest

import femc
from femc import layer_reference
from femc.compiler import tuned_threads

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from layer_cases import make_inputs, make_params  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOFTMAX = os.path.join(ROOT, "examples", "softmax_fem.mlir")


@pytest.mark.parametrize("value, found", [
    (64.9, r"found 64\.9 \(float\)"),
    ("abc", r"found 'abc' \(str\)"),
    (True, r"found True \(bool\)"),
    (0, r"found 0$"),
    (-64, r"found -64$"),
])
def test_bad_tile_is_refused(value, found, femc_bin, tmp_path):
    with pytest.raises(femc.CompileError,
                       match=r"^tiles\['q'\]: expected a positive integer, "
                             + found):
        femc.compile(SOFTMAX, tmp_path, tiles={"q": value}, femc=femc_bin)
    assert not os.listdir(tmp_path)  # refused before femc ran


def test_numpy_integer_tile_is_accepted(femc_bin, tmp_path):
    mod = femc.compile(SOFTMAX, tmp_path, target="x86-64-v3",
                       tiles={"q": np.int64(64), "k": 64, "vec": 8},
                       femc=femc_bin)
    assert mod.kernel("softmax_fem").tiles == {"q": 64, "k": 64, "vec": 8}


@pytest.mark.parametrize("value", ["bf16", "F32", "", 32])
def test_bad_matmul_precision_is_refused(value, femc_bin, tmp_path):
    with pytest.raises(femc.CompileError,
                       match=r"^matmul_precision: expected one of 'f32', "
                             r"'bf16x3', 'bf16x6', 'auto', found "
                             + repr(value)):
        femc.compile(SOFTMAX, tmp_path, matmul_precision=value, femc=femc_bin)


def test_matmul_precision_reaches_femc(femc_bin, tmp_path):
    # femc's own refusal (no AMX-BF16 on x86-64-v4) proves the flag is
    # passed on, on any host.
    with pytest.raises(femc.CompileError,
                       match=r"--matmul-precision=bf16x6 needs AMX-BF16"):
        femc.compile(SOFTMAX, tmp_path, target="x86-64-v4",
                     matmul_precision="bf16x6", femc=femc_bin)


def test_layer_compiled_with_f32_runs(femc_bin, tmp_path):
    config = dict(n_embd=32, n_head=2, conv_hidden=16, prior_type="softmax")
    params = make_params(config, seed=3)
    layer = femc.import_layer(params, str(tmp_path / "imp"), config=config,
                              name="L_f32")
    mod = femc.compile(layer.mlir, tmp_path / "lib", matmul_precision="f32",
                       femc=femc_bin)
    x, _ = make_inputs(config, 2, 37, seed=5)
    y = mod.kernel("L_f32").run(**dict(layer.weights(), x=x))
    ref = layer_reference.forward(params, config, x, None)
    err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
    assert err <= 1e-4, f"relative error {err:.3g}"


@pytest.mark.parametrize("value, found", [
    (True, r"found True \(bool\)"),
    (2.5, r"found 2\.5 \(float\)"),
    ("4", r"found '4' \(str\)"),
    (0, r"found 0$"),
])
def test_bad_manifest_threads_is_refused(value, found, tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(
        {"kernels": [{"name": "a", "threads": 2},
                     {"name": "b", "threads": value}]}))
    with pytest.raises(femc.CompileError,
                       match=r"^manifest .*m\.json: kernel b's \"threads\": "
                             r"expected a positive integer, " + found):
        tuned_threads(str(manifest))


def test_manifest_threads(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(
        {"kernels": [{"name": "a", "threads": 2}, {"name": "b"},
                     {"name": "c", "threads": 3}]}))
    assert tuned_threads(str(manifest)) == 3
    manifest.write_text(json.dumps({"kernels": [{"name": "a"}]}))
    assert tuned_threads(str(manifest)) is None
