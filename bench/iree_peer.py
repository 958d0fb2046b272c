"""IREE as a benchmark peer: a JAX function, exported to StableHLO, compiled
by IREE for llvm-cpu with the host CPU's features and run through
iree.runtime's local-task driver on all the cores this process may use.

Used by bench/peers_child.py (the FEM read's rows of bench/run_bench.py) and
importable by the other benches (bench/.venv has iree-base-compiler and
iree-base-runtime from PyPI, pinned in bench/requirements.txt):

    import iree_peer
    vmfb, info = iree_peer.compile_jax(fn, [np_arrays or jax.ShapeDtypeStructs])
    # or iree_peer.compile_torch(fn_of_torch_tensors, [np_arrays])
    run = iree_peer.Runner(vmfb)
    dev = run.upload(np_arrays)       # inputs on the device once, as JAX's are
    run(*dev)                         # synchronous; .to_host() for a numpy array

Flags: IREE's defaults plus --iree-llvmcpu-target-cpu=host. IREE's
--iree-opt-level=O2/O3 made the FEM read 15x slower (aggressive dispatch
fusion) on this bench's shapes, so the bench keeps the default level
(docs/benchmarks.md, "IREE").

Only the functions below that say so need IREE or JAX; error_line is plain
Python (bench/test_run_bench.py tests it).
"""
import os
import re
import time

TARGET_BACKEND = "llvm-cpu"
COMPILE_FLAGS = ("--iree-llvmcpu-target-cpu=host",)


def ncores():
    return len(os.sched_getaffinity(0))


def error_line(text, limit=240):
    """One line for a table from an IREE failure: the first diagnostic that
    says `error:` (iree-compile's stderr, inside CompilerToolError's message,
    starts with the tool's name and exit code, which say nothing), without
    its source location; else the first non-empty line."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    for ln in lines:
        m = re.search(r"\berror: (.*)", ln)
        if m:
            return ("error: " + m.group(1))[:limit]
    return (lines[0] if lines else "no message")[:limit]


class IreeError(Exception):
    """IREE refused or failed: the message is one line (error_line)."""


def versions():
    """The IREE packages' versions (needs IREE; ImportError without it)."""
    import iree.compiler  # noqa: F401  (ImportError where IREE is missing)
    import iree.runtime  # noqa: F401
    from importlib import metadata
    return {n: metadata.version("iree-base-" + n) for n in ("compiler", "runtime")}


def stablehlo(fn, args):
    """fn as StableHLO text, through jax.jit(fn).lower (needs JAX). args:
    arrays or jax.ShapeDtypeStructs giving the static shapes."""
    import jax
    specs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args]
    return jax.jit(fn).lower(*specs).as_text()


def torch_mlir(fn, args):
    """fn (a function of torch tensors) as torch-dialect MLIR text, through
    torch.export and the FX importer that iree-base-compiler ships (needs
    PyTorch and IREE). args: numpy arrays of the static shapes."""
    import torch
    from iree.compiler.extras.fx_importer import FxImporter

    class Fn(torch.nn.Module):
        def forward(self, *xs):
            return fn(*xs)
    program = torch.export.export(Fn(), tuple(torch.from_numpy(a) for a in args))
    importer = FxImporter()
    importer.import_frozen_program(program)
    return str(importer.module)


def compile_mlir(text, flags=COMPILE_FLAGS, input_type="stablehlo"):
    """StableHLO (or torch-dialect) text -> IREE VM flatbuffer for llvm-cpu
    (needs IREE)."""
    import iree.compiler as ic
    try:
        return ic.compile_str(text, target_backends=[TARGET_BACKEND], input_type=input_type,
                              extra_args=list(flags))
    except ic.CompilerToolError as e:
        raise IreeError("iree-compile: " + error_line(e)) from None


def compile_with(front, input_type, fn, args, flags=COMPILE_FLAGS):
    """(vmfb bytes, info): front(fn, args) -> MLIR text of input_type,
    compiled by IREE."""
    t0 = time.perf_counter()
    text = front(fn, args)
    t1 = time.perf_counter()
    vmfb = compile_mlir(text, flags, input_type)
    t2 = time.perf_counter()
    return vmfb, {"export_s": t1 - t0, "compile_s": t2 - t1,
                  "command": " ".join(["iree-compile", f"--iree-input-type={input_type}",
                                       f"--iree-hal-target-backends={TARGET_BACKEND}"]
                                      + list(flags))}


def compile_jax(fn, args, flags=COMPILE_FLAGS):
    """A JAX function through StableHLO."""
    return compile_with(stablehlo, "stablehlo", fn, args, flags)


def compile_torch(fn, args, flags=COMPILE_FLAGS):
    """A PyTorch function through torch.export and torch-dialect MLIR."""
    return compile_with(torch_mlir, "torch", fn, args, flags)


class Runner:
    """A compiled module's `main` on the local-task driver with `threads`
    workers (default: every core this process may use). The worker count is a
    process-wide runtime flag, so one Runner per process (the bench runs each
    row in a child process of its own)."""

    def __init__(self, vmfb, threads=None, function="main"):
        import iree.runtime as rt
        self.threads = threads or ncores()
        # physical_cores mode (the default) would count cores from the CPU
        # topology; the bench gives every peer exactly the cores it may use.
        rt.flags.parse_flags(f"--task_topology_group_count={self.threads}")
        self.config = rt.Config("local-task")
        ctx = rt.SystemContext(config=self.config)
        module = rt.VmModule.copy_buffer(ctx.instance, vmfb)
        ctx.add_vm_module(module)
        self.fn = ctx.modules[module.name][function]
        self.ctx = ctx

    def upload(self, arrays):
        import iree.runtime as rt
        return [rt.asdevicearray(self.config.device, a) for a in arrays]

    def __call__(self, *dev):
        # The default (async-internal) calling convention waits for the
        # dispatches before returning: the call is synchronous.
        return self.fn(*dev)
