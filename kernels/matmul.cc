// The format-independent matmul driver: prepares a Matrix with its weight format's descriptor
// (format.h), quantizes activation rows for the packed formats (two int8 terms,
// Highway-dispatched), and splits the jobs of one call into tasks of 16 output rows across the
// thread pool. See matmul.h for the batch-invariance rule. Must not: test a weight's DType or know
// a format's layout or tile (those live in the format's file: q8_0.cc, q4_0.cc, float_formats.cc),
// or split K across tasks.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "kernels/matmul.h"

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Two-term int8 quantization of activation rows r0..r1 (see QuantActs).
void QuantizeRows(const float* x, int64_t cols, QuantActs* out, int64_t r0, int64_t r1) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int64_t N = int64_t(hn::Lanes(df));
  const int64_t nb = cols / 32;
  const auto k256 = hn::Set(df, 256.f), lo_max = hn::Set(df, 127.f), lo_min = hn::Set(df, -127.f);
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + r * cols + b * 32;
      auto mx = hn::Zero(df);
      for (int64_t i = 0; i < 32; i += N) mx = hn::Max(mx, hn::Abs(hn::LoadU(df, xb + i)));
      const float amax = hn::GetLane(hn::MaxOfLanes(df, mx));
      const float d = amax / 127.f;
      const auto vid = hn::Set(df, d != 0.f ? 1.f / d : 0.f);
      int8_t* qh = out->hi.data() + r * cols + b * 32;
      int8_t* ql = out->lo.data() + r * cols + b * 32;
      auto sum = hn::Zero(di);
      for (int64_t i = 0; i < 32; i += N) {
        const auto v = hn::Mul(hn::LoadU(df, xb + i), vid);  // |v| <= 127
        const auto hf = hn::Round(v);
        const auto lf = hn::Min(hn::Max(hn::Round(hn::Mul(hn::Sub(v, hf), k256)), lo_min), lo_max);
        const auto h = hn::ConvertTo(di, hf), l = hn::ConvertTo(di, lf);
        hn::StoreU(hn::DemoteTo(d8, h), d8, qh + i);
        hn::StoreU(hn::DemoteTo(d8, l), d8, ql + i);
        sum = hn::Add(sum, hn::Add(hn::ShiftLeft<8>(h), l));
      }
      out->d[r * nb + b] = d / 256.f;
      out->s[r * nb + b] = hn::GetLane(hn::SumOfLanes(di, sum));
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/threadpool.h"

namespace lmstream {

HWY_EXPORT(QuantizeRows);

namespace {
std::shared_ptr<uint8_t> alloc_aligned(size_t n) {
  void* p = std::aligned_alloc(64, (n + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
}
}  // namespace

size_t Matrix::packed_bytes(const Tensor& t) {
  const WeightFormat& f = weight_format(t.type);
  if (!f.packed) return 0;
  const int64_t groups = (t.rows + kGroupRows - 1) / kGroupRows;
  return size_t(groups) * size_t(t.cols / 32) * f.group_block_bytes;
}

Matrix Matrix::prepare(const Tensor& t) { return prepare(t, nullptr); }

Matrix Matrix::prepare(const Tensor& t, std::shared_ptr<uint8_t> storage) {
  Matrix m = prepare_packed(t, std::move(storage));
  if (m.packed) m.format->pack(t, m.storage.get());
  return m;
}

Matrix Matrix::prepare_packed(const Tensor& t, std::shared_ptr<uint8_t> storage) {
  Matrix m;
  m.format = &weight_format(t.type);
  m.type = t.type;
  m.rows = t.rows;
  m.cols = t.cols;
  if (t.cols % m.format->block_cols != 0)
    throw std::invalid_argument("matrix " + t.name + ": width is not a multiple of its block size");
  m.packed = m.format->packed;
  if (!m.packed) {
    m.data = t.data;
    m.bytes = t.nbytes();
    return m;
  }
  m.bytes = size_t(m.groups()) * size_t(m.blocks()) * m.format->group_block_bytes;
  if (storage && reinterpret_cast<uintptr_t>(storage.get()) % 64 != 0)
    throw std::invalid_argument("matrix " + t.name + ": packed storage is not 64-byte aligned");
  m.storage = storage ? std::move(storage) : alloc_aligned(m.bytes);
  m.data = m.storage.get();
  return m;
}

void matrix_row_to_f32(const Matrix& m, int64_t n, float* out) { m.format->unpack_row(m, n, out); }

void quantize_acts(const float* x, int rows, int64_t cols, QuantActs& out, ThreadPool* pool) {
  if (cols % 32 != 0) throw std::invalid_argument("quantize_acts: cols must be a multiple of 32");
  const int64_t nb = cols / 32;
  out.rows = rows;
  out.cols = cols;
  const size_t n = size_t(rows) * size_t(cols);
  if (out.hi.size() < n) {
    out.hi.resize(n);
    out.lo.resize(n);
  }
  if (out.d.size() < size_t(rows) * size_t(nb)) {
    out.d.resize(size_t(rows) * size_t(nb));
    out.s.resize(size_t(rows) * size_t(nb));
  }
  auto work = [&](int64_t r0, int64_t r1) {
    HWY_DYNAMIC_DISPATCH(QuantizeRows)(x, cols, &out, r0, r1);
  };
  if (pool && rows >= 8)
    pool->parallel_for(rows, std::max<int64_t>(1, rows / (pool->size() * 4)), work);
  else
    work(0, rows);
}

void matmul(std::span<const MatmulJob> jobs, const float* x, int M, QuantActs& qx,
            ThreadPool& pool) {
  if (jobs.empty() || M <= 0) return;
  const int64_t K = jobs[0].w->cols;
  bool any_q = false;
  for (const auto& j : jobs) {
    if (j.w->cols != K) throw std::invalid_argument("matmul: jobs disagree on input width");
    any_q |= j.w->packed;
  }
  if (any_q) quantize_acts(x, M, K, qx, &pool);
  // One task = one group of 16 output rows of one job.
  int64_t total = 0;
  int64_t starts[kMaxMatmulJobs];
  if (jobs.size() > kMaxMatmulJobs)
    throw std::invalid_argument("matmul: at most " + std::to_string(kMaxMatmulJobs) + " jobs");
  for (size_t i = 0; i < jobs.size(); ++i) {
    starts[i] = total;
    total += jobs[i].w->groups();
  }
  auto run = [&](int64_t t0, int64_t t1) {
    for (size_t i = 0; i < jobs.size() && t0 < t1; ++i) {
      const int64_t s = starts[i], e = s + jobs[i].w->groups();
      if (t0 >= e) continue;
      const int64_t a = t0 - s, b = std::min(t1, e) - s;
      const MatmulJob& j = jobs[i];
      j.w->format->gemm(*j.w, x, qx, M, j.y, j.ldy, a, b);
      t0 = s + b;
    }
  };
  // Small products are not worth waking other threads for.
  double work = 0;
  for (const auto& j : jobs) work += double(j.w->rows) * double(K) * double(M);
  if (work < double(1 << 20)) {
    run(0, total);
    return;
  }
  const int64_t chunk = std::max<int64_t>(1, total / (int64_t(pool.size()) * 8));
  pool.parallel_for(total, chunk, run);
}

const char* kernels_target_name() {
  return hwy::TargetName(hwy::SupportedTargets() & HWY_TARGETS &
                         -(hwy::SupportedTargets() & HWY_TARGETS));
}

std::vector<std::vector<float>> matmul_all_targets(const Matrix& w, const float* x, int M) {
  std::vector<std::vector<float>> out;
  QuantActs qx;
  quantize_acts(x, M, w.cols, qx, nullptr);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    std::vector<float> y(size_t(M) * size_t(w.rows));
    w.format->gemm(w, x, qx, M, y.data(), w.rows, 0, w.groups());
    out.push_back(std::move(y));
  }
  hwy::SetSupportedTargetsForTest(0);
  return out;
}

}  // namespace lmstream
#endif  // HWY_ONCE
