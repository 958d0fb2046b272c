// A layer whose arguments name 72 extents e0..e71 (more than the 64 the
// glue once kept): a0..a8 and b0..b8 name the same ones. Used by
// femc-layer-extents.test (serial entry, sanitizers) and LayerTest.cpp
// (through libfemrt).
!t = tensor<1x8x1x8xf32>
!r8 = tensor<?x?x?x?x?x?x?x?xf32>
func.func @many(
    %q: !t, %k: !t, %v: !t, %beta_raw: tensor<8xf32>, %lam: !t, %gate: !t,
    %a0: !r8 {fem.name = "a0", fem.dims = "e0,e1,e2,e3,e4,e5,e6,e7"},
    %a1: !r8 {fem.name = "a1", fem.dims = "e8,e9,e10,e11,e12,e13,e14,e15"},
    %a2: !r8 {fem.name = "a2", fem.dims = "e16,e17,e18,e19,e20,e21,e22,e23"},
    %a3: !r8 {fem.name = "a3", fem.dims = "e24,e25,e26,e27,e28,e29,e30,e31"},
    %a4: !r8 {fem.name = "a4", fem.dims = "e32,e33,e34,e35,e36,e37,e38,e39"},
    %a5: !r8 {fem.name = "a5", fem.dims = "e40,e41,e42,e43,e44,e45,e46,e47"},
    %a6: !r8 {fem.name = "a6", fem.dims = "e48,e49,e50,e51,e52,e53,e54,e55"},
    %a7: !r8 {fem.name = "a7", fem.dims = "e56,e57,e58,e59,e60,e61,e62,e63"},
    %a8: !r8 {fem.name = "a8", fem.dims = "e64,e65,e66,e67,e68,e69,e70,e71"},
    %b0: !r8 {fem.name = "b0", fem.dims = "e0,e1,e2,e3,e4,e5,e6,e7"},
    %b1: !r8 {fem.name = "b1", fem.dims = "e8,e9,e10,e11,e12,e13,e14,e15"},
    %b2: !r8 {fem.name = "b2", fem.dims = "e16,e17,e18,e19,e20,e21,e22,e23"},
    %b3: !r8 {fem.name = "b3", fem.dims = "e24,e25,e26,e27,e28,e29,e30,e31"},
    %b4: !r8 {fem.name = "b4", fem.dims = "e32,e33,e34,e35,e36,e37,e38,e39"},
    %b5: !r8 {fem.name = "b5", fem.dims = "e40,e41,e42,e43,e44,e45,e46,e47"},
    %b6: !r8 {fem.name = "b6", fem.dims = "e48,e49,e50,e51,e52,e53,e54,e55"},
    %b7: !r8 {fem.name = "b7", fem.dims = "e56,e57,e58,e59,e60,e61,e62,e63"},
    %b8: !r8 {fem.name = "b8", fem.dims = "e64,e65,e66,e67,e68,e69,e70,e71"}) -> !t {
  %o = fem.mixer softmax q(%q : !t) k(%k : !t) v(%v : !t)
      beta_raw(%beta_raw : tensor<8xf32>) lam(%lam : !t) gate(%gate : !t)
      {causal} -> !t
  %r = linalg.add ins(%o, %o : !t, !t) outs(%o : !t) -> !t
  return %r : !t
}
