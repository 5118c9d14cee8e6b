// Tests of RequestStream: ordering, the final event closes the stream, waiting with timeout,
// notification, cancellation flag, and a producer that never blocks on an absent consumer.
#include "scheduler/request.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace lmstream {
namespace {

TEST(RequestStream, DeliversInOrderAndClosesAfterFinal) {
  RequestStream s(7);
  EXPECT_EQ(s.id(), 7u);
  TokenEvent a;
  a.id = 1;
  TokenEvent b;
  b.id = 2;
  s.push(a);
  s.push(b);
  EXPECT_FALSE(s.finished());
  FinalEvent f;
  f.reason = FinishReason::kEosToken;
  s.push(f);
  EXPECT_TRUE(s.finished());
  s.push(a);  // ignored after the final event
  StreamEvent ev;
  ASSERT_TRUE(s.try_pop(ev));
  EXPECT_EQ(std::get<TokenEvent>(ev).id, 1);
  ASSERT_TRUE(s.try_pop(ev));
  EXPECT_EQ(std::get<TokenEvent>(ev).id, 2);
  ASSERT_TRUE(s.try_pop(ev));
  EXPECT_EQ(std::get<FinalEvent>(ev).reason, FinishReason::kEosToken);
  EXPECT_FALSE(s.try_pop(ev));
}

TEST(RequestStream, WaitPopTimesOutAndWakesUp) {
  RequestStream s(1);
  StreamEvent ev;
  EXPECT_FALSE(s.wait_pop(ev, std::chrono::milliseconds(5)));
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    s.push(TokenEvent{});
  });
  EXPECT_TRUE(s.wait_pop(ev, std::chrono::seconds(10)));
  producer.join();
}

TEST(RequestStream, NotifyAndCancel) {
  RequestStream s(1);
  s.push(TokenEvent{});
  int calls = 0;
  s.set_notify([&] { ++calls; });
  EXPECT_EQ(calls, 1);  // an event was already waiting
  s.push(TokenEvent{});
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(s.cancelled());
  s.cancel();
  EXPECT_TRUE(s.cancelled());
  RequestStream quiet(2);
  int none = 0;
  quiet.set_notify([&] { ++none; });
  EXPECT_EQ(none, 0);
}

TEST(RequestStream, ProducerNeverBlocksWithoutConsumer) {
  RequestStream s(1);
  for (int i = 0; i < 100000; ++i) {
    TokenEvent t;
    t.id = i;
    s.push(std::move(t));
  }
  StreamEvent ev;
  int n = 0;
  while (s.try_pop(ev)) ++n;
  EXPECT_EQ(n, 100000);
}

TEST(RequestStream, FinishReasonNames) {
  EXPECT_STREQ(finish_reason_name(FinishReason::kLength), "length");
  EXPECT_STREQ(finish_reason_name(FinishReason::kEosToken), "eos_token");
  EXPECT_STREQ(finish_reason_name(FinishReason::kStopSequence), "stop_sequence");
  EXPECT_STREQ(finish_reason_name(FinishReason::kCancelled), "cancelled");
  EXPECT_STREQ(finish_reason_name(FinishReason::kError), "error");
}

}  // namespace
}  // namespace lmstream
