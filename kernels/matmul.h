// Matrix products of weights with activation rows: y[m][n] = sum_k W[n][k] * x[m][k].
//
// Each weight type has a format descriptor (format.h), chosen once by Matrix::prepare. Q8_0 and
// Q4_0 weights are repacked once, at load, into groups of 16 rows interleaved in 4-byte steps (same
// bytes per weight as the file; group_layout.h) so that one VNNI instruction computes 16 output
// rows at once; activations are quantized per 32-block into two int8 terms (see QuantActs) and the
// integer dot products are exact. F32/F16/BF16 weights are used in place with float dot products.
//
// Batch invariance: every output element is computed by the same sequence of operations whatever
// the number of activation rows, their position in the batch, or the thread that computes them. K
// is never split across threads and each SIMD lane is one output row, so no reduction order
// changes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/format.h"
#include "model/model.h"

namespace lmstream {

class ThreadPool;

// Activation rows quantized for integer dot products, in two int8 terms per element:
// x ~= d * (hi + lo / 256), hi = round(x / d) with d = amax / 127 per 32-block, lo the rounding
// residual quantized to 1/256 of a step. Products with int8 weights stay exact integers
// (hi * 256 + lo fits easily in int32) and the activation error is ~250x below single int8.
struct QuantActs {
  int rows = 0;
  int64_t cols = 0;
  std::vector<int8_t> hi;  // [rows][cols]
  std::vector<int8_t> lo;  // [rows][cols]
  std::vector<float> d;    // [rows][cols/32]: the block's scale divided by 256
  std::vector<int32_t> s;  // [rows][cols/32]: sum over the block of hi * 256 + lo
};

class Matrix {
 public:
  Matrix() = default;
  // Selects t's weight format. Packed formats (Q8_0, Q4_0) are copied into storage, after which
  // t's pages are no longer read (the caller may release them); float formats use t's rows in
  // place, so t must outlive the matrix.
  static Matrix prepare(const Tensor& t);
  // Bytes the packed copy of t takes (0 for formats used in place).
  static size_t packed_bytes(const Tensor& t);
  // As prepare, packing into storage (at least packed_bytes(t), 64-byte aligned), which the matrix
  // keeps alive (e.g. an aliasing pointer into a shared arena).
  static Matrix prepare(const Tensor& t, std::shared_ptr<uint8_t> storage);
  // As prepare, for a packed format whose storage already holds what prepare(t, storage) would
  // write there (a packed-weight cache); t's rows are not read. Float formats: as prepare(t).
  static Matrix prepare_packed(const Tensor& t, std::shared_ptr<uint8_t> storage);

  const WeightFormat* format = nullptr;  // set by prepare
  DType type = DType::F32;
  int64_t rows = 0, cols = 0;
  bool packed = false;               // format->packed
  const uint8_t* data = nullptr;     // packed groups, or the tensor's rows in place
  std::shared_ptr<uint8_t> storage;  // owns packed data
  size_t bytes = 0;

  int64_t groups() const { return (rows + kGroupRows - 1) / kGroupRows; }
  int64_t blocks() const { return cols / 32; }
  size_t group_block_bytes() const { return format->group_block_bytes; }  // 0 when in place
};

// Dequantizes (unpacks) row n of a packed matrix into fp32; for tests and embeddings of tied
// outputs.
void matrix_row_to_f32(const Matrix& m, int64_t n, float* out);

void quantize_acts(const float* x, int rows, int64_t cols, QuantActs& out, ThreadPool* pool);

// Most jobs one matmul call takes. Their task offsets live in a fixed array on the stack, so a call
// allocates nothing on the decode path; the engine's largest call fuses 3 (q, k, v).
inline constexpr size_t kMaxMatmulJobs = 8;

struct MatmulJob {
  const Matrix* w;
  float* y;  // [M][ldy], columns [0, w->rows) written
  int64_t ldy;
};

// Runs every job (at most kMaxMatmulJobs) over the same input rows x[M][K] (row stride K) in one
// parallel dispatch.
// qx is scratch for the quantized activations.
void matmul(std::span<const MatmulJob> jobs, const float* x, int M, QuantActs& qx,
            ThreadPool& pool);

// Names of the SIMD targets compiled in and the one chosen at run time (for logs and tests).
const char* kernels_target_name();

// For tests: runs the matrix's kernel on every compiled target that this CPU supports and
// returns one result vector per target (each [M][rows]).
std::vector<std::vector<float>> matmul_all_targets(const Matrix& w, const float* x, int M);

}  // namespace lmstream
