// One test per class of bad model file: each must fail with a ModelError whose message starts with
// the file's path and names the problem, never crash.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "model/test_util.h"

namespace lmstream {
namespace {

using testing::slurp;
using testing::spit;
using testing::TempDir;

void expect_error(const std::string& path, const std::string& needle,
                  const std::string& prefix = "") {
  try {
    load_model(path);
    ADD_FAILURE() << "loaded " << path << ", expected: " << needle;
  } catch (const ModelError& e) {
    std::string w = e.what();
    EXPECT_EQ(w.rfind(prefix.empty() ? path : prefix, 0), 0u) << w;
    EXPECT_NE(w.find(needle), std::string::npos) << "message: " << w << "\nexpected: " << needle;
  }
}

// Offset of the tensor info for `name` (at its name's length prefix).
size_t tensor_info(const std::string& f, const std::string& name) {
  std::string key(8, '\0');
  uint64_t n = name.size();
  std::memcpy(key.data(), &n, 8);
  key += name;
  size_t at = f.rfind(key);
  EXPECT_NE(at, std::string::npos);
  return at + key.size();  // -> n_dims
}

template <class T>
void poke(std::string& f, size_t at, T v) {
  std::memcpy(f.data() + at, &v, sizeof v);
}

class BadGguf : public ::testing::Test {
 protected:
  void SetUp() override {
    good = slurp(testing::make_micro(dir / "good.gguf", "gguf", DType::Q8_0));
  }
  std::string write(const std::string& bytes) {
    spit(dir / "bad.gguf", bytes);
    return dir / "bad.gguf";
  }
  TempDir dir;
  std::string good;
};

TEST_F(BadGguf, Truncated) { expect_error(write(good.substr(0, good.size() / 2)), "truncated"); }
TEST_F(BadGguf, TruncatedInHeader) { expect_error(write(good.substr(0, 100)), "truncated"); }
TEST_F(BadGguf, EmptyFile) { expect_error(write(""), "truncated"); }
TEST_F(BadGguf, WrongMagic) {
  std::string f = good;
  f[0] = 'X';
  expect_error(write(f), "bad magic");
}
TEST_F(BadGguf, UnsupportedVersion) {
  std::string f = good;
  poke<uint32_t>(f, 4, 1);
  expect_error(write(f), "unsupported GGUF version 1");
}
TEST_F(BadGguf, StringLengthPastEof) {
  std::string f = good;
  poke<uint64_t>(f, 24, 1ull << 60);  // first key's length
  expect_error(write(f), "runs past the end");
}
TEST_F(BadGguf, AbsurdTensorCount) {
  std::string f = good;
  poke<uint64_t>(f, 8, 1ull << 40);
  expect_error(write(f), "absurd tensor count");
}
TEST_F(BadGguf, AbsurdArrayLength) {
  std::string f = good;
  size_t at = f.find("tokenizer.ggml.scores") + 21 + 4 + 4;  // key, value type, element type
  poke<uint64_t>(f, at, ~0ull);
  expect_error(write(f), "runs past the end");
}
TEST_F(BadGguf, OffsetOutOfRange) {
  std::string f = good;
  poke<uint64_t>(f, tensor_info(f, "output.weight") + 4 + 16 + 4, uint64_t(1) << 62);
  expect_error(write(f), "out of range: tensor 'output.weight'");
}
TEST_F(BadGguf, OffsetOverflow) {
  std::string f = good;
  poke<uint64_t>(f, tensor_info(f, "output.weight") + 4 + 16 + 4, ~uint64_t(31));
  expect_error(write(f), "out of range: tensor 'output.weight'");
}
TEST_F(BadGguf, MisalignedOffset) {
  std::string f = good;
  size_t at = tensor_info(f, "blk.0.attn_k.weight") + 4 + 16 + 4;
  uint64_t off;
  std::memcpy(&off, f.data() + at, 8);
  poke<uint64_t>(f, at, off + 1);
  expect_error(write(f), "not a multiple of the alignment");
}
TEST_F(BadGguf, UnknownTensorType) {
  std::string f = good;
  poke<uint32_t>(f, tensor_info(f, "blk.0.attn_k.weight") + 4 + 16, 18);
  expect_error(write(f), "tensor 'blk.0.attn_k.weight' has unsupported tensor type 18 (IQ3_XXS)");
  std::string g = good;
  poke<uint32_t>(g, tensor_info(g, "blk.0.attn_q.weight") + 4 + 16, 34);
  expect_error(write(g), "tensor 'blk.0.attn_q.weight' has unsupported tensor type 34 (TQ1_0)");
  std::string h = good;
  poke<uint32_t>(h, tensor_info(h, "blk.0.attn_q.weight") + 4 + 16, 9);
  expect_error(write(h), "unsupported tensor type 9 (Q8_1)");
}
TEST_F(BadGguf, MissingTensor) {
  std::string f = good;
  size_t at = tensor_info(f, "blk.1.ffn_up.weight") - 9;
  f.replace(at, 6, "ffn_uq");
  expect_error(write(f), "missing tensor 'blk.1.ffn_up.weight'");
}
TEST_F(BadGguf, ShapeMismatch) {
  std::string f = good;
  poke<int64_t>(f, tensor_info(f, "blk.0.attn_q.weight") + 4 + 8, 32);  // ne[1]: 64 -> 32 rows
  expect_error(write(f),
               "shape mismatch for tensor 'blk.0.attn_q.weight': expected [64, 64], got [32, 64]");
}
TEST_F(BadGguf, QuantizedRowNotMultipleOf32) {
  std::string f = good;
  poke<int64_t>(f, tensor_info(f, "blk.0.attn_q.weight") + 4, 48);
  expect_error(write(f), "not a multiple of 32");
}
TEST_F(BadGguf, UnsupportedArchitecture) {
  std::string f = good;
  size_t at = f.find("general.architecture") + 20 + 4 + 8;
  f.replace(at, 5, "gpt2x");
  expect_error(write(f), "unsupported architecture 'gpt2x'");
}
TEST_F(BadGguf, MissingMetadata) {
  std::string f = good;
  f.replace(f.find("llama.block_count"), 17, "llama.block_cnt__");
  expect_error(write(f), "missing metadata key 'llama.block_count'");
}
TEST_F(BadGguf, AbsurdConfig) {
  std::string f = good;
  poke<uint32_t>(f, f.find("llama.attention.head_count_kv") + 29 + 4, 3);
  expect_error(write(f), "invalid model configuration");
}

class BadHf : public ::testing::Test {
 protected:
  void SetUp() override { d = testing::make_micro(dir / "hf", "hf", DType::F16); }
  std::string st() const { return d + "/model.safetensors"; }
  // Rewrites the safetensors header through `edit`, keeping the data.
  void edit_header(const std::function<void(nlohmann::ordered_json&)>& edit) {
    std::string f = slurp(st());
    uint64_t n;
    std::memcpy(&n, f.data(), 8);
    auto h = nlohmann::ordered_json::parse(f.substr(8, n));
    edit(h);
    std::string hs = h.dump();
    uint64_t m = hs.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &m, 8);
    spit(st(), out + hs + f.substr(8 + n));
  }
  TempDir dir;
  std::string d;
};

TEST_F(BadHf, TruncatedSafetensors) {
  spit(st(), slurp(st()).substr(0, 5000));
  expect_error(d, "out of range", st());
}
TEST_F(BadHf, TinySafetensors) {
  spit(st(), "abc");
  expect_error(d, "truncated", st());
}
TEST_F(BadHf, AbsurdHeaderLength) {
  std::string f = slurp(st());
  poke<uint64_t>(f, 0, 1ull << 40);
  spit(st(), f);
  expect_error(d, "absurd", st());
}
TEST_F(BadHf, InvalidJson) {
  std::string f = slurp(st());
  f[8] = '[';
  f[9] = '}';
  spit(st(), f);
  expect_error(d, "not valid JSON", st());
}
TEST_F(BadHf, DuplicateNames) {
  std::string f = slurp(st());
  uint64_t n;
  std::memcpy(&n, f.data(), 8);
  std::string h = f.substr(8, n);
  size_t a = h.find("\"model.norm.weight\"");
  size_t b = h.find("\"model.layers.0.input_layernorm.weight\"");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  // Same length names: "model.layers.0.input_layernorm.weight" ->
  // "model.layers.1.input_layernorm.weight".
  h.replace(b, 16, "\"model.layers.1.");
  f.replace(8, n, h);
  spit(st(), f);
  expect_error(d, "duplicate tensor name 'model.layers.1.input_layernorm.weight'", st());
}
TEST_F(BadHf, OffsetsOutsideBuffer) {
  edit_header([](auto& h) {
    h["model.norm.weight"]["data_offsets"] = {1ull << 50, (1ull << 50) + 128};
  });
  expect_error(d, "out of range", st());
}
TEST_F(BadHf, UnknownDtype) {
  edit_header([](auto& h) { h["model.norm.weight"]["dtype"] = "F17"; });
  expect_error(d, "unknown dtype 'F17'", st());
}
TEST_F(BadHf, UnsupportedDtype) {
  edit_header([](auto& h) { h["model.norm.weight"]["dtype"] = "I16"; });
  expect_error(d, "tensor 'model.norm.weight' has dtype I16", st());
}
TEST_F(BadHf, MissingTensor) {
  edit_header([](auto& h) {
    auto v = h["model.layers.1.mlp.up_proj.weight"];
    h.erase("model.layers.1.mlp.up_proj.weight");
    h["model.layers.1.mlp.upp_proj.weight"] = v;
  });
  expect_error(d, "missing tensor 'model.layers.1.mlp.up_proj.weight'");
}
TEST_F(BadHf, ShapeMismatch) {
  edit_header([](auto& h) { h["model.layers.0.mlp.down_proj.weight"]["shape"] = {192, 64}; });
  expect_error(d,
               "shape mismatch for tensor 'model.layers.0.mlp.down_proj.weight': expected [64, "
               "192], got [192, 64]");
}
TEST_F(BadHf, UnsupportedArchitecture) {
  auto c = nlohmann::json::parse(slurp(d + "/config.json"));
  c["architectures"] = {"MistralForCausalLM"};
  c["model_type"] = "mistral";
  spit(d + "/config.json", c.dump());
  expect_error(d, "unsupported architecture 'MistralForCausalLM'", d + "/config.json");
}
TEST_F(BadHf, ConfigNotJson) {
  spit(d + "/config.json", "{\"hidden_size\": ");
  expect_error(d, "invalid JSON", d + "/config.json");
}
TEST_F(BadHf, MissingConfigValue) {
  auto c = nlohmann::json::parse(slurp(d + "/config.json"));
  c.erase("hidden_size");
  spit(d + "/config.json", c.dump());
  expect_error(d, "missing key 'hidden_size'", d + "/config.json");
}
TEST_F(BadHf, ShardIndexNamesMissingFile) {
  spit(d + "/model.safetensors.index.json",
       R"({"weight_map":{"model.norm.weight":"model-00009-of-00009.safetensors"}})");
  expect_error(d, "cannot open", d + "/model-00009-of-00009.safetensors");
}
TEST(BadPath, Nonexistent) { expect_error("/nonexistent/model.gguf", "no such file"); }

}  // namespace
}  // namespace lmstream
