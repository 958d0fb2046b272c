"""PyTorch custom ops backed by femc kernels and layers: torch.ops.femc.<name>.

    import fem_op
    op = fem_op.register("out/softmax_fem.so")        # -> torch.ops.femc.softmax_fem
    out = op(q, k, v, beta_raw, lam, gate)             # or torch.ops.femc.softmax_fem(...)

Each op is a torch.library.custom_op (PyTorch >= 2.4) named
"femc::<name>", with mutates_args=() and a schema built from the kernel's
arguments, e.g. `softmax_fem(Tensor q, Tensor k, Tensor v, Tensor beta_raw,
Tensor lam, Tensor gate) -> Tensor`; a kernel with a carried state returns
(out, state_out). Argument names that are not identifiers (a layer's
parameters are named by state_dict key, e.g. `W_q.weight`) become
identifiers (`W_q_weight`); `schema_names(op_name)` lists them.

- The CPU implementation allocates the outputs with torch.empty and launches
  the kernel on the tensors themselves through DLPack: contiguous float32
  CPU tensors are not copied (a non-contiguous one is made contiguous first,
  which copies it). A bad argument raises femc.Error naming it.
- register_fake computes the outputs' shapes (symbolic sizes included) from
  the extents the inputs bind by dimension name, their dtypes from the
  kernel and their device from the inputs, so the op traces under
  torch.compile (fullgraph) and passes torch.library.opcheck.
- Autograd: femc kernels are forward-only. The op runs on tensors that
  require grad (an nn.Module's parameters) and its outputs are part of the
  graph, but asking for a gradient through it raises
  "femc::<name>: backward is not supported ...". The error is raised when
  the backward runs (by the op femc::_backward_unsupported), not when
  torch.compile traces it, so a compiled model that never calls backward
  works.

A compiled layer (a library with a `fem.layer` entry, e.g. from femc.import
or examples/fem_layer_torch.mlir) registers the same way; `Layer` wraps it
as an nn.Module whose parameters are the module's state_dict.
"""

import atexit
import keyword
import re

import torch

import femc

if not hasattr(torch.library, "custom_op"):
    raise ImportError(
        f"fem_op needs PyTorch >= 2.4 (torch.library.custom_op); this is "
        f"PyTorch {torch.__version__}")

_kernels = {}            # op name -> femc.Kernel
_ops = {}                # op name -> torch.library.CustomOpDef
_schema_names = {}       # op name -> the schema's argument names

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16,
                 "bfloat16": torch.bfloat16, "float64": torch.float64,
                 "uint8": torch.uint8, "int32": torch.int32,
                 "int64": torch.int64, "bool": torch.bool}


def _output_shapes(kernel, tensors):
    """The outputs' shapes from the extents the inputs bind by name. The
    sizes are kept as they are (SymInts under tracing). An extent no input
    binds is None."""
    bound = {}
    inputs = [a for a in kernel.args if a["role"] == "input"]
    for arg, tensor in zip(inputs, tensors):
        if tensor.dim() == len(arg["dims"]):
            for name, size in zip(arg["dims"], tensor.shape):
                bound.setdefault(name, size)
    shapes = []
    for arg in kernel.args:
        if arg["role"] == "output":
            shapes.append([bound.get(name, static) for name, static in
                           zip(arg["dims"], arg["shape"])])
    return shapes


def launch_arguments(kernel, tensors):
    """The tensors the kernel is launched on: the inputs as given (detached,
    and contiguous: no copy for contiguous tensors), then fresh outputs."""
    args = [t.detach().contiguous() for t in tensors]
    outputs = [a for a in kernel.args if a["role"] == "output"]
    device = args[0].device if args else torch.device("cpu")
    for arg, shape in zip(outputs, _output_shapes(kernel, args)):
        # 0 where an extent is unknown: an input has the wrong rank, and the
        # launch reports that input.
        shape = [0 if size is None else int(size) for size in shape]
        args.append(torch.empty(shape, dtype=_TORCH_DTYPES[arg["dtype"]],
                                device=device))
    return args


def _identifier(name, taken):
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit() or keyword.iskeyword(ident):
        ident = "arg_" + ident
    base, n = ident, 1
    while ident in taken:
        ident, n = f"{base}_{n}", n + 1
    taken.add(ident)
    return ident


@torch.library.custom_op("femc::_backward_unsupported", mutates_args=(),
                         device_types="cpu")
def _backward_unsupported(op: str, grads: list[torch.Tensor],
                          inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    # It takes the gradients so that it runs in the backward pass (a
    # partitioner moves what only needs the inputs into the forward).
    raise RuntimeError(
        f"femc::{op}: backward is not supported: femc kernels are "
        f"forward-only (no autograd formula); call the op under "
        f"torch.no_grad() or on detached tensors when no gradient is needed")


@_backward_unsupported.register_fake
def _(op, grads, inputs):
    return [torch.empty_like(t) for t in inputs]


def _define(op_name, kernel):
    inputs = [a for a in kernel.args if a["role"] == "input"]
    outputs = [a for a in kernel.args if a["role"] == "output"]
    taken = set()
    names = [_identifier(a["name"], taken) for a in inputs]
    result = "Tensor" if len(outputs) == 1 else \
        "(" + ", ".join("Tensor" for _ in outputs) + ")"
    schema = "({}) -> {}".format(
        ", ".join("Tensor " + n for n in names), result)

    def impl(*tensors):
        kernel = _kernels[op_name]   # looked up: see _release below
        args = launch_arguments(kernel, tensors)
        kernel(*args)                # femc.Error names a bad argument
        results = args[len(inputs):]
        return results[0] if len(results) == 1 else tuple(results)

    def fake(*tensors):
        for arg, t in zip(inputs, tensors):
            if t.dim() != len(arg["dims"]):
                raise RuntimeError(
                    f"femc::{op_name}: argument '{arg['name']}' has rank "
                    f"{t.dim()}, expected {len(arg['dims'])} "
                    f"({','.join(arg['dims'])})")
        device = tensors[0].device
        # One meta tensor among CPU tensors dispatches here (Meta outranks
        # CPU), not to impl: the outputs were torch.empty on the CPU, handed
        # back unwritten (a silent garbage result).
        for arg, t in zip(inputs, tensors):
            if t.device != device:
                raise RuntimeError(
                    f"femc::{op_name}: argument '{arg['name']}' is on "
                    f"{t.device} but argument '{inputs[0]['name']}' is on "
                    f"{device}; pass every tensor on one device (femc ops "
                    f"run on CPU tensors)")
        results = []
        shapes = _output_shapes(_kernels[op_name], tensors)
        for arg, shape in zip(outputs, shapes):
            if any(size is None for size in shape):
                raise RuntimeError(
                    f"femc::{op_name}: no input gives the extents of output "
                    f"'{arg['name']}' ({','.join(arg['dims'])})")
            results.append(tensors[0].new_empty(
                shape, dtype=_TORCH_DTYPES[arg["dtype"]], device=device))
        return results[0] if len(results) == 1 else tuple(results)

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def backward(ctx, *grads):
        return tuple(torch.ops.femc._backward_unsupported(
            op_name, list(grads), list(ctx.saved_tensors)))

    op = torch.library.custom_op(f"femc::{op_name}", impl, mutates_args=(),
                                 device_types="cpu", schema=schema)
    op.register_fake(fake)
    op.register_autograd(backward, setup_context=setup_context)
    return op, names


def register(library_path, kernel_name=None, op_name=None, threads=None):
    """Loads the kernel `kernel_name` (default: the library's layer when it
    holds one, else its only kernel) from a femc library and defines the
    custom op torch.ops.femc.<op_name> (default: the kernel's name) for CPU
    tensors. Returns the op (torch.ops.femc.<op_name>)."""
    return getattr(torch.ops.femc,
                   _register(library_path, kernel_name, op_name, threads))


def _register(library_path, kernel_name, op_name, threads, layer=False):
    module = femc.load(library_path, threads=threads)
    if kernel_name is None:
        layers = [n for n in module.kernels if module.kernel(n).layer]
        candidates = layers if len(layers) == 1 else module.kernels
        if len(candidates) != 1:
            raise ValueError(f"{library_path} has kernels {module.kernels}; "
                             f"choose one with kernel_name=")
        kernel_name = candidates[0]
    kernel = module.kernel(kernel_name)
    if layer and not kernel.layer:
        raise ValueError(f"{library_path}: '{kernel.name}' is not a layer "
                         f"(a fem.layer entry)")
    op_name = op_name or kernel.name
    if op_name in _kernels:
        raise RuntimeError(f"torch.ops.femc.{op_name} is already registered")
    _kernels[op_name] = kernel
    try:
        _ops[op_name], _schema_names[op_name] = _define(op_name, kernel)
    except Exception:
        del _kernels[op_name]
        raise
    return op_name


@atexit.register
def _release():
    # The dispatcher keeps `impl` until the process ends; dropping the
    # kernels here frees them (and their libraries) while Python still runs.
    _kernels.clear()


def get_kernel(op_name):
    """The femc.Kernel behind torch.ops.femc.<op_name>."""
    return _kernels[op_name]


def get_custom_op(op_name):
    """The torch.library.CustomOpDef of torch.ops.femc.<op_name> (for
    torch.library.opcheck, register_autograd, ...)."""
    return _ops[op_name]


def schema_names(op_name):
    """The op's argument names in order (the kernel's, made identifiers)."""
    return list(_schema_names[op_name])


class Layer(torch.nn.Module):
    """A compiled FEM layer as an nn.Module: forward(x[, attention_mask])
    calls torch.ops.femc.<op_name> with the parameters, which are those of
    the layer's arguments after x and attention_mask, by state_dict name.

        layer = fem_op.Layer("out/fem_layer_torch.so", state_dict)
        y = layer(x, attention_mask)                  # (B, T, n_embd)
    """

    def __init__(self, library_path, state_dict, kernel_name=None,
                 op_name=None, threads=None):
        super().__init__()
        self.op_name = _register(library_path, kernel_name, op_name, threads,
                                 layer=True)
        self.op = getattr(torch.ops.femc, self.op_name)
        kernel = get_kernel(self.op_name)
        inputs = [a["name"] for a in kernel.args if a["role"] == "input"]
        self.takes_mask = len(inputs) > 1 and inputs[1] == "attention_mask"
        self.param_names = inputs[2 if self.takes_mask else 1:]
        missing = [n for n in self.param_names if n not in state_dict]
        if missing:
            raise KeyError(f"state_dict lacks the layer's parameters "
                           f"{missing}")
        self.params = torch.nn.ParameterList(
            torch.nn.Parameter(torch.as_tensor(state_dict[n]).float(),
                               requires_grad=False)
            for n in self.param_names)

    def forward(self, x, attention_mask=None):
        args = [x]
        if self.takes_mask:
            if attention_mask is None:
                attention_mask = x.new_ones(x.shape[:2])
            args.append(attention_mask.to(x.dtype))
        elif attention_mask is not None:
            raise ValueError("this layer was compiled without attention_mask")
        return self.op(*args, *self.params)
