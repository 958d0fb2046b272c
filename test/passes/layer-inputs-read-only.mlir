// RUN: fem-opt %s --fem-layer-inputs-read-only | FileCheck %s
// RUN: fem-opt %s --fem-layer-inputs-read-only --one-shot-bufferize="bufferize-function-boundaries" | FileCheck %s --check-prefix=BUF

// A layer's tensor arguments are read-only for bufferization; other
// functions keep their arguments as they were.
// CHECK-LABEL: func.func @layer
// CHECK-SAME: %{{.*}}: tensor<4x8xf32> {bufferization.writable = false}
// CHECK-SAME: %{{.*}}: tensor<4x8xf32> {bufferization.writable = false, fem.name = "y"}
// CHECK-LABEL: func.func @not_a_layer
// CHECK-NOT: bufferization.writable

// The element-wise product's destination is %x: bufferized, it is a copy of
// %x, never %x itself.
// BUF-LABEL: func.func @layer
// BUF: %[[A:.*]] = memref.alloc
// BUF: memref.copy %arg0, %[[A]]
// BUF: linalg.generic {{.*}} outs(%[[A]]
func.func @layer(%x: tensor<4x8xf32>, %y: tensor<4x8xf32> {fem.name = "y"})
    -> tensor<4x8xf32> attributes {fem.layer = "layer"} {
  %e = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>,
                                        affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%y : tensor<4x8xf32>) outs(%x : tensor<4x8xf32>) {
  ^bb0(%a: f32, %b: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<4x8xf32>
  return %e : tensor<4x8xf32>
}

func.func @not_a_layer(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  return %x : tensor<4x8xf32>
}
