"""Tests of bench/layer_bench.py's own logic (no build, numpy or PyTorch):
    /usr/bin/python3 -m unittest discover -s bench -p 'test_*.py'
"""
import contextlib
import io
import os
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import layer_bench  # noqa: E402


def bench(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, "layer_bench.py")] + list(args),
                          capture_output=True, text=True)


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def spin_cpu(seconds):
    """Spins until this thread has used `seconds` of CPU (not wall) time, so
    a test of CPU accounting holds on a loaded machine too."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def sample(wall, own=0.0, foreign=0.0, wait=0.0, others=0.0):
    return {"wall": wall, "own": own, "foreign": foreign, "wait": wait, "others": others}


class Arguments(unittest.TestCase):
    def test_bounds(self):
        for args, msg in ((("--reps", "0"), "--reps must be at least 1, got 0"),
                          (("--warmup", "-1"), "--warmup must be at least 0, got -1"),
                          (("--gap-ms", "-5"), "--gap-ms must be at least 0, got -5"),
                          (("--threads", "-2"), "--threads must be at least 0, got -2"),
                          (("--T", "1024", "0"), "--T: every T must be at least 1, got 0")):
            p = bench(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(msg, p.stderr)

    def test_help_names_the_columns(self):
        p = bench("--help")
        self.assertEqual(p.returncode, 0)
        for word in ("--gap-ms", "--per-round", "--no-torch", "own CPU", "run-queue wait",
                     "per-round ratios"):
            self.assertIn(word, " ".join(p.stdout.split()))


class Interleave(unittest.TestCase):
    def test_rounds_rotate_and_warm_up_untimed(self):
        order = []
        calls = [(n, "femc", (lambda n=n: order.append(n))) for n in "abc"]
        samples, first = layer_bench.interleave(layer_bench.Accounting(), calls, reps=3,
                                                warmup=1, gap=0)
        self.assertEqual(order, list("abc" "abc" "bca" "cab"))
        self.assertEqual(sorted(first), list("abc"))
        self.assertEqual({n: len(s) for n, s in samples.items()}, {"a": 3, "b": 3, "c": 3})


@unittest.skipUnless(os.path.exists("/proc/self/task"), "needs Linux's /proc/self/task")
class Accounting(unittest.TestCase):
    def test_own_cpu_of_the_calling_thread(self):
        s = layer_bench.Accounting().call("femc", lambda: spin_cpu(0.05))
        self.assertGreater(s["wall"], 45)
        # 50 ms of the thread's own CPU, counted in the kernel's 10 ms ticks.
        self.assertGreater(s["own"], 30)
        self.assertLess(s["foreign"], 10)

    def test_other_library_threads_are_foreign(self):
        """A thread started during a "torch" call and still spinning during
        a "femc" call is the femc call's foreign CPU, not its own."""
        acct = layer_bench.Accounting()
        stop = threading.Event()

        def work():
            while not stop.is_set():
                spin(0.005)
        worker = threading.Thread(target=work)

        def start():
            worker.start()
            spin(0.01)
        try:
            acct.call("torch", start)
            s = acct.call("femc", lambda: time.sleep(0.1))
        finally:
            stop.set()
            worker.join()
        self.assertGreater(s["foreign"], 10)
        self.assertLess(s["own"], 10)  # the calling thread slept


class Tables(unittest.TestCase):
    def samples(self):
        return {layer_bench.LAYER: [sample(100), sample(50)],
                layer_bench.TORCH: [sample(150), sample(100)],
                layer_bench.SGEMM: [sample(60), sample(30)],
                layer_bench.READ: [sample(20), sample(10)]}

    def test_ratios_pair_the_calls_of_one_round(self):
        self.assertEqual(layer_bench.round_ratios(self.samples()),
                         [(1.5, 100 / 80), (2.0, 50 / 40)])
        self.assertEqual(layer_bench.ratio_cell([1.5, 2.0, 1.0]), "1.50 (1.00-2.00)")

    def test_without_torch(self):
        s = self.samples()
        del s[layer_bench.TORCH], s[layer_bench.SGEMM]
        self.assertEqual(layer_bench.round_ratios(s), [])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            layer_bench.print_tables([(1024, s, {}, {})], 2, per_round=True)
        self.assertIn("| 1024 | no torch | no torch |", out.getvalue())

    def test_summary_and_per_round(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            layer_bench.print_tables([(1024, self.samples(), {layer_bench.LAYER: 300.0},
                                       {"layer": 1e-6, "read": 2e-6})], 2, per_round=True)
        text = out.getvalue()
        self.assertIn("| 1024 | femc layer | 75.0 | 50.0 | 2.00 |", text)
        self.assertIn("| 300.0 |", text)
        self.assertIn("| 1024 | 1.75 (1.50-2.00) | 1.25 (1.25-1.25) | 1.0e-06 | 2.0e-06 |",
                      text)
        self.assertIn("| 2 | 50.0 | 100.0 | 30.0 | 10.0 | 2.00 | 1.25 |", text)


if __name__ == "__main__":
    unittest.main()
