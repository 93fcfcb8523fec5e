// RUN: nsa-translate --nsa-to-ptx %s | FileCheck %s

// The ops convert-tile-to-gpu writes kernels with, down to PTX: one global
// pointer per tensor, llvm loads and stores, nvvm special registers, a warp
// MMA, dynamic shared memory with a barrier, and scf loops over arith. The
// host function beside the gpu.module is not lowered (the host plan and the
// manifest describe it), so it does not get in the way.
// ptxas.mlir assembles the result.

// CHECK: .extern .shared .align 16 .b8 smem[];
// CHECK: .visible .entry mma(
// CHECK-NEXT: .param .u64 .ptr .global .align 1 mma_param_0,
// CHECK-NEXT: .param .u64 .ptr .global .align 1 mma_param_1,
// CHECK-NEXT: .param .u64 .ptr .global .align 1 mma_param_2
// CHECK-NEXT: )
// CHECK-NEXT: .maxntid 32, 1, 1
// CHECK: mov.u32 {{.*}}, %tid.x;
// CHECK-COUNT-4: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// CHECK: st.shared
// CHECK: bar.sync 0;
// CHECK: ld.shared
// CHECK: st.global
module attributes {gpu.container_module} {
  func.func @host(%a: tensor<4x32x4xi32>, %b: tensor<4x32x2xi32>) -> tensor<32x4xf32> {
    %c1 = arith.constant 1 : index
    %init = tensor.empty() : tensor<32x4xf32>
    %r = tile.launch @kernels::@mma grid(%c1) args(%a, %b : tensor<4x32x4xi32>, tensor<4x32x2xi32>)
        outs(%init : tensor<32x4xf32>) {label = "mma"}
    return %r : tensor<32x4xf32>
  }

  gpu.module @kernels {
    llvm.mlir.global external @smem() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>

    // Four m16n8k16 steps; thread t holds A's fragment at a[step][t] and
    // B's at b[step][t], and writes its accumulator to c[(t + 1) % 32]
    // through shared memory.
    gpu.func @mma(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>, %c: !llvm.ptr<1>) kernel
        attributes {known_block_size = array<i32: 32, 1, 1>, nsa.shared_bytes = 512 : i64} {
      %tid = nvvm.read.ptx.sreg.tid.x : i32
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %i1 = arith.constant 1 : i32
      %i2 = arith.constant 2 : i32
      %i4 = arith.constant 4 : i32
      %i32 = arith.constant 32 : i32
      %zero = arith.constant 0.0 : f32
      %acc:4 = scf.for %step = %c0 to %c4 step %c1
          iter_args(%d0 = %zero, %d1 = %zero, %d2 = %zero, %d3 = %zero) -> (f32, f32, f32, f32) {
        %s = arith.index_cast %step : index to i32
        %s32 = arith.muli %s, %i32 : i32
        %row = arith.addi %s32, %tid : i32
        %aoff = arith.muli %row, %i4 : i32
        %boff = arith.muli %row, %i2 : i32
        %pa = llvm.getelementptr %a[%aoff] : (!llvm.ptr<1>, i32) -> !llvm.ptr<1>, i32
        %pa1 = llvm.getelementptr %pa[1] : (!llvm.ptr<1>) -> !llvm.ptr<1>, i32
        %pa2 = llvm.getelementptr %pa[2] : (!llvm.ptr<1>) -> !llvm.ptr<1>, i32
        %pa3 = llvm.getelementptr %pa[3] : (!llvm.ptr<1>) -> !llvm.ptr<1>, i32
        %a0 = llvm.load %pa : !llvm.ptr<1> -> i32
        %a1 = llvm.load %pa1 : !llvm.ptr<1> -> i32
        %a2 = llvm.load %pa2 : !llvm.ptr<1> -> i32
        %a3 = llvm.load %pa3 : !llvm.ptr<1> -> i32
        %pb = llvm.getelementptr %b[%boff] : (!llvm.ptr<1>, i32) -> !llvm.ptr<1>, i32
        %pb1 = llvm.getelementptr %pb[1] : (!llvm.ptr<1>) -> !llvm.ptr<1>, i32
        %b0 = llvm.load %pb : !llvm.ptr<1> -> i32
        %b1 = llvm.load %pb1 : !llvm.ptr<1> -> i32
        %d = nvvm.mma.sync A[%a0, %a1, %a2, %a3] B[%b0, %b1] C[%d0, %d1, %d2, %d3]
            {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>,
             multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>,
             shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
        %e0 = llvm.extractvalue %d[0] : !llvm.struct<(f32, f32, f32, f32)>
        %e1 = llvm.extractvalue %d[1] : !llvm.struct<(f32, f32, f32, f32)>
        %e2 = llvm.extractvalue %d[2] : !llvm.struct<(f32, f32, f32, f32)>
        %e3 = llvm.extractvalue %d[3] : !llvm.struct<(f32, f32, f32, f32)>
        scf.yield %e0, %e1, %e2, %e3 : f32, f32, f32, f32
      }
      %smem = llvm.mlir.addressof @smem : !llvm.ptr<3>
      %mine = arith.muli %tid, %i4 : i32
      %next0 = arith.addi %tid, %i1 : i32
      %next = arith.remui %next0, %i32 : i32
      %theirs = arith.muli %next, %i4 : i32
      %ps = llvm.getelementptr %smem[%mine] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, f32
      %ps1 = llvm.getelementptr %ps[1] : (!llvm.ptr<3>) -> !llvm.ptr<3>, f32
      %ps2 = llvm.getelementptr %ps[2] : (!llvm.ptr<3>) -> !llvm.ptr<3>, f32
      %ps3 = llvm.getelementptr %ps[3] : (!llvm.ptr<3>) -> !llvm.ptr<3>, f32
      llvm.store %acc#0, %ps : f32, !llvm.ptr<3>
      llvm.store %acc#1, %ps1 : f32, !llvm.ptr<3>
      llvm.store %acc#2, %ps2 : f32, !llvm.ptr<3>
      llvm.store %acc#3, %ps3 : f32, !llvm.ptr<3>
      nvvm.barrier0
      %pt = llvm.getelementptr %smem[%theirs] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, f32
      %pc = llvm.getelementptr %c[%mine] : (!llvm.ptr<1>, i32) -> !llvm.ptr<1>, f32
      scf.for %j = %c0 to %c4 step %c1 {
        %jj = arith.index_cast %j : index to i32
        %src = llvm.getelementptr %pt[%jj] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, f32
        %dst = llvm.getelementptr %pc[%jj] : (!llvm.ptr<1>, i32) -> !llvm.ptr<1>, f32
        %v = llvm.load %src : !llvm.ptr<3> -> f32
        llvm.store %v, %dst : f32, !llvm.ptr<1>
      }
      gpu.return
    }
  }
}
