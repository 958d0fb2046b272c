"""Interpreter exit while daemon threads are inside libfemrt calls.

CPython (before 3.14) ends a thread that asks for the GIL while the
interpreter finalizes with pthread_exit(); through the bindings' C++ frames
that used to abort the process ("terminate called ...", "FATAL: exception
not rethrown") in most runs. Every run here must exit cleanly.
"""

import os
import subprocess
import sys
import textwrap

# argv: library, mode, delay (seconds the main thread waits before exiting).
#   launch: two daemon threads launch short kernels back to back, so some
#           launch ends while the interpreter finalizes;
#   long:   a daemon thread is inside one long launch (one kernel thread)
#           when the main thread exits;
#   load:   daemon threads load the library and resize the default pool back
#           to back (the other calls that release the GIL).
SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    import femc

    library, mode, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    kernel = femc.load(library).kernel("softmax_causal")

    def inputs(T, H, d):
        rng = np.random.default_rng(0)
        q = rng.standard_normal((1, T, H, d), dtype=np.float32)
        beta = rng.uniform(-1, 2, H * d).astype(np.float32)
        return [q, q.copy(), q.copy(), beta, q.copy(), q.copy()]

    started = threading.Event()

    def launches():
        args = inputs(128, 2, 16)
        out = np.empty_like(args[0])
        while True:
            started.set()
            kernel(*args, out, max_threads=1)

    def long_launch():
        args = inputs(1536, 4, 32)
        out = np.empty_like(args[0])
        started.set()
        kernel(*args, out, max_threads=1)

    def loads():
        n = 1
        while True:
            started.set()
            femc.load(library)
            femc.set_num_threads(n % 3 + 1)
            n += 1

    body = {"launch": launches, "long": long_launch, "load": loads}[mode]
    for _ in range(2 if mode != "long" else 1):
        threading.Thread(target=body, daemon=True).start()
    started.wait()
    time.sleep(delay)
    print("main thread exits", flush=True)
""")

RUNS = [(mode, delay)
        for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
        for mode in ("launch", "long", "load")][:20]


def test_exit_with_daemon_threads_in_libfemrt_calls(kernels_lib, tmp_path):
    script = tmp_path / "daemon_exit.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p)
                                        for p in sys.path if p)
    failures = []
    for mode, delay in RUNS:
        run = subprocess.run(
            [sys.executable, str(script), kernels_lib, mode, str(delay)],
            capture_output=True, text=True, timeout=120, env=env)
        if (run.returncode != 0 or run.stderr
                or "main thread exits" not in run.stdout):
            failures.append(f"mode={mode} delay={delay}: exit status "
                            f"{run.returncode}, stderr: {run.stderr[-500:]!r}")
    assert not failures, f"{len(failures)} of {len(RUNS)} runs failed:\n" + \
        "\n".join(failures)
