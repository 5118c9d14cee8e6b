// GGUF reader tests: every metadata value type incl. nested arrays, writer -> reader round trips
// for all five weight types, tied output and --quantize.
#include <gtest/gtest.h>

#include <vector>

#include "model/gguf.h"
#include "model/mmap.h"
#include "model/model.h"
#include "model/test_util.h"

namespace lmstream {
namespace {

using testing::TempDir;

struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
};

TEST(Gguf, ParsesEveryValueTypeAndNestedArrays) {
  Bytes x;
  x.b = "GGUF";
  x.put<uint32_t>(2).put<uint64_t>(1).put<uint64_t>(15);
  x.str("u8").put<uint32_t>(0).put<uint8_t>(200);
  x.str("i8").put<uint32_t>(1).put<int8_t>(-5);
  x.str("u16").put<uint32_t>(2).put<uint16_t>(60000);
  x.str("i16").put<uint32_t>(3).put<int16_t>(-300);
  x.str("u32").put<uint32_t>(4).put<uint32_t>(4000000000u);
  x.str("i32").put<uint32_t>(5).put<int32_t>(-7);
  x.str("f32").put<uint32_t>(6).put<float>(1.5f);
  x.str("bool").put<uint32_t>(7).put<uint8_t>(1);
  x.str("str").put<uint32_t>(8).str("hello");
  x.str("u64").put<uint32_t>(10).put<uint64_t>(1ull << 40);
  x.str("i64").put<uint32_t>(11).put<int64_t>(-(1ll << 40));
  x.str("f64").put<uint32_t>(12).put<double>(0.25);
  x.str("arr_s").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(2).str("a").str("bc");
  x.str("arr_f").put<uint32_t>(9).put<uint32_t>(6).put<uint64_t>(2).put<float>(1.f).put<float>(2.f);
  x.str("nested").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(2);
  x.put<uint32_t>(5).put<uint64_t>(1).put<int32_t>(42);
  x.put<uint32_t>(7).put<uint64_t>(2).put<uint8_t>(0).put<uint8_t>(1);
  x.str("t").put<uint32_t>(2).put<int64_t>(32).put<int64_t>(2).put<uint32_t>(8).put<uint64_t>(0);
  x.b.resize((x.b.size() + 31) / 32 * 32, '\0');
  x.b += std::string(2 * 34, '\1');
  GgufFile g = parse_gguf(reinterpret_cast<const uint8_t*>(x.b.data()), x.b.size(), "mem");
  EXPECT_EQ(g.version, 2u);
  EXPECT_EQ(g.find("u8")->i, 200);
  EXPECT_EQ(g.find("i8")->i, -5);
  EXPECT_EQ(g.find("u16")->i, 60000);
  EXPECT_EQ(g.find("i16")->i, -300);
  EXPECT_EQ(g.find("u32")->i, 4000000000ll);
  EXPECT_EQ(g.find("i32")->i, -7);
  EXPECT_EQ(g.find("f32")->f, 1.5);
  EXPECT_EQ(g.find("bool")->i, 1);
  EXPECT_EQ(g.find("str")->s, "hello");
  EXPECT_EQ(g.find("u64")->i, 1ll << 40);
  EXPECT_EQ(g.find("i64")->i, -(1ll << 40));
  EXPECT_EQ(g.find("f64")->f, 0.25);
  EXPECT_EQ(g.find("arr_s")->strs, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(g.find("arr_f")->floats, (std::vector<double>{1.0, 2.0}));
  const GgufValue* n = g.find("nested");
  ASSERT_EQ(n->arrs.size(), 2u);
  EXPECT_EQ(n->arrs[0].ints, std::vector<int64_t>{42});
  EXPECT_EQ(n->arrs[1].ints, (std::vector<int64_t>{0, 1}));
  ASSERT_EQ(g.tensors.size(), 1u);
  EXPECT_EQ(g.tensors[0].type, DType::Q8_0);
  EXPECT_EQ(g.tensors[0].nbytes, 68u);
  EXPECT_EQ(g.data_offset % 32, 0u);
}

class GgufRoundTrip : public ::testing::TestWithParam<DType> {};

TEST_P(GgufRoundTrip, WeightsAreWhatTheGeneratorProduced) {
  TempDir dir;
  const DType t = GetParam();
  auto m = load_model(testing::make_micro(dir / "m.gguf", "gguf", t, 11));
  EXPECT_EQ(m->format, "gguf");
  const LlamaConfig& c = m->cfg;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.ffn_dim, 192);
  EXPECT_EQ(c.max_pos, 256);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_EQ(c.rope_layout, RopeLayout::kInterleaved);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_EQ(size_t(c.vocab_size), m->tokenizer.tokens.size());
  EXPECT_EQ(m->tokenizer.tokens[1], "<s>");
  EXPECT_EQ(m->tokenizer.types[3], TokenType::kByte);
  EXPECT_EQ(m->tokenizer.types[0], TokenType::kUnknown);
  EXPECT_TRUE(m->tokenizer.add_bos);
  EXPECT_FALSE(m->tokenizer.add_eos);
  EXPECT_NE(m->tokenizer.chat_template.find("[INST]"), std::string::npos);
  EXPECT_EQ(m->layers[0].wq.type, t);
  EXPECT_EQ(m->layers[1].attn_norm.type, DType::F32);
  EXPECT_EQ(m->maps.size(), 1u);

  // wq row r holds HF row hf_row_for_gguf_row(r), in the file's type, in place in the mapping.
  const Tensor& wq = m->layers[1].wq;
  const uint8_t* base = m->maps[0]->data();
  EXPECT_TRUE(wq.data >= base && wq.data + wq.nbytes() <= base + m->maps[0]->size());
  std::vector<float> row(64);
  std::vector<uint8_t> expect(wq.row_bytes());
  for (int64_t r = 0; r < wq.rows; ++r) {
    test_model_row(11, "model.layers.1.self_attn.q_proj.weight", hf_row_for_gguf_row(r, wq.rows, 4),
                   64, row.data());
    quantize_row(t, row.data(), expect.data(), 64);
    ASSERT_EQ(0, std::memcmp(expect.data(), wq.row(r), wq.row_bytes())) << r;
  }
  std::vector<float> norm(64);
  test_model_row(11, "model.norm.weight", 0, 64, norm.data());
  if (t == DType::F16 || t == DType::BF16) {  // norms are F32 holding the model type's values
    std::vector<uint8_t> tmp(128);
    quantize_row(t, norm.data(), tmp.data(), 64);
    dequantize_row(t, tmp.data(), norm.data(), 64);
  }
  EXPECT_EQ(0, std::memcmp(norm.data(), m->out_norm.data, 64 * 4));
  size_t expect_bytes = 0;
  for (const Tensor* x : {&m->tok_embd, &m->output, &m->out_norm}) expect_bytes += x->nbytes();
  for (const auto& l : m->layers)
    for (const Tensor* x :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      expect_bytes += x->nbytes();
  EXPECT_EQ(m->weight_bytes(), expect_bytes);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgufRoundTrip,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                                           DType::Q4_0),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Gguf, TiedOutputIsTheEmbeddingView) {
  TempDir dir;
  auto m = load_model(testing::make_micro(dir / "t.gguf", "gguf", DType::Q8_0, 3, true));
  EXPECT_TRUE(m->cfg.tie_embeddings);
  EXPECT_EQ(m->output.data, m->tok_embd.data);
  auto untied = load_model(testing::make_micro(dir / "u.gguf", "gguf", DType::Q8_0, 3, false));
  EXPECT_EQ(m->weight_bytes() + m->output.nbytes(), untied->weight_bytes());
}

TEST(Gguf, QuantizeAtLoadConvertsMatricesOnly) {
  TempDir dir;
  LoadOptions o;
  o.quantize = DType::Q8_0;
  auto m = load_model(testing::make_micro(dir / "f.gguf", "gguf", DType::F16, 5), o);
  EXPECT_EQ(m->layers[0].w_down.type, DType::Q8_0);
  EXPECT_EQ(m->output.type, DType::Q8_0);
  EXPECT_EQ(m->layers[0].ffn_norm.type, DType::F32);
  auto f = load_model(dir / "f.gguf");
  std::vector<float> row(192);
  std::vector<uint8_t> q(dtype_row_bytes(DType::Q8_0, 192));
  dequantize_row(DType::F16, f->layers[0].w_down.row(5), row.data(), 192);
  quantize_row(DType::Q8_0, row.data(), q.data(), 192);
  EXPECT_EQ(0, std::memcmp(q.data(), m->layers[0].w_down.row(5), q.size()));
}

}  // namespace
}  // namespace lmstream
