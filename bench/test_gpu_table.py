"""Tests of bench/gpu_table.py (standard library only):
    /usr/bin/python3 -m unittest discover -s bench -p 'test_*.py'
"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpu_table  # noqa: E402

LOG = """\
cuda:0 NVIDIA H200 (compute capability 9.0, femc --target=sm_90)
  femc  | bf16 d=64 B=1 T=4096 | 10 runs on cuda:0 NVIDIA H200 (sm_90): median 3.691 ms, min 3.652 ms, 27930.8 GFLOP/s at the median; back to back 3.6604 ms per launch, 28.16 TFLOP/s
  femc  | bf16 d=128 causal B=8 T=1024 | 10 runs on cuda:0 NVIDIA H200 (sm_90): median 2.996 ms, min 2.982 ms, 17201.4 GFLOP/s at the median; back to back 2.9846 ms per launch, 17.27 TFLOP/s
  femc q128 | bf16 d=64 B=1 T=4096 | 10 runs on cuda:0 NVIDIA H200 (sm_90): median 3.0 ms, min 2.9 ms, 1 GFLOP/s at the median; back to back 2.9500 ms per launch, 35.00 TFLOP/s
  torch | bf16 d=64 B=1 T=4096 | SDPA flash 0.236 ms (291.0 TFLOP/s); FEM reference formulation 0.528 ms (195.1 TFLOP/s FEM FLOPs)
  torch | bf16 d=128 causal B=8 T=1024 | SDPA flash 0.158 ms (217.2 TFLOP/s); FEM reference formulation 1.197 ms (43.1 TFLOP/s FEM FLOPs)
  torch | bf16 d=64 B=8 T=16384 | failed: CUDA out of memory
"""


def run(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, "gpu_table.py")] + list(args),
                          capture_output=True, text=True)


class GpuTable(unittest.TestCase):
    def test_rows_joined_per_shape(self):
        rows, device = gpu_table.parse(LOG.splitlines())
        self.assertEqual(device, "NVIDIA H200")
        self.assertEqual(rows[(64, False, 1, 4096)],
                         {"femc": 3.6604, "femc q128": 2.95, "flash": 0.236, "ref": 0.528})
        self.assertEqual(rows[(128, True, 8, 1024)]["femc"], 2.9846)
        self.assertEqual(len(rows), 2)  # the failed torch row adds nothing

    def test_flops_match_fem_run(self):
        # fem-run: 28.16 TFLOP/s at 3.6604 ms back to back.
        self.assertAlmostEqual(gpu_table.flops(64, False, 1, 4096) / 3.6604e-3 / 1e12,
                               28.16, places=2)
        self.assertEqual(gpu_table.flops(64, True, 1, 4096),
                         gpu_table.flops(64, False, 1, 4096) / 2)

    def test_targets(self):
        rows, _ = gpu_table.parse(LOG.splitlines())
        text = gpu_table.table(rows, 989.4)
        line = [l for l in text.splitlines() if l.startswith("| 64 | no | 1 | 4096 | default")][0]
        self.assertIn("| 2.8 |", line)  # % of peak
        self.assertIn("peak no, ref no, flash no", line)
        q128 = [l for l in text.splitlines() if l.startswith("| 64 | no | 1 | 4096 | 128 | 2.950 |")]
        self.assertEqual(len(q128), 1, text)
        # Causal rows have no peak target; a fast femc meets the others.
        fast = {(64, True, 1, 4096): {"femc": 0.2, "ref": 0.5, "flash": 0.15}}
        self.assertIn("| ref met, flash met |", gpu_table.table(fast, 989.4))

    def test_peaks_by_name(self):
        self.assertEqual(gpu_table.peak_for("NVIDIA H100 PCIe"), 756.0)
        self.assertEqual(gpu_table.peak_for("NVIDIA H100 80GB HBM3"), 989.4)
        self.assertIsNone(gpu_table.peak_for("Some GPU"))

    def test_cli(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "gpu-check.log")
            with open(log, "w") as f:
                f.write(LOG.replace("H200", "Mystery 9000"))
            p = run(log)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("? (unknown GPU: give --peak)", p.stdout)
            self.assertIn("| 64 | no | 1 | 4096 | default | 3.660 | 28.2 | - |", p.stdout)
            p = run(log, "--peak", "100")
            self.assertIn("| 64 | no | 1 | 4096 | default | 3.660 | 28.2 | 28.2 |", p.stdout)
            self.assertEqual(run(log, "--peak", "0").returncode, 2)
            empty = os.path.join(d, "empty.log")
            open(empty, "w").close()
            p = run(empty)
            self.assertEqual(p.returncode, 1)
            self.assertIn("no bench rows", p.stderr)
            p = run(os.path.join(d, "missing.log"))
            self.assertEqual(p.returncode, 1)
            self.assertIn("cannot read", p.stderr)


if __name__ == "__main__":
    unittest.main()
