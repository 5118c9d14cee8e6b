// Matrix-kernel micro-benchmark: one matmul call (kernels/matmul.h) of a packed weight matrix with
// M activation rows, on one thread, for the formats and shapes of a TinyLlama-sized layer (K 2048
// -> N 5632, the gate/up projection; K 5632 -> N 2048, down). M = 1 is decode, 16 a rolling batch,
// 512 a prefill chunk. Reports effective multiply-accumulates per second (counter GMAC/s). For
// kernel work: the engine benchmarks (bench/engine.sh) are what results are judged on.
// Usage: build/bench/matmul_bench [--benchmark_filter=Q4_K] [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/threadpool.h"
#include "model/dtype.h"

namespace {
using namespace lmstream;

struct Weights {
  std::vector<uint8_t> bytes;
  Tensor t;
  Matrix m;
};

Weights& weights(DType type, int64_t rows, int64_t cols) {
  static std::vector<std::unique_ptr<Weights>> cache;
  for (auto& w : cache)
    if (w->t.type == type && w->t.rows == rows && w->t.cols == cols) return *w;
  auto w = std::make_unique<Weights>();
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  const size_t rb = dtype_row_bytes(type, cols);
  w->bytes.resize(rb * size_t(rows));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = nd(rng);
    quantize_row(type, row.data(), w->bytes.data() + rb * size_t(r), cols);
  }
  w->t.type = type;
  w->t.rows = rows;
  w->t.cols = cols;
  w->t.data = w->bytes.data();
  w->t.name.assign(1, 'w');  // not = "w": GCC 12 -Wrestrict false positive
  w->m = Matrix::prepare(w->t);
  cache.push_back(std::move(w));
  return *cache.back();
}

void BM_Matmul(benchmark::State& st, DType type, int64_t K, int64_t N) {
  const int M = int(st.range(0));
  Weights& w = weights(type, N, K);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.f, 2.f);
  std::vector<float> x(size_t(M) * size_t(K)), y(size_t(M) * size_t(N));
  for (auto& v : x) v = nd(rng);
  ThreadPool pool(1);
  QuantActs qx;
  const MatmulJob job{&w.m, y.data(), N};
  for (auto _ : st) {
    matmul(std::span<const MatmulJob>(&job, 1), x.data(), M, qx, pool);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GMAC/s"] = benchmark::Counter(double(M) * double(K) * double(N) * 1e-9,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

#define LMS_MATMUL_BENCH(T)                                         \
  BENCHMARK_CAPTURE(BM_Matmul, T##_2048x5632, DType::T, 2048, 5632) \
      ->Arg(1)                                                      \
      ->Arg(16)                                                     \
      ->Arg(512)                                                    \
      ->Unit(benchmark::kMillisecond);                              \
  BENCHMARK_CAPTURE(BM_Matmul, T##_5632x2048, DType::T, 5632, 2048) \
      ->Arg(1)                                                      \
      ->Arg(16)                                                     \
      ->Arg(512)                                                    \
      ->Unit(benchmark::kMillisecond)

LMS_MATMUL_BENCH(Q8_0);
LMS_MATMUL_BENCH(Q4_K);
LMS_MATMUL_BENCH(Q6_K);
LMS_MATMUL_BENCH(F16);

}  // namespace

BENCHMARK_MAIN();
