// Hugging Face directory tests: safetensors round trip, sharding, GGUF/HF equivalence for one
// seed, config/tokenizer/generation files, norms and --quantize.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "model/mmap.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "model/test_util.h"

namespace lmstream {
namespace {

using testing::TempDir;

std::vector<float> rowf(const Tensor& t, int64_t r) {
  std::vector<float> v(size_t(t.cols));
  dequantize_row(t.type, t.row(r), v.data(), t.cols);
  return v;
}

TEST(Hf, LoadsConfigTokenizerAndGenerationDefaults) {
  TempDir dir;
  auto m = load_model(testing::make_micro(dir / "hf", "hf", DType::BF16, 9));
  EXPECT_EQ(m->format, "hf");
  EXPECT_EQ(m->name, "hf");
  EXPECT_EQ(m->cfg.rope_layout, RopeLayout::kHalfSplit);
  EXPECT_EQ(m->cfg.dim, 64);
  EXPECT_EQ(m->cfg.n_kv_heads, 2);
  EXPECT_EQ(m->tokenizer.sp_model_path, dir / "hf/tokenizer.model");
  EXPECT_TRUE(m->tokenizer.add_bos);
  EXPECT_NE(m->tokenizer.chat_template.find("<<SYS>>"), std::string::npos);
  EXPECT_TRUE(m->generation.has_temperature);
  EXPECT_FLOAT_EQ(m->generation.temperature, 0.6f);
  EXPECT_TRUE(m->generation.has_top_p);
  EXPECT_FALSE(m->generation.has_top_k);
  EXPECT_EQ(m->layers[0].wq.type, DType::BF16);
  EXPECT_EQ(m->layers[0].attn_norm.type, DType::F32);  // norms always become F32
  std::vector<float> n(64);
  test_model_row(9, "model.layers.0.input_layernorm.weight", 0, 64, n.data());
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(reinterpret_cast<const float*>(m->layers[0].attn_norm.data)[i],
              bf16_to_fp32(fp32_to_bf16(n[i])));
}

TEST(Hf, SameSeedGivesTheSameModelAsGguf) {
  TempDir dir;
  auto h = load_model(testing::make_micro(dir / "hf", "hf", DType::F16, 21));
  auto g = load_model(testing::make_micro(dir / "m.gguf", "gguf", DType::F16, 21));
  for (int l = 0; l < 2; ++l) {
    const LayerWeights &a = h->layers[size_t(l)], &b = g->layers[size_t(l)];
    for (int64_t r = 0; r < a.wq.rows; ++r)
      EXPECT_EQ(rowf(b.wq, r), rowf(a.wq, hf_row_for_gguf_row(r, a.wq.rows, 4)));
    for (int64_t r = 0; r < a.wk.rows; ++r)
      EXPECT_EQ(rowf(b.wk, r), rowf(a.wk, hf_row_for_gguf_row(r, a.wk.rows, 2)));
    for (auto [x, y] : {std::pair{&a.wv, &b.wv},
                        {&a.wo, &b.wo},
                        {&a.w_gate, &b.w_gate},
                        {&a.w_up, &b.w_up},
                        {&a.w_down, &b.w_down},
                        {&a.attn_norm, &b.attn_norm},
                        {&a.ffn_norm, &b.ffn_norm}})
      for (int64_t r = 0; r < x->rows; ++r) ASSERT_EQ(rowf(*x, r), rowf(*y, r));
  }
  for (int64_t r = 0; r < h->tok_embd.rows; r += 17)
    EXPECT_EQ(rowf(h->tok_embd, r), rowf(g->tok_embd, r));
  EXPECT_EQ(rowf(h->output, 5), rowf(g->output, 5));
  EXPECT_EQ(rowf(h->out_norm, 0), rowf(g->out_norm, 0));
  EXPECT_EQ(h->weight_bytes(), g->weight_bytes());  // HF F16 norms become F32 like GGUF's
}

TEST(Hf, ShardedEqualsSingleFile) {
  TempDir dir;
  auto one = load_model(testing::make_micro(dir / "one", "hf", DType::F32, 4));
  auto three = load_model(testing::make_micro(dir / "three", "hf", DType::F32, 4, false, 3));
  EXPECT_EQ(three->maps.size(), 3u);
  EXPECT_EQ(rowf(one->layers[1].w_up, 100), rowf(three->layers[1].w_up, 100));
  EXPECT_EQ(rowf(one->output, 3), rowf(three->output, 3));
  // The safetensors data is used in place: w_up points into one of the mappings.
  bool inside = false;
  for (const auto& f : three->maps)
    inside |= three->layers[1].w_up.data >= f->data() &&
              three->layers[1].w_up.data < f->data() + f->size();
  EXPECT_TRUE(inside);
}

TEST(Hf, TiedAndQuantized) {
  TempDir dir;
  LoadOptions o;
  o.quantize = DType::Q4_0;
  auto m = load_model(testing::make_micro(dir / "tied", "hf", DType::F32, 2, true), o);
  EXPECT_TRUE(m->cfg.tie_embeddings);
  EXPECT_EQ(m->output.data, m->tok_embd.data);
  EXPECT_EQ(m->layers[0].wk.type, DType::Q4_0);
  EXPECT_EQ(m->out_norm.type, DType::F32);
}

TEST(Hf, QuantizedDtypeIsRejectedForHf) {
  TempDir dir;
  EXPECT_THROW(testing::make_micro(dir / "x", "hf", DType::Q8_0), std::invalid_argument);
}

TEST(Hf, ConfigDefaultsAndTransformersV5RopeParameters) {
  TempDir dir;
  std::string d = testing::make_micro(dir / "hf", "hf", DType::F32);
  nlohmann::json c = nlohmann::json::parse(testing::slurp(d + "/config.json"));
  c.erase("rms_norm_eps");
  c.erase("rope_theta");
  c.erase("num_key_value_heads");
  c["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  testing::spit(d + "/config.json", c.dump());
  // Without num_key_value_heads the checkpoint has too few K rows: shape error names the tensor.
  try {
    load_model(d);
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.self_attn.k_proj.weight"),
              std::string::npos)
        << e.what();
  }
  c["num_key_value_heads"] = 2;
  testing::spit(d + "/config.json", c.dump());
  auto m = load_model(d);
  EXPECT_FLOAT_EQ(m->cfg.rms_eps, 1e-6f);
  EXPECT_FLOAT_EQ(m->cfg.rope_theta, 500000.f);
}

TEST(Safetensors, ParsesHeader) {
  std::string hdr =
      R"({"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"__metadata__":{"k":"v"}})";
  std::string f(8, '\0');
  uint64_t n = hdr.size();
  std::memcpy(f.data(), &n, 8);
  f += hdr + std::string(12, 'x');
  auto h = parse_safetensors(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "mem");
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors["a"].type, DType::F16);
  EXPECT_EQ(h.tensors["a"].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors["a"].begin, 8 + n);
}

}  // namespace
}  // namespace lmstream
