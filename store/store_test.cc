// Tests of store/'s pure parts: cache paths and links, URL building, range splitting, header
// parsing, the Hub's error mapping, file selection and the resolver's classification. The network
// paths are driven through the CLI by tests/test_model_sources_hub.py.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "store/download.h"
#include "store/hub.h"
#include "store/hub_cache.h"
#include "store/progress.h"
#include "store/resolve.h"

namespace lmstream::store {
namespace {

namespace fs = std::filesystem;

TEST(HubCache, Paths) {
  EXPECT_EQ(hub::repo_folder_name("org/tiny"), "models--org--tiny");
  hub::Cache c("/c");
  EXPECT_EQ(c.blob_path("org/tiny", "abc"), "/c/models--org--tiny/blobs/abc");
  EXPECT_EQ(c.snapshot_path("org/tiny", "c0", "sub/x.json"),
            "/c/models--org--tiny/snapshots/c0/sub/x.json");
  EXPECT_EQ(c.ref_path("org/tiny", "main"), "/c/models--org--tiny/refs/main");
  EXPECT_EQ(hub::blob_link_target("config.json", "e"), "../../blobs/e");
  EXPECT_EQ(hub::blob_link_target("a/b/c.json", "e"), "../../../../blobs/e");
}

TEST(HubCache, EtagAndCommit) {
  EXPECT_EQ(hub::normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(hub::normalize_etag("\"abc\""), "abc");
  EXPECT_EQ(hub::normalize_etag("abc"), "abc");
  EXPECT_TRUE(hub::is_commit_hash(std::string(40, 'a')));
  EXPECT_FALSE(hub::is_commit_hash(std::string(40, 'A')));
  EXPECT_FALSE(hub::is_commit_hash("main"));
}

TEST(HubCache, SafePaths) {
  EXPECT_TRUE(hub::safe_relative_path("a/b.json"));
  EXPECT_FALSE(hub::safe_relative_path("../x"));
  EXPECT_FALSE(hub::safe_relative_path("/etc/passwd"));
  EXPECT_FALSE(hub::safe_relative_path("a//b"));
  EXPECT_FALSE(hub::safe_relative_path("a/./b"));
  EXPECT_FALSE(hub::safe_relative_path(""));
}

TEST(HubCache, EnvDirs) {
  auto env = [](std::map<std::string, std::string> m) -> Env {
    return [m](const std::string& k) -> std::optional<std::string> {
      auto it = m.find(k);
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  };
  EXPECT_EQ(hub::hub_cache_dir(env({{"HOME", "/h"}})), "/h/.cache/huggingface/hub");
  EXPECT_EQ(hub::hub_cache_dir(env({{"HF_HOME", "/x"}})), "/x/hub");
  EXPECT_EQ(hub::hub_cache_dir(env({{"HF_HOME", "/x"}, {"HUGGINGFACE_HUB_CACHE", "/l"}})), "/l");
  EXPECT_EQ(hub::hub_cache_dir(env({{"HF_HUB_CACHE", "/n"}, {"HUGGINGFACE_HUB_CACHE", "/l"}})),
            "/n");
  auto c = hub::Config::from_env(env({{"HF_ENDPOINT", "http://h:1/"},
                                      {"HUGGING_FACE_HUB_TOKEN", "t2"},
                                      {"HF_HUB_OFFLINE", "Yes"},
                                      {"HOME", "/nonexistent"}}));
  EXPECT_EQ(c.endpoint, "http://h:1");
  EXPECT_EQ(c.token.value_or(""), "t2");
  EXPECT_TRUE(c.offline);
  c = hub::Config::from_env(env({{"HF_TOKEN", "t1"}, {"HUGGING_FACE_HUB_TOKEN", "t2"}}));
  EXPECT_EQ(c.token.value_or(""), "t1");
  EXPECT_FALSE(c.offline);
}

TEST(HubCache, RefsLinksAndLookup) {
  fs::path d = fs::temp_directory_path() / ("store_test_" + std::to_string(::getpid()));
  fs::remove_all(d);
  hub::Cache c(d.string());
  const std::string commit(40, 'c');
  EXPECT_FALSE(c.commit_of("o/n", "main"));
  c.write_ref("o/n", "main", commit);
  EXPECT_EQ(c.commit_of("o/n", "main").value_or(""), commit);
  EXPECT_EQ(c.commit_of("o/n", commit).value_or(""), commit);  // a commit is itself
  fs::create_directories(c.blobs_dir("o/n"));
  { std::ofstream(c.blob_path("o/n", "e1")) << "x"; }
  c.link("o/n", commit, "sub/f.json", "e1");
  EXPECT_EQ(fs::read_symlink(c.snapshot_path("o/n", commit, "sub/f.json")).string(),
            "../../../blobs/e1");
  EXPECT_EQ(c.cached_file("o/n", "main", "sub/f.json").value_or(""),
            c.snapshot_path("o/n", commit, "sub/f.json"));
  EXPECT_FALSE(c.cached_file("o/n", "main", "other.json"));
  fs::remove_all(d);
}

TEST(HubUrls, QuotingAsHuggingfaceHub) {
  EXPECT_EQ(hub::api_url("http://e", "org/m", std::nullopt), "http://e/api/models/org/m");
  EXPECT_EQ(hub::api_url("http://e", "org/m", std::string("refs/pr/1")),
            "http://e/api/models/org/m/revision/refs%2Fpr%2F1");
  EXPECT_EQ(hub::resolve_url("http://e", "org/m", "main", "sub dir/a+b.json"),
            "http://e/org/m/resolve/main/sub%20dir/a%2Bb.json");
}

TEST(HubIds, Parse) {
  auto r = hub::parse_repo_ref("org/name-GGUF:Q4_K_M");
  EXPECT_EQ(r.repo, "org/name-GGUF");
  EXPECT_EQ(r.quant.value_or(""), "Q4_K_M");
  EXPECT_FALSE(hub::parse_repo_ref("meta-llama/Llama-2-7b-chat-hf").quant);
  EXPECT_THROW(hub::parse_repo_ref("a/b/c"), hub::HubError);
  EXPECT_THROW(hub::parse_repo_ref("../x"), hub::HubError);
  EXPECT_THROW(hub::parse_repo_ref("noslash"), hub::HubError);
  EXPECT_FALSE(hub::looks_like_repo_id("org/na me"));
}

TEST(Download, SplitRanges) {
  auto r = split_ranges(100, 16);  // 68 bytes in parts of 16, then 32 in parts of 2
  ASSERT_EQ(r.size(), 5u + 16u);
  EXPECT_EQ(r[0].first, 0u);
  EXPECT_EQ(*r[0].last, 15u);
  EXPECT_EQ(r[4].first, 64u);
  EXPECT_EQ(*r[4].last, 67u);
  EXPECT_EQ(r[5].first, 68u);
  EXPECT_EQ(*r[5].last, 69u);
  EXPECT_EQ(*r.back().last, 99u);
  for (size_t i = 1; i < r.size(); ++i) EXPECT_EQ(r[i].first, *r[i - 1].last + 1);
  EXPECT_TRUE(split_ranges(0, 4).empty());
  EXPECT_EQ(split_ranges(4, 4).size(), 1u);
  const uint64_t g = 1ull << 30, p = 32ull << 20;  // 1 GiB: 30 parts of 32 MiB, 16 of 4 MiB
  auto big = split_ranges(g, p);
  EXPECT_EQ(big.size(), 30u + 16u);
  EXPECT_EQ(*big.back().last, g - 1);
  EXPECT_THROW(split_ranges(8, 0), std::invalid_argument);
}

TEST(Download, ContentRange) {
  auto c = parse_content_range("bytes 100-199/1000");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->first, 100u);
  EXPECT_EQ(c->last, 199u);
  EXPECT_EQ(c->total, 1000u);
  EXPECT_EQ(parse_content_range("bytes 0-0/*")->total, 0u);
  EXPECT_FALSE(parse_content_range("bytes 5-4/10"));
  EXPECT_FALSE(parse_content_range("bytes 0-10/10"));
  EXPECT_FALSE(parse_content_range("items 0-1/2"));
  EXPECT_FALSE(parse_content_range("bytes x-1/2"));
}

http::ResponseHead head(int status, http::ClientHeaders h) {
  http::ResponseHead r;
  r.status = status;
  r.headers = std::move(h);
  return r;
}

TEST(HubErrors, MappedOnErrorCodeFirst) {
  using K = hub::HubError::Kind;
  auto e = hub::error_from_response(
      head(401, {{"X-Error-Code", "GatedRepo"}, {"X-Error-Message", "Repo is gated."}}), "",
      "http://h/o/g/resolve/main/config.json", "o/g", "main", "config.json", false);
  EXPECT_EQ(e.kind(), K::kGated);
  EXPECT_NE(std::string(e.what()).find("HF_TOKEN"), std::string::npos);
  EXPECT_NE(std::string(e.what()).find("Repo is gated."), std::string::npos);
  EXPECT_EQ(hub::error_from_response(head(404, {{"X-Error-Code", "RevisionNotFound"}}), "", "u",
                                     "o/n", "v9", "", false)
                .kind(),
            K::kRevisionNotFound);
  EXPECT_EQ(hub::error_from_response(head(404, {{"X-Error-Code", "EntryNotFound"}}), "", "u", "o/n",
                                     "main", "f", false)
                .kind(),
            K::kEntryNotFound);
  EXPECT_EQ(hub::error_from_response(head(401, {}), "", "u", "o/n", "main", "", false).kind(),
            K::kRepoNotFound);
  auto j = hub::error_from_response(head(404, {{"X-Error-Code", "RepoNotFound"}}),
                                    "{\"error\":\"Repository not found\"}", "u", "o/n", "main", "",
                                    false);
  EXPECT_EQ(j.kind(), K::kRepoNotFound);
  EXPECT_NE(std::string(j.what()).find("Repository not found"), std::string::npos);
}

hub::RepoInfo info(std::vector<std::string> files) {
  hub::RepoInfo i;
  i.sha = std::string(40, 'a');
  for (auto& f : files) i.siblings.push_back({f, std::nullopt});
  return i;
}

TEST(HubSelect, SafetensorsFirstAsTgi) {
  auto f = hub::select_model_files(
      info({"config.json", "tokenizer.json", "model.safetensors", "training_args.safetensors",
            "sub/x.safetensors", "pytorch_model.bin", "README.md"}),
      "o/n", "main", nullptr);
  EXPECT_EQ(f, (std::vector<std::string>{"config.json", "tokenizer.json", "model.safetensors"}));
}

TEST(HubSelect, IndexNamesTheShards) {
  std::string idx = R"({"weight_map":{"a":"model-00001-of-00002.safetensors",
                                      "b":"model-00002-of-00002.safetensors"}})";
  auto i = info({"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                 "model-00002-of-00002.safetensors", "stale.safetensors"});
  auto f = hub::select_model_files(i, "o/n", "main", &idx);
  EXPECT_EQ(f, (std::vector<std::string>{"model.safetensors.index.json", "config.json",
                                         "model-00001-of-00002.safetensors",
                                         "model-00002-of-00002.safetensors"}));
  std::string bad = R"({"weight_map":{"a":"missing.safetensors"}})";
  EXPECT_THROW(hub::select_model_files(i, "o/n", "main", &bad), hub::HubError);
}

TEST(HubSelect, BinOnlyIsAClearError) {
  try {
    hub::select_model_files(info({"config.json", "pytorch_model.bin"}), "o/n", "main", nullptr);
    FAIL();
  } catch (const hub::HubError& e) {
    EXPECT_EQ(e.kind(), hub::HubError::Kind::kNoWeights);
    EXPECT_NE(std::string(e.what()).find("only PyTorch .bin weights (pytorch_model.bin)"),
              std::string::npos);
  }
}

TEST(HubSelect, GgufAsLlamaCpp) {
  auto i = info({"m-Q4_K_M.gguf", "m-Q8_0.gguf", "README.md"});
  EXPECT_EQ(hub::select_gguf_files(i, "o/n", std::string("q8_0"), std::nullopt),
            (std::vector<std::string>{"m-Q8_0.gguf"}));
  EXPECT_EQ(hub::select_gguf_files(i, "o/n", std::nullopt, std::nullopt),
            (std::vector<std::string>{"m-Q4_K_M.gguf"}));
  EXPECT_EQ(hub::select_gguf_files(i, "o/n", std::nullopt, std::string("m-Q8_0.gguf")),
            (std::vector<std::string>{"m-Q8_0.gguf"}));
  EXPECT_THROW(hub::select_gguf_files(i, "o/n", std::string("Q2_K"), std::nullopt), hub::HubError);
  auto two = info({"a-Q8_0.gguf", "b-Q5_0.gguf"});
  EXPECT_THROW(hub::select_gguf_files(two, "o/n", std::nullopt, std::nullopt), hub::HubError);
  auto split = info({"m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf"});
  EXPECT_EQ(hub::select_gguf_files(split, "o/n", std::string("Q8_0"), std::nullopt).size(), 2u);
}

TEST(Resolve, Classify) {
  EXPECT_EQ(classify("s3://b/k").kind, SourceKind::kS3);
  EXPECT_EQ(classify("org/name").kind, SourceKind::kHub);
  EXPECT_EQ(classify("org/name:Q8_0").kind, SourceKind::kHub);
  EXPECT_EQ(classify("/no/such/dir").kind, SourceKind::kLocal);
  EXPECT_EQ(classify("file:///tmp/x%20y").location, "/tmp/x y");
  EXPECT_EQ(classify("file:///tmp/m.tar.gz").kind, SourceKind::kArchive);
  EXPECT_EQ(classify("djl://x/y").kind, SourceKind::kUnsupported);
  EXPECT_EQ(classify(fs::temp_directory_path().string()).kind, SourceKind::kLocal);
  EXPECT_THROW(resolve_model("s3://b/k", {}), std::runtime_error);
}

TEST(Progress, Texts) {
  EXPECT_EQ(Progress::bytes_text(12), "12 B");
  EXPECT_EQ(Progress::bytes_text(1536), "1.5 KiB");
  EXPECT_EQ(Progress::eta_text(62), "1:02");
  EXPECT_EQ(Progress::eta_text(3723), "1:02:03");
}

}  // namespace
}  // namespace lmstream::store
