#include "kernels/blas_core.h"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace meshlm {

void ensure_openblas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("MESHLM_KEEP_OPENBLAS_CORE")) return;
  const char* core = openblas_get_corename();
  if (!core || (std::strcmp(core, "Prescott") != 0 && std::strcmp(core, "Core2") != 0 &&
                std::strcmp(core, "Nehalem") != 0 && std::strcmp(core, "Sandybridge") != 0))
    return;  // OpenBLAS knows this CPU (or it is one of those)
  const char* better = nullptr;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    better = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    better = "Haswell";
#endif
  if (!better || std::strcmp(better, core) == 0) return;
  setenv("OPENBLAS_CORETYPE", better, 1);
  execv("/proc/self/exe", argv);  // only returns on failure: then carry on with the slower kernels
}

}  // namespace meshlm
