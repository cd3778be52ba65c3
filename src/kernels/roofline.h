// The machine's two ceilings, measured in the same run as the numbers compared with them: streaming read bandwidth
// (decode at small batch reads every weight once per step) and the fp32 sgemm rate (prefill and large batches).
// Both use kernel_pool()'s threads, so they describe what this rank can reach with its share of the host.
#pragma once
#include <cstdint>

namespace meshlm {

// GB/s reading a buffer of `bytes` (far beyond the caches) with the widest loads, the faster of a plain sum and a
// four-rows-at-a-time read; best of `reps` passes each.
double measure_read_bandwidth(int64_t bytes = int64_t(1) << 30, int reps = 5);

// GFLOP/s of OpenBLAS sgemm y (n, d) = x (n, d) · Wᵀ (d, d), W's rows shared by the kernel pool's threads (each
// calling single-threaded OpenBLAS); best of `reps`.
double measure_sgemm_peak(int64_t n = 512, int64_t d = 2048, int reps = 10);

}  // namespace meshlm
