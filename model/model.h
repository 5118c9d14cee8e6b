// A loaded model: configuration, weight tensors (views into memory-mapped files wherever the file
// layout allows, owned buffers otherwise) and the tokenizer description. Immutable after loading.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/dtype.h"

namespace lmstream {

// Any problem with a model file. what() names the file and the problem.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A 1-D or 2-D weight. 2-D tensors are row-major [rows, cols] in PyTorch order (rows = output
// features); quantized rows are a sequence of blocks. 1-D tensors have rows == 1.
struct Tensor {
  std::string name;
  DType type = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
  size_t row_bytes() const { return dtype_row_bytes(type, cols); }
  size_t nbytes() const { return row_bytes() * size_t(rows); }
  const uint8_t* row(int64_t r) const { return data + size_t(r) * row_bytes(); }
};

struct LayerWeights {
  Tensor attn_norm;  // [dim]
  Tensor wq;         // [n_heads*head_dim, dim]
  Tensor wk;         // [n_kv_heads*head_dim, dim]
  Tensor wv;         // [n_kv_heads*head_dim, dim]
  Tensor wo;         // [dim, n_heads*head_dim]
  Tensor ffn_norm;   // [dim]
  Tensor w_gate;     // [ffn_dim, dim]
  Tensor w_up;       // [ffn_dim, dim]
  Tensor w_down;     // [dim, ffn_dim]
};

// SentencePiece token types, as in GGUF's tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

// Everything needed to build the tokenizer. HF directories give sp_model_path (tokenizer.model);
// GGUF files give the embedded vocabulary (tokens/scores/types). Both may be present.
struct TokenizerSpec {
  std::string sp_model_path;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t unk_id = 0;
  int32_t pad_id = -1;
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;
  std::string chat_template;  // tokenizer_config.json "chat_template" / tokenizer.chat_template
};

// Sampling defaults a model directory may carry (generation_config.json); unset fields stay unset.
struct GenerationDefaults {
  bool has_do_sample = false, do_sample = false;
  bool has_temperature = false;
  float temperature = 1.f;
  bool has_top_p = false;
  float top_p = 1.f;
  bool has_top_k = false;
  int top_k = 0;
  bool has_repetition_penalty = false;
  float repetition_penalty = 1.f;
  int max_new_tokens = 0;  // 0 = not given (max_new_tokens or max_length there)
};

struct LoadOptions {
  // Convert F32/F16/BF16 matrices to this type at load ("--quantize q8_0"). Norms stay F32.
  std::optional<DType> quantize;
};

class MappedFile;  // model/mmap.h

struct Model {
  std::string path;    // what the user gave
  std::string name;    // general.name, or the directory name
  std::string format;  // "gguf" or "hf"
  LlamaConfig cfg;
  Tensor tok_embd;  // [vocab, dim]
  std::vector<LayerWeights> layers;
  Tensor out_norm;  // [dim]
  Tensor output;    // [vocab, dim]; the same view as tok_embd when tie_embeddings
  TokenizerSpec tokenizer;
  GenerationDefaults generation;

  // Storage behind the tensors.
  std::vector<std::shared_ptr<MappedFile>> maps;
  std::vector<std::unique_ptr<uint8_t[]>> owned;
  // Copies made only to be packed (tensor parallelism's column slices of o_proj and down): the
  // engine frees them once its packed matrices (or the packed-weight cache) hold those weights,
  // so each weight is resident once. Their tensors dangle from then on, so a Model whose copies
  // were freed cannot back another Engine (its constructor refuses it).
  struct PackSource {
    std::unique_ptr<uint8_t[]> data;
    size_t bytes = 0;
  };
  mutable std::vector<PackSource> pack_sources;
  mutable bool pack_sources_freed = false;

  size_t weight_bytes() const;  // sum of tensor sizes (tied output counted once)
};

// Loads a GGUF file, or a Hugging Face directory (config.json + *.safetensors + tokenizer.model).
// Throws ModelError naming the file and the problem; never crashes on a bad file.
std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& opts = {});

}  // namespace lmstream
