// Pieces shared by the GGUF and Hugging Face loaders: per-format entry points, configuration and
// shape validation, and the common post-processing (norms to F32, --quantize, alignment).
#pragma once

#include <memory>
#include <string>

#include "model/model.h"

namespace lmstream {

std::unique_ptr<Model> load_gguf_model(const std::string& path);
// The GGUF loader on bytes in memory (no mapping kept; used by load_gguf_model and the fuzzer).
std::unique_ptr<Model> load_gguf_from_memory(const uint8_t* data, size_t size,
                                             const std::string& path);
std::unique_ptr<Model> load_hf_model(const std::string& dir);

// Rejects zero, negative, inconsistent or absurd hyper-parameters.
void validate_config(const LlamaConfig& cfg, const std::string& file);
// Checks every tensor of m against m.cfg (names the tensor, expected and actual shapes).
void validate_shapes(const Model& m, const std::string& file);
// Norms become owned F32; misaligned in-place tensors are copied; opts.quantize converts matrices.
void finalize_model(Model& m, const LoadOptions& opts);

}  // namespace lmstream
