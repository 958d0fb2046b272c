"""femc.import's refusals: every bad checkpoint or configuration is refused
with a message naming what is wrong (docs/layers-examples.md, "Refusals"),
femc.LayerImportError from Python and exit status 1 with `femc.import:
error: ...` on the command line. Numpy only.
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


def _refused(params, config=CONFIG, tmp_path=None, **kw):
    with pytest.raises(LayerImportError) as info:
        femc.import_layer(params, str(tmp_path), config=config, **kw)
    return str(info.value)


def test_missing_parameter(tmp_path):
    params = make_params(CONFIG)
    del params["W_decay.weight"]
    msg = _refused(params, tmp_path=tmp_path)
    assert "missing parameter 'W_decay.weight': the configuration expects " \
        "shape (2, 32)" in msg


def test_extra_parameter(tmp_path):
    params = make_params(CONFIG)
    params["W_extra.weight"] = np.zeros((3, 4), np.float32)
    msg = _refused(params, tmp_path=tmp_path)
    assert "unexpected parameter 'W_extra.weight' of shape (3, 4): the " \
        "configuration has no such parameter" in msg


def test_misshaped_parameter_names_both_shapes(tmp_path):
    params = make_params(CONFIG)
    params["W_q.weight"] = np.zeros((48, 32), np.float32)
    msg = _refused(params, tmp_path=tmp_path)
    assert "parameter 'W_q.weight' has shape (48, 32), the configuration " \
        "expects (32, 32)" in msg
    # The sizes the configuration resolved to are in the message.
    assert "qk_dim 32 (dk 16 per head)" in msg


def test_every_problem_is_listed(tmp_path):
    params = make_params(CONFIG)
    del params["W_o.bias"]
    params["tdc.fwd.out_proj"] = np.zeros((16, 7), np.float32)
    msg = _refused(params, tmp_path=tmp_path)
    assert "missing parameter 'W_o.bias'" in msg
    assert "parameter 'tdc.fwd.out_proj' has shape (16, 7), the " \
        "configuration expects (16, 114)" in msg


def test_bias_false_checkpoint_with_biases(tmp_path):
    params = make_params(CONFIG)
    msg = _refused(params, dict(CONFIG, bias=False), tmp_path)
    assert "unexpected parameter 'W_v.bias' of shape (16,)" in msg


def test_integer_parameter(tmp_path):
    params = make_params(CONFIG)
    params["_beta_param"] = np.zeros(16, np.int64)
    msg = _refused(params, tmp_path=tmp_path)
    assert "parameter '_beta_param' has dtype int64, expected a " \
        "floating-point tensor" in msg


def test_nan_parameter(tmp_path):
    params = make_params(CONFIG)
    params["W_v.weight"][0, 0] = np.nan
    msg = _refused(params, tmp_path=tmp_path)
    assert msg == "parameter 'W_v.weight' holds NaN or infinite values"


def test_parameter_beyond_float32_range(tmp_path):
    # Finite in float64 but +-inf once narrowed to the float32 the kernels
    # read: refused naming the parameter, not imported as infinities.
    params = make_params(CONFIG)
    params["W_v.weight"] = params["W_v.weight"].astype(np.float64)
    params["W_v.weight"][0, 1] = -1e300
    msg = _refused(params, tmp_path=tmp_path)
    assert msg == "parameter 'W_v.weight' holds values beyond float32's " \
        "range (largest magnitude 1e+300, float32 holds at most " \
        "3.40282e+38); the kernels read float32 and it would become infinite"
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("key, value", [("qk_dim", -4), ("qk_dim", 0),
                                        ("fem_dim", -16)])
def test_non_positive_size(key, value, tmp_path):
    # _round_channels would resolve -4 as 4 (at least one multiple).
    msg = _refused(make_params(CONFIG), dict(CONFIG, **{key: value}),
                   tmp_path)
    assert msg == f"configuration key '{key}' must be at least 1, found " \
        f"{value}"


def test_unknown_config_key(tmp_path):
    msg = _refused(make_params(CONFIG), dict(CONFIG, use_flash=True),
                   tmp_path)
    assert msg.startswith("unknown configuration key 'use_flash'; "
                          "FreeEnergyMixerConfig has n_embd, n_head")


def test_config_without_n_head(tmp_path):
    config = dict(CONFIG)
    del config["n_head"]
    msg = _refused({}, config, tmp_path)
    assert "the configuration has no 'n_head'" in msg


def test_config_wrong_type(tmp_path):
    msg = _refused({}, dict(CONFIG, n_head="2"), tmp_path)
    assert msg == "configuration key 'n_head' must be an integer, found " \
        "'2' (str)"
    msg = _refused({}, dict(CONFIG, causal=1), tmp_path)
    assert msg == "configuration key 'causal' must be true or false, " \
        "found 1 (int)"


def test_unknown_prior(tmp_path):
    msg = _refused({}, dict(CONFIG, prior_type="cosine"), tmp_path)
    assert msg == "unknown prior_type 'cosine'; the module knows softmax, " \
        "linear, gla, rnn_softmax, mamba"


def test_mamba_without_scan_package_is_refused(tmp_path):
    config = dict(CONFIG, prior_type="mamba")
    params = make_params(config)
    for k in ("W_p.weight", "W_p.bias", "A_log", "D_diag"):
        del params[k]
    params["W_delta.weight"] = np.zeros((2, 32), np.float32)
    params["W_delta.bias"] = np.zeros(2, np.float32)
    msg = _refused(params, config, tmp_path)
    assert msg.startswith("this mamba checkpoint has W_delta: it was trained "
                          "without the mamba_ssm package")
    assert "exponential moving average" in msg and "not the selective scan" \
        in msg


def test_mamba_unnormalised_is_refused(tmp_path):
    config = dict(CONFIG, prior_type="mamba", mamba_normalize=False)
    msg = _refused(make_params(dict(config, mamba_normalize=True)), config,
                   tmp_path)
    assert msg.startswith("mamba_normalize is false: femc's ssm read always "
                          "divides by the scan of ones")


def test_cap_out_of_range(tmp_path):
    config = dict(CONFIG, value_logexp_cap=60.0)
    msg = _refused(make_params(config), config, tmp_path)
    assert msg.startswith("value_logexp_cap is 60.0; femc's kernels clip "
                          "beta*v to [-cap, cap] with cap in [1e-05, 43]")


def test_lse_only_with_large_eps(tmp_path):
    config = dict(CONFIG, use_temperature=False, eps=1.5)
    msg = _refused(make_params(config), config, tmp_path)
    assert msg == "use_lse without use_temperature reads with beta = 1, " \
        "but eps is 1.5: femc's kernels take beta = softplus(beta_raw) + " \
        "eps, which cannot be 1 when eps >= 1"


def test_bad_layer_name(tmp_path):
    msg = _refused(make_params(CONFIG), CONFIG, tmp_path, name="2fast")
    assert msg.startswith("layer name '2fast' must be ASCII letters")


def test_no_configuration(tmp_path):
    path = tmp_path / "state.npz"
    np.savez(path, **make_params(CONFIG))
    with pytest.raises(LayerImportError, match="^no configuration: give one "
                       r"\(--config CONFIG.json"):
        femc.import_layer(str(path), str(tmp_path / "out"))


def test_unknown_format(tmp_path):
    path = tmp_path / "state.h5"
    path.write_bytes(b"\x89HDF")
    with pytest.raises(LayerImportError, match="unknown checkpoint format "
                       "'.h5'; femc reads torch.save files"):
        femc.import_layer(str(path), str(tmp_path / "out"), config=CONFIG)


def test_missing_file(tmp_path):
    with pytest.raises(LayerImportError, match="no such checkpoint file"):
        femc.import_layer(str(tmp_path / "nope.npz"), str(tmp_path),
                          config=CONFIG)


def test_checkpoint_that_is_not_a_regular_file(tmp_path):
    # A folder and a FIFO were "no such checkpoint file", which they are not.
    with pytest.raises(LayerImportError, match="is a folder, not a "
                       "checkpoint file"):
        femc.import_layer(str(tmp_path), str(tmp_path / "out"),
                          config=CONFIG)
    fifo = tmp_path / "state.npz"
    os.mkfifo(fifo)
    with pytest.raises(LayerImportError, match="is not a regular file"):
        femc.import_layer(str(fifo), str(tmp_path / "out"), config=CONFIG)


def test_truncated_safetensors(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(LayerImportError, match="the header length 1000 runs "
                       "past the end of the file"):
        femc.import_layer(str(path), str(tmp_path / "out"), config=CONFIG)


def test_safetensors_offsets_outside_data(tmp_path):
    header = json.dumps({"W_v.weight": {"dtype": "F32", "shape": [16, 32],
                                        "data_offsets": [0, 2048]}}).encode()
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 100)
    with pytest.raises(LayerImportError, match=r"tensor 'W_v.weight' \(F32, "
                       r"shape \(16, 32\)\) has data offsets \[0, 2048\)"):
        femc.import_layer(str(path), str(tmp_path / "out"), config=CONFIG)


def test_torch_checkpoint_without_torch(tmp_path):
    try:
        import torch  # noqa: F401
        pytest.skip("torch is installed: the message for its absence "
                    "cannot be shown")
    except ImportError:
        pass
    path = tmp_path / "state.pt"
    path.write_bytes(b"PK")
    with pytest.raises(LayerImportError, match="reading a torch.save "
                       "checkpoint needs PyTorch, which this Python cannot "
                       "import"):
        femc.import_layer(str(path), str(tmp_path / "out"), config=CONFIG)


def test_cli_reports_and_exits_1(tmp_path):
    params = make_params(CONFIG)
    del params["W_k.bias"]
    path = tmp_path / "state.npz"
    np.savez(path, **params)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(CONFIG))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(femc.__file__))
    r = subprocess.run([sys.executable, "-m", "femc.import", str(path),
                        "--config", str(cfg), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert r.stderr.startswith("femc.import: error: the checkpoint does not "
                               "match its configuration (n_embd 32")
    assert "missing parameter 'W_k.bias'" in r.stderr
    assert not (tmp_path / "out").exists()
    # A configuration file that is not JSON.
    cfg.write_text("{n_embd: 32}")
    r = subprocess.run([sys.executable, "-m", "femc.import", str(path),
                        "--config", str(cfg), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert "the configuration is not JSON" in r.stderr


# --- Bad inputs found by the bad-input red team (docs/bad-inputs.md) -------

DEEP = "[" * 100000


def _safetensors(path, header, body=b""):
    raw = json.dumps(header).encode() if isinstance(header, dict) else header
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    return path


def _run_cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(femc.__file__))
    return subprocess.run([sys.executable, "-m", "femc.import", *args],
                          capture_output=True, text=True, env=env)


def test_safetensors_header_nested_too_deep(tmp_path):
    path = _safetensors(tmp_path / "deep.safetensors", DEEP.encode())
    with pytest.raises(LayerImportError, match="not a safetensors file: its "
                       "header nests JSON arrays or objects too deeply"):
        femc.import_layer(str(path), str(tmp_path / "out"), config=CONFIG)


def test_config_file_nested_too_deep(tmp_path):
    params = tmp_path / "state.npz"
    np.savez(params, **make_params(CONFIG))
    cfg = tmp_path / "config.json"
    cfg.write_text(DEEP)
    with pytest.raises(LayerImportError, match="config.json: the "
                       "configuration is not JSON: it nests arrays or "
                       "objects too deeply"):
        femc.import_layer(str(params), str(tmp_path / "out"), config=str(cfg))
    r = _run_cli(str(params), "--config", str(cfg), "-o",
                 str(tmp_path / "out"))
    assert r.returncode == 1
    assert r.stderr.startswith("femc.import: error: ")
    assert "Traceback" not in r.stderr


def test_stored_config_nested_too_deep(tmp_path):
    path = _safetensors(tmp_path / "deep_meta.safetensors",
                        {"__metadata__": {"config": DEEP}})
    with pytest.raises(LayerImportError, match=r"__metadata__\['config'\]: "
                       "the configuration is not JSON: it nests arrays or "
                       "objects too deeply"):
        femc.import_layer(str(path), str(tmp_path / "out"))


def test_safetensors_size_overflow(tmp_path):
    # 2**62 * 4 elements wrap to 0 in int64: the size must not pass as 0.
    path = _safetensors(tmp_path / "huge.safetensors",
                        {"W_v.weight": {"dtype": "F32", "shape": [2**62, 4],
                                        "data_offsets": [0, 0]}})
    with pytest.raises(LayerImportError, match=r"tensor 'W_v.weight' \(F32, "
                       r"shape \(4611686018427387904, 4\)\) has data offsets "
                       r"\[0, 0\) that do not hold 73786976294838206464 "
                       "bytes"):
        femc.import_layer(str(path), str(tmp_path / "out"), config=CONFIG)


def test_safetensors_negative_extent(tmp_path):
    path = _safetensors(tmp_path / "neg.safetensors",
                        {"W_v.weight": {"dtype": "F32", "shape": [-32, 1],
                                        "data_offsets": [0, 0]}})
    with pytest.raises(LayerImportError, match=r"tensor 'W_v.weight' has "
                       r"shape \(-32, 1\) with a negative extent"):
        femc.import_layer(str(path), str(tmp_path / "out"), config=CONFIG)


def test_output_is_an_existing_file(tmp_path):
    params = tmp_path / "state.npz"
    np.savez(params, **make_params(CONFIG))
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(CONFIG))
    out = tmp_path / "SOMEFILE"
    out.write_text("keep me")
    r = _run_cli(str(params), "--config", str(cfg), "-o", str(out))
    assert r.returncode == 1
    assert r.stderr.startswith(f"femc.import: error: {out}: cannot write the "
                               "layer there: it is a file, not a folder")
    assert "Traceback" not in r.stderr
    assert out.read_text() == "keep me"


def test_output_folder_cannot_be_created(tmp_path):
    params = tmp_path / "state.npz"
    np.savez(params, **make_params(CONFIG))
    out = tmp_path / "blocker" / "out"
    (tmp_path / "blocker").write_text("")
    with pytest.raises(LayerImportError, match=f"{tmp_path}/blocker: cannot "
                       "write the layer there: it is a file, not a folder"):
        femc.import_layer(str(params), str(out), config=CONFIG)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(CONFIG))
    r = _run_cli(str(params), "--config", str(cfg), "-o", "/proc/x")
    assert r.returncode == 1
    assert r.stderr.startswith("femc.import: error: /proc/x: cannot create "
                               "the output folder: ")


def test_output_write_failure_leaves_nothing(tmp_path):
    params = tmp_path / "state.npz"
    np.savez(params, **make_params(CONFIG))
    out = tmp_path / "out"
    out.mkdir()
    # NAME.weights is taken by a file: the import fails after creating
    # nothing else, and removes nothing that was there before.
    (out / "state.weights").write_text("old")
    with pytest.raises(LayerImportError, match="state.weights: cannot "
                       "write the layer there: it is a file, not a folder"):
        femc.import_layer(str(params), str(out), config=CONFIG)
    assert sorted(p.name for p in out.iterdir()) == ["state.weights"]
    # A write that fails half way (the .mlir path is a folder) removes the
    # NAME.weights folder it had written.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "x.mlir").mkdir()
    with pytest.raises(LayerImportError, match=r"x.mlir: cannot write the "
                       "layer"):
        femc.import_layer(str(params), str(fresh), config=CONFIG, name="x")
    assert sorted(p.name for p in fresh.iterdir()) == ["x.mlir"]


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 3],
                         ids=["empty", "random"])
def test_npz_not_a_zip(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(LayerImportError) as info:
        femc.import_layer(str(path), str(tmp_path / "out"), config=CONFIG)
    msg = str(info.value)
    assert f"{path}: not a valid .npz file: it is not a zip archive" in msg
    assert "pickle" not in msg


def test_npz_with_a_damaged_member(tmp_path):
    # A flipped byte fails the member's CRC-32 (was: zipfile.BadZipFile).
    params = make_params(CONFIG)
    path = tmp_path / "crc.npz"
    np.savez(path, **params)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LayerImportError, match=r"crc.npz: entry '.*' is "
                       r"damaged \(Bad CRC-32 for file .*\); the .npz "
                       r"archive is corrupt"):
        femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)


def test_npz_with_a_member_that_is_not_npy(tmp_path):
    # numpy returns the raw bytes of such a member (was: AttributeError:
    # 'bytes' object has no attribute 'shape').
    import io
    import zipfile
    path = tmp_path / "extra.npz"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in make_params(CONFIG).items():
            buf = io.BytesIO()
            np.save(buf, v)
            z.writestr(k + ".npy", buf.getvalue())
        z.writestr("notes.txt", b"hello")
    with pytest.raises(LayerImportError, match=r"member 'notes.txt' is not "
                       r"an .npy array"):
        femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)


def test_in_memory_masked_array_and_ragged_list(tmp_path):
    # A masked array's mask was dropped without a word; a ragged list gave
    # numpy's ValueError.
    params = make_params(CONFIG)
    params["W_v.bias"] = np.ma.masked_array(params["W_v.bias"], mask=True)
    with pytest.raises(LayerImportError, match=r"parameter 'W_v.bias' is a "
                       r"numpy masked array"):
        femc.import_layer(params, str(tmp_path / "a"), config=CONFIG)
    params["W_v.bias"] = [1.0, [2.0]]
    with pytest.raises(LayerImportError, match=r"parameter 'W_v.bias' is not "
                       r"an array"):
        femc.import_layer(params, str(tmp_path / "b"), config=CONFIG)


def test_in_memory_torch_bf16_and_requires_grad(tmp_path):
    # Read as from a torch.save file (was np.asarray: TypeError 'Got
    # unsupported ScalarType BFloat16'; RuntimeError for tensors that
    # require grad, as dict(model.named_parameters()) holds).
    torch = pytest.importorskip("torch")
    params = make_params(CONFIG)
    bf16 = {k: torch.from_numpy(v).to(torch.bfloat16)
            for k, v in params.items()}
    femc.import_layer(bf16, str(tmp_path / "a"), config=CONFIG)
    assert (tmp_path / "a" / "fem_layer.mlir").exists()
    grad = {k: torch.from_numpy(v).requires_grad_(True)
            for k, v in params.items()}
    femc.import_layer(grad, str(tmp_path / "b"), config=CONFIG)
    assert (tmp_path / "b" / "fem_layer.mlir").exists()
