# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "NSA"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.nsa_obj_root, "test")

llvm_config.with_system_environment(["HOME", "TMP", "TEMP"])
llvm_config.use_default_substitutions()
# FileCheck, not and count live beside the LLVM tools, not on PATH.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# ptxas is optional (the CUDA toolkit); tests that assemble PTX need it.
if config.ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", config.ptxas))

config.substitutions.append(("%python", config.python_executable))
# Where nsa-opt and nsa-translate are (test/Python passes it as $NSA_BIN_DIR).
config.substitutions.append(("%nsa_bin_dir", config.nsa_tools_dir))

tool_dirs = [config.nsa_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(
    ["mlir-runner", "nsa-cpu-check", "nsa-manifest-check", "nsa-opt",
     "nsa-reference-test", "nsa-runtime-test", "nsa-translate"],
    tool_dirs)

# mlir-runner's print and memref-copy helpers (printMemrefF32, memrefCopy)
# live in LLVM's lib directory, beside bin/.
llvm_lib_dir = os.path.join(os.path.dirname(config.llvm_tools_dir), "lib")
for lib in ["mlir_runner_utils", "mlir_c_runner_utils"]:
    config.substitutions.append(
        ("%" + lib, os.path.join(llvm_lib_dir, "lib" + lib + ".so")))

# The PyTorch package's tests (test/Python) need Debian's python3-torch under
# /usr/bin/python3, which scripts/setup.sh installs.
import subprocess
try:
    if subprocess.run(["/usr/bin/python3", "-c", "import torch"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
        config.available_features.add("torch")
except OSError:
    pass
