"""Random FreeEnergyMixer layers for the import tests (numpy only).

make_params(config, seed) draws every parameter of the module's state_dict
in its own shapes (femc.layer_config.expected_parameters), with scales that
keep the layer away from trivial values: the TDC's out_proj is drawn too
(the module initialises it to zero), beta_raw around the module's 1.8.
"""

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
