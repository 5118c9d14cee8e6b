// All-reduce micro-benchmark for tensor parallelism: dist::Comm::allreduce_sum (MPI_Allreduce,
// fp32 sum in place: the engine's two per-layer reductions) on hidden x rows floats, for the
// message sizes of decode (rows = batch) and prefill (rows = chunk tokens). Run under mpirun
// (bench/allreduce.sh); rank 0 prints one JSON line per size: median and p90 microseconds per
// call and the effective bus bandwidth 2(N-1)/N x bytes / time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dist/comm.h"

int main(int argc, char** argv) {
  using namespace lmstream;
  dist::Comm& c = dist::Comm::world();
  std::vector<int> hidden = {2048, 4096, 5120, 8192};
  std::vector<int> rows = {1, 16, 64, 512};
  int iters = argc > 1 ? std::atoi(argv[1]) : 200;
  for (int h : hidden) {
    for (int r : rows) {
      const size_t n = size_t(h) * r;
      std::vector<float> x(n, 1.f);
      const int it = std::max(5, int(int64_t(iters) * 4096 / int64_t(std::max<size_t>(n, 4096))));
      for (int w = 0; w < 3; ++w) c.allreduce_sum(x.data(), n);
      std::vector<double> us;
      for (int i = 0; i < it; ++i) {
        c.barrier(60);
        const auto t0 = std::chrono::steady_clock::now();
        c.allreduce_sum(x.data(), n);
        us.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count());
      }
      // The slowest rank's time is the step's time.
      std::sort(us.begin(), us.end());
      const int64_t med = c.allreduce_max(int64_t(us[us.size() / 2] * 1000));
      const int64_t p90 = c.allreduce_max(int64_t(us[us.size() * 9 / 10] * 1000));
      if (c.rank() == 0) {
        const double bytes = double(n) * 4;
        const double bus = 2.0 * (c.size() - 1) / c.size() * bytes / (double(med) / 1e3) / 1e3;
        std::printf(
            "{\"ranks\": %d, \"hidden\": %d, \"rows\": %d, \"bytes\": %zu, \"median_us\": %.1f, "
            "\"p90_us\": %.1f, \"bus_GBps\": %.3f, \"iters\": %d}\n",
            c.size(), h, r, n * 4, double(med) / 1e3, double(p90) / 1e3, bus, it);
        std::fflush(stdout);
      }
    }
  }
  c.finalize();
  return 0;
}
