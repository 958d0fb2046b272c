"""Bad inputs, round 5 (docs/bad-inputs.md): checkpoints whose headers or
configurations hold what Python's readers let through silently or turn into
a traceback, and arrays the Python module must refuse without running the
kernel. Each case is a clear femc.LayerImportError / femc.Error /
TypeError naming what is wrong. Numpy only.
"""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import femc
from femc import LayerImportError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from layer_cases import make_params  # noqa: E402

CONFIG = dict(n_embd=32, n_head=2, conv_hidden=16, prior_type="gla")


def _safetensors(path, header, body=b""):
    raw = header.encode() if isinstance(header, str) else \
        json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    return str(path)


def _import(checkpoint, tmp_path, config=CONFIG):
    with pytest.raises(LayerImportError) as info:
        femc.import_layer(checkpoint, str(tmp_path / "out"), config=config)
    assert not (tmp_path / "out").exists()
    return str(info.value)


# --- femc.import: safetensors headers ---------------------------------------

def test_safetensors_duplicate_tensor_name(tmp_path):
    # json.loads kept the last of two "W_v.weight" entries without a word.
    body = np.arange(2, dtype=np.float32).tobytes()
    path = _safetensors(
        tmp_path / "dup.safetensors",
        '{"W_v.weight": {"dtype": "F32", "shape": [1], "data_offsets": '
        '[0, 4]}, "W_v.weight": {"dtype": "F32", "shape": [1], '
        '"data_offsets": [4, 8]}}', body)
    msg = _import(path, tmp_path)
    assert msg == (f"{path}: not a safetensors file: its header is not JSON "
                   "(the member name \"W_v.weight\" is given twice)")


@pytest.mark.parametrize("meta", ["config", ["config"], {"config": 5}])
def test_safetensors_metadata_not_strings(tmp_path, meta):
    # Was: TypeError tracebacks (string / list indices, json.loads(int)).
    path = _safetensors(tmp_path / "m.safetensors", {"__metadata__": meta})
    msg = _import(path, tmp_path)
    assert msg.startswith(f"{path}: the safetensors __metadata__ must be a "
                          "JSON object of strings, found ")


@pytest.mark.parametrize("info", [
    {"dtype": "F32", "shape": "12", "data_offsets": [0, 8]},   # was (1, 2)
    {"dtype": "F32", "shape": [2.7], "data_offsets": [0, 8]},  # was (2,)
    {"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]},
    {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]},  # TypeError
    {"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8]},
])
def test_safetensors_header_types(tmp_path, info):
    path = _safetensors(tmp_path / "t.safetensors", {"W_v.weight": info},
                        bytes(8))
    msg = _import(path, tmp_path)
    assert msg == (f"{path}: tensor 'W_v.weight' has no usable dtype (a "
                   "string), shape (a list of integers) and data_offsets "
                   "(two integers) in the safetensors header")


# --- femc.import: configurations ---------------------------------------------

def test_config_duplicate_key(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text('{"n_embd": 32, "n_head": 2, "n_head": 4, '
                   '"conv_hidden": 16, "prior_type": "gla"}')
    msg = _import(make_params(CONFIG), tmp_path, config=str(cfg))
    assert msg == (f"{cfg}: the configuration is not JSON (the member name "
                   "\"n_head\" is given twice)")


def test_config_nan_constant(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(dict(CONFIG, eps=float("nan"))))
    msg = _import(make_params(CONFIG), tmp_path, config=str(cfg))
    assert msg == (f"{cfg}: the configuration is not JSON (NaN is not a "
                   "JSON value)")


def test_config_not_utf8(tmp_path):
    # Was: a UnicodeDecodeError traceback.
    cfg = tmp_path / "config.json"
    cfg.write_bytes(b'{"n_embd": 32, "prior_type": "\xff"}')
    msg = _import(make_params(CONFIG), tmp_path, config=str(cfg))
    assert msg.startswith(f"{cfg}: the configuration is not JSON ('utf-8' "
                          "codec can't decode byte 0xff")


def test_stored_npz_config_duplicate_key(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, __config__='{"n_embd": 32, "n_embd": 16}',
             **make_params(CONFIG))
    msg = _import(str(path), tmp_path, config=None)
    assert msg == (f"{path}: __config__: the configuration is not JSON (the "
                   "member name \"n_embd\" is given twice)")


def test_cli_bad_config_has_no_traceback(tmp_path):
    params = tmp_path / "state.npz"
    np.savez(params, **make_params(CONFIG))
    cfg = tmp_path / "config.json"
    cfg.write_bytes(b"\xff\xfe{}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(femc.__file__))
    r = subprocess.run([sys.executable, "-m", "femc.import", str(params),
                        "--config", str(cfg), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert r.stderr.startswith(f"femc.import: error: {cfg}: the "
                               "configuration is not JSON")
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


# --- femc.import: torch.save checkpoints -------------------------------------

@pytest.mark.parametrize("dtype,shown", [("int64", "int64"), ("bool", "bool"),
                                         ("complex64", "complex64")])
def test_torch_non_float_parameter(tmp_path, dtype, shown):
    # Was: converted to float32 before the dtype check (complex lost its
    # imaginary part), so the checkpoint imported.
    torch = pytest.importorskip("torch")
    params = {k: torch.from_numpy(v) for k, v in make_params(CONFIG).items()}
    params["W_v.weight"] = params["W_v.weight"].to(getattr(torch, dtype))
    path = tmp_path / "s.pt"
    torch.save(params, path)
    msg = _import(str(path), tmp_path)
    assert msg == (f"{path}: parameter 'W_v.weight' has dtype {shown}, "
                   "expected a floating-point tensor")


def test_torch_float64_beyond_float32(tmp_path):
    # Was: float32 first, so 1e300 became inf ("holds NaN or infinite").
    torch = pytest.importorskip("torch")
    params = {k: torch.from_numpy(v) for k, v in make_params(CONFIG).items()}
    params["W_v.weight"] = params["W_v.weight"].double()
    params["W_v.weight"][0, 0] = -1e300
    path = tmp_path / "s.pt"
    torch.save(params, path)
    msg = _import(str(path), tmp_path)
    assert msg.startswith("parameter 'W_v.weight' holds values beyond "
                          "float32's range (largest magnitude 1e+300")


def test_torch_sparse_parameter(tmp_path):
    # Was: a TypeError traceback from .numpy().
    torch = pytest.importorskip("torch")
    params = {k: torch.from_numpy(v) for k, v in make_params(CONFIG).items()}
    params["W_v.weight"] = params["W_v.weight"].to_sparse()
    path = tmp_path / "s.pt"
    torch.save(params, path)
    msg = _import(str(path), tmp_path)
    assert msg.startswith(f"{path}: parameter 'W_v.weight' cannot be read as "
                          "a dense CPU tensor (TypeError: ")


# --- the Python module: Kernel.run -------------------------------------------

def _softmax_inputs(B=1, T=8, H=2, D=8):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, T, H, D)).astype(np.float32)
    return dict(q=q, k=q.copy(), v=q.copy(), lam=q.copy(), gate=q.copy(),
                beta_raw=np.zeros(H * D, np.float32))


@pytest.fixture(scope="module")
def causal():
    return femc.load(os.environ["FEMC_TEST_KERNELS"]).kernel("softmax_causal")


def test_run_inputs_disagreeing_on_an_extent(causal):
    # q binds T = 2^40 (zero-size: dk = 0) and k T = 8: the outputs were
    # allocated from q's T, a 64 TiB MemoryError instead of the mismatch.
    inputs = _softmax_inputs()
    inputs["q"] = np.zeros((1, 2**40, 2, 0), np.float32)
    with pytest.raises(femc.Error) as info:
        causal.run(**inputs)
    assert info.value.status == "FEMRT_ERROR_SHAPE_MISMATCH"
    assert str(info.value) == (
        "kernel 'softmax_causal': argument 'k' (#1) dimension 1 (T) is 8 but "
        "argument 'q' has T = 1099511627776")


def test_run_input_name_that_is_not_utf8(causal):
    # Was: RuntimeError "std::bad_cast".
    with pytest.raises(TypeError) as info:
        causal.run(**{"\udcff": 1}, **_softmax_inputs())
    assert str(info.value).startswith(
        "kernel 'softmax_causal' has no input called '\\udcff' (inputs: q, k, "
        "v, beta_raw, lam, gate)")


def test_run_still_runs(causal):
    out = causal.run(**_softmax_inputs())
    assert out.shape == (1, 8, 2, 8) and np.all(np.isfinite(out))


# --- femc.compile -----------------------------------------------------------

@pytest.mark.parametrize("kw,shown", [
    (dict(target="host\0x"), "'--target=host\\x00x'"),
    (dict(tuning_db="a\0b.json"), "'a\\x00b.json'"),
    (dict(tuning_db="db.json", tuning_dims={"T\0": 4}), "'T\\x00=4'"),
])
def test_compile_argument_with_nul(tmp_path, kw, shown):
    # Was: subprocess's bare "ValueError: embedded null byte".
    model = os.path.join(os.path.dirname(__file__), "kernels.mlir")
    with pytest.raises(femc.CompileError) as info:
        femc.compile(model, str(tmp_path / "out"), **kw)
    assert str(info.value) == (f"the femc argument {shown} contains a NUL "
                               "character")
    assert not (tmp_path / "out").exists()
