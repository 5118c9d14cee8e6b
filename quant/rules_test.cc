// Tests of quant/rules.cc against llama.cpp's Llama-2 tables (../shared/reference/kquants.md
// §4.2-4.3, src/llama-quant.cpp): the full 7B (32 layers) and 13B (40 layers) mixes per file
// type, use_more_bits' layer sets, output/token_embd types, fallbacks and file type ids.
#include "quant/rules.h"

#include <gtest/gtest.h>

#include <set>

namespace lmstream::quant {
namespace {

struct Shape {
  int n_layer, dim, ffn, n_head, n_kv;
};
constexpr Shape k7B{32, 4096, 11008, 32, 32};
constexpr Shape k13B{40, 5120, 13824, 40, 40};

ModelShape ms(const Shape& s, bool tied = false) { return {s.n_layer, s.n_head, s.n_kv, tied}; }

DType type_of(const Shape& s, FileType ft, const std::string& kind, int layer, int64_t cols = 0) {
  std::string name = layer < 0 ? kind : "blk." + std::to_string(layer) + "." + kind;
  if (!cols) cols = kind == "ffn_down.weight" ? s.ffn : s.dim;
  return tensor_type({name, 2, cols}, ms(s), ft);
}

// The layers selected by use_more_bits, as the reference lists them.
TEST(Rules, UseMoreBitsLayerSets) {
  auto sel = [](int n) {
    std::set<int> r;
    for (int i = 0; i < n; ++i)
      if (use_more_bits(i, n)) r.insert(i);
    return r;
  };
  EXPECT_EQ(sel(32), (std::set<int>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
  EXPECT_EQ(sel(40), (std::set<int>{0,  1,  2,  3,  4,  7,  10, 13, 16, 19,
                                    22, 25, 28, 31, 34, 35, 36, 37, 38, 39}));
  EXPECT_EQ(sel(22), (std::set<int>{0, 1, 4, 7, 10, 13, 16, 19, 20, 21}));
}

// One row of the reference's table: what each tensor kind gets in layer i.
struct Expect {
  DType q, k, v, o, gate, up, down;
};

Expect expected(FileType ft, int i, int n) {
  const bool mb = use_more_bits(i, n);
  switch (ft) {
    case FileType::kQ2_K:
      return {kQ2_K, kQ2_K, kQ3_K, kQ3_K, kQ2_K, kQ2_K, kQ3_K};
    case FileType::kQ3_K_M:
      return {kQ3_K, kQ3_K, i < 2 ? kQ5_K : kQ4_K, kQ4_K, kQ3_K, kQ3_K, i < n / 16 ? kQ5_K : kQ4_K};
    case FileType::kQ4_K_S:
      return {kQ4_K, kQ4_K, i < 4 ? kQ5_K : kQ4_K, kQ4_K, kQ4_K, kQ4_K, i < n / 8 ? kQ5_K : kQ4_K};
    case FileType::kQ4_K_M:
      return {kQ4_K, kQ4_K, mb ? kQ6_K : kQ4_K, kQ4_K, kQ4_K, kQ4_K, mb ? kQ6_K : kQ4_K};
    case FileType::kQ5_K_S:
      return {kQ5_K, kQ5_K, kQ5_K, kQ5_K, kQ5_K, kQ5_K, kQ5_K};
    case FileType::kQ5_K_M:
      return {kQ5_K, kQ5_K, mb ? kQ6_K : kQ5_K, kQ5_K, kQ5_K, kQ5_K, mb ? kQ6_K : kQ5_K};
    case FileType::kQ6_K:
      return {kQ6_K, kQ6_K, kQ6_K, kQ6_K, kQ6_K, kQ6_K, kQ6_K};
    case FileType::kQ8_0:
      return {kQ8_0, kQ8_0, kQ8_0, kQ8_0, kQ8_0, kQ8_0, kQ8_0};
    case FileType::kQ4_0:
      return {kQ4_0, kQ4_0, kQ4_0, kQ4_0, kQ4_0, kQ4_0, kQ4_0};
    case FileType::kQ5_0:
      return {kQ5_0, kQ5_0, kQ5_0, kQ5_0, kQ5_0, kQ5_0, kQ5_0};
  }
  return {};
}

TEST(Rules, Llama2MixesPerLayer) {
  for (const Shape& s : {k7B, k13B}) {
    for (FileType ft : all_file_types()) {
      SCOPED_TRACE(std::string(file_type_name(ft)) + " n_layer " + std::to_string(s.n_layer));
      for (int i = 0; i < s.n_layer; ++i) {
        const Expect e = expected(ft, i, s.n_layer);
        EXPECT_EQ(type_of(s, ft, "attn_q.weight", i), e.q) << i;
        EXPECT_EQ(type_of(s, ft, "attn_k.weight", i), e.k) << i;
        EXPECT_EQ(type_of(s, ft, "attn_v.weight", i), e.v) << i;
        EXPECT_EQ(type_of(s, ft, "attn_output.weight", i), e.o) << i;
        EXPECT_EQ(type_of(s, ft, "ffn_gate.weight", i), e.gate) << i;
        EXPECT_EQ(type_of(s, ft, "ffn_up.weight", i), e.up) << i;
        EXPECT_EQ(type_of(s, ft, "ffn_down.weight", i), e.down) << i;
        EXPECT_EQ(
            tensor_type({"blk." + std::to_string(i) + ".attn_norm.weight", 1, s.dim}, ms(s), ft),
            kF32);
        EXPECT_EQ(
            tensor_type({"blk." + std::to_string(i) + ".ffn_norm.weight", 1, s.dim}, ms(s), ft),
            kF32);
      }
      EXPECT_EQ(type_of(s, ft, "output.weight", -1), ft == FileType::kQ8_0 ? kQ8_0 : kQ6_K);
      EXPECT_EQ(type_of(s, ft, "token_embd.weight", -1), file_type_base(ft));
      EXPECT_EQ(tensor_type({"output_norm.weight", 1, s.dim}, ms(s), ft), kF32);
    }
  }
}

// Counts the reference quotes: Q4_K_M / Q5_K_M give Q6_K to exactly half the attn_v and
// ffn_down tensors of 7B (16/32) and 13B (20/40); Q4_K_S's ffn_down threshold n/8 is 5 for 13B.
TEST(Rules, CountsOfBumpedLayers) {
  for (const Shape& s : {k7B, k13B}) {
    int v6 = 0, d6 = 0, d5 = 0;
    for (int i = 0; i < s.n_layer; ++i) {
      v6 += type_of(s, FileType::kQ4_K_M, "attn_v.weight", i) == kQ6_K;
      d6 += type_of(s, FileType::kQ5_K_M, "ffn_down.weight", i) == kQ6_K;
      d5 += type_of(s, FileType::kQ4_K_S, "ffn_down.weight", i) == kQ5_K;
    }
    EXPECT_EQ(v6, s.n_layer / 2);
    EXPECT_EQ(d6, s.n_layer / 2);
    EXPECT_EQ(d5, s.n_layer == 32 ? 4 : 5);
  }
}

// Sizes from the reference's §4.4 ("today" column where it differs), computed from the rules.
TEST(Rules, FileSizesMatchTheReference) {
  auto bytes_per_block = [](DType t) -> double {
    switch (uint32_t(t)) {
      case 2:
        return 18.0 / 32;
      case 6:
        return 22.0 / 32;
      case 8:
        return 34.0 / 32;
      case 10:
        return 84.0 / 256;
      case 11:
        return 110.0 / 256;
      case 12:
        return 144.0 / 256;
      case 13:
        return 176.0 / 256;
      case 14:
        return 210.0 / 256;
      case 0:
        return 4;
    }
    return 0;
  };
  auto size = [&](const Shape& s, FileType ft) {
    double b = 0;
    const int64_t vocab = 32000;
    b += bytes_per_block(type_of(s, ft, "token_embd.weight", -1)) * double(vocab * s.dim);
    b += bytes_per_block(type_of(s, ft, "output.weight", -1)) * double(vocab * s.dim);
    b += 4.0 * s.dim * (2 * s.n_layer + 1);
    const double dd = double(s.dim) * s.dim, df = double(s.dim) * s.ffn;
    for (int i = 0; i < s.n_layer; ++i) {
      for (const char* k :
           {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"})
        b += bytes_per_block(type_of(s, ft, k, i)) * dd;
      for (const char* k : {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"})
        b += bytes_per_block(type_of(s, ft, k, i)) * df;
    }
    return b / 1e9;
  };
  EXPECT_NEAR(size(k7B, FileType::kQ4_K_M), 4.080, 0.0015);
  EXPECT_NEAR(size(k13B, FileType::kQ4_K_M), 7.865, 0.0015);
  EXPECT_NEAR(size(k7B, FileType::kQ5_K_M), 4.782, 0.0015);
  EXPECT_NEAR(size(k13B, FileType::kQ5_K_M), 9.229, 0.0015);
  EXPECT_NEAR(size(k7B, FileType::kQ6_K), 5.528, 0.0015);
  EXPECT_NEAR(size(k13B, FileType::kQ6_K), 10.678, 0.0015);
  EXPECT_NEAR(size(k7B, FileType::kQ3_K_M), 3.297, 0.0015);
  EXPECT_NEAR(size(k7B, FileType::kQ4_K_S), 3.856, 0.0015);
  EXPECT_NEAR(size(k13B, FileType::kQ4_K_S), 7.422, 0.0015);
  EXPECT_NEAR(size(k7B, FileType::kQ5_K_S), 4.651, 0.0015);
  EXPECT_NEAR(size(k7B, FileType::kQ2_K), 2.532, 0.0015);
  EXPECT_NEAR(size(k13B, FileType::kQ2_K), 4.854, 0.0015);
}

TEST(Rules, GroupedQueryAttentionAnd70B) {
  // n_gqa >= 4: Q2_K's attn_v becomes Q4_K; a 70B (80 layers, GQA) then bumps it to Q5_K.
  ModelShape gqa{32, 32, 8, false};
  EXPECT_EQ(tensor_type({"blk.5.attn_v.weight", 2, 4096}, gqa, FileType::kQ2_K), kQ4_K);
  ModelShape l70{80, 64, 8, false};
  EXPECT_EQ(tensor_type({"blk.5.attn_v.weight", 2, 8192}, l70, FileType::kQ2_K), kQ5_K);
  EXPECT_EQ(tensor_type({"blk.5.attn_v.weight", 2, 8192}, l70, FileType::kQ3_K_M), kQ5_K);
  EXPECT_EQ(tensor_type({"blk.5.attn_v.weight", 2, 8192}, l70, FileType::kQ4_K_S), kQ5_K);
  // Q4_K_M: layer 20 of 80 is not a use_more_bits layer (Q4_K -> Q5_K), layer 12 is (Q6_K).
  EXPECT_EQ(tensor_type({"blk.20.attn_v.weight", 2, 8192}, l70, FileType::kQ4_K_M), kQ5_K);
  EXPECT_EQ(tensor_type({"blk.12.attn_v.weight", 2, 8192}, l70, FileType::kQ4_K_M), kQ6_K);
  // ffn_down is not bumped for 70B.
  EXPECT_EQ(tensor_type({"blk.20.ffn_down.weight", 2, 28672}, l70, FileType::kQ4_K_M), kQ4_K);
}

TEST(Rules, TiedEmbeddingIsQuantizedAsTheOutput) {
  ModelShape tied{32, 32, 32, true};
  EXPECT_EQ(tensor_type({"token_embd.weight", 2, 4096}, tied, FileType::kQ4_K_M), kQ6_K);
  EXPECT_EQ(tensor_type({"token_embd.weight", 2, 4096}, tied, FileType::kQ8_0), kQ8_0);
}

TEST(Rules, RowsNotAMultipleOf256FallBack) {
  ModelShape m{4, 8, 2, false};
  // 704 = 2.75 x 256 (the "small" test shape's ffn_down rows), 96 = 3 x 32, 48 none.
  EXPECT_EQ(tensor_type({"blk.3.ffn_down.weight", 2, 704}, m, FileType::kQ4_K_M), kQ8_0);  // Q6_K
  EXPECT_EQ(tensor_type({"blk.1.ffn_down.weight", 2, 704}, m, FileType::kQ4_K_M), kQ5_0);  // Q4_K
  EXPECT_EQ(tensor_type({"blk.1.ffn_down.weight", 2, 704}, m, FileType::kQ5_K_S), kQ5_1);
  EXPECT_EQ(tensor_type({"blk.1.ffn_down.weight", 2, 704}, m, FileType::kQ3_K_M), kQ5_0);  // Q4_K
  EXPECT_EQ(tensor_type({"blk.1.ffn_up.weight", 2, 704}, m, FileType::kQ3_K_M), kQ4_0);
  EXPECT_EQ(tensor_type({"blk.1.ffn_up.weight", 2, 704}, m, FileType::kQ2_K), kQ4_0);
  EXPECT_EQ(tensor_type({"blk.1.ffn_up.weight", 2, 704}, m, FileType::kQ6_K), kQ8_0);
  // output: row not a multiple of the base type's block -> Q8_0.
  EXPECT_EQ(tensor_type({"output.weight", 2, 96}, m, FileType::kQ4_K_M), kQ8_0);
  EXPECT_EQ(tensor_type({"output.weight", 2, 96}, m, FileType::kQ4_0), kQ8_0);  // Q6_K fallback
  EXPECT_EQ(tensor_type({"output.weight", 2, 256}, m, FileType::kQ4_0), kQ6_K);
  // Not even a multiple of 32: F16.
  EXPECT_EQ(tensor_type({"blk.1.attn_q.weight", 2, 48}, m, FileType::kQ4_K_M), kF16);
  EXPECT_EQ(tensor_type({"blk.1.attn_q.weight", 2, 48}, m, FileType::kQ8_0), kF16);
  EXPECT_EQ(tensor_type({"output.weight", 2, 48}, m, FileType::kQ6_K), kF16);
}

TEST(Rules, FileTypeIdsAndNames) {
  EXPECT_EQ(uint32_t(*file_type_from_name("Q4_K_M")), 15u);
  EXPECT_EQ(uint32_t(*file_type_from_name("q4_k_s")), 14u);
  EXPECT_EQ(uint32_t(*file_type_from_name("Q5_K_M")), 17u);
  EXPECT_EQ(uint32_t(*file_type_from_name("Q5_K_S")), 16u);
  EXPECT_EQ(uint32_t(*file_type_from_name("Q6_K")), 18u);
  EXPECT_EQ(uint32_t(*file_type_from_name("Q3_K_M")), 12u);
  EXPECT_EQ(uint32_t(*file_type_from_name("Q2_K")), 10u);
  EXPECT_EQ(uint32_t(*file_type_from_name("Q8_0")), 7u);
  EXPECT_EQ(uint32_t(*file_type_from_name("Q4_0")), 2u);
  EXPECT_EQ(uint32_t(*file_type_from_name("Q5_0")), 8u);
  EXPECT_FALSE(file_type_from_name("Q4_K"));
  EXPECT_FALSE(file_type_from_name("IQ2_XS"));
  EXPECT_EQ(all_file_types().size(), 10u);
}

TEST(Rules, BadLayerIndexIsAnError) {
  EXPECT_THROW(tensor_type({"blk.32.attn_v.weight", 2, 4096}, ms(k7B), FileType::kQ4_K_M),
               std::invalid_argument);
  EXPECT_THROW(tensor_type({"blk.x.attn_v.weight", 2, 4096}, ms(k7B), FileType::kQ4_K_M),
               std::invalid_argument);
}

}  // namespace
}  // namespace lmstream::quant
