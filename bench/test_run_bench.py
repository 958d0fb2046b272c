"""Tests of the bench's own logic that need neither a build, PyTorch nor JAX:
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
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy not installed")
        with tempfile.TemporaryDirectory() as d:
            for n, shape in (("q", (1, 4, 2, 4)), ("k", (1, 4, 2, 4)), ("v", (1, 4, 2, 4)),
                             ("beta_raw", (8,)), ("lam", (1, 4, 2, 4)), ("gate", (1, 4, 2, 4))):
                np.save(os.path.join(d, n + ".npy"), np.zeros(shape, np.float32))
            fake = os.path.join(d, "torch")
            os.makedirs(fake)
            with open(os.path.join(fake, "__init__.py"), "w") as f:
                f.write("raise ImportError('no torch here')\n")
            env = dict(os.environ, PYTHONPATH=d)
            res, _ = run_bench.child(sys.executable, ["row", "torch_vx_f32", d, 1, 1], env=env)
        self.assertEqual(res, {"error": "not installed (no torch here)"})


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
