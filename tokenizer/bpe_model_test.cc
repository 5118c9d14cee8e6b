// BpeModel on toy vocabularies: merge order (score, then leftmost), unused pieces split back,
// user-defined pieces kept whole, byte fallback and unk, normalization of malformed UTF-8.
#include "tokenizer/bpe_model.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace lmstream {
namespace {

constexpr const char* kU = "\xE2\x96\x81";  // U+2581

struct Vocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<TokenType> types;
  int32_t add(const std::string& p, float score = 0, TokenType t = TokenType::kNormal) {
    pieces.push_back(p);
    scores.push_back(score);
    types.push_back(t);
    return int32_t(pieces.size() - 1);
  }
  void add_bytes() {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      add(name, 0, TokenType::kByte);
    }
  }
  int32_t id(const std::string& p) const {
    for (size_t i = 0; i < pieces.size(); ++i)
      if (pieces[i] == p) return int32_t(i);
    return -1;
  }
};

TEST(BpeModel, HighestScoreMergesFirst) {
  Vocab v;
  v.add("<unk>", 0, TokenType::kUnknown);
  const int a = v.add("a"), b = v.add("b"), c = v.add("c");
  const int ab = v.add("ab", -5), bc = v.add("bc", -1);
  BpeModel m(v.pieces, v.scores, v.types, 0);
  EXPECT_EQ(m.encode("abc", false), (std::vector<int32_t>{a, bc}));
  v.scores[size_t(ab)] = 0;  // now "ab" wins
  BpeModel m2(v.pieces, v.scores, v.types, 0);
  EXPECT_EQ(m2.encode("abc", false), (std::vector<int32_t>{ab, c}));
  (void)b;
}

TEST(BpeModel, EqualScoresMergeLeftmostFirst) {
  Vocab v;
  v.add("<unk>", 0, TokenType::kUnknown);
  const int a = v.add("a");
  const int aa = v.add("aa", -1);
  BpeModel m(v.pieces, v.scores, v.types, 0);
  EXPECT_EQ(m.encode("aaa", false), (std::vector<int32_t>{aa, a}));
  EXPECT_EQ(m.encode("aaaa", false), (std::vector<int32_t>{aa, aa}));
  EXPECT_EQ(m.encode("aaaaa", false), (std::vector<int32_t>{aa, aa, a}));
}

TEST(BpeModel, UnusedPiecesAreMergedThroughThenSplitBack) {
  Vocab v;
  v.add("<unk>", 0, TokenType::kUnknown);
  const int a = v.add("a"), b = v.add("b");
  v.add("ab", 10, TokenType::kUnused);
  const int abc = v.add("abc", 5);
  v.add("c");
  BpeModel m(v.pieces, v.scores, v.types, 0);
  EXPECT_EQ(m.encode("ab", false), (std::vector<int32_t>{a, b}));
  EXPECT_EQ(m.encode("abc", false), (std::vector<int32_t>{abc}));
}

TEST(BpeModel, UserDefinedPiecesStayWhole) {
  Vocab v;
  v.add("<unk>", 0, TokenType::kUnknown);
  const int x = v.add("x"), y = v.add("y");
  const int xy = v.add("xy", -1);
  const int tag = v.add("<tag>", 0, TokenType::kUserDefined);
  const int u = v.add(kU);
  BpeModel m(v.pieces, v.scores, v.types, 0);
  EXPECT_EQ(m.encode("x<tag>y", false), (std::vector<int32_t>{x, tag, y}));
  EXPECT_EQ(m.encode("xy<tag>", true), (std::vector<int32_t>{u, xy, tag}));
}

TEST(BpeModel, ByteFallbackAndUnknown) {
  Vocab v;
  v.add("<unk>", 0, TokenType::kUnknown);
  v.add("<s>", 0, TokenType::kControl);
  v.add_bytes();
  const int u = v.add(kU);
  const int h = v.add("h");
  BpeModel m(v.pieces, v.scores, v.types, 0);
  EXPECT_TRUE(m.byte_fallback());
  // "é" is not a piece: its two UTF-8 bytes.
  EXPECT_EQ(m.encode("h\xC3\xA9", true),
            (std::vector<int32_t>{u, h, v.id("<0xC3>"), v.id("<0xA9>")}));
  // Control and byte texts are never produced from text.
  EXPECT_EQ(m.encode("<s>", false).size(), 3u);

  Vocab nb;
  nb.add("<unk>", 0, TokenType::kUnknown);
  const int hh = nb.add("h");
  BpeModel m2(nb.pieces, nb.scores, nb.types, 0);
  EXPECT_FALSE(m2.byte_fallback());
  EXPECT_EQ(m2.encode("h\xC3\xA9q", false), (std::vector<int32_t>{hh, 0, 0}));
}

TEST(BpeModel, Normalization) {
  Vocab v;
  v.add("<unk>", 0, TokenType::kUnknown);
  BpeModel m(v.pieces, v.scores, v.types, 0);
  EXPECT_EQ(m.normalize("", true), "");
  EXPECT_EQ(m.normalize("a b", true), std::string(kU) + "a" + kU + "b");
  EXPECT_EQ(m.normalize("a b", false), std::string("a") + kU + "b");
  EXPECT_EQ(m.normalize("\t\n", false), "\t\n");
  // Each malformed byte becomes U+FFFD; well-formed characters pass unchanged.
  EXPECT_EQ(m.normalize("\xFF\xE4\xB8", false), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(m.normalize("\xE4\xB8\xAD", false), "\xE4\xB8\xAD");
  EXPECT_EQ(m.normalize("\xED\xA0\x80", false), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(m.normalize(std::string("\0", 1), false), std::string("\0", 1));
}

}  // namespace
}  // namespace lmstream
