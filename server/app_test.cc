// App's configuration snapshot: handlers on the io threads read cfg() while the loader thread
// publishes the final configuration. Under ThreadSanitizer (scripts/test's TSan stage) the old
// in-place assignment of the config was a reported data race; the snapshot must be race-free and
// a reader must see either the whole start-up config or the whole final one, never a mix.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "server/app.h"

namespace lmstream::server {
namespace {

TEST(AppConfig, PublishWhileHandlersReadIsRaceFree) {
  ServeConfig start;
  start.endpoint_name = "start-endpoint";
  start.max_input_length = 1024;
  start.max_total_tokens = 2048;
  App app(start);

  ServeConfig fin = start;
  fin.endpoint_name = std::string(200, 'f');  // long: no small-string buffer to hide a torn write
  fin.max_input_length = 4095;
  fin.max_total_tokens = 4096;

  std::atomic<bool> stop{false};
  std::atomic<int> mixed{0}, saw_final{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const ServeConfig& c = app.cfg();
        const bool is_start = c.endpoint_name == "start-endpoint" && c.max_input_length == 1024;
        const bool is_final = c.endpoint_name == fin.endpoint_name && c.max_input_length == 4095 &&
                              c.max_total_tokens == 4096;
        if (!is_start && !is_final) mixed.fetch_add(1);
        if (is_final) saw_final.fetch_add(1);
        // A handler that sees ready() sees the final limits.
        if (app.ready() && app.cfg().max_input_length != 4095) mixed.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::thread loader([&] { app.set_backend(nullptr, fin); });
  loader.join();
  while (saw_final.load() < 100) std::this_thread::yield();
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(mixed.load(), 0);
  EXPECT_TRUE(app.ready());
  EXPECT_EQ(app.cfg().endpoint_name, fin.endpoint_name);
  EXPECT_EQ(app.tgi_limits().max_input_length, 4095);
}

TEST(AppConfig, FinalConfigurationIsPublishedOnce) {
  App app(ServeConfig{});
  app.set_backend(nullptr, ServeConfig{});
  EXPECT_THROW(app.set_backend(nullptr, ServeConfig{}), std::logic_error);
}

}  // namespace
}  // namespace lmstream::server
