"""Tests of bench/scan_bench.py's own logic (no build, no PyTorch needed):
    /usr/bin/python3 -m unittest discover -s bench -p 'test_*.py'
"""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scan_bench  # noqa: E402


def bench(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, "scan_bench.py")] + list(args),
                          capture_output=True, text=True)


class Arguments(unittest.TestCase):
    def test_unknown_prior(self):
        p = bench("--priors", "linear,mamba")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--priors: expected some of linear,gla,aft,ssm, got 'linear,mamba'",
                      p.stderr)

    def test_bad_T(self):
        p = bench("--T", "1024,4k")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--T: expected a comma-separated list, got '1024,4k'", p.stderr)

    def test_non_positive(self):
        for args in (("--T", "0"), ("--reps", "0"), ("--rounds", "0"),
                     ("--ref-reps", "0"), ("--ref-max-steps", "-1")):
            p = bench(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("must be positive", p.stderr)


class Counts(unittest.TestCase):
    def test_flops_of_the_chunked_form(self):
        # B=1, H=8, dk=dv=64, C=64: 4096 + 8192 + 32768 per token and head.
        self.assertEqual(scan_bench.flops("linear", 4096), 8 * 4096 * 45056)
        self.assertEqual(scan_bench.flops("gla", 1), 8 * 45056)
        self.assertIsNone(scan_bench.flops("aft", 4096))
        self.assertIsNone(scan_bench.flops("ssm", 4096))

    def test_io_bytes(self):
        btd = 1024 * 8 * 64 * 4
        self.assertEqual(scan_bench.io_bytes("linear", 1024), 6 * btd + 512 * 4)
        self.assertEqual(scan_bench.io_bytes("gla", 1024), 6 * btd + 512 * 4 + 1024 * 8 * 4)
        # v, lam, gate, out + delta (T, 512) + Bs, Cs (T, 16) + A, beta_raw, D
        self.assertEqual(scan_bench.io_bytes("ssm", 1024),
                         4 * btd + 1024 * 512 * 4 + 2 * 1024 * 16 * 4 + (512 * 16 + 1024) * 4)

    def test_reference_memory_grows_as_the_formulation_does(self):
        # T x T weights for linear and gla, linear in T for aft and ssm.
        self.assertEqual(scan_bench.ref_bytes("linear", 2048), 4 * scan_bench.ref_bytes("linear", 1024))
        self.assertEqual(scan_bench.ref_bytes("gla", 1024), 2 * scan_bench.ref_bytes("linear", 1024))
        self.assertEqual(scan_bench.ref_bytes("aft", 2048), 2 * scan_bench.ref_bytes("aft", 1024))
        self.assertEqual(scan_bench.ref_bytes("ssm", 2048), 2 * scan_bench.ref_bytes("ssm", 1024))
        # 16k linear weights do not fit the default 4 GiB budget; 4k do.
        self.assertGreater(scan_bench.ref_bytes("linear", 16384), 4 * 2 ** 30)
        self.assertLessEqual(scan_bench.ref_bytes("gla", 4096), 4 * 2 ** 30)



class Summary(unittest.TestCase):
    def rows(self):
        ref = {"median_ms": 120.0, "diff": 1e-7}
        return [("linear", 1024, 5.0, 4.9, 2, -0.7, {"error": "x"}, {"error": "x"}),
                ("linear", 65536, 420.0, 410.0, 2, -0.8, {"error": "x"}, {"error": "x"}),
                ("aft", 4096, 16.0, 15.0, 2, -0.6, ref, {"error": "x"}),
                ("aft", 1024, 4.0, 3.9, 2, -0.9, {"error": "x"}, {"error": "x"}),
                ("aft", 65536, 300.0, 290.0, 2, -0.8, {"error": "x"}, {"error": "x"})]

    def test_one_line_per_prior_against_the_targets(self):
        lines = scan_bench.summary(self.rows(), sgemm=200.0, copy=25.0)
        self.assertEqual(len(lines), 4)
        lin, aft = lines[2].split(), lines[3].split()
        # linear: 420/64 over 5/1 per token = 1.31x; 45056*8*T flops.
        self.assertEqual(lin[:3], ["linear", "1.31x", "NOT"])
        lo = 100 * scan_bench.flops("linear", 65536) / 420.0 / 1e6 / 200.0
        hi = 100 * scan_bench.flops("linear", 1024) / 5.0 / 1e6 / 200.0
        self.assertIn(f"{lo:.1f}-{hi:.1f}% SGEMM", lines[2])
        self.assertIn("NOT met", lines[2].split("SGEMM")[1])
        self.assertIn("-0.8..-0.7", lines[2])
        # aft: rows sorted by T; 300/64 over 4/1 = 1.17x; PyTorch 120/16 = 7.5x.
        self.assertEqual(aft[:3], ["aft", "1.17x", "NOT"])
        self.assertIn("% copy", lines[3])
        self.assertIn("-0.9..-0.6", lines[3])
        self.assertTrue(lines[3].endswith("7.5x NOT met"))

    def test_growth_met_and_missing_yardsticks(self):
        rows = [("ssm", 1024, 8.0, 8.0, 2, -1.0, {"error": "x"}, {"error": "x"}),
                ("ssm", 65536, 500.0, 500.0, 2, -1.0, {"error": "x"}, {"error": "x"})]
        line = scan_bench.summary(rows, sgemm=None, copy=None)[2]
        self.assertEqual(line.split()[:3], ["ssm", "0.98x", "met"])
        self.assertEqual(line.split()[3], "-")
        self.assertTrue(line.endswith("-"))

    def test_rounds_pair_growth_and_ratio_within_a_round(self):
        # The rows' medians (3.0 and 192.0 ms) come from different rounds
        # and give 1.00x; each round's own growth is 2.00, 0.75 and 0.67,
        # median 0.75. PyTorch / femc is the ref's paired_x.
        ref = {"median_ms": 40.0, "diff": 1e-7, "paired_x": 12.5}
        rows = [("aft", 1024, 3.0, 2.0, 2, -0.9, {"error": "x"}, {"error": "x"},
                 [2.0, 4.0, 3.0]),
                ("aft", 4096, 16.0, 8.0, 2, -0.9, ref, {"error": "x"}, [8.0, 16.0, 16.0]),
                ("aft", 65536, 192.0, 128.0, 2, -0.9, {"error": "x"}, {"error": "x"},
                 [256.0, 192.0, 128.0])]
        line = scan_bench.summary(rows, sgemm=None, copy=25.0)[2]
        self.assertEqual(line.split()[:3], ["aft", "0.75x", "met"])
        self.assertTrue(line.endswith("12.5x met"), line)


if __name__ == "__main__":
    unittest.main()
