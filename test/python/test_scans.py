"""The scan priors (linear, gla, aft, ssm) through the femc Python module.

Each prior's kernel (test/python/scan_kernels.mlir, compiled with femc here)
runs through the module and gives what fem-run gives on the same inputs,
where fem-run --check compares with the double reference. The kernels with
a carried state run a sequence as segments (docs/user-guide.md, "Segments
and decoding"): the segments give the one-shot output, within 1e-4 of
max|out|.
"""

import os
import subprocess

import numpy as np
import pytest

import femc

HERE = os.path.dirname(os.path.abspath(__file__))
DK, N = 8, 4
PRIORS = ("linear", "linear_full", "gla", "aft", "ssm")


@pytest.fixture(scope="module")
def scan_lib(femc_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("scan_kernels")
    subprocess.run([femc_bin, os.path.join(HERE, "scan_kernels.mlir"), "-o",
                    str(out)], check=True, stdout=subprocess.DEVNULL)
    return str(out / "scan_kernels.so")


@pytest.fixture(scope="module")
def scans(scan_lib):
    return femc.load(scan_lib)


def softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def make_inputs(kernel, B, T, H, dv, seed=0):
    """Inputs by name for `kernel`, in the ranges the reference forms them."""
    rng = np.random.default_rng(seed)
    shapes = {"q": (B, T, H, DK), "k": (B, T, H, DK), "v": (B, T, H, dv),
              "beta_raw": (H * dv,), "lam": (B, T, H, dv),
              "gate": (B, T, H, dv), "decay": (B, T, H),
              "delta": (B, T, H * dv), "A": (H * dv, N), "Bs": (B, T, N),
              "Cs": (B, T, N), "D": (H * dv,)}
    inputs = {}
    for a in kernel.args:
        name = a["name"]
        if a["role"] != "input" or name == "state":
            continue
        x = rng.standard_normal(shapes[name])
        if name == "beta_raw":
            x = rng.uniform(-1.0, 2.0, shapes[name])
        elif name == "delta":
            x = np.exp(-softplus(x))
        elif name == "A":
            x = -softplus(x)
        elif name in ("Bs", "Cs", "D"):
            x = softplus(x) + 1e-6
        inputs[name] = x.astype(np.float32)
    return inputs


def segment(inputs, t0, t1):
    """Positions [t0, t1) of every per-position input (axis 1)."""
    return {name: (np.ascontiguousarray(x[:, t0:t1])
                   if name not in ("beta_raw", "A", "D") else x)
            for name, x in inputs.items()}


def assert_close(out, ref):
    assert np.isfinite(out).all()
    max_ref = np.abs(ref).max()
    err = np.abs(out.astype(np.float64) - ref).max()
    assert err <= 1e-4 * max_ref, f"max error {err:.3g}, max|ref| {max_ref:.3g}"


@pytest.mark.parametrize("prior", PRIORS)
def test_scan_prior_matches_fem_run_check(prior, scans, scan_lib, fem_run_bin,
                                          tmp_path):
    kernel = scans.kernel(prior)
    inputs = make_inputs(kernel, B=2, T=37, H=2, dv=16, seed=1)
    out = kernel.run(**inputs)
    assert out.shape == (2, 37, 2, 16)
    command = [fem_run_bin, scan_lib, "--kernel", prior, "--check",
               "--output", f"out={tmp_path / 'out.npy'}"]
    for name, x in inputs.items():
        np.save(tmp_path / f"{name}.npy", x)
        command += ["--input", f"{name}={tmp_path / (name + '.npy')}"]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "PASS" in run.stdout
    assert_close(out, np.load(tmp_path / "out.npy").astype(np.float64))


@pytest.mark.parametrize("prior", PRIORS)
def test_segments_give_the_one_shot_output(prior, scans):
    one_shot = scans.kernel(prior)
    kernel = scans.kernel(prior + "_state")
    ks = [a for a in kernel.args if a["name"] == "state"][0]["shape"][3]
    inputs = make_inputs(kernel, B=2, T=41, H=2, dv=16, seed=2)
    whole = one_shot.run(**inputs).astype(np.float64)
    state = np.zeros((2, 2, 16, ks), np.float32)  # the empty state
    outs = []
    t0 = 0
    # Prefill, three decode steps, a segment the chunk does not divide.
    for t1 in (17, 18, 19, 20, 41):
        out, state = kernel.run(**segment(inputs, t0, t1), state=state)
        outs.append(out)
        t0 = t1
    out = np.concatenate(outs, axis=1)
    if prior == "linear_full":
        # Non-causal: each segment's rows see the keys up to its own end,
        # so only the last segment's rows equal the one-shot rows.
        assert_close(out[:, 20:], whole[:, 20:])
    elif prior == "aft":
        # aft's kmax is over the keys seen so far (docs/semantics.md,
        # "Segments"): the one-shot rows over the whole sequence differ
        # by the +eps term; compare the last segment, whose kmax is the
        # whole sequence's.
        assert_close(out[:, 20:], whole[:, 20:])
    else:
        assert_close(out, whole)


@pytest.mark.parametrize("prior", PRIORS)
def test_state_left_out_is_the_empty_state(prior, scans):
    kernel = scans.kernel(prior + "_state")
    ks = [a for a in kernel.args if a["name"] == "state"][0]["shape"][3]
    inputs = make_inputs(kernel, B=1, T=9, H=2, dv=16, seed=3)
    out, state = kernel.run(**inputs)
    assert state.shape == (1, 2, 16, ks) and state.dtype == np.float32
    out0, state0 = kernel.run(**inputs,
                              state=np.zeros((1, 2, 16, ks), np.float32))
    np.testing.assert_array_equal(out, out0)
    np.testing.assert_array_equal(state, state0)
    # The state saw keys: its "seen" slot (2) is 1 on every channel.
    assert (state[..., 2] == 1).all()


def test_wrong_state_width_is_refused(scans):
    kernel = scans.kernel("gla_state")
    inputs = make_inputs(kernel, B=1, T=3, H=2, dv=16)
    with pytest.raises(femc.Error) as info:
        kernel.run(**inputs, state=np.zeros((1, 2, 16, 27), np.float32))
    assert "argument 'state'" in str(info.value)
    assert "(Ks) must be 28, got 27" in str(info.value)
