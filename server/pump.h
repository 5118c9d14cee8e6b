// Moves one request's events from the engine to its HTTP exchange. The scheduler calls
// RequestStream's notify on the engine thread; the pump only posts a drain onto the connection's
// strand (coalesced), so the engine never waits for a socket. A client that goes away cancels the
// request at once. Wire formats plug in as StreamEncoder (bytes per event, and the stream's end
// typed); framings such as AWS event-stream wrap an encoder without touching this file.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "scheduler/request.h"
#include "server/errors.h"
#include "server/http.h"

namespace lmstream::server {

class StreamEncoder {
 public:
  virtual ~StreamEncoder() = default;
  virtual std::string on_token(const TokenEvent& ev) = 0;  // bytes to write now ("" = none)
  // The stream's end, typed: its last bytes before the wire's error event, and that error.
  virtual StreamEnd on_end(const FinalEvent& fe) = 0;
  virtual std::string error_event(const Error& e) = 0;  // the wire's in-stream error event
  // The last bytes of the response: on_end()'s bytes, then the error event if any.
  virtual std::string on_final(const FinalEvent& fe) {
    StreamEnd end = on_end(fe);
    if (end.error) end.bytes += error_event(*end.error);
    return std::move(end.bytes);
  }
  // The last bytes as the HTTP chunks to write (a framing may want one per message).
  virtual std::vector<std::string> on_final_chunks(const FinalEvent& fe) { return {on_final(fe)}; }
  virtual std::string keepalive() { return ""; }  // after keepalive_s without events
};

struct PumpHooks {
  std::function<void(const TokenEvent&)> on_token;  // on the strand
  std::function<void(const FinalEvent&)> on_final;  // on the strand, once
  std::function<void()> on_idle;                    // no event for idle_s (0 = never)
  double idle_s = 0;
};

class Pump : public std::enable_shared_from_this<Pump> {
 public:
  // Starts pumping; the pump keeps itself alive until the final event was handled.
  static void start(std::shared_ptr<Exchange> ex, std::shared_ptr<RequestStream> rs,
                    PumpHooks hooks);
  Pump(std::shared_ptr<Exchange> ex, std::shared_ptr<RequestStream> rs, PumpHooks hooks);
  ~Pump();

 private:
  void begin();
  void schedule();
  void drain();
  void arm_idle();
  std::shared_ptr<Exchange> ex_;
  std::shared_ptr<RequestStream> rs_;
  PumpHooks hooks_;
  std::shared_ptr<Pump> self_;
  std::atomic<bool> scheduled_{false};
  bool done_ = false;
  bool first_ = true;
  Clock::time_point last_event_;
  struct Timer;
  std::unique_ptr<Timer> timer_;
};

// Streams the events through `enc` as a chunked response (headers already sent by the caller).
// after(fe) runs once the final bytes are queued.
void pump_encoded(std::shared_ptr<Exchange> ex, std::shared_ptr<RequestStream> rs,
                  std::shared_ptr<StreamEncoder> enc, double keepalive_s,
                  std::function<void(const FinalEvent&)> after);

}  // namespace lmstream::server
