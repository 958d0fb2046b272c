"""Import one trained FreeEnergyMixer layer as a femc layer.

``import_layer(checkpoint, out_dir, config=None, name=None, mask=False)``
reads the ``state_dict`` of the authors' PyTorch module (``FreeEnergyMixer``
in ``fem.py``) from a ``torch.save`` file (``.pt``/``.pth``/``.bin``, needs
PyTorch), a ``.safetensors`` file or an ``.npz``, plus its
``FreeEnergyMixerConfig`` (a JSON file or mapping, or stored in the
checkpoint), checks every tensor against the shapes the configuration
implies, and writes

    OUT/NAME.mlir                    one layer function (docs/layers-examples.md)
    OUT/NAME.weights/<param>.npy     every parameter, float32, PyTorch layout

The layer function computes docs/semantics.md section 7 with linalg,
tensor, scf, arith and math ops around one ``fem.mixer`` (the FEM read):
``x`` (B, T, n_embd) [and ``attention_mask`` (B, T)] -> ``y`` (B, T, n_embd).
``femc OUT/NAME.mlir -o LIB`` compiles it; ``fem-run LIB/NAME.so --kernel
NAME --inputs OUT/NAME.weights --input x=x.npy`` runs it.

Command line: ``python3 -m femc.import CHECKPOINT [--config CONFIG.json]
-o OUT [--name NAME] [--mask] [--prefix PREFIX]``. Needs numpy (and torch
for .pt files only). docs/layers-examples.md.
"""

import argparse
import json
import math
import os
import re
import shutil
import struct
import sys
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from .layer_config import (MAX_CAP, LayerImportError, describe_sizes,
                           expected_parameters, resolve_config, rope_inv_freq,
                           tdc_branches, tdc_hidden, tdc_width)

__all__ = ["import_layer", "ImportedLayer", "LayerImportError",
           "load_checkpoint", "check_layer", "layer_attribute", "main",
           "Emitter", "ScalarBody", "Ops", "LayerEmitter", "prologue",
           "tensor_type"]

# Where a checkpoint may carry its configuration (a JSON object).
CONFIG_KEY_TORCH = "config"          # torch.save({"state_dict": ..., "config": {...}})
CONFIG_KEY_NPZ = "__config__"        # np.savez(..., __config__=json.dumps(cfg))
CONFIG_KEY_SAFETENSORS = "config"    # __metadata__ = {"config": json.dumps(cfg)}

# use_lse without use_temperature (beta = 1, no clip): the layer reads
# X = exp(V - M) in bands of LSE_BAND each by d = V - M, each band's values
# in (e^(L - 20), e^L] (L = _lse_lift), so that no band underflows in
# float32 (e^-87 normal, e^-103 subnormal), even times a prior weight
# down to ~e^-83 (a gla key of weight e^-22 at the foot of a band of 80
# was lost: e^-83, below what the scan keeps; keys of weight e^-76 in
# bands of 40 became subnormals of a few bits); together they cover d down
# to -(LSE_SPAN + L + 87) = -823 at L = 16, past float64's own underflow
# (-745), where a float64 reading of section 3 stops being exact too.
# docs/layers-examples.md, "use_lse alone".
LSE_BAND = 20.0
LSE_SPAN = 720.0
# A channel whose V spans at most LSE_NARROW over t takes F from the
# kernel's own read of d = V - M at beta = 1 (unit_temperature_read): its
# values e^d >= e^-16 keep a term of the smallest weight (gla, linear:
# <phi(q), phi(k)> of the row's own key, >= dk eps^2) in float32's range.
LSE_NARROW = 16.0


# ---------------------------------------------------------------------------
# Reading checkpoints
# ---------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"), "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}


def _strict_json(text):
    """json.loads refusing what Python's reader lets through silently: a
    member name given twice (the last one won: the wrong weights or
    configuration without a word) and NaN/Infinity, which are not JSON."""
    def pairs(items):
        out = {}
        for key, value in items:
            if key in out:
                raise ValueError(
                    f"the member name {json.dumps(key)} is given twice")
            out[key] = value
        return out

    def constant(name):
        raise ValueError(f"{name} is not a JSON value")

    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _read_safetensors(path):
    """A .safetensors file: an 8-byte little-endian header length, a JSON
    header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then
    the raw little-endian tensor bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise LayerImportError(
            f"{path}: not a safetensors file: {len(data)} bytes, shorter "
            "than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise LayerImportError(
            f"{path}: not a safetensors file: the header length {n} runs "
            f"past the end of the file ({len(data)} bytes)")
    try:
        header = _strict_json(data[8:8 + n].decode("utf-8"))
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, ours
        raise LayerImportError(
            f"{path}: not a safetensors file: its header is not JSON ({e})")
    except RecursionError:
        raise LayerImportError(
            f"{path}: not a safetensors file: its header nests JSON arrays "
            "or objects too deeply to read")
    if not isinstance(header, dict):
        raise LayerImportError(f"{path}: the safetensors header is not a "
                               "JSON object")
    body = data[8 + n:]
    tensors = OrderedDict()
    spans = []
    config = None
    meta = header.get("__metadata__") or {}
    # The safetensors format: __metadata__ maps strings to strings.
    if not isinstance(meta, dict) or not all(
            isinstance(v, str) for v in meta.values()):
        raise LayerImportError(
            f"{path}: the safetensors __metadata__ must be a JSON object of "
            f"strings, found {json.dumps(meta)[:80]}")
    if CONFIG_KEY_SAFETENSORS in meta:
        config = _parse_config_text(meta[CONFIG_KEY_SAFETENSORS],
                                    f"{path}: __metadata__['config']")
    for name, info in header.items():
        if name == "__metadata__":
            continue
        # Exactly the header's types: a shape "12" or [2.7] was read as
        # (1, 2) or (2,), a dtype ["F32"] raised TypeError.
        try:
            dtype = info["dtype"]
            shape = tuple(info["shape"])
            begin, end = info["data_offsets"]
            if not isinstance(dtype, str) or not isinstance(
                    info["shape"], list) or not all(
                        _is_int(v) for v in shape + (begin, end)):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise LayerImportError(
                f"{path}: tensor '{name}' has no usable dtype (a string), "
                "shape (a list of integers) and data_offsets (two "
                "integers) in the safetensors header")
        if dtype not in _SAFETENSORS_DTYPES:
            raise LayerImportError(
                f"{path}: tensor '{name}' has dtype {dtype}, which femc does "
                f"not read (it reads {', '.join(_SAFETENSORS_DTYPES)})")
        if any(s < 0 for s in shape):
            raise LayerImportError(
                f"{path}: tensor '{name}' has shape {shape} with a negative "
                "extent in the safetensors header")
        np_dtype = _SAFETENSORS_DTYPES[dtype]
        # Python ints: a product that does not fit in 64 bits must not wrap
        # to a size the data offsets happen to match.
        count = math.prod(shape)
        if not 0 <= begin <= end <= len(body) or \
                end - begin != count * np_dtype.itemsize:
            raise LayerImportError(
                f"{path}: tensor '{name}' ({dtype}, shape {shape}) has data "
                f"offsets [{begin}, {end}) that do not hold "
                f"{count * np_dtype.itemsize} bytes inside the "
                f"{len(body)}-byte data section")
        array = np.frombuffer(body, dtype=np_dtype, count=count,
                              offset=begin).reshape(shape)
        if dtype == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array
        spans.append((begin, end, name))
    _check_safetensors_spans(path, spans, len(body))
    return tensors, config


def _check_safetensors_spans(path, spans, size):
    """The tensors must fill the data section end to end, in some order,
    without a gap or an overlap, as the safetensors library requires
    (InvalidOffset, MetadataIncompleteBuffer). Was: two tensors could share
    bytes (a hand-edited or damaged header: one weight imported as the
    other's values without a word), and bytes could lie outside every
    tensor. The format has no checksums: a flipped byte inside a tensor's
    data cannot be seen (docs/layers.md, "Damaged checkpoints")."""
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at:
            what = (f"overlap the tensor before it, which ends at byte {at}"
                    if begin < at else
                    f"leave bytes [{at}, {begin}) of the data section "
                    "outside every tensor")
            raise LayerImportError(
                f"{path}: tensor '{name}' has data offsets [{begin}, {end}) "
                f"that {what}; a safetensors file's tensors fill its data "
                "section end to end (the header is damaged or was not "
                "written by a safetensors writer)")
        at = end
    if at != size:
        raise LayerImportError(
            f"{path}: the safetensors tensors end at byte {at} of the "
            f"{size}-byte data section: {size - at} bytes lie outside "
            "every tensor (the header is damaged, or the file has bytes "
            "appended)")


def _starts_as_zip(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _check_zip(path, kind):
    """Refuses a zip archive (an .npz, a torch.save file) that is truncated
    or whose members fail their CRC-32: torch.load read a truncated file as
    '[Errno 22] Invalid argument' and a flipped byte in a tensor without a
    word (the weights imported wrong)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error,
            NotImplementedError) as e:
        if _starts_as_zip(path):
            raise LayerImportError(
                f"{path}: the {kind} is truncated or corrupt: it starts as a "
                "zip archive but its end (the zip's central directory) is "
                f"missing or damaged ({e})")
        raise LayerImportError(
            f"{path}: the {kind} is not a readable zip archive ({e})")
    if bad is not None:
        raise LayerImportError(
            f"{path}: the {kind} is corrupt: its member '{bad}' fails its "
            "CRC-32 check (a damaged copy; save or download it again)")


def _read_npz(path):
    if not zipfile.is_zipfile(path):
        if _starts_as_zip(path):
            _check_zip(path, ".npz file")
        raise LayerImportError(
            f"{path}: not a valid .npz file: it is not a zip archive "
            "(numpy.savez writes one)")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for a bad archive
        raise LayerImportError(f"{path}: not a readable .npz archive ({e})")
    tensors = OrderedDict()
    config = None
    with archive:
        for name in archive.files:
            try:
                value = archive[name]
            except zipfile.BadZipFile as e:  # a bad CRC-32: a damaged file
                raise LayerImportError(
                    f"{path}: entry '{name}' is damaged ({e}); the .npz "
                    "archive is corrupt")
            except ValueError as e:
                if "allow_pickle" not in str(e):
                    raise LayerImportError(f"{path}: entry '{name}': {e}")
                # An object array, pickled: np.savez(..., __config__=cfg)
                # of a dict makes one. Unpickling runs code: refused.
                what = ("the configuration is a pickled Python object (numpy"
                        ".savez of a dict makes one); save it as JSON text: "
                        "numpy.savez(..., __config__=json.dumps(cfg))"
                        if name == CONFIG_KEY_NPZ else
                        "it is an array of pickled Python objects (dtype "
                        "object); a parameter is a numeric array")
                raise LayerImportError(
                    f"{path}: entry '{name}': {what}; femc does not unpickle "
                    "(loading a pickle runs code)")
            except (OSError, EOFError, zlib.error) as e:
                raise LayerImportError(f"{path}: entry '{name}': {e}")
            # numpy returns the raw bytes of a member that is not an .npy
            # array (was: AttributeError: 'bytes' object has no attribute
            # 'shape').
            if not isinstance(value, np.ndarray):
                raise LayerImportError(
                    f"{path}: member '{name}' is not an .npy array (an .npz "
                    "holds only NAME.npy arrays, as numpy.savez writes them)")
            if name == CONFIG_KEY_NPZ:
                where = f"{path}: {name}"
                config = _parse_config_text(_npz_config_text(value, where),
                                            where)
            else:
                tensors[name] = value
    return tensors, config


def _npz_config_text(value, where):
    """The JSON text of an .npz's __config__ member, in the forms numpy
    gives back for what a user saves: a str or bytes (numpy.savez stores a
    0-d '<U' or '|S' array), a one-element array of either, or the text's
    UTF-8 bytes as a 1-d uint8 (or int8) array (numpy.frombuffer(
    text.encode(), numpy.uint8)). Was str(value): bytes read as "b'{...}'"
    and a uint8 array as "[123 34 ...]", both refused as not JSON, and a
    number such as 1.0 read as the JSON number 1.0."""
    kind = value.dtype.kind
    if kind in "US" and value.ndim <= 1 and value.size == 1:
        text = value.reshape(()).item()
    elif kind in "ui" and value.dtype.itemsize == 1 and value.ndim == 1:
        text = value.tobytes()
    else:
        raise LayerImportError(
            f"{where}: the configuration must be JSON text: a str or bytes "
            "(numpy.savez(..., __config__=json.dumps(cfg))), a one-element "
            "string array, or a 1-d uint8 array of the text's UTF-8 bytes; "
            f"found a {value.dtype} array of shape {value.shape}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise LayerImportError(
                f"{where}: the configuration's bytes are not UTF-8 text ({e})")
    return text


def _read_torch(path):
    try:
        import torch
    except ImportError:
        raise LayerImportError(
            f"{path}: reading a torch.save checkpoint needs PyTorch, which "
            "this Python cannot import; install torch, or save the "
            "state_dict as .safetensors or .npz (numpy.savez(path, "
            "**{k: v.numpy() for k, v in state_dict.items()}))")
    # torch.save writes a zip archive (since PyTorch 1.6) whose members
    # carry CRC-32s that torch.load does not check.
    if _starts_as_zip(path):
        _check_zip(path, "torch.save file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise LayerImportError(
            f"{path}: torch.load failed ({e}); the file is truncated, "
            "corrupt or not a torch.save file")
    config = None
    if isinstance(obj, dict) and "state_dict" in obj:
        config = obj.get(CONFIG_KEY_TORCH)
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise LayerImportError(
            f"{path}: holds a {type(obj).__name__}, expected a state_dict "
            "(a mapping of parameter names to tensors) or a dict with "
            "'state_dict' and optionally 'config'")
    if isinstance(config, str):
        config = _parse_config_text(config, f"{path}: config")
    tensors = OrderedDict()
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise LayerImportError(
                f"{path}: state_dict entry '{name}' is a "
                f"{type(value).__name__}, not a tensor")
        tensors[name] = _torch_array(f"{path}: ", name, value)
    return tensors, config


def _torch_array(where, name, value):
    """A torch tensor as a numpy array: floating-point only, float64
    kept, every other float dtype (bfloat16, float16, float8) widened to
    float32 exactly; detached from autograd."""
    import torch
    # Floating-point only, and float64 kept: .to(float32) turned an
    # integer, bool or complex tensor into floats without a word (the
    # dtype check never saw it) and 1e300 into inf.
    if not value.is_floating_point():
        raise LayerImportError(
            f"{where}parameter '{name}' has dtype "
            f"{str(value.dtype).replace('torch.', '')}, expected a "
            "floating-point tensor")
    wide = torch.float64 if value.dtype == torch.float64 else torch.float32
    try:
        return value.detach().to("cpu", wide).numpy()
    except Exception as e:  # sparse, meta, ... tensors
        raise LayerImportError(
            f"{where}parameter '{name}' cannot be read as a dense CPU "
            f"tensor ({type(e).__name__}: {e})")


def _in_memory_array(name, value):
    """A value of a state_dict given in memory, as a numpy array. Torch
    tensors are read as from a torch.save file (was np.asarray: a bfloat16
    tensor raised TypeError 'Got unsupported ScalarType BFloat16', one that
    requires grad, as dict(model.named_parameters()) holds, RuntimeError)."""
    if isinstance(value, np.ma.MaskedArray):
        # np.asarray would drop the mask and import the masked values.
        raise LayerImportError(
            f"parameter '{name}' is a numpy masked array; a parameter has no "
            "mask: pass numpy.ma.getdata(a) or a.filled(value)")
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return _torch_array("", name, value)
    # None, a str or a mapping became a 0-d array (was: "has shape (), the
    # configuration expects (32, 32)", as if it were a misshaped array).
    if value is None or isinstance(value, (str, bytes, dict)):
        raise LayerImportError(
            f"parameter '{name}' is not an array: found "
            f"{type(value).__name__} {_short_repr(value)}")
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:  # ragged lists, ...
        raise LayerImportError(
            f"parameter '{name}' is not an array ({type(value).__name__}: "
            f"{e})")


def _short_repr(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _parse_config_text(text, where):
    if not isinstance(text, (str, bytes)):
        raise LayerImportError(
            f"{where}: the configuration must be JSON text, found "
            f"{type(text).__name__}")
    try:
        config = _strict_json(text)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, ours
        raise LayerImportError(f"{where}: the configuration is not JSON ({e})")
    except RecursionError:
        raise LayerImportError(_TOO_DEEP.format(where=where))
    return config


_TOO_DEEP = ("{where}: the configuration is not JSON: it nests arrays or "
             "objects too deeply to read")


def load_checkpoint(path):
    """(OrderedDict name -> array, configuration or None) from a checkpoint
    file, in the file's order."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise LayerImportError(f"{path}: is a folder, not a checkpoint file")
    if os.path.exists(path) and not os.path.isfile(path):
        raise LayerImportError(
            f"{path}: is not a regular file (a device, FIFO or socket), not "
            "a checkpoint file")
    if not os.path.isfile(path):
        raise LayerImportError(f"{path}: no such checkpoint file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        return _read_safetensors(path)
    if ext == ".npz":
        return _read_npz(path)
    if ext in (".pt", ".pth", ".bin", ".ckpt"):
        return _read_torch(path)
    raise LayerImportError(
        f"{path}: unknown checkpoint format '{ext or '(no extension)'}'; "
        "femc reads torch.save files (.pt, .pth, .bin, .ckpt), .safetensors "
        "and .npz")


# ---------------------------------------------------------------------------
# Checking a state_dict against its configuration
# ---------------------------------------------------------------------------

def _check_supported(cfg, tensors):
    prior = cfg["prior_type"]
    if prior == "mamba" and any(k.startswith("W_delta.") for k in tensors):
        raise LayerImportError(
            "this mamba checkpoint has W_delta: it was trained without the "
            "mamba_ssm package, so its read is the module's fallback, a "
            "per-head exponential moving average (_mamba_read_ema), not the "
            "selective scan; femc compiles the scan form only (W_p, A_log, "
            "D_diag: the module built where mamba_ssm imports)")
    if prior == "mamba" and not cfg["mamba_normalize"]:
        raise LayerImportError(
            "mamba_normalize is false: femc's ssm read always divides by the "
            "scan of ones (docs/semantics.md section 2), so an unnormalised "
            "mamba layer cannot be compiled")
    if cfg["use_temperature"]:
        cap = cfg["value_logexp_cap"]
        if not 1e-5 <= cap <= MAX_CAP:
            raise LayerImportError(
                f"value_logexp_cap is {cap!r}; femc's kernels clip beta*v to "
                f"[-cap, cap] with cap in [1e-05, {MAX_CAP:g}] (above 43 the "
                "tilt exp(beta*v - M) can fall below float32's smallest "
                "normal, docs/dialect.md)")
    eps = cfg["eps"]
    if cfg["use_lse"] and not cfg["use_temperature"] and eps >= 1.0:
        raise LayerImportError(
            f"use_lse without use_temperature reads with beta = 1, but eps "
            f"is {eps!r}: femc's kernels take beta = softplus(beta_raw) + "
            "eps, which cannot be 1 when eps >= 1")
    if not 1e-30 <= eps <= 1e30:
        raise LayerImportError(
            f"eps is {eps!r}; femc's kernels take eps in [1e-30, 1e+30] "
            "(docs/dialect.md)")
    if cfg["use_rope"] and cfg["d_k"] % 2:
        raise LayerImportError(f"use_rope needs an even dk, found {cfg['d_k']}")
    if not (math.isfinite(cfg["rope_theta"]) and cfg["rope_theta"] > 0):
        raise LayerImportError(
            f"rope_theta must be a positive finite number, found "
            f"{cfg['rope_theta']!r}")


def _check_tensors(cfg, tensors):
    if not tensors:
        # Was: one "missing parameter" line for each of the configuration's
        # parameters, which hid that nothing at all was read.
        raise LayerImportError(
            "the checkpoint holds no parameters (an empty state_dict); the "
            "configuration (" + describe_sizes(cfg) + ") expects " +
            str(len(expected_parameters(cfg))) + ", e.g. " +
            ", ".join(f"'{k}'" for k in list(expected_parameters(cfg))[:3]))
    expected = expected_parameters(cfg)
    problems = []
    sizes = describe_sizes(cfg)
    for name, shape in expected.items():
        if name not in tensors:
            problems.append(
                f"missing parameter '{name}': the configuration expects "
                f"shape {shape}")
    for name, value in tensors.items():
        if name not in expected:
            problems.append(
                f"unexpected parameter '{name}' of shape "
                f"{tuple(value.shape)}: the configuration has no such "
                "parameter")
            continue
        shape = tuple(value.shape)
        if shape != expected[name]:
            problems.append(
                f"parameter '{name}' has shape {shape}, the configuration "
                f"expects {expected[name]}")
        elif value.dtype.kind not in "fc" or value.dtype.kind == "c":
            problems.append(
                f"parameter '{name}' has dtype {value.dtype}, expected a "
                "floating-point tensor")
    if problems:
        raise LayerImportError(
            "the checkpoint does not match its configuration (" + sizes +
            "):\n  " + "\n  ".join(problems))
    for name, value in tensors.items():
        if not np.all(np.isfinite(value)):
            raise LayerImportError(
                f"parameter '{name}' holds NaN or infinite values")
        # The kernels read float32: a finite float64 beyond its range would
        # become +-inf in check_layer's conversion (only a numpy warning).
        with np.errstate(over="ignore"):
            narrowed = np.asarray(value).astype(np.float32)
        if not np.all(np.isfinite(narrowed)):
            largest = float(np.max(np.abs(value)))
            raise LayerImportError(
                f"parameter '{name}' holds values beyond float32's range "
                f"(largest magnitude {largest:.6g}, float32 holds at most "
                f"{float(np.finfo(np.float32).max):.6g}); the kernels read "
                "float32 and it would become infinite")


# ---------------------------------------------------------------------------
# Emitting the layer
# ---------------------------------------------------------------------------

def _f64(value):
    """A float as an MLIR float literal (shortest round-trip form)."""
    text = repr(float(value))
    if "e" in text and "." not in text.split("e")[0]:
        mant, exp = text.split("e")
        text = mant + ".0e" + exp
    elif "." not in text and "e" not in text:
        text += ".0"
    return text


def _f32(value):
    """A float32 literal; infinities in MLIR's hexadecimal form."""
    value = float(np.float32(value))
    if math.isinf(value):
        return "0xFF800000" if value < 0 else "0x7F800000"
    return _f64(value)


def tensor_type(*dims):
    return "tensor<" + "x".join(str(d) for d in dims) + "xf32>"



class Emitter:
    """Builds the body of the layer function: SSA names, linalg.generic."""

    def __init__(self):
        self.lines = []
        self.count = 0
        self.consts = {}

    def name(self, hint="v"):
        self.count += 1
        return f"%{hint}{self.count}"

    def op(self, text):
        self.lines.append("  " + text)

    def const_f32(self, value):
        key = _f32(value)
        if key not in self.consts:
            n = self.name("cst")
            self.consts[key] = n
            self.op(f"{n} = arith.constant {key} : f32")
        return self.consts[key]

    def empty(self, ty):
        n = self.name("e")
        self.op(f"{n} = tensor.empty(%B, %T) : {ty}")
        return n

    def fill(self, value, ty):
        e = self.empty(ty)
        n = self.name("z")
        self.op(f"{n} = linalg.fill ins({self.const_f32(value)} : f32) "
                f"outs({e} : {ty}) -> {ty}")
        return n

    def generic(self, dims, iterators, ins, out, body, out_ty=None):
        """One linalg.generic. dims: loop names; ins: [(ssa, type, index
        expressions)]; out: (ssa, type, index expressions); body: a
        function (list of block-argument names) -> (lines, result)."""
        maps = []
        for _, _, idx in list(ins) + [out]:
            maps.append(f"affine_map<({', '.join(dims)}) -> ({', '.join(idx)})>")
        args = [f"%a{i}" for i in range(len(ins))] + ["%acc"]
        n = self.name("g")
        out_ty = out_ty or out[1]
        its = ", ".join(f'"{i}"' for i in iterators)
        text = [f"{n} = linalg.generic {{indexing_maps = [{', '.join(maps)}], "
                f"iterator_types = [{its}]}}"]
        if ins:
            text.append(f"    ins({', '.join(v for v, _, _ in ins)} : "
                        f"{', '.join(t for _, t, _ in ins)})")
        text.append(f"    outs({out[0]} : {out[1]}) {{")
        text.append("  ^bb0(" + ", ".join(f"{a}: f32" for a in args) + "):")
        lines, result = body(args)
        text.extend("    " + line for line in lines)
        text.append(f"    linalg.yield {result} : f32")
        text.append(f"  }} -> {out_ty}")
        self.op("\n  ".join(text))
        return n


class ScalarBody:
    """Scalar code inside a linalg.generic region."""

    def __init__(self):
        self.lines = []
        self.n = 0

    def v(self, text):
        self.n += 1
        name = f"%s{self.n}"
        self.lines.append(f"{name} = {text}")
        return name

    def c(self, value):
        return self.v(f"arith.constant {_f32(value)} : f32")

    def add(self, a, b):
        return self.v(f"arith.addf {a}, {b} : f32")

    def sub(self, a, b):
        return self.v(f"arith.subf {a}, {b} : f32")

    def mul(self, a, b):
        return self.v(f"arith.mulf {a}, {b} : f32")

    def div(self, a, b):
        return self.v(f"arith.divf {a}, {b} : f32")

    def maxf(self, a, b):
        return self.v(f"arith.maximumf {a}, {b} : f32")

    def softplus(self, a):
        """log(1 + e^a), = a above 20 as PyTorch's threshold."""
        e = self.v(f"math.exp {a} : f32")
        lp = self.v(f"math.log1p {e} : f32")
        big = self.v(f"arith.cmpf ogt, {a}, {self.c(20.0)} : f32")
        return self.v(f"arith.select {big}, {a}, {lp} : f32")


class Ops:
    """linalg building blocks on (B,T,...) tensors whose parameters are
    function arguments bound by name (PyTorch layouts): linear layers,
    LayerNorm, row sums. Shared by LayerEmitter and examples/make_blocks.py."""

    def __init__(self, emitter=None):
        self.e = emitter or Emitter()
        self.arg = {}          # parameter name -> SSA value
        self.shape = {}        # parameter name -> shape

    def bind(self, values, shapes):
        """The SSA value and shape of every parameter, by name."""
        self.arg.update(values)
        self.shape.update(shapes)

    def has(self, name):
        return name in self.arg

    def bias_init(self, bias_name, dims, out_ty, index):
        """An accumulator holding the bias broadcast (or zeros)."""
        if not self.has(bias_name):
            return self.e.fill(0.0, out_ty)
        n = len(dims)
        return self.e.generic(
            dims, ["parallel"] * n,
            [(self.arg[bias_name], tensor_type(self.shape[bias_name][0]), [index])],
            (self.e.empty(out_ty), out_ty, list(dims)),
            lambda a: ([], a[0]))


    def linear_flat(self, src, src_width, name, width):
        """src @ W.T + b: (B,T,width) from src (B,T,src_width)."""
        ty = tensor_type("?", "?", width)
        init = self.bias_init(name + ".bias", ("b", "t", "n"), ty, "n")
        return self.e.generic(
            ("b", "t", "n", "k"), ["parallel"] * 3 + ["reduction"],
            [(src, tensor_type("?", "?", src_width), ["b", "t", "k"]),
             (self.arg[name + ".weight"], tensor_type(width, src_width),
              ["n", "k"])],
            (init, ty, ["b", "t", "n"]), _mul_acc)

    def row_sum(self, src, width, body):
        """(B,T): the sum over the last axis of body(element) of src."""
        ty = tensor_type("?", "?")
        z = self.e.fill(0.0, ty)
        return self.e.generic(
            ("b", "t", "k"), ["parallel", "parallel", "reduction"],
            [(src, tensor_type("?", "?", width), ["b", "t", "k"])],
            (z, ty, ["b", "t"]), body)

    def layer_norm(self, src, width, wname, bname):
        """PyTorch's LayerNorm over the last axis (biased variance, eps
        1e-5) with its weight and optional bias.

        The mean is taken in two float32 parts, m1 = sum(x) / n and the
        residual m2 = sum(x - m1) / n, and the deviation is (x - m1) - m2
        (the corrected two-pass algorithm): with an offset that dwarfs the
        spread (x = 300 + N(0, 1)), m1 alone is off by up to half an ulp
        of 300 and more from the summation (1.5e-5 and more of the spread),
        an error every later step of the time-decay conditioning amplifies
        (2e-4 max|y| at offset 300); x - m1 is exact there (Sterbenz) and
        m2 recovers the rest."""
        sty = tensor_type("?", "?", width)
        rty = tensor_type("?", "?")
        total = self.row_sum(src, width, _add_acc)
        inv_n = 1.0 / width

        def resid(a):
            b = ScalarBody()
            m1 = b.mul(a[1], b.c(inv_n))
            return b.lines, b.add(a[2], b.sub(a[0], m1))
        rest = self.e.generic(
            ("b", "t", "k"), ["parallel", "parallel", "reduction"],
            [(src, sty, ["b", "t", "k"]), (total, rty, ["b", "t"])],
            (self.e.fill(0.0, rty), rty, ["b", "t"]), resid)

        def dev(b, a):
            """(x - m1) - m2 from x = a[0], sum = a[1], residual = a[2]."""
            m1 = b.mul(a[1], b.c(inv_n))
            m2 = b.mul(a[2], b.c(inv_n))
            return b.sub(b.sub(a[0], m1), m2)

        def sq(a):
            b = ScalarBody()
            d = dev(b, a)
            return b.lines, b.add(a[3], b.mul(d, d))
        means = [(src, sty, ["b", "t", "k"]), (total, rty, ["b", "t"]),
                 (rest, rty, ["b", "t"])]
        var = self.e.generic(
            ("b", "t", "k"), ["parallel", "parallel", "reduction"], means,
            (self.e.fill(0.0, rty), rty, ["b", "t"]), sq)
        ins = means + [(var, rty, ["b", "t"]),
                       (self.arg[wname], tensor_type(width), ["k"])]
        if self.has(bname):
            ins.append((self.arg[bname], tensor_type(width), ["k"]))

        def norm(a):
            b = ScalarBody()
            v = b.add(b.mul(a[3], b.c(inv_n)), b.c(1e-5))
            r = b.v(f"math.rsqrt {v} : f32")
            y = b.mul(b.mul(dev(b, a), r), a[4])
            if len(a) == 7:
                y = b.add(y, a[5])
            return b.lines, y
        return self.e.generic(
            ("b", "t", "k"), ["parallel"] * 3, ins,
            (self.e.empty(sty), sty, ["b", "t", "k"]), norm)


class LayerEmitter(Ops):
    """Emits docs/semantics.md section 7 for one resolved configuration."""

    def __init__(self, cfg, names, mask, emitter=None, x="%x",
                 mask_value="%mask"):
        super().__init__(emitter)
        self.cfg = cfg
        self.names = names
        self.mask = mask
        self.x = x             # the layer's input (B,T,D)
        self.mask_value = mask_value
        D = cfg["n_embd"]
        self.D = D
        self.xty = tensor_type("?", "?", D)

    def expand_weight(self, name, shape, groups):
        """A weight argument viewed with more dimensions (tensor.expand_shape):
        W (H*d, D) as (H, d, D), W_o (D, H*dv) as (D, H, dv)."""
        key = (name, tuple(shape))
        cache = self.__dict__.setdefault("_expanded", {})
        if key not in cache:
            n = self.e.name("w")
            src = tensor_type(*self.shape[name])
            self.e.op(f"{n} = tensor.expand_shape {self.arg[name]} {groups} "
                      f"output_shape [{', '.join(map(str, shape))}] : {src} "
                      f"into {tensor_type(*shape)}")
            cache[key] = n
        return cache[key]

    def linear_heads(self, src, name, heads, width):
        """split(src @ W.T + b): (B,T,heads,width) from src (B,T,D), as a
        contraction over W viewed as (heads, width, D) (flat channel
        h*width + c), so every indexing map is a projected permutation."""
        ty = tensor_type("?", "?", heads, width)
        idx = f"h * {width} + c"
        init = self.bias_init(name + ".bias", ("b", "t", "h", "c"), ty, idx)
        w3 = self.expand_weight(name + ".weight", (heads, width, self.D),
                                "[[0, 1], [2]]")
        return self.e.generic(
            ("b", "t", "h", "c", "k"),
            ["parallel"] * 4 + ["reduction"],
            [(src, self.xty, ["b", "t", "k"]),
             (w3, tensor_type(heads, width, self.D), ["h", "c", "k"])],
            (init, ty, ["b", "t", "h", "c"]), _mul_acc)

    # -- the time-decay conditioning --------------------------------------
    def tdc_branch(self, prefix, x, acc):
        """acc + (s * LN(r)) @ out_proj for one TDC branch (B,T,width)."""
        cfg = self.cfg
        h = tdc_hidden(cfg)
        width = tdc_width(cfg)
        hty = tensor_type("?", "?", h)
        xh = x
        if cfg["conv_norm_first"]:
            xh = self.layer_norm(x, self.D, prefix + "norm.weight",
                                 prefix + "norm.bias")
        sc = self.linear_flat(xh, self.D, prefix + "shortcut", h)

        def sq(a):
            b = ScalarBody()
            s = b.add(b.softplus(a[0]), b.c(1e-8))
            return b.lines, b.add(a[1], b.mul(s, s))
        sc_sq = self.row_sum(sc, h, sq)
        f = self.linear_flat(xh, self.D, prefix + "x_f", h)
        a_raw = self.linear_flat(xh, self.D, prefix + "in_f", h)
        r = self.tdc_scan(a_raw, f, h)
        ln = self.layer_norm(r, h, prefix + "ln.weight", prefix + "ln.bias")

        def gated(a):
            b = ScalarBody()
            s = b.add(b.softplus(a[0]), b.c(1e-8))
            nrm = b.maxf(b.v(f"math.sqrt {a[1]} : f32"), b.c(1e-8))
            s = b.mul(b.div(s, nrm), b.c(math.sqrt(h)))
            return b.lines, b.mul(s, a[2])
        u = self.e.generic(
            ("b", "t", "j"), ["parallel"] * 3,
            [(sc, hty, ["b", "t", "j"]), (sc_sq, tensor_type("?", "?"), ["b", "t"]),
             (ln, hty, ["b", "t", "j"])],
            (self.e.empty(hty), hty, ["b", "t", "j"]), gated)
        oty = tensor_type("?", "?", width)
        if acc is None:
            acc = self.e.fill(0.0, oty)
        return self.e.generic(
            ("b", "t", "w", "j"), ["parallel"] * 3 + ["reduction"],
            [(u, hty, ["b", "t", "j"]),
             (self.arg[prefix + "out_proj"], tensor_type(h, width), ["j", "w"])],
            (acc, oty, ["b", "t", "w"]), _mul_acc)

    def tdc_scan(self, a_raw, f, h):
        """r_t = exp(c_t) * sum_{s<=t} f_s / (exp(c_s) + 1e-12) with
        c_t = sum_{u<=t} -softplus(a_raw_u), as the recurrence
        r_t = exp(a_t) r_{t-1} + f_t * sigmoid(c_t - ln 1e-12)
        (the same value; no overflow, no cancellation). c is carried as a
        float32 pair (c, its rounding error, TwoSum): past c = -27.6 the
        sigmoid is e^(c + 27.63), so r is only as exact as c, and a plain
        float32 running sum drifts by ~sqrt(t) ulp(c) (1.2e-4 max|y| at
        T = 65, x of 1e-4, layer_fuzz seed 52 index 82)."""
        e = self.e
        hty = tensor_type("?", "?", h)
        r0 = e.empty(hty)
        nb, nj, nt = e.name("rb"), e.name("rj"), e.name("rt")
        ch = e.name("ch")
        e.op(f"{ch} = arith.constant {h} : index")
        zero = e.const_f32(0.0)
        one = e.const_f32(1.0)
        thr = e.const_f32(20.0)
        floor = e.const_f32(-math.log(1e-12))
        b, j, t = e.name("b"), e.name("j"), e.name("t")
        ab, aj, at = e.name("acc"), e.name("acc"), e.name("acc")
        cc, cl, rr = e.name("c"), e.name("c"), e.name("r")
        av, fv = e.name("a"), e.name("f")
        ex, lp, big, sp = e.name("x"), e.name("x"), e.name("x"), e.name("x")
        cn, z, ez, den, sg = (e.name("x"), e.name("x"), e.name("x"),
                              e.name("x"), e.name("x"))
        decay, keep, add, rn, ins = (e.name("x"), e.name("x"), e.name("x"),
                                     e.name("x"), e.name("x"))
        bv, sb, e1, e2, err, ln, lo, lc, zh = (e.name("x") for _ in range(9))
        lim = e.const_f32(1.0)
        e.op("\n  ".join([
            f"{nb} = scf.for {b} = %c0 to %B step %c1 iter_args({ab} = {r0}) -> ({hty}) {{",
            f"  {nj} = scf.for {j} = %c0 to {ch} step %c1 iter_args({aj} = {ab}) -> ({hty}) {{",
            f"    {nt}:4 = scf.for {t} = %c0 to %T step %c1 iter_args({at} = {aj}, {cc} = {zero}, {cl} = {zero}, {rr} = {zero}) -> ({hty}, f32, f32, f32) {{",
            f"      {av} = tensor.extract {a_raw}[{b}, {t}, {j}] : {hty}",
            f"      {fv} = tensor.extract {f}[{b}, {t}, {j}] : {hty}",
            # a = -softplus(a_raw); PyTorch's softplus is x above 20.
            f"      {ex} = math.exp {av} : f32",
            f"      {lp} = math.log1p {ex} : f32",
            f"      {big} = arith.cmpf ogt, {av}, {thr} : f32",
            f"      {sp} = arith.select {big}, {av}, {lp} : f32",
            f"      {decay} = arith.negf {sp} : f32",
            # c + decay as TwoSum: cn + (its rounding error err), exactly
            f"      {cn} = arith.addf {cc}, {decay} : f32",
            f"      {bv} = arith.subf {cn}, {cc} : f32",
            f"      {sb} = arith.subf {cn}, {bv} : f32",
            f"      {e1} = arith.subf {cc}, {sb} : f32",
            f"      {e2} = arith.subf {decay}, {bv} : f32",
            f"      {err} = arith.addf {e1}, {e2} : f32",
            f"      {ln} = arith.addf {cl}, {err} : f32",
            # the error term matters only where c is in [-132, -8] (|it|
            # < 1e-3 there); clamped to +-1 (NaN -> -1, once c is -inf)
            # off the carried chain
            f"      {lo} = arith.maxnumf {ln}, {e.const_f32(-1.0)} : f32",
            f"      {lc} = arith.minnumf {lo}, {lim} : f32",
            # sigmoid(c - ln 1e-12) = 1 / (1 + exp(-(c + 27.63)))
            f"      {zh} = arith.addf {cn}, {floor} : f32",
            f"      {z} = arith.addf {zh}, {lc} : f32",
            f"      {ez} = math.exp {z} : f32",
            f"      {den} = arith.addf {ez}, {one} : f32",
            f"      {sg} = arith.divf {ez}, {den} : f32",
            f"      {keep} = math.exp {decay} : f32",
            f"      {add} = arith.mulf {keep}, {rr} : f32",
            f"      {rn} = math.fma {fv}, {sg}, {add} : f32",
            f"      {ins} = tensor.insert {rn} into {at}[{b}, {t}, {j}] : {hty}",
            f"      scf.yield {ins}, {cn}, {ln}, {rn} : {hty}, f32, f32, f32",
            "    }",
            f"    scf.yield {nt}#0 : {hty}",
            "  }",
            f"  scf.yield {nj} : {hty}",
            "}"]))
        return nb

    # -- the layer ---------------------------------------------------------
    def modulate(self, src, heads, width, scale_off, use_mask):
        """src * mask * (1 + o[..., scale_off + h*width + c]) (B,T,H,width):
        the key/value mask (section 7 step 2) and the TDC scales (step 3)."""
        if scale_off is None and not use_mask:
            return src
        ty = tensor_type("?", "?", heads, width)
        ins = [(src, ty, ["b", "t", "h", "c"])]
        if use_mask:
            ins.append((self.mask_value, tensor_type("?", "?"), ["b", "t"]))
        if scale_off is not None:
            ins.append((self.tdc, tensor_type("?", "?", tdc_width(self.cfg)),
                        ["b", "t", f"{scale_off} + h * {width} + c"]))

        def body(a):
            b = ScalarBody()
            y = a[0]
            i = 1
            if use_mask:
                y = b.mul(y, a[i])
                i += 1
            if scale_off is not None:
                y = b.mul(y, b.add(a[i], b.c(1.0)))
            return b.lines, y
        return self.e.generic(
            ("b", "t", "h", "c"), ["parallel"] * 4, ins,
            (self.e.empty(ty), ty, ["b", "t", "h", "c"]), body)

    def rope_tables(self):
        """cos and sin of t * inv_freq[i], (T, dk/2), angles in double."""
        dk = self.cfg["d_k"]
        half = dk // 2
        theta = self.cfg["rope_theta"]
        inv = [float(v) for v in rope_inv_freq(theta, dk)]
        e = self.e
        inv_c = e.name("inv_freq")
        e.op(f"{inv_c} = arith.constant dense<[{', '.join(_f64(v) for v in inv)}]>"
             f" : tensor<{half}xf64>")
        ty = f"tensor<?x{half}xf32>"
        tables = []
        for fn in ("cos", "sin"):
            em = e.name("e")
            e.op(f"{em} = tensor.empty(%T) : {ty}")
            n = e.name(fn)
            e.op("\n  ".join([
                f"{n} = linalg.generic {{indexing_maps = [affine_map<(t, i) -> (i)>, "
                f"affine_map<(t, i) -> (t, i)>], iterator_types = [\"parallel\", \"parallel\"]}}",
                f"    ins({inv_c} : tensor<{half}xf64>) outs({em} : {ty}) {{",
                "  ^bb0(%f: f64, %o: f32):",
                "    %ti = linalg.index 0 : index",
                "    %t64 = arith.index_cast %ti : index to i64",
                "    %tf = arith.sitofp %t64 : i64 to f64",
                "    %ang = arith.mulf %tf, %f : f64",
                f"    %r = math.{fn} %ang : f64",
                "    %r32 = arith.truncf %r : f64 to f32",
                "    linalg.yield %r32 : f32",
                f"  }} -> {ty}"]))
            tables.append(n)
        return tables, half

    def rope(self, src, tables, half):
        """x' = x cos + rot(x) sin with the module's mixed convention:
        frequencies repeated (channel c uses c mod dk/2), partners
        interleaved (rot(x)[2i] = -x[2i+1], rot(x)[2i+1] = x[2i])."""
        H, dk = self.cfg["n_head"], self.cfg["d_k"]
        ty = tensor_type("?", "?", H, dk)
        tty = f"tensor<?x{half}xf32>"
        partner = "c + 1 - (c mod 2) * 2"

        def body(a):
            b = ScalarBody()
            ci = b.v("linalg.index 3 : index")
            two = b.v("arith.constant 2 : index")
            par = b.v(f"arith.remui {ci}, {two} : index")
            zero = b.v("arith.constant 0 : index")
            odd = b.v(f"arith.cmpi ne, {par}, {zero} : index")
            neg = b.v(f"arith.negf {a[1]} : f32")
            rot = b.v(f"arith.select {odd}, {a[1]}, {neg} : f32")
            return b.lines, b.v(f"math.fma {rot}, {a[3]}, "
                                f"{b.mul(a[0], a[2])} : f32")
        return self.e.generic(
            ("b", "t", "h", "c"), ["parallel"] * 4,
            [(src, ty, ["b", "t", "h", "c"]),
             (src, ty, ["b", "t", "h", partner]),
             (tables[0], tty, ["t", f"c mod {half}"]),
             (tables[1], tty, ["t", f"c mod {half}"])],
            (self.e.empty(ty), ty, ["b", "t", "h", "c"]), body)

    def constant_heads(self, value):
        H, dv = self.cfg["n_head"], self.cfg["d_v"]
        return self.e.fill(value, tensor_type("?", "?", H, dv))

    def mamba_inputs(self):
        """delta = exp(-softplus(p[:E])), Bs/Cs = softplus(p[E:E+R],
        p[E+R:]) + eps, A = -softplus(A_log), D = softplus(D_diag) + eps."""
        cfg = self.cfg
        E, R, eps = cfg["fem_dim"], cfg["ssm_rank"], cfg["eps"]
        # p = W_p x (one projection), then its three column ranges.
        p = self.linear_flat(self.x, self.D, "W_p", E + 2 * R)
        pty = tensor_type("?", "?", E + 2 * R)

        def part(first, width):
            n = self.e.name("p")
            self.e.op(f"{n} = tensor.extract_slice {p}[0, 0, {first}] "
                      f"[%B, %T, {width}] [1, 1, 1] : {pty} to "
                      f"{tensor_type('?', '?', width)}")
            return n
        delta_raw = part(0, E)
        b_raw = part(E, R)
        c_raw = part(E + R, R)

        def delta_body(a):
            b = ScalarBody()
            return b.lines, b.v(f"math.exp {b.v(f'arith.negf {b.softplus(a[0])} : f32')} : f32")

        def pos_body(a):
            b = ScalarBody()
            return b.lines, b.add(b.softplus(a[0]), b.c(eps))

        ety = tensor_type("?", "?", E)
        delta = self.e.generic(
            ("b", "t", "n"), ["parallel"] * 3, [(delta_raw, ety, ["b", "t", "n"])],
            (self.e.empty(ety), ety, ["b", "t", "n"]), delta_body)
        rty = tensor_type("?", "?", R)
        Bs = self.e.generic(
            ("b", "t", "n"), ["parallel"] * 3, [(b_raw, rty, ["b", "t", "n"])],
            (self.e.empty(rty), rty, ["b", "t", "n"]), pos_body)
        Cs = self.e.generic(
            ("b", "t", "n"), ["parallel"] * 3, [(c_raw, rty, ["b", "t", "n"])],
            (self.e.empty(rty), rty, ["b", "t", "n"]), pos_body)

        def neg_body(a):
            b = ScalarBody()
            return b.lines, b.v(f"arith.negf {b.softplus(a[0])} : f32")
        aty = tensor_type(E, R)
        ea = self.e.name("e")
        self.e.op(f"{ea} = tensor.empty() : {aty}")
        A = self.e.generic(
            ("e", "n"), ["parallel"] * 2,
            [(self.arg["A_log"], aty, ["e", "n"])], (ea, aty, ["e", "n"]),
            neg_body)
        dty = tensor_type(E)
        ed = self.e.name("e")
        self.e.op(f"{ed} = tensor.empty() : {dty}")
        Dd = self.e.generic(
            ("e",), ["parallel"], [(self.arg["D_diag"], dty, ["e"])],
            (ed, dty, ["e"]), pos_body)
        return delta, A, Bs, Cs, Dd

    def build(self, func_name, shapes, layer_attr):
        """The whole layer function (text)."""
        args = [f'%x: {self.xty} {{fem.name = "x", fem.dims = "B,T,D"}}']
        if self.mask:
            args.append(f'%mask: {tensor_type("?", "?")} '
                        '{fem.name = "attention_mask", fem.dims = "B,T"}')
        for i, name in enumerate(self.names):
            args.append(f"%p{i}: {tensor_type(*shapes[name])} "
                        f"{{fem.name = {json.dumps(name)}}}")
        self.bind({name: f"%p{i}" for i, name in enumerate(self.names)},
                  shapes)
        prologue(self.e, self.x, self.xty)
        y = self.body()
        self.e.op(f"return {y} : {self.xty}")
        head = (f"func.func @{func_name}(\n    " + ",\n    ".join(args) +
                f")\n    -> ({self.xty} {{fem.name = \"y\", fem.dims = \"B,T,D\"}})\n"
                f"    attributes {{fem.layer = {layer_attr}}} {{")
        return head + "\n" + "\n".join(self.e.lines) + "\n}\n"

    def body(self):
        """Emit section 7 on self.x; returns y's SSA value (B,T,D). Needs
        %c0, %c1, %B and %T (prologue) and every parameter bound."""
        cfg = self.cfg
        e = self.e
        H, E, dk, dv = cfg["n_head"], cfg["fem_dim"], cfg["d_k"], cfg["d_v"]
        prior = cfg["prior_type"]

        # Step 3's conditioning first: every later step reads its output.
        self.tdc = None
        if cfg["use_conv"]:
            acc = None
            for branch in tdc_branches(cfg):
                acc = self.tdc_branch(f"tdc.{branch}.", self.x, acc)
            self.tdc = acc

        def at(o):
            return None if self.tdc is None else o

        # Steps 1-3: projections, mask on k and v, the TDC scales.
        v = self.linear_heads(self.x, "W_v", H, dv)
        v = self.modulate(v, H, dv, at(0), self.mask)
        q = k = None
        if prior != "mamba":
            q = self.linear_heads(self.x, "W_q", H, dk)
            k = self.linear_heads(self.x, "W_k", H, dk)
            q = self.modulate(q, H, dk, at(E), False)
            k = self.modulate(k, H, dk, at(E + H * dk), self.mask)
        off = E + 2 * H * dk
        # Step 4: RoPE.
        if cfg["use_rope"] and q is not None:
            tables, half = self.rope_tables()
            q = self.rope(q, tables, half)
            k = self.rope(k, tables, half)
        # Step 5: lambda and gate logits (the kernel takes sigmoid and the
        # normalised softplus); a missing gate is a constant 0 (g = 1).
        use_branch = cfg["use_temperature"] or cfg["use_lse"]
        if use_branch:
            lam = self.linear_heads(self.x, "W_lambda", H, dv)
            lam = self.modulate(lam, H, dv, at(off), False)
            off += E
        else:
            # Only mu is read: lambda = sigmoid(-100) ~ 4e-44 drops F.
            lam = self.constant_heads(-100.0)
        if cfg["use_outer_gate"]:
            gate = self.linear_heads(self.x, "W_gate", H, dv)
            gate = self.modulate(gate, H, dv, at(off), False)
            off += E
        else:
            gate = self.constant_heads(0.0)
        if cfg["use_lse"] and not cfg["use_temperature"] and prior != "mamba":
            out = self.unit_temperature_read(q, k, v, lam, gate)
            return self.output_projection(out)
        # Step 6: beta. use_temperature: the learned parameter; use_lse
        # alone (mamba: the kernel's sigmoid keeps V in (0, 1), far inside
        # the clip): beta = 1; neither: beta ~ 1e-6 so the clip
        # (cap/beta ~ 4e7) does not bind and only mu counts.
        cap = cfg["value_logexp_cap"]
        eps = cfg["eps"]
        if cfg["use_temperature"]:
            beta = self.arg["_beta_param"]
        else:
            if cfg["use_lse"]:
                raw = math.log(math.expm1(1.0 - eps))   # eps < 1 (checked)
                cap = MAX_CAP
            else:
                raw = -30.0
                cap = MAX_CAP
            beta = e.name("beta")
            e.op(f"{beta} = arith.constant dense<{_f32(raw)}> : {tensor_type(E)}")
        # Step 7: the FEM read. Only mu (not mamba, whose kernel squashes
        # V into (0, 1) itself): no clip, so V goes in scaled by 2^-S (exact)
        # and mu comes out scaled back; the kernel's clip at cap/beta, beta
        # >= eps, would otherwise bind for |V| > cap/eps.
        unscaled = not use_branch and prior != "mamba"
        if unscaled:
            v = self.scale_heads(v, dv, 2.0 ** -_unclip_shift(cfg))
        out = self.mixer(q, k, v, beta, lam, gate, cap, dv)
        if unscaled:
            out = self.scale_heads(out, dv, 2.0 ** _unclip_shift(cfg))
        if unscaled and prior == "rnn_softmax":
            out = self.aft_mu_only_norm(out, q)
        return self.output_projection(out)

    def aft_mu_only_norm(self, out, q):
        """rnn_softmax reading mu only: the module's read is over V alone,
        W = dv channels, so q^ = p sqrt(dv) / max(||p||_dv, 1e-5); the
        kernel's is over [V | X], W = 2 dv, with ||p||_2dv = sqrt(2)
        ||p||_dv, which is the same q^ except where the clamp binds: there
        the kernel's q^ is sqrt(2) times the module's (every p = softplus(q)
        + eps of a row below ~1e-5 / sqrt(dv): q < -14 in every channel at
        eps 1e-6). out *= aft_norm_ratio."""
        H, dv = self.cfg["n_head"], self.cfg["d_v"]
        r = self.aft_norm_ratio(q, dv, 2.0)
        hv = tensor_type("?", "?", H, dv)

        def fix(a):
            b = ScalarBody()
            return b.lines, b.mul(a[0], a[1])
        return self.e.generic(("b", "t", "h", "c"), ["parallel"] * 4,
                              [(out, hv, ["b", "t", "h", "c"]),
                               (r, tensor_type("?", "?", H), ["b", "t", "h"])],
                              (self.e.empty(hv), hv, ["b", "t", "h", "c"]),
                              fix)

    def aft_norm_ratio(self, q, module_width, ratio):
        """rnn_softmax: the module's q^ over the kernel's, (B,T,H), where the
        kernel's read is `ratio` times the module's module_width wide: q^ =
        p sqrt(W) / max(||p||_W, 1e-5) is the same for every W a multiple
        of dk except where the clamp binds, so the ratio is max(n, 1e-5 /
        sqrt(ratio)) / max(n, 1e-5), n = ||min(p, 1)||_module_width (equal
        to ||p|| where either clamp binds; no square overflows), over
        channel c's q channel c mod dk."""
        cfg, e = self.cfg, self.e
        H, dk, eps = cfg["n_head"], cfg["d_k"], cfg["eps"]
        qty = tensor_type("?", "?", H, dk)
        mw = tensor_type("?", "?", H, module_width)
        nty = tensor_type("?", "?", H)

        def square(a):
            # a[1] only gives the loop over c its extent module_width
            b = ScalarBody()
            p = b.add(b.softplus(a[0]), b.c(eps))
            p = b.v(f"arith.minimumf {p}, {b.c(1.0)} : f32")
            return b.lines, b.add(a[2], b.mul(p, p))
        n2 = e.generic(("b", "t", "h", "c"), ["parallel"] * 3 + ["reduction"],
                       [(q, qty, ["b", "t", "h", f"c mod {dk}"]),
                        (e.empty(mw), mw, ["b", "t", "h", "c"])],
                       (e.fill(0.0, nty), nty, ["b", "t", "h"]), square)

        def ratio_body(a):
            b = ScalarBody()
            n = b.v(f"math.sqrt {a[0]} : f32")
            return b.lines, b.div(b.maxf(n, b.c(1e-5 / math.sqrt(ratio))),
                                  b.maxf(n, b.c(1e-5)))
        return e.generic(("b", "t", "h"), ["parallel"] * 3,
                         [(n2, nty, ["b", "t", "h"])],
                         (e.empty(nty), nty, ["b", "t", "h"]), ratio_body)

    def scale_heads(self, src, width, factor):
        """src * factor, (B,T,H,width)."""
        ty = tensor_type("?", "?", self.cfg["n_head"], width)

        def body(a):
            b = ScalarBody()
            return b.lines, b.mul(a[0], b.c(factor))
        return self.e.generic(("b", "t", "h", "c"), ["parallel"] * 4,
                              [(src, ty, ["b", "t", "h", "c"])],
                              (self.e.empty(ty), ty, ["b", "t", "h", "c"]),
                              body)

    def mixer(self, q, k, v, beta, lam, gate, cap, dv):
        """One fem.mixer on v, lam, gate of width dv per head (B,T,H,dv)."""
        cfg = self.cfg
        e = self.e
        H, E, dk = cfg["n_head"], cfg["fem_dim"], cfg["d_k"]
        prior = cfg["prior_type"]
        eps = cfg["eps"]
        hv = tensor_type("?", "?", H, dv)
        hk = tensor_type("?", "?", H, dk)
        operands = []
        if q is not None:
            operands += [f"q({q} : {hk})", f"k({k} : {hk})"]
        operands += [f"v({v} : {hv})",
                     f"beta_raw({beta} : {tensor_type(H * dv)})",
                     f"lam({lam} : {hv})", f"gate({gate} : {hv})"]
        if prior == "gla":
            decay = self.linear_heads_scalar("W_decay", H)
            operands.append(f"decay({decay} : {tensor_type('?', '?', H)})")
        if prior == "mamba":
            delta, A, Bs, Cs, Dd = self.mamba_inputs()
            R = cfg["ssm_rank"]
            operands += [f"delta({delta} : {tensor_type('?', '?', E)})",
                         f"A({A} : {tensor_type(E, R)})",
                         f"Bs({Bs} : {tensor_type('?', '?', R)})",
                         f"Cs({Cs} : {tensor_type('?', '?', R)})",
                         f"D({Dd} : {tensor_type(E)})"]
        attrs = [f"cap = {_f64(cap)} : f64", f"eps = {_f64(eps)} : f64"]
        if cfg["causal"] and prior in ("softmax", "linear"):
            attrs.insert(0, "causal")
        out = e.name("read")
        e.op(f"{out} = fem.mixer {cfg['fem_prior']} " + " ".join(operands) +
             f" {{{', '.join(attrs)}}} -> {hv}")
        return out

    def unit_temperature_read(self, q, k, v, lam, gate):
        """use_lse without use_temperature (section 7 step 6): beta = 1 and
        **no clip**, so |V| may exceed any cap the kernels accept (43). The
        kernel reads the panel [V * 2^-S | D | X_0 | ... | X_{K-1}] (parts
        in _lse_parts' order), beta ~ eps, lambda ~ 0 and g = 1 on every
        part but D: mu from V * 2^-S (the 2^-S scale, exact,
        _unclip_shift, keeps the kernel's clip at cap/beta at 1e17 or
        beyond; mu is linear in it); X = exp(V - M), M the max over t of V,
        cut into K bands by d = V - M (see LSE_BAND), so that no band
        underflows in float32 where V spans more than float32's exponent
        range (~87): section 3's F = (1/beta) log(R(e^V) + tiny) is exact
        math, and a float64 reading sees no underflow up to a span of
        ~745. The bands' F = logaddexp(log tiny - M, log Z_0 - L,
        log Z_1 - W - L, ...) + M rounds d + L to ulp(L), which costs
        ~1e-6 absolute: too much where V is small. D = d is read with
        beta = 1 (clipped at +-43, lambda = 1): the kernel's own F of it,
        exact to a few ulp of F itself (its expm1 panel on narrow
        channels), is F - M on channels whose V spans at most LSE_NARROW
        over t; those take F from D, the rest from the bands. lambda and
        the gate are applied here. Returns the gated mixture (B,T,H,dv)."""
        cfg = self.cfg
        e = self.e
        H, dv, eps = cfg["n_head"], cfg["d_v"], cfg["eps"]
        hv = tensor_type("?", "?", H, dv)
        lift = _lse_lift(cfg)
        K, W = _lse_bands(lift)
        P, parts = _lse_parts(cfg, K)
        hw = tensor_type("?", "?", H, P * dv)
        mty = tensor_type("?", H, dv)

        # M[b,h,c] = max over t of V (all positions, masked ones are 0),
        # N[b,h,c] the min.
        def extreme(init, op):
            m0 = e.name("e")
            e.op(f"{m0} = tensor.empty(%B) : {mty}")
            mi = e.name("z")
            e.op(f"{mi} = linalg.fill ins({e.const_f32(init)} : f32) "
                 f"outs({m0} : {mty}) -> {mty}")

            def body(a):
                b = ScalarBody()
                return b.lines, b.v(f"arith.{op} {a[1]}, {a[0]} : f32")
            return e.generic(("b", "t", "h", "c"),
                             ["parallel", "reduction", "parallel", "parallel"],
                             [(v, hv, ["b", "t", "h", "c"])],
                             (mi, mty, ["b", "h", "c"]), body)
        M = extreme(-math.inf, "maximumf")
        N = extreme(math.inf, "minimumf")

        shift = _unclip_shift(cfg)
        # The panel (B,T,H,P,dv) -> (B,T,H,P*dv): part 0 is V * 2^-S,
        # part parts[0] is d, part parts[1+k] the band k of X:
        # exp(d + k W + L) where band(d) = k, else 0, with d = V - M <= 0
        # and band(d) = min(floor(-d / W), K - 1); any other part is 0.
        # The band is decided once per element, so each e^d is counted in
        # exactly one part; a band's values lie in (e^(L - W), e^L] (the
        # last one's below, underflowing beyond a span of (K-1) W + L + 87).
        # By the part's index (no insert_slice: the layer pipeline would
        # copy it through a runtime call).
        pty = tensor_type("?", "?", H, P, dv)
        stride = parts[1] - parts[0]

        def panel_body(a):
            b = ScalarBody()
            part = b.v("linalg.index 3 : index")
            zero = b.v("arith.constant 0 : index")
            first = b.v(f"arith.cmpi eq, {part}, {zero} : index")
            dpart = b.v(f"arith.constant {parts[0]} : index")
            isd = b.v(f"arith.cmpi eq, {part}, {dpart} : index")
            scaled = b.mul(a[0], b.c(2.0 ** -shift))
            d = b.sub(a[0], a[1])
            band = b.v(f"math.floor {b.mul(d, b.c(-1.0 / W))} : f32")
            band = b.v(f"arith.minimumf {band}, {b.c(K - 1)} : f32")
            # k = (part - parts[1]) / stride, exact in f32; a part between
            # two bands (stride 2) gets a fraction that matches no band
            k = b.v(f"arith.index_cast {part} : index to i64")
            k = b.v(f"arith.sitofp {k} : i64 to f32")
            k = b.div(b.sub(k, b.c(parts[1])), b.c(stride))
            mine = b.v(f"arith.cmpf oeq, {band}, {k} : f32")
            up = b.add(b.mul(k, b.c(W)), b.c(lift))
            x = b.v(f"math.exp {b.add(d, up)} : f32")
            tilt = b.v(f"arith.select {mine}, {x}, {b.c(0.0)} : f32")
            tilt = b.v(f"arith.select {isd}, {d}, {tilt} : f32")
            return b.lines, b.v(f"arith.select {first}, {scaled}, {tilt} : f32")
        p5 = e.name("e")
        e.op(f"{p5} = tensor.empty(%B, %T) : {pty}")
        p5 = e.generic(("b", "t", "h", "p", "c"), ["parallel"] * 5,
                       [(v, hv, ["b", "t", "h", "c"]),
                        (M, mty, ["b", "h", "c"])],
                       (p5, pty, ["b", "t", "h", "p", "c"]), panel_body)
        panel = e.name("u")
        e.op(f"{panel} = tensor.collapse_shape {p5} [[0], [1], [2], [3, 4]] "
             f": {pty} into {hw}")
        # beta_raw -30 (beta ~ eps) on every part, log(e^(1 - eps) - 1)
        # (beta = 1) on D; lambda logits -100 (lambda ~ 4e-44), +100
        # (lambda = 1) on D.
        bty = tensor_type(P * H * dv)

        def on_d(index, width, yes, no):
            def body(a):
                b = ScalarBody()
                i = b.v(f"linalg.index {index} : index")
                # the part of channel i: (i / dv) mod (width / dv)
                w = b.v(f"arith.constant {dv} : index")
                part = b.v(f"arith.divui {i}, {w} : index")
                w = b.v(f"arith.constant {width // dv} : index")
                part = b.v(f"arith.remui {part}, {w} : index")
                w = b.v(f"arith.constant {parts[0]} : index")
                hit = b.v(f"arith.cmpi eq, {part}, {w} : index")
                return b.lines, b.v(f"arith.select {hit}, {b.c(yes)}, "
                                    f"{b.c(no)} : f32")
            return body
        b0 = e.name("e")
        e.op(f"{b0} = tensor.empty() : {bty}")
        beta = e.generic(("e",), ["parallel"], [], (b0, bty, ["e"]),
                         on_d(0, P * dv, math.log(math.expm1(1.0 - eps)),
                              -30.0))
        lam0 = e.generic(("b", "t", "h", "c"), ["parallel"] * 4, [],
                         (e.empty(hw), hw, ["b", "t", "h", "c"]),
                         on_d(3, P * dv, 100.0, -100.0))
        gate0 = e.fill(0.0, hw)
        R = self.mixer(q, k, panel, beta, lam0, gate0, MAX_CAP, P * dv)
        aft = cfg["prior_type"] == "rnn_softmax"
        if aft:
            # the kernel's q^ is normalised over 2 P dv, the module's
            # over 2 dv: mu and the bands' Z are r times the module's, D's
            # F log r more (aft_norm_ratio)
            r = self.aft_norm_ratio(q, 2 * dv, P)
        # The gate's norm over the dv channels of one (b,t,h), scaled as
        # the kernels take it (hypot): m = max g+, ||g+|| = m * ||g+ / m||,
        # so no square overflows (logits >= 2e19) or underflows.
        gate_on = cfg["use_outer_gate"]
        if gate_on:
            nty = tensor_type("?", "?", H)

            def gmax(a):
                b = ScalarBody()
                return b.lines, b.maxf(a[1], b.add(b.softplus(a[0]),
                                                   b.c(eps)))

            def gsq(a):
                b = ScalarBody()
                u = b.div(b.add(b.softplus(a[0]), b.c(eps)), a[1])
                return b.lines, b.add(a[2], b.mul(u, u))
            reduce = ["parallel"] * 3 + ["reduction"]
            gm = e.generic(("b", "t", "h", "c"), reduce,
                           [(gate, hv, ["b", "t", "h", "c"])],
                           (e.fill(0.0, nty), nty, ["b", "t", "h"]), gmax)
            gsum = e.generic(("b", "t", "h", "c"), reduce,
                             [(gate, hv, ["b", "t", "h", "c"]),
                              (gm, nty, ["b", "t", "h"])],
                             (e.fill(0.0, nty), nty, ["b", "t", "h"]), gsq)
        R5 = e.name("r")
        e.op(f"{R5} = tensor.expand_shape {R} [[0], [1], [2], [3, 4]] "
             f"output_shape [%B, %T, {H}, {P}, {dv}] : {hw} into {pty}")
        used = [0] + list(parts)
        ins = [(R5, pty, ["b", "t", "h", str(i), "c"]) for i in used]
        n = len(used)
        ins += [(M, mty, ["b", "h", "c"]), (N, mty, ["b", "h", "c"]),
                (lam, hv, ["b", "t", "h", "c"])]
        if aft:
            ins += [(r, tensor_type("?", "?", H), ["b", "t", "h"])]
        if gate_on:
            ins += [(gate, hv, ["b", "t", "h", "c"]),
                    (gm, nty, ["b", "t", "h"]), (gsum, nty, ["b", "t", "h"])]

        def combine(a):
            b = ScalarBody()
            Ma, Na, la = a[n], a[n + 1], a[n + 2]
            rest = a[n + 3:]
            ra = None
            if aft:
                ra, rest = rest[0], rest[1:]
            mu = b.mul(a[0], b.c(2.0 ** shift))
            if aft:
                mu = b.mul(mu, ra)
            # log Z = log sum_k Z_k e^(-k W), with section 3's floor:
            # F = logaddexp(log tiny - M, log Z_0, log Z_1 - W, ...) + M,
            # each step hi + log1p(exp(lo - hi)); the running value starts
            # finite, and an empty band (log Z_k = -inf) leaves it as is.
            acc = b.sub(b.c(math.log(2.0 ** -126)), Ma)
            for band in range(K):
                z = a[2 + band]
                if aft:
                    z = b.mul(z, ra)
                pos = b.v(f"arith.cmpf ogt, {z}, {b.c(0.0)} : f32")
                logz = b.v(f"arith.select {pos}, "
                           f"{b.v(f'math.log {z} : f32')}, "
                           f"{b.c(-math.inf)} : f32")
                logz = b.sub(logz, b.c(band * W + lift))
                hi = b.maxf(logz, acc)
                lo = b.v(f"arith.minimumf {logz}, {acc} : f32")
                ex = b.v(f"math.exp {b.sub(lo, hi)} : f32")
                acc = b.add(hi, b.v(f"math.log1p {ex} : f32"))
            F = b.add(acc, Ma)
            # a channel of V within LSE_NARROW over t: F from D, with
            # section 3's floor: logaddexp(F_D + M, log tiny). (The
            # kernel's own tiny is relative to e^(max d) = 1, under e^-50
            # of R(e^d) >= e^-16 R(1); the floor binds where V < -87, as
            # at T = 1 with V = -137: F = -87.3, not V.)
            Fd = b.add(a[1], Ma)
            if aft:
                Fd = b.add(Fd, b.v(f"math.log {ra} : f32"))
            tiny = b.c(math.log(2.0 ** -126))
            hi = b.maxf(Fd, tiny)
            lo = b.v(f"arith.minimumf {Fd}, {tiny} : f32")
            Fd = b.add(hi, b.v(f"math.log1p "
                               f"{b.v(f'math.exp {b.sub(lo, hi)} : f32')}"
                               f" : f32"))
            narrow = b.v(f"arith.cmpf ole, {b.sub(Ma, Na)}, "
                         f"{b.c(LSE_NARROW)} : f32")
            F = b.v(f"arith.select {narrow}, {Fd}, {F} : f32")
            lam = b.div(b.c(1.0), b.add(b.c(1.0), b.v(
                f"math.exp {b.v(f'arith.negf {la} : f32')} : f32")))
            mixed = b.add(mu, b.mul(lam, b.sub(F, mu)))
            if gate_on:
                ga, gma, gsa = rest[:3]
                u = b.div(b.add(b.softplus(ga), b.c(eps)), gma)
                norm = b.maxf(b.v(f"math.sqrt {gsa} : f32"),
                              b.div(b.c(1e-5), gma))
                g = b.mul(b.div(u, norm), b.c(math.sqrt(dv)))
                mixed = b.mul(g, mixed)
            return b.lines, mixed
        return e.generic(("b", "t", "h", "c"), ["parallel"] * 4, ins,
                         (e.empty(hv), hv, ["b", "t", "h", "c"]), combine)

    def output_projection(self, out):
        """y = W_o merge(out) + b, out (B,T,H,dv)."""
        cfg = self.cfg
        D, H, dv = self.D, cfg["n_head"], cfg["d_v"]
        hv = tensor_type("?", "?", H, dv)
        yty = self.xty
        init = self.bias_init("W_o.bias", ("b", "t", "n"), yty, "n")
        wo = self.expand_weight("W_o.weight", (D, H, dv), "[[0], [1, 2]]")
        y = self.e.generic(
            ("b", "t", "n", "h", "c"), ["parallel"] * 3 + ["reduction"] * 2,
            [(out, hv, ["b", "t", "h", "c"]),
             (wo, tensor_type(D, H, dv), ["n", "h", "c"])],
            (init, yty, ["b", "t", "n"]), _mul_acc)
        return y

    def linear_heads_scalar(self, name, heads):
        """(B,T,heads) = src @ W.T + b for a per-head projection (W_decay)."""
        ty = tensor_type("?", "?", heads)
        init = self.bias_init(name + ".bias", ("b", "t", "h"), ty, "h")
        return self.e.generic(
            ("b", "t", "h", "k"), ["parallel"] * 3 + ["reduction"],
            [(self.x, self.xty, ["b", "t", "k"]),
             (self.arg[name + ".weight"], tensor_type(heads, self.D), ["h", "k"])],
            (init, ty, ["b", "t", "h"]), _mul_acc)


def _lse_lift(cfg):
    """L: the bands of X = exp(V - M) enter the kernel as exp(d + k W + L),
    in (e^(L - W), e^L], near the top of what the kernel's clip lets through
    (cap / beta at beta_raw -30: beta ~ eps), so that X times a small prior
    weight (gla's decay reaches e^-110) stays in float32's range; 16 at
    eps = 1e-6, at most 20, so that sums over many keys stay far from
    overflow."""
    beta = cfg["eps"] + math.log1p(math.exp(-30.0))
    return float(max(0, min(20, math.floor(math.log(MAX_CAP / beta)) - 1)))


def _lse_bands(lift):
    """(K, W): the bands' count and width. A band's values lie in
    (e^(L - W), e^L], W = LSE_BAND = 20: >= e^-4 at L = 16 (eps = 1e-6),
    >= e^-17 at L = 3 (eps = 0.3); K - 1 of them cover LSE_SPAN = 720 (37
    bands). Bands of 80 let values fall to e^-64 (e^-77 at eps = 0.3),
    where a gla key of weight e^-22 was lost (e^-83: layer_fuzz seed 42
    index 7, 2.6e-2 max|y|); bands of 40 to e^-24, where gla keys of
    weight e^-69 (the decay's clamp at -60) gave subnormal terms of a few
    bits that carried F (layer_fuzz seed 53 index 83, 5.6e-4 max|y|)."""
    del lift  # the width no longer depends on it
    W = LSE_BAND
    return 1 + math.ceil(LSE_SPAN / W), W


def _lse_parts(cfg, K):
    """(P, parts): the use_lse-alone panel's part count and the parts of
    D and the K bands (part 0 is V * 2^-S). rnn_softmax tiles q/k over the
    kernel's channels j mod dk; the module's X half reads (dv + c) mod dk.
    Where dk divides dv every part reads the same channels as the
    module's. Where it does not (dk | 2 dv: dv = dk/2 mod dk), a part p
    reads (p dv + c) mod dk, the X half's channels only at odd p, so D and
    the bands go to odd parts and the even ones between them hold 0; P is
    then even, so the kernel's own X half of D (P dv + dv + c) also reads
    the module's channels."""
    if cfg["prior_type"] == "rnn_softmax" and cfg["d_v"] % cfg["d_k"]:
        return 2 * (K + 1), tuple(range(1, 2 * (K + 1), 2))
    return K + 2, tuple(range(1, K + 2))


def _unclip_shift(cfg):
    """S such that V * 2^-S read by a kernel with beta ~ eps (beta_raw -30)
    is clipped only where |V| > 1e17 (the kernel's clip: |V * 2^-S| <=
    cap/beta): 32 for eps = 1e-6; at most 100, so that V * 2^-S stays a
    normal float32 for |V| >= 1e-8."""
    need = 1e17 * cfg["eps"] / MAX_CAP
    return int(min(100, max(0, math.ceil(math.log2(need)))))


def prologue(emitter, x, xty):
    """%c0, %c1 and the dynamic extents %B, %T of x (B,T,...)."""
    emitter.op("%c0 = arith.constant 0 : index")
    emitter.op("%c1 = arith.constant 1 : index")
    emitter.op(f"%B = tensor.dim {x}, %c0 : {xty}")
    emitter.op(f"%T = tensor.dim {x}, %c1 : {xty}")


def _mul_acc(a):
    """acc + a * b: the body of a contraction (mulf then addf, the form
    femc's layer matmul pass recognises)."""
    b = ScalarBody()
    return b.lines, b.add(a[2], b.mul(a[0], a[1]))


def _add_acc(a):
    b = ScalarBody()
    return b.lines, b.add(a[1], a[0])


# The fem.layer dictionary: FreeEnergyMixerConfig's fields, sizes resolved.
_LAYER_FIELDS = ["n_embd", "n_head", "fem_dim", "fem_ratio", "qk_dim",
                 "p_t_to_fem_ratio", "prior_type", "softmax_backend",
                 "dropout", "causal", "bias", "beta_max_init",
                 "value_logexp_cap", "eps", "use_temperature", "use_lse",
                 "use_outer_gate", "use_rope", "rope_theta", "use_conv",
                 "conv_hidden", "conv_norm_first", "conv_bidirectional",
                 "ssm_rank", "mamba_normalize", "align_multiple"]


def layer_attribute(cfg):
    """The fem.layer dictionary attribute (text) of a resolved configuration:
    FreeEnergyMixerConfig's fields, fem_dim = E and qk_dim = H*dk (absent
    for mamba, which has no queries or keys)."""
    items = []
    for key in _LAYER_FIELDS:
        value = cfg[key]
        if key == "qk_dim" and cfg["prior_type"] == "mamba":
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = f"{value} : i64"
        elif isinstance(value, float):
            text = f"{_f64(value)} : f64"
        else:
            text = json.dumps(value)
        items.append(f"{key} = {text}")
    return "{" + ", ".join(items) + "}"


# ---------------------------------------------------------------------------
# The public entry points
# ---------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


# femc's rules for the name of a kernel or layer function, the C entry point
# it exports (driver/CText.cpp, whyNotCName; the lists are the same, which
# test_bad_inputs_round12.py checks). A layer name femc refuses was imported
# and only `femc NAME.mlir` said "function name 'exp' cannot be a kernel's
# C entry point: it is a name of the C or POSIX library".
_C_KEYWORDS = frozenset((
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand",
    "bitor", "bool", "break", "case", "catch", "char", "char16_t",
    "char32_t", "char8_t", "class", "co_await", "co_return", "co_yield",
    "compl", "concept", "const", "const_cast", "consteval", "constexpr",
    "constinit", "continue", "decltype", "default", "delete", "do",
    "double", "dynamic_cast", "else", "enum", "explicit", "export",
    "extern", "false", "float", "for", "friend", "goto", "if", "inline",
    "int", "long", "mutable", "namespace", "new", "noexcept", "not",
    "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected",
    "public", "register", "reinterpret_cast", "requires", "restrict",
    "return", "short", "signed", "sizeof", "static", "static_assert",
    "static_cast", "struct", "switch", "template", "this", "thread_local",
    "throw", "true", "try", "typedef", "typeid", "typename", "typeof",
    "typeof_unqual", "union", "unsigned", "using", "virtual", "void",
    "volatile", "wchar_t", "while", "xor", "xor_eq"))
_C_MATH = (
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt",
    "ceil", "copysign", "cos", "cosh", "erf", "erfc", "exp", "exp10",
    "exp2", "expm1", "fabs", "fdim", "floor", "fma", "fmax", "fmin",
    "fmod", "frexp", "hypot", "ilogb", "ldexp", "lgamma", "llrint",
    "llround", "log", "log10", "log1p", "log2", "logb", "lrint", "lround",
    "modf", "nan", "nearbyint", "nextafter", "nexttoward", "pow",
    "remainder", "remquo", "rint", "round", "scalbln", "scalbn", "sin",
    "sincos", "sinh", "sqrt", "tan", "tanh", "tgamma", "trunc")
_C_NAMES = frozenset((
    "FILE", "NULL", "EOF", "BUFSIZ", "EXIT_FAILURE", "EXIT_SUCCESS",
    "HUGE_VAL", "INFINITY", "NAN", "RAND_MAX", "_Exit", "abort", "abs",
    "accept", "access", "aligned_alloc", "alloca", "asctime", "assert",
    "at_quick_exit", "atexit", "atof", "atoi", "atol", "atoll", "bind",
    "bsearch", "btowc", "calloc", "chdir", "clearerr", "clock", "close",
    "connect", "ctime", "difftime", "div", "dlclose", "dlerror", "dlopen",
    "dlsym", "dup", "dup2", "environ", "errno", "execv", "execve",
    "execvp", "exit", "fclose", "fcntl", "fdopen", "feof", "ferror",
    "fflush", "fgetc", "fgetpos", "fgets", "fileno", "fopen", "fork",
    "fprintf", "fputc", "fputs", "fread", "free", "freopen", "fscanf",
    "fseek", "fsetpos", "fstat", "ftell", "fwrite", "getc", "getchar",
    "getenv", "getpid", "gets", "gmtime", "j0", "j1", "jn", "kill", "labs",
    "ldiv", "listen", "llabs", "lldiv", "localeconv", "localtime",
    "longjmp", "lseek", "main", "malloc", "mblen", "mbstowcs", "mbtowc",
    "mkdir", "mktime", "mmap", "munmap", "offsetof", "open", "perror",
    "pipe", "posix_memalign", "printf", "putc", "putchar", "puts", "qsort",
    "quick_exit", "raise", "rand", "read", "realloc", "recv", "remove",
    "rename", "rewind", "rmdir", "scanf", "select", "send", "setbuf",
    "setjmp", "setlocale", "setvbuf", "signal", "sleep", "snprintf",
    "socket", "sprintf", "srand", "sscanf", "stat", "stderr", "stdin",
    "stdout", "system", "time", "timespec_get", "tmpfile", "tmpnam",
    "ungetc", "unlink", "usleep", "va_arg", "va_copy", "va_end",
    "va_start", "vfprintf", "vprintf", "vsnprintf", "vsprintf", "wait",
    "waitpid", "wcstombs", "wctomb", "write", "y0", "y1", "yn"))


def why_not_c_name(name):
    """Why femc refuses `name` as a kernel or layer function (its exported C
    entry point), or None: driver/CText.cpp's whyNotCName."""
    if not name:
        return "it is empty"
    if not ("a" <= name[0].lower() <= "z"):
        return ("it starts with '_' (reserved for the C implementation and "
                "femc's generated symbols)" if name[0] == "_" else
                "it does not start with an ASCII letter")
    for c in name:
        if not (c.isascii() and (c.isalnum() or c == "_")):
            return ("it contains a non-ASCII character" if not c.isascii()
                    else f"it contains the character {json.dumps(c)}")
    if name in _C_KEYWORDS:
        return "it is a C or C++ keyword"
    if "__" in name:
        return "names containing '__' are reserved in C++"
    if name.lower().startswith(("femc_", "femrt_")):
        return "the prefixes femc_ and femrt_ belong to femc and libfemrt"
    if name == "std":
        return "it is the C++ standard library's namespace"
    if name in _C_NAMES or any(name in (m, m + "f", m + "l")
                               for m in _C_MATH):
        return "it is a name of the C or POSIX library"
    if name.startswith(("INT", "UINT", "SIZE_", "PTRDIFF_", "WCHAR_",
                        "WINT_", "SIG_ATOMIC_")) and \
            name.endswith(("_MAX", "_MIN", "_C")):
        return "it is a <stdint.h> macro"
    if name.endswith("_t"):
        return "names ending in _t are reserved for types (POSIX)"
    return None


class ImportedLayer:
    """What import_layer wrote: ``mlir`` (the .mlir path), ``weights_dir``,
    ``name`` (the layer function), ``config`` (resolved), ``arguments``
    (fem.name of every argument in order, ``x`` first, no ``y``)."""

    def __init__(self, name, mlir, weights_dir, config, arguments, params):
        self.name = name
        self.mlir = mlir
        self.weights_dir = weights_dir
        self.config = config
        self.arguments = arguments
        self._params = params

    def weights(self):
        """The parameters as float32 arrays, by fem.name (for
        ``femc.load(lib).kernel(name).run(x=x, **layer.weights())``)."""
        return OrderedDict(self._params)

    def __repr__(self):
        return (f"ImportedLayer(name={self.name!r}, mlir={self.mlir!r}, "
                f"prior={self.config['prior_type']!r})")


def check_layer(tensors, config):
    """Resolve a configuration and check a state_dict against it; returns
    (resolved configuration, OrderedDict name -> float32 array in the
    state_dict's order). Raises LayerImportError."""
    cfg = resolve_config(config)
    _check_supported(cfg, tensors)
    _check_tensors(cfg, tensors)
    params = OrderedDict(
        (k, np.ascontiguousarray(v, dtype=np.float32))
        for k, v in tensors.items())
    return cfg, params


def weight_file_name(name):
    """The file of one parameter under NAME.weights/ ('/' becomes '_')."""
    return name.replace("/", "_") + ".npy"


def _load_config(config):
    if config is None or isinstance(config, dict):
        return config
    if isinstance(config, Mapping):
        return dict(config)
    path = os.fspath(config)
    try:
        with open(path, encoding="utf-8") as f:
            return _strict_json(f.read())
    except OSError as e:
        raise LayerImportError(f"{path}: cannot read the configuration: "
                               f"{e.strerror}")
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, ours
        raise LayerImportError(f"{path}: the configuration is not JSON ({e})")
    except RecursionError:
        raise LayerImportError(_TOO_DEEP.format(where=path))


def _select_prefix(tensors, prefix):
    """The tensors whose names start with prefix, with it removed (one layer
    of a whole model's state_dict, e.g. prefix "blocks.3.attn.")."""
    picked = OrderedDict((k[len(prefix):], v) for k, v in tensors.items()
                         if isinstance(k, str) and k.startswith(prefix))
    if not picked:
        sample = ", ".join(list(tensors)[:5])
        raise LayerImportError(
            f"no parameter name starts with the prefix '{prefix}' (the "
            f"checkpoint has {len(tensors)}: {sample}"
            f"{', ...' if len(tensors) > 5 else ''})")
    return picked


def import_layer(checkpoint, out_dir, config=None, name=None, mask=False,
                 prefix=None):
    """Import one FreeEnergyMixer layer; returns an :class:`ImportedLayer`.

    checkpoint: a path (.pt/.pth/.bin/.ckpt, .safetensors, .npz) or a
    mapping name -> array (a state_dict already in memory). config: a
    FreeEnergyMixerConfig as a mapping or the path of a JSON file; None
    reads it from the checkpoint. name: the layer function's name (default:
    the checkpoint file's stem, or "fem_layer"). mask: give the layer an
    ``attention_mask`` (B, T) argument (1 keeps a position, 0 pads it:
    keys and values of padded positions are zeroed as the module does).
    prefix: import the parameters whose names start with it (one layer of a
    whole model's state_dict, e.g. "blocks.3.attn."), the prefix removed.
    Raises LayerImportError with a message naming what is wrong.
    """
    # The arguments' types, named (was: a TypeError from deep inside, e.g.
    # "startswith first arg must be str or a tuple of str, not bytes" for a
    # bytes prefix, "expected string or bytes-like object, got 'int'" for
    # name=5; name="" was taken as no name).
    if name is not None and not isinstance(name, str):
        raise LayerImportError(
            f"name must be a str (the layer function's name), found "
            f"{type(name).__name__} {_short_repr(name)}")
    if prefix is not None and not isinstance(prefix, str):
        raise LayerImportError(
            f"prefix must be a str such as 'blocks.3.attn.', found "
            f"{type(prefix).__name__} {_short_repr(prefix)}")
    if config is not None and not isinstance(
            config, (Mapping, str, bytes, os.PathLike)):
        raise LayerImportError(
            "config must be a mapping of FreeEnergyMixerConfig fields or the "
            f"path of a JSON file, found {type(config).__name__} "
            f"{_short_repr(config)}")
    if not isinstance(checkpoint, (Mapping, str, bytes, os.PathLike)):
        raise LayerImportError(
            "checkpoint must be a path (.pt, .safetensors, .npz) or a "
            f"state_dict (a mapping name -> array), found "
            f"{type(checkpoint).__name__} {_short_repr(checkpoint)}")
    if isinstance(checkpoint, Mapping):
        tensors = OrderedDict(
            (k, _in_memory_array(k, v)) for k, v in checkpoint.items())
        stored = None
        default_name = "fem_layer"
    else:
        tensors, stored = load_checkpoint(checkpoint)
        stem = os.path.splitext(os.path.basename(os.fspath(checkpoint)))[0]
        default_name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
        # A stem femc would refuse as the function's name (exp.pt, main.npz,
        # layer_t.safetensors, femc_run.npz) gets the prefix too.
        if not default_name[:1].isalpha() or why_not_c_name(default_name):
            default_name = "fem_" + default_name
    if prefix:
        tensors = _select_prefix(tensors, prefix)
    cfg_in = _load_config(config)
    if cfg_in is None:
        cfg_in = stored
    if cfg_in is None:
        raise LayerImportError(
            "no configuration: give one (--config CONFIG.json, the "
            "FreeEnergyMixerConfig fields as JSON) or store it in the "
            "checkpoint (torch: {'state_dict': ..., 'config': {...}}; "
            ".safetensors: __metadata__ 'config'; .npz: '__config__')")
    name = default_name if name is None else name
    if not _NAME_RE.match(name):
        raise LayerImportError(
            f"layer name '{name}' must be ASCII letters, digits and '_', "
            "starting with a letter (it becomes a C function)")
    why = why_not_c_name(name)
    if why:
        raise LayerImportError(
            f"layer name '{name}' cannot be the layer's C function, which "
            f"femc exports: {why}; give another with --name (name= of "
            "femc.import_layer)")
    cfg, params = check_layer(tensors, cfg_in)
    shapes = {k: tuple(v.shape) for k, v in params.items()}
    layer = LayerEmitter(cfg, list(params), mask)
    text = layer.build(name, shapes, layer_attribute(cfg))
    header = (
        f"// FEM layer '{name}' imported by femc.import (python/femc/importer.py)\n"
        f"// from the authors' FreeEnergyMixer: {describe_sizes(cfg)}.\n"
        "// docs/semantics.md section 7; the parameters are the module's\n"
        f"// state_dict in PyTorch layouts, stored in {name}.weights/.\n")

    out_dir = os.fspath(out_dir)
    mlir = os.path.join(out_dir, name + ".mlir")
    wdir = os.path.join(out_dir, name + ".weights")
    _write_layer(out_dir, wdir, mlir, params, header + text)
    arguments = ["x"] + (["attention_mask"] if mask else []) + list(params)
    return ImportedLayer(name, mlir, wdir, cfg, arguments, params)


def _make_dir(path, created):
    """Create the folder path (and missing parents), appending each folder
    it creates to created."""
    if os.path.isdir(path):
        return
    if os.path.lexists(path):
        raise LayerImportError(f"{path}: cannot write the layer there: it is "
                               "a file, not a folder")
    parent = os.path.dirname(os.path.abspath(path))
    if parent != os.path.abspath(path):
        _make_dir(parent, created)
    try:
        os.mkdir(path)
    except OSError as e:
        raise LayerImportError(f"{path}: cannot create the output folder: "
                               f"{e.strerror}")
    created.append(path)


def _write_layer(out_dir, wdir, mlir, params, text):
    """Write NAME.weights/*.npy and NAME.mlir under out_dir. On a failure
    every file this call wrote and every folder it created is removed
    again, and LayerImportError names the path."""
    created = []
    written = []
    try:
        _make_dir(out_dir, created)
        _make_dir(wdir, created)
        for k, v in params.items():
            f = os.path.join(wdir, weight_file_name(k))
            try:
                np.save(f, v)
            except OSError as e:
                raise LayerImportError(f"{f}: cannot write the parameter: "
                                       f"{e.strerror}")
            written.append(f)
        try:
            with open(mlir, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise LayerImportError(f"{mlir}: cannot write the layer: "
                                   f"{e.strerror}")
    except LayerImportError:
        for f in written:
            if not any(f.startswith(d + os.sep) for d in created):
                try:
                    os.remove(f)
                except OSError:
                    pass
        for d in reversed(created):
            shutil.rmtree(d, ignore_errors=True)
        raise


class _Once(argparse.Action):
    """An option that may be given once: argparse keeps the last of
    several without a word (`--name a --name b` wrote b; femc, fem-opt,
    fem-run and fem-tune refuse a repeated option too)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, "_given_" + self.dest, False):
            parser.error(f"option {'/'.join(self.option_strings)} is given "
                         "twice; give it once")
        setattr(namespace, "_given_" + self.dest, True)
        setattr(namespace, self.dest, values)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m femc.import",
        description="Import one trained FreeEnergyMixer layer (the authors' "
        "PyTorch module) as a femc layer: OUT/NAME.mlir and "
        "OUT/NAME.weights/*.npy. Compile with `femc OUT/NAME.mlir -o LIB`, "
        "run with `fem-run LIB/NAME.so --kernel NAME --inputs "
        "OUT/NAME.weights --input x=x.npy` (add --check to compare with the "
        "layer reference). See docs/layers-examples.md.")
    parser.add_argument("checkpoint", help="state_dict file: .pt/.pth/.bin/"
                        ".ckpt (torch.save, needs torch), .safetensors or .npz")
    parser.add_argument("--config", action=_Once,
                        help="FreeEnergyMixerConfig as JSON (default: the "
                        "configuration stored in the checkpoint)")
    parser.add_argument("-o", "--output", action=_Once, required=True,
                        metavar="OUTDIR",
                        help="folder for NAME.mlir and NAME.weights/")
    parser.add_argument("--name", action=_Once,
                        help="layer function name (default: the checkpoint "
                        "file's stem)")
    parser.add_argument("--mask", action="store_true", help="give the layer "
                        "an attention_mask (B,T) argument, 1 = keep, 0 = pad")
    parser.add_argument("--prefix", action=_Once,
                        help="import the parameters whose names start with "
                        "PREFIX (one layer of a whole model, e.g. "
                        "blocks.3.attn.), the prefix removed")
    args = parser.parse_args(argv)
    try:
        layer = import_layer(args.checkpoint, args.output, config=args.config,
                             name=args.name, mask=args.mask,
                             prefix=args.prefix)
    except LayerImportError as e:
        print(f"femc.import: error: {e}", file=sys.stderr)
        return 1
    print(f"{layer.mlir}: layer @{layer.name} ({layer.config['prior_type']}, "
          f"{len(layer.arguments)} arguments); weights in {layer.weights_dir}")
    return 0
