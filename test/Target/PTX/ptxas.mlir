// REQUIRES: ptxas
// RUN: nsa-translate --nsa-to-ptx %S/Inputs/axpy.mlir -o %t.ptx
// RUN: %ptxas -arch=sm_90a %t.ptx -o %t.cubin
// RUN: test -s %t.cubin
// RUN: nsa-translate --nsa-to-ptx %S/kernel-ops.mlir -o %t.kernel-ops.ptx
// RUN: %ptxas -arch=sm_90a %t.kernel-ops.ptx -o %t.kernel-ops.cubin
// RUN: test -s %t.kernel-ops.cubin

// The PTX nsa-translate writes assembles for sm_90a with the CUDA toolkit's
// ptxas; this file holds no input of its own (see Inputs/axpy.mlir, and
// kernel-ops.mlir for a warp MMA with shared memory and a barrier).
