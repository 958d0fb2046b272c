"""Random FreeEnergyMixer layers for the import tests (numpy only).

make_params(config, seed) draws every parameter of the module's state_dict
in its own shapes (femc.layer_config.expected_parameters), with scales that
keep the layer away from trivial values: the TDC's out_proj is drawn too
(the module initialises it to zero), beta_raw around the module's 1.8.
The plumbing below (tools, the public checkpoint, import, compiling layers
side by side, fem-run --check) is shared by the layer test harnesses.
"""

import json
import os
import subprocess

import numpy as np

from femc.layer_config import expected_parameters, resolve_config


def make_params(config, seed=0, scale=0.25):
    cfg = resolve_config(dict(config))
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in expected_parameters(cfg).items():
        if name == "_beta_param":
            value = rng.uniform(-1.0, 2.5, shape)
        elif name == "A_log":
            value = rng.uniform(-1.0, 1.5, shape)
        elif name.endswith("norm.weight") or name.endswith("ln.weight"):
            value = 1.0 + 0.2 * rng.standard_normal(shape)
        elif name.endswith("out_proj"):
            value = 0.3 * rng.standard_normal(shape)
        else:
            value = scale * rng.standard_normal(shape)
        params[name] = value.astype(np.float32)
    return params


def make_inputs(config, B, T, seed=1, masked=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, config["n_embd"])).astype(np.float32)
    mask = None
    if masked:
        mask = np.ones((B, T), dtype=np.float32)
        mask[0, T - max(1, T // 4):] = 0.0      # right padding
        if B > 1:
            mask[1, :max(1, T // 5)] = 0.0      # left padding
    return x, mask


# ------------------------------------------------------------ plumbing
# Shared by the layer harnesses (spec_layers.py, spec_layers_adversarial.py,
# test_import_layer.py); their float64 readings of semantics.md section 7
# (spec_layer_ref.py, spec_layers_adversarial_ref.py) stay independent.

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def tool(env, name):
    """A femc tool: $ENV, else build/bin/NAME; None where neither exists."""
    path = os.environ.get(env) or os.path.join(ROOT, "build", "bin", name)
    return path if os.path.isfile(path) else None


def checkpoint_dir():
    """The public checkpoint (the authors' module with its defaults, the
    gla prior and a mask): $FEMC_SHARED_DIR or test/data, vectors/
    checkpoint_gla_defaults_T24. Skips the test where it is missing."""
    import pytest
    shared = os.environ.get("FEMC_SHARED_DIR") or \
        os.path.join(ROOT, "test", "data")
    d = os.path.join(shared, "vectors", "checkpoint_gla_defaults_T24")
    if not os.path.isfile(os.path.join(d, "state.npz")):
        pytest.skip(f"no checkpoint vectors at {d}")
    return d


def import_case(tmp, name, cfg, state, layer_name, mask):
    """state as an .npz state_dict and cfg as a JSON FreeEnergyMixerConfig
    under tmp, imported with femc.import_layer into tmp/imp; returns the
    ImportedLayer and its .mlir text."""
    import femc
    ckpt = tmp / f"{name}.npz"
    np.savez(ckpt, **state)
    cfg_path = tmp / f"{name}.json"
    cfg_path.write_text(json.dumps(cfg))
    layer = femc.import_layer(str(ckpt), str(tmp / "imp"),
                              config=str(cfg_path), name=layer_name,
                              mask=mask)
    with open(layer.mlir) as f:
        return layer, f.read()


def compile_side_by_side(femc_bin, tmp, texts, stem, parts=2):
    """The layers' texts in `parts` modules tmp/STEM<i>.mlir, compiled by
    concurrent femc processes (the compiler is single-threaded and its time
    grows with the number of layers); layer i lands in module i % parts.
    Returns the libraries' paths."""
    procs, libs = [], []
    for part in range(parts):
        mlir = tmp / f"{stem}{part}.mlir"
        mlir.write_text("\n".join(texts[part::parts]))
        procs.append(subprocess.Popen(
            [femc_bin, str(mlir), "-o", str(tmp / "lib")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        libs.append(str(tmp / "lib" / f"{stem}{part}.so"))
    for part, proc in enumerate(procs):
        _, err = proc.communicate()
        assert proc.returncode == 0, f"femc {stem}{part}.mlir:\n{err}"
    return libs


def fem_run_check(lib, layer, x, mask, tmp):
    """`fem-run --check`: the compiled layer against femc's C++ layer
    reference (reference/Layer.cpp) on x and mask (None: no mask). None
    when it passes or there is no fem-run, else the end of its output."""
    fem_run = tool("FEM_RUN", "fem-run")
    if fem_run is None:
        return None
    np.save(tmp / "x.npy", x)
    cmd = [fem_run, lib, "--kernel", layer.name, "--inputs",
           layer.weights_dir, "--input", f"x={tmp / 'x.npy'}", "--check"]
    if mask is not None:
        np.save(tmp / "mask.npy", mask)
        cmd += ["--input", f"attention_mask={tmp / 'mask.npy'}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stdout + r.stderr)[-800:]
