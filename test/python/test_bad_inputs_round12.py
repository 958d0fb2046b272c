"""Bad inputs, round 12 (docs/bad-inputs.md): femc.import's configuration
values femc itself refuses (was: imported, then the written .mlir refused
by femc or not parsed at all, or an OverflowError traceback)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import femc
from femc import LayerImportError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from layer_cases import make_params  # noqa: E402

CONFIG = dict(n_embd=32, n_head=2, conv_hidden=16, prior_type="gla")


# --- femc.import: configuration values femc refuses -------------------------

@pytest.mark.parametrize("key, value, message", [
    # Was: imported; femc then: "'fem.layer': key 'softmax_backend' must be
    # one of auto, flash, naive; found 'bogus'" at the written .mlir.
    ("softmax_backend", "bogus",
     "configuration key 'softmax_backend' must be one of auto, flash, naive, "
     "found 'bogus'"),
    # Was: imported; femc: "key 'dropout' must be in [0, 1]; found 5".
    ("dropout", 5,
     "configuration key 'dropout' must be from 0 to 1, found 5"),
    # Was: imported (the cap is read only with use_temperature); femc:
    # "key 'value_logexp_cap' must be a positive finite number; found 0".
    ("value_logexp_cap", 0,
     "configuration key 'value_logexp_cap' must be a positive number, found "
     "0"),
    # Was: imported, written as `beta_max_init = inf.0 : f64`, which MLIR
    # does not parse ("error: expected attribute value").
    ("beta_max_init", float("inf"),
     "configuration key 'beta_max_init' must be a finite number, found inf "
     "(a JSON number beyond float64's range, such as 1e400, reads as "
     "infinity)"),
    # Was: OverflowError: cannot convert float infinity to integer.
    ("fem_ratio", float("inf"),
     "configuration key 'fem_ratio' must be a finite number, found inf (a "
     "JSON number beyond float64's range, such as 1e400, reads as "
     "infinity)"),
    # Was: ValueError: cannot convert float NaN to integer.
    ("p_t_to_fem_ratio", float("nan"),
     "configuration key 'p_t_to_fem_ratio' must be a finite number, found "
     "nan"),
    # Was: resolved to the smallest E; femc's reading refuses it.
    ("fem_ratio", -3,
     "configuration key 'fem_ratio' must be a positive number below 1e6 when "
     "fem_dim is null (the module sizes E = round(fem_ratio * n_embd)), "
     "found -3"),
    # Was: imported; femc: "key 'conv_hidden' must be from 2 to 16777216".
    ("conv_hidden", 1,
     "configuration key 'conv_hidden' must be at least 2 with "
     "conv_bidirectional (each direction gets conv_hidden // 2 channels), "
     "found 1"),
    # Was: every parameter "has shape ..., the configuration expects
    # (100000000000000000000000, ...)", 25 lines of 24-digit sizes.
    ("n_embd", 10 ** 23,
     "configuration key 'n_embd' must be at most 16777216 (2^24, the largest "
     "size femc's layers take), found 100000000000000000000000"),
])
def test_config_values_femc_refuses(key, value, message, tmp_path):
    config = dict(CONFIG, **{key: value})
    if key == "conv_hidden":
        config["conv_bidirectional"] = True
    params = make_params(CONFIG)
    with pytest.raises(LayerImportError) as e:
        femc.import_layer(params, str(tmp_path / "o"), config=config)
    assert str(e.value) == message
    assert not (tmp_path / "o").exists()


def test_config_1e400_through_the_cli_has_no_traceback(tmp_path):
    # JSON's 1e400 reads as inf: fem_ratio sized E with int(round(inf)),
    # an OverflowError traceback and exit 1 from the command line.
    ck = tmp_path / "ck.npz"
    np.savez(ck, **make_params(CONFIG))
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(CONFIG)[:-1] + ', "fem_ratio": 1e400}')
    done = subprocess.run(
        [sys.executable, "-m", "femc.import", str(ck), "--config", str(cfg),
         "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == (
        "femc.import: error: configuration key 'fem_ratio' must be a finite "
        "number, found inf (a JSON number beyond float64's range, such as "
        "1e400, reads as infinity)\n")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key, value", [
    ("softmax_backend", "FLASH"), ("softmax_backend", "naive"),
    ("dropout", 1), ("dropout", 0.1), ("fem_ratio", 1e300),
    ("value_logexp_cap", 43),
])
def test_config_values_femc_takes_still_import(key, value, tmp_path):
    # fem_ratio is not read when fem_dim is given (its value is kept).
    config = dict(CONFIG, fem_dim=16, **{key: value})
    layer = femc.import_layer(make_params(CONFIG), str(tmp_path / "o"),
                              config=config)
    assert layer.config[key] == value
