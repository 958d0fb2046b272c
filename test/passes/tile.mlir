// RUN: fem-opt %s -split-input-file -verify-diagnostics -fem-expand-mixer -fem-fuse-reads -fem-tile="target=avx2" | FileCheck %s --enable-var-scope

// A kernel-level function becomes its workgroup function on buffers.
// CHECK-LABEL: func.func @kernel_wg
//  CHECK-SAME:   (%[[Q:.*]]: memref<?x?x4x16xf32>, %{{.*}}: memref<?x?x4x16xf32>, %{{.*}}: memref<?x?x4x16xf32>, %{{.*}}: memref<64xf32>, %{{.*}}: memref<?x?x4x16xf32>, %{{.*}}: memref<?x?x4x16xf32>, %[[MASK:.*]]: memref<?x?xi8>, %[[OUT:.*]]: memref<?x?x4x16xf32>, %[[X:.*]]: index, %[[Y:.*]]: index, %[[Z:.*]]: index)
//  CHECK-SAME:   attributes {fem.arg_names = ["q", "k", "v", "beta_raw", "lam", "gate", "mask", "out"], fem.grid = {{\[\["T", 192\], \["Hkv", 1\], \["B", 1\]\]}}, fem.kernel = "kernel", llvm.emit_c_interface}
//       CHECK:   fem.tile_read softmax q(%[[Q]] : {{.*}}) {{.*}} mask(%[[MASK]] : memref<?x?xi8>) out(%[[OUT]] : {{.*}}) at(%[[X]], %[[Y]], %[[Z]]) {causal, tiles = #fem.tiles<q = 192, k = 64, vec = 8>}
//   CHECK-NOT:   func.func @kernel(
func.func @kernel(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x4x16xf32>, %v: tensor<?x?x4x16xf32>,
    %b: tensor<64xf32>, %l: tensor<?x?x4x16xf32>, %g: tensor<?x?x4x16xf32>, %m: tensor<?x?xi1>)
    -> tensor<?x?x4x16xf32> {
  %0 = fem.mixer softmax q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x4x16xf32>)
      v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) mask(%m : tensor<?x?xi1>) {causal} -> tensor<?x?x4x16xf32>
  return %0 : tensor<?x?x4x16xf32>
}

// -----

// The #fem.tiles of the model are used when no option overrides them.
// CHECK-LABEL: func.func @model_tiles_wg
//       CHECK:   tiles = #fem.tiles<q = 16, k = 32, vec = 8>
func.func @model_tiles(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  %0 = fem.mixer softmax q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {tiles = #fem.tiles<q = 16, k = 32, vec = 8>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

// -----

// Scan priors get a fem.scan_read whose grid is (value-channel blocks,
// query heads, batch): here ceil(dv / 8) blocks of 8 channels.
// CHECK-LABEL: func.func @linear_scan_wg
//  CHECK-SAME:   fem.grid = {{\[\["dv", 8\], \["H", 1\], \["B", 1\]\]}}
//       CHECK:   fem.scan_read linear q(
//  CHECK-SAME:     {causal, tiles = #fem.tiles<q = 16, k = 8, vec = 8>}
func.func @linear_scan(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  %0 = fem.mixer linear q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {causal, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

// -----

// gla is always causal: its scan read carries no flag, and takes the decay.
// CHECK-LABEL: func.func @gla_scan_wg
//       CHECK:   fem.scan_read gla {{.*}} decay(%{{.*}} : memref<1x8x1xf32>)
//   CHECK-NOT:     causal
func.func @gla_scan(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>, %d: tensor<1x8x1xf32>) -> tensor<1x8x1x8xf32> {
  %0 = fem.mixer gla q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) decay(%d : tensor<1x8x1xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

// -----

func.func @negative_scan_chunk(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  // expected-error @+1 {{fem-tile: chunk (tile-q) of prior 'aft' must be a positive multiple of vec = 8 up to 512, found 12}}
  %0 = fem.mixer aft q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {tiles = #fem.tiles<q = 12, k = 8, vec = 8>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

// -----

func.func @negative_not_kernel_level(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  // expected-error @+1 {{fem-tile: function @negative_not_kernel_level is not a kernel-level function: found 'arith.addf'}}
  %x = arith.addf %q, %q : tensor<1x8x1x8xf32>
  %0 = fem.mixer softmax q(%x : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

// -----

// 16-bit storage tiles like f32: the buffers keep their element type (the
// CPU lowering converts at each load and store).
// CHECK-LABEL: func.func @half_storage_wg
//  CHECK-SAME:   (%{{.*}}: memref<1x8x1x8xf16>, {{.*}}: memref<8xf16>,
//       CHECK:   fem.tile_read softmax {{.*}}out(%{{.*}} : memref<1x8x1x8xf16>)
// CHECK-LABEL: func.func @bf16_storage_wg
//       CHECK:   fem.scan_read linear {{.*}}out(%{{.*}} : memref<1x8x1x8xbf16>)
func.func @half_storage(%q: tensor<1x8x1x8xf16>, %b: tensor<8xf16>) -> tensor<1x8x1x8xf16> {
  %0 = fem.mixer softmax q(%q : tensor<1x8x1x8xf16>) k(%q : tensor<1x8x1x8xf16>)
      v(%q : tensor<1x8x1x8xf16>) beta_raw(%b : tensor<8xf16>) lam(%q : tensor<1x8x1x8xf16>)
      gate(%q : tensor<1x8x1x8xf16>) -> tensor<1x8x1x8xf16>
  return %0 : tensor<1x8x1x8xf16>
}
func.func @bf16_storage(%q: tensor<1x8x1x8xbf16>, %b: tensor<8xbf16>) -> tensor<1x8x1x8xbf16> {
  %0 = fem.mixer linear q(%q : tensor<1x8x1x8xbf16>) k(%q : tensor<1x8x1x8xbf16>)
      v(%q : tensor<1x8x1x8xbf16>) beta_raw(%b : tensor<8xbf16>) lam(%q : tensor<1x8x1x8xbf16>)
      gate(%q : tensor<1x8x1x8xbf16>) {causal} -> tensor<1x8x1x8xbf16>
  return %0 : tensor<1x8x1x8xbf16>
}

// -----

func.func @negative_bad_tiles(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  // expected-error @+1 {{fem-tile: query tile (tile-q) must be a positive multiple of 2 * vec = 16 up to 1024, found 20}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {tiles = #fem.tiles<q = 20, k = 32, vec = 8>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

// -----

func.func @negative_bad_key_tile(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  // expected-error @+1 {{fem-tile: key tile (tile-k) must be a positive multiple of 2 * vec = 16 up to 1024, found 24}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {tiles = #fem.tiles<q = 32, k = 24, vec = 8>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

// -----

// Reads that were not fused cannot be compiled.
func.func @negative_unfused(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {causal}
      -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{fem-tile: 'fem.expect' was not fused into a fem.fused_read}}
  %mu = fem.expect %p, %v : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf32>
  return %mu : tensor<1x8x4x16xf32>
}

// -----

func.func @negative_scan_channel_block(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>, %d: tensor<1x8x1xf32>) -> tensor<1x8x1x8xf32> {
  // expected-error @+1 {{fem-tile: channel block (tile-k) of prior 'gla' must be a positive multiple of vec = 8 up to 1024, found 4}}
  %0 = fem.mixer gla q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) decay(%d : tensor<1x8x1xf32>) {tiles = #fem.tiles<q = 16, k = 4>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}
