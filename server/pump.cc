// Engine-to-socket event pump (see pump.h).
#include "server/pump.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace lmstream::server {

namespace asio = boost::asio;

struct Pump::Timer {
  explicit Timer(asio::any_io_executor ex) : t(ex) {}
  asio::steady_timer t;
};

void Pump::start(std::shared_ptr<Exchange> ex, std::shared_ptr<RequestStream> rs, PumpHooks hooks) {
  auto p = std::make_shared<Pump>(std::move(ex), std::move(rs), std::move(hooks));
  p->begin();
}

Pump::Pump(std::shared_ptr<Exchange> ex, std::shared_ptr<RequestStream> rs, PumpHooks hooks)
    : ex_(std::move(ex)),
      rs_(std::move(rs)),
      hooks_(std::move(hooks)),
      last_event_(Clock::now()),
      timer_(std::make_unique<Timer>(ex_->executor())) {}

Pump::~Pump() = default;

void Pump::begin() {
  self_ = shared_from_this();
  std::weak_ptr<Pump> weak = self_;
  ex_->on_client_gone([weak] {
    if (auto p = weak.lock()) p->rs_->cancel();  // leaves the batch at the next step
  });
  rs_->set_notify([weak] {
    if (auto p = weak.lock()) p->schedule();
  });
  if (hooks_.idle_s > 0) arm_idle();
  schedule();  // events pushed before set_notify
}

void Pump::schedule() {
  if (scheduled_.exchange(true)) return;
  asio::post(ex_->executor(), [p = shared_from_this()] {
    p->scheduled_ = false;
    p->drain();
  });
}

void Pump::drain() {
  StreamEvent ev;
  while (!done_ && rs_->try_pop(ev)) {
    last_event_ = Clock::now();
    if (auto* t = std::get_if<TokenEvent>(&ev)) {
      if (first_) {
        first_ = false;
        auto& a = ex_->access();
        a.first_token_mono =
            std::chrono::duration<double>(rs_->start().time_since_epoch()).count() + t->t;
        a.ttft_ms = t->t * 1000.0;
      }
      if (hooks_.on_token) hooks_.on_token(*t);
    } else {
      done_ = true;
      auto& fe = std::get<FinalEvent>(ev);
      if (hooks_.on_final) hooks_.on_final(fe);
      rs_->set_notify(nullptr);
      timer_->t.cancel();
      // Let go once the pending handlers have run.
      asio::post(ex_->executor(), [p = std::move(self_)] {});
    }
  }
}

void Pump::arm_idle() {
  timer_->t.expires_after(std::chrono::microseconds(int64_t(hooks_.idle_s * 1e6)));
  timer_->t.async_wait(
      [weak = std::weak_ptr<Pump>(shared_from_this())](boost::system::error_code ec) {
        auto p = weak.lock();
        if (ec || !p || p->done_) return;
        if (Clock::now() - p->last_event_ >=
                std::chrono::microseconds(int64_t(p->hooks_.idle_s * 1e6)) &&
            p->hooks_.on_idle) {
          p->hooks_.on_idle();
          p->last_event_ = Clock::now();
        }
        p->arm_idle();
      });
}

void pump_encoded(std::shared_ptr<Exchange> ex, std::shared_ptr<RequestStream> rs,
                  std::shared_ptr<StreamEncoder> enc, double keepalive_s,
                  std::function<void(const FinalEvent&)> after) {
  PumpHooks h;
  Exchange* e = ex.get();
  h.on_token = [e, enc](const TokenEvent& t) { e->write(enc->on_token(t)); };
  h.on_final = [e, enc, after](const FinalEvent& fe) {
    for (auto& chunk : enc->on_final_chunks(fe)) e->write(std::move(chunk));
    e->finish();
    if (after) after(fe);
  };
  h.idle_s = enc->keepalive().empty() ? 0 : keepalive_s;
  h.on_idle = [e, enc] { e->write(enc->keepalive()); };
  Pump::start(std::move(ex), std::move(rs), std::move(h));
}

}  // namespace lmstream::server
