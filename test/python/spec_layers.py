"""femc's imported layers against an independent reading of semantics.md §7.

test/python/spec_layer_ref.py implements the whole FEM layer (projections,
the mask, the time-decay conditioning, RoPE, λ and the outer gate, every
prior, the output projection) in float64 numpy from the specification text
alone. This test draws a seeded matrix of layer configurations with random
parameters of realistic scale (PyTorch's Linear init, LayerNorms away from
1/0, a non-zero TDC out_proj), writes each as an .npz state_dict and a JSON
FreeEnergyMixerConfig, imports it with femc.import_layer, compiles the
layers with femc (all layers of one group in one module, so the compiler
starts once) and runs them through the femc module, and checks
max |y - y_ref| <= 1e-4 max |y_ref| for every (layer, B, T, mask). The first
run of each layer also goes through `fem-run --check`, which compares the
compiled layer with femc's own C++ layer reference (reference/Layer.cpp).

The matrix: every prior femc imports (softmax and linear causal and not,
gla, rnn_softmax, mamba); use_conv on/off, conv_bidirectional,
conv_norm_first, use_rope, use_temperature, use_lse, use_outer_gate, bias;
qk_dim != fem_dim; 1, 2, 4 and 8 heads; masks with right and left padding,
an all-padding row, random holes; T = 1, 2, odd, past the kernels' tiles
(64 keys, 192 query rows); the clip at value_logexp_cap active; tiny and
huge temperatures; gla decays that saturate at -60; a non-default eps and
rope_theta.

Numpy only (no PyTorch). The default matrix runs in about a minute on two
cores; FEMC_SPEC_LAYERS_FULL=1 adds long sequences and 24 random drawn
configurations. Run by ctest as python.spec_layers; by hand:
    PYTHONPATH=build/python FEMC=build/bin/femc \\
        /usr/bin/python3 -m pytest -q test/python/spec_layers.py
"""

import json
import os
import sys
import zlib

import numpy as np
import pytest

import femc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec_layer_ref  # noqa: E402
from layer_cases import (checkpoint_dir, compile_side_by_side,  # noqa: E402
                         fem_run_check, import_case, tool)

TOL = 1e-4
FULL = os.environ.get("FEMC_SPEC_LAYERS_FULL") == "1"


def _femc_bin():
    path = tool("FEMC", "femc")
    if path is None:
        pytest.skip("no femc compiler (set FEMC)")
    return path


# ------------------------------------------------------------ parameters


def parameter_shapes(cfg):
    """name -> shape of every state_dict entry, read from §7's list."""
    D, H = cfg["n_embd"], cfg["n_head"]
    E, prior = cfg["fem_dim"], cfg["prior_type"]
    bias = cfg.get("bias", True)
    branch = cfg.get("use_temperature", True) or cfg.get("use_lse", True)
    gate = cfg.get("use_outer_gate", True)
    shapes = {"_beta_param": (E,)}

    def lin(name, out_f, in_f):
        shapes[name + ".weight"] = (out_f, in_f)
        if bias:
            shapes[name + ".bias"] = (out_f,)

    lin("W_v", E, D)
    lin("W_o", D, E)
    qk = 0
    if prior == "mamba":
        N = cfg.get("ssm_rank", 16)
        lin("W_p", E + 2 * N, D)
        shapes["A_log"] = (E, N)
        shapes["D_diag"] = (E,)
    else:
        qk = cfg["qk_dim"]
        lin("W_q", qk, D)
        lin("W_k", qk, D)
    if prior == "gla":
        lin("W_decay", H, D)
    if branch:
        lin("W_lambda", E, D)
    if gate:
        lin("W_gate", E, D)
    if cfg.get("use_conv", True):
        width = E + 2 * qk + (E if branch else 0) + (E if gate else 0) + \
            (H if prior == "gla" else 0)
        h = cfg.get("conv_hidden", 64)
        dirs = ["fwd"]
        if cfg.get("conv_bidirectional", False):
            dirs, h = ["fwd", "bwd"], h // 2
        for d in dirs:
            p = f"tdc.{d}."
            if cfg.get("conv_norm_first", True):
                shapes[p + "norm.weight"] = (D,)
                if bias:
                    shapes[p + "norm.bias"] = (D,)
            for name in ("in_f", "x_f", "shortcut"):
                lin(p + name, h, D)
            shapes[p + "out_proj"] = (h, width)
            shapes[p + "ln.weight"] = (h,)
            if bias:
                shapes[p + "ln.bias"] = (h,)
    return shapes


def make_state(cfg, rng, gains):
    """Random parameters: Linear weights and biases uniform in ±1/sqrt(in)
    (PyTorch's init) times a per-parameter gain, LayerNorm weights 1 +
    0.2 N(0,1) and biases 0.2 N(0,1), out_proj uniform in ±1/sqrt(h),
    _beta_param uniform in [-1, 2), A_log in [-2, 1), D_diag N(0,1)."""
    state = {}
    for name, shape in parameter_shapes(cfg).items():
        base = name.rsplit(".", 1)[0]
        if name == "_beta_param":
            a = rng.uniform(-1.0, 2.0, shape)
        elif name == "A_log":
            a = rng.uniform(-2.0, 1.0, shape)
        elif name == "D_diag":
            a = rng.standard_normal(shape)
        elif name.endswith("out_proj"):
            a = rng.uniform(-1, 1, shape) / np.sqrt(shape[0])
        elif base.endswith(".norm") or base.endswith(".ln"):
            a = (1.0 if name.endswith("weight") else 0.0) + \
                0.2 * rng.standard_normal(shape)
        else:
            fan_in = parameter_shapes(cfg)[base + ".weight"][1]
            a = rng.uniform(-1, 1, shape) / np.sqrt(fan_in)
        for key, g in gains.items():
            if name == key or base == key:
                a = a * g
        state[name] = a.astype(np.float32)
    for key, value in gains.items():
        if key.endswith("+"):
            state[key[:-1]] = state[key[:-1]] + np.float32(value)
        if key == "_beta_param=":
            state["_beta_param"] = np.full(
                state["_beta_param"].shape, value, np.float32)
    return state


def make_mask(kind, B, T, rng):
    m = np.ones((B, T), np.float32)
    if kind == "right":
        for b in range(B):
            m[b, max(1, T - 1 - b * T // 3):] = 0
    elif kind == "left":
        for b in range(B):
            m[b, :min(T - 1, 1 + b * T // 3)] = 0
    elif kind == "allpad":
        m[B - 1] = 0
        if B > 1:
            m[0, T // 2:] = 0
    elif kind == "holes":
        m = (rng.random((B, T)) > 0.3).astype(np.float32)
    elif kind == "frac":
        # attention_mask multiplies K and V: fractional values scale them.
        m = rng.uniform(0.0, 1.0, (B, T)).astype(np.float32)
    elif kind != "none":
        raise ValueError(kind)
    return m


# ------------------------------------------------------------ the matrix

BASE = dict(n_embd=32, n_head=2, fem_dim=16, qk_dim=32, conv_hidden=16)
RUNS_SHORT = [(2, 1, "none"), (1, 2, "right"), (3, 7, "allpad"),
              (2, 67, "left"), (1, 200, "holes")]
RUNS_MID = [(2, 2, "left"), (2, 9, "holes"), (1, 130, "right")]

# (name, configuration on top of BASE, parameter gains, runs)
CASES = [
    ("softmax_causal", dict(prior_type="softmax"), {}, RUNS_SHORT),
    ("softmax_full_qk", dict(prior_type="softmax", causal=False, qk_dim=8,
                             n_head=4), {"W_q": 4.0, "W_k": 4.0},
     RUNS_SHORT),
    ("linear_causal_nobias_bidir", dict(prior_type="linear", bias=False,
                                        conv_bidirectional=True),
     {}, RUNS_SHORT),
    ("linear_full_nonorm", dict(prior_type="linear", causal=False,
                                conv_norm_first=False, qk_dim=48), {},
     RUNS_MID),
    ("gla_lse_only_nogate", dict(prior_type="gla", use_temperature=False,
                                 use_outer_gate=False), {"W_v": 3.0},
     RUNS_MID),
    ("gla_saturated_decay", dict(prior_type="gla", n_head=1, fem_dim=8,
                                 qk_dim=8), {"W_decay": 30.0},
     RUNS_MID),
    ("aft", dict(prior_type="rnn_softmax", fem_dim=32, qk_dim=16), {},
     RUNS_SHORT),
    ("aft_noconv_norope", dict(prior_type="rnn_softmax", fem_dim=32,
                               qk_dim=16, use_conv=False, use_rope=False),
     {"W_k": 3.0}, RUNS_MID),
    ("mamba", dict(prior_type="mamba", ssm_rank=4), {}, RUNS_SHORT),
    ("mamba_mu_only_bidir", dict(prior_type="mamba", ssm_rank=3,
                                 use_temperature=False, use_lse=False,
                                 conv_bidirectional=True), {}, RUNS_MID),
    ("softmax_mu_only_8heads", dict(prior_type="softmax", n_embd=64,
                                    n_head=8, fem_dim=64, qk_dim=48,
                                    use_temperature=False, use_lse=False),
     {}, RUNS_MID),
    # The clip active: |V| up to ~30 with beta ~ 30 (cap/beta ~ 1.3).
    ("softmax_clip_hot", dict(prior_type="softmax", value_logexp_cap=40.0),
     {"W_v": 10.0, "_beta_param=": 30.0}, RUNS_MID),
    # A tiny temperature: beta = softplus(-14) + eps ~ 1.8e-6.
    ("linear_cold", dict(prior_type="linear"), {"_beta_param=": -14.0},
     RUNS_MID),
    # A lower cap, another eps and RoPE base, the gla prior.
    # Near-hard softmax attention: logits of tens.
    ("softmax_sharp_4heads", dict(prior_type="softmax", n_head=4,
                                  qk_dim=64, causal=False),
     {"W_q": 8.0, "W_k": 8.0}, RUNS_SHORT),
    # The TDC's cumulative log-decay falls by tens per token (c reaches
    # thousands below zero; exp(c) underflows in any precision), fractional
    # masks, λ and the gate logits saturated.
    ("gla_tdc_fast_decay", dict(prior_type="gla", conv_bidirectional=True),
     {"tdc.fwd.in_f": 40.0, "tdc.bwd.in_f": 0.05, "W_lambda": 30.0,
      "W_gate": 30.0}, [(2, 7, "frac"), (1, 200, "frac")]),
    # use_lse alone: beta = 1 and no clip, so V around +-60 stays unclipped
    # (femc clipped it at +-43 before). Spans past float32's exponent range
    # (the tilt's bands): spec_layers_adversarial.py, *_lse_only_span*.
    ("softmax_lse_only_offset", dict(prior_type="softmax",
                                     use_temperature=False, use_conv=False),
     {"W_v": 8.0, "W_v.bias+": 60.0}, [(2, 9, "right"), (1, 70, "none")]),
    # Gate logits of 1e20 (their squares overflow float32) and of 1e-3.
    ("linear_lse_only_gate_range", dict(prior_type="linear",
                                        use_temperature=False),
     {"W_gate": 1e20}, [(2, 5, "left")]),
    ("linear_lse_only_gate_tiny", dict(prior_type="linear",
                                       use_temperature=False, use_conv=False),
     {"W_gate": 1e-3}, [(2, 5, "left")]),
    ("gla_lse_only_offset", dict(prior_type="gla", use_temperature=False,
                                 use_outer_gate=False, use_conv=False),
     {"W_v": 4.0, "W_v.bias+": -50.0}, [(2, 9, "left"), (1, 70, "right")]),
    # Neither use_temperature nor use_lse: only mu, no clip, whatever eps.
    ("linear_mu_only_eps", dict(prior_type="linear", use_temperature=False,
                                use_lse=False, eps=0.25),
     {"W_v.bias+": 150.0}, [(2, 9, "right")]),
    ("mamba_lse_only_wide", dict(prior_type="mamba", use_temperature=False,
                                 use_conv=False, ssm_rank=2), {"W_v": 80.0},
     [(2, 9, "left")]),
    # use_temperature without use_lse still reads the free energy.
    ("linear_temp_only", dict(prior_type="linear", use_lse=False,
                              use_rope=False), {}, RUNS_MID),
    # Sizes from the ratios (fem_dim and qk_dim null) with 3 heads.
    ("softmax_ratio_sizes_3heads", dict(prior_type="softmax", n_embd=48,
                                        n_head=3, fem_dim=None, qk_dim=None),
     {}, RUNS_MID),
    ("mamba_ratio_sizes_hot", dict(prior_type="mamba", n_embd=40, n_head=2,
                                   fem_dim=None, qk_dim=None, ssm_rank=16),
     {"W_p": 6.0, "W_v": 4.0}, RUNS_MID),
    # One head, one sequence, past the tiles: the scans may split the
    # launch into segments run in parallel (a chunk-level prefix).
    ("linear_1head_split", dict(prior_type="linear", n_head=1, fem_dim=8,
                                qk_dim=8), {}, [(1, 517, "right")]),
    ("linear_full_1head_split", dict(prior_type="linear", causal=False,
                                     n_head=1, fem_dim=8, qk_dim=4), {},
     [(1, 517, "left")]),
    ("aft_1head_split", dict(prior_type="rnn_softmax", n_head=1, fem_dim=8,
                             qk_dim=4), {"W_k": 4.0}, [(1, 517, "holes")]),
    # dk divides 2 dv but not dv: the module's rnn_softmax sizes (qk_dim 16,
    # fem_dim 8: dk = 16 = 2 dv) and dk = 8 tiled 3 times over 2 dv = 24;
    # the X half reads its own q/k channels.
    ("aft_dk_2dv", dict(prior_type="rnn_softmax", n_head=1, fem_dim=8,
                        qk_dim=16), {"W_k": 3.0},
     RUNS_SHORT + [(1, 517, "left")]),
    ("aft_dk_tiles_2dv", dict(prior_type="rnn_softmax", fem_dim=24,
                              qk_dim=16), {}, RUNS_MID),
    ("mamba_1head_split_nomask", dict(prior_type="mamba", n_head=1,
                                      fem_dim=8, ssm_rank=2), {},
     [(1, 517, "none"), (2, 3, "none")]),
    ("softmax_nomask", dict(prior_type="softmax", use_conv=False),
     {}, [(2, 5, "none"), (1, 70, "none")]),
    # The causal flag is ignored by gla, rnn_softmax and mamba (quirk).
    ("gla_causal_false", dict(prior_type="gla", causal=False), {},
     [(2, 9, "right")]),
    ("aft_causal_false", dict(prior_type="rnn_softmax", causal=False,
                              fem_dim=32, qk_dim=16), {}, [(2, 9, "left")]),
    ("mamba_causal_false", dict(prior_type="mamba", causal=False,
                                ssm_rank=1), {}, [(2, 9, "holes")]),
    # An odd conv_hidden split in two (7 + 7), n_embd not a multiple of
    # the heads, unresolved sizes (fem_dim 18 -> 24, qk_dim 10 -> 12 with
    # 3 heads), inputs of a thousand.
    ("softmax_odd_sizes", dict(prior_type="softmax", n_embd=37, n_head=3,
                               fem_dim=18, qk_dim=10, conv_hidden=15,
                               conv_bidirectional=True), {"x=": 1000.0},
     [(2, 11, "right")]),
    # align_multiple and the ratios.
    ("linear_align", dict(prior_type="linear", n_embd=40, fem_dim=None,
                          qk_dim=None, align_multiple=6,
                          p_t_to_fem_ratio=1.5, fem_ratio=0.7), {},
     [(1, 13, "left")]),
    ("gla_cap_eps_theta", dict(prior_type="gla", value_logexp_cap=12.0,
                               eps=1e-4, rope_theta=500.0),
     {"W_v": 6.0, "_beta_param=": 4.0}, RUNS_MID),
]


def random_case(i):
    rng = np.random.default_rng(1000 + i)
    prior = ["softmax", "linear", "gla", "rnn_softmax", "mamba"][i % 5]
    H = int(rng.choice([1, 2, 4]))
    dv = int(rng.choice([4, 8, 12]))
    dk = int(rng.choice([2, 4, 8, 16]))
    if prior == "rnn_softmax":
        dk = int(rng.choice([d for d in (2, 4) if dv % d == 0]))
    temp, lse = bool(rng.random() < 0.7), bool(rng.random() < 0.7)
    cfg = dict(prior_type=prior, n_embd=int(rng.choice([16, 24, 48])),
               n_head=H, fem_dim=H * dv, qk_dim=H * dk,
               causal=bool(rng.random() < 0.6), bias=bool(rng.random() < 0.7),
               use_temperature=temp, use_lse=lse,
               use_outer_gate=bool(rng.random() < 0.7),
               use_rope=bool(rng.random() < 0.7),
               use_conv=bool(rng.random() < 0.8),
               conv_hidden=int(rng.choice([8, 16, 32])),
               conv_norm_first=bool(rng.random() < 0.7),
               conv_bidirectional=bool(rng.random() < 0.4),
               ssm_rank=int(rng.choice([1, 4, 16])))
    if prior not in ("softmax", "linear"):
        cfg["causal"] = True
    gains = {"W_v": float(rng.choice([1.0, 5.0])),
             "W_q": float(rng.choice([1.0, 3.0]))}
    gains["W_k"] = gains["W_q"]
    runs = [(int(rng.integers(1, 4)), int(rng.integers(1, 90)),
             str(rng.choice(["none", "right", "left", "allpad", "holes"])))
            for _ in range(2)]
    return (f"random{i}", cfg, gains, runs)


if FULL:
    CASES = CASES + [random_case(i) for i in range(24)]
    LONG = {"softmax_causal": (1, 1000, "right"), "mamba": (1, 600, "left"),
            "gla_saturated_decay": (2, 1100, "holes"),
            "aft": (1, 900, "right"), "linear_full_nonorm": (1, 800, "left")}
    CASES = [(n, c, g, r + [LONG[n]] if n in LONG else r)
             for n, c, g, r in CASES]


def round_channels(x, n_head, unit, multiple=1):
    """The module's rounding of fem_dim (unit 4) and qk_dim (unit 2): the
    nearest multiple of lcm(align_multiple, n_head*unit), Python's round for
    the first guess, exact ties between the guess's neighbours to the lower
    one."""
    base = np.lcm(max(int(multiple), 1), n_head * unit)
    q = max(int(round(x / base)), 1)
    cand = q * base
    low = (q - 1) * base if q > 1 else base
    high = (q + 1) * base
    if abs(cand - x) < abs(low - x) and abs(cand - x) <= abs(high - x):
        return cand
    return high if abs(high - x) <= abs(low - x) else low


def full_config(overrides):
    cfg = dict(BASE)
    cfg.update(overrides)
    return cfg


def sizes(cfg):
    """The configuration with fem_dim and qk_dim as the module resolves
    them (for the parameter shapes); cfg itself goes to the importer."""
    out = dict(cfg)
    H = cfg["n_head"]
    e = cfg.get("fem_dim")
    e = int(round(cfg.get("fem_ratio", 0.5) * cfg["n_embd"])) if e is None \
        else e
    align = cfg.get("align_multiple", 1)
    out["fem_dim"] = int(round_channels(e, H, 4, align))
    if cfg.get("prior_type") != "mamba":
        qk = cfg.get("qk_dim")
        if qk is None:
            qk = max(int(round(0.5 * cfg.get("p_t_to_fem_ratio", 4.0) *
                               out["fem_dim"])), 2 * H)
        out["qk_dim"] = int(round_channels(qk, H, 2, align))
    return out


# ------------------------------------------------------------ build + run


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Import every case, compile them together, return name -> (kernel,
    state, config)."""
    femc_bin = _femc_bin()
    tmp = tmp_path_factory.mktemp("spec_layers")
    layers, texts = {}, []
    for i, (name, overrides, gains, _) in enumerate(CASES):
        cfg = full_config(overrides)
        state = make_state(sizes(cfg), np.random.default_rng(i), gains)
        layer, text = import_case(tmp, name, cfg, state, "L_" + name,
                                  mask=not name.endswith("_nomask"))
        weights = layer.weights()
        assert sorted(weights) == sorted(state), name
        for k, v in state.items():
            np.testing.assert_array_equal(weights[k], v, err_msg=name)
        layers[name] = (state, cfg, layer)
        texts.append(text)
    libs = compile_side_by_side(femc_bin, tmp, texts, "spec_layers")
    modules = [femc.load(lib) for lib in libs]
    return {name: (modules[i % 2].kernel("L_" + name), state, cfg, layer,
                   CASES[i][2], libs[i % 2])
            for i, (name, (state, cfg, layer)) in enumerate(layers.items())}


def _check(compiled, name, runs, tmp):
    kernel, state, cfg, layer, _, lib = compiled[name]
    failures = []
    for j, (B, T, mask_kind) in enumerate(runs):
        x, mask = _inputs(name, j, B, T, cfg, compiled[name][4])
        if name.endswith("_nomask"):
            assert mask_kind == "none"
            y = kernel.run(x=x, **layer.weights())
            ref = spec_layer_ref.forward(state, cfg, x)
        else:
            y = kernel.run(x=x, attention_mask=mask, **layer.weights())
            ref = spec_layer_ref.forward(state, cfg, x, mask)
        assert y.shape == ref.shape
        scale = np.abs(ref).max()
        err = np.abs(y - ref).max() / max(scale, 1e-30)
        print(f"{name} B={B} T={T} {mask_kind}: err {err:.3g} scale {scale:.3g}")
        if not err <= TOL:
            failures.append(f"B={B} T={T} mask={mask_kind}: relative error "
                            f"{err:.3g} (max|y_ref| {scale:.3g})")
        if j == 0:
            bad = fem_run_check(lib, layer, x, None if
                                 name.endswith("_nomask") else mask, tmp)
            if bad:
                failures.append(f"B={B} T={T} mask={mask_kind}: fem-run "
                                f"--check (reference/Layer.cpp):\n{bad}")
    assert not failures, f"{name}: " + "; ".join(failures)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer(compiled, case, tmp_path):
    _check(compiled, case[0], case[3], tmp_path)


def _inputs(name, j, B, T, cfg, gains):
    rng = np.random.default_rng(zlib.crc32(f"{name}/{j}".encode()))
    x = rng.standard_normal((B, T, cfg["n_embd"])) * gains.get("x=", 1.0)
    return x.astype(np.float32), make_mask(mask_kind_of(name, j), B, T, rng)


def mask_kind_of(name, j):
    return dict((c[0], c[3]) for c in CASES)[name][j][2]


def test_python_layer_reference_agrees():
    """femc.layer_reference (python/femc/layer_reference.py, femc's float64
    numpy layer) on the whole matrix agrees with spec_layer_ref within
    1e-5 max|y| (it rounds the read's inputs to float32, as a kernel takes
    them)."""
    from femc import layer_reference
    failures = []
    for i, (name, overrides, gains, runs) in enumerate(CASES):
        cfg = full_config(overrides)
        state = make_state(sizes(cfg), np.random.default_rng(i), gains)
        for j, (B, T, _) in enumerate(runs):
            x, mask = _inputs(name, j, B, T, cfg, gains)
            ref = spec_layer_ref.forward(state, cfg, x, mask)
            y = layer_reference.forward(state, cfg, x, mask)
            err = np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30)
            if not err <= 1e-5:
                failures.append(f"{name} B={B} T={T}: {err:.3g}")
    assert not failures, "; ".join(failures)


def test_public_checkpoint():
    """spec_layer_ref reproduces the authors' module on the public
    checkpoint (y in float64), so the matrix's yardstick is the module's."""
    d = checkpoint_dir()
    state = dict(np.load(os.path.join(d, "state.npz")))
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    y = spec_layer_ref.forward(state, cfg, np.load(os.path.join(d, "x.npy")),
                               np.load(os.path.join(d, "mask.npy")))
    ref = np.load(os.path.join(d, "y.npy"))
    assert np.abs(y - ref).max() <= 1e-6 * np.abs(ref).max()


def test_rnn_softmax_dk_not_dividing_read_width_refused(tmp_path):
    """dk = 6 does not divide the read width 2 dv = 16: the module's aft read
    asserts it, femc.import refuses it naming both sizes. (The module's own
    defaults, dk 16 with dv 8, import: case aft_dk_2dv.)"""
    cfg = dict(n_embd=8, n_head=1, fem_dim=8, qk_dim=6,
               prior_type="rnn_softmax")
    state = make_state(cfg, np.random.default_rng(0), {})
    np.savez(tmp_path / "aft.npz", **state)
    (tmp_path / "aft.json").write_text(json.dumps(cfg))
    with pytest.raises(femc.LayerImportError) as info:
        femc.import_layer(str(tmp_path / "aft.npz"), str(tmp_path / "out"),
                          config=str(tmp_path / "aft.json"))
    message = str(info.value)
    assert "needs the per-head qk width dk = 6 to divide the read width " \
        "2 * dv = 16" in message
    assert "qk_dim 6 / n_head 1 gives dk = 6, fem_dim 8 / n_head 1 gives " \
        "dv = 8" in message
