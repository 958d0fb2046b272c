"""Tests of the bench's own logic that need neither a build, PyTorch, JAX nor IREE:
    /usr/bin/python3 -m unittest discover -s bench -p 'test_*.py'
"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_bench  # noqa: E402


def bench(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, "run_bench.py")] + list(args),
                          capture_output=True, text=True)


def row_without(package, row):
    """What a peer row answers where `package` does not import (a fake one
    that raises ImportError shadows it), on tiny zero inputs."""
    try:
        import numpy as np
    except ImportError:
        raise unittest.SkipTest("numpy not installed")
    with tempfile.TemporaryDirectory() as d:
        for n, shape in (("q", (1, 4, 2, 4)), ("k", (1, 4, 2, 4)), ("v", (1, 4, 2, 4)),
                         ("beta_raw", (8,)), ("lam", (1, 4, 2, 4)), ("gate", (1, 4, 2, 4))):
            np.save(os.path.join(d, n + ".npy"), np.zeros(shape, np.float32))
        fake = os.path.join(d, package)
        os.makedirs(fake)
        with open(os.path.join(fake, "__init__.py"), "w") as f:
            f.write(f"raise ImportError('no {package} here')\n")
        env = dict(os.environ, PYTHONPATH=d)
        return run_bench.child(sys.executable, ["row", row, d, 1, 1], env=env)[0]


class Arguments(unittest.TestCase):
    def test_bad_mode(self):
        p = bench("--modes", "causal,sideways")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--modes: expected causal, full or causal,full, got 'causal,sideways'",
                      p.stderr)

    def test_bad_T(self):
        p = bench("--T", "1024,4k")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--T: expected comma-separated integers, got '1024,4k'", p.stderr)

    def test_non_positive(self):
        p = bench("--T", "0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--T and --reps must be positive", p.stderr)
        p = bench("--reps", "0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--T and --reps must be positive", p.stderr)

    def test_unknown_peer(self):
        p = bench("--peers", "torch_split_f32,numba_f32")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--peers: unknown row numba_f32", p.stderr)


class Children(unittest.TestCase):
    def test_missing_python_is_a_reason_not_a_crash(self):
        res, out = run_bench.child("/nonexistent/python", ["sgemm", 1])
        self.assertEqual(out, "")
        self.assertIn("no Python at /nonexistent/python", res["error"])

    def test_failing_child_gives_its_last_stderr_line(self):
        res, _ = run_bench.child(sys.executable, ["no-such-measurement"])
        self.assertIn("unknown measurement 'no-such-measurement'", res["error"])

    def test_row_reports_a_missing_framework(self):
        # A Python whose torch does not import answers with the reason, as JSON.
        self.assertEqual(row_without("torch", "torch_vx_f32"),
                         {"error": "not installed (no torch here)"})


class Checks(unittest.TestCase):
    def test_within_tolerance(self):
        col, ok = run_bench.fmt_err({"err": 5e-7}, 1e-4)
        self.assertTrue(ok)
        self.assertIn("ok (tol 1e-04)", col)

    def test_over_tolerance_is_wrong(self):
        col, ok = run_bench.fmt_err({"err": 0.16}, 3e-2)
        self.assertFalse(ok)
        self.assertIn("WRONG", col)

    def test_no_output_is_wrong(self):
        col, ok = run_bench.fmt_err({"err": None, "why": "3 non-finite outputs"}, 1e-4)
        self.assertFalse(ok)
        self.assertIn("WRONG (3 non-finite outputs)", col)

    def test_prescott_on_avx2_is_flagged(self):
        self.assertIn("did not recognise", run_bench.core_note("Prescott", ["AVX2", "FMA"]))
        self.assertEqual(run_bench.core_note("SkylakeX", ["AVX2", "AVX-512F"]), "")
        self.assertEqual(run_bench.core_note("Prescott", []), "")

    def test_flops(self):
        self.assertEqual(run_bench.flops(1024, False), (2 * 1024 ** 2 * 64 + 4 * 1024 ** 2 * 64) * 8)
        self.assertEqual(run_bench.flops(1024, True), run_bench.flops(1024, False) / 2)


class Bf16(unittest.TestCase):
    def row(self, T, lab, dt, ms, err, is_femc=False):
        return (T, "causal", lab, dt, 1.0, {"median_ms": ms, "err": err}, ms, is_femc)

    def test_target_against_the_best_checked_torch_row(self):
        rows = [self.row(4096, "femc (fem-run, 2 threads)", "bf16", 100.0, 2e-3, True),
                self.row(4096, "PyTorch SDPA over [V|X] (x)", "bf16", 400.0, 1e-2),
                self.row(4096, "PyTorch 2 SDPA calls, V and X (x)", "bf16", 160.0, 1e-2),
                # a faster but wrong row does not count
                self.row(4096, "PyTorch 2 SDPA calls, V and X (y)", "bf16", 50.0, 0.5)]
        lines = run_bench.bf16_target_lines(rows, {(4096, True): (100.0, 180.0)})
        self.assertIn("1.60x (160.0 ms / 100.0 ms; met)", lines[0])
        self.assertIn("100.0 ms vs 180.0 ms (met)", lines[1])
        lines = run_bench.bf16_target_lines(rows[:3], {(4096, True): (120.0, 110.0)})
        self.assertIn("1.33x", lines[0])
        self.assertIn("NOT met", lines[0])
        self.assertIn("120.0 ms vs 110.0 ms (NOT met)", lines[1])

    def test_dot_row_needs_avx512_bf16(self):
        self.assertEqual(run_bench.bf16_dot_missing(
            {"avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_bf16"}), "")
        why = run_bench.bf16_dot_missing({"avx2", "fma", "avx512f", "avx512bw", "avx512vl"})
        self.assertIn("no AVX512-BF16", why)
        self.assertIn("no AVX-512F", run_bench.bf16_dot_missing({"avx2", "fma"}))

    def test_dot_lines_compare_with_f32_and_bf16(self):
        lines = run_bench.bf16_dot_lines({(4096, True): (450.0, 300.0, 80.0),
                                          (1024, False): (20.0, 25.0, 10.0)})
        self.assertEqual(len(lines), 2)
        self.assertIn("T=1024 full: 20.0 ms, femc f32 25.0 ms (0.80x its time)", lines[0])
        self.assertIn("T=4096 causal: 450.0 ms, femc f32 300.0 ms (1.50x its time), "
                      "femc bf16 80.0 ms", lines[1])

    def test_bf16_yardstick(self):
        self.assertEqual(run_bench.bf16_yardstick(1700.0, 300.0, False), (1700.0, "bf16 matmul"))
        self.assertEqual(run_bench.bf16_yardstick(1.5, 196.6, True), (196.6, "SGEMM"))
        self.assertEqual(run_bench.bf16_yardstick(1.5, None, True), (1.5, "bf16 matmul"))

    def test_slow_bf16_matmul_is_measured_small(self):
        # A fake torch whose bf16 matmul takes `secs` a call at 512^3.
        import types
        import peers_child

        class M:
            def __init__(self, secs):
                self.secs = secs

            def bfloat16(self):
                return self

            def __matmul__(self, other):
                import time
                time.sleep(self.secs)
                return self
        for secs, want in ((0.2, 512), (0.001, 2048)):   # 1.3 and 268 GFLOP/s
            fake = types.SimpleNamespace(randn=lambda *shape, s=secs: M(s))
            self.assertEqual(peers_child.bf16_matmul_size(fake), want)

    def test_bf16_output_bits_are_read_as_floats(self):
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy not installed")
        import peers_child
        want = np.array([1.0, -2.5, 0.0, 3.140625], np.float32)
        bits = (want.view(np.uint32) >> 16).astype(np.uint16)
        with tempfile.TemporaryDirectory() as d:
            np.save(os.path.join(d, "out.npy"), bits)
            got = peers_child.load_output(os.path.join(d, "out.npy"))
        self.assertEqual(got.dtype, np.float64)
        self.assertEqual(got.tolist(), want.astype(np.float64).tolist())


class Iree(unittest.TestCase):
    """The IREE row's plain-Python parts (bench/iree_peer.py); IREE itself
    runs only in the bench."""

    DIAG = ("Error invoking IREE compiler tool iree-compile\n"
            "Error code: 1\n"
            "Diagnostics:\n"
            "<stdin>:12:10: error: 'stablehlo.composite' op unknown to this version\n"
            "    %3 = stablehlo.composite ...\n"
            "<stdin>:20:3: error: a second error\n\n"
            "Invoked with:\n iree-compile iree-compile - --iree-input-type=stablehlo\n")

    def test_error_line_is_the_first_diagnostic(self):
        import iree_peer
        self.assertEqual(iree_peer.error_line(self.DIAG),
                         "error: 'stablehlo.composite' op unknown to this version")
        self.assertEqual(iree_peer.error_line("\n  RuntimeError: out of memory\nmore"),
                         "RuntimeError: out of memory")
        self.assertEqual(iree_peer.error_line(""), "no message")
        self.assertEqual(len(iree_peer.error_line("error: " + "x" * 500)), 240)

    def test_compile_failure_is_one_line(self):
        # A fake iree.compiler whose compile_str fails as iree-compile does.
        import types
        import iree_peer
        fake = types.ModuleType("iree.compiler")

        class CompilerToolError(Exception):
            pass

        def compile_str(text, **kw):
            self.assertEqual(kw["target_backends"], ["llvm-cpu"])
            self.assertEqual(kw["input_type"], "stablehlo")
            self.assertIn("--iree-llvmcpu-target-cpu=host", kw["extra_args"])
            raise CompilerToolError(self.DIAG)
        fake.CompilerToolError, fake.compile_str = CompilerToolError, compile_str
        pkg = types.ModuleType("iree")
        pkg.compiler = fake
        saved = {n: sys.modules.get(n) for n in ("iree", "iree.compiler")}
        sys.modules.update({"iree": pkg, "iree.compiler": fake})
        try:
            with self.assertRaises(iree_peer.IreeError) as cm:
                iree_peer.compile_mlir("module {}")
        finally:
            for n, m in saved.items():
                if m is None:
                    sys.modules.pop(n, None)
                else:
                    sys.modules[n] = m
        self.assertEqual(str(cm.exception),
                         "iree-compile: error: 'stablehlo.composite' op unknown to this version")

    def test_row_reports_missing_iree(self):
        self.assertEqual(row_without("iree", "iree_ref_f32"),
                         {"error": "not installed (IREE: no iree here)"})

    def test_summary_lines(self):
        cmd = "iree-compile --iree-input-type=stablehlo --iree-llvmcpu-target-cpu=host"

        def row(T, mode, lab, info):
            return (T, mode, lab, "f32", 1.0, {"median_ms": 1.0, "err": 1e-7, "info": info},
                    1.0, False)
        info = {"version": "3.13.0", "command": cmd, "threads": 2}
        rows = [row(1024, "causal", run_bench.IREE_LABEL, dict(info, compile_s=2.04)),
                row(1024, "causal", "JAX jit of the reference formulation", {"version": "0"}),
                (4096, "causal", run_bench.IREE_LABEL, "f32", 1.0, {"error": "not installed"},
                 1.0, False),
                row(1024, "full", run_bench.IREE_LABEL, dict(info, compile_s=1.96))]
        self.assertEqual(run_bench.iree_lines(rows), [
            f"IREE 3.13.0 (iree-base-compiler/-runtime): {cmd}; iree.runtime local-task, "
            f"2 workers; compile (not timed): T=1024 causal 2.0 s, T=1024 full 2.0 s"])
        self.assertEqual(run_bench.iree_lines(rows[1:3]), [])
        self.assertIn(("iree_ref_f32", run_bench.IREE_LABEL, "f32"), run_bench.PEERS)


class Reference(unittest.TestCase):
    """The float64 reference every row is checked against reproduces the FEM
    authors' vectors (needs numpy; test/data/vectors in the checkout)."""

    def test_authors_vectors(self):
        d = os.path.join(HERE, "..", "test", "data", "vectors", "softmax_causal")
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy not installed")
        if not os.path.isdir(d):
            self.skipTest("test/data/vectors not found")
        import peers_child
        out = peers_child.reference(peers_child.load(d), True)
        want = np.load(os.path.join(d, "out.npy"))
        self.assertLess(np.abs(out - want).max() / np.abs(want).max(), 1e-6)


if __name__ == "__main__":
    unittest.main()
