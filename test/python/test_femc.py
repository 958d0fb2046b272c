"""Tests of the femc Python module with numpy arrays (see conftest.py)."""

import gc
import os
import platform
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import femc
import fem_reference

INPUTS = ("q", "k", "v", "beta_raw", "lam", "gate")


def make_inputs(B, T, H, dk, dv, Hkv=None, S=None, seed=0, mask=False):
    """Seeded float32 inputs (bthd); beta_raw ~ U(-1, 2) as fem-run draws."""
    Hkv = Hkv or H
    S = T if S is None else S
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    inputs = {
        "q": normal(B, T, H, dk),
        "k": normal(B, S, Hkv, dk),
        "v": normal(B, S, Hkv, dv),
        "beta_raw": rng.uniform(-1.0, 2.0, H * dv).astype(np.float32),
        "lam": normal(B, T, H, dv),
        "gate": normal(B, T, H, dv),
    }
    if mask:
        inputs["mask"] = rng.uniform(size=(B, S)) < 0.8
    return inputs


def ordered(kernel, inputs):
    return [inputs[a["name"]] for a in kernel.args if a["role"] == "input"]


def assert_close(out, ref):
    assert np.isfinite(out).all()
    max_ref = np.abs(ref).max()
    err = np.abs(out.astype(np.float64) - ref).max()
    assert err <= 1e-4 * max_ref, f"max error {err:.3g}, max|ref| {max_ref:.3g}"


@pytest.fixture(scope="module")
def kernels(kernels_lib):
    return femc.load(kernels_lib)


@pytest.fixture(scope="module")
def causal(kernels):
    return kernels.kernel("softmax_causal")


@pytest.fixture(scope="module")
def masked(kernels):
    return kernels.kernel("softmax_full_mask")


@pytest.fixture(scope="module")
def fixed(softmax_lib):
    """examples/softmax_fem.mlir: H = 8, dk = dv = 64 static."""
    return femc.load(softmax_lib).kernel("softmax_fem")


# --- module, loading, introspection -----------------------------------------

def test_package():
    assert issubclass(femc.Error, RuntimeError)
    assert femc.kernel_abi_version == 2
    assert len(femc.femrt_version) == 3
    assert femc.get_num_threads() >= 1


def test_load_missing_file(tmp_path):
    path = str(tmp_path / "missing.so")
    with pytest.raises(femc.Error) as info:
        femc.load(path)
    assert info.value.status == "FEMRT_ERROR_IO"
    assert "missing.so" in str(info.value)


def test_load_not_a_library(tmp_path):
    path = tmp_path / "text.so"
    path.write_text("not an ELF file\n")
    with pytest.raises(femc.Error) as info:
        femc.load(str(path))
    assert info.value.status == "FEMRT_ERROR_IO"
    assert f"'{path}' is not an ELF file" in str(info.value)


def test_load_truncated_library(kernels_lib, tmp_path):
    """Used to crash with SIGBUS inside dlopen."""
    data = open(kernels_lib, "rb").read()
    for size in (len(data) // 2, len(data) - 1, 100):
        path = tmp_path / f"cut{size}.so"
        path.write_bytes(data[:size])
        with pytest.raises(femc.Error) as info:
            femc.load(str(path))
        assert info.value.status == "FEMRT_ERROR_IO"
        assert f"'{path}' is truncated: " in str(info.value)
        assert f"but the file has {size} bytes" in str(info.value)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 host")
def test_load_library_for_another_machine(kernels_lib, tmp_path):
    """Used to be reported as 'No such file or directory'."""
    data = bytearray(open(kernels_lib, "rb").read())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    path = tmp_path / "aarch64.so"
    path.write_bytes(bytes(data))
    with pytest.raises(femc.Error) as info:
        femc.load(str(path))
    assert info.value.status == "FEMRT_ERROR_IO"
    assert str(info.value) == (
        f"femrt_module_load_library: '{path}' is an ELF library for "
        "aarch64; this host is x86-64")


def test_load_directory_and_empty_file(tmp_path):
    with pytest.raises(femc.Error, match="is a directory, not a shared"):
        femc.load(str(tmp_path))
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    with pytest.raises(femc.Error, match=r"is empty \(0 bytes\)"):
        femc.load(str(empty))


def test_nul_characters_are_refused(kernels_lib, kernels):
    """libfemrt takes C strings: these used to load 'kernels.so' and look
    up 'softmax_causal' silently."""
    with pytest.raises(ValueError, match="femc.load: the path contains a NUL"):
        femc.load(kernels_lib + "\0.txt")
    with pytest.raises(ValueError, match="the name contains a NUL"):
        kernels.kernel("softmax_causal\0x")


def test_load_paths_are_relative_to_the_working_directory(kernels_lib,
                                                          tmp_path,
                                                          monkeypatch):
    """A bare file name in the working directory used to go to dlopen's
    library search, which never looks there ("cannot open shared object
    file"), and so escaped the checks before dlopen."""
    data = open(kernels_lib, "rb").read()
    (tmp_path / "here.so").write_bytes(data)
    (tmp_path / "cut.so").write_bytes(data[:len(data) // 2])
    monkeypatch.chdir(tmp_path)
    assert "softmax_causal" in femc.load("here.so").kernels
    module = femc.load(tmp_path / "here.so")  # os.PathLike
    assert module.path == str(tmp_path / "here.so")
    with pytest.raises(femc.Error, match=r"'\./cut\.so' is truncated: "):
        femc.load("cut.so")
    with pytest.raises(TypeError):
        femc.load(b"here.so")
    with pytest.raises(TypeError):
        femc.load(42)


def test_load_rejects_negative_threads(kernels_lib):
    with pytest.raises(ValueError):
        femc.load(kernels_lib, threads=-1)


def own_threads():
    return len(os.listdir("/proc/self/task"))


def test_thread_counts_above_the_limit_are_refused(kernels_lib):
    """femc.load(threads=100000) used to end in std::terminate."""
    assert femc.max_threads == 1024
    before = own_threads()
    for n in (femc.max_threads + 1, 100000):
        with pytest.raises(ValueError) as info:
            femc.load(kernels_lib, threads=n)
        assert str(info.value) == (
            f"femc.load: threads is {n}, expected 0 (one per core) or 1 to "
            "1024 (femc.max_threads)")
    threads = femc.get_num_threads()
    with pytest.raises(ValueError, match="femc.set_num_threads: threads is "
                                         "100000, expected 0"):
        femc.set_num_threads(100000)
    assert femc.get_num_threads() == threads
    assert own_threads() == before
    # The limit itself is fine.
    module = femc.load(kernels_lib, threads=femc.max_threads)
    assert module.num_threads == femc.max_threads


# Run as an unused unprivileged user (RLIMIT_NPROC does not bind root; the
# runtime tests use other uids) with a thread limit just above what the
# process already has.
REFUSED_THREADS_SCRIPT = """
import os, resource, sys
import femc

def tasks_of(uid):
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1)
                          for line in open(f"/proc/{pid}/status"))
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid:
            total += int(fields["Threads"])
    return total

library = sys.argv[1]
small = femc.load(library, threads=1)
threads = femc.get_num_threads()   # creates the default context
limit = tasks_of(os.getuid()) + 3
hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
resource.setrlimit(resource.RLIMIT_NPROC, (limit, hard))
before = len(os.listdir("/proc/self/task"))
try:
    femc.load(library, threads=300)
    sys.exit("femc.load(threads=300) did not raise")
except femc.Error as e:
    assert e.status == "FEMRT_ERROR_OUT_OF_MEMORY", e.status
    assert "cannot start worker thread" in str(e), str(e)
    assert "no thread was left running" in str(e), str(e)
try:
    femc.set_num_threads(300)
    sys.exit("femc.set_num_threads(300) did not raise")
except femc.Error as e:
    assert e.status == "FEMRT_ERROR_OUT_OF_MEMORY", e.status
    assert f"the context keeps its {threads} threads" in str(e), str(e)
assert femc.get_num_threads() == threads
import time
for _ in range(500):
    if len(os.listdir("/proc/self/task")) == before:
        break
    time.sleep(0.01)
assert len(os.listdir("/proc/self/task")) == before
print("ok")
"""


def test_refused_threads_raise_and_leave_nothing_running(kernels_lib):
    as_user = {}
    if os.geteuid() == 0:
        as_user = dict(user=65531, group=65531, extra_groups=[])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(os.path.abspath(p)
                                          for p in sys.path if p))
    run = subprocess.run([sys.executable, "-c", REFUSED_THREADS_SCRIPT,
                          os.path.abspath(kernels_lib)],
                         capture_output=True, text=True,
                         timeout=120, env=env, cwd="/", **as_user)
    assert run.returncode == 0 and run.stdout == "ok\n", run.stderr


def test_kernels_and_unknown_kernel(kernels, kernels_lib):
    assert kernels.kernels == ["softmax_causal", "softmax_full_mask"]
    assert kernels.path == kernels_lib
    assert kernels.producer.startswith("femc ")
    assert kernels.target.startswith("host")
    with pytest.raises(femc.Error) as info:
        kernels.kernel("nope")
    assert info.value.status == "FEMRT_ERROR_NOT_FOUND"
    message = str(info.value)
    assert "'nope'" in message and "softmax_causal" in message
    assert kernels["softmax_causal"].name == "softmax_causal"


def test_kernel_args(masked, fixed):
    assert masked.name == "softmax_full_mask"
    assert "prior=softmax" in masked.description
    assert "causal=0" in masked.description and "mask=1" in masked.description
    names = [a["name"] for a in masked.args]
    assert names == ["q", "k", "v", "beta_raw", "lam", "gate", "mask", "out"]
    q, mask, out = masked.args[0], masked.args[6], masked.args[7]
    assert q == {"name": "q", "role": "input", "dtype": "float32",
                 "dims": ("B", "T", "H", "dk"),
                 "shape": (None, None, None, None)}
    assert mask["dtype"] == "uint8" and mask["dims"] == ("B", "S")
    assert out["role"] == "output"
    assert fixed.args[0]["shape"] == (None, None, 8, 64)


def test_kernel_traits(causal, masked, fixed):
    # The structured fields of kernel ABI v2, not parsed from the description.
    assert causal.prior == "softmax" and masked.prior == "softmax"
    assert causal.causal is True and masked.causal is False
    assert causal.mask is False and masked.mask is True
    assert causal.layer is False
    assert causal.layout == "bthd"
    assert causal.scale is None
    assert causal.cap == 40.0 and causal.eps == 1e-6
    assert causal.tiles == {"q": 16, "k": 16, "vec": 8}
    # fem.grid as fem-tile stamped it: (ceil(T / 16), Hkv, B).
    assert causal.grid == (("T", 16), ("Hkv", 1), ("B", 1))
    assert masked.grid == (("T", 16), ("Hkv", 1), ("B", 1))
    assert fixed.prior == "softmax" and fixed.causal is True
    assert fixed.tiles["q"] > 0 and fixed.grid[0][0] == "T"
    assert fixed.args[3]["shape"] == (512,)
    assert "softmax_fem(q, k, v, beta_raw, lam, gate, out)" in repr(fixed)


# --- argument errors name the argument ---------------------------------------

@pytest.fixture()
def good(causal):
    inputs = make_inputs(2, 20, 4, 16, 8, Hkv=2)
    out = np.full((2, 20, 4, 8), np.nan, np.float32)
    return ordered(causal, inputs) + [out]


def launch_error(kernel, args):
    with pytest.raises(femc.Error) as info:
        kernel(*args)
    return info.value


def test_good_arguments_launch(causal, good):
    causal(*good)
    assert np.isfinite(good[-1]).all()


def test_wrong_argument_count(causal, good):
    error = launch_error(causal, good[:-1])
    assert error.status == "FEMRT_ERROR_INVALID_ARGUMENT"
    assert "takes 7 arguments" in str(error) and "got 6" in str(error)


def test_wrong_rank_names_argument(causal, good):
    good[2] = good[2][0]
    error = launch_error(causal, good)
    assert error.status == "FEMRT_ERROR_SHAPE_MISMATCH"
    assert "argument 'v' (#2)" in str(error) and "rank" in str(error)


def test_wrong_dtype_names_argument(causal, good):
    good[4] = good[4].astype(np.float64)
    error = launch_error(causal, good)
    assert error.status == "FEMRT_ERROR_DTYPE"
    assert "argument 'lam' (#4)" in str(error) and "float64" in str(error)


def test_inconsistent_shape_names_argument(causal, good):
    good[1] = np.zeros((2, 20, 2, 15), np.float32)      # k's dk != q's dk
    error = launch_error(causal, good)
    assert error.status == "FEMRT_ERROR_SHAPE_MISMATCH"
    assert "'k'" in str(error) and "dk" in str(error)


def test_static_extent_names_argument(fixed):
    inputs = make_inputs(1, 8, 4, 64, 64)                # H = 4, not 8
    out = np.zeros((1, 8, 4, 64), np.float32)
    error = launch_error(fixed, ordered(fixed, inputs) + [out])
    assert error.status == "FEMRT_ERROR_SHAPE_MISMATCH"
    assert "argument 'q' (#0)" in str(error) and "(H) must be 8" in str(error)


def test_beta_raw_size_names_argument(causal, good):
    good[3] = good[3][:-1]
    error = launch_error(causal, good)
    assert "'beta_raw'" in str(error)


def test_non_contiguous_names_argument(causal, good):
    good[0] = np.asfortranarray(good[0])
    error = launch_error(causal, good)
    assert error.status == "FEMRT_ERROR_LAYOUT"
    assert "argument 'q' (#0)" in str(error)


def test_aliased_output_names_argument(causal, good):
    good[-1] = good[4]                                   # out is lam
    error = launch_error(causal, good)
    assert error.status == "FEMRT_ERROR_ALIASING"
    assert "'out'" in str(error)


def test_read_only_output_is_refused(causal, good):
    good[-1].flags.writeable = False
    error = launch_error(causal, good)
    assert "argument 'out' (#6)" in str(error) and "read-only" in str(error)


def test_read_only_inputs_are_fine(causal, good):
    for a in good[:-1]:
        a.flags.writeable = False
    causal(*good)
    assert np.isfinite(good[-1]).all()


def test_non_array_is_a_type_error(causal, good):
    good[1] = good[1].tolist()
    with pytest.raises(TypeError, match=r"argument 'k' \(#1\).*list"):
        causal(*good)


def test_run_argument_errors(causal):
    inputs = make_inputs(1, 4, 2, 8, 8)
    with pytest.raises(TypeError, match="missing input 'gate'"):
        causal.run(**{n: inputs[n] for n in INPUTS[:-1]})
    with pytest.raises(TypeError, match="no input called 'bogus'"):
        causal.run(bogus=inputs["q"], **inputs)
    inputs["k"] = inputs["k"][0]
    with pytest.raises(femc.Error, match=r"argument 'k' \(#1\).*rank"):
        causal.run(**inputs)


# --- no copies ---------------------------------------------------------------

def test_inputs_are_not_copied():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert femc._data_pointer(x) == x.ctypes.data
    view = x[1]                                          # an offset view
    assert femc._data_pointer(view) == view.ctypes.data
    ro = x.copy()
    ro.flags.writeable = False
    assert femc._data_pointer(ro) == ro.ctypes.data


def test_outputs_are_written_in_place(causal, good):
    out = good[-1]
    address = out.ctypes.data
    causal(*good)
    assert out.ctypes.data == address
    assert np.isfinite(out).all()                        # was all NaN
    # The kernel wrote into this very memory: a view of it sees the result.
    view = np.frombuffer(out.data, dtype=np.float32).reshape(out.shape)
    assert np.array_equal(view, out)


# --- results -----------------------------------------------------------------

@pytest.mark.parametrize("B,T,H,Hkv,dk,dv", [
    (1, 1, 1, 1, 8, 8),
    (2, 37, 4, 2, 16, 8),        # grouped heads, T not a tile multiple
    (1, 64, 2, 2, 32, 32),
    (3, 100, 4, 1, 8, 16),
])
def test_causal_matches_numpy_reference(causal, B, T, H, Hkv, dk, dv):
    inputs = make_inputs(B, T, H, dk, dv, Hkv=Hkv, seed=T)
    out = causal.run(**inputs)
    assert out.shape == (B, T, H, dv) and out.dtype == np.float32
    assert_close(out, fem_reference.softmax_fem(*ordered(causal, inputs)))
    # The destination-passing call computes the same.
    out2 = np.empty_like(out)
    causal(*ordered(causal, inputs), out2)
    assert np.array_equal(out, out2)


def test_masked_cross_attention_matches_numpy_reference(masked):
    inputs = make_inputs(2, 30, 4, 16, 8, Hkv=2, S=45, seed=7, mask=True)
    inputs["mask"][1, :] = False     # batch 1 sees no key: out = 0
    out = masked.run(**inputs)       # a bool mask is passed as uint8
    ref = fem_reference.softmax_fem(*[inputs[n] for n in INPUTS],
                                    mask=inputs["mask"], causal=False)
    assert_close(out, ref)
    assert not out[1].any()
    out2 = masked.run(**{**inputs, "mask": inputs["mask"].astype(np.uint8)})
    assert np.array_equal(out, out2)


def test_fixed_kernel_matches_numpy_reference(fixed):
    inputs = make_inputs(2, 70, 8, 64, 64, seed=1)
    out = fixed.run(**inputs)
    assert_close(out, fem_reference.softmax_fem(*ordered(fixed, inputs)))


def test_empty_sequence(causal):
    out = causal.run(**make_inputs(2, 0, 2, 8, 8))
    assert out.shape == (2, 0, 2, 8)


def test_reference_reproduces_authors_vectors(vectors_dir):
    load = lambda n: np.load(os.path.join(vectors_dir, n + ".npy"))  # noqa: E731
    ref = fem_reference.softmax_fem(*(load(n) for n in INPUTS))
    authors = load("out")
    assert np.abs(ref - authors).max() <= 1e-5 * np.abs(authors).max()


def test_kernel_reproduces_authors_vectors(causal, vectors_dir):
    load = lambda n: np.load(os.path.join(vectors_dir, n + ".npy"))  # noqa: E731
    out = causal.run(**{n: load(n) for n in INPUTS})
    assert_close(out, load("out").astype(np.float64))


def test_matches_fem_run_double_reference(fem_run_bin, kernels_lib, masked,
                                          tmp_path):
    """fem-run generates inputs, checks the kernel against the C++ double
    reference (exit 3 if it disagrees) and saves inputs and output; the
    module must compute exactly what fem-run's launch computed."""
    result = subprocess.run(
        [fem_run_bin, kernels_lib, "--kernel", "softmax_full_mask",
         "--dim", "B=2", "--dim", "T=33", "--dim", "S=41", "--dim", "H=4",
         "--dim", "Hkv=2", "--dim", "dk=16", "--dim", "dv=16", "--seed", "5",
         "--save-inputs", str(tmp_path), "--output",
         f"out={tmp_path / 'out.npy'}", "--check"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
    inputs = {a["name"]: np.load(tmp_path / (a["name"] + ".npy"))
              for a in masked.args if a["role"] == "input"}
    assert inputs["mask"].dtype == np.bool_
    out = masked.run(**inputs)
    assert np.array_equal(out, np.load(tmp_path / "out.npy"))


# --- threads, lifetimes, the GIL ---------------------------------------------

def test_threads(kernels_lib, causal):
    inputs = make_inputs(2, 90, 4, 16, 16, seed=3)
    one = femc.load(kernels_lib, threads=1)
    assert one.num_threads == 1
    three = femc.load(kernels_lib, threads=3)
    assert three.num_threads == 3
    a = one.kernel("softmax_causal").run(**inputs)
    b = three.kernel("softmax_causal").run(**inputs)
    c = causal.run(**inputs)
    out = np.empty_like(a)
    causal(*ordered(causal, inputs), out, max_threads=1)
    # Workgroups are independent: the thread count changes nothing.
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(a, out)


def test_set_num_threads(causal):
    before = femc.get_num_threads()
    try:
        femc.set_num_threads(1)
        assert femc.get_num_threads() == 1
        causal.run(**make_inputs(1, 8, 2, 8, 8))
        with pytest.raises(ValueError):
            femc.set_num_threads(-2)
    finally:
        femc.set_num_threads(before)
    assert femc.get_num_threads() == before


def test_kernel_keeps_its_module_alive(kernels_lib):
    kernel = femc.load(kernels_lib, threads=2).kernel("softmax_causal")
    gc.collect()
    inputs = make_inputs(1, 10, 2, 8, 8)
    assert_close(kernel.run(**inputs),
                 fem_reference.softmax_fem(*ordered(kernel, inputs)))


def test_launches_from_several_threads(causal):
    cases = [make_inputs(1, 40 + i, 2, 16, 8, seed=i) for i in range(4)]
    expected = [causal.run(**c) for c in cases]
    results = [None] * len(cases)

    def work(i):
        for _ in range(3):
            results[i] = causal.run(**cases[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert np.array_equal(got, want)


def test_launch_releases_the_gil(fixed):
    """While one thread runs a long launch (one kernel thread, ~0.3 s), this
    thread keeps running Python: it records time stamps inside the middle
    third of the launch, which it could not if the GIL were held."""
    inputs = make_inputs(1, 2048, 8, 64, 64, seed=2)
    out = np.empty((1, 2048, 8, 64), np.float32)
    span = {}

    def worker():
        span["start"] = time.perf_counter()
        fixed(*ordered(fixed, inputs), out, max_threads=1)
        span["end"] = time.perf_counter()

    thread = threading.Thread(target=worker)
    stamps = []
    thread.start()
    while thread.is_alive():
        stamps.append(time.perf_counter())
    thread.join()
    third = (span["end"] - span["start"]) / 3
    inside = [s for s in stamps
              if span["start"] + third < s < span["end"] - third]
    assert inside, f"no Python ran during the launch ({len(stamps)} stamps)"
