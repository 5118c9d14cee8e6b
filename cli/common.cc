// Shared CLI pieces.
#include "cli/common.h"

#include <fstream>
#include <stdexcept>

namespace lmstream::cli {

void ModelArgs::add(CLI::App& app, bool required) {
  auto* o = app.add_option("--model,-m", path, "GGUF file or Hugging Face model directory");
  if (required) o->required();
  app.add_option("--quantize", quantize, "convert F32/F16/BF16 weights at load")
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  app.add_option("--threads,-t", threads, "compute threads (default: all cores)");
  app.add_option("--kv-type", kv_type, "KV cache element type")->check(CLI::IsMember({"f16", "f32"}));
}

LoadOptions ModelArgs::load_options() const {
  LoadOptions o;
  if (!quantize.empty()) o.quantize = dtype_from_name(quantize);
  return o;
}

KvType ModelArgs::kv() const { return kv_type == "f32" ? KvType::F32 : KvType::F16; }

Loaded load(const ModelArgs& a) {
  Loaded l;
  l.model = load_model(a.path, a.load_options());
  l.tokenizer = make_tokenizer(l.model->tokenizer);
  return l;
}

size_t resident_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return size_t(std::stoull(line.substr(6))) * 1024;
  }
  return 0;
}

}  // namespace lmstream::cli
