// comm/async_allreduce.h under mpirun with 2, 3 and 4 ranks: every rank ends with the same bits, equal to the sum
// taken in rank order (of the bf16-rounded values with a bf16 wire), for messages on the one-round path (small, or two
// ranks) and the two-round path (reduce-scatter + all-gather), several in flight at once.
// The test starts mpirun on this same binary with --child; the child checks and exits non-zero on a mismatch.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "comm/async_allreduce.h"
#include "core/dtype.h"
#include "test_support.h"

namespace meshlm {
namespace {

float value(int rank, int64_t i, int op) {  // values whose sum depends on the order of the additions
  return float((rank + 1) * 0.1 + double((i * 7919 + op * 31) % 1000) * 1e-4 + (rank % 2 ? 1e4 : 0));
}

// Returns the number of mismatches seen by this rank.
int child() {
  Group world(MPI_COMM_WORLD);
  const int p = world.size(), me = world.rank();
  int bad = 0;
  for (WireDType wire : {WireDType::kF32, WireDType::kBF16})
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(1000), int64_t(40000)}) {  // 40000 floats: two rounds (p > 2)
      const bool bf16 = wire == WireDType::kBF16, two_rounds = p > 2 && n * 4 > (64 << 10);
      std::vector<std::vector<float>> data(3, std::vector<float>(static_cast<size_t>(n)));
      std::vector<AsyncAllreduce> ops(3);
      for (int op = 0; op < 3; ++op) {  // three in flight at once, as the parts of a layer are
        for (int64_t i = 0; i < n; ++i) data[size_t(op)][size_t(i)] = value(me, i, op);
        ops[size_t(op)].start(world, data[size_t(op)].data(), n, wire, 100 + 2 * op);
      }
      for (bool done = false; !done;) {  // every one tested each time round
        const bool a = ops[0].test(), b = ops[1].test(), c = ops[2].test();
        done = a && b && c;
      }
      for (int op = 0; op < 3; ++op) {
        for (int64_t i = 0; i < n; ++i) {
          float want = 0;
          for (int r = 0; r < p; ++r) {
            const float v = value(r, i, op);
            want = r == 0 ? (bf16 ? bf16_to_f32(f32_to_bf16(v)) : v) : want + (bf16 ? bf16_to_f32(f32_to_bf16(v)) : v);
          }
          if (bf16 && two_rounds) want = bf16_to_f32(f32_to_bf16(want));
          const float got = data[size_t(op)][size_t(i)];
          if (std::memcmp(&got, &want, 4) != 0 && bad++ < 5)
            std::fprintf(stderr, "rank %d n %lld %s op %d [%lld]: got %.9g want %.9g\n", me, (long long)n,
                         wire_dtype_name(wire), op, (long long)i, got, want);
        }
        std::vector<float> all(size_t(n) * size_t(p));  // and the same bits on every rank
        MPI_Allgather(data[size_t(op)].data(), int(n), MPI_FLOAT, all.data(), int(n), MPI_FLOAT, MPI_COMM_WORLD);
        for (int r = 1; r < p; ++r)
          if (std::memcmp(all.data(), &all[size_t(r) * size_t(n)], size_t(n) * 4) != 0) ++bad;
      }
    }
  return bad;
}

TEST(AsyncAllreduce, RankOrderSumSameBitsOnEveryRank) {
  for (int np : {2, 3, 4}) {
    const auto r = test::run_command({"timeout", "-k", "5", "120", "mpirun", "--oversubscribe", "--bind-to", "none",
                                      "-np", std::to_string(np), std::filesystem::read_symlink("/proc/self/exe").string(), "--child"});
    EXPECT_EQ(r.exit_code, 0) << np << " ranks: " << r.err;
  }
}

}  // namespace
}  // namespace meshlm

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--child") {
    MPI_Init(&argc, &argv);
    const int bad = meshlm::child();
    int total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
