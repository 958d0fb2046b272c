// RUN: not fem-opt %s -split-input-file 2>&1 | FileCheck %s
// Static extents whose bytes overflow a 64-bit byte count are refused by
// the verifiers, naming the operand and its type (was: E = H * dv wrapped,
// "H * dv = 8 * 9223372036854775807 = -8", and a static T = 2^62 compiled
// into a library whose q holds 2^71 bytes). fem-run's physical-memory
// check still covers large shapes that do fit in 64 bits.

// CHECK: huge-static-extents.mlir:[[@LINE+2]]:8: error: 'fem.mixer' op operand 'q' ('tensor<?x?x8x9223372036854775807xf32>') is too large: its static extents hold more than 2^63 - 1 bytes (4 per element), which a 64-bit byte count cannot address
func.func @dv(%q: tensor<?x?x8x9223372036854775807xf32>, %b: tensor<512xf32>) -> tensor<?x?x8x9223372036854775807xf32> {
  %o = fem.mixer softmax q(%q : tensor<?x?x8x9223372036854775807xf32>) k(%q : tensor<?x?x8x9223372036854775807xf32>) v(%q : tensor<?x?x8x9223372036854775807xf32>) beta_raw(%b : tensor<512xf32>) lam(%q : tensor<?x?x8x9223372036854775807xf32>) gate(%q : tensor<?x?x8x9223372036854775807xf32>) -> tensor<?x?x8x9223372036854775807xf32>
  return %o : tensor<?x?x8x9223372036854775807xf32>
}

// -----

// CHECK: error: 'fem.mixer' op operand 'q' ('tensor<1x4611686018427387904x8x64xf32>') is too large: its static extents hold more than 2^63 - 1 bytes (4 per element)
func.func @t(%q: tensor<1x4611686018427387904x8x64xf32>, %b: tensor<512xf32>) -> tensor<1x4611686018427387904x8x64xf32> {
  %o = fem.mixer softmax q(%q : tensor<1x4611686018427387904x8x64xf32>) k(%q : tensor<1x4611686018427387904x8x64xf32>) v(%q : tensor<1x4611686018427387904x8x64xf32>) beta_raw(%b : tensor<512xf32>) lam(%q : tensor<1x4611686018427387904x8x64xf32>) gate(%q : tensor<1x4611686018427387904x8x64xf32>) -> tensor<1x4611686018427387904x8x64xf32>
  return %o : tensor<1x4611686018427387904x8x64xf32>
}

// -----

// f16: 2 bytes per element; 2^62 elements (2^63 bytes) overflow.
// CHECK: error: 'fem.mixer' op operand 'q' ('tensor<1x1073741824x1073741824x4xf16>') is too large: its static extents hold more than 2^63 - 1 bytes (2 per element)
func.func @half(%q: tensor<1x1073741824x1073741824x4xf16>, %b: tensor<4294967296xf16>) -> tensor<1x1073741824x1073741824x4xf16> {
  %o = fem.mixer softmax q(%q : tensor<1x1073741824x1073741824x4xf16>) k(%q : tensor<1x1073741824x1073741824x4xf16>) v(%q : tensor<1x1073741824x1073741824x4xf16>) beta_raw(%b : tensor<4294967296xf16>) lam(%q : tensor<1x1073741824x1073741824x4xf16>) gate(%q : tensor<1x1073741824x1073741824x4xf16>) -> tensor<1x1073741824x1073741824x4xf16>
  return %o : tensor<1x1073741824x1073741824x4xf16>
}

// -----

// The tiled form (fem.scan_read) checks the same.
// CHECK: error: 'fem.scan_read' op operand 'v' ('memref<?x?x2x4611686018427387904xf32>') is too large
func.func @scan(%q: memref<?x?x2x8xf32>, %v: memref<?x?x2x4611686018427387904xf32>, %b: memref<16xf32>, %o: memref<?x?x2x4611686018427387904xf32>, %x: index) {
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%v : memref<?x?x2x4611686018427387904xf32>) beta_raw(%b : memref<16xf32>) lam(%v : memref<?x?x2x4611686018427387904xf32>) gate(%v : memref<?x?x2x4611686018427387904xf32>) out(%o : memref<?x?x2x4611686018427387904xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

// A zero extent makes the tensor empty, whatever the others: not too large
// (the mixer is then refused for the zero heads, as zero-extents.mlir checks).
// CHECK: error: 'fem.mixer' op the number of key/value heads Hkv (operand 'k') must be at least 1, found 0
func.func @empty(%q: tensor<1x9223372036854775807x0x64xf32>, %b: tensor<0xf32>) -> tensor<1x9223372036854775807x0x64xf32> {
  %o = fem.mixer softmax q(%q : tensor<1x9223372036854775807x0x64xf32>) k(%q : tensor<1x9223372036854775807x0x64xf32>) v(%q : tensor<1x9223372036854775807x0x64xf32>) beta_raw(%b : tensor<0xf32>) lam(%q : tensor<1x9223372036854775807x0x64xf32>) gate(%q : tensor<1x9223372036854775807x0x64xf32>) -> tensor<1x9223372036854775807x0x64xf32>
  return %o : tensor<1x9223372036854775807x0x64xf32>
}
