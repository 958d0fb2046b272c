"""The .mlir text of one-mixer kernels for the Python tests that compile
their own (conftest.py's compile_model fixture)."""

T4 = "tensor<?x?x?x?xf32>"


def mixer_kernel(name, prior, tq=T4, tv=T4, tb="tensor<?xf32>", extra=(),
                 attrs=""):
    """func.func @name: one fem.mixer of `prior` over q and k (type `tq`),
    v, lam and gate (`tv`), beta_raw (`tb`) and the `extra` operands,
    (name, type) pairs such as ("mask", "tensor<?x?xi1>"), in order; `attrs`
    is the mixer's attribute dictionary, e.g. "{causal}"."""
    args = "".join(f", %{n}: {t}" for n, t in extra)
    ops = "".join(f" {n}(%{n} : {t})" for n, t in extra)
    attrs = f" {attrs}" if attrs else ""
    return (f"func.func @{name}(%q: {tq}, %k: {tq}, %v: {tv}, "
            f"%beta_raw: {tb}, %lam: {tv}, %gate: {tv}{args}) -> {tv} {{\n"
            f"  %out = fem.mixer {prior} q(%q : {tq}) k(%k : {tq}) "
            f"v(%v : {tv}) beta_raw(%beta_raw : {tb}) lam(%lam : {tv}) "
            f"gate(%gate : {tv}){ops}{attrs} -> {tv}\n"
            f"  return %out : {tv}\n}}\n")
