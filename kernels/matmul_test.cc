// Matrix kernels: packing round trips, agreement with a float64 reference, and bit-identical
// results whatever the batch size, row position, thread count or SIMD target.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/threadpool.h"

namespace lmstream {
namespace {

struct Owned {
  std::vector<uint8_t> bytes;
  Tensor t;
};

Owned make_weights(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  Owned o;
  const size_t rb = dtype_row_bytes(type, cols);
  o.bytes.resize(rb * size_t(rows));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = nd(rng) * (1.f + float(r % 7));
    quantize_row(type, row.data(), o.bytes.data() + rb * size_t(r), cols);
  }
  o.t.type = type;
  o.t.rows = rows;
  o.t.cols = cols;
  o.t.data = o.bytes.data();
  o.t.name = "w";
  return o;
}

std::vector<float> make_acts(int M, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 2.f);
  std::vector<float> x(static_cast<size_t>(M) * static_cast<size_t>(K));
  for (auto& v : x) v = nd(rng);
  return x;
}

// A matrix width of `base` columns for 32-element formats, 8x that for 256-element super-blocks.
int64_t width(DType t, int64_t base) { return dtype_block_elems(t) > 32 ? base * 8 : base; }

class MatmulTypes : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulTypes, PackedRowsRoundTrip) {
  const DType type = GetParam();
  const int64_t K = width(type, 96);
  auto w = make_weights(type, 37, K, 1);  // 37 rows: a partial last group
  Matrix m = Matrix::prepare(w.t);
  std::vector<float> a(static_cast<size_t>(K)), b(static_cast<size_t>(K));
  for (int64_t n = 0; n < w.t.rows; ++n) {
    dequantize_row(type, w.t.row(n), a.data(), K);
    matrix_row_to_f32(m, n, b.data());
    for (int i = 0; i < K; ++i) ASSERT_EQ(a[i], b[i]) << "row " << n << " col " << i;
  }
}

TEST_P(MatmulTypes, MatchesFloat64Reference) {
  const DType type = GetParam();
  const int64_t N = 45, K = width(type, 256);
  const int M = 6;
  auto w = make_weights(type, N, K, 2);
  Matrix m = Matrix::prepare(w.t);
  auto x = make_acts(M, K, 3);
  ThreadPool pool(2);
  QuantActs qx;
  std::vector<float> y(size_t(M) * N);
  const MatmulJob job{&m, y.data(), N};
  matmul(std::span<const MatmulJob>(&job, 1), x.data(), M, qx, pool);
  std::vector<float> wr(K);
  for (int64_t n = 0; n < N; ++n) {
    dequantize_row(type, w.t.row(n), wr.data(), K);
    for (int mm = 0; mm < M; ++mm) {
      double ref = 0, mag = 0;
      if (m.packed) {
        // Exact reference for the quantized path: weights times quantized activations, which
        // must also be within 1e-4 of the float activations (two-term quantization).
        for (int64_t k = 0; k < K; ++k) {
          const double xq = (double(qx.hi[mm * K + k]) * 256.0 + double(qx.lo[mm * K + k])) *
                            double(qx.d[mm * (K / 32) + k / 32]);
          ref += double(wr[k]) * xq;
          mag += std::fabs(double(wr[k]) * xq);
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          ref += double(wr[k]) * double(x[mm * K + k]);
          mag += std::fabs(double(wr[k]) * double(x[mm * K + k]));
        }
      }
      EXPECT_NEAR(y[mm * N + n], ref, 1e-5 * mag + 1e-6) << "n " << n << " m " << mm;
      if (m.packed) {
        double fref = 0;
        for (int64_t k = 0; k < K; ++k) fref += double(wr[k]) * double(x[mm * K + k]);
        EXPECT_NEAR(y[mm * N + n], fref, 1e-4 * mag) << "float activations, n " << n;
      }
    }
  }
}

TEST_P(MatmulTypes, BatchInvariantAndThreadInvariant) {
  const DType type = GetParam();
  const int64_t N = 70, K = width(type, 128);
  const int M = 37;  // several full register tiles of every height, and a partial one
  auto w = make_weights(type, N, K, 4);
  Matrix m = Matrix::prepare(w.t);
  auto x = make_acts(M, K, 5);
  std::vector<float> all(size_t(M) * N);
  {
    ThreadPool pool(2);
    QuantActs qx;
    const MatmulJob job{&m, all.data(), N};
    matmul(std::span<const MatmulJob>(&job, 1), x.data(), M, qx, pool);
  }
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    QuantActs qx;
    for (int mm = 0; mm < M; ++mm) {
      // Row mm alone, and row mm as the last of a batch of mm+1 rows.
      std::vector<float> one(N);
      const MatmulJob j1{&m, one.data(), N};
      matmul(std::span<const MatmulJob>(&j1, 1), x.data() + mm * K, 1, qx, pool);
      std::vector<float> pre(size_t(mm + 1) * N);
      const MatmulJob j2{&m, pre.data(), N};
      matmul(std::span<const MatmulJob>(&j2, 1), x.data(), mm + 1, qx, pool);
      for (int64_t n = 0; n < N; ++n) {
        ASSERT_EQ(one[n], all[mm * N + n]) << "threads " << threads << " row " << mm;
        ASSERT_EQ(pre[mm * N + n], all[mm * N + n]) << "threads " << threads << " row " << mm;
      }
    }
  }
}

TEST_P(MatmulTypes, AllSimdTargetsAgreeBitForBit) {
  const DType type = GetParam();
  const int64_t K = width(type, 160);
  auto w = make_weights(type, 33, K, 6);
  Matrix m = Matrix::prepare(w.t);
  // 13 rows: every tile height of the packed kernels (6 + 6 + 1, 4 + 4 + 4 + 1, ...); 37 rows: many
  // full tiles and a partial one.
  for (int M : {13, 37}) {
    auto x = make_acts(M, K, 7);
    auto res = matmul_all_targets(m, x.data(), M);
    ASSERT_GE(res.size(), 2u) << "expected several compiled targets";
    if (!m.packed) return;  // float dot products may differ across vector widths
    for (size_t t = 1; t < res.size(); ++t)
      ASSERT_EQ(res[t], res[0]) << "target " << t << " M " << M;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTypes,
                         ::testing::Values(DType::Q8_0, DType::Q4_0, DType::F32, DType::F16,
                                           DType::BF16, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                           DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                           DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(ThreadPool, RunsEveryIndexOnce) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(1000, 7, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) hits[i].fetch_add(1);
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

}  // namespace
}  // namespace lmstream
