// RUN: not env NSA_PTXAS=%t.no-such-ptxas nsa-translate --nsa-to-ptx \
// RUN:   %S/Inputs/axpy.mlir --nsa-cubin=%t.cubin -o %t.ptx 2>&1 \
// RUN:   | FileCheck %s --check-prefix=MISSING
// RUN: not env NSA_PTXAS=false-ptxas.sh nsa-translate --nsa-to-ptx \
// RUN:   %S/Inputs/axpy.mlir --nsa-cubin=%t.cubin -o %t.ptx 2>&1 \
// RUN:   | FileCheck %s --check-prefix=MISSING-REL
// RUN: printf '#!/bin/sh\necho "ptxas fatal: Unresolved extern function" >&2\nexit 3\n' > %t.fail.sh
// RUN: chmod +x %t.fail.sh
// RUN: not env NSA_PTXAS=%t.fail.sh nsa-translate --nsa-to-ptx \
// RUN:   %S/Inputs/axpy.mlir --nsa-cubin=%t.cubin -o %t.ptx 2>&1 \
// RUN:   | FileCheck %s --check-prefix=FAILS

// A cubin that cannot be made is an error that says why, without the CUDA
// toolkit: $NSA_PTXAS names no executable, or ptxas fails (its exit status
// and its message are reported).

// MISSING: error: --nsa-cubin: $NSA_PTXAS ('{{.*}}no-such-ptxas') is not an executable
// MISSING-REL: error: --nsa-cubin: $NSA_PTXAS ('false-ptxas.sh') is not an executable
// FAILS: error: --nsa-cubin: {{.*}}fail.sh failed (exit 3): ptxas fatal: Unresolved extern function
