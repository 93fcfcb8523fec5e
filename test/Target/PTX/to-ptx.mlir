// RUN: nsa-translate --nsa-to-ptx %S/Inputs/axpy.mlir | FileCheck %s
// RUN: nsa-translate --nsa-to-ptx --nsa-chip=sm_80 --nsa-ptx-features=+ptx78 %S/Inputs/axpy.mlir | FileCheck %s --check-prefix=SM80
// RUN: not nsa-translate --nsa-to-ptx %s -split-input-file 2>&1 | FileCheck %s --check-prefix=ERR

// The header the CUDA driver's JIT needs: PTX 8.0 for sm_90a (wgmma, TMA).
// CHECK: .version 8.0
// CHECK-NEXT: .target sm_90a
// CHECK-NEXT: .address_size 64
// One bare pointer per memref (static shapes), then the scalar.
// CHECK: .visible .entry axpy(
// CHECK-NEXT: .param .u64 .ptr .align 1 axpy_param_0,
// CHECK-NEXT: .param .u64 .ptr .align 1 axpy_param_1,
// CHECK-NEXT: .param .f32 axpy_param_2
// CHECK: ld.global
// CHECK: st.global

// SM80: .version 7.8
// SM80-NEXT: .target sm_80

// ERR: error: nsa-to-ptx expects exactly one gpu.module, found 0
module {
}

// -----

// ERR: error: nsa-to-ptx expects exactly one gpu.module, found 2
module attributes {gpu.container_module} {
  gpu.module @a {
  }
  gpu.module @b {
  }
}
