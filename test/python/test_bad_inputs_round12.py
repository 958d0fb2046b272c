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


# --- thread counts: numpy integers and bools ----------------------------------

def _arrays(kernel):
    return [np.zeros([1 if s is None else s for s in a["shape"]], np.float32)
            for a in kernel.args]


@pytest.fixture
def default_threads():
    before = femc.get_num_threads()
    yield before
    femc.set_num_threads(before)


@pytest.mark.parametrize("value", [True, False])
def test_thread_count_that_is_a_bool(kernels_lib, default_threads, value):
    # Was: accepted, True as one thread and False as one per core, without a
    # word (femc.compile(threads=True) is refused).
    with pytest.raises(TypeError) as e:
        femc.set_num_threads(value)
    assert str(e.value) == (
        f"femc.set_num_threads: threads must be an int, got bool ({value}); "
        "give the number of threads")
    assert femc.get_num_threads() == default_threads
    with pytest.raises(TypeError) as e:
        femc.load(kernels_lib, threads=value)
    assert str(e.value) == (
        f"femc.load: threads must be an int, got bool ({value}); give the "
        "number of threads")
    kernel = femc.load(kernels_lib).kernel("softmax_causal")
    out = _arrays(kernel)
    with pytest.raises(TypeError) as e:
        kernel(*out, max_threads=value)
    assert str(e.value) == (
        f"kernel 'softmax_causal': max_threads must be an int, got bool "
        f"({value}); give the number of threads")


@pytest.mark.parametrize("make", [np.int64, np.int32, np.uint8])
def test_thread_count_that_is_a_numpy_integer(kernels_lib, default_threads,
                                              make):
    # Was: femc.set_num_threads / femc.load: nanobind's "incompatible
    # function arguments"; max_threads: "max_threads must be an int, got
    # int64".
    femc.set_num_threads(make(2))
    assert femc.get_num_threads() == 2
    module = femc.load(kernels_lib, threads=make(3))
    assert module.num_threads == 3
    kernel = module.kernel("softmax_causal")
    arrays = _arrays(kernel)
    kernel(*arrays, max_threads=make(1))
    kernel.launch(*arrays, max_threads=make(2))
    with pytest.raises(ValueError, match=r"^femc.set_num_threads: threads is "
                       r"2000, expected 0 \(one per core\) or 1 to 1024"):
        femc.set_num_threads(np.int64(2000))


@pytest.mark.parametrize("value, name", [(2.0, "float"), ("4", "str"),
                                         (np.float32(2), "float32")])
def test_thread_count_of_another_type_names_it(kernels_lib, value, name):
    with pytest.raises(TypeError) as e:
        femc.set_num_threads(value)
    assert str(e.value) == (
        f"femc.set_num_threads: threads must be an int, got {name}")
    with pytest.raises(TypeError) as e:
        femc.load(kernels_lib, threads=value)
    assert str(e.value) == f"femc.load: threads must be an int, got {name}"


# --- femc.import: layer names femc refuses ------------------------------------

@pytest.mark.parametrize("name, why", [
    ("exp", "it is a name of the C or POSIX library"),
    ("main", "it is a name of the C or POSIX library"),
    ("int", "it is a C or C++ keyword"),
    ("layer_t", "names ending in _t are reserved for types (POSIX)"),
    ("femc_x", "the prefixes femc_ and femrt_ belong to femc and libfemrt"),
    ("a__b", "names containing '__' are reserved in C++"),
    ("INT8_MAX", "it is a <stdint.h> macro"),
])
def test_layer_name_femc_refuses(name, why, tmp_path):
    # Was: imported; femc then refused the written .mlir ("ck.mlir:5:1:
    # error: femc: function name 'exp' cannot be a kernel's C entry point:
    # it is a name of the C or POSIX library; ...").
    with pytest.raises(LayerImportError) as e:
        femc.import_layer(make_params(CONFIG), str(tmp_path / "o"),
                          config=CONFIG, name=name)
    assert str(e.value) == (
        f"layer name '{name}' cannot be the layer's C function, which femc "
        f"exports: {why}; give another with --name (name= of "
        "femc.import_layer)")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("stem, name", [
    ("exp", "fem_exp"), ("main", "fem_main"), ("femc_run", "fem_femc_run"),
    ("model", "model"), ("9x", "fem_9x"), ("x-y", "x_y")])
def test_default_name_from_a_stem_femc_refuses(stem, name, tmp_path):
    # Was: exp.npz imported as the layer @exp, which femc refuses.
    path = tmp_path / (stem + ".npz")
    np.savez(path, **make_params(CONFIG))
    layer = femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)
    assert layer.name == name
    assert os.path.isfile(tmp_path / "o" / (name + ".mlir"))


def test_default_name_still_refused_names_the_option(tmp_path):
    path = tmp_path / "layer_t.npz"
    np.savez(path, **make_params(CONFIG))
    with pytest.raises(LayerImportError, match=r"^layer name 'fem_layer_t' "
                       r"cannot be the layer's C function, which femc "
                       r"exports: names ending in _t are reserved for types "
                       r"\(POSIX\); give another with --name"):
        femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)


def test_name_rules_are_femcs():
    # The importer's lists are driver/CText.cpp's (whyNotCName).
    from femc import importer
    root = os.path.dirname(os.path.dirname(HERE))
    with open(os.path.join(root, "driver", "CText.cpp")) as f:
        text = f.read()
    import re

    def listed(array):
        body = re.search(array + r"\[\] = \{(.*?)\};", text, re.S).group(1)
        return re.findall(r'"([^"]*)"', body)

    assert set(listed("kKeywords")) == set(importer._C_KEYWORDS)
    assert listed("kMath") == list(importer._C_MATH)
    assert set(listed("kNames")) == set(importer._C_NAMES)
