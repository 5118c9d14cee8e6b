// `lmstream generate --prompts FILE --parallel N`: many prompts through the rolling batch, each
// streamed to its own output as its tokens exist. The CLI parses flags and calls
// run_prompts_file(); this file knows the prompts-file format and the two output formats. It is
// a CLI input format, so it lives in cli/: it only submits to the Scheduler and reads streams,
// and nothing in scheduler/ or server/ may include it.
//
// Prompts file: one prompt per line (empty lines skipped). A line starting with '{' is a JSON
// object: {"prompt": "...", "max_new_tokens": 32, "seed": 7, "do_sample": true,
// "temperature": 0.8, "top_k": 40, "top_p": 0.9, "repetition_penalty": 1.1, "stop": ["\n"],
// "ignore_eos": false}; fields not given come from the defaults.
// Output, JSON lines (jsonl): one object per token {"request": i, "index": k, "id", "text",
// "logprob", "special", "t"} and one per finished request {"request": i, "finish_reason",
// "generated_text", "generated_tokens", "input_tokens", "seed", "preemptions", "queued_s",
// "prefill_s", "first_token_s", "total_s"[, "error"]}. Requests are numbered from 0 in file order.
// Output, text: with out_dir each request's text streams into OUT_DIR/<i>.txt; without it, each
// request is written to `out` when it finishes, under a "### request i (finish_reason)" header.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>

#include "scheduler/request.h"
#include "scheduler/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace lmstream {

struct PromptsFileOptions {
  int parallel = 8;  // requests in flight at once (>= 1)
  bool jsonl = false;
  std::string out_dir;  // text mode only; must exist
  bool add_bos = true;
  GenerateRequest defaults;  // sampling and stop criteria for every line (its prompt is ignored)
};

struct PromptsFileSummary {
  int requests = 0;
  int errors = 0;  // requests that ended with finish_reason error (bad lines included)
  uint64_t generated_tokens = 0;
  double seconds = 0;
};

// Runs every prompt of `prompts`; writes to `out` (and out_dir). Throws std::runtime_error if an
// output file cannot be written or options are invalid; a bad prompt line only fails its request.
PromptsFileSummary run_prompts_file(Scheduler& sched, const Tokenizer& tok, std::istream& prompts,
                                    std::ostream& out, const PromptsFileOptions& opts);

}  // namespace lmstream
