//===- LayerTest.cpp - the layer examples against the reference layer -----===//
//
// Whole layers compiled by femc (projections, RoPE, the FEM read, output
// projection) against the same layer in double precision: projections and
// RoPE (docs/semantics.md §6, the reference's mixed convention) in double,
// the FEM read by femref, the output projection in double. One reference
// layer serves every prior: the layer's shapes and which operands its prior
// reads (the gla decay logits) come from a LayerSpec.
//
//   examples/fem_layer.mlir      softmax, dk = dv = 64
//   examples/fem_layer_gla.mlir  gla, dk = 32, dv = 64, decay logits (D,H)
//   Inputs/layers.mlir           linear and aft as gla without the decay;
//                                ssm (no q, k) with Δ, A, Bs, Cs, D formed
//                                from projections and parameters, N = 16;
//                                softmax with a key mask argument (B,T)
//   Inputs/layer_natural.mlir    softmax in the authors' layouts: nn.Linear
//                                W (out, in) and biases, reshapes between
//                                (B,T,H*d) and (B,T,H,d), an f32
//                                attention_mask (B,T) turned into the read's
//                                key mask inside the layer
//
//===----------------------------------------------------------------------===//
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Random.h"
#include "test/integration/KernelLibrary.h"
#include "test/integration/TestProblem.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace {

constexpr int64_t D = 256, H = 4, DK = 64, DV = 64;

DLTensor tensor(float *data, std::vector<int64_t> &shape) {
  DLTensor t{};
  t.data = data;
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<int32_t>(shape.size());
  t.dtype = {kDLFloat, 32, 1};
  t.shape = shape.data();
  return t;
}

/// One compiled layer example: its library and kernel, its prior and sizes.
struct LayerSpec {
  const char *library, *kernel;
  femc::ref::Prior prior;
  int64_t D, H, dk, dv;
  /// The layer projects queries and keys (every prior but ssm).
  bool keys;
  /// The prior reads per-head decay logits, projected by W_decay (D,H)
  /// (gla).
  bool decay;
  /// The ssm state size N; 0 for the other priors. The ssm layer takes
  /// W_delta (D,E), A_log (E,N), W_B, W_C (D,N) and D_raw (E).
  int64_t N;
  /// The layer takes a key mask (B,T) as its last argument (uint8, nonzero
  /// keeps the key) and gives it to its FEM read.
  bool mask = false;
};

void PrintTo(const LayerSpec &s, std::ostream *os) {
  *os << s.kernel << " (" << femc::ref::priorName(s.prior) << ", D=" << s.D
      << " H=" << s.H << " dk=" << s.dk << " dv=" << s.dv << ")";
}

std::string layerName(const ::testing::TestParamInfo<LayerSpec> &info) {
  return std::string(femc::ref::priorName(info.param.prior)) +
         (info.param.mask ? "_masked" : "");
}

/// y[r,j] = sum_k x[r,k] w[k,j] in double: x (BT,D), w (D,width).
std::vector<double> project(const std::vector<float> &x,
                            const std::vector<float> &w, int64_t BT, int64_t D,
                            int64_t width) {
  std::vector<double> y(BT * width, 0.0);
  for (int64_t r = 0; r < BT; ++r)
    for (int64_t k = 0; k < D; ++k)
      for (int64_t j = 0; j < width; ++j)
        y[r * width + j] += double(x[r * D + k]) * w[k * width + j];
  return y;
}

/// RoPE as the reference writes it: frequencies repeated ("half" layout),
/// rotation partners interleaved; x (B,T,H,dk).
std::vector<double> rope(const std::vector<double> &x, int64_t B, int64_t T,
                         int64_t H, int64_t dk) {
  std::vector<double> y(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < dk; ++j) {
          size_t base = ((b * T + t) * H + h) * dk;
          int64_t i = j % (dk / 2);
          double invFreq = std::pow(10000.0, -2.0 * i / dk);
          double angle = t * invFreq;
          double rot = (j % 2 == 0) ? -x[base + j + 1] : x[base + j - 1];
          y[base + j] = x[base + j] * std::cos(angle) + rot * std::sin(angle);
        }
  return y;
}

/// The layer's output against the double layer: every element finite and
/// max |out - y| <= 1e-4 max |y| (docs/semantics.md, tolerances).
void expectNearLayerReference(const std::vector<float> &out,
                              const std::vector<double> &y) {
  ASSERT_EQ(out.size(), y.size());
  femc::test::MaxError err;
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_TRUE(std::isfinite(out[i])) << "element " << i;
    err.add(i, out[i], y[i]);
  }
  EXPECT_GT(err.maxRef, 0.0);
  EXPECT_LE(err.maxErr, 1e-4 * err.maxRef) << "relative " << err.relative();
}

std::vector<float> toFloat(const std::vector<double> &x) {
  return std::vector<float>(x.begin(), x.end());
}

/// softplus(x) = log(1 + e^x) in double, without overflow.
double softplus(double x) {
  return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x)));
}

/// The weights of one layer, in the order of the layer's arguments after x:
/// [wq, wk], wv, wl, wg, [wd], [wdelta, A_log, wB, wC, D_raw], wo, beta_raw.
struct LayerWeights {
  std::vector<float> wq, wk, wv, wl, wg, wd, wdelta, aLog, wB, wC, dRaw, wo,
      beta;
};

LayerWeights randomWeights(const LayerSpec &s, femc::Rng &rng) {
  LayerWeights w;
  std::vector<std::pair<std::vector<float> *, int64_t>> perHead = {
      {&w.wv, s.dv}, {&w.wl, s.dv}, {&w.wg, s.dv}};
  if (s.keys)
    perHead.insert(perHead.begin(), {{&w.wq, s.dk}, {&w.wk, s.dk}});
  for (auto [m, width] : perHead) {
    m->resize(s.D * s.H * width);
    rng.fillUniform(*m, -0.15, 0.15);
  }
  if (s.N) {
    int64_t E = s.H * s.dv;
    w.wdelta.resize(s.D * E);
    rng.fillUniform(w.wdelta, -0.05, 0.05);
    w.aLog.resize(E * s.N);
    rng.fillUniform(w.aLog, -1, 1);
    for (auto *m : {&w.wB, &w.wC}) {
      m->resize(s.D * s.N);
      rng.fillUniform(*m, -0.05, 0.05);
    }
    w.dRaw.resize(E);
    rng.fillUniform(w.dRaw, -1, 1);
  }
  if (s.decay) {
    // Decay logits of about +-0.3: cumulative decays of tens over 130
    // tokens, inside the prior's clamp.
    w.wd.resize(s.D * s.H);
    rng.fillUniform(w.wd, -0.05, 0.05);
  }
  w.wo.resize(s.H * s.dv * s.D);
  rng.fillUniform(w.wo, -0.1, 0.1);
  w.beta.resize(s.H * s.dv);
  rng.fillUniform(w.beta, -1, 2);
  return w;
}

/// The reference layer: x (B,T,D) → y (B,T,D) in double, the FEM read by
/// femref. Fails the test (and returns an empty vector) when femref refuses
/// the problem.
std::vector<double> referenceLayer(const LayerSpec &s, const LayerWeights &w,
                                   const std::vector<float> &x,
                                   const std::vector<uint8_t> &mask, int64_t B,
                                   int64_t T) {
  int64_t BT = B * T, E = s.H * s.dv;
  std::vector<float> q, k;
  if (s.keys) {
    q = toFloat(rope(project(x, w.wq, BT, s.D, s.H * s.dk), B, T, s.H, s.dk));
    k = toFloat(rope(project(x, w.wk, BT, s.D, s.H * s.dk), B, T, s.H, s.dk));
  }
  std::vector<float> v = toFloat(project(x, w.wv, BT, s.D, s.H * s.dv));
  std::vector<float> lam = toFloat(project(x, w.wl, BT, s.D, s.H * s.dv));
  std::vector<float> gate = toFloat(project(x, w.wg, BT, s.D, s.H * s.dv));
  std::vector<float> decay;
  if (s.decay)
    decay = toFloat(project(x, w.wd, BT, s.D, s.H));
  // ssm: Δ = exp(-softplus(x W_delta)), A = -softplus(A_log),
  // Bs, Cs = softplus(x W) + eps, D = softplus(D_raw) + eps.
  std::vector<float> delta, A, Bs, Cs, Dskip;
  if (s.N) {
    std::vector<double> z = project(x, w.wdelta, BT, s.D, E);
    for (double &d : z)
      d = std::exp(-softplus(d));
    delta = toFloat(z);
    for (float a : w.aLog)
      A.push_back(static_cast<float>(-softplus(a)));
    for (auto [out, weight] : {std::pair{&Bs, &w.wB}, {&Cs, &w.wC}})
      for (double d : project(x, *weight, BT, s.D, s.N))
        out->push_back(static_cast<float>(softplus(d) + 1e-6));
    for (float d : w.dRaw)
      Dskip.push_back(static_cast<float>(softplus(d) + 1e-6));
  }
  femc::ref::Problem p;
  p.prior = s.prior;
  p.causal = true;
  p.B = B;
  p.T = p.S = T;
  p.H = p.Hkv = s.H;
  p.dk = s.dk;
  p.dv = s.dv;
  p.N = s.N;
  p.hasMask = s.mask;
  femc::ref::Inputs in;
  if (s.keys) {
    in.q = q.data();
    in.k = k.data();
  }
  in.v = v.data();
  in.beta_raw = w.beta.data();
  in.lam = lam.data();
  in.gate = gate.data();
  if (s.decay)
    in.decay = decay.data();
  if (s.N) {
    in.delta = delta.data();
    in.A = A.data();
    in.Bs = Bs.data();
    in.Cs = Cs.data();
    in.D = Dskip.data();
  }
  if (s.mask)
    in.mask = mask.data();
  std::string error;
  auto read = femc::ref::run(p, in, error);
  EXPECT_TRUE(read.has_value()) << error;
  if (!read)
    return {};
  std::vector<double> y(BT * s.D, 0.0);
  for (int64_t r = 0; r < BT; ++r)
    for (int64_t e = 0; e < s.D; ++e)
      for (int64_t j = 0; j < E; ++j)
        y[r * s.D + e] += read->out[r * E + j] * w.wo[j * s.D + e];
  return y;
}

class LayerMatrix : public ::testing::TestWithParam<LayerSpec> {};

TEST_P(LayerMatrix, MatchesTheReferenceLayer) {
  const LayerSpec &s = GetParam();
  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  ASSERT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK) << femrt_last_error();
  ASSERT_EQ(femrt_module_load_library(ctx, s.library, &module), FEMRT_OK)
      << femrt_last_error();
  ASSERT_EQ(femrt_module_get_kernel(module, s.kernel, &kernel), FEMRT_OK)
      << femrt_last_error();

  // T = 1; odd T with B > 1; T across the scan priors' 64-row chunks.
  for (auto [B, T] : {std::pair<int64_t, int64_t>{1, 1}, {2, 37}, {1, 130}}) {
    SCOPED_TRACE("B=" + std::to_string(B) + " T=" + std::to_string(T));
    femc::Rng rng(42 + T);
    std::vector<float> x(B * T * s.D);
    rng.fillUniform(x, -1, 1);
    LayerWeights w = randomWeights(s, rng);
    // About a quarter of the keys masked, never the first of a sequence.
    std::vector<uint8_t> mask;
    if (s.mask)
      for (int64_t i = 0; i < B * T; ++i)
        mask.push_back(i % T == 0 || rng.uniform(0, 1) > 0.25);
    std::vector<float> out(B * T * s.D, std::nanf(""));

    int64_t E = s.H * s.dv;
    std::vector<int64_t> sx = {B, T, s.D}, sqk = {s.D, s.H, s.dk},
                         sv = {s.D, s.H, s.dv}, sd = {s.D, s.H},
                         so = {s.H, s.dv, s.D}, sb = {E}, sde = {s.D, E},
                         sa = {E, s.N}, sn = {s.D, s.N};
    std::vector<DLTensor> t = {tensor(x.data(), sx)};
    if (s.keys) {
      t.push_back(tensor(w.wq.data(), sqk));
      t.push_back(tensor(w.wk.data(), sqk));
    }
    for (auto *m : {&w.wv, &w.wl, &w.wg})
      t.push_back(tensor(m->data(), sv));
    if (s.decay)
      t.push_back(tensor(w.wd.data(), sd));
    if (s.N) {
      t.push_back(tensor(w.wdelta.data(), sde));
      t.push_back(tensor(w.aLog.data(), sa));
      t.push_back(tensor(w.wB.data(), sn));
      t.push_back(tensor(w.wC.data(), sn));
      t.push_back(tensor(w.dRaw.data(), sb));
    }
    t.push_back(tensor(w.wo.data(), so));
    t.push_back(tensor(w.beta.data(), sb));
    std::vector<int64_t> sm = {B, T};
    if (s.mask) {
      DLTensor m = tensor(nullptr, sm);
      m.data = mask.data();
      m.dtype = {kDLUInt, 8, 1};
      t.push_back(m);
    }
    t.push_back(tensor(out.data(), sx));
    ASSERT_EQ(femc::test::launch(kernel, t), FEMRT_OK) << femrt_last_error();

    std::vector<double> y = referenceLayer(s, w, x, mask, B, T);
    ASSERT_EQ(y.size(), out.size());
    expectNearLayerReference(out, y);
  }
  femrt_module_destroy(module);
  femrt_context_destroy(ctx);
}

INSTANTIATE_TEST_SUITE_P(
    FemLayer, LayerMatrix,
    ::testing::Values(
        LayerSpec{FEMC_LAYER_LIBRARY, "fem_layer", femc::ref::Prior::Softmax,
                  D, H, DK, DV, /*keys=*/true, /*decay=*/false, /*N=*/0},
        LayerSpec{FEMC_LAYER_GLA_LIBRARY, "fem_layer_gla",
                  femc::ref::Prior::Gla, D, H, /*dk=*/32, DV, true, true, 0},
        LayerSpec{FEMC_LAYERS_LIBRARY, "fem_layer_linear",
                  femc::ref::Prior::Linear, D, H, 32, DV, true, false, 0},
        LayerSpec{FEMC_LAYERS_LIBRARY, "fem_layer_aft", femc::ref::Prior::Aft,
                  D, H, 32, DV, true, false, 0},
        LayerSpec{FEMC_LAYERS_LIBRARY, "fem_layer_ssm", femc::ref::Prior::Ssm,
                  D, H, 32, DV, /*keys=*/false, false, /*N=*/16},
        LayerSpec{FEMC_LAYERS_LIBRARY, "fem_layer_masked",
                  femc::ref::Prior::Softmax, D, H, 32, DV, true, false, 0,
                  /*mask=*/true}),
    layerName);

/// The layer's shapes are checked before it runs, naming the argument.
TEST(FemLayer, WrongShapeIsAnError) {
  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  ASSERT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK);
  ASSERT_EQ(femrt_module_load_library(ctx, FEMC_LAYER_LIBRARY, &module),
            FEMRT_OK);
  ASSERT_EQ(femrt_module_get_kernel(module, "fem_layer", &kernel), FEMRT_OK);
  std::vector<float> buf(D * H * DK); // the largest argument
  std::vector<int64_t> sx = {1, 8, D}, sw = {D, H, DK}, so = {H, DV, D},
                       sb = {H * DV}, sbad = {1, 9, D};
  std::vector<DLTensor> t = {tensor(buf.data(), sx), tensor(buf.data(), sw),
                             tensor(buf.data(), sw), tensor(buf.data(), sw),
                             tensor(buf.data(), sw), tensor(buf.data(), sw),
                             tensor(buf.data(), so), tensor(buf.data(), sb)};
  std::vector<float> out(9 * D);
  t.push_back(tensor(out.data(), sbad));
  EXPECT_EQ(femc::test::launch(kernel, t), FEMRT_ERROR_SHAPE_MISMATCH);
  EXPECT_NE(std::string(femrt_last_error()).find("'out'"), std::string::npos)
      << femrt_last_error();
  femrt_module_destroy(module);
  femrt_context_destroy(ctx);
}

/// y = x W^T + b in double: x (M, in) row-major, W (out, in), b (out).
std::vector<double> linearRef(const std::vector<float> &x,
                              const std::vector<float> &w,
                              const std::vector<float> &b, int64_t M,
                              int64_t in, int64_t out) {
  std::vector<double> y(M * out);
  for (int64_t r = 0; r < M; ++r)
    for (int64_t n = 0; n < out; ++n) {
      double acc = b[n];
      for (int64_t k = 0; k < in; ++k)
        acc += double(x[r * in + k]) * w[n * in + k];
      y[r * out + n] = acc;
    }
  return y;
}

/// Inputs/layer_natural.mlir: natural weight shapes, reshapes and an f32
/// attention_mask in the layer, against the double layer with the key mask
/// m != 0.
TEST(FemLayer, NaturalShapesReshapesAndAttentionMask) {
  constexpr int64_t DKN = 32, E = H * DV, EK = H * DKN;
  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  ASSERT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK) << femrt_last_error();
  ASSERT_EQ(femrt_module_load_library(ctx, FEMC_LAYER_NATURAL_LIBRARY, &module),
            FEMRT_OK)
      << femrt_last_error();
  ASSERT_EQ(femrt_module_get_kernel(module, "fem_layer_natural", &kernel),
            FEMRT_OK)
      << femrt_last_error();
  for (auto [B, T] : {std::pair<int64_t, int64_t>{1, 1}, {2, 37}, {1, 130}}) {
    SCOPED_TRACE("B=" + std::to_string(B) + " T=" + std::to_string(T));
    femc::Rng rng(7 + T);
    int64_t BT = B * T;
    std::vector<float> x(BT * D);
    rng.fillUniform(x, -1, 1);
    // About a quarter of the keys padded, never the first of a sequence.
    std::vector<float> mask(BT);
    std::vector<uint8_t> keep(BT);
    for (int64_t i = 0; i < BT; ++i) {
      keep[i] = i % T == 0 || rng.uniform(0, 1) > 0.25;
      mask[i] = keep[i] ? 1.0f : 0.0f;
    }
    // W (out, in) and b (out) for q, k, v, lambda, gate, o.
    int64_t outs[6] = {EK, EK, E, E, E, D}, ins[6] = {D, D, D, D, D, E};
    std::vector<float> w[6], b[6];
    for (int i = 0; i < 6; ++i) {
      w[i].resize(outs[i] * ins[i]);
      rng.fillUniform(w[i], -0.1, 0.1);
      b[i].resize(outs[i]);
      rng.fillUniform(b[i], -0.2, 0.2);
    }
    std::vector<float> beta(E);
    rng.fillUniform(beta, -1, 2);
    std::vector<float> out(BT * D, std::nanf(""));

    std::vector<int64_t> sx = {B, T, D}, sm = {B, T}, sw[6], sb[6],
                         sbeta = {E};
    std::vector<DLTensor> t = {tensor(x.data(), sx), tensor(mask.data(), sm)};
    for (int i = 0; i < 6; ++i) {
      sw[i] = {outs[i], ins[i]};
      sb[i] = {outs[i]};
      t.push_back(tensor(w[i].data(), sw[i]));
      t.push_back(tensor(b[i].data(), sb[i]));
    }
    t.push_back(tensor(beta.data(), sbeta));
    t.push_back(tensor(out.data(), sx));
    ASSERT_EQ(femc::test::launch(kernel, t), FEMRT_OK) << femrt_last_error();

    // The same layer in double, the read by femref.
    std::vector<float> q = toFloat(
        rope(linearRef(x, w[0], b[0], BT, D, EK), B, T, H, DKN));
    std::vector<float> k = toFloat(
        rope(linearRef(x, w[1], b[1], BT, D, EK), B, T, H, DKN));
    std::vector<float> v = toFloat(linearRef(x, w[2], b[2], BT, D, E));
    std::vector<float> lam = toFloat(linearRef(x, w[3], b[3], BT, D, E));
    std::vector<float> gate = toFloat(linearRef(x, w[4], b[4], BT, D, E));
    femc::ref::Problem p;
    p.prior = femc::ref::Prior::Softmax;
    p.causal = true;
    p.B = B;
    p.T = p.S = T;
    p.H = p.Hkv = H;
    p.dk = DKN;
    p.dv = DV;
    p.hasMask = true;
    femc::ref::Inputs in;
    in.q = q.data();
    in.k = k.data();
    in.v = v.data();
    in.beta_raw = beta.data();
    in.lam = lam.data();
    in.gate = gate.data();
    in.mask = keep.data();
    std::string error;
    auto read = femc::ref::run(p, in, error);
    ASSERT_TRUE(read.has_value()) << error;
    std::vector<float> o(read->out.begin(), read->out.end());
    std::vector<double> y = linearRef(o, w[5], b[5], BT, E, D);
    expectNearLayerReference(out, y);
  }
  femrt_module_destroy(module);
  femrt_context_destroy(ctx);
}

/// A layer's stages (matmul stages, FEM read) run on the pool libfemrt lends
/// the layer (femrt_host): on 4 threads they give the same bits as on the
/// calling thread alone, since every workgroup owns its rows.
TEST(FemLayer, PoolThreadsGiveTheSameBits) {
  constexpr int64_t B = 2, T = 150, DKN = 32, E = H * DV, EK = H * DKN;
  femrt_context_options copts;
  femrt_context_options_init(&copts);
  copts.num_threads = 4;
  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  ASSERT_EQ(femrt_context_create(&copts, &ctx), FEMRT_OK) << femrt_last_error();
  ASSERT_EQ(femrt_module_load_library(ctx, FEMC_LAYER_NATURAL_LIBRARY, &module),
            FEMRT_OK)
      << femrt_last_error();
  ASSERT_EQ(femrt_module_get_kernel(module, "fem_layer_natural", &kernel),
            FEMRT_OK)
      << femrt_last_error();
  femc::Rng rng(99);
  std::vector<float> x(B * T * D), mask(B * T, 1.0f), beta(E);
  rng.fillUniform(x, -1, 1);
  rng.fillUniform(beta, -1, 2);
  int64_t outs[6] = {EK, EK, E, E, E, D}, ins[6] = {D, D, D, D, D, E};
  std::vector<float> w[6], b[6];
  std::vector<int64_t> sx = {B, T, D}, sm = {B, T}, sw[6], sb[6], sbeta = {E};
  for (int i = 0; i < 6; ++i) {
    w[i].resize(outs[i] * ins[i]);
    rng.fillUniform(w[i], -0.1, 0.1);
    b[i].resize(outs[i]);
    rng.fillUniform(b[i], -0.2, 0.2);
    sw[i] = {outs[i], ins[i]};
    sb[i] = {outs[i]};
  }
  auto launch = [&](int maxThreads, std::vector<float> &out) {
    out.assign(B * T * D, std::nanf(""));
    std::vector<DLTensor> t = {tensor(x.data(), sx), tensor(mask.data(), sm)};
    for (int i = 0; i < 6; ++i) {
      t.push_back(tensor(w[i].data(), sw[i]));
      t.push_back(tensor(b[i].data(), sb[i]));
    }
    t.push_back(tensor(beta.data(), sbeta));
    t.push_back(tensor(out.data(), sx));
    femrt_launch_options o;
    femrt_launch_options_init(&o);
    o.max_threads = maxThreads;
    return femc::test::launch(kernel, t, &o);
  };
  std::vector<float> serial, pooled;
  ASSERT_EQ(launch(1, serial), FEMRT_OK) << femrt_last_error();
  ASSERT_EQ(launch(0, pooled), FEMRT_OK) << femrt_last_error();
  for (size_t i = 0; i < serial.size(); ++i) {
    ASSERT_TRUE(std::isfinite(serial[i])) << "element " << i;
    ASSERT_EQ(serial[i], pooled[i]) << "element " << i;
  }
  femrt_module_destroy(module);
  femrt_context_destroy(ctx);
}

} // namespace

namespace {

/// Inputs/many_extents.mlir through libfemrt: 25 arguments naming 97 extents
/// (a0..a8 and b0..b8 share e0..e71). The glue binds every one of them (it
/// once kept 64 and wrote past them).
class ManyExtents : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK)
        << femrt_last_error();
    ASSERT_EQ(femrt_module_load_library(ctx, FEMC_MANY_EXTENTS_LIBRARY,
                                        &module),
              FEMRT_OK)
        << femrt_last_error();
    ASSERT_EQ(femrt_module_get_kernel(module, "many", &kernel), FEMRT_OK)
        << femrt_last_error();
    // q, k, v, lam, gate, out: (1, 8, 1, 8); beta_raw: (8); a0..b8: rank 8.
    for (int i = 0; i < 25; ++i) {
      if (i == 3)
        shapes[i] = {8};
      else if (i >= 6 && i < 24)
        shapes[i] = std::vector<int64_t>(8, 1);
      else
        shapes[i] = {1, 8, 1, 8};
      buffers[i].assign(64, 0.25f);
    }
  }
  void TearDown() override {
    femrt_module_destroy(module);
    femrt_context_destroy(ctx);
  }
  femrt_status launch() {
    std::vector<DLTensor> t;
    for (int i = 0; i < 25; ++i)
      t.push_back(tensor(buffers[i].data(), shapes[i]));
    return femc::test::launch(kernel, t);
  }

  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  std::vector<int64_t> shapes[25];
  std::vector<float> buffers[25];
};

TEST_F(ManyExtents, TablesNameEveryExtent) {
  const femrt_arg_info *info = nullptr;
  ASSERT_EQ(femrt_kernel_get_arg_info(kernel, 23, &info), FEMRT_OK);
  EXPECT_STREQ(info->name, "b8");
  EXPECT_STREQ(info->dim_names, "e64,e65,e66,e67,e68,e69,e70,e71");
}

TEST_F(ManyExtents, LaunchesAndBinds) {
  ASSERT_EQ(launch(), FEMRT_OK) << femrt_last_error();
  for (int j = 0; j < 64; ++j)
    EXPECT_TRUE(std::isfinite(buffers[24][j])) << j;
  // e71 = 2 in both a8 and b8: consistent.
  shapes[14][7] = shapes[23][7] = 2;
  EXPECT_EQ(launch(), FEMRT_OK) << femrt_last_error();
}

TEST_F(ManyExtents, MismatchBeyond64NamesTheExtent) {
  shapes[23][5] = 2; // b8's e69
  ASSERT_EQ(launch(), FEMRT_ERROR_SHAPE_MISMATCH);
  EXPECT_NE(std::string(femrt_last_error())
                .find("argument 'b8' (#23) dimension 5 (e69) is 2 but "
                      "argument 'a8' has e69 = 1"),
            std::string::npos)
      << femrt_last_error();
}

} // namespace
