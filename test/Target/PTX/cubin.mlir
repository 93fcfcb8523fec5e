// REQUIRES: ptxas
// RUN: nsa-translate --nsa-to-ptx %S/Inputs/axpy.mlir --nsa-cubin=%t.cubin -o %t.ptx
// RUN: od -A n -c -N 4 %t.cubin | FileCheck %s
// RUN: env NSA_PTXAS=%ptxas nsa-translate --nsa-to-ptx %S/kernel-ops.mlir \
// RUN:   --nsa-cubin=%t.kernel-ops.cubin -o %t.kernel-ops.ptx
// RUN: od -A n -c -N 4 %t.kernel-ops.cubin | FileCheck %s

// --nsa-cubin assembles the PTX with the CUDA toolkit's ptxas (found on
// PATH, in $CUDA_HOME/bin or /usr/local/cuda/bin, or given by $NSA_PTXAS)
// into an sm_90a ELF object. This file holds no input of its own (see
// Inputs/axpy.mlir, and kernel-ops.mlir for a warp MMA with shared memory).
// (python/nsa/build_kernels.py --cubin names the cubin in the manifest.)

// CHECK: 177 E L F
