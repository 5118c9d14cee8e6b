// Helpers shared by the model/ tests: a temporary directory, file byte editing, micro models.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "model/testgen.h"

namespace lmstream::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lms_model_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream o(path, std::ios::binary | std::ios::trunc);
  o.write(bytes.data(), std::streamsize(bytes.size()));
}

inline std::string make_micro(const std::string& out, const std::string& format, DType dtype,
                              uint64_t seed = 7, bool tie = false, int shards = 1) {
  TestModelOptions o;
  o.out = out;
  o.format = format;
  o.dtype = dtype;
  o.seed = seed;
  o.tie = tie;
  o.hf_shards = shards;
  make_test_model(o);
  return out;
}

}  // namespace lmstream::testing
