// RUN: nsa-translate --nsa-to-ptx %s -split-input-file -verify-diagnostics --nsa-manifest=%t.json --nsa-plan=%t.plan.json -o /dev/null
// RUN: not nsa-translate --nsa-to-ptx %S/Inputs/axpy.mlir --nsa-plan=%t.plan.json 2>&1 | FileCheck %s --check-prefix=NO-MANIFEST
// RUN: not nsa-translate --nsa-to-ptx %S/manifest.mlir --nsa-manifest=%t.json --nsa-module-file=layer.bin 2>&1 | FileCheck %s --check-prefix=MODULE-FILE

// NO-MANIFEST: error: --nsa-plan needs --nsa-manifest: the plan names the manifest of its kernels
// MODULE-FILE: error: --nsa-module-file must name a .ptx or .cubin file, got 'layer.bin'

// What the host plan cannot express is an error that names it.

// expected-error @+1 {{no func.func launches a kernel (tile.launch): there is no host function for the manifest and the host plan to describe}}
module attributes {gpu.container_module} {
  gpu.module @kernels {
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>, %out: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    // expected-error @+1 {{outs #0 must be tensor.empty: a kernel writes a buffer of its own}}
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<4xf32>) outs(%out : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    // expected-error @+1 {{the host plan cannot express 'arith.addf': a host function holds only tile.launch, tensor.empty, views (tensor.expand_shape, collapse_shape, cast), arith.constant and func.return}}
    %b = arith.addf %a, %a : tensor<4xf32>
    %e = tensor.empty() : tensor<4xf32>
    %r = tile.launch @kernels::@k grid(%c1) args(%b : tensor<4xf32>) outs(%e : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xf32>
    // expected-error @+1 {{args #0 is not a function argument, a launch result or a view of one (it comes from 'tensor.empty')}}
    %r = tile.launch @kernels::@k grid(%c1) args(%e : tensor<4xf32>) outs(%e : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  // expected-error @+1 {{argument #0 must be a statically shaped tensor of bf16, f16, f32, i32 or i64, got 'tensor<?xf32>'}}
  func.func @f(%a: tensor<?xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xf32>
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<?xf32>) outs(%e : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xf32>
    // expected-error @+1 {{label "two words" is not an identifier ([A-Za-z_][A-Za-z0-9_]*): the manifest's op and the buffer names are made from it}}
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<4xf32>) outs(%e : tensor<4xf32>) {label = "two words"}
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xf32>
    // expected-error @+1 {{kernel @kernels::@missing is not a gpu.func}}
    %r = tile.launch @kernels::@missing grid(%c1) args(%a : tensor<4xf32>) outs(%e : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xf32>
    // expected-error @+1 {{kernel @k takes 3 parameters, the launch passes 2 tensors}}
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<4xf32>) outs(%e : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>, %c: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xf32>
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<4xf32>) outs(%e : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
    // expected-error @+1 {{kernel @k has no known_block_size: the manifest needs its block}}
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %e = tensor.empty() : tensor<4xf32>
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<4xf32>) outs(%e : tensor<4xf32>)
    // expected-error @+1 {{launches @k unlike its first launch (label, grid or tensor types differ): the manifest describes a kernel once}}
    %s = tile.launch @kernels::@k grid(%c2) args(%r : tensor<4xf32>) outs(%e : tensor<4xf32>)
    return %s : tensor<4xf32>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xf32>
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<4xf32>) outs(%e : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  // expected-error @+1 {{a second host function with tile.launch (the first is @f): a host plan describes one}}
  func.func @g(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xf32>
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<4xf32>) outs(%e : tensor<4xf32>)
    return %r : tensor<4xf32>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @f(%a: tensor<4xf32>) -> tensor<4xi1> {
    %c1 = arith.constant 1 : index
    %e = tensor.empty() : tensor<4xi1>
    // expected-error @+1 {{outs #0 must be a statically shaped tensor of bf16, f16, f32, i32 or i64, got 'tensor<4xi1>'}}
    %r = tile.launch @kernels::@k grid(%c1) args(%a : tensor<4xf32>) outs(%e : tensor<4xi1>)
    return %r : tensor<4xi1>
  }
  gpu.module @kernels {
    gpu.func @k(%a: !llvm.ptr<1>, %b: !llvm.ptr<1>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
}
