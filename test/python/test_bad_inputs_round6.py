"""Bad inputs, round 6 (docs/bad-inputs.md): the Python module's thread
counts beyond int32 and femc.compile's arguments and a femc that crashes."""

import os
import stat

import numpy as np  # noqa: F401  (the module's tests run with numpy)
import pytest

import femc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
MODEL = os.path.join(ROOT, "examples", "softmax_fem.mlir")


@pytest.mark.parametrize("value", [2**31, 2**70, -2**70])
def test_thread_counts_beyond_int32_are_value_errors(value):
    # Was nanobind's "incompatible function arguments" TypeError, while
    # 100000 got the ValueError naming the range.
    with pytest.raises(ValueError, match=rf"^femc.set_num_threads: threads "
                       rf"is {value}, expected 0 \(one per core\) or 1 to "
                       rf"1024 \(femc.max_threads\)$"):
        femc.set_num_threads(value)
    with pytest.raises(ValueError, match=rf"^femc.load: threads is {value}, "):
        femc.load("/nonexistent.so", threads=value)


def test_thread_count_type_errors_stay():
    with pytest.raises(TypeError):
        femc.set_num_threads(2.0)
    with pytest.raises(TypeError):
        femc.load("/nonexistent.so", threads="2")


@pytest.mark.parametrize("threads", [2**70, -1, 1025, 2.0, True, "4"])
def test_compile_checks_threads_before_femc_runs(tmp_path, threads):
    # Was: femc compiled, then femc.load refused the count (a TypeError for
    # 2**70); now refused before femc runs, nothing written.
    with pytest.raises(femc.CompileError, match=r"^threads: expected None, 0 "
                       r"\(one per core\) or 1 to 1024 \(femc.max_threads\), "
                       r"found "):
        femc.compile(MODEL, tmp_path / "out", threads=threads,
                     femc="/nonexistent/femc")
    assert not (tmp_path / "out").exists()


def test_compile_with_a_femc_killed_by_a_signal(tmp_path):
    # Was "femc failed (exit status -11) compiling ...:" and nothing more.
    crash = tmp_path / "femc"
    crash.write_text("#!/bin/sh\necho 'half a message' >&2\nkill -SEGV $$\n")
    crash.chmod(crash.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(femc.CompileError) as e:
        femc.compile(MODEL, tmp_path / "out", femc=str(crash))
    assert str(e.value) == (f"femc was killed by SIGSEGV (11) compiling "
                            f"{MODEL}:\nhalf a message")
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nkill -KILL $$\n")
    silent.chmod(silent.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(femc.CompileError) as e:
        femc.compile(MODEL, tmp_path / "out", femc=str(silent))
    assert str(e.value) == f"femc was killed by SIGKILL (9) compiling {MODEL}"
