"""femc.compile with a tuning database (docs/tuning.md, docs/python.md).

fem-tune records an entry, the test sets its tiles to a legal non-default
choice, and femc.compile(tuning_db=...) must compile with exactly those
tiles (read back from the loaded kernel), compute what the default tiles
compute, and keep the defaults for a shape bucket the database lacks.
"""

import json
import os
import subprocess
import warnings

import numpy as np
import pytest

import femc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOFTMAX = os.path.join(ROOT, "examples", "softmax_fem.mlir")
TUNED = {"q": 32, "k": 32, "vec": 4}
DEFAULT = {"q": 192, "k": 64, "vec": 8}  # x86-64-v3's softmax defaults


@pytest.fixture(scope="module")
def fem_tune_bin():
    path = os.environ.get("FEM_TUNE") or os.path.join(ROOT, "build", "bin",
                                                      "fem-tune")
    if not os.access(path, os.X_OK):
        pytest.skip("fem-tune not found (set FEM_TUNE)")
    return path


@pytest.fixture(scope="module")
def database(fem_tune_bin, tmp_path_factory):
    db = tmp_path_factory.mktemp("tuning") / "db.json"
    subprocess.run([fem_tune_bin, SOFTMAX, "--target=x86-64-v3", "--dim",
                    "B=1", "--dim", "T=64", "--db", str(db), "--budget", "10",
                    "--max-candidates", "2"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = json.loads(db.read_text())
    assert len(data["entries"]) == 1
    for entry in data["entries"].values():
        entry["tiles"] = dict(TUNED)
        # Tuned pool threads (whatever this machine's run chose): 1.
        entry["threads"] = {"chosen": 1, "candidates": [2, 1], "tie": False}
    db.write_text(json.dumps(data))
    return db


def _inputs(T):
    rng = np.random.default_rng(0)
    shape = (1, T, 8, 64)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return dict(q=f(*shape), k=f(*shape), v=f(*shape), beta_raw=f(512),
                lam=f(*shape), gate=f(*shape))


def test_compile_uses_recorded_tiles(database, femc_bin, tmp_path):
    tuned = femc.compile(SOFTMAX, tmp_path / "tuned", target="x86-64-v3",
                         tuning_db=database, tuning_dims={"B": 1, "T": 40},
                         femc=femc_bin)
    assert tuned.kernel("softmax_fem").tiles == TUNED
    plain = femc.compile(SOFTMAX, tmp_path / "plain", target="x86-64-v3",
                         femc=femc_bin)
    assert plain.kernel("softmax_fem").tiles == DEFAULT
    inputs = _inputs(40)
    out_tuned = np.asarray(tuned.kernel("softmax_fem").run(**inputs))
    out_plain = np.asarray(plain.kernel("softmax_fem").run(**inputs))
    np.testing.assert_allclose(out_tuned, out_plain, rtol=1e-4, atol=1e-5)


def test_tuned_threads(database, femc_bin, tmp_path):
    # The manifest's "threads" (from the entry) sizes the module's pool
    # unless threads= is given; without the database there are none.
    tuned = femc.compile(SOFTMAX, tmp_path / "tuned", target="x86-64-v3",
                         tuning_db=database, tuning_dims={"B": 1, "T": 40},
                         femc=femc_bin)
    manifest = json.loads((tmp_path / "tuned" / "softmax_fem.json")
                          .read_text())
    assert manifest["kernels"][0]["threads"] == 1
    assert tuned.num_threads == 1
    explicit = femc.compile(SOFTMAX, tmp_path / "explicit", target="x86-64-v3",
                            tuning_db=database, tuning_dims={"B": 1, "T": 40},
                            threads=2, femc=femc_bin)
    assert explicit.num_threads == 2
    plain = femc.compile(SOFTMAX, tmp_path / "plain", target="x86-64-v3",
                         femc=femc_bin)
    assert "threads" not in json.loads(
        (tmp_path / "plain" / "softmax_fem.json").read_text())["kernels"][0]
    assert plain.num_threads == femc.get_num_threads()


def test_miss_keeps_defaults(database, femc_bin, tmp_path):
    mod = femc.compile(SOFTMAX, tmp_path, target="x86-64-v3",
                       tuning_db=database, tuning_dims={"B": 1, "T": 1000},
                       femc=femc_bin)
    assert mod.kernel("softmax_fem").tiles == DEFAULT


def test_explicit_tiles_win(database, femc_bin, tmp_path):
    mod = femc.compile(SOFTMAX, tmp_path, target="x86-64-v3",
                       tuning_db=database, tuning_dims={"B": 1, "T": 40},
                       tiles={"q": 64, "k": 64, "vec": 8}, femc=femc_bin)
    assert mod.kernel("softmax_fem").tiles == {"q": 64, "k": 64, "vec": 8}


def test_errors(femc_bin, tmp_path):
    with pytest.raises(femc.CompileError, match="tuning_dims needs tuning_db"):
        femc.compile(SOFTMAX, tmp_path, tuning_dims={"T": 64}, femc=femc_bin)
    with pytest.raises(femc.CompileError, match="unknown tile 'x'"):
        femc.compile(SOFTMAX, tmp_path, tiles={"x": 1}, femc=femc_bin)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(femc.CompileError,
                       match=r"fem-apply-tuning: tuning database .*bad\.json"
                             r"' is not valid JSON"):
        femc.compile(SOFTMAX, tmp_path / "out", tuning_db=bad, femc=femc_bin)
    assert bad.read_text() == "{"


def test_missing_database_warns(femc_bin, tmp_path):
    # As femc --tuning-db does (docs/tuning.md): a database that does not
    # exist is an empty one, so the compile goes on with the defaults, but
    # a mistyped path is said, with femc's own text, as a CompileWarning.
    missing = tmp_path / "tunning.json"
    with pytest.warns(femc.CompileWarning) as caught:
        mod = femc.compile(SOFTMAX, tmp_path / "out", target="x86-64-v3",
                           tuning_db=missing, tuning_dims={"B": 1, "T": 40},
                           femc=femc_bin)
    assert [str(w.message) for w in caught] == [
        f"tuning database '{missing}' does not exist; every kernel compiles "
        f"with the target's default tiles (fem-tune --db {missing} creates "
        "it)"]
    assert mod.kernel("softmax_fem").tiles == DEFAULT
    assert not missing.exists()


def test_existing_database_does_not_warn(database, femc_bin, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", femc.CompileWarning)
        femc.compile(SOFTMAX, tmp_path, target="x86-64-v3",
                     tuning_db=database, tuning_dims={"B": 1, "T": 40},
                     femc=femc_bin)
