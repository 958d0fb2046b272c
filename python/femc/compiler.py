"""femc.compile: compile a model with the femc tool from Python.

Runs ``femc MODEL -o OUT_DIR`` and loads the library it writes, so a
script can compile (optionally with the tiles ``fem-tune`` recorded in a
tuning database, docs/tuning.md) and run in one place::

    mod = femc.compile("examples/softmax_fem.mlir", "out",
                       tuning_db="tuning.json",
                       tuning_dims={"B": 1, "T": 4096})
    mod.kernel("softmax_fem").tiles      # the recorded tiles on a hit

The femc executable is ``femc=`` when given, else ``$FEMC``, else ``femc``
on the PATH. A failed compile raises :class:`CompileError` with femc's
messages; each warning femc prints (``femc: warning: ...``, e.g. a
tuning database that does not exist) is raised as a Python warning,
:class:`CompileWarning`, with the same text.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import warnings

from ._femc import load, max_threads

__all__ = ["CompileError", "CompileWarning", "compile"]

_WARNING = "femc: warning: "
# femc --matmul-precision's modes (tools/femc/femc.cpp, docs/layers.md).
_MATMUL_PRECISIONS = ("f32", "bf16x3", "bf16x6", "auto")


class CompileError(RuntimeError):
    """femc failed; the text holds femc's messages (stderr)."""


class CompileWarning(UserWarning):
    """femc compiled but warned (e.g. --tuning-db names no file); the text
    is femc's warning without its ``femc: warning: `` prefix."""


def _positive_int(what, value):
    """``value`` as an int when it is a positive integer (an int or a numpy
    integer, not a bool); raises CompileError naming ``what`` otherwise, so
    64.9 is not truncated to 64 and "abc" is not a bare ValueError."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise CompileError(f"{what}: expected a positive integer, found "
                           f"{value!r} ({type(value).__name__})")
    value = value.__index__()
    if value <= 0:
        raise CompileError(f"{what}: expected a positive integer, found "
                           f"{value}")
    return value


def _femc_executable(femc):
    path = femc or os.environ.get("FEMC") or shutil.which("femc")
    if not path:
        raise CompileError("femc not found: pass femc=PATH, set $FEMC or put "
                           "femc on the PATH")
    return os.fspath(path)


def _path_argument(what, path):
    """``path`` (str or os.PathLike) as femc's command line takes it: a
    relative path starting with '-' gets "./" (femc, and the clang it runs
    on the output folder, would read it as an option); a NUL is refused."""
    try:
        path = os.fspath(path)
    except TypeError:  # None, an int: os.fspath's bare "expected str, ..."
        raise CompileError(f"{what}: expected a str or os.PathLike path, "
                           f"found {type(path).__name__}") from None
    if not isinstance(path, str):
        raise CompileError(f"{what}: expected a str or os.PathLike path, "
                           f"found {type(path).__name__}")
    if "\0" in path:
        raise CompileError(f"{what}: the path {path!r} contains a NUL "
                           "character")
    return "./" + path if path.startswith("-") else path


def _mapping(what, value, example):
    """``value`` as a dict when it is a mapping; CompileError otherwise."""
    if not hasattr(value, "items"):
        raise CompileError(f"{what}: expected a mapping such as {example}, "
                           f"found {value!r} ({type(value).__name__})")
    return dict(value)


def compile(model, out_dir, *, target=None, tuning_db=None, tuning_dims=None,
            tiles=None, threads=None, matmul_precision=None, femc=None,
            verbose=False):
    """Compiles ``model`` (a .mlir path) into ``out_dir`` and loads it.

    target: femc's --target (default: femc's, the host).
    tuning_db: a tuning database written by fem-tune; every kernel is
        looked up by its own key and compiled with its recorded tiles, a
        miss keeps the target's defaults (femc --tuning-db).
    tuning_dims: the dynamic extents to look up, e.g. {"B": 1, "T": 4096}
        (femc --tuning-dim; the bucket rounds each up to a power of two).
    tiles: explicit tiles {"q": .., "k": .., "vec": ..}, each a positive
        int (not a bool, float or string); they win over the database, as
        on femc's command line.
    matmul_precision: femc's --matmul-precision for a layer's projections:
        "f32", "bf16x3", "bf16x6" or "auto" (None: femc's default, auto;
        docs/layers.md "Matmul precision").
    threads: passed to femc.load. None (the default): the pool threads
        fem-tune recorded for the kernels (the manifest's "threads", with
        tuning_db; the largest when kernels differ), else the default
        context's threads.
    verbose: femc -v; its messages (where each kernel's tiles came from)
        go to stderr.

    Returns the loaded :class:`Module`. Raises :class:`CompileError` when
    femc fails or an argument is malformed. Each of femc's warnings is
    issued as a :class:`CompileWarning` (warnings.warn) with femc's text,
    e.g. "tuning database 'tuning.json' does not exist; every kernel
    compiles with the target's default tiles (...)": a missing database is
    an empty one (docs/tuning.md), so the compile goes on.
    """
    model = _path_argument("model", model)
    out_dir = _path_argument("out_dir", out_dir)
    # The model's text where its path belongs (was: "femc failed ...
    # compiling <the whole model>: cannot open input file '<the whole
    # model>'").
    if "\n" in model and not os.path.lexists(model):
        raise CompileError(
            "model: expected the path of a .mlir file, found text of "
            f"{model.count(chr(10)) + 1} lines (MLIR?); write it to a file "
            "and pass its path, e.g. pathlib.Path('model.mlir')"
            ".write_text(text)")
    # An existing file as the output folder (was femc's "cannot write
    # 'F/M.kernels.o': Not a directory", naming a file that is not there).
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise CompileError(f"out_dir: '{out_dir}' is a file, not a folder; "
                           "femc writes its files into a folder")
    # Checked before femc runs (femc.load refused it after the compile).
    if threads is not None:
        if (isinstance(threads, bool) or not hasattr(threads, "__index__")
                or not 0 <= threads.__index__() <= max_threads):
            raise CompileError(f"threads: expected None, 0 (one per core) or "
                               f"1 to {max_threads} (femc.max_threads), "
                               f"found {threads!r}")
        threads = threads.__index__()
    executable = _femc_executable(femc)
    args = [executable, model, "-o", out_dir]
    if target is not None:
        args.append(f"--target={target}")
    if tiles is not None:
        names = {"q": "--tile-q", "k": "--tile-k", "vec": "--vec"}
        for name, value in _mapping("tiles", tiles,
                                    "{'q': 64, 'k': 64}").items():
            if name not in names:
                raise CompileError(f"tiles: unknown tile '{name}', expected "
                                   "q, k or vec")
            value = _positive_int(f"tiles[{name!r}]", value)
            args.append(f"{names[name]}={value}")
    if matmul_precision is not None:
        if matmul_precision not in _MATMUL_PRECISIONS:
            raise CompileError(
                f"matmul_precision: expected one of "
                f"{', '.join(repr(m) for m in _MATMUL_PRECISIONS)}, found "
                f"{matmul_precision!r}")
        args.append(f"--matmul-precision={matmul_precision}")
    if tuning_db is not None:
        try:
            db = os.fspath(tuning_db)
        except TypeError:  # an int: os.fspath's bare "expected str, ..."
            raise CompileError(
                "tuning_db: expected a str or os.PathLike path, found "
                f"{type(tuning_db).__name__}") from None
        args += ["--tuning-db", db]
    if tuning_dims is not None:
        if tuning_db is None:
            raise CompileError("tuning_dims needs tuning_db")
        for sym, value in _mapping("tuning_dims", tuning_dims,
                                   "{'B': 1, 'T': 4096}").items():
            args += ["--tuning-dim", f"{sym}={value}"]
    if verbose:
        args.append("-v")
    # target, tuning_db and tuning_dims reach the command line as given: a
    # NUL was subprocess's bare "ValueError: embedded null byte".
    for arg in args:
        if ("\0" if isinstance(arg, str) else b"\0") in arg:
            raise CompileError(f"the femc argument {arg!r} contains a NUL "
                               "character")
    # femc quotes the model's lines in its diagnostics, which need not be
    # UTF-8: undecodable bytes become U+FFFD instead of a UnicodeDecodeError.
    try:
        done = subprocess.run(args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              encoding="utf-8", errors="replace")
    except OSError as e:
        raise CompileError(f"cannot run femc '{executable}': "
                           f"{e.strerror or e}") from e
    # femc's warnings become Python warnings (once each, not also on
    # stderr); the rest of its messages go to stderr with verbose.
    lines = done.stderr.splitlines(keepends=True)
    if verbose:
        sys.stderr.write("".join(l for l in lines
                                 if not l.startswith(_WARNING)))
    for line in lines:
        if line.startswith(_WARNING):
            warnings.warn(line[len(_WARNING):].rstrip("\n"), CompileWarning,
                          stacklevel=2)
    if done.returncode < 0:
        # Killed (a crash, the OOM killer, a timeout): "exit status -11"
        # named no cause.
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = "an unknown signal"
        raise CompileError(f"femc was killed by {name} ({-done.returncode}) "
                           f"compiling {model}"
                           + (f":\n{done.stderr.rstrip()}"
                              if done.stderr.strip() else ""))
    if done.returncode != 0:
        raise CompileError(f"femc failed (exit status {done.returncode}) "
                           f"compiling {model}:\n{done.stderr.rstrip()}")
    stem = os.path.splitext(os.path.basename(model))[0]
    if threads is None:
        threads = tuned_threads(os.path.join(out_dir, stem + ".json"))
    return load(os.path.join(out_dir, stem + ".so"), threads=threads)


def tuned_threads(manifest):
    """The pool threads fem-tune recorded for the kernels of the manifest
    ``manifest`` (their "threads"; the largest when they differ), or None
    when none has any."""
    try:
        with open(manifest, encoding="utf-8") as f:
            kernels = json.load(f).get("kernels", [])
    except (OSError, ValueError) as e:
        raise CompileError(f"cannot read the manifest {manifest}: {e}")
    counts = []
    for i, k in enumerate(kernels):
        if isinstance(k, dict) and k.get("threads") is not None:
            name = k.get("name", f"#{i}")
            counts.append(_positive_int(
                f"manifest {manifest}: kernel {name}'s \"threads\"",
                k["threads"]))
    return max(counts) if counts else None
