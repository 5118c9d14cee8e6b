// RequestStream: a thread-safe event queue between the scheduler thread (producer) and one
// consumer. push() only queues and notifies; it never waits for the consumer.
#include "scheduler/request.h"

namespace lmstream {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kEosToken:
      return "eos_token";
    case FinishReason::kStopSequence:
      return "stop_sequence";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "error";
}

bool RequestStream::try_pop(StreamEvent& ev) {
  std::lock_guard<std::mutex> lk(mu_);
  if (q_.empty()) return false;
  ev = std::move(q_.front());
  q_.pop_front();
  return true;
}

bool RequestStream::wait_pop(StreamEvent& ev, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_for(lk, timeout, [&] { return !q_.empty(); })) return false;
  ev = std::move(q_.front());
  q_.pop_front();
  return true;
}

void RequestStream::set_notify(std::function<void()> fn) {
  bool pending;
  {
    std::lock_guard<std::mutex> lk(mu_);
    notify_ = fn;
    pending = !q_.empty();
  }
  if (fn && pending) fn();
}

void RequestStream::cancel() {
  std::lock_guard<std::mutex> lk(mu_);
  cancelled_ = true;
}

bool RequestStream::cancelled() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cancelled_;
}

bool RequestStream::finished() const {
  std::lock_guard<std::mutex> lk(mu_);
  return finished_;
}

void RequestStream::push(StreamEvent ev) {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (finished_) return;  // nothing follows the final event
    if (std::holds_alternative<FinalEvent>(ev)) finished_ = true;
    q_.push_back(std::move(ev));
    fn = notify_;
  }
  cv_.notify_all();
  if (fn) fn();
}

}  // namespace lmstream
