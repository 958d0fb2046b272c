"""Bad inputs, round 13 (docs/bad-inputs.md), and the usability fixes of the
same round: bfloat16 kernels from numpy without ml_dtypes (uint16 bit
patterns, femc.bfloat16_bits / femc.bfloat16_values), fem-run's hint for a
dynamic dimension no input fixes, and the malformed inputs listed in
docs/bad-inputs.md with "round 13" tests."""

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import femc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NAMES = ["q", "k", "v", "beta_raw", "lam", "gate"]
B, T, H, D = 1, 8, 2, 16


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    q, k, v, lam, gate = [rng.standard_normal((B, T, H, D)).astype(np.float32)
                          for _ in range(5)]
    beta = np.full(H * D, 0.5, np.float32)
    return [q, k, v, beta, lam, gate]


@pytest.fixture(scope="module")
def bf16_kernel(femc_bin, tmp_path_factory):
    model = os.path.join(ROOT, "test", "tune", "Inputs", "lowp_small.mlir")
    out = tmp_path_factory.mktemp("lowp13")
    subprocess.run([femc_bin, model, "-o", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return femc.load(str(out / "lowp_small.so"))["softmax_bf16"]


# --- bfloat16 from numpy without ml_dtypes -----------------------------------

def test_bfloat16_bits_round_to_nearest_even():
    # Exact cases: ties to even, the carry into the exponent, beyond the
    # range to Inf, NaN kept quiet with its sign, -0.
    x = np.array([1.0, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8,
                  1.0 + 2.0 ** -8 + 2.0 ** -20, 3.4e38, np.inf, -np.inf,
                  np.nan, -0.0, 2.0 - 2.0 ** -9], np.float32)
    neg_nan = np.array([0xFFC00001], np.uint32).view(np.float32)
    bits = femc.bfloat16_bits(np.concatenate([x, neg_nan]))
    assert bits.dtype == np.uint16 and bits.flags.c_contiguous
    assert [hex(b) for b in bits] == [
        "0x3f80", "0x3f80", "0x3f82", "0x3f81", "0x7f80", "0x7f80", "0xff80",
        "0x7fc0", "0x8000", "0x4000", "0xffc0"]
    values = femc.bfloat16_values(bits[:4])
    assert values.dtype == np.float32
    assert list(values) == [1.0, 1.0, 1.0 + 2 ** -6, 1.0 + 2 ** -7]
    with pytest.raises(TypeError, match="expected a numpy uint16 array"):
        femc.bfloat16_values(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="expected real numbers"):
        femc.bfloat16_bits(np.array(["a"]))


def test_uint16_bit_patterns_run_a_bfloat16_kernel(bf16_kernel, monkeypatch):
    # Was: "expected dtype bfloat16, got uint16" for kernel(*arrays), and
    # run() "cannot allocate output 'out' of dtype bfloat16" without
    # ml_dtypes: torch was the only way.
    import fem_reference  # examples/embed_python: the float64 reference
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # import fails
    bits = {n: femc.bfloat16_bits(a) for n, a in zip(NAMES, _inputs(3))}
    out = bf16_kernel.run(**bits)
    assert out.dtype == np.uint16 and out.shape == (B, T, H, D)
    ref = fem_reference.softmax_fem(
        *[femc.bfloat16_values(bits[n]).astype(np.float64) for n in NAMES])
    got = femc.bfloat16_values(out).astype(np.float64)
    assert np.max(np.abs(got - ref)) <= 2 ** -7 * np.max(np.abs(ref))
    # Destination-passing with a preallocated uint16 output: the same bits.
    again = np.empty((B, T, H, D), np.uint16)
    bf16_kernel(*[bits[n] for n in NAMES], again)
    np.testing.assert_array_equal(again, out)


def test_float_array_for_a_bfloat16_argument_names_the_ways(bf16_kernel):
    # Was: "expected dtype bfloat16, got float32" and nothing on how numpy
    # can pass bfloat16 at all.
    arrays = [femc.bfloat16_bits(a) for a in _inputs()]
    arrays[2] = _inputs()[2]  # v as float32
    with pytest.raises(femc.Error) as e:
        bf16_kernel(*arrays, np.empty((B, T, H, D), np.uint16))
    assert str(e.value) == (
        "kernel 'softmax_bf16': argument 'v' (#2): expected dtype bfloat16, "
        "got float32; numpy has no bfloat16: pass an ml_dtypes.bfloat16 "
        "array (a.astype(ml_dtypes.bfloat16); pip install ml_dtypes), a "
        "numpy uint16 array of the bit patterns (femc.bfloat16_bits(a), "
        "rounded to nearest even; femc.bfloat16_values(bits) reads them back "
        "as float32) or a torch.bfloat16 tensor")
    # A float32 output likewise.
    with pytest.raises(femc.Error, match="argument 'out' .*expected dtype "
                       "bfloat16, got float32; numpy has no bfloat16"):
        bf16_kernel(*[femc.bfloat16_bits(a) for a in _inputs()],
                    np.empty((B, T, H, D), np.float32))


def test_run_of_float_inputs_without_ml_dtypes_says_what_to_pass(
        bf16_kernel, monkeypatch):
    # Was: "run() cannot allocate output 'out' of dtype bfloat16: numpy has
    # no bfloat16 without the ml_dtypes package ... or preallocate the
    # outputs, e.g. torch.empty(...)": float32 inputs are refused first now,
    # naming the input and every way numpy can pass bfloat16.
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)
    with pytest.raises(femc.Error, match=r"^kernel 'softmax_bf16': argument "
                       r"'q' \(#0\): expected dtype bfloat16, got float32; "
                       r"numpy has no bfloat16: pass an ml_dtypes.bfloat16 "
                       r"array .* a numpy uint16 array of the bit patterns "
                       r"\(femc.bfloat16_bits\(a\)"):
        bf16_kernel.run(**dict(zip(NAMES, _inputs())))


def test_run_of_torch_bfloat16_inputs_without_ml_dtypes(bf16_kernel,
                                                        monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)
    inputs = {n: torch.from_numpy(a).to(torch.bfloat16)
              for n, a in zip(NAMES, _inputs())}
    with pytest.raises(TypeError) as e:
        bf16_kernel.run(**inputs)
    assert str(e.value) == (
        "kernel 'softmax_bf16': run() cannot allocate output 'out' of dtype "
        "bfloat16: numpy has no bfloat16 without the ml_dtypes package (pip "
        "install ml_dtypes); or give every bfloat16 input as a numpy uint16 "
        "array of the bit patterns (femc.bfloat16_bits(a)), and run() "
        "returns the outputs' bits as uint16 too (femc.bfloat16_values(out) "
        "reads them as float32); or preallocate the outputs, e.g. "
        "torch.empty(..., dtype=torch.bfloat16), and call kernel(*arrays)")


# --- femc.import_layer: argument types, empty checkpoints, non-arrays ---------

sys.path.insert(0, HERE)
from layer_cases import make_params  # noqa: E402

LAYER = dict(n_embd=32, n_head=2, conv_hidden=16, prior_type="gla")


def _import_refused(params, tmp_path, **kw):
    kw.setdefault("config", LAYER)
    with pytest.raises(femc.LayerImportError) as e:
        femc.import_layer(params, str(tmp_path / "out"), **kw)
    assert not (tmp_path / "out").exists()  # nothing written
    return str(e.value)


@pytest.mark.parametrize("kw, message", [
    # Was: TypeError "expected string or bytes-like object, got 'int'".
    (dict(name=5), "name must be a str (the layer function's name), found "
     "int 5"),
    # Was: name="" taken as no name: the layer written as fem_layer.
    (dict(name=""), "layer name '' must be ASCII letters, digits and '_', "
     "starting with a letter (it becomes a C function)"),
    # Was: TypeError "startswith first arg must be str or a tuple of str,
    # not bytes".
    (dict(prefix=b"blocks.0."), "prefix must be a str such as "
     "'blocks.3.attn.', found bytes b'blocks.0.'"),
    # Was: TypeError "expected str, bytes or os.PathLike object, not list".
    (dict(config=[32, 2]), "config must be a mapping of FreeEnergyMixerConfig"
     " fields or the path of a JSON file, found list [32, 2]"),
])
def test_import_layer_argument_types_are_named(tmp_path, kw, message):
    assert _import_refused(make_params(LAYER), tmp_path, **kw) == message


def test_import_layer_checkpoint_of_another_type(tmp_path):
    # Was: TypeError "expected str, bytes or os.PathLike object, not int"
    # (from os.fspath).
    assert _import_refused(5, tmp_path) == (
        "checkpoint must be a path (.pt, .safetensors, .npz) or a state_dict "
        "(a mapping name -> array), found int 5")


def test_import_layer_takes_any_mapping(tmp_path):
    # A read-only mapping (types.MappingProxyType) for the state_dict and
    # the configuration (was: TypeError from os.fspath).
    import types
    params = make_params(LAYER)
    layer = femc.import_layer(types.MappingProxyType(params),
                              str(tmp_path / "out"),
                              config=types.MappingProxyType(LAYER))
    np.testing.assert_array_equal(
        np.load(os.path.join(layer.weights_dir, "W_q.weight.npy")),
        params["W_q.weight"])


@pytest.mark.parametrize("value, found", [
    (None, "NoneType None"), ("abc", "str 'abc'"), ({"a": 1}, "dict {'a': 1}"),
])
def test_parameter_that_is_not_an_array(tmp_path, value, found):
    # Was: "parameter 'W_q.weight' has shape (), the configuration expects
    # (32, 32)", as if it were an array of the wrong shape.
    params = make_params(LAYER)
    params["W_q.weight"] = value
    assert _import_refused(params, tmp_path) == (
        f"parameter 'W_q.weight' is not an array: found {found}")


def test_empty_state_dict_says_so(tmp_path):
    # Was: 26 lines of "missing parameter ...", hiding that nothing was read.
    msg = _import_refused({}, tmp_path)
    assert msg == (
        "the checkpoint holds no parameters (an empty state_dict); the "
        "configuration (n_embd 32, n_head 2, prior_type 'gla', E = fem_dim 16 "
        "(dv 8 per head), qk_dim 32 (dk 16 per head), bias true, use_conv "
        "with conv_hidden 16) expects 26, e.g. 'W_v.weight', 'W_v.bias', "
        "'W_o.weight'")


def test_npz_with_only_its_configuration(tmp_path):
    import json
    path = tmp_path / "only_config.npz"
    np.savez(path, __config__=json.dumps(LAYER))
    run = subprocess.run([sys.executable, "-m", "femc.import", str(path),
                          "-o", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.startswith(
        "femc.import: error: the checkpoint holds no parameters (an empty "
        "state_dict)")
    assert "Traceback" not in run.stderr


def test_int_keys_with_a_prefix(tmp_path):
    # Was: AttributeError "'int' object has no attribute 'startswith'".
    params = make_params(LAYER)
    params[5] = np.zeros(3, np.float32)
    msg = _import_refused(params, tmp_path, prefix="W_")
    assert msg.startswith("the checkpoint does not match its configuration")


# --- femc.compile: a model's text, None, a file as out_dir ------------------

MODEL = os.path.join(ROOT, "examples", "softmax_fem.mlir")


def test_compile_of_model_text(tmp_path, femc_bin):
    # Was: "femc failed (exit status 1) compiling <the whole model>:
    # femc: error: cannot open input file '<the whole model>': ...".
    with open(MODEL) as f:
        text = f.read()
    with pytest.raises(femc.CompileError) as e:
        femc.compile(text, str(tmp_path / "out"), femc=femc_bin)
    assert str(e.value) == (
        f"model: expected the path of a .mlir file, found text of "
        f"{text.count(chr(10)) + 1} lines (MLIR?); write it to a file and "
        "pass its path, e.g. pathlib.Path('model.mlir').write_text(text)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kw, message", [
    # Was: TypeError "expected str, bytes or os.PathLike object, not
    # NoneType" (os.fspath's).
    (dict(model=None), "model: expected a str or os.PathLike path, found "
     "NoneType"),
    (dict(out_dir=None), "out_dir: expected a str or os.PathLike path, "
     "found NoneType"),
    (dict(tuning_db=5), "tuning_db: expected a str or os.PathLike path, "
     "found int"),
])
def test_compile_path_arguments_of_other_types(tmp_path, femc_bin, kw,
                                               message):
    args = dict(model=MODEL, out_dir=str(tmp_path / "out"))
    args.update(kw)
    with pytest.raises(femc.CompileError) as e:
        femc.compile(args.pop("model"), args.pop("out_dir"), femc=femc_bin,
                     **args)
    assert str(e.value) == message


def test_compile_into_a_file(tmp_path, femc_bin):
    # Was femc's "cannot write 'F/softmax_fem.kernels.o': Not a directory",
    # a file that is not there.
    out = tmp_path / "out.npy"
    out.write_bytes(b"keep")
    with pytest.raises(femc.CompileError) as e:
        femc.compile(MODEL, str(out), femc=femc_bin)
    assert str(e.value) == (f"out_dir: '{out}' is a file, not a folder; femc "
                            "writes its files into a folder")
    assert out.read_bytes() == b"keep"


# --- run(): outputs too large to allocate --------------------------------------

def test_run_output_too_large_names_the_kernel(softmax_lib):
    # A stride-0 view claims B = 2^40: was numpy's bare "Unable to allocate
    # 8.00 PiB for an array with shape ...", naming no kernel or output.
    kernel = femc.load(softmax_lib)["softmax_fem"]
    x = np.zeros((1, 4, 8, 64), np.float32)
    huge = np.lib.stride_tricks.as_strided(x, (2 ** 40, 4, 8, 64),
                                           (0,) + x.strides[1:])
    inputs = dict(q=huge, k=huge, v=huge, beta_raw=np.zeros(512, np.float32),
                  lam=huge, gate=huge)
    with pytest.raises(MemoryError) as e:
        kernel.run(**inputs)
    text = str(e.value)
    assert text.startswith(
        "kernel 'softmax_fem': run() cannot allocate output 'out' of shape "
        "(1099511627776, 4, 8, 64) (")
    assert text.endswith(
        "); the inputs bind B = 1099511627776, E = 512, H = 8, Hkv = 8, "
        "T = 4, dk = 64, dv = 64 (a broadcast or as_strided view can claim "
        "any extent; the kernel takes compact arrays)")


# --- fem.mixer attributes of the wrong type (documented behaviour) -----------

_T = "tensor<1x4x2x8xf32>"
_MIXER = (
    "func.func @k(%q: {t}, %k: {t}, %v: {t}, %beta_raw: tensor<16xf32>, "
    "%lam: {t}, %gate: {t}) -> {t} {{\n"
    "  %out = fem.mixer softmax q(%q : {t}) k(%k : {t}) v(%v : {t}) "
    "beta_raw(%beta_raw : tensor<16xf32>) lam(%lam : {t}) gate(%gate : {t}) "
    "{attrs} -> {t}\n"
    "  return %out : {t}\n}}\n")


@pytest.mark.parametrize("attrs, message", [
    ("{causal = 1 : i32}", "attribute 'causal' failed to satisfy constraint: "
     "unit attribute"),
    ('{causal = "yes"}', "attribute 'causal' failed to satisfy constraint: "
     "unit attribute"),
    ('{cap = "2.0"}', "attribute 'cap' failed to satisfy constraint: 64-bit "
     "float attribute"),
    ("{cap = 2 : i64}", "attribute 'cap' failed to satisfy constraint: "
     "64-bit float attribute"),
    ("{eps = -1.0 : f32}", "attribute 'eps' failed to satisfy constraint: "
     "64-bit float attribute"),
    ('{scale = "x"}', "attribute 'scale' failed to satisfy constraint: "
     "64-bit float attribute"),
    ("{tiles = 5 : i64}", "attribute 'tiles' failed to satisfy constraint: "
     "Tile sizes of a fused FEM read"),
    ('{layout = "bthd"}', "attribute 'layout' failed to satisfy constraint: "
     "tensor layout of q, k, v, lam, gate, out"),
    ("{causal, causal}", "duplicate key 'causal' in dictionary attribute"),
])
def test_mixer_attribute_of_the_wrong_type(tmp_path, femc_bin, attrs,
                                           message):
    model = tmp_path / "m.mlir"
    model.write_text(_MIXER.format(t=_T, attrs=attrs))
    run = subprocess.run([femc_bin, str(model), "-o", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert run.returncode == 1
    first = run.stderr.splitlines()[0]
    assert first.startswith(f"{model}:2:") and message in first, run.stderr
    assert not (tmp_path / "o" / "m.so").exists()


# --- tuning databases: valid JSON, semantically wrong (documented) ------------

@pytest.fixture(scope="module")
def tuned_db(tmp_path_factory):
    import shutil
    tune = os.path.join(os.path.dirname(os.environ.get("FEMC") or os.path.join(
        ROOT, "build", "bin", "femc")), "fem-tune")
    if not os.access(tune, os.X_OK):
        pytest.skip("fem-tune not found")
    out = tmp_path_factory.mktemp("db13")
    db = out / "db.json"
    subprocess.run([tune, os.path.join(ROOT, "test", "tune", "Inputs",
                                       "two_kernels.mlir"),
                    "--kernel", "linear_small", "--target=x86-64-v3",
                    "--dim", "B=1", "--dim", "T=64", "--db", str(db),
                    "--budget", "10", "--max-candidates", "2"],
                   check=True, capture_output=True)
    return db


def _edit_entry(db, out, edit):
    import json
    data = json.loads(db.read_text())
    entry = next(iter(data["entries"].values()))
    edit(entry)
    out.write_text(json.dumps(data))
    return out


@pytest.mark.parametrize("edit, message", [
    (lambda e: e.__setitem__("tiles", {"q": -64, "k": 64, "vec": 8}),
     'member "tiles" must be positive whole numbers ("q" is not)'),
    (lambda e: e.__setitem__("tiles", {"q": 64.5, "k": 64, "vec": 8}),
     'member "tiles" must be positive whole numbers ("q" is not)'),
    (lambda e: e.__setitem__("tiles", {"q": "64", "k": 64, "vec": 8}),
     'member "tiles" must be positive whole numbers ("q" is not)'),
    (lambda e: e.__setitem__("semantics", e["semantics"].replace(
        "prior=linear", "prior=cosine")),
     "does not match its semantics, target, bucket and femc_version"),
    (lambda e: e["threads"].__setitem__("chosen", -1),
     'member "threads" must be an object whose "chosen" is a whole number '
     "from 1 to 1024"),
])
def test_semantically_wrong_database(tmp_path, femc_bin, tuned_db, edit,
                                     message):
    db = _edit_entry(tuned_db, tmp_path / "bad.json", edit)
    before = db.read_bytes()
    run = subprocess.run(
        [femc_bin, os.path.join(ROOT, "test", "tune", "Inputs",
                                "two_kernels.mlir"), "--target=x86-64-v3",
         "-o", str(tmp_path / "o"), "--tuning-db", str(db), "--tuning-dim",
         "B=1", "--tuning-dim", "T=64"], capture_output=True, text=True)
    assert run.returncode == 1
    assert f"fem-apply-tuning: tuning database '{db}' does not follow the " \
        "schema: entry" in run.stderr and message in run.stderr, run.stderr
    assert "the file was left untouched" in run.stderr
    assert db.read_bytes() == before


def test_database_with_an_entry_given_twice(tmp_path, femc_bin, tuned_db):
    text = tuned_db.read_text()
    key = text[text.index('"entries"'):].split('"')[3]
    start = text.index('"%s"' % key)
    # The entry again, first in "entries" (its own text, so a duplicate key).
    body_start = text.index("{", start)
    depth, i = 0, body_start
    while True:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            break
        i += 1
    entry = text[start:i + 1]
    db = tmp_path / "dup.json"
    db.write_text(text[:start] + entry + ",\n" + text[start:])
    run = subprocess.run(
        [femc_bin, os.path.join(ROOT, "test", "tune", "Inputs",
                                "two_kernels.mlir"), "--target=x86-64-v3",
         "-o", str(tmp_path / "o"), "--tuning-db", str(db)],
        capture_output=True, text=True)
    assert run.returncode == 1
    assert f"is not valid JSON: line" in run.stderr
    assert f'duplicate member name "{key}"' in run.stderr


# --- NaN/Inf in every input of each prior (documented behaviour) --------------

@pytest.mark.parametrize("prior", ["softmax", "linear", "gla", "aft", "ssm"])
def test_nonfinite_in_every_input_of_each_prior(tmp_path, femc_bin,
                                                fem_run_bin, prior):
    # docs/bad-inputs.md "NaN, Inf and huge values": NaN, +Inf and -Inf in
    # one element of any input (the first, middle or last element)
    # propagate as in fem-run's double reference: --check passes with the
    # NaN/Inf elements agreeing, never a crash or finite garbage.
    import shutil
    lib = tmp_path / prior
    subprocess.run([femc_bin, os.path.join(ROOT, "examples",
                                           f"{prior}_fem.mlir"),
                    "-o", str(lib)], check=True, stdout=subprocess.DEVNULL)
    saved = tmp_path / "in"
    saved.mkdir()
    subprocess.run([fem_run_bin, str(lib / f"{prior}_fem.so"), "--dim", "B=2",
                    "--dim", "T=19", "--seed", "5", "--save-inputs",
                    str(saved)], check=True, stdout=subprocess.DEVNULL)
    names = sorted(f for f in os.listdir(saved) if f.endswith(".npy"))
    assert len(names) >= 6
    for name in names:
        clean = np.load(saved / name)
        for value, index in ((np.nan, 0), (np.inf, clean.size // 2),
                             (-np.inf, clean.size - 1)):
            work = tmp_path / "w"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(saved, work)
            bad = clean.copy()
            bad.reshape(-1)[index] = value
            np.save(work / name, bad)
            run = subprocess.run(
                [fem_run_bin, str(lib / f"{prior}_fem.so"), "--inputs",
                 str(work), "--check"], capture_output=True, text=True)
            what = f"{prior}: {name}[{index}] = {value}"
            assert run.returncode == 0, (what, run.stdout[-400:],
                                         run.stderr[-400:])
            assert run.stdout.rstrip().endswith(": PASS"), what
            assert f"input '{name[:-4]}' has 1 NaN/Inf values" in \
                run.stderr, what


def test_run_docstring_names_the_bfloat16_forms():
    doc = femc.Kernel.run.__doc__
    assert "numpy uint16 bit patterns when every bfloat16 input is one " \
        "(femc.bfloat16_bits, femc.bfloat16_values)" in doc
    assert femc.bfloat16_bits.__doc__ and femc.bfloat16_values.__doc__
