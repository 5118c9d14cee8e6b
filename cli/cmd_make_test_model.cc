// `lmstream make-test-model OUT`: writes a Llama model with seeded random weights (GGUF or HF).
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "cli/command.h"
#include "model/testgen.h"

namespace {

struct Args {
  lmstream::TestModelOptions o;
  std::string dtype = "f32";
  bool gqa = false, no_gqa = false;
};

lmstream::cli::Register reg(
    "make-test-model", "write a Llama model with random weights (for tests/benchmarks)",
    [](CLI::App& sub) {
      auto a = std::make_shared<Args>();
      sub.add_option("out", a->o.out, "output GGUF file or HF directory")->required();
      sub.add_option("--format", a->o.format, "gguf or hf")->check(CLI::IsMember({"gguf", "hf"}));
      sub.add_option("--shape", a->o.shape,
                     "micro, micro-k (widths multiples of 256), small, tinyllama or llama2-7b")
          ->check(CLI::IsMember({"micro", "micro-k", "small", "tinyllama", "llama2-7b"}));
      sub.add_option("--dtype", a->dtype,
                     "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k or "
                     "q6_k (hf: float types only)")
          ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                 "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"}));
      sub.add_option("--tokenizer", a->o.tokenizer,
                     "SentencePiece tokenizer.model to embed (default: built-in)");
      sub.add_option("--seed", a->o.seed, "random seed");
      sub.add_option("--shards", a->o.hf_shards, "hf: number of safetensors shards");
      auto* g = sub.add_flag("--gqa", a->gqa, "force grouped-query attention");
      sub.add_flag("--no-gqa", a->no_gqa, "as many KV heads as heads")->excludes(g);
      sub.add_flag("--tie", a->o.tie, "tie the output matrix to the embedding");
      sub.add_option(
             "--favor-token", a->o.favor_token,
             "test-only: make this token id the greedy choice at every position (e.g. 2, EOS, "
             "for finish-reason tests); not with --tie")
          ->default_str("off")
          ->check(CLI::NonNegativeNumber);
      sub.callback([a] {
        a->o.dtype = *lmstream::dtype_from_name(a->dtype);
        if (a->gqa) a->o.gqa = true;
        if (a->no_gqa) a->o.gqa = false;
        auto t0 = std::chrono::steady_clock::now();
        lmstream::make_test_model(a->o);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "wrote %s (%s, %s, %s) in %.1f s\n", a->o.out.c_str(),
                     a->o.format.c_str(), a->o.shape.c_str(), a->dtype.c_str(), s);
      });
    });

}  // namespace
