// Prometheus metrics with TGI's names (api.md §1.8) plus lmstream's own: time to first token,
// the delay between the engine's token and its bytes on the wire, KV blocks used/free. Thread-
// safe; rendered as Prometheus text format 0.0.4.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "scheduler/scheduler.h"

namespace lmstream::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}
  void observe(double v);
  void render(std::string& out, const std::string& name, const std::string& help) const;
  uint64_t count() const;
  static std::vector<double> duration_buckets();         // 35 geometric from 0.00015 (x1.5)
  static std::vector<double> linear(double max, int n);  // n buckets up to max

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t n_ = 0;
};

struct RequestRecord {
  bool success = false;
  std::string failure;  // validation | overloaded | generation | incomplete | dropped
  double duration_s = 0, validation_s = 0, queue_s = 0, inference_s = 0;
  double ttft_s = -1;
  int input_tokens = -1, generated_tokens = -1, max_new_tokens = -1;
};

class Metrics {
 public:
  Metrics(int max_input_length, int max_total_tokens);
  void record(const RequestRecord& r);
  void count_request();  // tgi_request_count (every generate request, including rejected ones)
  void count_failure(const std::string& err);
  void write_delay(double s) { delay_.observe(s); }  // engine's first token -> its bytes written
  // in_flight: admitted HTTP generation requests (the MAX_CONCURRENT_REQUESTS permits held).
  std::string render(const SchedulerStats& s, int in_flight) const;

 private:
  mutable std::mutex mu_;
  uint64_t request_count_ = 0, success_ = 0;
  std::map<std::string, uint64_t> failures_;
  Histogram duration_, validation_, queue_, inference_, mean_tpt_, generated_, input_, max_new_,
      ttft_, delay_;
};

}  // namespace lmstream::server
