//===- ScanSplitGlue.cpp - C glue of the scans' parallel prefix
//------------===//
//
// See ScanSplitGlue.h. Phase 2 is written here from the state layout
// (dialect/Priors.h, StateSlot; docs/semantics.md "Segments"): every record
// [M, L, seen, prior part] of a segment, made from the empty state, and the
// sum of the records before it are first moved to the running shift over
// the user's state and the segments up to this one (the X sums times
// e^(M_seg - M), aft's kmax-relative sums times e^(kmax_seg - kmax) with the
// whole run's kmax; every prior keeps its X sums in the record's offset
// form, recordNarrow, so there e^D x + k n with the X slot's normaliser n
// and k = expm1(D) where both records are narrow: X - 1 is never formed
// from X), then folded in order:
//   linear       sums add
//   gla          earlier sums times e^(C_end - C_start), then add; exact
//                with the -60 clamp because phase 1 starts every segment
//                from its true C (phase 0 below)
//   aft          sums and key counts add (kmax, and kmax_X for the X
//                half's own d_X and n_X)
//   ssm          earlier x times e^(A[e, n] * sum of delta), then add
// A non-causal read (linear) splits its keys in phase 1 and its rows in
// phase 3: every segment centres its tilt on all keys' values (the `keys`
// range of fem.scan_read), so the segments' plain sums add, in double, and
// every segment's rows read the total (no records, no shifts to move).
// gla's phase 0 (before phase 1) walks the decays of each (batch, head),
// a = -(relu(decay) + eps), G = sum of a, and gives each segment's phase-1
// state C = clamp(G, -60, 50) at its start, so that its local sums use the
// run's own clamped decays (the clamp makes them depend on the start).
// Each segment's initial record carries the running M, L and seen over the
// user's state and the segments before it (and the whole run's kmax for
// aft), the range the one-shot run has seen at the segment's first row: the
// causal reads shift their rows by the keys seen so far (ChunkShift,
// passes/cpu/ScanRead.h), so a segment must not start from the whole run's
// range (its rows before a later outlier would read X of one sign).
//
//===----------------------------------------------------------------------===//
#include "driver/ScanSplitGlue.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cassert>
#include <cstdio>

namespace femc::driver {

namespace priors = femc::priors;

void emitSplitCommon(llvm::raw_ostream &os) {
  os << "#define FEMC_MAX_SEGS " << kMaxSplitSegments << "\n"
     << "#define FEMC_SPLIT_MIN_T " << kDefaultSplitMinT << "\n";
  os << R"C(/* A non-causal read's split (plain sums) uses none of the shift helpers. */
#define FEMC_MAYBE_UNUSED __attribute__((unused))
/* e^x in double without libm (the glue links no math library). */
FEMC_MAYBE_UNUSED static double femc_exp(double x);
/* e^x - 1 in double to a few ulp relative; the glue needs it on
 * [-ln 2, 0], where the series converges fast. */
FEMC_MAYBE_UNUSED static double femc_expm1(double x) {
  double term = x, sum = x;
  int i;
  if (!(x > -0.7 && x < 0.7)) return femc_exp(x) - 1.0;
  for (i = 2; i < 24; ++i) { term *= x / i; sum += term; }
  return sum;
}
FEMC_MAYBE_UNUSED static double femc_exp(double x) {
  double r, term = 1.0, sum = 1.0, p = 1.0, b;
  long long n, m;
  int i;
  if (x != x) return x;
  if (x < -745.0) return 0.0;
  if (x > 709.0) return __builtin_inf();
  n = (long long)(x * 1.4426950408889634 + (x >= 0 ? 0.5 : -0.5));
  r = x - (double)n * 0.6931471805599453;
  for (i = 1; i < 20; ++i) { term *= r / i; sum += term; }
  b = n > 0 ? 2.0 : 0.5;
  for (m = n > 0 ? n : -n; m; m >>= 1) { if (m & 1) p *= b; b *= b; }
  return sum * p;
}
FEMC_MAYBE_UNUSED static float femc_maxn(float a, float b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
FEMC_MAYBE_UNUSED static float femc_min(float a, float b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }

/* m narrowed to rows tr = [t0, t1) on its T axes (a causal read's keys
 * too; a non-causal read's keys on S stay whole). */
static void femc_view(femrt_memref *v, const femrt_memref *m, int rank,
                      const int *syms, int bytes, const int64_t *tr) {
  int d;
  *v = *m;
  for (d = 0; d < rank; ++d) {
    if (syms[d] != 1) continue;
    v->aligned = (char *)v->aligned + tr[0] * m->dims[rank + d] * bytes;
    v->dims[d] = tr[1] - tr[0];
  }
}

/* (B, H, dv, w) float records at data, compact. */
static void femc_records(femrt_memref *v, float *data, const int64_t *bhd,
                         int64_t w) {
  memset(v, 0, sizeof *v);
  v->allocated = v->aligned = data;
  v->dims[0] = bhd[0]; v->dims[1] = bhd[1]; v->dims[2] = bhd[2]; v->dims[3] = w;
  v->dims[7] = 1; v->dims[6] = w; v->dims[5] = w * bhd[2];
  v->dims[4] = w * bhd[2] * bhd[1];
}

/* One split launch. Segment s owns rows [tb[s], tb[s+1]) and (a non-causal
 * read's phase 1) keys [sb[s], sb[s+1]); records are seg-major:
 * local + (s * recs + r) * (Ks+1), init + (s * recs + r) * Ks. */
struct femc_split_plan {
  void *const *args;
  int64_t gx, gy, g, segs, recs, bhd[3];
  int64_t tb[FEMC_MAX_SEGS + 1], sb[FEMC_MAX_SEGS + 1];
  /* start: phase 1's initial records (zeros; gla: C), local: its results
   * (Ks + 1 floats), init: phase 3's initial records, fin: phase 3's final
   * records of all but the last segment */
  float *start, *local, *init, *fin;
};

/* [0, n) cut at multiples of chunk into segs parts. */
static void femc_bounds(int64_t *b, int64_t n, int64_t chunk, int64_t segs) {
  int64_t chunks = (n + chunk - 1) / chunk, i;
  for (i = 0; i < segs; ++i) {
    int64_t t = i * chunks / segs * chunk;
    b[i] = t < n ? t : n;
  }
  b[segs] = n;
}

/* How many segments: FEMC_SCAN_SEGMENTS forces a count (below 2: never
 * split); otherwise split when the grid (g workgroups) leaves threads idle
 * and T >= FEMC_SCAN_SPLIT_MIN_T (default FEMC_SPLIT_MIN_T), into
 * ceil(threads / g) segments. At most FEMC_MAX_SEGS and one chunk of rows
 * and of keys each; 0: do not split. */
static int64_t femc_split_count(int64_t T, int64_t S, int64_t chunk, int64_t g,
                                int64_t threads) {
  const char *force = getenv("FEMC_SCAN_SEGMENTS");
  int64_t want, ct = (T + chunk - 1) / chunk, cs = (S + chunk - 1) / chunk;
  if (force && *force) {
    want = strtoll(force, 0, 10);
  } else {
    const char *m = getenv("FEMC_SCAN_SPLIT_MIN_T");
    int64_t minT = m && *m ? strtoll(m, 0, 10) : FEMC_SPLIT_MIN_T;
    if (g >= threads || T < minT) return 0;
    want = (threads + g - 1) / g;
  }
  if (want > FEMC_MAX_SEGS) want = FEMC_MAX_SEGS;
  if (want > ct) want = ct;
  if (want > cs) want = cs;
  return want >= 2 ? want : 0;
}

/* body(ctx, i) for i in [0, n) on the lent pool. */
static void femc_split_for(const femrt_host *h, int64_t n,
                           void (*body)(void *, int64_t), void *ctx) {
  int64_t i;
  if (h && h->parallel_for && n > 1) {
    h->parallel_for(h->pool, n, body, ctx);
    return;
  }
  for (i = 0; i < n; ++i) body(ctx, i);
}

)C";
}

namespace {

/// Slot ranges [begin, end) of a record.
using Ranges = std::vector<std::pair<int64_t, int64_t>>;

/// What phase 2 needs to know about one prior's record (Priors.h order).
struct RecordRule {
  /// Sums of the X stream (relative to M), in the record's offset form
  /// (recordNarrow), each range with its normaliser this many slots
  /// further on.
  std::vector<std::pair<Ranges, int64_t>> x;
  /// aft: each kmax slot with the sums relative to it (d, n_mu to kmax;
  /// d_X, n_X to kmax_X, the X half's own where dk does not divide dv).
  std::vector<std::pair<int64_t, Ranges>> kmaxes;
  int64_t c = -1;    ///< gla: the clamped log decay C
  int64_t n = 0;     ///< ssm: N (x_mu, x_X, x_1, N each)
};

RecordRule recordRule(const SplitGlueKernel &k) {
  const int64_t base = priors::kStatePriorPart;
  RecordRule rule;
  switch (k.prior->algorithm) {
  case priors::ReadAlgorithm::ChunkedLinear: {
    // C, S_mu (dk), S_X (dk), z (dk).
    int64_t dk = (k.ks - base - 1) / 3;
    rule.x = {{{{base + 1 + dk, base + 1 + 2 * dk}}, dk}};
    if (k.prior->name == "gla")
      rule.c = base;
    break;
  }
  case priors::ReadAlgorithm::AftScan:
    // n_mu, n_X, u_mu, u_X, d, kmax, count, d_X, kmax_X: n_X with its
    // normaliser d_X (relative to kmax_X, a copy of d where dk | dv), u_X
    // with the key count.
    rule.x = {{{{base + 1, base + 2}}, 6}, {{{base + 3, base + 4}}, 3}};
    rule.kmaxes = {{base + 5, {{base, base + 1}, {base + 4, base + 5}}},
                   {base + 8, {{base + 1, base + 2}, {base + 7, base + 8}}}};
    break;
  case priors::ReadAlgorithm::SsmScan:
    rule.n = (k.ks - base) / 3;
    rule.x = {{{{base + rule.n, base + 2 * rule.n}}, rule.n}};
    break;
  case priors::ReadAlgorithm::OnlineSoftmax:
    assert(false && "softmax has no state");
  }
  return rule;
}

int argIndex(const SplitGlueKernel &k, llvm::StringRef name) {
  for (auto [i, a] : llvm::enumerate(k.args))
    if (a.name == name)
      return static_cast<int>(i);
  return -1;
}

void emitRanges(llvm::raw_ostream &os, const Ranges &ranges,
                llvm::StringRef body) {
  for (auto [b, e] : ranges)
    os << "  for (s = " << b << "; s < " << e << "; ++s) " << body << "\n";
}

/// <id>_norm(dst, src, gm, gl, gk): src (or the empty record) moved to the
/// shift gm and range low gl (and aft's kmaxes gk[]); <id>_add(acc, b, extra,
/// r, p): acc, then segment record b (whose total log decay is `extra`), in
/// acc.
void emitRecordFunctions(llvm::raw_ostream &os, const SplitGlueKernel &k,
                         const RecordRule &rule) {
  const std::string &id = k.id;
  int64_t ks = k.ks;
  os << "static void " << id
     << "_norm(float *dst, const float *src, float gm, float gl, "
        "const float *gk) {\n"
     << "  int64_t s;\n  (void)gk; (void)gl;\n"
     << "  for (s = 0; s < " << ks << "; ++s) dst[s] = src ? src[s] : 0.0f;\n"
     << "  if (src && src[" << priors::kStateSeen << "] > 0.5f) {\n"
     << "    float f = (float)femc_exp((double)src[" << priors::kStateShift
     << "] - (double)gm);\n";
  // The offset forms (dialect/Priors.h, recordNarrow) of the record and of
  // the run (every segment reads with the run's M and L), as the kernel
  // decides them (float32). aft's kmax factors below scale an X sum and
  // its normaliser alike, so they may come after.
  char narrow[32];
  std::snprintf(narrow, sizeof narrow, "%.9gf", priors::kNarrowRange);
  os << "    double d = (double)src[" << priors::kStateShift
     << "] - (double)gm, k;\n"
     << "    int os = src[" << priors::kStateShift << "] - src["
     << priors::kStateLow << "] <= " << narrow << ", o = gm - gl <= " << narrow
     << ";\n"
     << "    k = os ? (o ? femc_expm1(d) : femc_exp(d)) : (o ? -1.0 : 0.0);\n";
  for (const auto &[ranges, norm] : rule.x)
    emitRanges(os, ranges,
               "dst[s] = k == 0.0 ? (float)(f * (double)src[s]) : "
               "(float)((double)f * src[s] + k * src[s + " +
                   std::to_string(norm) + "]);");
  for (auto [i, group] : llvm::enumerate(rule.kmaxes)) {
    os << "    f = (float)femc_exp((double)src[" << group.first
       << "] - (double)gk[" << i << "]);\n";
    emitRanges(os, group.second, "dst[s] *= f;");
  }
  os << "  }\n";
  for (auto [i, group] : llvm::enumerate(rule.kmaxes))
    os << "  dst[" << group.first << "] = gk[" << i << "];\n";
  os << "}\n";

  os << "static void " << id
     << "_add(float *acc, const float *b, float extra, int64_t r, "
        "const struct femc_split_plan *p) {\n"
     << "  int64_t s;\n  (void)extra; (void)r; (void)p;\n";
  int64_t first = priors::kStatePriorPart;
  if (rule.c >= 0) {
    // gla: acc's sums are relative to its last row (C = c0), b's to its
    // own last row (C = b[c]; phase 1 started b from c0).
    os << "  float f = (float)femc_exp((double)b[" << rule.c
       << "] - (double)acc[" << rule.c << "]);\n"
       << "  for (s = " << rule.c + 1 << "; s < " << ks
       << "; ++s) acc[s] = acc[s] * f + b[s];\n"
       << "  acc[" << rule.c << "] = b[" << rule.c << "];\n}\n";
    return;
  }
  if (rule.n > 0) {
    int a = argIndex(k, "A");
    assert(a >= 0 && "ssm without A");
    os << "  const float *A = (const float *)((const femrt_memref *)p->args["
       << a << "])->aligned;\n"
       << "  int64_t e = r % (p->bhd[1] * p->bhd[2]), n;\n"
       << "  for (n = 0; n < " << rule.n << "; ++n) {\n"
       << "    float f = (float)femc_exp((double)A[e * " << rule.n
       << " + n] * (double)extra);\n"
       << "    for (s = " << first << " + n; s < " << ks << "; s += "
       << rule.n << ") acc[s] = acc[s] * f + b[s];\n  }\n}\n";
    return;
  }
  os << "  for (s = " << first << "; s < " << ks << "; ++s)";
  for (auto [i, group] : llvm::enumerate(rule.kmaxes))
    os << (i ? " &&" : " if (") << " s != " << group.first
       << (i + 1 == rule.kmaxes.size() ? ")" : "");
  os << " acc[s] += b[s];\n}\n";
}

/// <id>_prefix(ctx, r) of a causal read: record r's initial state of every
/// segment, from the user's state and the segments' records before it,
/// folded by the prior's rule (<id>_add) at the running shift and range
/// (<id>_norm moves the sum so far and the next record there).
void emitCausalPrefix(llvm::raw_ostream &os, const SplitGlueKernel &k,
                      const RecordRule &rule, int state) {
  const std::string &id = k.id;
  int64_t ks = k.ks;
  emitRecordFunctions(os, k, rule);
  os << "static void " << id << "_prefix(void *ctx, int64_t r) {\n"
     << "  const struct femc_split_plan *p = (const struct femc_split_plan "
        "*)ctx;\n"
     << "  const float *user = "
     << (state >= 0 ? "(const float *)((const femrt_memref *)p->args[" +
                          std::to_string(state) + "])->aligned + r * " +
                          std::to_string(ks)
                    : std::string("0"))
     << ";\n"
     << "  float gm = 0.0f, gl = 0.0f, gk["
     << std::max<size_t>(rule.kmaxes.size(), 1) << "] = {0.0f}, acc[" << ks
     << "], b[" << ks << "], m[" << ks << "];\n"
     << "  int seen = 0, any = 0;\n  int64_t i, s;\n"
     << "  /* aft's kmaxes: the whole run's (the reference's, over every key). "
        "*/\n"
     << "  for (i = -1; i < p->segs; ++i) {\n"
     << "    const float *x = i < 0 ? user : p->local + (i * p->recs + r) * "
     << ks + 1 << ";\n"
     << "    if (!x || !(x[" << priors::kStateSeen << "] > 0.5f)) continue;\n";
  for (auto [i, group] : llvm::enumerate(rule.kmaxes))
    os << "    gk[" << i << "] = any ? femc_maxn(gk[" << i << "], x["
       << group.first << "]) : x[" << group.first << "];\n";
  os << "    any = 1;\n  }\n"
     << "  (void)any; (void)m;\n"
     << "  /* The running shift and range low: over the carried keys and the "
        "segments before each one. */\n"
     << "  if (user && user[" << priors::kStateSeen << "] > 0.5f) {\n"
     << "    gm = user[" << priors::kStateShift << "]; gl = user["
     << priors::kStateLow << "]; seen = 1;\n  }\n";
  // A segment before any key (no carried keys, the segments before it
  // empty) gets the empty record, except for aft: its rows need the whole
  // run's kmax, which the kernel takes from a record that has seen a key,
  // so the record says seen with the segment's own range (its sums are 0:
  // any shift is theirs).
  bool kmaxes = !rule.kmaxes.empty();
  auto put = [&](llvm::StringRef seg) {
    os << "    {\n      float *d = p->init + (" << seg << " * p->recs + r) * "
       << ks << ";\n      for (s = 0; s < " << ks << "; ++s) d[s] = acc[s];\n"
       << "      d[" << priors::kStateShift << "] = gm; d[" << priors::kStateLow
       << "] = gl; d[" << priors::kStateSeen << "] = seen ? 1.0f : 0.0f;\n";
    if (kmaxes)
      os << "      if (!seen && any) {\n        const float *x = "
         << "p->local + (" << seg.str() << " * p->recs + r) * " << ks + 1
         << ";\n        d[" << priors::kStateShift << "] = x["
         << priors::kStateShift << "]; d[" << priors::kStateLow << "] = x["
         << priors::kStateLow << "]; d[" << priors::kStateSeen
         << "] = 1.0f;\n      }\n";
    os << "    }\n";
  };
  auto localAt = [&](llvm::StringRef seg) {
    return "p->local + (" + seg.str() + " * p->recs + r) * " +
           std::to_string(ks + 1);
  };
  os << "  " << id << "_norm(acc, user, gm, gl, gk);\n"
     << "  for (i = 0; i < p->segs; ++i) {\n";
  put("i");
  os << "    if (i + 1 == p->segs) break;\n"
     << "    {\n      const float *x = " << localAt("i") << ";\n"
     << "      float nm = gm, nl = gl;\n"
     << "      if (x[" << priors::kStateSeen << "] > 0.5f) {\n"
     << "        nm = seen ? femc_maxn(gm, x[" << priors::kStateShift
     << "]) : x[" << priors::kStateShift << "];\n"
     << "        nl = seen ? femc_min(gl, x[" << priors::kStateLow << "]) : x["
     << priors::kStateLow << "];\n      }\n"
     << "      /* acc (at gm, gl) and segment i's record moved to the range "
        "with segment i. */\n"
     << "      acc[" << priors::kStateShift << "] = gm; acc["
     << priors::kStateLow << "] = gl; acc[" << priors::kStateSeen
     << "] = seen ? 1.0f : 0.0f;\n"
     << "      " << id << "_norm(m, acc, nm, nl, gk);\n"
     << "      " << id << "_norm(b, x, nm, nl, gk);\n"
     << "      " << id << "_add(m, b, x[" << ks << "], r, p);\n"
     << "      for (s = 0; s < " << ks << "; ++s) acc[s] = m[s];\n"
     << "      if (x[" << priors::kStateSeen
     << "] > 0.5f) { gm = nm; gl = nl; seen = 1; }\n    }\n  }\n}\n";
}

} // namespace

void emitSplitKernel(llvm::raw_ostream &os, const SplitGlueKernel &k) {
  const std::string &id = k.id;
  int64_t ks = k.ks;
  RecordRule rule = recordRule(k);
  int out = argIndex(k, "out"), state = argIndex(k, "state"),
      stateOut = argIndex(k, "state_out"), v = argIndex(k, "v");
  assert(out >= 0 && v >= 0 && "scan kernel without out or v");
  // The phase functions' buffers: the kernel's inputs without its state,
  // then [state,] out, state_out (TileScan.cpp, addScanSplitFunctions).
  std::vector<int> inputs;
  for (auto [i, a] : llvm::enumerate(k.args))
    if (a.name != "state" && a.name != "state_out" && a.name != "out")
      inputs.push_back(static_cast<int>(i));
  // A non-causal read's phases take the key range after the grid
  // (TileScan.cpp): its keys are never narrowed, phase 1 sums its
  // segment's range of them and phase 3 none.
  bool keyRange = !k.causal;
  auto declare = [&](llvm::StringRef phase, size_t buffers) {
    os << "extern void _mlir_ciface_" << k.wgName << "_" << phase << "(";
    for (size_t i = 0; i < buffers; ++i)
      os << "void *, ";
    os << "int64_t, int64_t, int64_t" << (keyRange ? ", int64_t, int64_t" : "")
       << ");\n";
  };
  declare("local", inputs.size() + 3);
  declare("segment", inputs.size() + 3);
  auto views = [&](llvm::StringRef seg) {
    os << "  const int64_t tr[2] = {p->tb[" << seg << "], p->tb[" << seg
       << " + 1]};\n";
    for (auto [j, a] : llvm::enumerate(inputs))
      os << "  femc_view(&m[" << j << "], (const femrt_memref *)p->args[" << a
         << "], " << id << "_args[" << a << "].rank, " << id << "_syms[" << a
         << "], " << k.args[a].bytes << ", tr);\n";
  };
  auto call = [&](llvm::StringRef phase, size_t buffers) {
    os << "  _mlir_ciface_" << k.wgName << "_" << phase << "(";
    for (size_t i = 0; i < buffers; ++i)
      os << "&m[" << i << "], ";
    os << "w % p->gx, w / p->gx % p->gy, w / p->gx / p->gy";
    if (keyRange)
      os << (phase == "local" ? ", p->sb[seg], p->sb[seg + 1]" : ", 0, 0");
    os << ");\n}\n";
  };
  size_t nIn = inputs.size();
  std::string outView = "  femc_view(&m[" + std::to_string(nIn + 1) +
                        "], (const femrt_memref *)p->args[" +
                        std::to_string(out) + "], " + id + "_args[" +
                        std::to_string(out) + "].rank, " + id + "_syms[" +
                        std::to_string(out) + "], " +
                        std::to_string(k.args[out].bytes) + ", tr);\n";

  // Phase 1: (segment, workgroup) -> the segment's record from empty.
  os << "static void " << id << "_local(void *ctx, int64_t i) {\n"
     << "  const struct femc_split_plan *p = (const struct femc_split_plan "
        "*)ctx;\n"
     << "  int64_t seg = i / p->g, w = i % p->g;\n"
     << "  femrt_memref m[" << nIn + 3 << "];\n";
  views("seg");
  os << "  femc_records(&m[" << nIn << "], p->start + seg * p->recs * " << ks
     << ", p->bhd, " << ks << ");\n"
     << outView << "  femc_records(&m[" << nIn + 2
     << "], p->local + seg * p->recs * " << ks + 1 << ", p->bhd, " << ks + 1
     << ");\n";
  call("local", nIn + 3);

  // Phase 3: (segment, workgroup) -> the segment's rows.
  os << "static void " << id << "_segment(void *ctx, int64_t i) {\n"
     << "  const struct femc_split_plan *p = (const struct femc_split_plan "
        "*)ctx;\n"
     << "  int64_t seg = i / p->g, w = i % p->g;\n"
     << "  femrt_memref m[" << nIn + 3 << "];\n";
  views("seg");
  os << "  femc_records(&m[" << nIn << "], p->init + seg * p->recs * " << ks
     << ", p->bhd, " << ks << ");\n"
     << outView;
  if (stateOut >= 0)
    os << "  if (seg == p->segs - 1)\n    m[" << nIn + 2
       << "] = *(const femrt_memref *)p->args[" << stateOut << "];\n  else";
  os << "    femc_records(&m[" << nIn + 2 << "], p->fin + seg * p->recs * "
     << ks << ", p->bhd, " << ks << ");\n";
  call("segment", nIn + 3);

  // Phase 2: per record, the initial state of every segment.
  if (keyRange) {
    // Plain sums of one centred form (the common part unused): their total
    // in double, in segment order, for every segment's rows. No user state
    // (TileScan.cpp, whyNotSplit).
    os << "static void " << id << "_prefix(void *ctx, int64_t r) {\n"
       << "  const struct femc_split_plan *p = (const struct femc_split_plan "
          "*)ctx;\n"
       << "  int64_t i, s;\n"
       << "  for (s = 0; s < " << ks << "; ++s) {\n"
       << "    double t = 0.0;\n"
       << "    for (i = 0; i < p->segs; ++i) t += p->local[(i * p->recs + r) * "
       << ks + 1 << " + s];\n"
       << "    for (i = 0; i < p->segs; ++i) p->init[(i * p->recs + r) * " << ks
       << " + s] = (float)t;\n  }\n}\n";
  } else {
    emitCausalPrefix(os, k, rule, state);
  }
  // The driver of the three phases (femrt_kernel_info::split).
  const SplitGlueKernel::Arg &outArg = k.args[out];
  auto axisOf = [&](const SplitGlueKernel::Arg &a, int symbol) {
    for (auto [d, s] : llvm::enumerate(a.symbols))
      if (s == symbol)
        return static_cast<int>(d);
    return -1;
  };
  int tAxis = axisOf(outArg, 1), bAxis = axisOf(outArg, 0),
      hAxis = axisOf(outArg, 3), dvAxis = axisOf(outArg, 6);
  int sAxis = axisOf(k.args[v], k.causal ? 1 : 2); // causal: keys on T
  assert(tAxis >= 0 && bAxis >= 0 && hAxis >= 0 && dvAxis >= 0 && sAxis >= 0);
  // gla's phase 0: C at each segment's start, per (batch, head).
  int decay = argIndex(k, "decay");
  if (rule.c >= 0) {
    assert(decay >= 0 && "gla without decay");
    const SplitGlueKernel::Arg &d = k.args[decay];
    int db = axisOf(d, 0), dt = axisOf(d, 1), dh = axisOf(d, 3);
    assert(db >= 0 && dt >= 0 && dh >= 0);
    os << "static void " << id << "_decay(void *ctx, int64_t bh) {\n"
       << "  const struct femc_split_plan *p = (const struct femc_split_plan "
          "*)ctx;\n"
       << "  const femrt_memref *d = (const femrt_memref *)p->args[" << decay
       << "];\n"
       << "  const float *a = (const float *)d->aligned;\n"
       << "  int64_t b = bh / p->bhd[1], h = bh % p->bhd[1], seg, t, c;\n"
       << "  const float *user = "
       << (state >= 0 ? "(const float *)((const femrt_memref *)p->args[" +
                            std::to_string(state) + "])->aligned"
                      : std::string("0"))
       << ";\n"
       << "  float g = user ? user[(bh * p->bhd[2]) * " << ks << " + "
       << rule.c << "] : 0.0f;\n"
       << "  for (seg = 0; seg < p->segs; ++seg) {\n"
       << "    /* The sums only decrease: continuing from the clamped value "
          "is the run's own C. */\n"
       << "    float cs = g < -60.0f ? -60.0f : g > 50.0f ? 50.0f : g;\n"
       << "    for (c = 0; c < p->bhd[2]; ++c)\n"
       << "      p->start[((seg * p->recs) + bh * p->bhd[2] + c) * " << ks
       << " + " << rule.c << "] = cs;\n"
       << "    for (t = p->tb[seg]; t < p->tb[seg + 1]; ++t) {\n"
       << "      float x = a[b * d->dims[3 + " << db << "] + t * d->dims[3 + "
       << dt << "] + h * d->dims[3 + " << dh << "]];\n"
       << "      g += -((x > 0.0f ? x : 0.0f) + (float)" << k.epsLiteral << ");\n"
       << "    }\n  }\n}\n";
  }
  os << "static int " << id
     << "_split(void *const *args, const int64_t grid[3], const femrt_host "
        "*host) {\n"
     << "  const femrt_memref *out = (const femrt_memref *)args[" << out
     << "];\n"
     << "  int64_t threads = host && host->struct_size >= "
        "offsetof(femrt_host, threads) + sizeof(int64_t) ? host->threads : "
        "1;\n"
     << "  int64_t T = out->dims[" << tAxis
     << "], S = ((const femrt_memref *)args[" << v << "])->dims[" << sAxis
     << "], segs;\n"
     << "  struct femc_split_plan p;\n"
     << "  memset(&p, 0, sizeof p);\n"
     << "  p.gx = grid[0]; p.gy = grid[1]; p.g = grid[0] * grid[1] * grid[2];\n"
     << "  segs = femc_split_count(T, S, " << k.chunk << ", p.g, threads);\n"
     << "  if (!segs) return 0;\n"
     << "  p.args = args; p.segs = segs;\n"
     << "  p.bhd[0] = out->dims[" << bAxis << "]; p.bhd[1] = out->dims["
     << hAxis << "]; p.bhd[2] = out->dims[" << dvAxis << "];\n"
     << "  p.recs = p.bhd[0] * p.bhd[1] * p.bhd[2];\n"
     << "  femc_bounds(p.tb, T, " << k.chunk << ", segs);\n"
     << "  femc_bounds(p.sb, S, " << k.chunk << ", segs);\n"
     << "  p.start = (float *)calloc((size_t)(segs * p.recs * " << ks
     << " + 1), sizeof(float));\n"
     << "  p.local = (float *)calloc((size_t)(segs * p.recs * " << ks + 1
     << " + 1), sizeof(float));\n"
     << "  p.init = (float *)calloc((size_t)(segs * p.recs * " << ks
     << " + 1), sizeof(float));\n"
     << "  p.fin = (float *)calloc((size_t)(segs * p.recs * " << ks
     << " + 1), sizeof(float));\n"
     << "  if (!p.start || !p.local || !p.init || !p.fin) {\n"
     << "    free(p.start); free(p.local); free(p.init); free(p.fin);\n"
     << "    return -1;\n  }\n";
  if (rule.c >= 0)
    os << "  femc_split_for(host, p.bhd[0] * p.bhd[1], " << id
       << "_decay, &p);\n";
  os << "  femc_split_for(host, segs * p.g, " << id << "_local, &p);\n"
     << "  femc_split_for(host, p.recs, " << id << "_prefix, &p);\n"
     << "  femc_split_for(host, segs * p.g, " << id << "_segment, &p);\n"
     << "  free(p.start); free(p.local); free(p.init); free(p.fin);\n"
     << "  return (int)segs;\n}\n\n";
}

} // namespace femc::driver
