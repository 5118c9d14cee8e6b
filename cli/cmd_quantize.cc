// `lmstream quantize IN OUT --type Q4_K_M`: converts an F32/F16/BF16 GGUF file or Hugging Face
// directory to a quantized GGUF file with llama.cpp's per-tensor type rules (quant/).
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "cli/command.h"
#include "quant/quantize.h"

namespace {

struct Args {
  std::string in, out, type;
  int threads = 0;
  bool quiet = false;
};

std::string type_list() {
  std::string s;
  for (auto ft : lmstream::quant::all_file_types())
    s += std::string(s.empty() ? "" : "|") + lmstream::quant::file_type_name(ft);
  return s;
}

lmstream::cli::Register reg(
    "quantize", "convert an F32/F16/BF16 GGUF or HF model to a quantized GGUF (llama.cpp's mixes)",
    [](CLI::App& sub) {
      auto a = std::make_shared<Args>();
      sub.add_option("in", a->in, "F32/F16/BF16 GGUF file or Hugging Face directory")->required();
      sub.add_option("out", a->out, "GGUF file to write (written to OUT.tmp, then renamed)")
          ->required();
      sub.add_option("--type", a->type, type_list())->required();
      sub.add_option("--threads,-t", a->threads, "threads")->default_str("all cores");
      sub.add_flag("--quiet,-q", a->quiet, "no progress bar");
      sub.callback([a] {
        namespace q = lmstream::quant;
        auto ft = q::file_type_from_name(a->type);
        if (!ft) {
          std::fprintf(stderr, "error: unknown --type '%s' (one of %s)\n", a->type.c_str(),
                       type_list().c_str());
          throw CLI::RuntimeError(2);
        }
        q::QuantizeOptions o;
        o.in = a->in;
        o.out = a->out;
        o.type = *ft;
        o.threads =
            a->threads > 0 ? a->threads : int(std::max(1u, std::thread::hardware_concurrency()));
        o.progress = a->quiet ? nullptr : stderr;
        q::QuantizeResult r = q::quantize_model(o);
        std::string types;
        for (const auto& [name, n] : r.tensors_by_type)
          types += (types.empty() ? "" : ", ") + std::to_string(n) + " " + name;
        std::printf(
            "wrote %s: %s, %.2f MiB (%.2f bits per weight; input tensors %.2f MiB) in %.1f s; "
            "tensors: %s\n",
            a->out.c_str(), q::file_type_name(*ft), double(r.file_bytes) / (1 << 20),
            r.elements ? 8.0 * double(r.tensor_bytes) / double(r.elements) : 0.0,
            double(r.in_tensor_bytes) / (1 << 20), r.seconds, types.c_str());
      });
    });

}  // namespace
