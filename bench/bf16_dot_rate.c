/* The multiply-add rate of AVX512-BF16 dot products against f32 FMAs on this
 * CPU (docs/benchmarks.md, "bf16 dot products"): independent chains of
 * vdpbf16ps (32 multiply-adds each) and of vfmadd231ps (16 each) on zmm
 * registers, then one of each per step to see whether they share ports.
 *
 *   clang -O2 bench/bf16_dot_rate.c -o /tmp/bf16_dot_rate && /tmp/bf16_dot_rate
 *
 * Exits 2 without running on a CPU without AVX512-BF16. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

#define CHAINS 12
#define KEEP(x) __asm__ volatile("" : "+v"(x))
#define DOT(i) a##i = _mm512_dpbf16_ps(a##i, x, y); KEEP(a##i);
#define FMA(i) c##i = _mm512_fmadd_ps(u, w, c##i); KEEP(c##i);
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define DECL(i) __m512 a##i = _mm512_setzero_ps(), c##i = _mm512_setzero_ps();
#define SUM(i) s += _mm512_reduce_add_ps(a##i) + _mm512_reduce_add_ps(c##i);

/* ns per step of one chain: `dots` and/or `fmas` in every chain. The
 * chains are written out so that they stay in registers. */
#define RUN(name, STEP)                                                      \
  __attribute__((target("avx512f,avx512bf16"))) static double name(          \
      long n, float *sink) {                                                 \
    ALL(DECL)                                                                \
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80);                    \
    __m512bh y = (__m512bh)_mm512_set1_epi32(0x3f803f81);                    \
    __m512 u = _mm512_set1_ps(1.0f), w = _mm512_set1_ps(1e-9f);              \
    (void)x; (void)y; (void)u; (void)w;                                      \
    double t = now();                                                        \
    for (long k = 0; k < n; ++k) {                                           \
      STEP                                                                   \
    }                                                                        \
    t = now() - t;                                                           \
    float s = 0;                                                             \
    ALL(SUM)                                                                 \
    *sink += s;                                                              \
    return t / ((double)n * CHAINS) * 1e9;                                   \
  }

RUN(runDots, ALL(DOT))
RUN(runFmas, ALL(FMA))
RUN(runBoth, ALL(DOT) ALL(FMA))

int main(void) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512bf16")) {
    fprintf(stderr, "this CPU has no avx512bf16\n");
    return 2;
  }
  long n = 50000000;
  float sink = 0;
  for (int r = 0; r < 3; ++r) {
    double dp = runDots(n, &sink), fma = runFmas(n, &sink),
           both = runBoth(n, &sink);
    printf("vdpbf16ps %.3f ns, vfmadd231ps %.3f ns, one of each %.3f ns; "
           "multiply-adds per ns: dot %.1f, fma %.1f (dot/fma %.2f)\n",
           dp, fma, both, 32 / dp, 16 / fma, (32 / dp) / (16 / fma));
  }
  return sink == 12345.0f; /* keeps the sums alive */
}
