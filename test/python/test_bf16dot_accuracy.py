"""The bf16 softmax reads that round their panel to bf16, the AVX512-BF16
dot-product read (--target=...+bf16dot, passes/cpu/ReadSoftmaxBf16.cpp) and
the AMX read (AMX-BF16 targets, passes/cpu/ReadSoftmaxAmx.cpp), within the
bf16 tolerance on the spec_fuzz draws they once failed.

With the tilted values X and the weights P each rounded to one bf16, the row
sum l over the unrounded weights and the max shift, 14 draws of spec_fuzz
seeds 9501, 9601 and 20261202 (the four bf16 softmax kernels;
/tmp/C-bug-bf16dot-tolerance.md of 2026-12-03, and a needle draw) erred 1.02x
to 611x the bf16 tolerance (1e-2 of max|out|), where the f32 read on the same
bf16 inputs stays within 0.34x: F = (log Z + M)/beta turns Z's relative
error, 2^-9, into 2^-9/beta. Both reads now keep X as hi + lo (two bf16),
sum l over the bf16 weights they multiply and centre their tilt as the f32
read does (the needle: 1.35x with hi + lo and the max shift); the same draws
then stay within 0.71x (the dot read, Zen 4) and 0.5x (the AMX read,
2026-12-04; ctest's python.spec_fuzz had failed seed 20261202 index 228 on
an AMX host, 1.07x). Each draw is replayed through spec_fuzz.run_case
(spec_ref.py in float64, judged as spec_fuzz judges) on the four kernels
compiled for x86-64-v4+bf16dot and for sapphirerapids; each read runs where
the CPU has its features and is skipped, saying so, elsewhere.
"""

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


FLAGS = _cpu_flags()
# read: (femc's target, the CPU flags it needs, what the manifest says)
READS = {
    "dot": ("--target=x86-64-v4+bf16dot",
            ("avx512f", "avx512bw", "avx512vl", "avx512_bf16"),
            "bf16 dot-product read"),
    "amx": ("--target=sapphirerapids",
            ("avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16"),
            "AMX-BF16"),
}


def _missing(read):
    return [f for f in READS[read][1] if f not in FLAGS]


KERNELS = ("softmax_full_mask_bf16", "softmax_full_mask_bhtd_bf16",
           "softmax_causal_mask_bthd_bf16",
           "softmax_causal_mask_t16x16x8_bf16")

# (where it was drawn, the error of the read before over the tolerance,
# the draw's spec_fuzz parameters)
DRAWS = [
    ("seed 20261202 index 228 (ctest python.spec_fuzz)", 1.07,
     {"kernel": "softmax_full_mask_bf16", "seed": 1325147505, "S": 303,
      "B": 1, "T": 303, "H": 2, "Hkv": 2, "dk": 2, "dv": 9,
      "beta": ["const", 50.0], "v": ["normal", 0.0022085296889168627],
      "qk": 7.692508997634541, "lam": 3.0, "gate": 3.0, "tweaks": [],
      "mask": None, "hide": False}),
    ("seed 9501 index 958", 1.68,
     {"kernel": "softmax_full_mask_bhtd_bf16", "seed": 1509583574, "S": 193,
      "B": 3, "T": 193, "H": 2, "Hkv": 1, "dk": 33, "dv": 3,
      "beta": ["two", -30.0, 100.0],
      "v": ["logspread", -3.0, 1.0461634817826018],
      "qk": 0.05594376192252677, "lam": 1.0, "gate": 10.0, "tweaks": [],
      "mask": ["middle"], "hide": False}),
    ("seed 9501 index 1071", 1.25,
     {"kernel": "softmax_full_mask_bhtd_bf16", "seed": 2069745200,
      "S": 2053, "B": 1, "T": 2053, "H": 1, "Hkv": 1, "dk": 2, "dv": 65,
      "beta": ["const", -1.0], "v": ["logspread", -3.0, 0.6290390191577147],
      "qk": 0.01402307516350326, "lam": 3.0, "gate": 3.0, "tweaks": [],
      "mask": ["random", 0.5], "hide": True}),
    ("seed 9501 index 1239", 1.02,
     {"kernel": "softmax_full_mask_bf16", "seed": 1758079838, "S": 215,
      "B": 1, "T": 215, "H": 3, "Hkv": 3, "dk": 3, "dv": 9,
      "beta": ["const", -60.0], "v": ["logspread", -3.0, 0.5351649800083931],
      "qk": 0.30046417101667167, "lam": 10.0, "gate": 3.0,
      "tweaks": ["gate_edges"], "mask": ["middle"], "hide": True}),
]
# a needle of 0.3 at the last of 4096 keys, v = 0 elsewhere: the output is
# ~0.3/S, and the max shift left X - 1 ~ -0.26 on every other key, each off
# by the same 2^-17 of itself with hi + lo
DRAWS.append(("seed 20261202 index 323 (the four kernels)", 611.0, {
    "kernel": "softmax_full_mask_bf16", "seed": 1454932495, "S": 4096,
    "B": 1, "T": 4096, "H": 1, "Hkv": 1, "dk": 5, "dv": 16,
    "beta": ["uniform", -1.0, 2.0], "v": ["needle", 0.0, 0.3, 1, "last"],
    "qk": 0.08421043074754038, "lam": 3.0, "gate": 1.0, "tweaks": [],
    "mask": None, "hide": False, "draw": "needle"}))
# seed 9601 on the four bf16 softmax kernels: the 9 of 598 draws that failed
_9601 = [
    (34, 1.46,
     '{"kernel":"softmax_full_mask_bf16","seed":1454161214,"S":193,"B":3,"T":193,"H":2,"Hkv":1,"dk":2,"dv":16,"beta":["uniform",-21.91,-10.84],"v":["normal",237.94075153769427],"qk":0.035710270834072765,"lam":10.0,"gate":1.0,"tweaks":["huge_gate"],"mask":["holes_and_empty"],"hide":false}'),
    (46, 3.24,
     '{"kernel":"softmax_full_mask_bhtd_bf16","seed":72892197,"S":384,"B":2,"T":384,"H":1,"Hkv":1,"dk":13,"dv":16,"beta":["uniform",-12.54,-11.54],"v":["normal",59.35535217995311],"qk":0.022480645473386116,"lam":10.0,"gate":10.0,"tweaks":[],"mask":["start"],"hide":false}'),
    (61, 2.78,
     '{"kernel":"softmax_full_mask_bhtd_bf16","seed":1489012650,"S":1024,"B":2,"T":1024,"H":1,"Hkv":1,"dk":65,"dv":3,"beta":["two",-100.0,30.0],"v":["normal",1113.8827735961625],"qk":0.05872565722945204,"lam":10.0,"gate":1.0,"tweaks":[],"mask":null,"hide":false}'),
    (108, 1.08,
     '{"kernel":"softmax_full_mask_bf16","seed":1237785387,"S":2237,"B":2,"T":129,"H":3,"Hkv":3,"dk":65,"dv":24,"beta":["uniform",-25.58,-16.15],"v":["normal",3.2307329586394378],"qk":0.0323462504235773,"lam":10.0,"gate":3.0,"tweaks":[],"mask":["random",0.1],"hide":false}'),
    (249, 1.8,
     '{"kernel":"softmax_full_mask_bf16","seed":986461494,"S":1381,"B":1,"T":1381,"H":1,"Hkv":1,"dk":33,"dv":7,"beta":["const",-5.0],"v":["normal",0.7732898275606874],"qk":0.017397023252805652,"lam":1.0,"gate":1.0,"tweaks":[],"mask":["random",0.1],"hide":true}'),
    (258, 1.75,
     '{"kernel":"softmax_full_mask_bhtd_bf16","seed":107549379,"S":3001,"B":1,"T":3001,"H":1,"Hkv":1,"dk":32,"dv":1,"beta":["const",-26.75],"v":["normal",9456.628595533557],"qk":0.1330919121406501,"lam":1.0,"gate":10.0,"tweaks":["qk_negative"],"mask":null,"hide":false,"draw":"wide"}'),
    (355, 9.69,
     '{"kernel":"softmax_full_mask_bhtd_bf16","seed":497318146,"S":3000,"B":1,"T":257,"H":2,"Hkv":2,"dk":13,"dv":3,"beta":["uniform",-26.67,-0.11],"v":["logspread",-3.0,2.801112093654645],"qk":0.2694408596146049,"lam":1.0,"gate":1.0,"tweaks":[],"mask":null,"hide":false}'),
    (518, 1.36,
     '{"kernel":"softmax_full_mask_bf16","seed":356891120,"S":3001,"B":1,"T":3001,"H":1,"Hkv":1,"dk":3,"dv":16,"beta":["const",19.17],"v":["normal",0.016715650544220098],"qk":0.010931474047003726,"lam":3.0,"gate":1.0,"tweaks":["gate_edges"],"mask":null,"hide":false,"draw":"wide"}'),
    (557, 1.9,
     '{"kernel":"softmax_full_mask_bf16","seed":1466999847,"S":2048,"B":1,"T":2048,"H":1,"Hkv":1,"dk":16,"dv":1,"beta":["const",8.51],"v":["normal",0.0027142247434401344],"qk":0.1639820432789025,"lam":1.0,"gate":3.0,"tweaks":["big_logits"],"mask":["start"],"hide":true,"draw":"wide"}'),
]
DRAWS += [(f"seed 9601 index {i}", before, json.loads(text))
          for i, before, text in _9601]


@pytest.fixture(scope="module", params=sorted(READS))
def ctx(request):
    read = request.param
    missing = _missing(read)
    if missing:
        pytest.skip(f"this CPU has no {', '.join(missing)}: the {read} read "
                    "cannot run here (its FileCheck tests, "
                    "test/integration/femc-target-bf16dot.test and "
                    "femc-target-amx.test, still compile it)")
    for env, name in (("FEMC", "femc"), ("FEM_RUN", "fem-run")):
        path = os.environ.get(env) or os.path.join(
            os.path.dirname(os.path.dirname(HERE)), "build", "bin", name)
        if not os.access(path, os.X_OK):
            pytest.skip(f"{name} not found (set {env})")
    import spec_fuzz
    context = spec_fuzz.Context(libraries=())
    kernels = [k for key in spec_fuzz.LIBRARIES
               for k in spec_fuzz.LIBRARIES[key][3] if k.name in KERNELS]
    assert sorted(k.name for k in kernels) == sorted(KERNELS)
    target, _, says = READS[read]
    context.add_static(kernels, [target])
    # the library holds the read asked for (not the f32 one)
    lib = context.kernels[KERNELS[0]][1]
    with open(os.path.splitext(lib)[0] + ".json") as f:
        assert says in f.read()
    if read == "amx":
        import subprocess
        asm = subprocess.run(["objdump", "-d", lib], capture_output=True,
                             text=True).stdout
        assert "tdpbf16ps" in asm, "the AMX library has no AMX products"
    return context


@pytest.mark.parametrize("where,before,params", DRAWS,
                         ids=[d[0].replace(" ", "_") for d in DRAWS])
def test_read_within_bf16_tolerance(ctx, where, before, params):
    import spec_fuzz
    err, msg = spec_fuzz.run_case(ctx, dict(params))
    tol = spec_fuzz.TOLERANCE["bf16"]
    assert err <= tol, (f"{where} (before the fix {before}x the tolerance): "
                        f"{err / tol:.3g}x the bf16 tolerance: {msg}")


SOFTMAX_BF16 = os.path.join(os.path.dirname(os.path.dirname(HERE)), "test",
                            "integration", "Inputs", "softmax_amx.mlir")


@pytest.mark.skipif(bool(_missing("dot")),
                    reason="this CPU has no " + ", ".join(_missing("dot")) +
                    ": FEMC_HOST_CPU masks this CPU's features, it does not "
                    "add AVX512-BF16")
@pytest.mark.parametrize("host,off,dot", [
    ("znver4", False, True), ("znver5", False, True),
    ("znver4", True, False), ("cooperlake", False, False)])
def test_host_default(femc_bin, tmp_path, host, off, dot):
    """--target=host takes the dot read on a Zen 4/5 host with AVX512-BF16
    (this CPU masked to znver4/znver5 by FEMC_HOST_CPU), not on Intel's
    cooperlake, and not with FEMC_BF16_DOT=0 (the compile-only checks of
    the named CPUs: test/integration/femc-target-bf16dot.test)."""
    import subprocess
    env = dict(os.environ, FEMC_HOST_CPU=host)
    env.pop("FEMC_BF16_DOT", None)
    if off:
        env["FEMC_BF16_DOT"] = "0"
    r = subprocess.run([femc_bin, SOFTMAX_BF16, "--emit=asm", "-o",
                        str(tmp_path)], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "softmax_amx.s") as f:
        asm = f.read()
    assert ("vdpbf16ps" in asm) == dot
    assert "tdpbf16ps" not in asm
