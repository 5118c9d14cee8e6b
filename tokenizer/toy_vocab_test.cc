// VocabTokenizer against libsentencepiece on small generated BPE models that Llama-2's vocabulary
// cannot exercise: many equal scores (tie order), UNUSED pieces (merged through, split back) and
// USER_DEFINED pieces (never split or merged). The models are serialized with model/spm_proto.h.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <set>

#include "model/spm_proto.h"
#include "tokenizer/test_support.h"
#include "tokenizer/tokenizer.h"

namespace lmstream {
namespace {

using testing::escape;

constexpr const char* kU = "\xE2\x96\x81";

// <unk> <s> </s>, byte pieces, single characters, then random 2-4 character merges.
std::vector<SpPiece> toy_pieces(uint64_t seed) {
  testing::Rng rng(seed);
  std::vector<SpPiece> p = {{"<unk>", 0, TokenType::kUnknown},
                            {"<s>", 0, TokenType::kControl},
                            {"</s>", 0, TokenType::kControl}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    p.push_back({name, 0, TokenType::kByte});
  }
  p.push_back({"<tag>", 0, TokenType::kUserDefined});
  p.push_back({"ab", 0, TokenType::kUserDefined});
  const std::vector<std::string> chars = {"a", "b", "c", kU, "\xC3\xA9"};
  for (const auto& c : chars) p.push_back({c, -100, TokenType::kNormal});
  std::set<std::string> seen = {"ab"};
  for (int k = 0; k < 60; ++k) {
    std::string s;
    for (size_t n = 2 + rng.below(3); n > 0; --n) s += rng.pick(chars);
    if (!seen.insert(s).second) continue;
    const float score = -float(1 + rng.below(3));  // few distinct scores: many ties
    const TokenType t = rng.below(5) == 0 ? TokenType::kUnused : TokenType::kNormal;
    p.push_back({s, score, t});
  }
  return p;
}

TEST(ToyVocab, MatchesSentencePiece) {
  const std::vector<std::string> alphabet = {"a", "b", "c", " ", "\xC3\xA9", "<tag>", "x", "\xFF"};
  size_t failures = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const std::vector<SpPiece> pieces = toy_pieces(seed);
    sentencepiece::SentencePieceProcessor sp;
    auto st = sp.LoadFromSerializedProto(encode_sp_model(pieces));
    ASSERT_TRUE(st.ok()) << st.ToString();
    TokenizerSpec spec;
    for (const auto& p : pieces) {
      spec.tokens.push_back(p.piece);
      spec.scores.push_back(p.score);
      spec.types.push_back(p.type);
    }
    auto tok = make_tokenizer(spec);
    testing::Rng rng(seed * 1000);
    for (int k = 0; k < 400; ++k) {
      std::string s;
      for (size_t n = rng.below(16); n > 0; --n) s += rng.pick(alphabet);
      const std::vector<int> want = sp.EncodeAsIds(s);
      const std::vector<int32_t> got = tok->encode_plain(s);
      if (std::vector<int32_t>(want.begin(), want.end()) != got) {
        std::string w, g;
        for (int id : want) w += sp.IdToPiece(id) + " ";
        for (int32_t id : got) g += tok->piece(id) + " ";
        ADD_FAILURE() << "seed " << seed << " text \"" << escape(s) << "\"\n  sentencepiece "
                      << escape(w) << "\n  ours " << escape(g);
        if (++failures == 10) return;
      }
      EXPECT_EQ(tok->decode(got), sp.DecodeIds(want)) << escape(s);
    }
  }
}

}  // namespace
}  // namespace lmstream
