#!/usr/bin/env python3
"""GPU smoke test of the whole kernel path: PTX from nsa-translate, loaded
and launched by the runtime (libnsa_runtime.so) on PyTorch tensors and
stream, checked against PyTorch. Exits non-zero on any mismatch or error.

    python3 scripts/gpu/runtime_smoke.py LIBNSA_RUNTIME MANIFEST

The manifest's module (axpy.ptx) lies beside it: scripts/gpu/smoke.sh
makes both on the compiler machine and runs this on the GPU machine.
"""

import ctypes
import os
import sys

import torch

# The ctypes mirror of nsa_runtime.h lives in the package (python/nsa/_runtime.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "python"))
from nsa._runtime import ARG_F32, Arg, Config, tensor_arg  # noqa: E402


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
