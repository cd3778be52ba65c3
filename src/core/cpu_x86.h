// x86-64 CPU features that __builtin_cpu_supports cannot name on every compiler that builds meshlm.
#pragma once
#if defined(__x86_64__)
#include <cpuid.h>

namespace meshlm {

// F16C (CPUID leaf 1, ECX bit 29), read directly: clang before 15 rejects __builtin_cpu_supports("f16c"). Callers
// also check "avx", which includes the OS saving the registers. Read once: in a virtual machine CPUID traps to the
// hypervisor, and kernels ask on every matmul (asked each time, it took 15% of MLX 4-bit decode here).
inline bool cpu_has_f16c() {
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  }();
  return has;
}

}  // namespace meshlm
#endif
