"""Bad inputs, round 10 (docs/bad-inputs.md): damaged checkpoints in
femc.import, and examples/torch_op/check.py's options. Numpy; the torch
cases skip without PyTorch (ctest runs this file under python.pytest and,
with PyTorch, under python.torch)."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import femc
from femc import LayerImportError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from layer_cases import make_params  # noqa: E402

CONFIG = dict(n_embd=32, n_head=2, conv_hidden=16, prior_type="gla")


# --- femc.import: truncated and damaged archives ------------------------------

def test_truncated_npz_says_truncated(tmp_path):
    # Was: "not a valid .npz file: it is not a zip archive", true of random
    # bytes but not the word for a download cut short.
    path = tmp_path / "cut.npz"
    np.savez(path, **make_params(CONFIG))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(LayerImportError) as e:
        femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)
    assert str(e.value).startswith(
        f"{path}: the .npz file is truncated or corrupt: it starts as a zip "
        "archive but its end (the zip's central directory) is missing or "
        "damaged (")


def _torch_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    params = {k: torch.from_numpy(v) for k, v in make_params(CONFIG).items()}
    path = tmp_path / "layer.pt"
    torch.save(params, path)
    return torch, params, path


def test_truncated_torch_checkpoint_says_truncated(tmp_path):
    # Was: "t.pt: torch.load failed: [Errno 22] Invalid argument".
    _, _, path = _torch_checkpoint(tmp_path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(LayerImportError) as e:
            femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)
        assert str(e.value).startswith(
            f"{path}: the torch.save file is truncated or corrupt: it starts "
            "as a zip archive but its end (the zip's central directory) is "
            "missing or damaged (")
    assert not (tmp_path / "o").exists()


def test_torch_checkpoint_with_a_flipped_byte_is_refused(tmp_path):
    # torch.load does not check the members' CRC-32: a flipped byte in a
    # tensor's data was imported as a wrong weight without a word.
    torch, params, path = _torch_checkpoint(tmp_path)
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30],
                       "little")
    data[start + info.file_size // 2] ^= 0x40
    path.write_bytes(bytes(data))
    loaded = torch.load(path, weights_only=True)   # PyTorch reads it...
    assert any(not torch.equal(loaded[k], params[k]) for k in params)
    with pytest.raises(LayerImportError) as e:       # ...femc.import refuses
        femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)
    assert str(e.value) == (
        f"{path}: the torch.save file is corrupt: its member "
        f"'{info.filename}' fails its CRC-32 check (a damaged copy; save or "
        "download it again)")


def test_torch_checkpoint_that_is_not_a_zip(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x80\x02junk" * 10)
    with pytest.raises(LayerImportError) as e:
        femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)
    assert str(e.value).startswith(f"{path}: torch.load failed (")
    assert str(e.value).endswith(
        "); the file is truncated, corrupt or not a torch.save file")


def test_intact_torch_checkpoint_still_imports(tmp_path):
    _, _, path = _torch_checkpoint(tmp_path)
    layer = femc.import_layer(str(path), str(tmp_path / "o"), config=CONFIG)
    assert os.path.exists(layer.mlir)


@pytest.mark.parametrize("twice", [["--name", "a", "--name", "b"],
                                   ["-o", "X", "--output", "Y"],
                                   ["--config", "C", "--config", "C"]],
                         ids=["name", "output", "config"])
def test_import_cli_option_given_twice(tmp_path, twice):
    # Was: argparse kept the last (`--name a --name b` wrote b.mlir).
    ckpt = tmp_path / "c.npz"
    np.savez(ckpt, **make_params(CONFIG))
    (tmp_path / "C").write_text(__import__("json").dumps(CONFIG))
    base = {"--name": "n", "-o": str(tmp_path / "o"),
            "--config": str(tmp_path / "C")}
    args = [str(ckpt)]
    for flag, value in base.items():
        if flag not in twice and not (flag == "-o" and "--output" in twice):
            args += [flag, value]
    args += [str(tmp_path / v) if v in ("X", "Y", "C") else v for v in twice]
    run = subprocess.run([sys.executable, "-m", "femc.import", *args],
                         capture_output=True, text=True)
    assert run.returncode == 2, run.stdout + run.stderr
    flag = {"--name": "--name", "-o": "-o/--output",
            "--config": "--config"}[twice[0]]
    assert f"error: option {flag} is given twice; give it once" in run.stderr
    assert not any(tmp_path.glob("*/*.mlir"))


# --- examples/torch_op/check.py ------------------------------------------------

CHECK = os.path.join(ROOT, "examples", "torch_op", "check.py")


def _check(*args):
    torch = pytest.importorskip("torch")
    if not hasattr(torch.library, "custom_op"):
        pytest.skip("PyTorch < 2.4 has no torch.library.custom_op")
    return subprocess.run([sys.executable, CHECK, *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--B", "0"], "argument --B: must be at least 1, found 0"),
    (["--T", "-3"], "argument --T: must be at least 1, found -3"),
    (["--T", "x"], "argument --T: 'x' is not a whole number"),
    (["--T", "100000"], "--B 2 --T 100000: the float64 reference would hold "
     "B*H*T*T scores of 1.28e+12 bytes"),
    (["--seed", str(2 ** 80)], f"--seed {2 ** 80}: "),
    (["--library", "/nonexistent/softmax_fem.so"],
     "--library /nonexistent/softmax_fem.so: femrt_module_load_library: "
     "cannot open library"),
    (["--vectors", "/nonexistent"], "--vectors /nonexistent: "),
    (["--femc", "/bin/false"], "with /bin/false failed ("),
], ids=["B0", "Tneg", "Tword", "Thuge", "seed", "library", "vectors",
        "femc"])
def test_check_py_refuses_bad_options_without_a_traceback(args, message):
    # Was: tracebacks (RuntimeError from max() of an empty tensor, torch's
    # negative dimension, femc.Error, FileNotFoundError,
    # CalledProcessError) and exit status 1, which means "the check failed".
    run = _check(*args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert message in run.stdout + run.stderr


def test_check_py_library_without_the_kernel(kernels_lib):
    run = _check("--library", kernels_lib)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "has no kernel named 'softmax_fem'" in run.stdout


def test_check_py_still_checks(softmax_lib):
    run = _check("--library", softmax_lib, "--B", "1", "--T", "5")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("PASS")
