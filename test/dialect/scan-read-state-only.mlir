// RUN: fem-opt %s -split-input-file -verify-diagnostics | FileCheck %s

// `state_only` (phase 1 of the scans' chunk-level parallel prefix,
// docs/architecture.md "Both cores at B = H = 1") writes records one slot
// wider than the state: Ks + 1 = 29 for linear with dk = 8.

// CHECK-LABEL: func @accepted
// CHECK: fem.scan_read linear {{.*}} state_out(%{{.*}} : memref<?x?x?x29xf32>) {{.*}}state_only
func.func @accepted(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %s: memref<?x?x?x29xf32>, %x: index) {
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) state_out(%s : memref<?x?x?x29xf32>) at(%x, %x, %x) {causal, state_only, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @no_state_out(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{'state_only' needs a rank-4 'state_out'}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {state_only, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @state_width(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %s: memref<?x?x?x28xf32>, %x: index) {
  // expected-error @+1 {{'state_only' needs 'state_out' dimension 3 of 29 (Ks + 1), found 28}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) state_out(%s : memref<?x?x?x28xf32>) at(%x, %x, %x) {state_only, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
