// RUN: rm -rf %t && mkdir -p %t
// RUN: nsa-translate --nsa-to-ptx %s --nsa-manifest=%t/layer.json --nsa-plan=%t/layer.plan.json --nsa-module-file=layer.ptx -o %t/layer.ptx
// RUN: FileCheck %s --check-prefix=MANIFEST --match-full-lines --strict-whitespace < %t/layer.json
// RUN: FileCheck %s --check-prefix=PLAN --match-full-lines --strict-whitespace < %t/layer.plan.json
// RUN: FileCheck %s --check-prefix=PTX < %t/layer.ptx
// Both files are JSON, and the runtime's own parser accepts the manifest.
// RUN: %python -c "import json, sys; [json.load(open(f)) for f in sys.argv[1:]]" %t/layer.json %t/layer.plan.json
// RUN: nsa-manifest-check %t/layer.json | FileCheck %s --check-prefix=RUNTIME

// A host function as convert-tile-to-gpu leaves it: launches of the
// gpu.module's kernels over tensor.empty buffers and views. The keys and
// values are compressed by two launches of one label (compress0, compress1);
// the query reaches its kernel through a view, which keeps its name (arg0);
// the window kernel reads arg1 twice (as keys and as values), so its second
// parameter carries its position to stay unique.

// MANIFEST:{
// MANIFEST-NEXT:  "format": "nsa-kernel-manifest",
// MANIFEST-NEXT:  "version": 1,
// MANIFEST-NEXT:  "target": "sm_90a",
// MANIFEST-NEXT:  "kernels": [
// MANIFEST-NEXT:    {
// MANIFEST-NEXT:      "name": "layer_k0",
// MANIFEST-NEXT:      "op": "compress",
// MANIFEST-NEXT:      "module": "layer.ptx",
// MANIFEST-NEXT:      "config": {"l": null, "d": null, "l_sel": null, "n": null, "init": null, "local": null, "w": null, "scale": null, "G": null, "Dk": null, "Dv": null, "dtype": null},
// MANIFEST-NEXT:      "params": [
// MANIFEST-NEXT:        {"name": "arg1", "kind": "tensor", "dtype": "bf16", "shape": [1, 64, 2, 32], "align": 16},
// MANIFEST-NEXT:        {"name": "arg3", "kind": "tensor", "dtype": "bf16", "shape": [2, 1024, 32], "align": 16},
// MANIFEST-NEXT:        {"name": "compress0_0", "kind": "tensor", "dtype": "bf16", "shape": [1, 3, 2, 32], "align": 16}
// MANIFEST-NEXT:      ],
// Program grid (1, 2, 1): CUDA x is the last dimension, z the first.
// MANIFEST-NEXT:      "grid": ["1", "2", "1"],
// MANIFEST-NEXT:      "block": [128, 1, 1],
// MANIFEST-NEXT:      "shared_bytes": 4096
// MANIFEST-NEXT:    },
// MANIFEST-NEXT:    {
// MANIFEST-NEXT:      "name": "layer_k1",
// MANIFEST-NEXT:      "op": "compress",
// MANIFEST:      "shared_bytes": 4096
// MANIFEST-NEXT:    },
// MANIFEST-NEXT:    {
// MANIFEST-NEXT:      "name": "layer_k2",
// MANIFEST-NEXT:      "op": "compressed_attention",
// MANIFEST-NEXT:      "module": "layer.ptx",
// MANIFEST-NEXT:      "config": {{.*}},
// MANIFEST-NEXT:      "params": [
// MANIFEST-NEXT:        {"name": "arg0", "kind": "tensor", "dtype": "bf16", "shape": [1, 64, 2, 2, 32], "align": 16},
// MANIFEST-NEXT:        {"name": "compress0_0", "kind": "tensor", "dtype": "bf16", "shape": [1, 3, 2, 32], "align": 16},
// MANIFEST-NEXT:        {"name": "compress1_0", "kind": "tensor", "dtype": "bf16", "shape": [1, 3, 2, 32], "align": 16},
// MANIFEST-NEXT:        {"name": "compressed_attention0_0", "kind": "tensor", "dtype": "bf16", "shape": [1, 64, 2, 2, 32], "align": 16},
// MANIFEST-NEXT:        {"name": "compressed_attention0_1", "kind": "tensor", "dtype": "f32", "shape": [1, 64, 2, 2], "align": 16}
// MANIFEST-NEXT:      ],
// MANIFEST-NEXT:      "grid": ["4", "2", "1"],
// MANIFEST-NEXT:      "block": [256, 1, 1],
// No nsa.shared_bytes: none.
// MANIFEST-NEXT:      "shared_bytes": 0
// MANIFEST-NEXT:    },
// MANIFEST-NEXT:    {
// MANIFEST-NEXT:      "name": "layer_k3",
// MANIFEST-NEXT:      "op": "window_attention",
// MANIFEST:      "params": [
// MANIFEST-NEXT:        {"name": "arg0", {{.*}}},
// MANIFEST-NEXT:        {"name": "arg1", {{.*}}},
// MANIFEST-NEXT:        {"name": "arg1_p2", {{.*}}},
// MANIFEST:      "grid": ["4", "1", "1"],
// MANIFEST:    }
// MANIFEST-NEXT:  ]
// MANIFEST-NEXT:}

// PLAN:{
// PLAN-NEXT:  "format": "nsa-host-plan",
// PLAN-NEXT:  "version": 1,
// PLAN-NEXT:  "function": "layer",
// PLAN-NEXT:  "manifest": "layer.json",
// PLAN-NEXT:  "inputs": [
// PLAN-NEXT:    {"name": "arg0", "dtype": "bf16", "shape": [1, 64, 4, 32]},
// PLAN-NEXT:    {"name": "arg1", "dtype": "bf16", "shape": [1, 64, 2, 32]},
// PLAN-NEXT:    {"name": "arg2", "dtype": "bf16", "shape": [1, 64, 2, 32]},
// PLAN-NEXT:    {"name": "arg3", "dtype": "bf16", "shape": [2, 1024, 32]}
// PLAN-NEXT:  ],
// PLAN-NEXT:  "buffers": [
// PLAN-NEXT:    {"name": "compress0.0", "dtype": "bf16", "shape": [1, 3, 2, 32]},
// PLAN-NEXT:    {"name": "compress1.0", "dtype": "bf16", "shape": [1, 3, 2, 32]},
// PLAN-NEXT:    {"name": "compressed_attention0.0", "dtype": "bf16", "shape": [1, 64, 2, 2, 32]},
// PLAN-NEXT:    {"name": "compressed_attention0.1", "dtype": "f32", "shape": [1, 64, 2, 2]},
// PLAN-NEXT:    {"name": "window_attention0.0", "dtype": "bf16", "shape": [1, 64, 2, 2, 32]},
// PLAN-NEXT:    {"name": "window_attention0.1", "dtype": "f32", "shape": [1, 64, 2, 2]}
// PLAN-NEXT:  ],
// PLAN-NEXT:  "launches": [
// PLAN-NEXT:    {"kernel": "layer_k0", "label": "compress", "args": ["arg1", "arg3", "compress0.0"]},
// PLAN-NEXT:    {"kernel": "layer_k1", "label": "compress", "args": ["arg2", "arg3", "compress1.0"]},
// PLAN-NEXT:    {"kernel": "layer_k2", "label": "compressed_attention", "args": ["arg0", "compress0.0", "compress1.0", "compressed_attention0.0", "compressed_attention0.1"]},
// PLAN-NEXT:    {"kernel": "layer_k3", "label": "window_attention", "args": ["arg0", "arg1", "arg1", "window_attention0.0", "window_attention0.1"]}
// PLAN-NEXT:  ],
// PLAN-NEXT:  "outputs": ["compressed_attention0.0", "window_attention0.1"]
// PLAN-NEXT:}

// PTX: .visible .entry layer_k0(
// PTX: .visible .entry layer_k3(

// RUNTIME: 4 kernels
// RUNTIME-NEXT: kernel layer_k0
// RUNTIME-NEXT: kernel layer_k1
// RUNTIME-NEXT: kernel layer_k2
// RUNTIME-NEXT: kernel layer_k3

!q = tensor<1x64x4x32xbf16>
!qg = tensor<1x64x2x2x32xbf16>
!kv = tensor<1x64x2x32xbf16>
!w = tensor<2x1024x32xbf16>
!kc = tensor<1x3x2x32xbf16>
!lse = tensor<1x64x2x2xf32>
module attributes {gpu.container_module} {
  func.func @layer(%q: !q, %k: !kv, %v: !kv, %w: !w) -> (!q, tensor<1x64x4xf32>) {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %kc0 = tensor.empty() : !kc
    %kc = tile.launch @layer_kernels::@layer_k0 grid(%c1, %c2, %c1) args(%k, %w : !kv, !w)
        outs(%kc0 : !kc) {label = "compress"}
    %vc0 = tensor.empty() : !kc
    %vc = tile.launch @layer_kernels::@layer_k1 grid(%c1, %c2, %c1) args(%v, %w : !kv, !w)
        outs(%vc0 : !kc) {label = "compress"}
    %qg = tensor.expand_shape %q [[0], [1], [2, 3], [4]] output_shape [1, 64, 2, 2, 32] : !q into !qg
    %o0 = tensor.empty() : !qg
    %l0 = tensor.empty() : !lse
    %o:2 = tile.launch @layer_kernels::@layer_k2 grid(%c1, %c2, %c4) args(%qg, %kc, %vc : !qg, !kc, !kc)
        outs(%o0, %l0 : !qg, !lse) {label = "compressed_attention"}
    %win:2 = tile.launch @layer_kernels::@layer_k3 grid(%c4) args(%qg, %k, %k : !qg, !kv, !kv)
        outs(%o0, %l0 : !qg, !lse) {label = "window_attention"}
    %out = tensor.collapse_shape %o#0 [[0], [1], [2, 3], [4]] : !qg into !q
    %lse = tensor.collapse_shape %win#1 [[0], [1], [2, 3]] : !lse into tensor<1x64x4xf32>
    return %out, %lse : !q, tensor<1x64x4xf32>
  }

  gpu.module @layer_kernels {
    gpu.func @layer_k0(%k: !llvm.ptr<1>, %w: !llvm.ptr<1>, %kc: !llvm.ptr<1>) kernel
        attributes {known_block_size = array<i32: 128, 1, 1>, nsa.shared_bytes = 4096 : i64} {
      gpu.return
    }
    gpu.func @layer_k1(%v: !llvm.ptr<1>, %w: !llvm.ptr<1>, %vc: !llvm.ptr<1>) kernel
        attributes {known_block_size = array<i32: 128, 1, 1>, nsa.shared_bytes = 4096 : i64} {
      gpu.return
    }
    gpu.func @layer_k2(%q: !llvm.ptr<1>, %kc: !llvm.ptr<1>, %vc: !llvm.ptr<1>, %o: !llvm.ptr<1>,
                       %lse: !llvm.ptr<1>) kernel
        attributes {known_block_size = array<i32: 256, 1, 1>} {
      gpu.return
    }
    gpu.func @layer_k3(%q: !llvm.ptr<1>, %k: !llvm.ptr<1>, %v: !llvm.ptr<1>, %o: !llvm.ptr<1>,
                       %lse: !llvm.ptr<1>) kernel
        attributes {known_block_size = array<i32: 128, 1, 1>, nsa.shared_bytes = 0 : i64} {
      gpu.return
    }
  }
}
