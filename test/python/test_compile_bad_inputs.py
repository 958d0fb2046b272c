"""femc.compile on bad inputs (docs/bad-inputs.md): every failure is a
CompileError naming what was wrong, never a UnicodeDecodeError,
FileNotFoundError or PermissionError from subprocess, and a path starting
with '-' is a path, not one of femc's (or clang's) options.
"""

import os
import shutil

import pytest

import femc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOFTMAX = os.path.join(ROOT, "examples", "softmax_fem.mlir")


def test_model_that_is_not_utf8(femc_bin, tmp_path):
    # femc quotes the offending line, raw bytes and all (was:
    # UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9). Latin-1
    # text: FF FE at the start is a UTF-16 byte-order mark, which femc names
    # without quoting the line.
    model = tmp_path / "latin.mlir"
    model.write_bytes(b"\xe9t\xe9 module {}\n")
    with pytest.raises(femc.CompileError,
                       match=r"latin\.mlir:1:1: error: unexpected "
                             r"character\n\ufffdt\ufffd module"):
        femc.compile(model, tmp_path / "out", femc=femc_bin)


def test_femc_that_cannot_run(tmp_path):
    # was: FileNotFoundError / PermissionError from subprocess
    missing = tmp_path / "no-femc"
    with pytest.raises(femc.CompileError,
                       match=r"^cannot run femc '.*no-femc': No such file or "
                             r"directory$"):
        femc.compile(SOFTMAX, tmp_path / "out", femc=missing)
    with pytest.raises(femc.CompileError,
                       match=r"^cannot run femc '.*': Permission denied$"):
        femc.compile(SOFTMAX, tmp_path / "out", femc=tmp_path)


def test_paths_starting_with_a_dash(femc_bin, tmp_path, monkeypatch):
    # was: femc read the model "-v.mlir" as an option ("Unknown command line
    # argument"), and clang the output folder "-v" ("unknown argument:
    # '-v/softmax_fem.glue.c'").
    monkeypatch.chdir(tmp_path)
    shutil.copy(SOFTMAX, "-v.mlir")
    mod = femc.compile("-v.mlir", "-out", target="x86-64-v3", femc=femc_bin)
    assert mod.kernel("softmax_fem").name == "softmax_fem"
    assert os.path.isfile(os.path.join("-out", "-v.so"))




@pytest.mark.parametrize("arg, value, found", [
    ("tiles", 64, r"found 64 \(int\)"),
    ("tuning_dims", [("T", 4)], r"found \[\('T', 4\)\] \(list\)"),
])
def test_mapping_arguments(arg, value, found, femc_bin, tmp_path):
    # was: TypeError: 'int' object is not iterable / cannot convert
    # dictionary update sequence element
    kwargs = {arg: value}
    if arg == "tuning_dims":
        kwargs["tuning_db"] = tmp_path / "db.json"
    with pytest.raises(femc.CompileError,
                       match=rf"^{arg}: expected a mapping such as .*, "
                             + found):
        femc.compile(SOFTMAX, tmp_path / "out", femc=femc_bin, **kwargs)
    assert not (tmp_path / "out").exists()


def test_path_with_nul_or_bytes(femc_bin, tmp_path):
    with pytest.raises(femc.CompileError,
                       match=r"^model: the path 'a\\x00b\.mlir' contains a "
                             r"NUL character$"):
        femc.compile("a\0b.mlir", tmp_path, femc=femc_bin)
    with pytest.raises(femc.CompileError,
                       match=r"^out_dir: expected a str or os.PathLike path, "
                             r"found bytes$"):
        femc.compile(SOFTMAX, b"out", femc=femc_bin)
