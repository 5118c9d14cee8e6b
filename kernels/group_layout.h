// The packed layout of the 32-element, one-scale block formats (Q8_0, Q4_0): groups of kGroupRows
// rows interleaved in 4-byte steps, so that one 512-bit VNNI instruction multiplies 4 codes of each
// of the 16 rows of a group. Per (group g, block b of 32 columns):
//   16 fp16 scales, row r's at byte 2r (32 B); then kChunks chunks of 16 rows x 4 bytes (64 B),
//   row r's 4 bytes at 4r inside a chunk. Byte j of row r in chunk c holds kPlanes codes: plane p
//   is element first_elem(c, p) + j, at bit kCodeBits * p.
//   8-bit codes (Q8_0): 1 plane, chunk c = elements 4c..4c+3, 8 chunks: 544 B.
//   4-bit codes (Q4_0): 2 planes, chunk c = elements 4c..4c+3 (low nibbles) and 16+4c..16+4c+3
//   (high nibbles), 4 chunks: 288 B.
// Codes are unsigned, u = w + kBias, so sum(u * x) = sum(w * x) + kBias * sum(x): the correction
// needs only the activation block sums (QuantActs::s).
//
// Pack, unpack, the descriptor (here) and the tiles (group_tile-inl.h) all address codes through
// GroupLayout, so the layout is written once. A format file supplies the codes and scale of its
// file blocks.
// Must not: depend on a SIMD target or know a file format by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/matmul.h"

namespace lmstream {

template <int kCodeBits_, int32_t kBias_>
struct GroupLayout {
  static constexpr int kCodeBits = kCodeBits_;
  static constexpr int32_t kBias = kBias_;
  static constexpr int kBlockCols = 32;
  static constexpr int kPlanes = 8 / kCodeBits;             // codes per byte
  static constexpr int kPlaneElems = kBlockCols / kPlanes;  // elements per plane of a block
  static constexpr int kLaneBytes = 4;                      // bytes per row per chunk
  static constexpr int kChunks = kPlaneElems / kLaneBytes;
  static constexpr size_t kScaleBytes = 2 * kGroupRows;  // fp16 per row
  static constexpr size_t kChunkBytes = size_t(kLaneBytes) * kGroupRows;
  static constexpr size_t kGroupBlockBytes = kScaleBytes + kChunks * kChunkBytes;
  static constexpr unsigned kCodeMask = (1u << kCodeBits) - 1;
  static_assert(kCodeBits == 4 || kCodeBits == 8);

  static constexpr size_t chunk_offset(int c) { return kScaleBytes + size_t(c) * kChunkBytes; }
  // The element held by byte 0 of a row's lane, plane p, of chunk c.
  static constexpr int first_elem(int c, int p) { return p * kPlaneElems + c * kLaneBytes; }
  // Where element e of row r sits: byte offset in the group block and bit offset in the byte.
  static constexpr size_t code_byte(int r, int e) {
    return chunk_offset(e % kPlaneElems / kLaneBytes) + size_t(kLaneBytes) * r + e % kLaneBytes;
  }
  static constexpr int code_shift(int e) { return kCodeBits * (e / kPlaneElems); }
  static_assert(code_byte(3, first_elem(kChunks - 1, kPlanes - 1) + 2) ==
                chunk_offset(kChunks - 1) + kLaneBytes * 3 + 2);
};

// Packs tensor t (F::Block file blocks) into the group layout of F. F provides Block and
// `static uint16_t codes(const Block&, uint8_t u[32])`: the fp16 scale bits and the 32 codes.
// Rows past the end of the last group are padding: scale 0, codes of weight 0.
template <class F>
void pack_groups(const Tensor& t, uint8_t* out) {
  const int64_t nb = t.cols / F::kBlockCols, ng = (t.rows + kGroupRows - 1) / kGroupRows;
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = out + (size_t(g) * size_t(nb) + size_t(b)) * F::kGroupBlockBytes;
      for (int r = 0; r < kGroupRows; ++r) {
        const int64_t n = g * kGroupRows + r;
        uint8_t u[F::kBlockCols];
        uint16_t d = 0;
        if (n < t.rows) {
          d = F::codes(reinterpret_cast<const typename F::Block*>(t.row(n))[b], u);
        } else {
          std::memset(u, F::kBias, sizeof u);
        }
        std::memcpy(blk + 2 * r, &d, 2);
        for (int c = 0; c < F::kChunks; ++c)
          for (int j = 0; j < F::kLaneBytes; ++j) {
            unsigned v = 0;
            for (int p = 0; p < F::kPlanes; ++p)
              v |= unsigned(u[F::first_elem(c, p) + j]) << (F::kCodeBits * p);
            blk[F::code_byte(r, F::first_elem(c, 0) + j)] = uint8_t(v);
          }
      }
    }
  }
}

// Row n of a matrix packed in F's group layout, in fp32: (u - kBias) * scale.
template <class F>
void unpack_group_row(const Matrix& m, int64_t n, float* out) {
  const int64_t g = n / kGroupRows, nb = m.cols / F::kBlockCols;
  const int r = int(n % kGroupRows);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = m.data + (size_t(g) * size_t(nb) + size_t(b)) * F::kGroupBlockBytes;
    uint16_t h;
    std::memcpy(&h, blk + 2 * r, 2);
    const float d = fp16_to_fp32(h);
    for (int e = 0; e < F::kBlockCols; ++e) {
      const int w = int((blk[F::code_byte(r, e)] >> F::code_shift(e)) & F::kCodeMask) - F::kBias;
      out[b * F::kBlockCols + e] = float(w) * d;
    }
  }
}

// The descriptor of the packed format F (file type `type`, kernel `gemm`): a format file's
// descriptor differs from another's only in these.
template <class F>
constexpr WeightFormat group_format(DType type, GemmGroupsFn gemm) {
  return {
      .type = type,
      .packed = true,
      .block_cols = F::kBlockCols,
      .group_block_bytes = F::kGroupBlockBytes,
      .pack = &pack_groups<F>,
      .unpack_row = &unpack_group_row<F>,
      .gemm = gemm,
  };
}

}  // namespace lmstream
