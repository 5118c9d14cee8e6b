// Hyper-parameters of a Llama-architecture model, whatever file format it came from.
#pragma once

#include <cstdint>
#include <string>

namespace lmstream {

// How Q and K rows pair up for rotary embedding.
//  kInterleaved: Meta's original and GGUF's layout, pairs (x[2i], x[2i+1]).
//  kHalfSplit:   Hugging Face layout, pairs (x[i], x[i + head_dim/2]).
enum class RopeLayout { kInterleaved, kHalfSplit };

struct LlamaConfig {
  int dim = 0;         // hidden_size
  int n_layers = 0;    // num_hidden_layers
  int n_heads = 0;     // num_attention_heads
  int n_kv_heads = 0;  // num_key_value_heads (== n_heads without GQA)
  int head_dim = 0;    // dim / n_heads unless the file says otherwise
  int ffn_dim = 0;     // intermediate_size
  int vocab_size = 0;
  int max_pos = 0;  // max_position_embeddings / llama.context_length
  float rms_eps = 1e-5f;
  float rope_theta = 10000.f;
  bool tie_embeddings = false;
  RopeLayout rope_layout = RopeLayout::kInterleaved;
};

}  // namespace lmstream
