// The s3:// source of the resolver against a small S3-shaped loopback server (the real S3 wire:
// ListObjectsV2 XML, ETags, ranges; moto is tests/test_model_sources_s3.py's): a prefix lands in
// the cache under its listing hash with every byte and MD5 checked, a second resolve fetches
// nothing, and the listing's hostile or broken shapes are refused before any file is written:
// a key that climbs out of the prefix, a key that is both a file and a directory, an empty
// prefix, and an object whose bytes do not match its MD5 ETag.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "base/strings.h"
#include "http/server.h"
#include "store/resolve.h"

namespace lmstream::store {
namespace {

namespace fs = std::filesystem;

std::string md5_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

struct Obj {
  std::string data;
  std::string etag;  // "" = the MD5 of data
};

class FakeBucket : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("lms-resolve-s3-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    objects_ = {{"good/config.json", {"{\"a\": 1}", ""}},
                {"good/sub dir/tok+en.model", {std::string(70000, 't'), ""}},
                {"evil/ok.json", {"{}", ""}},
                {"evil/../escape", {"x", ""}},
                {"clash/a", {"1", ""}},
                {"clash/a/b", {"2", ""}},
                {"corrupt/config.json", {"{\"a\": 1}", md5_hex("something else")}},
                {"one/model.gguf", {"GGUF-bytes", ""}}};
    routes_.add_prefix("GET", "/bkt", [this](std::shared_ptr<http::Exchange> ex) {
      count(ex->request());
      const http::HttpRequest& r = ex->request();
      if (r.path == "/bkt") return ex->respond({200, {}, listing(r.query)});
      auto it = objects_.find(base::percent_decode(r.path.substr(5)));
      if (it == objects_.end()) {
        return ex->respond({404, {}, "<Error><Code>NoSuchKey</Code><Message>no</Message></Error>"});
      }
      const std::string& d = it->second.data;
      if (const std::string* range = r.header("Range")) {
        const std::string spec = range->substr(6);
        const size_t first = std::stoul(spec.substr(0, spec.find('-')));
        const std::string tail = spec.substr(spec.find('-') + 1);
        const size_t last = tail.empty() ? d.size() - 1 : std::min(std::stoul(tail), d.size() - 1);
        return ex->respond(
            {206,
             {{"ETag", etag(it->second)},
              {"Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                    "/" + std::to_string(d.size())}},
             d.substr(first, last - first + 1)});
      }
      ex->respond({200, {{"ETag", etag(it->second)}}, d});
    });
    routes_.add_prefix("HEAD", "/bkt", [this](std::shared_ptr<http::Exchange> ex) {
      count(ex->request());
      auto it = objects_.find(base::percent_decode(ex->request().path.substr(5)));
      if (it == objects_.end()) return ex->respond({404, {}, ""});
      ex->respond(
          {200,
           {{"ETag", etag(it->second)}, {"Content-Length", std::to_string(it->second.data.size())}},
           ""});
    });
    server_ = std::make_unique<http::HttpServer>(ioc_, routes_, http::HttpLimits{}, nullptr);
    port_ = server_->listen("127.0.0.1", 0);
    thread_ = std::thread([this] { ioc_.run(); });
    vars_ = {{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:" + std::to_string(port_)},
             {"AWS_ACCESS_KEY_ID", "AKIDTEST"},
             {"AWS_SECRET_ACCESS_KEY", "secret"},
             {"HOME", root_.string()},
             {"LMSTREAM_CACHE", (root_ / "cache").string()}};
  }
  void TearDown() override {
    server_->close_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ioc_.stop();
    thread_.join();
    fs::remove_all(root_);
  }
  static std::string etag(const Obj& o) {
    return "\"" + (o.etag.empty() ? md5_hex(o.data) : o.etag) + "\"";
  }
  void count(const http::HttpRequest& r) {
    std::lock_guard lock(mu_);
    requests_.push_back(r.method + " " + r.target);
  }
  std::string listing(const std::string& query) {
    std::string prefix;
    for (std::string_view kv : base::split(query, '&')) {
      if (kv.substr(0, 7) == "prefix=") prefix = base::percent_decode(kv.substr(7));
    }
    std::string x = "<ListBucketResult><IsTruncated>false</IsTruncated>";
    for (const auto& [k, o] : objects_) {
      if (k.compare(0, prefix.size(), prefix) != 0) continue;
      std::string enc;
      for (char c : k) enc += c == ' ' ? std::string("%20") : c == '+' ? "%2B" : std::string(1, c);
      x += "<Contents><Key>" + enc + "</Key><ETag>&quot;" +
           (o.etag.empty() ? md5_hex(o.data) : o.etag) + "&quot;</ETag><Size>" +
           std::to_string(o.data.size()) + "</Size></Contents>";
    }
    return x + "<EncodingType>url</EncodingType></ListBucketResult>";
  }
  ResolveOptions options() const {
    ResolveOptions o;
    o.env = [vars = vars_](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
    o.download.backoff = std::chrono::milliseconds(1);
    o.download.retries = 0;
    return o;
  }
  size_t files_in_cache() const {
    size_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_ / "cache", ec);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_regular_file()) ++n;
    }
    return n;
  }
  std::string refused(const std::string& url) {
    try {
      resolve_model(url, options());
      ADD_FAILURE() << url << " resolved";
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }

  fs::path root_;
  std::map<std::string, Obj> objects_;
  std::map<std::string, std::string> vars_;
  boost::asio::io_context ioc_;
  http::RouteTable routes_;
  std::unique_ptr<http::HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_F(FakeBucket, PrefixIsFetchedVerifiedAndCached) {
  const std::string dir = resolve_model("s3://bkt/good/", options());
  EXPECT_EQ(slurp(fs::path(dir) / "config.json"), "{\"a\": 1}");
  EXPECT_EQ(slurp(fs::path(dir) / "sub dir" / "tok+en.model"), std::string(70000, 't'));
  EXPECT_EQ(fs::path(dir).parent_path().parent_path(), root_ / "cache" / "s3" / "prefixes");
  EXPECT_FALSE(fs::exists(dir + ".incomplete"));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "config.json.lock"));
  size_t gets = 0;
  {
    std::lock_guard lock(mu_);
    for (const std::string& r : requests_) gets += r.rfind("GET /bkt/good/", 0) == 0;
    requests_.clear();
  }
  EXPECT_EQ(gets, 2u);
  // Again: one listing, no GET of a file.
  EXPECT_EQ(resolve_model("s3://bkt/good/", options()), dir);
  std::lock_guard lock(mu_);
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0].rfind("GET /bkt?list-type=2", 0), 0u) << requests_[0];
}

TEST_F(FakeBucket, SingleObjectIsCachedByEtag) {
  const std::string file = resolve_model("s3://bkt/one/model.gguf", options());
  EXPECT_EQ(fs::path(file).filename(), "model.gguf");
  EXPECT_EQ(fs::path(file).parent_path().filename(), md5_hex("GGUF-bytes"));
  EXPECT_EQ(slurp(file), "GGUF-bytes");
}

TEST_F(FakeBucket, KeysLeavingThePrefixAreRefusedBeforeAnyFile) {
  const std::string m = refused("s3://bkt/evil/");
  EXPECT_NE(m.find("refusing key 'evil/../escape'"), std::string::npos) << m;
  EXPECT_EQ(files_in_cache(), 0u);
}

TEST_F(FakeBucket, FileAndDirectoryClashIsRefused) {
  const std::string m = refused("s3://bkt/clash/");
  EXPECT_NE(m.find("'a' is both a file and a directory"), std::string::npos) << m;
  EXPECT_EQ(files_in_cache(), 0u);
}

TEST_F(FakeBucket, EmptyPrefixAndMissingObject) {
  const std::string m = refused("s3://bkt/nothing-here/");
  EXPECT_NE(m.find("s3://bkt/nothing-here/: no objects under this prefix"), std::string::npos) << m;
  // No such object and no such prefix: the object's NoSuchKey message.
  const std::string k = refused("s3://bkt/nothing-here");
  EXPECT_NE(k.find("s3://bkt/nothing-here: no such object"), std::string::npos) << k;
}

TEST_F(FakeBucket, Md5MismatchIsAChecksumErrorAndNothingIsKept) {
  try {
    resolve_model("s3://bkt/corrupt/", options());
    ADD_FAILURE() << "a corrupt object resolved";
  } catch (const DownloadError& e) {
    EXPECT_EQ(e.kind(), DownloadError::Kind::kChecksum) << e.what();
  }
  // Nothing under its final name: no config.json anywhere, no finished model directory.
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_ / "cache", ec);
       it != fs::recursive_directory_iterator(); ++it) {
    EXPECT_NE(it->path().filename(), "config.json") << it->path();
    if (it->is_directory() && it->path().parent_path().parent_path().filename() == "prefixes") {
      EXPECT_NE(it->path().string().find(".incomplete"), std::string::npos) << it->path();
    }
  }
}

}  // namespace
}  // namespace lmstream::store
