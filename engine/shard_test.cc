// Tensor-parallel slices and the engine: the column copies of o_proj and down are made only to be
// packed, so the engine frees them once packed (each weight resident once per rank), and a model
// whose copies were freed is refused by a second engine instead of being read after free.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "engine/engine.h"
#include "engine/shard.h"
#include "model/model.h"
#include "model/test_util.h"

namespace lmstream {
namespace {

std::unique_ptr<Model> micro_q8(const std::filesystem::path& dir) {
  return load_model(testing::make_micro((dir / "micro.gguf").string(), "gguf", DType::Q8_0, 11));
}

TEST(Shard, EngineFreesTheColumnCopiesOncePacked) {
  auto dir =
      std::filesystem::temp_directory_path() / ("lms-shard-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto full = micro_q8(dir);
  const size_t layers = full->layers.size();
  const ShardPlan plan = plan_shard(*full, 1, 2);
  auto m = shard_model(std::move(full), plan);
  ASSERT_EQ(m->pack_sources.size(), 2 * layers);  // o_proj and down of every layer
  size_t copied = 0;
  for (const auto& s : m->pack_sources) copied += s.bytes;
  EXPECT_EQ(copied, [&] {
    size_t n = 0;
    for (const auto& l : m->layers) n += l.wo.nbytes() + l.w_down.nbytes();
    return n;
  }());

  EngineOptions eo;
  eo.threads = 1;
  eo.shard = plan;
  {
    Engine e(*m, eo);
    EXPECT_TRUE(m->pack_sources.empty());
    EXPECT_TRUE(m->pack_sources_freed);
  }
  try {
    Engine again(*m, eo);
    FAIL() << "a second engine over freed slices was built";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("load and shard the model again"), std::string::npos)
        << e.what();
  }

  // An unsharded model has no copies, and may back any number of engines.
  auto plain = micro_q8(dir);
  EXPECT_TRUE(plain->pack_sources.empty());
  EngineOptions one;
  one.threads = 1;
  Engine a(*plain, one), b(*plain, one);
  EXPECT_FALSE(plain->pack_sources_freed);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lmstream
