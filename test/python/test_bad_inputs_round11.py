"""Bad inputs, round 11 (docs/bad-inputs.md): femc.import's leftovers of
issue 11. An .npz whose __config__ is the natural bytes or array form a user
saves (was: refused as "not JSON"), the forms it still refuses (naming what
was found), a pickled configuration, and .safetensors headers whose tensors
do not fill the data section end to end (was: two tensors sharing bytes
imported one weight as the other's values without a word). Numpy only."""

import json
import os
import struct
import sys

import numpy as np
import pytest

import femc
from femc import LayerImportError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from layer_cases import make_params  # noqa: E402

CONFIG = dict(n_embd=32, n_head=2, conv_hidden=16, prior_type="gla")
TEXT = json.dumps(CONFIG)


# --- .npz: the forms of __config__ ------------------------------------------

@pytest.mark.parametrize("form", [
    TEXT,                                              # a 0-d '<U' array
    TEXT.encode(),                                     # bytes: a 0-d '|S'
    np.array(TEXT.encode()),                           # the same, explicit
    np.array([TEXT]),                                  # one-element '<U'
    np.array([TEXT.encode()]),                         # one-element '|S'
    np.frombuffer(TEXT.encode(), np.uint8),            # the UTF-8 bytes
    np.frombuffer(TEXT.encode(), np.int8),
], ids=["str", "bytes", "0d-bytes", "1-str", "1-bytes", "uint8", "int8"])
def test_npz_config_forms_accepted(form, tmp_path):
    # Was: str(value) of the member: bytes read as "b'{...}'" and a uint8
    # array as "[123  34 ...]", both "the configuration is not JSON".
    path = tmp_path / "layer.npz"
    params = make_params(CONFIG)
    np.savez(path, __config__=form, **params)
    layer = femc.import_layer(str(path), str(tmp_path / "o"))
    assert layer.config["n_embd"] == 32
    assert layer.config["prior_type"] == "gla"
    for name, value in params.items():
        np.testing.assert_array_equal(
            np.load(os.path.join(layer.weights_dir, name + ".npy")), value)


def _refusal(tmp_path, members, config=None):
    """Saves members as an .npz, imports it; (path, the refusal's text)."""
    path = tmp_path / "layer.npz"
    np.savez(path, **members)
    with pytest.raises(LayerImportError) as e:
        femc.import_layer(str(path), str(tmp_path / "o"), config=config)
    assert not (tmp_path / "o").exists()
    return path, str(e.value)


@pytest.mark.parametrize("form, found", [
    (np.array([TEXT, TEXT]), "<U{n} array of shape (2,)"),
    (np.array(1.0), "float64 array of shape ()"),
    (np.zeros((2, 3), np.uint8), "uint8 array of shape (2, 3)"),
    (np.array([1.5, 2.5], np.float32), "float32 array of shape (2,)"),
], ids=["two-strings", "float", "uint8-2d", "floats"])
def test_npz_config_other_forms_named(form, found, tmp_path):
    # Was: a number 1.0 read as the JSON number 1.0 (then "must be a JSON
    # object"), the others as "not JSON" of numpy's printout.
    path, message = _refusal(tmp_path,
                             dict(make_params(CONFIG), __config__=form))
    assert message == (
        f"{path}: __config__: the configuration must be JSON text: a str or "
        "bytes (numpy.savez(..., __config__=json.dumps(cfg))), a one-element "
        "string array, or a 1-d uint8 array of the text's UTF-8 bytes; found "
        f"a {found.format(n=len(TEXT))}")


def test_npz_config_bytes_not_utf8(tmp_path):
    path, message = _refusal(tmp_path, dict(
        make_params(CONFIG),
        __config__=np.frombuffer(b"\xff\xfe{}", np.uint8)))
    assert message.startswith(
        f"{path}: __config__: the configuration's bytes are not UTF-8 text "
        "('utf-8' codec can't decode byte 0xff in position 0")


def test_npz_config_pickled_dict(tmp_path):
    # np.savez(..., __config__=cfg) of a dict stores a pickled object array.
    # Was: "entry '__config__': Object arrays cannot be loaded when
    # allow_pickle=False", which does not say what to save instead.
    path, message = _refusal(tmp_path,
                             dict(make_params(CONFIG), __config__=CONFIG))
    assert message == (
        f"{path}: entry '__config__': the configuration is a pickled Python "
        "object (numpy.savez of a dict makes one); save it as JSON text: "
        "numpy.savez(..., __config__=json.dumps(cfg)); femc does not "
        "unpickle (loading a pickle runs code)")


def test_npz_pickled_parameter(tmp_path):
    params = make_params(CONFIG)
    params["W_v.bias"] = np.array(list(params["W_v.bias"]), dtype=object)
    path, message = _refusal(tmp_path, params, config=CONFIG)
    assert message == (
        f"{path}: entry 'W_v.bias': it is an array of pickled Python "
        "objects (dtype object); a parameter is a numeric array; femc does "
        "not unpickle (loading a pickle runs code)")


# --- .safetensors: the tensors must tile the data section --------------------

def _write(path, entries, body, metadata=None, blanks=0, short=0):
    """entries: name -> (shape, [begin, end]), all F32; the header padded
    with `blanks` blanks and its length field `short` bytes short."""
    header = {name: {"dtype": "F32", "shape": list(shape),
                     "data_offsets": list(span)}
              for name, (shape, span) in entries.items()}
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode() + b" " * blanks
    path.write_bytes(struct.pack("<Q", len(text) - short) + text + body)
    return path


def _layout(params):
    entries, blobs, at = {}, [], 0
    for name, value in params.items():
        raw = np.asarray(value, "<f4").tobytes()
        entries[name] = (value.shape, [at, at + len(raw)])
        blobs.append(raw)
        at += len(raw)
    return entries, b"".join(blobs)


def test_safetensors_good_layout_imports(tmp_path):
    params = make_params(CONFIG)
    entries, body = _layout(params)
    path = _write(tmp_path / "ok.safetensors", entries, body,
                  {"config": TEXT})
    layer = femc.import_layer(str(path), str(tmp_path / "o"))
    np.testing.assert_array_equal(
        np.load(os.path.join(layer.weights_dir, "W_q.weight.npy")),
        params["W_q.weight"])


def test_safetensors_tensors_sharing_bytes(tmp_path):
    # W_k.weight pointed at W_q.weight's bytes: both (32, 32), so every
    # size check passed and W_k was imported with W_q's values.
    params = make_params(CONFIG)
    entries, body = _layout(params)
    q_span = entries["W_q.weight"][1]
    entries["W_k.weight"] = (entries["W_k.weight"][0], list(q_span))
    path = _write(tmp_path / "shared.safetensors", entries, body,
                  {"config": TEXT})
    with pytest.raises(LayerImportError) as e:
        femc.import_layer(str(path), str(tmp_path / "o"))
    message = str(e.value)
    assert message.startswith(f"{path}: tensor '")
    assert "overlap the tensor before it, which ends at byte" in message
    assert message.endswith(
        "; a safetensors file's tensors fill its data section end to end "
        "(the header is damaged or was not written by a safetensors writer)")
    assert not (tmp_path / "o").exists()


def test_safetensors_gap_between_tensors(tmp_path):
    path = _write(tmp_path / "gap.safetensors",
                  {"a": ((4,), [0, 16]), "b": ((2,), [20, 28])},
                  bytes(28))
    with pytest.raises(LayerImportError) as e:
        femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)
    assert str(e.value) == (
        f"{path}: tensor 'b' has data offsets [20, 28) that leave bytes "
        "[16, 20) of the data section outside every tensor; a safetensors "
        "file's tensors fill its data section end to end (the header is "
        "damaged or was not written by a safetensors writer)")


@pytest.mark.parametrize("extra, blanks, short", [(8, 0, 0), (4, 4, 4)],
                         ids=["bytes-appended", "length-short"])
def test_safetensors_bytes_after_the_tensors(extra, blanks, short,
                                             tmp_path):
    # bytes-appended: 8 bytes after the last tensor. length-short: a header
    # padded with blanks (the safetensors writer pads it to a multiple of 8)
    # whose length field is 4 short: the JSON still parses, the blanks
    # become the data section's first bytes and every weight was read
    # shifted by one float (a silent wrong weight).
    entries, body = _layout(make_params(CONFIG))
    path = _write(tmp_path / "long.safetensors", entries,
                  body + bytes(extra - blanks), {"config": TEXT},
                  blanks=blanks, short=short)
    with pytest.raises(LayerImportError) as e:
        femc.import_layer(str(path), str(tmp_path / "o"))
    assert str(e.value) == (
        f"{path}: the safetensors tensors end at byte {len(body)} of the "
        f"{len(body) + extra}-byte data section: {extra} bytes lie outside "
        "every tensor (the header is damaged, or the file has bytes "
        "appended)")


def test_safetensors_empty_tensor_in_the_middle(tmp_path):
    # A zero-size tensor (begin == end) is a legal part of the tiling.
    path = _write(tmp_path / "z.safetensors",
                  {"a": ((2,), [0, 8]), "e": ((0, 4), [8, 8]),
                   "b": ((1,), [8, 12])}, bytes(12))
    tensors, config = femc.importer.load_checkpoint(str(path))
    assert list(tensors) == ["a", "e", "b"]
    assert tensors["e"].shape == (0, 4) and config is None
