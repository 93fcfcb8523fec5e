// RUN: nsa-opt %s -split-input-file -convert-tile-to-gpu -verify-diagnostics | FileCheck %s
// RUN: nsa-opt %s -split-input-file -convert-tile-to-gpu=wgmma=1 -verify-diagnostics | FileCheck %s --check-prefix=WGMMA

// A streaming-softmax program: the program becomes a kernel of 4 warps (64
// tile rows) and a tile.launch with the tensors it reads, then its outs.
// q . k^T runs on tensor cores with k staged in shared memory (cp.async,
// ldmatrix); row maxima and
// sums combine the 4 lanes of a quad with two xor shuffles; exp2 is the
// hardware's.
// CHECK-LABEL: func.func @attention
// CHECK:         %[[R:.*]]:2 = tile.launch @attention_kernels::@attention_k0 grid(%c1, %c2)
// CHECK-SAME:      args(%arg0, %arg1 : tensor<100x32xbf16>, tensor<100x32xbf16>)
// CHECK-SAME:      outs(%{{.*}}, %{{.*}} : tensor<100x32xbf16>, tensor<100xf32>) {label = "test"}
// CHECK:         return %[[R]]#0, %[[R]]#1
// CHECK:       gpu.module @attention_kernels
// CHECK:         llvm.mlir.global external @__nsa_shared() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
// CHECK:         gpu.func @attention_k0(%{{.*}}: !llvm.ptr<1> {llvm.noalias}, %{{.*}}: !llvm.ptr<1> {llvm.noalias}, %{{.*}}: !llvm.ptr<1> {llvm.noalias}, %{{.*}}: !llvm.ptr<1> {llvm.noalias}) kernel
// CHECK-SAME:      known_block_size = array<i32: 128, 1, 1>
// CHECK-SAME:      nsa.shared_bytes = {{[0-9]+}}
// CHECK:           gpu.block_id y
// CHECK:           gpu.block_id x
// The k tile is double-buffered: the prologue copies the first step's, each
// step copies the next one's (if any) into the other buffer, then waits for
// its own.
// CHECK:           scf.for
// CHECK:             nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 16, cache = cg, %{{.*}} : !llvm.ptr<3>, !llvm.ptr<1>, i32
// CHECK:           nvvm.cp.async.commit.group
// CHECK:           scf.for
// CHECK:             gpu.barrier
// CHECK:             scf.if
// CHECK:               nvvm.cp.async.shared.global
// CHECK:             nvvm.cp.async.commit.group
// CHECK-NEXT:        nvvm.cp.async.wait.group 1
// CHECK-NEXT:        gpu.barrier
// CHECK:             nvvm.ldmatrix
// CHECK:           nvvm.mma.sync A[{{.*}}] B[{{.*}}] C[{{.*}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>}
// CHECK:           gpu.shuffle  xor %{{.*}}, %{{.*}}, %{{.*}} : f32
// CHECK:           llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK:           gpu.return
func.func @attention(%q: tensor<100x32xbf16>, %k: tensor<100x32xbf16>)
    -> (tensor<100x32xbf16>, tensor<100xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c64 = arith.constant 64 : index
  %c100 = arith.constant 100 : index
  %ninf = arith.constant dense<0xFF800000> : tensor<64xf32>
  %zero = arith.constant dense<0.0> : tensor<64xf32>
  %acc0 = arith.constant dense<0.0> : tensor<64x32xf32>
  %o0 = tensor.empty() : tensor<100x32xbf16>
  %l0 = tensor.empty() : tensor<100xf32>
  %r:2 = tile.program grid(%c1, %c2) outs(%o0, %l0 : tensor<100x32xbf16>, tensor<100xf32>) {
  ^bb0(%unused: index, %m: index, %o: tensor<100x32xbf16>, %l: tensor<100xf32>):
    %t0 = arith.muli %m, %c64 : index
    %qt = tile.load %q[%t0, %c0] {row_dims = array<i64: 0>} : tensor<100x32xbf16> -> tensor<64x32xbf16>
    %s:3 = scf.for %j = %c0 to %c100 step %c64 iter_args(%mx = %ninf, %sm = %zero, %acc = %acc0)
        -> (tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>) {
      %kt = tile.load %k[%j, %c0] {row_dims = array<i64: 0>} : tensor<100x32xbf16> -> tensor<64x32xbf16>
      %st = tile.dot %qt, %kt {rhs_transposed} : tensor<64x32xbf16>, tensor<64x32xbf16> -> tensor<64x64xf32>
      %nm, %ns, %na = tile.online_softmax %st, %kt, %mx, %sm, %acc
          : tensor<64x64xf32>, tensor<64x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
      scf.yield %nm, %ns, %na : tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>
    }
    %out, %lse = tile.softmax_finalize %s#0, %s#1, %s#2 : tensor<64xf32>, tensor<64x32xf32> -> tensor<64x32xbf16>
    tile.store %out into %o[%t0, %c0] {row_dims = array<i64: 0>} : tensor<64x32xbf16> into tensor<100x32xbf16>
    tile.store %lse into %l[%t0] {row_dims = array<i64: 0>} : tensor<64xf32> into tensor<100xf32>
  } {label = "test"}
  return %r#0, %r#1 : tensor<100x32xbf16>, tensor<100xf32>
}

// -----

// With wgmma, a product whose 64-row blocks fill a warpgroup (4 warps) runs
// on wgmma.mma_async, B from shared memory in the 128-byte swizzled layout
// through a matrix descriptor: k ([N][K]) K-major (trans-b 0), v ([K][N])
// MN-major (trans-b 1). The loop carries two [64, 128] f32 accumulators
// (128 values a thread, over 64), so q, a load that only feeds such a
// product as its left operand, is staged too and read K-major (trans-a 0);
// s comes from registers. v is a gather: its row indices go through
// scratch, and cp.async copies its rows (only with wgmma; without, it is
// gathered into registers); they are waited for where v is first read, so
// the first product runs while they are in flight. Staged copies are published to the async proxy
// (fence.proxy) before the barrier; one fence, commit and wait per product.
// The first chain starts from zero (scale-d 0); the second accumulates into
// a, the other operand of its `a + dot` (tied inputs). Without wgmma the
// same program uses mma.sync.
// CHECK-LABEL: gpu.func @warpgroup_k0
// CHECK-NOT:     wgmma
// CHECK:         nvvm.mma.sync
// WGMMA-LABEL: gpu.module @warpgroup_kernels
// WGMMA:         llvm.mlir.global external @__nsa_shared() {addr_space = 3 : i32, alignment = 1024 : i64}
// WGMMA:         gpu.func @warpgroup_k0
// WGMMA:           nvvm.cp.async.wait.group 0
// WGMMA-NEXT:      nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// WGMMA-NEXT:      gpu.barrier
// WGMMA:           scf.for
// WGMMA:             llvm.load %{{.*}} : !llvm.ptr<3> -> i32
// WGMMA:             nvvm.cp.async.shared.global
// WGMMA:             nvvm.wgmma.fence.aligned
// WGMMA:             llvm.inline_asm has_side_effects asm_dialect = att "{\0A.reg .pred p;\0Asetp.ne.b32 p, $34, 0;\0Awgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {$0, {{.*}}, $31}, $32, $33, p, 1, 1, 0, 0;\0A}", "=f,{{.*}},=f,l,l,r"
// WGMMA-COUNT-7:     wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}} p, 1, 1, 0, 0;
// WGMMA:             nvvm.wgmma.commit.group.sync.aligned
// WGMMA-NEXT:        nvvm.wgmma.wait.group.sync.aligned 0
// WGMMA:             nvvm.cp.async.wait.group 0
// WGMMA-NEXT:        nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// WGMMA-NEXT:        gpu.barrier
// WGMMA:             nvvm.wgmma.fence.aligned
// WGMMA:             wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}}, {$64, $65, $66, $67}, $68, p, 1, 1, 1;\0A}", "=f,{{.*}},=f,r,r,r,r,l,r,0,1,2,{{.*}},63"
// WGMMA-COUNT-3:     wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}} p, 1, 1, 1;
// WGMMA:             nvvm.wgmma.wait.group.sync.aligned 0
// WGMMA-NOT:         nvvm.mma.sync
// WGMMA:           gpu.return
func.func @warpgroup(%q: tensor<64x128xbf16>, %k: tensor<64x128xbf16>, %v: tensor<100x128xbf16>,
                     %rows: tensor<64xi32>) -> (tensor<64x128xf32>, tensor<64x128xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant dense<0.0> : tensor<64x128xf32>
  %o0 = tensor.empty() : tensor<64x128xf32>
  %r:2 = tile.program grid(%c1) outs(%o0, %o0 : tensor<64x128xf32>, tensor<64x128xf32>) {
  ^bb0(%i: index, %o: tensor<64x128xf32>, %o2: tensor<64x128xf32>):
    %qt = tile.load %q[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x128xbf16> -> tensor<64x128xbf16>
    %kt = tile.load %k[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x128xbf16> -> tensor<64x128xbf16>
    %rt = tile.load %rows[%c0] {row_dims = array<i64: 0>} : tensor<64xi32> -> tensor<64xi32>
    %acc:2 = scf.for %j = %c0 to %c1 step %c1 iter_args(%a = %zero, %b = %zero)
        -> (tensor<64x128xf32>, tensor<64x128xf32>) {
      %vt = tile.gather %v[] rows %rt {row_dims = array<i64: 0>} : tensor<100x128xbf16>, tensor<64xi32> -> tensor<64x128xbf16>
      %st = tile.dot %qt, %kt {rhs_transposed} : tensor<64x128xbf16>, tensor<64x128xbf16> -> tensor<64x64xf32>
      %ve = arith.extf %vt : tensor<64x128xbf16> to tensor<64x128xf32>
      %pv = tile.dot %st, %ve : tensor<64x64xf32>, tensor<64x128xf32> -> tensor<64x128xf32>
      %na = arith.addf %a, %pv : tensor<64x128xf32>
      %nb = arith.mulf %b, %na : tensor<64x128xf32>
      scf.yield %na, %nb : tensor<64x128xf32>, tensor<64x128xf32>
    }
    tile.store %acc#0 into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x128xf32> into tensor<64x128xf32>
    tile.store %acc#1 into %o2[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x128xf32> into tensor<64x128xf32>
  }
  return %r#0, %r#1 : tensor<64x128xf32>, tensor<64x128xf32>
}

// -----

// An f32 product is exact, on the CUDA cores (a loop over K per element).
// Top-n merging in shared memory is a parallel rank merge: each of the
// 4 rows x (2 listed + 16 candidates) = 72 elements gets a thread (3 rounds
// of the warp's 32), counts the listed entries and the candidates ranked
// before it (larger score, then smaller index) and writes itself to that
// slot when it is below n = 2 (counts are i32: index adds are two
// instructions). A candidate behind the row's last listed
// entry skips the counting; only candidates count listed entries.
// Finalizing (ascending indices) stays one thread per row. A program whose
// tiles have 4 rows runs on one warp; its occupancy hint becomes
// nvvm.minctasm (ptxas's .minnctapersm).
// CHECK-LABEL: gpu.func @select_k0
// CHECK-SAME:      known_block_size = array<i32: 32, 1, 1>
// CHECK-SAME:      nvvm.minctasm = 3 : i64
// CHECK:           scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (f32)
// CHECK:             arith.mulf
// CHECK:           scf.for %{{.*}} = %{{.*}} to %c3 step
// CHECK:             %[[W:.*]] = arith.addi %thread_id_x
// CHECK:             arith.cmpi ult, %[[W]], %c72
// CHECK:             scf.if
// CHECK:               arith.divui %[[W]], %c18
// CHECK:               %[[E:.*]] = arith.remui %[[W]], %c18
// CHECK:               %[[LISTED:.*]] = arith.cmpi ult, %[[E]], %c2
// CHECK:               %[[BEHIND:.*]] = arith.ori
// CHECK:               %[[MISS:.*]] = arith.xori %[[BEHIND]], %true
// CHECK:               %[[MAY:.*]] = arith.ori %[[LISTED]], %[[MISS]]
// CHECK:               scf.if %[[MAY]] {
// CHECK:                 %[[FIRST:.*]] = scf.if %[[LISTED]] -> (i32) {
// CHECK:                   %[[E32:.*]] = arith.index_cast %[[E]] : index to i32
// CHECK:                   scf.yield %[[E32]]
// CHECK:                 } else {
// CHECK:                   scf.for %{{.*}} = %{{.*}} to %c2{{.*}} step %{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (i32)
// CHECK:                     arith.cmpf oeq
// CHECK:                     arith.cmpf ogt
// CHECK:                 %[[COUNT:.*]] = scf.for %{{.*}} = %{{.*}} to %c16{{.*}} step %{{.*}} iter_args(%{{.*}} = %[[FIRST]]) -> (i32)
// CHECK:                 %[[KEEP:.*]] = arith.cmpi ult, %[[COUNT]], %c2{{.*}} : i32
// CHECK:                 scf.if %[[KEEP]]
// CHECK:                   llvm.store %{{.*}} : f32, !llvm.ptr<3>
// CHECK:                   llvm.store %{{.*}} : i32, !llvm.ptr<3>
// CHECK:           gpu.barrier
// CHECK:           arith.cmpi ult, %thread_id_x, %c4
// CHECK:           scf.if
// CHECK:             scf.for
func.func @select(%s: tensor<4x16xf32>, %w: tensor<16x16xf32>) -> tensor<4x2xi32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %bs = arith.constant dense<0xFF800000> : tensor<4x2xf32>
  %bi = arith.constant dense<-1> : tensor<4x2xi32>
  %init = tensor.empty() : tensor<4x2xi32>
  %r = tile.program grid(%c1) outs(%init : tensor<4x2xi32>) {
  ^bb0(%i: index, %out: tensor<4x2xi32>):
    %st = tile.load %s[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x16xf32> -> tensor<4x16xf32>
    %wt = tile.load %w[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x16xf32> -> tensor<16x16xf32>
    %p = tile.dot %st, %wt : tensor<4x16xf32>, tensor<16x16xf32> -> tensor<4x16xf32>
    %ns, %ni = tile.topk_merge %bs, %bi, %p, %c0 : tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x16xf32>
    %idx = tile.topk_finalize %ns, %ni : tensor<4x2xf32>, tensor<4x2xi32>
    tile.store %idx into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x2xi32> into tensor<4x2xi32>
  } {min_resident = 3 : i64}
  return %r : tensor<4x2xi32>
}

// -----

// With n = 16 listed entries and 16 candidates a row's 32 elements are one
// warp: a vote over "a candidate not behind the list" lets the listed
// entries keep their slots without counting when no candidate may enter.
// CHECK-LABEL: gpu.func @select_warp_rows_k0
// CHECK:         %[[ANY:.*]] = nvvm.vote.sync  any %{{.*}}, %{{.*}} -> i1
// CHECK:         scf.if
// CHECK:           %[[FIRST:.*]] = scf.if %{{.*}} -> (i32) {
// CHECK:           scf.if %[[ANY]] -> (i32) {
// CHECK:             scf.for {{.*}} iter_args(%{{.*}} = %[[FIRST]]) -> (i32)
// CHECK:           } else {
// CHECK-NEXT:        scf.yield %[[FIRST]] : i32
func.func @select_warp_rows(%s: tensor<4x16xf32>) -> tensor<4x16xi32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %bs = arith.constant dense<0xFF800000> : tensor<4x16xf32>
  %bi = arith.constant dense<-1> : tensor<4x16xi32>
  %init = tensor.empty() : tensor<4x16xi32>
  %r = tile.program grid(%c1) outs(%init : tensor<4x16xi32>) {
  ^bb0(%i: index, %out: tensor<4x16xi32>):
    %st = tile.load %s[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x16xf32> -> tensor<4x16xf32>
    %ns, %ni = tile.topk_merge %bs, %bi, %st, %c0 : tensor<4x16xf32>, tensor<4x16xi32>, tensor<4x16xf32>
    tile.store %ni into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x16xi32> into tensor<4x16xi32>
  }
  return %r : tensor<4x16xi32>
}

// -----

// Staged loads outside a pipelined loop are waited for where a product
// first reads them: K's and V's copies (two cp.async groups) are in flight
// together, and one wait lands both before the first fragment load.
// CHECK-LABEL: gpu.func @staged_in_flight_k0
// CHECK:         nvvm.cp.async.shared.global
// CHECK:         nvvm.cp.async.commit.group
// CHECK-NOT:     nvvm.cp.async.wait.group
// CHECK:         nvvm.cp.async.shared.global
// CHECK:         nvvm.cp.async.commit.group
// CHECK-NEXT:    nvvm.cp.async.wait.group 0
// CHECK-NEXT:    gpu.barrier
// CHECK:         nvvm.ldmatrix
func.func @staged_in_flight(%qs: tensor<16x32xbf16>, %ks: tensor<16x32xbf16>, %vs: tensor<16x32xbf16>) -> tensor<16x32xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %init = tensor.empty() : tensor<16x32xf32>
  %r = tile.program grid(%c1) outs(%init : tensor<16x32xf32>) {
  ^bb0(%i: index, %out: tensor<16x32xf32>):
    %q = tile.load %qs[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x32xbf16> -> tensor<16x32xbf16>
    %k = tile.load %ks[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x32xbf16> -> tensor<16x32xbf16>
    %v = tile.load %vs[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x32xbf16> -> tensor<16x32xbf16>
    %s = tile.dot %q, %k {rhs_transposed} : tensor<16x32xbf16>, tensor<16x32xbf16> -> tensor<16x16xf32>
    %p = arith.truncf %s : tensor<16x16xf32> to tensor<16x16xbf16>
    %o = tile.dot %p, %v : tensor<16x16xbf16>, tensor<16x32xbf16> -> tensor<16x32xf32>
    tile.store %o into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x32xf32> into tensor<16x32xf32>
  }
  return %r : tensor<16x32xf32>
}

// -----

// tile.group_sum with G = 16 (a token's heads): a warp's row block is one
// group, so each lane adds its two row slots (rows g and g + 8), three
// butterfly shuffles (lanes 4, 8, 16 apart) sum over g = lane / 4, and every
// lane writes its group's sums to scratch (equal values to the same words);
// one barrier, and the [4, 16] result is read back.
// CHECK-LABEL: gpu.func @group_sum_k0
// CHECK:         gpu.barrier
// CHECK:         gpu.barrier
// CHECK:         %[[PAIR:.*]] = arith.addf
// CHECK:         %[[S4:.*]], %{{.*}} = gpu.shuffle  xor %[[PAIR]], %c4_i32
// CHECK-NEXT:    %[[A4:.*]] = arith.addf %[[PAIR]], %[[S4]]
// CHECK:         %[[S8:.*]], %{{.*}} = gpu.shuffle  xor %[[A4]], %c8_i32
// CHECK-NEXT:    %[[A8:.*]] = arith.addf %[[A4]], %[[S8]]
// CHECK:         %[[S16:.*]], %{{.*}} = gpu.shuffle  xor %[[A8]], %c16_i32
// CHECK-NEXT:    arith.addf %[[A8]], %[[S16]]
// CHECK-NOT:     gpu.barrier
// CHECK:         llvm.store %{{.*}} : f32, !llvm.ptr<3>
// CHECK:         gpu.barrier
// CHECK:         llvm.load %{{.*}} : !llvm.ptr<3> -> f32
func.func @group_sum(%s: tensor<64x16xf32>) -> tensor<4x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %init = tensor.empty() : tensor<4x16xf32>
  %r = tile.program grid(%c1) outs(%init : tensor<4x16xf32>) {
  ^bb0(%i: index, %out: tensor<4x16xf32>):
    %st = tile.load %s[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x16xf32> -> tensor<64x16xf32>
    %g = tile.group_sum %st : tensor<64x16xf32> -> tensor<4x16xf32>
    tile.store %g into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x16xf32> into tensor<4x16xf32>
  }
  return %r : tensor<4x16xf32>
}

// -----

// Groups larger than a warp's row block (G = 32): the tile goes through
// scratch whole and each result element sums its 32 rows there.
// CHECK-LABEL: gpu.func @group_sum_rows_k0
// CHECK-NOT:     gpu.shuffle
// CHECK:         gpu.barrier
// CHECK:         llvm.store %{{.*}} : f32, !llvm.ptr<3>
// CHECK:         gpu.barrier
// CHECK-COUNT-32: llvm.load %{{.*}} : !llvm.ptr<3> -> f32
func.func @group_sum_rows(%s: tensor<64x16xf32>) -> tensor<2x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %init = tensor.empty() : tensor<2x16xf32>
  %r = tile.program grid(%c1) outs(%init : tensor<2x16xf32>) {
  ^bb0(%i: index, %out: tensor<2x16xf32>):
    %st = tile.load %s[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x16xf32> -> tensor<64x16xf32>
    %g = tile.group_sum %st : tensor<64x16xf32> -> tensor<2x16xf32>
    tile.store %g into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<2x16xf32> into tensor<2x16xf32>
  }
  return %r : tensor<2x16xf32>
}

// -----

// tile.compact: values and mask (widened to i32) go through scratch; each
// warp votes the mask, 32 elements a ballot, and a set element's lane
// writes its value at its rank (earlier words' popcounts plus the popcount
// below its lane) into the warp's own list; after a warp sync, an element
// reads list[rank] when its rank is below the count, else -1.
// CHECK-LABEL: gpu.func @compact_k0
// CHECK:         gpu.barrier
// CHECK:         arith.extui %{{.*}} : i1 to i32
// CHECK:         gpu.barrier
// CHECK:         %[[BELOW:.*]] = arith.subi %{{.*}}, %c1_i32{{.*}} : i32
// CHECK:         %[[W0:.*]] = nvvm.vote.sync  ballot %c-1_i32{{.*}}, %{{.*}} -> i32
// CHECK:         %[[L0:.*]] = arith.andi %[[W0]], %[[BELOW]] : i32
// CHECK:         llvm.intr.ctpop(%[[L0]]) : (i32) -> i32
// CHECK:         llvm.store %{{.*}}, %{{.*}} : i32, !llvm.ptr<3>
// CHECK:         %[[P0:.*]] = llvm.intr.ctpop(%[[W0]]) : (i32) -> i32
// CHECK:         %[[N0:.*]] = arith.addi %c0_i32{{.*}}, %[[P0]] : i32
// CHECK:         %[[W1:.*]] = nvvm.vote.sync  ballot %c-1_i32{{.*}}, %{{.*}} -> i32
// CHECK:         llvm.store %{{.*}}, %{{.*}} : i32, !llvm.ptr<3>
// CHECK:         %[[P1:.*]] = llvm.intr.ctpop(%[[W1]]) : (i32) -> i32
// CHECK:         %[[N:.*]] = arith.addi %[[N0]], %[[P1]] : i32
// CHECK:         nvvm.bar.warp.sync
// CHECK-NOT:     gpu.barrier
// CHECK:         %[[IN:.*]] = arith.cmpi ult, %{{.*}}, %[[N]] : i32
// CHECK:         %[[V:.*]] = llvm.load %{{.*}} : !llvm.ptr<3> -> i32
// CHECK:         arith.select %[[IN]], %[[V]], %c-1_i32{{.*}} : i32
func.func @compact(%m: tensor<64xi32>, %q: tensor<64xi32>) -> tensor<64xi32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %init = tensor.empty() : tensor<64xi32>
  %r = tile.program grid(%c1) outs(%init : tensor<64xi32>) {
  ^bb0(%i: index, %out: tensor<64xi32>):
    %mt = tile.load %m[%c0] {row_dims = array<i64: 0>} : tensor<64xi32> -> tensor<64xi32>
    %rt = tile.load %q[%c0] {row_dims = array<i64: 0>} : tensor<64xi32> -> tensor<64xi32>
    %zero = arith.constant dense<0> : tensor<64xi32>
    %set = arith.cmpi ne, %mt, %zero : tensor<64xi32>
    %v = tile.range %c0 : tensor<64xi32>
    %p, %n = tile.compact %v, %set, %rt : tensor<64xi32>, tensor<64xi1>, tensor<64xi32>
    %nn = arith.index_cast %n : index to i32
    %ns = tensor.splat %nn : tensor<64xi32>
    %s = arith.addi %p, %ns : tensor<64xi32>
    tile.store %s into %out[%c0] {row_dims = array<i64: 0>} : tensor<64xi32> into tensor<64xi32>
  }
  return %r : tensor<64xi32>
}

// -----

// A loop-carried rank-1 tile that the loop body broadcasts along rows keeps
// column form around the whole cycle, the yielded value included (the next
// iteration reads it): no form change, so no barrier, inside the loop.
// CHECK-LABEL: gpu.func @carried_columns_k0
// CHECK:         scf.for {{.*}} iter_args
// CHECK-NOT:     gpu.barrier
// CHECK:         scf.yield
func.func @carried_columns(%x: tensor<16x64xi32>) -> tensor<16x64xi32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %init = tensor.empty() : tensor<16x64xi32>
  %r = tile.program grid(%c1) outs(%init : tensor<16x64xi32>) {
  ^bb0(%i: index, %out: tensor<16x64xi32>):
    %t0 = tile.range %c0 : tensor<64xi32>
    %acc0 = tile.load %x[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x64xi32> -> tensor<16x64xi32>
    %one = arith.constant dense<1> : tensor<64xi32>
    %res:2 = scf.for %k = %c0 to %c4 step %c1 iter_args(%t = %t0, %acc = %acc0) -> (tensor<64xi32>, tensor<16x64xi32>) {
      %b = tile.broadcast %t {dim = 0} : tensor<64xi32> -> tensor<16x64xi32>
      %a = arith.addi %acc, %b : tensor<16x64xi32>
      %n = arith.addi %t, %one : tensor<64xi32>
      scf.yield %n, %a : tensor<64xi32>, tensor<16x64xi32>
    }
    tile.store %res#1 into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x64xi32> into tensor<16x64xi32>
  }
  return %r : tensor<16x64xi32>
}

// -----

// A range that a gather in column form (broadcast along rows) and a row
// broadcast both use is computed in each form (CSE merges equal ranges
// whatever forms their users want) rather than moved through shared
// memory: no barrier past the kernel's prologue; the column-form gather
// loads 16 column slots.
// CHECK-LABEL: gpu.func @range_forms_k0
// CHECK:         gpu.barrier
// CHECK-NOT:     gpu.barrier
// CHECK-COUNT-16: llvm.load %{{.*}} : !llvm.ptr<1> -> f32
// CHECK-NOT:     gpu.barrier
// CHECK:         gpu.return
func.func @range_forms(%x: tensor<100xf32>, %y: tensor<64x16xi32>) -> (tensor<16x64xf32>, tensor<64x16xi32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<16x64xf32>
  %o1 = tensor.empty() : tensor<64x16xi32>
  %r:2 = tile.program grid(%c1) outs(%o0, %o1 : tensor<16x64xf32>, tensor<64x16xi32>) {
  ^bb0(%i: index, %a: tensor<16x64xf32>, %b: tensor<64x16xi32>):
    %t = tile.range %c0 {divisor = 4} : tensor<64xi32>
    %g = tile.gather %x[] rows %t {row_dims = array<i64: 0>} : tensor<100xf32>, tensor<64xi32> -> tensor<64xf32>
    %gc = tile.broadcast %g {dim = 0} : tensor<64xf32> -> tensor<16x64xf32>
    %tr = tile.broadcast %t {dim = 1} : tensor<64xi32> -> tensor<64x16xi32>
    %yt = tile.load %y[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x16xi32> -> tensor<64x16xi32>
    %s = arith.addi %yt, %tr : tensor<64x16xi32>
    tile.store %gc into %a[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x64xf32> into tensor<16x64xf32>
    tile.store %s into %b[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x16xi32> into tensor<64x16xi32>
  }
  return %r#0, %r#1 : tensor<16x64xf32>, tensor<64x16xi32>
}

// -----

// An lhs-transposed product with a bf16 right operand (the backward's
// p^T . d_o) runs on tensor cores: the f32 left operand is rounded and
// staged as it is ([K][M]), then read into A fragments by ldmatrix.x4
// .trans; the right operand (a load it alone uses: copied to shared memory
// by cp.async) is read by ldmatrix.x2.trans ([K][N]).
// CHECK-LABEL: gpu.func @transposed_k0
// CHECK:         gpu.barrier
// CHECK:         llvm.store %{{.*}} : bf16, !llvm.ptr<3>
// CHECK:         gpu.barrier
// CHECK:         nvvm.ldmatrix %{{.*}} {eltType = #nvvm.ld_st_matrix_elt_type<b16>, layout = #nvvm.mma_layout<col>, num = 4 : i32, shape = #nvvm.ld_st_matrix_shape<m = 8, n = 8>}
// CHECK:         nvvm.ldmatrix %{{.*}} {eltType = #nvvm.ld_st_matrix_elt_type<b16>, layout = #nvvm.mma_layout<col>, num = 2 : i32, shape = #nvvm.ld_st_matrix_shape<m = 8, n = 8>}
// CHECK:         nvvm.mma.sync
func.func @transposed(%p: tensor<16x32xf32>, %d: tensor<16x16xbf16>) -> tensor<32x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<32x16xf32>
  %r = tile.program grid(%c1) outs(%o0 : tensor<32x16xf32>) {
  ^bb0(%i: index, %o: tensor<32x16xf32>):
    %pt = tile.load %p[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x32xf32> -> tensor<16x32xf32>
    %dt = tile.load %d[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x16xbf16> -> tensor<16x16xbf16>
    %de = arith.extf %dt : tensor<16x16xbf16> to tensor<16x16xf32>
    %dv = tile.dot %pt, %de {lhs_transposed} : tensor<16x32xf32>, tensor<16x16xf32> -> tensor<32x16xf32>
    tile.store %dv into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<32x16xf32> into tensor<32x16xf32>
  }
  return %r : tensor<32x16xf32>
}

// -----

// Kernels are specialised to static shapes.
func.func @dynamic(%q: tensor<?x32xbf16>) -> tensor<?x32xbf16> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty(%c1) : tensor<?x32xbf16>
  // expected-error @+1 {{convert-tile-to-gpu: tensor 'tensor<?x32xbf16>' must have a static shape}}
  %r = tile.program grid(%c1) outs(%o0 : tensor<?x32xbf16>) {
  ^bb0(%i: index, %o: tensor<?x32xbf16>):
    %t = tile.load %q[%c0, %c0] {row_dims = array<i64: 0>} : tensor<?x32xbf16> -> tensor<16x32xbf16>
    tile.store %t into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x32xbf16> into tensor<?x32xbf16>
  }
  return %r : tensor<?x32xbf16>
}

// -----

// Elementwise math is limited to what the hardware approximates.
func.func @unsupported(%x: tensor<16x16xf32>) -> tensor<16x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<16x16xf32>
  %r = tile.program grid(%c1) outs(%o0 : tensor<16x16xf32>) {
  ^bb0(%i: index, %o: tensor<16x16xf32>):
    %t = tile.load %x[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x16xf32> -> tensor<16x16xf32>
    // expected-error @+1 {{'math.sin' op convert-tile-to-gpu: unsupported math op}}
    %s = math.sin %t : tensor<16x16xf32>
    tile.store %s into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x16xf32> into tensor<16x16xf32>
  }
  return %r : tensor<16x16xf32>
}

// -----

// A tile reshape (expand to rank 3, collapse back) goes through scratch
// shared memory: written row-major, read back in the new shape.
// CHECK-LABEL: gpu.func @reshape_k0
// CHECK:         gpu.barrier
// CHECK:         llvm.store %{{.*}} : f32, !llvm.ptr<3>
// CHECK:         gpu.barrier
// CHECK:         llvm.load %{{.*}} : !llvm.ptr<3> -> f32
func.func @reshape(%x: tensor<4x32xf32>) -> tensor<16x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<16x8xf32>
  %r = tile.program grid(%c1) outs(%o0 : tensor<16x8xf32>) {
  ^bb0(%i: index, %o: tensor<16x8xf32>):
    %t = tile.load %x[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x32xf32> -> tensor<4x32xf32>
    %e = tensor.expand_shape %t [[0], [1, 2]] output_shape [4, 4, 8] : tensor<4x32xf32> into tensor<4x4x8xf32>
    %c = tensor.collapse_shape %e [[0, 1], [2]] : tensor<4x4x8xf32> into tensor<16x8xf32>
    tile.store %c into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x8xf32> into tensor<16x8xf32>
  }
  return %r : tensor<16x8xf32>
}

// -----

// A store with a row stride (the compression backward's phases) puts tile
// row r at index + r * stride and bounds-checks that row.
// CHECK-LABEL: gpu.func @strided_store_k0
// CHECK:         %[[R:.*]] = arith.muli %{{.*}}, %c6 : index
// CHECK:         %[[ROW:.*]] = arith.addi %{{.*}}, %[[R]] : index
// CHECK:         arith.cmpi ult, %[[ROW]], %c100 : index
// CHECK:         llvm.store %{{.*}}, %{{.*}} {alignment = 8 : i64} : vector<2xf32>, !llvm.ptr<1>
func.func @strided_store(%x: tensor<16x8xf32>) -> tensor<100x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<100x8xf32>
  %r = tile.program grid(%c1) outs(%o0 : tensor<100x8xf32>) {
  ^bb0(%i: index, %o: tensor<100x8xf32>):
    %t = tile.load %x[%c0, %c0] {row_dims = array<i64: 0>} : tensor<16x8xf32> -> tensor<16x8xf32>
    tile.store %t into %o[%i, %c0] {row_dims = array<i64: 0>, row_stride = 6 : i64} : tensor<16x8xf32> into tensor<100x8xf32>
  }
  return %r : tensor<100x8xf32>
}

// -----

// An elementwise op on whole tensors in the host function (nsa-decompose sums
// gradient contributions) becomes a program of its own over [N, C] views, so
// the host keeps only launches and views.
// CHECK-LABEL: func.func @host_add
// CHECK:         %[[A:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2]] : tensor<2x100x8xbf16> into tensor<200x8xbf16>
// CHECK:         %[[B:.*]] = tensor.collapse_shape %arg1
// CHECK:         %[[R:.*]] = tile.launch @host_add_kernels::@host_add_k0 grid(%{{.*}}) args(%[[A]], %[[B]] : tensor<200x8xbf16>, tensor<200x8xbf16>) outs(%{{.*}} : tensor<200x8xbf16>) {label = "elementwise"}
// CHECK:         %[[E:.*]] = tensor.expand_shape %[[R]] {{\[\[}}0, 1], [2]] output_shape [2, 100, 8]
// CHECK:         return %[[E]]
// CHECK:       gpu.func @host_add_k0
// CHECK:         arith.addf %{{.*}}, %{{.*}} : bf16
func.func @host_add(%a: tensor<2x100x8xbf16>, %b: tensor<2x100x8xbf16>) -> tensor<2x100x8xbf16> {
  %c = arith.addf %a, %b : tensor<2x100x8xbf16>
  return %c : tensor<2x100x8xbf16>
}

// -----

// A host elementwise op whose only user is another one is computed in that
// user's program: a sum of three gradient contributions is one kernel that
// reads the three once.
// CHECK-LABEL: func.func @host_sum3
// CHECK:         tile.launch @host_sum3_kernels::@host_sum3_k0 grid(%{{.*}}) args(%{{.*}}, %{{.*}}, %{{.*}} : tensor<200x8xbf16>, tensor<200x8xbf16>, tensor<200x8xbf16>)
// CHECK-NOT:     tile.launch
// CHECK:       gpu.func @host_sum3_k0
// CHECK-COUNT-2: arith.addf %{{.*}}, %{{.*}} : bf16
func.func @host_sum3(%a: tensor<2x100x8xbf16>, %b: tensor<2x100x8xbf16>, %c: tensor<2x100x8xbf16>) -> tensor<2x100x8xbf16> {
  %ab = arith.addf %a, %b : tensor<2x100x8xbf16>
  %abc = arith.addf %ab, %c : tensor<2x100x8xbf16>
  return %abc : tensor<2x100x8xbf16>
}

// -----

// A program whose staged operands exceed a block's shared memory is refused
// at compile time (here a 512 x 256 bf16 right operand: 512 rows of 264
// elements and a trash row; 256 KiB and a trash slot swizzled for wgmma).
func.func @too_much_shared(%q: tensor<64x256xbf16>, %k: tensor<512x256xbf16>) -> tensor<64x512xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<64x512xf32>
  // expected-error-re @+1 {{convert-tile-to-gpu: the kernel needs {{(270864|263168)}} bytes of shared memory, more than the 232448 a thread block can have on sm_90; use smaller tiles}}
  %r = tile.program grid(%c1) outs(%o0 : tensor<64x512xf32>) {
  ^bb0(%i: index, %o: tensor<64x512xf32>):
    %qt = tile.load %q[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x256xbf16> -> tensor<64x256xbf16>
    %kt = tile.load %k[%c0, %c0] {row_dims = array<i64: 0>} : tensor<512x256xbf16> -> tensor<512x256xbf16>
    %s = tile.dot %qt, %kt {rhs_transposed} : tensor<64x256xbf16>, tensor<512x256xbf16> -> tensor<64x512xf32>
    tile.store %s into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x512xf32> into tensor<64x512xf32>
  }
  return %r : tensor<64x512xf32>
}

// -----

// Global accesses of rank-2 tiles move a thread's two adjacent columns at
// once when the row length is even (the pair is aligned to its size); an odd
// row length (gates: 3 columns) keeps one access per element.
// CHECK-LABEL: gpu.func @column_pairs_k0
// CHECK:         llvm.load %{{.*}} {alignment = 4 : i64} : !llvm.ptr<1> -> vector<2xbf16>
// CHECK:         llvm.extractelement
// CHECK:         llvm.load %{{.*}} : !llvm.ptr<1> -> bf16
// CHECK-NOT:     ptr<1> -> vector<2xbf16>
// CHECK:         llvm.store %{{.*}}, %{{.*}} {alignment = 4 : i64} : vector<2xbf16>, !llvm.ptr<1>
func.func @column_pairs(%x: tensor<64x16xbf16>, %g: tensor<64x3xbf16>) -> (tensor<64x16xbf16>, tensor<64x3xbf16>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<64x16xbf16>
  %o1 = tensor.empty() : tensor<64x3xbf16>
  %r:2 = tile.program grid(%c1) outs(%o0, %o1 : tensor<64x16xbf16>, tensor<64x3xbf16>) {
  ^bb0(%i: index, %o: tensor<64x16xbf16>, %p: tensor<64x3xbf16>):
    %t = tile.load %x[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x16xbf16> -> tensor<64x16xbf16>
    %u = tile.load %g[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x3xbf16> -> tensor<64x3xbf16>
    tile.store %t into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x16xbf16> into tensor<64x16xbf16>
    tile.store %u into %p[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x3xbf16> into tensor<64x3xbf16>
  }
  return %r#0, %r#1 : tensor<64x16xbf16>, tensor<64x3xbf16>
}

// -----

// A program whose ops never tell columns apart (loads and stores of whole
// rows, elementwise math, a row broadcast, a row sum) gives each lane eight
// adjacent columns (32 * j + 8 * q + e), so its bf16 rows move 16 bytes an
// access and its f32 rows 16 bytes (four columns) an access.
// CHECK-LABEL: gpu.func @wide_columns_k0
// CHECK:         %[[Q:.*]] = arith.remui %{{.*}}, %c4
// CHECK:         arith.muli %[[Q]], %c8
// CHECK:         llvm.load %{{.*}} {alignment = 16 : i64} : !llvm.ptr<1> -> vector<8xbf16>
// CHECK:         llvm.store %{{.*}}, %{{.*}} {alignment = 16 : i64} : vector<8xbf16>, !llvm.ptr<1>
// CHECK:         llvm.store %{{.*}}, %{{.*}} {alignment = 16 : i64} : vector<4xf32>, !llvm.ptr<1>
// CHECK-NOT:     vector<2xbf16>
func.func @wide_columns(%x: tensor<64x64xbf16>, %g: tensor<64xbf16>) -> (tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<64x64xbf16>
  %o1 = tensor.empty() : tensor<64x64xf32>
  %o2 = tensor.empty() : tensor<64xf32>
  %r:3 = tile.program grid(%c1) outs(%o0, %o1, %o2 : tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64xf32>) {
  ^bb0(%i: index, %o: tensor<64x64xbf16>, %p: tensor<64x64xf32>, %q: tensor<64xf32>):
    %t = tile.load %x[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x64xbf16> -> tensor<64x64xbf16>
    %gt = tile.load %g[%c0] {row_dims = array<i64: 0>} : tensor<64xbf16> -> tensor<64xbf16>
    %gb = tile.broadcast %gt {dim = 1 : i64} : tensor<64xbf16> -> tensor<64x64xbf16>
    %y = arith.mulf %t, %gb : tensor<64x64xbf16>
    %f = arith.extf %y : tensor<64x64xbf16> to tensor<64x64xf32>
    %s = tile.reduce sum %f : tensor<64x64xf32> -> tensor<64xf32>
    tile.store %y into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x64xbf16> into tensor<64x64xbf16>
    tile.store %f into %p[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x64xf32> into tensor<64x64xf32>
    tile.store %s into %q[%c0] {row_dims = array<i64: 0>} : tensor<64xf32> into tensor<64xf32>
  }
  return %r#0, %r#1, %r#2 : tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64xf32>
}

// -----

// A column index (tile.range broadcast along the rows) tells columns apart:
// the program keeps the accumulator layout's column pairs.
// CHECK-LABEL: gpu.func @column_index_k0
// CHECK:         llvm.load %{{.*}} {alignment = 4 : i64} : !llvm.ptr<1> -> vector<2xbf16>
// CHECK-NOT:     vector<8xbf16>
func.func @column_index(%x: tensor<64x64xbf16>) -> tensor<64x64xbf16> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<64x64xbf16>
  %r = tile.program grid(%c1) outs(%o0 : tensor<64x64xbf16>) {
  ^bb0(%i: index, %o: tensor<64x64xbf16>):
    %t = tile.load %x[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x64xbf16> -> tensor<64x64xbf16>
    %cols = tile.range %c0 : tensor<64xi32>
    %cb = tile.broadcast %cols {dim = 0 : i64} : tensor<64xi32> -> tensor<64x64xi32>
    %k = arith.constant dense<8> : tensor<64x64xi32>
    %m = arith.cmpi slt, %cb, %k : tensor<64x64xi32>
    %z = arith.constant 0.0 : bf16
    %y = tile.masked_fill %t, %m, %z : tensor<64x64xbf16>, tensor<64x64xi1>, bf16
    tile.store %y into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x64xbf16> into tensor<64x64xbf16>
  }
  return %r : tensor<64x64xbf16>
}

// -----

// A gather over two row dimensions: row index t * 4 + g reads token t,
// head g (a remainder and a quotient of the index); only the token is
// bounds-checked, so -1 (sign-extended, then divided) reads zero.
// CHECK-LABEL: gpu.func @gather_grouped_k0
// CHECK:         %[[I:.*]] = arith.index_cast %{{.*}} : i32 to index
// CHECK:         %[[G:.*]] = arith.remui %[[I]], %{{.*}} : index
// CHECK:         %[[T:.*]] = arith.divui %[[I]], %{{.*}} : index
// CHECK-NEXT:    %[[T0:.*]] = arith.addi %{{.*}}, %[[T]] : index
// CHECK:         arith.cmpi ult, %[[T0]], %{{.*}} : index
// CHECK:         llvm.load %{{.*}} : !llvm.ptr<1> -> f32
func.func @gather_grouped(%lse: tensor<1x100x2x4xf32>, %rows: tensor<64xi32>) -> tensor<64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<64xf32>
  %r = tile.program grid(%c1) outs(%o0 : tensor<64xf32>) {
  ^bb0(%i: index, %o: tensor<64xf32>):
    %rt = tile.load %rows[%c0] {row_dims = array<i64: 0>} : tensor<64xi32> -> tensor<64xi32>
    %t = tile.gather %lse[%c0, %c1] rows %rt {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4xf32>, tensor<64xi32> -> tensor<64xf32>
    tile.store %t into %o[%c0] {row_dims = array<i64: 0>} : tensor<64xf32> into tensor<64xf32>
  }
  return %r : tensor<64xf32>
}

// -----

// A rank-1 gather read in column form (broadcast along rows, as a key-major
// product's per-query terms are) takes its row indices in that form too.
// CHECK-LABEL: gpu.func @gather_column_k0
// CHECK:         arith.index_cast %{{.*}} : i32 to index
// CHECK:         llvm.load %{{.*}} : !llvm.ptr<1> -> f32
// CHECK:         gpu.return
func.func @gather_column(%lse: tensor<1x100x2x4xf32>, %rows: tensor<64xi32>) -> tensor<64x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %o0 = tensor.empty() : tensor<64x64xf32>
  %r = tile.program grid(%c1) outs(%o0 : tensor<64x64xf32>) {
  ^bb0(%i: index, %o: tensor<64x64xf32>):
    %rt = tile.load %rows[%c0] {row_dims = array<i64: 0>} : tensor<64xi32> -> tensor<64xi32>
    %t = tile.gather %lse[%c0, %c1] rows %rt {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4xf32>, tensor<64xi32> -> tensor<64xf32>
    %m = tile.broadcast %t {dim = 0 : i64} : tensor<64xf32> -> tensor<64x64xf32>
    tile.store %m into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x64xf32> into tensor<64x64xf32>
  }
  return %r : tensor<64x64xf32>
}

// -----

// Rank-1 tiles of 32-bit elements read in a loop are copied to shared
// memory by cp.async (4 bytes, through L1), one element per row slot, by
// the first lane of each quad; each use reads them from there in its own
// form. A load at loop-affine indices is double buffered like the operand
// tiles: the prologue copies the first iteration's, each iteration the
// next one's. A gather issues its copies after a barrier (earlier readers
// of its region are done) and is waited for where it is first read: here
// after the load's 16 column-form reads.
// CHECK-LABEL: gpu.func @staged_vectors_k0
// CHECK:         gpu.barrier
// CHECK:         nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 4, cache =  ca, %{{.*}} : !llvm.ptr<3>, !llvm.ptr<1>, i32
// CHECK:         nvvm.cp.async.commit.group
// CHECK:         scf.for
// CHECK:           gpu.barrier
// CHECK:           scf.if
// CHECK-COUNT-2:     nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 4, cache =  ca
// CHECK:           nvvm.cp.async.commit.group
// CHECK-NEXT:      nvvm.cp.async.wait.group 1
// CHECK-NEXT:      gpu.barrier
// CHECK:           gpu.barrier
// CHECK-COUNT-2:   nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 4, cache =  ca
// CHECK:           nvvm.cp.async.commit.group
// CHECK-NOT:       llvm.load %{{.*}} : !llvm.ptr<1> -> f32
// CHECK-COUNT-16:  llvm.load %{{.*}} : !llvm.ptr<3> -> f32
// CHECK-NEXT:      nvvm.cp.async.wait.group 0
// CHECK-NEXT:      gpu.barrier
// CHECK-COUNT-2:   llvm.load %{{.*}} : !llvm.ptr<3> -> f32
// CHECK:           scf.yield
func.func @staged_vectors(%lse: tensor<256xf32>, %delta: tensor<1x100x2x4xf32>, %rows: tensor<64xi32>) -> tensor<64x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c256 = arith.constant 256 : index
  %zero = arith.constant dense<0.0> : tensor<64x64xf32>
  %o0 = tensor.empty() : tensor<64x64xf32>
  %r = tile.program grid(%c1) outs(%o0 : tensor<64x64xf32>) {
  ^bb0(%i: index, %o: tensor<64x64xf32>):
    %rt = tile.load %rows[%c0] {row_dims = array<i64: 0>} : tensor<64xi32> -> tensor<64xi32>
    %acc = scf.for %j = %c0 to %c256 step %c64 iter_args(%a = %zero) -> (tensor<64x64xf32>) {
      %l = tile.load %lse[%j] {row_dims = array<i64: 0>} : tensor<256xf32> -> tensor<64xf32>
      %d = tile.gather %delta[%c0, %c1] rows %rt {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4xf32>, tensor<64xi32> -> tensor<64xf32>
      %lb = tile.broadcast %l {dim = 0 : i64} : tensor<64xf32> -> tensor<64x64xf32>
      %db = tile.broadcast %d {dim = 1 : i64} : tensor<64xf32> -> tensor<64x64xf32>
      %s = arith.addf %lb, %db : tensor<64x64xf32>
      %n = arith.addf %a, %s : tensor<64x64xf32>
      scf.yield %n : tensor<64x64xf32>
    }
    tile.store %acc into %o[%c0, %c0] {row_dims = array<i64: 0>} : tensor<64x64xf32> into tensor<64x64xf32>
  }
  return %r : tensor<64x64xf32>
}
