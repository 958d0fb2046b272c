"""femc: run kernels compiled by femc from Python.

Loads the kernel libraries that ``femc`` writes (``NAME.so``) through
libfemrt, which is linked into the extension, and launches their kernels on
any DLPack-capable arrays (numpy arrays, torch CPU tensors, ...) without
copying them::

    import numpy as np, femc
    kernel = femc.load("out/softmax_fem.so").kernel("softmax_fem")
    out = kernel.run(q=q, k=k, v=v, beta_raw=beta_raw, lam=lam, gate=gate)
    kernel(q, k, v, beta_raw, lam, gate, out)      # destination-passing

Failures of libfemrt raise :class:`femc.Error` (a RuntimeError) whose text
is libfemrt's message, naming the argument at fault. See docs/python.md.
"""

from ._femc import (  # noqa: F401
    Error,
    Kernel,
    Module,
    femrt_version,
    get_num_threads,
    kernel_abi_version,
    load,
    max_threads,
    set_num_threads,
    _data_pointer,
)
from .importer import ImportedLayer, LayerImportError, import_layer  # noqa: F401
from .compiler import CompileError, CompileWarning, compile  # noqa: F401
from .bfloat16 import bfloat16_bits, bfloat16_values  # noqa: F401

__all__ = [
    "CompileError",
    "CompileWarning",
    "Error",
    "ImportedLayer",
    "bfloat16_bits",
    "bfloat16_values",
    "compile",
    "Kernel",
    "LayerImportError",
    "Module",
    "femrt_version",
    "get_num_threads",
    "import_layer",
    "kernel_abi_version",
    "load",
    "max_threads",
    "set_num_threads",
]
