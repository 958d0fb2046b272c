"""Round trips of femc.import: a FreeEnergyMixer layer's state_dict and
configuration -> femc.import_layer -> femc -> run -> compared with the float64
numpy layer (femc.layer_reference, docs/semantics.md section 7).

* the public checkpoint (test/data/vectors/checkpoint_gla_defaults_T24:
  the authors' module with its defaults, gla prior, a mask; y computed by the
  module in float64) through `python3 -m femc.import` and fem-run, within
  1e-4 max|y|;
* every prior femc compiles (softmax causal and not, linear causal and not,
  gla, rnn_softmax = aft, mamba = ssm) and the use_* flags: use_temperature,
  use_lse, use_outer_gate, use_rope, use_conv (with conv_bidirectional and
  conv_norm_first), bias, masks; random parameters in the module's shapes;
* the checkpoint formats: .npz (with and without a stored configuration),
  .safetensors (F32, F16, BF16, configuration in __metadata__).

Needs numpy, femc and fem-run (build/bin or $FEMC / $FEM_RUN); no torch.
"""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import femc
from femc import layer_reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from layer_cases import checkpoint_dir, make_inputs, make_params  # noqa: E402

TOL = 1e-4   # docs/semantics.md, Tolerances: max |err| <= 1e-4 max |y|


def _python_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(femc.__file__))] +
        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _compile(femc_bin, mlir, out):
    r = subprocess.run([femc_bin, mlir, "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"femc {mlir} failed:\n{r.stderr}"


def _relative_error(y, ref):
    return float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))


def test_public_checkpoint_cli_and_fem_run(femc_bin, fem_run_bin, tmp_path):
    """python3 -m femc.import + femc + fem-run reproduce the module's y."""
    d = checkpoint_dir()
    out = tmp_path / "imp"
    r = subprocess.run(
        [sys.executable, "-m", "femc.import", os.path.join(d, "state.npz"),
         "--config", os.path.join(d, "config.json"), "-o", str(out),
         "--name", "ckpt_gla", "--mask"],
        capture_output=True, text=True, env=_python_env())
    assert r.returncode == 0, r.stderr
    assert "layer @ckpt_gla (gla" in r.stdout
    mlir = out / "ckpt_gla.mlir"
    text = mlir.read_text()
    # One fem.mixer (the gla read), the module's configuration resolved.
    assert text.count("fem.mixer gla") == 1
    assert "fem_dim = 32 : i64" in text and "qk_dim = 64 : i64" in text
    _compile(femc_bin, str(mlir), tmp_path / "lib")
    mask = np.load(os.path.join(d, "mask.npy")).astype(np.float32)
    np.save(tmp_path / "mask.npy", mask)
    cmd = [fem_run_bin, str(tmp_path / "lib" / "ckpt_gla.so"),
           "--kernel", "ckpt_gla", "--inputs", str(out / "ckpt_gla.weights"),
           "--input", f"x={d}/x.npy",
           "--input", f"attention_mask={tmp_path}/mask.npy",
           "--output", f"out={tmp_path}/y.npy"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    y = np.load(tmp_path / "y.npy")
    ref = np.load(os.path.join(d, "y.npy"))
    assert y.shape == ref.shape
    err = _relative_error(y, ref)
    assert err <= TOL, f"checkpoint: relative error {err:.3g}"


def test_public_checkpoint_reference():
    """The float64 numpy layer reproduces the authors' module (to 1e-6)."""
    d = checkpoint_dir()
    state = np.load(os.path.join(d, "state.npz"))
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    y = layer_reference.forward({k: state[k] for k in state.files}, config,
                                np.load(os.path.join(d, "x.npy")),
                                np.load(os.path.join(d, "mask.npy")))
    assert _relative_error(y, np.load(os.path.join(d, "y.npy"))) < 1e-6


BASE = dict(n_embd=32, n_head=2, conv_hidden=16)

# name -> (configuration on top of BASE, mask, [(B, T), ...])
CASES = {
    "softmax": (dict(prior_type="softmax"), True, [(2, 37), (1, 1), (1, 700)]),
    "softmax_full": (dict(prior_type="softmax", causal=False), True, [(2, 37)]),
    "linear": (dict(prior_type="linear"), True, [(2, 37)]),
    "linear_full": (dict(prior_type="linear", causal=False, n_head=4,
                         fem_dim=48), True, [(2, 37)]),
    "gla": (dict(prior_type="gla"), True, [(2, 37), (1, 130)]),
    "aft": (dict(prior_type="rnn_softmax"), True, [(2, 37)]),
    "ssm": (dict(prior_type="mamba"), True, [(2, 37), (1, 1)]),
    # use_lse without use_temperature: beta = 1, no learned temperature.
    "softmax_lse_only": (dict(prior_type="softmax", use_temperature=False),
                         False, [(2, 37)]),
    # Neither: only mu is read.
    "gla_mu_only": (dict(prior_type="gla", use_temperature=False,
                         use_lse=False), True, [(2, 37)]),
    "linear_no_gate_no_rope": (dict(prior_type="linear", use_outer_gate=False,
                                    use_rope=False), False, [(2, 37)]),
    "softmax_no_conv_no_bias": (dict(prior_type="softmax", use_conv=False,
                                     bias=False, qk_dim=24), True, [(2, 37)]),
    "gla_bidirectional_no_norm": (dict(prior_type="gla",
                                       conv_bidirectional=True,
                                       conv_norm_first=False, bias=False),
                                  False, [(2, 37)]),
    "ssm_mu_only_no_gate": (dict(prior_type="mamba", use_temperature=False,
                                 use_lse=False, use_outer_gate=False,
                                 ssm_rank=3), False, [(2, 37)]),
    "ssm_lse_bidirectional": (dict(prior_type="mamba", use_temperature=False,
                                   conv_bidirectional=True, ssm_rank=4),
                              True, [(2, 37)]),
    "aft_lse_no_conv": (dict(prior_type="rnn_softmax", use_temperature=False,
                             use_conv=False, qk_dim=8), False, [(2, 37)]),
    # Odd sizes and non-default knobs: fem_dim 20 -> 24 (lcm(align 8,
    # 4 * 3 heads) = 24), qk_dim 10 -> 24 (lcm(8, 2 * 3) = 24: dk 8), a
    # 10-wide bidirectional TDC (5 + 5), eps, cap and rope_theta changed.
    "linear_odd_sizes": (dict(prior_type="linear", n_embd=24, n_head=3,
                              fem_dim=20, qk_dim=10, align_multiple=8,
                              conv_hidden=10, conv_bidirectional=True,
                              eps=1e-5, value_logexp_cap=20.0,
                              rope_theta=500.0), True, [(2, 37)]),
    "softmax_everything_off": (dict(prior_type="softmax", causal=False,
                                    use_temperature=False, use_lse=False,
                                    use_outer_gate=False, use_rope=False,
                                    use_conv=False, bias=False), False,
                               [(2, 37)]),
}


_compiled = {}


def _import_and_compile(case, femc_bin, tmp_path_factory):
    """(config, params, ImportedLayer, library path) of one case, compiled
    once per session."""
    if case not in _compiled:
        overrides, masked, _ = CASES[case]
        config = dict(BASE, **overrides)
        params = make_params(config, seed=len(case))
        out = tmp_path_factory.mktemp(case)
        layer = femc.import_layer(params, str(out), config=config,
                                  name="L_" + case, mask=masked)
        _compile(femc_bin, layer.mlir, out / "lib")
        _compiled[case] = (config, params, layer,
                           str(out / "lib" / f"L_{case}.so"))
    return _compiled[case]


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(case, femc_bin, tmp_path_factory):
    _, masked, shapes = CASES[case]
    config, params, layer, lib = _import_and_compile(case, femc_bin,
                                                     tmp_path_factory)
    assert layer.arguments[0] == "x"
    assert layer.arguments[1:] == (["attention_mask"] if masked else []) + \
        list(params)
    kernel = femc.load(lib).kernel("L_" + case)
    assert kernel.layer
    for B, T in shapes:
        x, mask = make_inputs(config, B, T, seed=B * 1000 + T, masked=masked)
        inputs = dict(layer.weights(), x=x)
        if masked:
            inputs["attention_mask"] = mask
        y = kernel.run(**inputs)
        ref = layer_reference.forward(params, config, x, mask)
        assert y.shape == (B, T, config["n_embd"])
        err = _relative_error(y, ref)
        assert err <= TOL, f"{case} B={B} T={T}: relative error {err:.3g}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_fem_run_check_against_the_cpp_layer_reference(
        case, femc_bin, fem_run_bin, tmp_path_factory):
    """fem-run --inputs WEIGHTS --check: the compiled import against the C++
    layer reference (reference/Layer.h), which reads the same parameters by
    name and the configuration from the manifest: three independent
    implementations of section 7 agree."""
    _, _, layer, lib = _import_and_compile(case, femc_bin, tmp_path_factory)
    r = subprocess.run([fem_run_bin, lib, "--kernel", "L_" + case,
                        "--inputs", layer.weights_dir, "--dim", "B=2",
                        "--dim", "T=37", "--seed", "3", "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check: the layer reference" in r.stdout + r.stderr
    assert ": PASS" in r.stdout + r.stderr


def test_fem_run_check_of_an_output_at_underflow(femc_bin, fem_run_bin,
                                                 tmp_path_factory, tmp_path):
    """A layer without biases, every position padded (or x = 0): y is only
    the log restore's tiny term, ~1e-38 in the double reference and 0 in
    float32. fem-run --check judges it on the layer's scale floor
    (docs/semantics.md, "Tolerance") instead of failing at relative error 1;
    the comparison still runs (a tolerance below the floor's ratio fails)."""
    _, _, layer, lib = _import_and_compile("softmax_no_conv_no_bias",
                                           femc_bin, tmp_path_factory)
    B, T, D = 2, 9, BASE["n_embd"]
    x = np.random.default_rng(4).standard_normal((B, T, D)).astype(np.float32)
    for name, xs, mask in [("allpad", x, np.zeros((B, T), np.float32)),
                           ("zero_x", np.zeros_like(x),
                            np.ones((B, T), np.float32))]:
        np.save(tmp_path / f"{name}_x.npy", xs)
        np.save(tmp_path / f"{name}_mask.npy", mask)
        cmd = [fem_run_bin, lib, "--kernel", "L_softmax_no_conv_no_bias",
               "--inputs", layer.weights_dir,
               "--input", f"x={tmp_path / (name + '_x.npy')}",
               "--input", f"attention_mask={tmp_path / (name + '_mask.npy')}",
               "--check"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        text = r.stdout + r.stderr
        assert r.returncode == 0 and ": PASS" in text, f"{name}: {text}"
        assert "under the scale floor" in text, f"{name}: {text}"
        r = subprocess.run(cmd + ["--tolerance", "1e-30"],
                           capture_output=True, text=True)
        assert r.returncode == 3 and ": FAIL" in r.stdout, f"{name}: {r.stdout}"


def test_mask_changes_the_output(femc_bin, tmp_path):
    """The mask argument is used: zeroing a position's keys changes y."""
    config = dict(BASE, prior_type="softmax", causal=False)
    params = make_params(config, seed=5)
    layer = femc.import_layer(params, str(tmp_path), config=config,
                              name="masked", mask=True)
    _compile(femc_bin, layer.mlir, tmp_path / "lib")
    kernel = femc.load(str(tmp_path / "lib" / "masked.so")).kernel("masked")
    x, mask = make_inputs(config, 2, 9, masked=True)
    ones = np.ones_like(mask)
    y_masked = kernel.run(x=x, attention_mask=mask, **layer.weights())
    y_full = kernel.run(x=x, attention_mask=ones, **layer.weights())
    assert np.max(np.abs(y_masked - y_full)) > 1e-3
    ref = layer_reference.forward(params, config, x, ones)
    assert _relative_error(y_full, ref) <= TOL


# ---------------------------------------------------------------------------
# Checkpoint formats
# ---------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """A .safetensors file written by hand (the format is a JSON header and
    raw little-endian bytes), so the test needs no safetensors package."""
    header = {}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        value = np.asarray(value, dtype=np.float32)
        if dtype == "F32":
            raw = value.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = value.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = (value.view(np.uint32) >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
def test_safetensors_with_stored_config(dtype, tmp_path):
    config = dict(BASE, prior_type="gla")
    params = make_params(config, seed=11)
    path = tmp_path / "layer.safetensors"
    write_safetensors(path, params, {"config": json.dumps(config)}, dtype)
    layer = femc.import_layer(str(path), str(tmp_path / "out"))
    assert layer.name == "layer"
    assert layer.config["prior_type"] == "gla"
    for name, value in params.items():
        stored = np.load(os.path.join(layer.weights_dir, name + ".npy"))
        assert stored.dtype == np.float32 and stored.shape == value.shape
        if dtype == "F32":
            np.testing.assert_array_equal(stored, value)
        else:  # F16 rounds to 11 significant bits; BF16 (written by
            # truncation here) keeps 8
            rtol = 2.0 ** -11 if dtype == "F16" else 2.0 ** -7
            np.testing.assert_allclose(stored, value, rtol=rtol, atol=1e-6)


def test_npz_with_stored_config_and_cli_name(tmp_path):
    config = dict(BASE, prior_type="linear", use_conv=False)
    params = make_params(config, seed=12)
    path = tmp_path / "my-layer.npz"
    np.savez(path, __config__=json.dumps(config), **params)
    r = subprocess.run([sys.executable, "-m", "femc.import", str(path),
                        "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=_python_env())
    assert r.returncode == 0, r.stderr
    # The default name is the file's stem made a C identifier.
    assert (tmp_path / "out" / "my_layer.mlir").is_file()
    names = sorted(os.listdir(tmp_path / "out" / "my_layer.weights"))
    assert names == sorted(k + ".npy" for k in params)


def test_torch_checkpoints(tmp_path):
    """torch.save files: a bare state_dict with --config, and a dict with
    'state_dict' and 'config' (skipped without PyTorch)."""
    torch = pytest.importorskip("torch")
    config = dict(BASE, prior_type="softmax", use_conv=False)
    params = make_params(config, seed=21)
    state = {k: torch.from_numpy(v.copy()) for k, v in params.items()}
    bare = tmp_path / "bare.pt"
    torch.save(state, bare)
    layer = femc.import_layer(str(bare), str(tmp_path / "a"), config=config)
    assert layer.name == "bare"
    for k, v in layer.weights().items():
        np.testing.assert_array_equal(v, params[k])
    packed = tmp_path / "packed.pth"
    torch.save({"state_dict": state, "config": config}, packed)
    layer = femc.import_layer(str(packed), str(tmp_path / "b"))
    assert layer.config["prior_type"] == "softmax"
    assert list(layer.weights()) == list(params)


def test_one_layer_of_a_whole_model(tmp_path):
    """--prefix picks one layer's tensors out of a model's state_dict."""
    config = dict(BASE, prior_type="gla", use_conv=False)
    layers = [make_params(config, seed=30 + i) for i in range(2)]
    model = {"embed.weight": np.zeros((10, 32), np.float32)}
    for i, params in enumerate(layers):
        model.update({f"blocks.{i}.attn.{k}": v for k, v in params.items()})
        model[f"blocks.{i}.norm.weight"] = np.ones(32, np.float32)
    path = tmp_path / "model.npz"
    np.savez(path, **model)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    r = subprocess.run([sys.executable, "-m", "femc.import", str(path),
                        "--config", str(cfg), "--prefix", "blocks.1.attn.",
                        "--name", "block1", "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=_python_env())
    assert r.returncode == 0, r.stderr
    for k, v in layers[1].items():
        np.testing.assert_array_equal(
            np.load(tmp_path / "out" / "block1.weights" / (k + ".npy")), v)
    with pytest.raises(femc.LayerImportError, match="no parameter name "
                       "starts with the prefix 'blocks.7.attn.' \\(the "
                       "checkpoint has 33: embed.weight, blocks.0.attn."):
        femc.import_layer(str(path), str(tmp_path / "o2"), config=config,
                          prefix="blocks.7.attn.")


@pytest.mark.parametrize("case", ["softmax", "gla", "ssm"])
def test_empty_batch_or_sequence(case, femc_bin, tmp_path_factory):
    """B = 0 or T = 0 gives an empty y of the right shape, no error."""
    config, _, layer, lib = _import_and_compile(case, femc_bin,
                                                tmp_path_factory)
    kernel = femc.load(lib).kernel("L_" + case)
    for B, T in ((2, 0), (0, 5)):
        x = np.zeros((B, T, config["n_embd"]), np.float32)
        y = kernel.run(x=x, attention_mask=np.ones((B, T), np.float32),
                       **layer.weights())
        assert y.shape == (B, T, config["n_embd"])
