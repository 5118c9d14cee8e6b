// Prometheus metrics (see metrics.h).
#include "server/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace lmstream::server {
namespace {
std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}
}  // namespace

void Histogram::observe(double v) {
  if (!std::isfinite(v)) return;
  std::lock_guard<std::mutex> lk(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++n_;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return n_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lk(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(n_) + "\n";
}

std::vector<double> Histogram::duration_buckets() {
  std::vector<double> b;
  double x = 0.0001;
  for (int i = 0; i < 35; ++i) b.push_back(x *= 1.5);
  return b;
}

std::vector<double> Histogram::linear(double max, int n) {
  std::vector<double> b;
  for (int i = 1; i <= n; ++i) b.push_back(max * i / n);
  return b;
}

Metrics::Metrics(int max_input_length, int max_total_tokens)
    : duration_(Histogram::duration_buckets()),
      validation_(Histogram::duration_buckets()),
      queue_(Histogram::duration_buckets()),
      inference_(Histogram::duration_buckets()),
      mean_tpt_(Histogram::duration_buckets()),
      generated_(Histogram::linear(std::max(1, max_total_tokens), 100)),
      input_(Histogram::linear(std::max(1, max_input_length), 100)),
      max_new_(Histogram::linear(std::max(1, max_total_tokens), 100)),
      ttft_(Histogram::duration_buckets()),
      delay_(Histogram::duration_buckets()) {}

void Metrics::count_request() {
  std::lock_guard<std::mutex> lk(mu_);
  ++request_count_;
}

void Metrics::count_failure(const std::string& err) {
  std::lock_guard<std::mutex> lk(mu_);
  ++failures_[err];
}

void Metrics::record(const RequestRecord& r) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (r.success)
      ++success_;
    else if (!r.failure.empty())
      ++failures_[r.failure];
  }
  if (!r.success) return;
  duration_.observe(r.duration_s);
  validation_.observe(r.validation_s);
  queue_.observe(r.queue_s);
  inference_.observe(r.inference_s);
  if (r.generated_tokens > 0) mean_tpt_.observe(r.inference_s / r.generated_tokens);
  if (r.generated_tokens >= 0) generated_.observe(r.generated_tokens);
  if (r.input_tokens >= 0) input_.observe(r.input_tokens);
  if (r.max_new_tokens >= 0) max_new_.observe(r.max_new_tokens);
  if (r.ttft_s >= 0) ttft_.observe(r.ttft_s);
}

std::string Metrics::render(const SchedulerStats& s, int in_flight) const {
  std::string o;
  auto counter = [&](const char* n, const char* help, uint64_t v) {
    o += std::string("# HELP ") + n + " " + help + "\n# TYPE " + n + " counter\n" + n + " " +
         std::to_string(v) + "\n";
  };
  auto gauge = [&](const char* n, const char* help, double v) {
    o += std::string("# HELP ") + n + " " + help + "\n# TYPE " + n + " gauge\n" + n + " " + num(v) +
         "\n";
  };
  {
    std::lock_guard<std::mutex> lk(mu_);
    counter("tgi_request_count", "Generation requests received", request_count_);
    counter("tgi_request_success", "Generation requests that completed", success_);
    o += "# HELP tgi_request_failure Generation requests that failed, by reason\n# TYPE "
         "tgi_request_failure counter\n";
    for (const char* e : {"validation", "overloaded", "generation", "incomplete", "dropped"}) {
      auto it = failures_.find(e);
      o += std::string("tgi_request_failure{err=\"") + e + "\"} " +
           std::to_string(it == failures_.end() ? 0 : it->second) + "\n";
    }
  }
  gauge("tgi_queue_size", "Requests waiting for the batch", s.waiting);
  gauge("tgi_batch_current_size", "Sequences in the running batch", s.running);
  gauge("tgi_batch_next_size", "Sequences in the last engine step", s.last_batch_size);
  gauge("lmstream_requests_in_flight",
        "Admitted HTTP generation requests (MAX_CONCURRENT_REQUESTS permits held)", in_flight);
  gauge("lmstream_requests_running", "Sequences running in the engine", s.running);
  gauge("lmstream_kv_blocks_used", "KV-cache blocks in use", s.blocks_used);
  gauge("lmstream_kv_blocks_free", "KV-cache blocks free", s.blocks_free);
  counter("lmstream_engine_steps_total", "Engine steps run", uint64_t(s.steps));
  counter("lmstream_preemptions_total", "Sequences preempted for KV space",
          uint64_t(s.preemptions));
  gauge("lmstream_prefix_cache_enabled", "1 when automatic prefix caching is on",
        s.prefix_caching ? 1 : 0);
  counter("lmstream_prefix_cache_queries_total",
          "Prompt tokens of admissions that looked up the prefix cache", s.lookup_tokens);
  counter("lmstream_prefix_cache_hits_total",
          "Prompt tokens whose KV came from the prefix cache instead of being computed",
          s.cached_tokens);
  gauge("lmstream_prefix_cache_hit_ratio", "Prefix-cache hits / queries, in tokens (0 before any)",
        s.lookup_tokens ? double(s.cached_tokens) / double(s.lookup_tokens) : 0.0);
  gauge("lmstream_prefix_cache_blocks", "KV blocks holding cached prefixes (in use or evictable)",
        s.cached_blocks);
  counter("lmstream_prefix_cache_evictions_total",
          "Cached KV blocks evicted (least recently used) to make room", s.evictions);
  duration_.render(o, "tgi_request_duration", "End-to-end request duration (seconds)");
  validation_.render(o, "tgi_request_validation_duration",
                     "Validation and tokenization duration (seconds)");
  queue_.render(o, "tgi_request_queue_duration", "Time in queue (seconds)");
  inference_.render(o, "tgi_request_inference_duration",
                    "Time from admission to the last token (seconds)");
  mean_tpt_.render(o, "tgi_request_mean_time_per_token_duration",
                   "Mean time per generated token (seconds)");
  generated_.render(o, "tgi_request_generated_tokens", "Generated tokens per request");
  input_.render(o, "tgi_request_input_length", "Prompt tokens per request");
  max_new_.render(o, "tgi_request_max_new_tokens", "max_new_tokens per request");
  ttft_.render(o, "lmstream_time_to_first_token_seconds",
               "Time from submission to the engine's first token (seconds)");
  delay_.render(
      o, "lmstream_first_event_write_delay_seconds",
      "Time from the engine's first token to its bytes being written to the socket (seconds)");
  return o;
}

}  // namespace lmstream::server
