// RUN: fem-opt %s -split-input-file -verify-diagnostics | FileCheck %s

// `keys(%b, %e)`: the key range of a split non-causal linear read (phase 1
// sums keys [b, e) with its tilt centred on all keys, phase 3 reads the rows
// from the total with an empty range; docs/architecture.md "Both cores at
// B = H = 1"). Causal reads and the other priors refuse it.

// CHECK-LABEL: func @accepted
// CHECK: fem.scan_read linear {{.*}} state_out(%{{.*}} : memref<?x?x?x29xf32>) keys(%{{.*}}, %{{.*}}) at
func.func @accepted(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %s: memref<?x?x?x28xf32>, %l: memref<?x?x?x29xf32>, %x: index) {
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) state(%s : memref<?x?x?x28xf32>) out(%q : memref<?x?x2x8xf32>) state_out(%l : memref<?x?x?x29xf32>) keys(%x, %x) at(%x, %x, %x) {state_only, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @causal(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{'keys' (a key range of a split read) is for non-causal linear reads only}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) keys(%x, %x) at(%x, %x, %x) {causal, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @gla(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %d: memref<?x?x2xf32>, %x: index) {
  // expected-error @+1 {{'keys' (a key range of a split read) is for non-causal linear reads only}}
  fem.scan_read gla q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) decay(%d : memref<?x?x2xf32>) out(%q : memref<?x?x2x8xf32>) keys(%x, %x) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
