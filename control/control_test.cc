// Unit tests of control/: name rules and the service's validation wording, ARNs, the SQLite store
// (a real file, reopened), container planning (image -> personality, model data, memory), the
// metrics relabelling, and the ControlPlane's operations without workers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "control/container.h"
#include "control/instance_types.h"
#include "control/plane.h"
#include "control/service.h"
#include "control/store.h"
#include "control/validation.h"
#include "control/workers.h"

namespace lmstream::control {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path temp_dir(const std::string& tag) {
  fs::path p =
      fs::temp_directory_path() / ("lms-control-" + tag + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(ControlNames, ModelAndEntityPatterns) {
  EXPECT_TRUE(valid_model_name("Llama-2-13b-chat-lmi-streaming-2023-12-01-10-20-30-123"));
  EXPECT_TRUE(valid_model_name("a--b"));
  EXPECT_FALSE(valid_model_name("-a"));
  EXPECT_FALSE(valid_model_name("a-"));
  EXPECT_FALSE(valid_model_name("x.y"));
  EXPECT_FALSE(valid_model_name(""));
  EXPECT_TRUE(valid_entity_name(std::string(63, 'a')));
  EXPECT_TRUE(valid_entity_name("Llama-2-13b-chat-lmi-streaming-2023-12--2023-12-01-10-20-30-123"));
  EXPECT_FALSE(valid_entity_name(std::string(64, 'a')));
  EXPECT_FALSE(valid_entity_name("bad_name!"));
  EXPECT_TRUE(valid_role_arn("arn:aws:iam::111122223333:role/service-role/X"));
  EXPECT_FALSE(valid_role_arn("arn:aws:iam::1111:role/X"));
  EXPECT_TRUE(valid_env_key("HF_MODEL_ID"));
  EXPECT_FALSE(valid_env_key("1X"));
  EXPECT_FALSE(valid_env_key("BAD-KEY"));
}

TEST(ControlViolations, CoralWording) {
  Violations v;
  json b = {{"ModelName", "x.y"}};
  v.name(b, "ModelName", "modelName", 63, valid_model_name, kModelNamePattern);
  try {
    v.throw_if_any();
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), "ValidationException");
    EXPECT_STREQ(e.what(),
                 "1 validation error detected: Value 'x.y' at 'modelName' failed to satisfy "
                 "constraint: Member must satisfy regular expression pattern: "
                 "^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?");
  }
  Violations w;
  w.require(json::object(), "EndpointName", "endpointName");
  w.int_range({{"N", 4000}}, "N", "x.n", 60, 3600);
  try {
    w.throw_if_any();
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_STREQ(e.what(),
                 "2 validation errors detected: Value null at 'endpointName' failed to satisfy "
                 "constraint: Member must not be null; Value '4000' at 'x.n' failed to satisfy "
                 "constraint: Member must have value less than or equal to 3600");
  }
}

TEST(ControlInstanceTypes, BotocoreEnum) {
  auto& t = instance_types();
  EXPECT_EQ(t.size(), 271u);
  EXPECT_NE(std::find(t.begin(), t.end(), "ml.g5.12xlarge"), t.end());
  EXPECT_NE(std::find(t.begin(), t.end(), "ml.p4d.24xlarge"), t.end());
  EXPECT_EQ(std::find(t.begin(), t.end(), "ml.bogus"), t.end());
}

TEST(ControlArn, LowerCasedNameAndPartition) {
  Account a;
  EXPECT_EQ(make_arn(a, "endpoint-config", "Gen3DAsyncEndpointConfigV1"),
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/gen3dasyncendpointconfigv1");
  a.region = "cn-north-1";
  EXPECT_EQ(make_arn(a, "model", "m"), "arn:aws-cn:sagemaker:cn-north-1:123456789012:model/m");
  a.region = "us-gov-west-1";
  EXPECT_EQ(partition_of(a.region), "aws-us-gov");
}

TEST(ControlStore, PersistsAcrossReopen) {
  fs::path dir = temp_dir("store");
  std::string db = (dir / "state.db").string();
  {
    Store s(db);
    s.put(Table::kModels, "b", {{"ModelName", "B"}});
    s.put(Table::kModels, "a", {{"ModelName", "A"}});
    s.put(Table::kEndpoints, "e", {{"EndpointName", "E"}, {"EndpointStatus", "Creating"}});
    s.put(Table::kEndpoints, "e", {{"EndpointName", "E"}, {"EndpointStatus", "InService"}});
    s.remove(Table::kModels, "b");
  }
  Store s(db);
  auto models = s.all(Table::kModels);
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0]["ModelName"], "A");
  auto eps = s.all(Table::kEndpoints);
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0]["EndpointStatus"], "InService");
  EXPECT_TRUE(s.all(Table::kEndpointConfigs).empty());
  EXPECT_THROW(Store((dir / "no" / "such" / "dir.db").string()), std::runtime_error);
  fs::remove_all(dir);
}

TEST(ControlContainer, PersonalityFromImage) {
  std::string why;
  EXPECT_EQ(
      personality_of("763104351884.dkr.ecr.us-east-1.amazonaws.com/"
                     "huggingface-pytorch-tgi-inference:2.0.1-tgi1.0.3-gpu-py39-cu118-ubuntu20.04",
                     &why),
      Personality::kTgi);
  EXPECT_EQ(personality_of("763104351884.dkr.ecr.us-east-1.amazonaws.com/"
                           "djl-inference:0.25.0-deepspeed0.11.0-cu118",
                           &why),
            Personality::kLmi);
  EXPECT_EQ(personality_of("x/djl-deepspeed@sha256:abc", &why), Personality::kLmi);
  EXPECT_FALSE(personality_of("123.dkr.ecr.us-east-1.amazonaws.com/sklearn:1", &why));
  EXPECT_NE(why.find("\"sklearn\""), std::string::npos);
}

TEST(ControlContainer, TgiPlan) {
  fs::path dir = temp_dir("tgi");
  { std::ofstream(dir / "w.gguf") << std::string(1000, 'x'); }
  json c = {{"Image", "r/huggingface-pytorch-tgi-inference:2.0.1-tgi1.0.3"},
            {"Environment", {{"HF_MODEL_ID", (dir / "w.gguf").string()}, {"SM_NUM_GPUS", "4"}}}};
  LaunchOptions o;
  o.worker_kv_memory = 1 << 20;
  LaunchPlan p = plan_container(c, o);
  EXPECT_EQ(p.personality, Personality::kTgi);
  EXPECT_EQ(p.model_ref, (dir / "w.gguf").string());
  EXPECT_EQ(p.weights_bytes, 1000u);
  EXPECT_EQ(p.kv_bytes, uint64_t(1 << 20));
  EXPECT_EQ(*p.memory(), 1000u + (1 << 20));
  bool gpus = false;
  for (auto& [k, v] : p.env)
    if (k == "SM_NUM_GPUS") gpus = v == "1";
  EXPECT_TRUE(gpus);
  EXPECT_EQ(p.notes.size(), 1u);
  json none = {{"Image", "r/huggingface-pytorch-tgi-inference:x"}};
  EXPECT_THROW(plan_container(none, o), ContainerError);
  json s3 = {{"Image", "r/huggingface-pytorch-tgi-inference:x"},
             {"ModelDataUrl", "s3://bucket/model.tar.gz"}};
  LaunchPlan ps = plan_container(s3, o);
  EXPECT_EQ(ps.model_ref, "s3://bucket/model.tar.gz");
  EXPECT_FALSE(ps.memory());  // unknown until the resolver fetches it
  fs::remove_all(dir);
}

TEST(ControlContainer, LmiFindsServingPropertiesInSubdirectory) {
  fs::path dir = temp_dir("lmi");
  fs::create_directories(dir / "chat_llama2_13b_hf");
  {
    std::ofstream(dir / "chat_llama2_13b_hf" / "serving.properties")
        << "engine=MPI\noption.model_id=/models/llama.gguf\n";
  }
  json c = {{"Image", "r/djl-inference:0.25.0-deepspeed0.11.0-cu118"},
            {"ModelDataUrl", "file://" + dir.string()}};
  LaunchPlan p = plan_container(c, LaunchOptions{});
  EXPECT_EQ(p.personality, Personality::kLmi);
  EXPECT_EQ(p.model_ref, "/models/llama.gguf");
  auto it = std::find(p.serve_args.begin(), p.serve_args.end(), "--properties");
  ASSERT_NE(it, p.serve_args.end());
  EXPECT_EQ(*(it + 1), (dir / "chat_llama2_13b_hf" / "serving.properties").string());
  json missing = {{"Image", "r/djl-inference:0.25.0"}, {"ModelDataUrl", "/no/such/dir"}};
  EXPECT_THROW(plan_container(missing, LaunchOptions{}), ContainerError);
  fs::remove_all(dir);
}

TEST(ControlMetrics, Relabel) {
  std::string in =
      "# HELP tgi_request_count n\n# TYPE tgi_request_count counter\ntgi_request_count 3\n"
      "tgi_request_duration_bucket{le=\"0.1\"} 1\nx{} 2\n";
  std::string out = relabel_metrics(in, "endpoint=\"e\",variant=\"v\"");
  EXPECT_NE(out.find("tgi_request_count{endpoint=\"e\",variant=\"v\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("tgi_request_duration_bucket{endpoint=\"e\",variant=\"v\",le=\"0.1\"} 1\n"),
            std::string::npos);
  EXPECT_NE(out.find("x{endpoint=\"e\",variant=\"v\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("# TYPE tgi_request_count counter\n"), std::string::npos);
}

// A worker that failed to load logs its reason, then the process may add more (a sanitizer's
// report, a core dump notice): last_error() finds the reason in each of serve's log formats.
TEST(ControlWorkers, LastErrorFindsTheReasonPastTrailingNoise) {
  fs::path dir = temp_dir("worker-log");
  auto reason = [&](const std::string& body) {
    std::string path = (dir / "w.log").string();
    std::ofstream(path, std::ios::binary) << body;
    return Worker(WorkerSpec{{"/bin/true"}, {}, path, "e/v/1"}).last_error();
  };
  std::string noise =
      "\n=================================================================\n"
      "==123==ERROR: LeakSanitizer: detected memory leaks\n"
      "    #0 0x4f in operator new(unsigned long)\n";
  EXPECT_EQ(reason("loading model\nerror: /m/bad.gguf: not a GGUF file (magic 'abcd')" + noise),
            "/m/bad.gguf: not a GGUF file (magic 'abcd')");
  EXPECT_EQ(reason("[2026-12-02 10:00:00.000] [lmstream] [info] loading\r\n"
                   "[2026-12-02 10:00:01.000] [lmstream] [error] /m/x: truncated tensor data\r\n" +
                   noise),
            "/m/x: truncated tensor data");
  EXPECT_EQ(reason("{\"level\":\"info\",\"message\":\"loading\"}\n"
                   "{\"level\":\"error\",\"message\":\"/m/y: unknown tensor type 99\"}\n" +
                   noise),
            "/m/y: unknown tensor type 99");
  // The last reason wins; a log with none gives "".
  EXPECT_EQ(reason("error: first\nerror: second\n"), "second");
  EXPECT_EQ(reason("{\"level\":\"warn\",\"message\":\"error-ish\"}\n" + noise), "");
  EXPECT_EQ(reason(""), "");
  fs::remove_all(dir);
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("plane");
    PlaneConfig c;
    c.state_dir = dir_.string();
    c.worker_exe = "/bin/false";
    plane_ = std::make_unique<ControlPlane>(c);
  }
  void TearDown() override {
    plane_.reset();
    fs::remove_all(dir_);
  }
  json call(const std::string& op, const json& b) { return plane_->call(op, b, Account{}); }
  std::string error(const std::string& op, const json& b) {
    try {
      call(op, b);
    } catch (const ApiError& e) {
      return e.code() + ": " + e.what();
    }
    return "no error";
  }
  fs::path dir_;
  std::unique_ptr<ControlPlane> plane_;
};

TEST_F(ControlPlaneTest, ModelLifecycleAndMessages) {
  json m = {{"ModelName", "My-Model"},
            {"PrimaryContainer", {{"Image", "r/huggingface-pytorch-tgi-inference:1"}}}};
  EXPECT_EQ(call("CreateModel", m)["ModelArn"],
            "arn:aws:sagemaker:us-east-1:123456789012:model/my-model");
  EXPECT_EQ(error("CreateModel", m),
            "ValidationException: Cannot create already existing model "
            "\"arn:aws:sagemaker:us-east-1:123456789012:model/my-model\".");
  json d = call("DescribeModel", {{"ModelName", "my-model"}});
  EXPECT_EQ(d["ModelName"], "My-Model");
  EXPECT_EQ(d["EnableNetworkIsolation"], false);
  EXPECT_TRUE(d["CreationTime"].is_number());
  EXPECT_EQ(
      error("CreateModel", {{"ModelName", "n"}}).rfind("ValidationException: No containers", 0),
      0u);
  EXPECT_EQ(error("DescribeModel", json::object()),
            "ValidationException: 1 validation error detected: Value null at 'modelName' failed "
            "to satisfy constraint: Member must not be null");
  EXPECT_EQ(error("CreateTrainingJob", json::object()).rfind("UnknownOperationException", 0), 0u);
  call("DeleteModel", {{"ModelName", "MY-MODEL"}});
  EXPECT_EQ(error("DeleteModel", {{"ModelName", "my-model"}}),
            "ValidationException: Could not find model "
            "\"arn:aws:sagemaker:us-east-1:123456789012:model/my-model\".");
}

TEST_F(ControlPlaneTest, StatePersistsInSqlite) {
  call("CreateModel", {{"ModelName", "m"},
                       {"PrimaryContainer", {{"Image", "r/huggingface-pytorch-tgi-inference:1"}}}});
  call("CreateEndpointConfig",
       {{"EndpointConfigName", "c"},
        {"ProductionVariants",
         {{{"VariantName", "v"}, {"ModelName", "m"}, {"InstanceType", "ml.m5.large"}}}}});
  plane_.reset();
  PlaneConfig c;
  c.state_dir = dir_.string();
  c.worker_exe = "/bin/false";
  plane_ = std::make_unique<ControlPlane>(c);
  plane_->recover();
  json d = call("DescribeEndpointConfig", {{"EndpointConfigName", "c"}});
  EXPECT_EQ(d["ProductionVariants"][0]["InitialVariantWeight"], 1.0);
  EXPECT_EQ(d["ProductionVariants"][0]["ModelName"], "m");
  EXPECT_EQ(call("ListModels", json::object())["Models"].size(), 1u);
}

}  // namespace
}  // namespace lmstream::control
