// OpenBLAS picks its kernels from the CPU model when it loads. Debian 12's 0.3.21 does not know CPUs newer than it
// (e.g. Xeon family 6 model 207) and falls back to its SSE3 "Prescott" kernels: sgemm runs 3-4x slower than the
// AVX-512 ones the same CPU can run. The choice cannot be changed once the library is loaded, so the process runs
// itself again, once, with OPENBLAS_CORETYPE naming the newest core whose instructions this CPU has.
#pragma once

namespace meshlm {

// Call first in main, before MPI starts. Returns only when no restart is needed (OPENBLAS_CORETYPE already set,
// MESHLM_KEEP_OPENBLAS_CORE=1, OpenBLAS chose a real core, or no better core fits); otherwise execs argv again.
void ensure_openblas_core(char** argv);

}  // namespace meshlm
