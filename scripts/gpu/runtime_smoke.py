#!/usr/bin/env python3
"""GPU smoke test of the whole kernel path: PTX from nsa-translate, loaded
and launched by the runtime (libnsa_runtime.so) on PyTorch tensors and
stream, checked against PyTorch. Exits non-zero on any mismatch or error.

    python3 scripts/gpu/runtime_smoke.py LIBNSA_RUNTIME MANIFEST

The manifest's module (axpy.ptx) lies beside it: scripts/gpu/smoke.sh
makes both on the compiler machine and runs this on the GPU machine.
"""

import ctypes
import sys

import torch

MAX_RANK = 8
DTYPE_F32 = 2
ARG_TENSOR, ARG_F32 = 0, 3


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32), ("shape", ctypes.c_int64 * MAX_RANK),
                ("strides", ctypes.c_int64 * MAX_RANK)]


class Arg(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int32), ("reserved", ctypes.c_int32),
                ("tensor", Tensor), ("int_value", ctypes.c_int64),
                ("float_value", ctypes.c_double)]


class Config(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in
                ("l", "d", "l_sel", "n", "init", "local", "w")] + \
               [("scale", ctypes.c_double)] + \
               [(name, ctypes.c_int64) for name in ("G", "Dk", "Dv")] + \
               [("dtype", ctypes.c_int32), ("reserved", ctypes.c_int32)]


def tensor_arg(t):
    arg = Arg(kind=ARG_TENSOR)
    arg.tensor.data = t.data_ptr()
    arg.tensor.dtype = DTYPE_F32
    arg.tensor.rank = t.dim()
    for i, (size, stride) in enumerate(zip(t.shape, t.stride())):
        arg.tensor.shape[i], arg.tensor.strides[i] = size, stride
    return arg


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.nsa_last_error_message.restype = ctypes.c_char_p
    manifest = ctypes.c_void_p()
    status = lib.nsa_manifest_load(sys.argv[2].encode(), ctypes.byref(manifest))
    if status:
        sys.exit(f"manifest: {lib.nsa_last_error_message().decode()}")

    x = torch.randn(1024, device="cuda")
    y = torch.randn(1024, device="cuda")
    expected = 2.5 * x + y
    args = (Arg * 3)(tensor_arg(x), tensor_arg(y), Arg(kind=ARG_F32,
                                                        float_value=2.5))
    stream = torch.cuda.current_stream().cuda_stream
    status = lib.nsa_launch(manifest, b"axpy", ctypes.byref(Config()), args, 3,
                            ctypes.c_void_p(stream))
    if status:
        sys.exit(f"launch: {lib.nsa_last_error_message().decode()}")
    torch.cuda.synchronize()
    error = (y - expected).abs().max().item()
    print(f"{torch.cuda.get_device_name()}: axpy through nsa-translate PTX and "
          f"the runtime, max |error| = {error}")

    # A call the manifest forbids must be refused with a message.
    bad = (Arg * 3)(tensor_arg(x), tensor_arg(y[:512]), args[2])
    status = lib.nsa_launch(manifest, b"axpy", ctypes.byref(Config()), bad, 3,
                            ctypes.c_void_p(stream))
    print(f"mismatched y refused: status {status}: "
          f"{lib.nsa_last_error_message().decode()}")
    lib.nsa_manifest_destroy(manifest)
    if error > 1e-5 or status == 0:
        sys.exit("FAILED")
    print("PASSED")


if __name__ == "__main__":
    main()
