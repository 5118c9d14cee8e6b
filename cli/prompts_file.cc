// run_prompts_file: parse prompt lines, keep `parallel` requests in flight, stream their events.
#include "cli/prompts_file.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace lmstream {
namespace {

using json = nlohmann::json;

// Builds the request for one line, or returns an error message.
std::string parse_line(const std::string& line, const Tokenizer& tok, const PromptsFileOptions& o,
                       GenerateRequest& req) {
  req = o.defaults;
  std::string text = line;
  if (!line.empty() && line[0] == '{') {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return "line is not a valid JSON object";
    try {
      if (!j.contains("prompt") || !j["prompt"].is_string())
        return "\"prompt\" (a string) is missing";
      text = j["prompt"].get<std::string>();
      auto& s = req.sampling;
      if (j.contains("max_new_tokens")) req.stop.max_new_tokens = j["max_new_tokens"].get<int>();
      if (j.contains("seed")) s.seed = j["seed"].get<uint64_t>();
      if (j.contains("do_sample")) s.do_sample = j["do_sample"].get<bool>();
      if (j.contains("temperature")) s.temperature = j["temperature"].get<float>();
      if (j.contains("top_k")) s.top_k = j["top_k"].get<int>();
      if (j.contains("top_p")) s.top_p = j["top_p"].get<float>();
      if (j.contains("repetition_penalty"))
        s.repetition_penalty = j["repetition_penalty"].get<float>();
      if (j.contains("stop")) req.stop.stop = j["stop"].get<std::vector<std::string>>();
      if (j.contains("ignore_eos")) req.stop.ignore_eos = j["ignore_eos"].get<bool>();
    } catch (const json::exception& e) {
      return std::string("bad field: ") + e.what();
    }
  }
  req.prompt = tok.encode(text, o.add_bos);
  return "";
}

json final_json(size_t i, const FinalEvent& f) {
  json j = {{"request", i},
            {"finish_reason", finish_reason_name(f.reason)},
            {"generated_text", f.generated_text},
            {"generated_tokens", f.generated_tokens},
            {"input_tokens", f.input_tokens},
            {"seed", f.seed},
            {"preemptions", f.preemptions},
            {"queued_s", f.queued_s},
            {"prefill_s", f.prefill_s},
            {"first_token_s", f.first_token_s},
            {"total_s", f.total_s}};
  if (f.reason == FinishReason::kError) j["error"] = f.error;
  return j;
}

struct Active {
  size_t index;
  std::shared_ptr<RequestStream> stream;
  std::string text;  // text mode without out_dir
  std::unique_ptr<std::ofstream> file;
  int tokens = 0;
};

}  // namespace

PromptsFileSummary run_prompts_file(Scheduler& sched, const Tokenizer& tok, std::istream& prompts,
                                    std::ostream& out, const PromptsFileOptions& o) {
  if (o.parallel < 1) throw std::runtime_error("--parallel must be at least 1");
  if (!o.out_dir.empty() && !std::filesystem::is_directory(o.out_dir))
    throw std::runtime_error("output directory " + o.out_dir + " does not exist");
  const auto t0 = std::chrono::steady_clock::now();
  PromptsFileSummary sum;

  // Every stream's notify wakes this consumer; it never blocks the scheduler thread for long.
  // Shared ownership: the scheduler may call a notify just after this function has returned.
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool signalled = false;
  };
  auto wake = std::make_shared<Wake>();
  auto notify = [wake] {
    {
      std::lock_guard<std::mutex> lk(wake->mu);
      wake->signalled = true;
    }
    wake->cv.notify_one();
  };

  std::vector<std::unique_ptr<Active>> active;
  size_t next_index = 0;
  bool input_done = false;
  std::string line;

  auto finish = [&](Active& a, const FinalEvent& f) {
    sum.requests++;
    sum.generated_tokens += uint64_t(f.generated_tokens);
    if (f.reason == FinishReason::kError) sum.errors++;
    if (o.jsonl) {
      out << final_json(a.index, f).dump() << "\n";
    } else if (a.file) {
      *a.file << f.tail;
      a.file->flush();
      if (!*a.file)
        throw std::runtime_error("cannot write the output of request " + std::to_string(a.index));
    } else {
      out << "### request " << a.index << " (" << finish_reason_name(f.reason);
      if (f.reason == FinishReason::kError) out << ": " << f.error;
      out << ")\n" << a.text << f.tail << "\n";
    }
    out.flush();
  };

  while (true) {
    // Top up to `parallel` requests in flight.
    while (!input_done && int(active.size()) < o.parallel) {
      if (!std::getline(prompts, line)) {
        input_done = true;
        break;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      auto a = std::make_unique<Active>();
      a->index = next_index++;
      if (!o.jsonl && !o.out_dir.empty()) {
        auto path = std::filesystem::path(o.out_dir) / (std::to_string(a->index) + ".txt");
        a->file = std::make_unique<std::ofstream>(path, std::ios::binary);
        if (!*a->file) throw std::runtime_error("cannot create " + path.string());
      }
      GenerateRequest req;
      std::string err = parse_line(line, tok, o, req);
      if (!err.empty()) {
        FinalEvent f;
        f.reason = FinishReason::kError;
        f.error_kind = GenerationErrorKind::kRejected;
        f.error = "prompt line " + std::to_string(a->index + 1) + ": " + err;
        finish(*a, f);
        continue;
      }
      a->stream = sched.submit(std::move(req));
      a->stream->set_notify(notify);
      active.push_back(std::move(a));
    }
    if (active.empty() && input_done) break;

    // Drain whatever every active stream has.
    bool any = false;
    for (size_t k = 0; k < active.size();) {
      Active& a = *active[k];
      StreamEvent ev;
      bool done = false;
      while (!done && a.stream->try_pop(ev)) {
        any = true;
        if (auto* t = std::get_if<TokenEvent>(&ev)) {
          if (o.jsonl) {
            json j = {{"request", a.index}, {"index", a.tokens},     {"id", t->id},
                      {"text", t->text},    {"logprob", t->logprob}, {"special", t->special},
                      {"t", t->t}};
            out << j.dump() << "\n";
          } else if (a.file) {
            *a.file << t->emit;
            a.file->flush();
          } else {
            a.text += t->emit;
          }
          a.tokens++;
        } else {
          finish(a, std::get<FinalEvent>(ev));
          done = true;
        }
      }
      if (done) {
        active.erase(active.begin() + std::ptrdiff_t(k));
      } else {
        ++k;
      }
    }
    if (o.jsonl && any) out.flush();
    if (!any && !active.empty()) {
      std::unique_lock<std::mutex> lk(wake->mu);
      wake->cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return wake->signalled; });
      wake->signalled = false;
    }
  }
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace lmstream
