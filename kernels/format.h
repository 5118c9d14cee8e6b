// Weight formats as the kernels see them: one constant descriptor per format, chosen once when a
// Matrix is prepared (Matrix::format), so the format-independent driver (matmul.cc) never asks
// which type a matrix holds. A descriptor gives the format's geometry, how to pack a tensor into it
// and unpack a row, and its kernel entry point (which does its own Highway dynamic dispatch).
//
// One file per format defines its descriptor: q8_0.cc, q4_0.cc, float_formats.cc (F32/F16/BF16).
// To add a format (Q4_K, Q6_K, ...): a new kernels/<format>.cc defining a WeightFormat, and one
// line in format.cc's table; the driver does not change.
//
// Must not: hold state (descriptors are immutable constants), depend on a SIMD target, or include
// engine/, scheduler/ or server/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "model/model.h"

namespace lmstream {

class Matrix;
struct QuantActs;

inline constexpr int kGroupRows = 16;  // output rows per kernel task (and per packed group)

// Computes y[m][n] for m < M and the output rows n of groups [g0, g1) of kGroupRows rows (the
// last group of a matrix may be partial). Packed formats read the quantized activations qx,
// in-place formats the float rows x[M][w.cols]. Runs the best target compiled in for this CPU.
using GemmGroupsFn = void (*)(const Matrix& w, const float* x, const QuantActs& qx, int M, float* y,
                              int64_t ldy, int64_t g0, int64_t g1);

struct WeightFormat {
  DType type;
  // true: repacked at prepare into groups of kGroupRows rows (owned by the Matrix) and multiplied
  // with activations quantized to QuantActs. false: the tensor's rows are used in place, with float
  // activations.
  bool packed;
  int64_t block_cols;        // columns per block: the matrix width must be a multiple of it
  size_t group_block_bytes;  // packed bytes per (group, block); 0 for in-place formats
  // Packed formats: writes the groups() x blocks() packed group blocks of t to out
  // (groups() * blocks() * group_block_bytes bytes). nullptr for in-place formats.
  void (*pack)(const Tensor& t, uint8_t* out);
  // Row n of a prepared matrix in fp32: exactly the weights the kernel multiplies by.
  void (*unpack_row)(const Matrix& m, int64_t n, float* out);
  GemmGroupsFn gemm;
};

// The descriptor of weight type t; throws std::invalid_argument for a type without kernels.
const WeightFormat& weight_format(DType t);
// Every format with kernels (for tests).
std::span<const WeightFormat* const> weight_formats();

}  // namespace lmstream
