// Writes Llama models with seeded random weights, as GGUF or as a Hugging Face directory, for
// tests and benchmarks. One seed gives the same model in both formats (GGUF Q/K rows permuted to
// the interleaved RoPE layout exactly as llama.cpp's convert_hf_to_gguf.py does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/config.h"
#include "model/dtype.h"

namespace lmstream {

struct TestModelOptions {
  std::string out;              // GGUF file path, or HF directory
  std::string format = "gguf";  // "gguf" | "hf"
  std::string shape = "micro";  // micro | small | tinyllama | llama2-7b
  DType dtype = DType::F32;
  std::string tokenizer;  // SentencePiece tokenizer.model to embed; empty = built-in vocabulary
  uint64_t seed = 0;
  std::optional<bool> gqa;  // false: kv heads = heads; true: force grouped-query attention
  bool tie = false;         // tie output to the embedding
  int hf_shards = 1;        // >1 writes model-0000k-of-0000n.safetensors + index
  // Test-only: token id made the greedy choice at every position (-1 = none), so tests can make
  // e.g. EOS come first, whatever the prompt: column 0 of every embedding row and of this token's
  // output row are set large (the final hidden state's first component is then large and positive).
  // Needs an untied output matrix.
  int32_t favor_token = -1;
};

// The hyper-parameters a shape name stands for (vocab_size left 0). Throws std::invalid_argument.
LlamaConfig test_model_shape(const std::string& shape, std::optional<bool> gqa);

// Writes the model. Throws ModelError (I/O, tokenizer) or std::invalid_argument (bad options).
void make_test_model(const TestModelOptions& opts);

// Meta's Llama-2-chat chat_template as HF's tokenizer_config.json ships it (what the test models
// carry in tokenizer_config.json and GGUF tokenizer.chat_template).
const char* hf_llama2_chat_template();

// Row `row` of the tensor named `hf_name` (Hugging Face name and row order), as generated for
// `seed`; cols values. Exposed so tests can check what the writers stored.
void test_model_row(uint64_t seed, const std::string& hf_name, int64_t row, int64_t cols,
                    float* out);

// Hugging Face row index that GGUF row r of a Q/K matrix with n_head heads comes from.
int64_t hf_row_for_gguf_row(int64_t r, int64_t rows, int n_head);

}  // namespace lmstream
