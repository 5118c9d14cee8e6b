// resolve_aws_settings: the environment, --profile / AWS_PROFILE, the shared credentials and config
// files, and the region order, with a fake environment and files in a temporary directory.
#include "client/aws_config.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace lmstream::client {
namespace {

struct Fixture {
  std::filesystem::path dir;
  std::map<std::string, std::string> vars;
  Fixture() {
    dir = std::filesystem::temp_directory_path() /
          ("lms-awscfg-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
    std::filesystem::create_directories(dir);
    vars["AWS_SHARED_CREDENTIALS_FILE"] = (dir / "credentials").string();
    vars["AWS_CONFIG_FILE"] = (dir / "config").string();
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
  void write(const char* name, const std::string& text) { std::ofstream(dir / name) << text; }
  GetEnv env() const {
    return [this](const std::string& n) -> std::optional<std::string> {
      auto it = vars.find(n);
      return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
  }
};

TEST(AwsConfig, ProfilesEnvironmentAndRegion) {
  Fixture f;
  f.write("credentials",
          "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s0\n"
          "[work]\naws_access_key_id=AKIDWORK\naws_secret_access_key=s1\naws_session_token=t1\n");
  f.write("config",
          "[default]\nregion = us-west-2\n[profile work]\nregion = eu-west-3\n"
          "[profile cfgonly]\naws_access_key_id = AKIDCFG\naws_secret_access_key = s2\n");
  AwsSettings s = resolve_aws_settings("", "", f.env());
  EXPECT_EQ(s.credentials->access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(s.region, "us-west-2");
  f.vars["AWS_PROFILE"] = "work";
  s = resolve_aws_settings("", "", f.env());
  EXPECT_EQ(s.credentials->access_key_id, "AKIDWORK");
  EXPECT_EQ(s.credentials->session_token, "t1");
  EXPECT_EQ(s.region, "eu-west-3");
  // The environment's keys win over AWS_PROFILE, --profile wins over them.
  f.vars["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  f.vars["AWS_SECRET_ACCESS_KEY"] = "senv";
  EXPECT_EQ(resolve_aws_settings("", "", f.env()).credentials->access_key_id, "AKIDENV");
  EXPECT_EQ(resolve_aws_settings("cfgonly", "", f.env()).credentials->access_key_id, "AKIDCFG");
  // Region: --region > AWS_REGION > AWS_DEFAULT_REGION > the profile's.
  f.vars["AWS_DEFAULT_REGION"] = "ap-south-1";
  EXPECT_EQ(resolve_aws_settings("", "", f.env()).region, "ap-south-1");
  f.vars["AWS_REGION"] = "sa-east-1";
  EXPECT_EQ(resolve_aws_settings("", "", f.env()).region, "sa-east-1");
  EXPECT_EQ(resolve_aws_settings("", "ca-central-1", f.env()).region, "ca-central-1");
  // A named profile that does not exist is an error naming it.
  try {
    resolve_aws_settings("nope", "", f.env());
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("AWS profile 'nope' (--profile)"), std::string::npos);
  }
  f.write("credentials", "[half]\naws_access_key_id = A\n");
  EXPECT_THROW(resolve_aws_settings("half", "", f.env()), std::runtime_error);
}

TEST(AwsConfig, NothingConfigured) {
  Fixture f;
  AwsSettings s = resolve_aws_settings("", "", f.env());
  EXPECT_FALSE(s.credentials);
  EXPECT_EQ(s.region, "");
}

TEST(AwsConfig, RuntimeUrl) {
  EXPECT_EQ(sagemaker_runtime_url("eu-west-3"),
            "https://runtime.sagemaker.eu-west-3.amazonaws.com");
  EXPECT_EQ(sagemaker_runtime_url("cn-north-1"),
            "https://runtime.sagemaker.cn-north-1.amazonaws.com.cn");
  EXPECT_THROW(sagemaker_runtime_url("evil.com/x"), std::runtime_error);
  EXPECT_THROW(sagemaker_runtime_url(""), std::runtime_error);
}

}  // namespace
}  // namespace lmstream::client
