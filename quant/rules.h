// llama.cpp's per-tensor type rules for `lmstream quantize` (src/llama-quant.cpp,
// llama_tensor_get_type): which DType each tensor of a Llama model gets for a file type such as
// Q4_K_M, as a pure function of the tensor's name, row length and the model's layer/head counts.
// Also the file types themselves (their names and llama.cpp's LLAMA_FTYPE values for
// general.file_type). Types are DType values = ggml type ids, including the K-quant ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/dtype.h"

namespace lmstream::quant {

// ggml type ids of the formats the rules can choose (dtype.h names those it has kernels for).
inline constexpr DType kQ4_0 = DType(2), kQ4_1 = DType(3), kQ5_0 = DType(6), kQ5_1 = DType(7),
                       kQ8_0 = DType(8), kQ2_K = DType(10), kQ3_K = DType(11), kQ4_K = DType(12),
                       kQ5_K = DType(13), kQ6_K = DType(14), kF16 = DType(1), kF32 = DType(0);

// llama.cpp's llama_ftype values (general.file_type) of the file types `quantize --type` offers.
enum class FileType : uint32_t {
  kQ4_0 = 2,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ2_K = 10,
  kQ3_K_M = 12,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
};

// "Q4_K_M" etc. (case-insensitive); nullopt for a name not offered.
std::optional<FileType> file_type_from_name(std::string_view name);
const char* file_type_name(FileType ft);  // "Q4_K_M"
std::vector<FileType> all_file_types();
DType file_type_base(FileType ft);  // the type most tensors get: Q4_K for Q4_K_M, ...

// ggml's name of a type id ("q4_K", "f32", ...) and its block size in elements (0 if unknown).
const char* ggml_type_name(DType t);
int ggml_block_size(DType t);

// What the rules need to know about the model.
struct ModelShape {
  int n_layer = 0;  // llama.block_count (= number of attn_v and ffn_down tensors)
  int n_head = 0;   // for n_gqa = n_head / n_head_kv
  int n_head_kv = 0;
  bool tied = false;  // no output.weight: token_embd is quantized as the output
};

// One tensor as GGUF names it ("blk.3.attn_v.weight", "output.weight", ...).
struct TensorDesc {
  std::string name;
  int n_dims = 2;
  int64_t cols = 0;  // ne[0], the row length (the dimension blocks tile)
};

// The type llama.cpp's llama-quantize gives the tensor (without --pure, --imatrix or overrides):
// 1-D tensors and norms stay F32; the mix of the file type by tensor kind and layer
// (use_more_bits for attn_v/ffn_down in Q4_K_M/Q5_K_M, ...); output.weight Q6_K (Q8_0 for Q8_0
// and rows not a multiple of the base block); then the fallback for rows not a multiple of the
// chosen type's block (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, else F16).
// Throws std::invalid_argument for a blk.N tensor with N outside [0, n_layer).
DType tensor_type(const TensorDesc& t, const ModelShape& m, FileType ft);

// llama.cpp's use_more_bits(i_layer, n_layers).
bool use_more_bits(int i_layer, int n_layers);

}  // namespace lmstream::quant
