"""The configuration of one FreeEnergyMixer layer and the parameters it implies.

The authors' PyTorch module (``FreeEnergyMixer`` in ``fem.py``, built from a
``FreeEnergyMixerConfig``) decides its sizes in ``__init__``: the value width
E from ``fem_dim`` or ``fem_ratio``, the query/key width from ``qk_dim`` or
``p_t_to_fem_ratio``, both rounded to whole heads. This module repeats that
arithmetic (docs/semantics.md section 7), checks a configuration's keys and
types, and lists every parameter of the module's ``state_dict`` with its
shape, so an importer can check a checkpoint against the configuration.

Plain Python (numpy only for rope_inv_freq): used by :mod:`femc.importer`
and :mod:`femc.layer_reference`.
"""

import math
from collections import OrderedDict

__all__ = [
    "LayerImportError",
    "CONFIG_DEFAULTS",
    "PRIORS",
    "resolve_config",
    "expected_parameters",
]


class LayerImportError(ValueError):
    """A checkpoint or configuration femc cannot import; the text says why."""


# FreeEnergyMixerConfig's fields and defaults (n_embd and n_head have none).
# `align_multiple` is not a dataclass field, but __init__ reads it with
# getattr(cfg, "align_multiple", 1), so a configuration may carry it.
CONFIG_DEFAULTS = OrderedDict([
    ("n_embd", None),
    ("n_head", None),
    ("fem_dim", None),
    ("fem_ratio", 0.5),
    ("qk_dim", None),
    ("p_t_to_fem_ratio", 4.0),
    ("prior_type", "softmax"),
    ("softmax_backend", "auto"),
    ("dropout", 0.0),
    ("causal", True),
    ("bias", True),
    ("beta_max_init", 1.8),
    ("value_logexp_cap", 40.0),
    ("eps", 1e-6),
    ("use_temperature", True),
    ("use_lse", True),
    ("use_outer_gate", True),
    ("use_rope", True),
    ("rope_theta", 10000.0),
    ("use_conv", True),
    ("conv_hidden", 64),
    ("conv_norm_first", True),
    ("conv_bidirectional", False),
    ("ssm_rank", 16),
    ("mamba_normalize", True),
    ("align_multiple", 1),
])

_INT_KEYS = {"n_embd", "n_head", "fem_dim", "qk_dim", "conv_hidden",
             "ssm_rank", "align_multiple"}
_FLOAT_KEYS = {"fem_ratio", "p_t_to_fem_ratio", "dropout", "beta_max_init",
               "value_logexp_cap", "eps", "rope_theta"}
_BOOL_KEYS = {"causal", "bias", "use_temperature", "use_lse",
              "use_outer_gate", "use_rope", "use_conv", "conv_norm_first",
              "conv_bidirectional", "mamba_normalize"}
_STR_KEYS = {"prior_type", "softmax_backend"}
_NULLABLE = {"fem_dim", "qk_dim"}

# The module's prior_type -> the fem dialect's prior kind.
PRIORS = OrderedDict([
    ("softmax", "softmax"),
    ("linear", "linear"),
    ("gla", "gla"),
    ("rnn_softmax", "aft"),
    ("mamba", "ssm"),
])

# The fem kernels' clip bound must lie in [1e-5, 43] (docs/dialect.md).
MAX_CAP = 43.0


def _round_channels(x, multiple, n_head, per_head_unit):
    """fem.py's _round_channels in its default "nearest" mode: the multiple
    of lcm(multiple, n_head * per_head_unit) closest to x (ties upward),
    at least one such multiple."""
    n_head = max(int(n_head), 1)
    m = 1 if multiple is None or multiple <= 0 else int(multiple)
    base_req = n_head * max(int(per_head_unit), 1)
    base = m * base_req // math.gcd(m, base_req)
    if base <= 0:
        base = base_req
    q = max(int(round(x / base)), 1)   # Python's round: ties to even
    cand = q * base
    low = (q - 1) * base if q > 1 else base
    high = (q + 1) * base
    if abs(cand - x) < abs(low - x) and abs(cand - x) <= abs(high - x):
        return cand
    return high if abs(high - x) <= abs(low - x) else low


def _check_types(cfg):
    for key, value in cfg.items():
        if value is None:
            if key in _NULLABLE:
                continue
            raise LayerImportError(
                f"configuration key '{key}' is null; it must be "
                f"{_kind(key)}")
        ok = (
            (key in _INT_KEYS and isinstance(value, int)
             and not isinstance(value, bool))
            or (key in _FLOAT_KEYS and isinstance(value, (int, float))
                and not isinstance(value, bool))
            or (key in _BOOL_KEYS and isinstance(value, bool))
            or (key in _STR_KEYS and isinstance(value, str)))
        if not ok:
            raise LayerImportError(
                f"configuration key '{key}' must be {_kind(key)}, found "
                f"{value!r} ({type(value).__name__})")


# The largest size femc's layers take (reference/Layer.cpp, resolve: the
# products of larger sizes would overflow long before such a layer ran).
MAX_SIZE = 1 << 24
# The module's softmax backends (inference reads the same softmax with each).
SOFTMAX_BACKENDS = ("auto", "flash", "naive")


def _check_values(cfg):
    """The values femc's own reading of the configuration refuses
    (reference/Layer.cpp's resolve, which checks the fem.layer attribute
    the importer writes): they used to be imported, and the .mlir written
    was then refused by femc (`error: 'fem.layer': key 'softmax_backend'
    must be one of auto, flash, naive`), or did not parse at all (a float
    key of 1e400, read as inf, written as `inf.0`), or sized E from an
    infinite fem_ratio (OverflowError)."""
    for key in _FLOAT_KEYS:
        if not math.isfinite(cfg[key]):
            raise LayerImportError(
                f"configuration key '{key}' must be a finite number, found "
                f"{cfg[key]!r}" + (
                    " (a JSON number beyond float64's range, such as 1e400, "
                    "reads as infinity)" if math.isinf(cfg[key]) else ""))
    for key in ("n_embd", "n_head", "conv_hidden", "ssm_rank", "fem_dim",
                "qk_dim"):
        if cfg[key] is not None and cfg[key] > MAX_SIZE:
            raise LayerImportError(
                f"configuration key '{key}' must be at most {MAX_SIZE} "
                f"(2^24, the largest size femc's layers take), found "
                f"{cfg[key]}")
    if cfg["conv_bidirectional"] and cfg["conv_hidden"] < 2:
        raise LayerImportError(
            f"configuration key 'conv_hidden' must be at least 2 with "
            f"conv_bidirectional (each direction gets conv_hidden // 2 "
            f"channels), found {cfg['conv_hidden']}")
    if abs(cfg["align_multiple"]) > MAX_SIZE:
        raise LayerImportError(
            f"configuration key 'align_multiple' must be from -{MAX_SIZE} to "
            f"{MAX_SIZE}, found {cfg['align_multiple']}")
    if str(cfg["softmax_backend"]).lower() not in SOFTMAX_BACKENDS:
        raise LayerImportError(
            f"configuration key 'softmax_backend' must be one of "
            f"{', '.join(SOFTMAX_BACKENDS)}, found {cfg['softmax_backend']!r}")
    if not 0 <= cfg["dropout"] <= 1:
        raise LayerImportError(
            f"configuration key 'dropout' must be from 0 to 1, found "
            f"{cfg['dropout']!r}")
    for key in ("eps", "value_logexp_cap", "rope_theta"):
        if not cfg[key] > 0:
            raise LayerImportError(
                f"configuration key '{key}' must be a positive number, found "
                f"{cfg[key]!r}")
    ratios = [("fem_ratio", "fem_dim", "E = round(fem_ratio * n_embd)")]
    if cfg["prior_type"] != "mamba":
        ratios.append(("p_t_to_fem_ratio", "qk_dim",
                       "H * dk from round(p_t_to_fem_ratio * E / 2)"))
    for key, size, formula in ratios:
        if cfg[size] is None and not 0 < cfg[key] < 1e6:
            raise LayerImportError(
                f"configuration key '{key}' must be a positive number below "
                f"1e6 when {size} is null (the module sizes {formula}), "
                f"found {cfg[key]!r}")


def _kind(key):
    if key in _INT_KEYS:
        return "an integer" + (" or null" if key in _NULLABLE else "")
    if key in _FLOAT_KEYS:
        return "a number"
    if key in _BOOL_KEYS:
        return "true or false"
    return "a string"


def resolve_config(config):
    """Check a FreeEnergyMixerConfig given as a mapping and resolve its sizes.

    Returns an OrderedDict with every field (defaults filled in), fem_dim
    set to E (the value width actually used) and qk_dim to H*dk (the total
    query width actually used, 0 for mamba), plus the derived entries
    ``d_k``, ``d_v`` (per head) and ``fem_prior`` (the fem dialect's prior
    kind). Raises LayerImportError naming the key for an unknown key, a
    missing n_embd/n_head, a wrong type or an unusable value.
    """
    if not isinstance(config, dict):
        raise LayerImportError(
            "the configuration must be a JSON object of FreeEnergyMixerConfig "
            f"fields, found {type(config).__name__}")
    for key in config:
        if key not in CONFIG_DEFAULTS:
            raise LayerImportError(
                f"unknown configuration key '{key}'; FreeEnergyMixerConfig "
                f"has {', '.join(CONFIG_DEFAULTS)}")
    for key in ("n_embd", "n_head"):
        if config.get(key) is None:
            raise LayerImportError(
                f"the configuration has no '{key}' (FreeEnergyMixerConfig "
                "requires n_embd and n_head)")
    cfg = OrderedDict(CONFIG_DEFAULTS)
    cfg.update(config)
    _check_types(cfg)
    for key in ("n_embd", "n_head", "conv_hidden", "ssm_rank", "fem_dim",
                "qk_dim"):
        if cfg[key] is not None and cfg[key] < 1:
            raise LayerImportError(
                f"configuration key '{key}' must be at least 1, found "
                f"{cfg[key]}")
    prior = cfg["prior_type"].lower()
    if prior not in PRIORS:
        raise LayerImportError(
            f"unknown prior_type '{cfg['prior_type']}'; the module knows "
            f"{', '.join(PRIORS)}")
    cfg["prior_type"] = prior
    _check_values(cfg)
    D, H = cfg["n_embd"], cfg["n_head"]
    align = cfg["align_multiple"]
    if cfg["fem_dim"] is None:
        e_target = int(round(cfg["fem_ratio"] * D))
    else:
        e_target = int(cfg["fem_dim"])
    E = _round_channels(e_target, align, H, 4)
    dv = E // H
    if prior != "mamba":
        if cfg["qk_dim"] is not None:
            qk_total = _round_channels(int(cfg["qk_dim"]), align, H, 2)
        else:
            qk_target = max(int(round(0.5 * cfg["p_t_to_fem_ratio"] * E)),
                            2 * H)
            qk_total = _round_channels(qk_target, align, H, 2)
        dk = qk_total // H
        if prior == "rnn_softmax" and (2 * dv) % dk != 0:
            # The module's aft read (_aft_read_expand) tiles q and k over the
            # concatenated [V | X], 2 dv channels, and asserts that dk
            # divides that width (dk is not lowered; its defaults give dk =
            # 2 dv, which femc reads).
            raise LayerImportError(
                f"prior_type 'rnn_softmax' needs the per-head qk width dk = "
                f"{dk} to divide the read width 2 * dv = {2 * dv} (the module "
                f"tiles q and k over [V | X] and refuses it too); qk_dim "
                f"{qk_total} / n_head {H} gives dk = {dk}, fem_dim {E} / n_head "
                f"{H} gives dv = {dv}")
    else:
        dk = 0
    cfg["fem_dim"] = E
    cfg["qk_dim"] = H * dk
    cfg["d_k"] = dk
    cfg["d_v"] = dv
    cfg["fem_prior"] = PRIORS[prior]
    return cfg


def rope_inv_freq(theta, dk):
    """RoPE's inverse frequencies, section 6: theta^(-2i/dk) for i < dk/2,
    in float64 (as float64 numpy values). Each is one scalar libm pow (not
    numpy's vectorised power, whose SIMD paths differ in the last bit
    between AVX-512 and AVX2 hosts), so the generated layers and examples
    are the same on every host; reference/Layer.cpp takes the same pow.
    The authors' module keeps them in a float32 buffer; rounding them so
    moved t * inv_freq by up to t * 6e-8 rad, which sharp layers turn into
    up to 1.6e-3 max|y| against the specification's exact frequencies at
    T = 257..555 with rope_theta 0.5 and 3.7 (test/python/layer_fuzz.py)."""
    import numpy as np
    return np.array([math.pow(float(theta), -2.0 * i / dk)
                     for i in range(dk // 2)], dtype=np.float64)


def tdc_width(cfg):
    """The width of the time-decay conditioning's output (out_proj's
    columns): s_v, s_q, s_k, then s_lambda, s_gate and gla's ignored part."""
    E, H, dk = cfg["fem_dim"], cfg["n_head"], cfg["d_k"]
    width = E + 2 * H * dk
    if cfg["use_temperature"] or cfg["use_lse"]:
        width += E
    if cfg["use_outer_gate"]:
        width += E
    if cfg["prior_type"] == "gla":
        width += H
    return width


def tdc_hidden(cfg):
    """The hidden width of each TDC branch (halved when bidirectional)."""
    h = cfg["conv_hidden"]
    return h // 2 if cfg["conv_bidirectional"] else h


def tdc_branches(cfg):
    return ["fwd", "bwd"] if cfg["conv_bidirectional"] else ["fwd"]


def expected_parameters(cfg):
    """Every parameter of the module's state_dict for a resolved
    configuration: an OrderedDict name -> shape tuple, in the module's
    registration order."""
    D, H = cfg["n_embd"], cfg["n_head"]
    E, dk = cfg["fem_dim"], cfg["d_k"]
    bias = cfg["bias"]
    prior = cfg["prior_type"]
    params = OrderedDict()

    def linear(name, out_features, in_features):
        params[name + ".weight"] = (out_features, in_features)
        if bias:
            params[name + ".bias"] = (out_features,)

    linear("W_v", E, D)
    linear("W_o", D, E)
    if prior != "mamba":
        linear("W_q", H * dk, D)
        linear("W_k", H * dk, D)
    if prior == "gla":
        linear("W_decay", H, D)
    if prior == "mamba":
        linear("W_p", E + 2 * cfg["ssm_rank"], D)
        params["A_log"] = (E, cfg["ssm_rank"])
        params["D_diag"] = (E,)
    if cfg["use_temperature"] or cfg["use_lse"]:
        linear("W_lambda", E, D)
    if cfg["use_outer_gate"]:
        linear("W_gate", E, D)
    params["_beta_param"] = (E,)
    if cfg["use_conv"]:
        h = tdc_hidden(cfg)
        width = tdc_width(cfg)
        for branch in tdc_branches(cfg):
            p = f"tdc.{branch}."
            if cfg["conv_norm_first"]:
                params[p + "norm.weight"] = (D,)
                if bias:
                    params[p + "norm.bias"] = (D,)
            linear(p + "in_f", h, D)
            linear(p + "x_f", h, D)
            linear(p + "shortcut", h, D)
            params[p + "out_proj"] = (h, width)
            params[p + "ln.weight"] = (h,)
            if bias:
                params[p + "ln.bias"] = (h,)
    return params


def describe_sizes(cfg):
    """One phrase with the sizes a configuration resolves to (for messages)."""
    text = (f"n_embd {cfg['n_embd']}, n_head {cfg['n_head']}, prior_type "
            f"'{cfg['prior_type']}', E = fem_dim {cfg['fem_dim']} "
            f"(dv {cfg['d_v']} per head)")
    if cfg["d_k"]:
        text += f", qk_dim {cfg['qk_dim']} (dk {cfg['d_k']} per head)"
    text += f", bias {'true' if cfg['bias'] else 'false'}"
    if cfg["use_conv"]:
        text += (f", use_conv with conv_hidden {cfg['conv_hidden']}"
                 f"{' (bidirectional)' if cfg['conv_bidirectional'] else ''}")
    return text
