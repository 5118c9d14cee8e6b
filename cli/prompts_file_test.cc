// Tests for cli/prompts_file (`lmstream generate --prompts`) over the real engine and the public
// Scheduler (a micro Q8_0 model made on the fly): JSON lines tagged by request and text mode with
// one file per request, each request equal to its solo run. Moved from scheduler/ with the code;
// tests the input and output formats only, not scheduling (scheduler/engine_batch_test.cc does;
// both use the micro model of scheduler/engine_test_support.h).
#include "cli/prompts_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/model.h"
#include "model/testgen.h"
#include "scheduler/engine_test_support.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_core.h"
#include "scheduler/test_support.h"

namespace lmstream {
namespace {

using testing::make_engine;
using testing::micro;
using testing::MicroModel;
using testing::solo;

TEST(PromptsFile, JsonLinesTaggedByRequestMatchSoloRuns) {
  MicroModel& m = micro();
  auto engine = make_engine(256);
  SchedulerOptions so;
  so.max_rolling_batch_size = 3;
  Scheduler sched(*engine, *m.tok, so);
  std::istringstream in(
      "Hello world\n"
      "\n"
      "{\"prompt\": \"Once upon a time\", \"max_new_tokens\": 5, \"seed\": 9, \"do_sample\": "
      "true}\n"
      "{\"prompt\": 3}\n"
      "{not json\n"
      "The end\n");
  std::ostringstream out;
  PromptsFileOptions po;
  po.parallel = 2;
  po.jsonl = true;
  po.defaults.stop.max_new_tokens = 4;
  PromptsFileSummary sum = run_prompts_file(sched, *m.tok, in, out, po);
  EXPECT_EQ(sum.requests, 5);
  EXPECT_EQ(sum.errors, 2);
  std::map<int, std::vector<int32_t>> ids;
  std::map<int, nlohmann::json> finals;
  std::istringstream lines(out.str());
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    int r = j["request"].get<int>();
    if (j.contains("finish_reason")) {
      EXPECT_EQ(finals.count(r), 0u);
      finals[r] = j;
    } else {
      EXPECT_EQ(finals.count(r), 0u) << "token after final";
      EXPECT_EQ(j["index"].get<size_t>(), ids[r].size());
      ids[r].push_back(j["id"].get<int32_t>());
    }
  }
  ASSERT_EQ(finals.size(), 5u);
  EXPECT_EQ(finals[2]["finish_reason"], "error");
  EXPECT_EQ(finals[3]["finish_reason"], "error");
  EXPECT_NE(finals[2]["error"].get<std::string>().find("prompt"), std::string::npos);
  // Request 1 (the JSON line) equals its solo run with the same parameters.
  GenerateRequest r1;
  r1.prompt = m.tok->encode("Once upon a time", true);
  r1.stop.max_new_tokens = 5;
  r1.sampling.seed = 9;
  r1.sampling.do_sample = true;
  auto solo_engine = make_engine(256);
  EXPECT_EQ(ids[1], solo(*solo_engine, r1).ids);
  EXPECT_EQ(finals[1]["generated_tokens"].get<int>(), int(ids[1].size()));
  GenerateRequest r0;
  r0.prompt = m.tok->encode("Hello world", true);
  r0.stop.max_new_tokens = 4;
  EXPECT_EQ(ids[0], solo(*solo_engine, r0).ids);
}

TEST(PromptsFile, TextModeWritesOneFilePerRequest) {
  MicroModel& m = micro();
  auto engine = make_engine(256);
  Scheduler sched(*engine, *m.tok, SchedulerOptions{});
  auto dir = std::filesystem::temp_directory_path() / ("lms-prompts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::istringstream in("a b c\nd e f\n");
  std::ostringstream out;
  PromptsFileOptions po;
  po.out_dir = dir.string();
  po.defaults.stop.max_new_tokens = 6;
  po.defaults.stop.ignore_eos = true;
  PromptsFileSummary sum = run_prompts_file(sched, *m.tok, in, out, po);
  EXPECT_EQ(sum.requests, 2);
  EXPECT_EQ(sum.generated_tokens, 12u);
  for (int i = 0; i < 2; ++i) {
    std::ifstream f(dir / (std::to_string(i) + ".txt"), std::ios::binary);
    ASSERT_TRUE(f) << i;
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    GenerateRequest r;
    r.prompt = m.tok->encode(i == 0 ? "a b c" : "d e f", true);
    r.stop.max_new_tokens = 6;
    r.stop.ignore_eos = true;
    auto solo_engine = make_engine(64);
    EXPECT_EQ(text, solo(*solo_engine, r).fin.generated_text);
  }
  std::filesystem::remove_all(dir);
  po.out_dir = (dir / "missing").string();
  std::istringstream in2("x\n");
  EXPECT_THROW(run_prompts_file(sched, *m.tok, in2, out, po), std::runtime_error);
}

}  // namespace
}  // namespace lmstream
