"""A PyTorch custom op backed by a femc kernel: torch.ops.femc.<kernel>.

    import fem_op
    op = fem_op.register("out/softmax_fem.so")        # -> torch.ops.femc.softmax_fem
    out = op(q, k, v, beta_raw, lam, gate)             # or torch.ops.femc.softmax_fem(...)

The op is defined with torch.library (the torch 1.13 API:
Library("femc", "DEF"), define, impl for the CPU dispatch key); its schema
is built from the kernel's arguments, e.g.
`softmax_fem(Tensor q, Tensor k, Tensor v, Tensor beta_raw, Tensor lam,
Tensor gate) -> Tensor`. The implementation allocates the output with
torch.empty and launches the kernel on the tensors themselves through DLPack:
contiguous float32 CPU tensors are not copied (a non-contiguous one is made
contiguous first, which copies it). It is forward-only: there is no
autograd formula, so it raises on tensors that require grad unless called
under torch.no_grad().
"""

import atexit

import torch

import femc

_library = None          # the torch.library.Library("femc", "DEF")
_kernels = {}            # op name -> femc.Kernel


def _output_shapes(kernel, tensors):
    """The outputs' shapes from the extents the inputs bind by name."""
    bound = {}
    inputs = [a for a in kernel.args if a["role"] == "input"]
    for arg, tensor in zip(inputs, tensors):
        if tensor.dim() == len(arg["dims"]):
            for name, size in zip(arg["dims"], tensor.shape):
                bound.setdefault(name, int(size))
    shapes = []
    for arg in kernel.args:
        if arg["role"] != "output":
            continue
        shape = []
        for name, static in zip(arg["dims"], arg["shape"]):
            size = bound.get(name, static)
            # 0 when unknown: an input has the wrong rank, and the launch
            # reports that input.
            shape.append(0 if size is None else size)
        shapes.append(shape)
    return shapes


_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16,
                 "bfloat16": torch.bfloat16, "float64": torch.float64,
                 "uint8": torch.uint8, "int32": torch.int32,
                 "int64": torch.int64, "bool": torch.bool}


def launch_arguments(kernel, tensors):
    """The tensors the kernel is launched on: the inputs as given (detached,
    and contiguous: no copy for contiguous tensors), then fresh outputs."""
    args = [t.detach().contiguous() for t in tensors]
    outputs = [a for a in kernel.args if a["role"] == "output"]
    for arg, shape in zip(outputs, _output_shapes(kernel, args)):
        args.append(torch.empty(shape, dtype=_TORCH_DTYPES[arg["dtype"]]))
    return args


def register(library_path, kernel_name=None, op_name=None, threads=None):
    """Loads the kernel `kernel_name` (default: the library's only kernel)
    from a femc library and defines torch.ops.femc.<op_name> (default: the
    kernel's name) for CPU tensors. Returns the op."""
    global _library
    module = femc.load(library_path, threads=threads)
    if kernel_name is None:
        if len(module.kernels) != 1:
            raise ValueError(f"{library_path} has kernels {module.kernels}; "
                             f"choose one with kernel_name=")
        kernel_name = module.kernels[0]
    kernel = module.kernel(kernel_name)
    op_name = op_name or kernel.name
    if op_name in _kernels:
        raise RuntimeError(f"torch.ops.femc.{op_name} is already registered")

    inputs = [a for a in kernel.args if a["role"] == "input"]
    outputs = [a for a in kernel.args if a["role"] == "output"]
    result = "Tensor" if len(outputs) == 1 else \
        "(" + ", ".join("Tensor" for _ in outputs) + ")"
    schema = "{}({}) -> {}".format(
        op_name, ", ".join("Tensor " + a["name"] for a in inputs), result)

    def impl(*tensors):
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            # Better an error than an output silently cut off the graph.
            raise RuntimeError(
                f"torch.ops.femc.{op_name} has no backward: call it under "
                f"torch.no_grad() or on tensors that do not require grad")
        kernel = _kernels[op_name]   # looked up: see _release below
        args = launch_arguments(kernel, tensors)
        kernel(*args)                # femc.Error names a bad argument
        results = args[len(inputs):]
        return results[0] if len(results) == 1 else tuple(results)

    if _library is None:
        _library = torch.library.Library("femc", "DEF")
    _library.define(schema)
    _library.impl(op_name, impl, "CPU")
    _kernels[op_name] = kernel
    return getattr(torch.ops.femc, op_name)


@atexit.register
def _release():
    # The dispatcher keeps `impl` until the process ends; dropping the
    # kernels here frees them (and their libraries) while Python still runs.
    _kernels.clear()


def get_kernel(op_name):
    """The femc.Kernel behind torch.ops.femc.<op_name>."""
    return _kernels[op_name]
