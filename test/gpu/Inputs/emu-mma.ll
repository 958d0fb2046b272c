; The warp-level mma.sync.m16n8k16 intrinsics of the tensor-core kernels for
; femc-gpu-emu (emu-run.sh links this file into the kernel library): each
; forwards its fragments as plain scalars, and a pointer for the result, to
; the emulator's C functions, since an IR-level struct return does not follow
; the C calling convention.
declare void @femc_emu_mma_f16(i32, i32, i32, i32, i32, i32, float, float, float, float, ptr)
declare void @femc_emu_mma_bf16(i32, i32, i32, i32, i32, i32, float, float, float, float, ptr)

define { float, float, float, float } @femc_emu_mma.m16n8k16.row.col.bf16(i32 %a0, i32 %a1, i32 %a2, i32 %a3, i32 %b0, i32 %b1, float %c0, float %c1, float %c2, float %c3) {
  %d = alloca [4 x float]
  call void @femc_emu_mma_bf16(i32 %a0, i32 %a1, i32 %a2, i32 %a3, i32 %b0, i32 %b1, float %c0, float %c1, float %c2, float %c3, ptr %d)
  %r = call { float, float, float, float } @femc_emu_result(ptr %d)
  ret { float, float, float, float } %r
}

define { float, float, float, float } @femc_emu_mma.m16n8k16.row.col.f32.f32(<2 x half> %a0, <2 x half> %a1, <2 x half> %a2, <2 x half> %a3, <2 x half> %b0, <2 x half> %b1, float %c0, float %c1, float %c2, float %c3) {
  %d = alloca [4 x float]
  %i0 = bitcast <2 x half> %a0 to i32
  %i1 = bitcast <2 x half> %a1 to i32
  %i2 = bitcast <2 x half> %a2 to i32
  %i3 = bitcast <2 x half> %a3 to i32
  %j0 = bitcast <2 x half> %b0 to i32
  %j1 = bitcast <2 x half> %b1 to i32
  call void @femc_emu_mma_f16(i32 %i0, i32 %i1, i32 %i2, i32 %i3, i32 %j0, i32 %j1, float %c0, float %c1, float %c2, float %c3, ptr %d)
  %r = call { float, float, float, float } @femc_emu_result(ptr %d)
  ret { float, float, float, float } %r
}

define internal { float, float, float, float } @femc_emu_result(ptr %d) {
  %p1 = getelementptr float, ptr %d, i64 1
  %p2 = getelementptr float, ptr %d, i64 2
  %p3 = getelementptr float, ptr %d, i64 3
  %v0 = load float, ptr %d
  %v1 = load float, ptr %p1
  %v2 = load float, ptr %p2
  %v3 = load float, ptr %p3
  %r0 = insertvalue { float, float, float, float } poison, float %v0, 0
  %r1 = insertvalue { float, float, float, float } %r0, float %v1, 1
  %r2 = insertvalue { float, float, float, float } %r1, float %v2, 2
  %r3 = insertvalue { float, float, float, float } %r2, float %v3, 3
  ret { float, float, float, float } %r3
}
