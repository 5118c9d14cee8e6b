// `lmstream quantize`: reads an F32/F16/BF16 model (GGUF file or Hugging Face directory), gives
// every tensor the type llama.cpp's rules choose for the file type (rules.h) and writes a GGUF
// file with the metadata llama.cpp's convert script writes (general.*, llama.*, tokenizer.ggml.*,
// tokenizer.chat_template), general.file_type and general.quantization_version 2. The output is
// written to OUT.tmp and renamed over OUT only when complete.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "quant/rules.h"

namespace lmstream::quant {

struct QuantizeOptions {
  std::string in;   // GGUF file or HF directory
  std::string out;  // GGUF file to write
  FileType type = FileType::kQ4_K_M;
  int threads = 1;
  // Progress on this stream (nullptr: none): a bar redrawn in place on a terminal, otherwise a
  // line every 10%.
  std::FILE* progress = stderr;
};

struct QuantizeResult {
  uint64_t file_bytes = 0;       // size of OUT
  uint64_t tensor_bytes = 0;     // bytes of tensor data in OUT
  uint64_t in_tensor_bytes = 0;  // bytes of tensor data read
  uint64_t elements = 0;         // weights (tied output counted once)
  double seconds = 0;
  std::map<std::string, int> tensors_by_type;  // ggml type name -> count
};

// Throws std::runtime_error (a ModelError for bad input) with a message naming the file and the
// problem: a missing or unreadable input, an input that is not F32/F16/BF16, a type this build
// cannot write. No OUT (and no OUT.tmp) is left behind on failure.
QuantizeResult quantize_model(const QuantizeOptions& opts);

}  // namespace lmstream::quant
