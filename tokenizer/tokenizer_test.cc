// Both tokenizers against libsentencepiece on the Llama-2 tokenizer: ids for a corpus of ≥ 2,000
// varied strings, decode against DecodeIds, special-token parsing, and bad vocabularies.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "tokenizer/test_support.h"
#include "tokenizer/vocab_tokenizer.h"

namespace lmstream {
namespace {

using testing::escape;
using testing::llama2;

std::vector<int32_t> to32(const std::vector<int>& v) { return {v.begin(), v.end()}; }

std::string ids_str(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

TEST(Llama2Tokenizer, CorpusIsLargeAndVaried) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  EXPECT_GE(L->corpus.size(), 2000u);
  size_t byte_fallback = 0, long_inputs = 0;
  for (const auto& s : L->corpus) {
    for (int id : L->sp.EncodeAsIds(s))
      if (L->sp.IsByte(id)) {
        ++byte_fallback;
        break;
      }
    if (s.size() > 500) ++long_inputs;
  }
  EXPECT_GT(byte_fallback, 100u) << "the corpus should exercise byte fallback";
  EXPECT_GT(long_inputs, 3u);
}

TEST(Llama2Tokenizer, BothMatchSentencePieceOnCorpus) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  size_t failures = 0;
  for (const auto& s : L->corpus) {
    const std::vector<int32_t> want = to32(L->sp.EncodeAsIds(s));
    const auto via_sp = L->via_sp->encode_plain(s);
    const auto via_vocab = L->via_vocab->encode_plain(s);
    if (via_sp != want || via_vocab != want) {
      ADD_FAILURE() << "text \"" << escape(s) << "\"\n  sentencepiece " << ids_str(want)
                    << "\n  SentencePieceTokenizer " << ids_str(via_sp) << "\n  VocabTokenizer "
                    << ids_str(via_vocab);
      if (++failures == 10) return;
    }
  }
}

TEST(Llama2Tokenizer, KnownIds) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  for (const Tokenizer* t : {L->via_sp.get(), L->via_vocab.get()}) {
    EXPECT_EQ(t->encode("Hello world", true), (std::vector<int32_t>{1, 15043, 3186}));
    EXPECT_EQ(t->encode("Hello world", false), (std::vector<int32_t>{15043, 3186}));
    EXPECT_EQ(t->encode("", true), (std::vector<int32_t>{1}));
    EXPECT_EQ(t->encode_plain("\n"), (std::vector<int32_t>{29871, 13}));
    EXPECT_EQ(t->n_vocab(), 32000);
    EXPECT_EQ(t->bos(), 1);
    EXPECT_EQ(t->eos(), 2);
    EXPECT_EQ(t->unk(), 0);
    EXPECT_TRUE(t->add_space_prefix());
    EXPECT_EQ(t->piece(15043), "\xE2\x96\x81Hello");
    EXPECT_EQ(t->token_bytes(15043), " Hello");
    EXPECT_EQ(t->token_bytes(13), "\n");
    EXPECT_EQ(t->piece(13), "<0x0A>");
    EXPECT_EQ(t->type(13), TokenType::kByte);
    EXPECT_EQ(t->token_bytes(2), "");
    EXPECT_EQ(t->piece(2), "</s>");
    EXPECT_TRUE(t->is_special(0));
    EXPECT_TRUE(t->is_special(1));
    EXPECT_FALSE(t->is_special(13));
    EXPECT_THROW(t->piece(32000), std::out_of_range);
    EXPECT_THROW(t->token_bytes(-1), std::out_of_range);
  }
}

TEST(Llama2Tokenizer, DecodeMatchesSentencePieceOnCorpus) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  size_t failures = 0;
  for (const auto& s : L->corpus) {
    const std::vector<int> ids = L->sp.EncodeAsIds(s);
    const std::string want = L->sp.DecodeIds(ids);
    const std::vector<int32_t> ids32 = to32(ids);
    const std::string a = L->via_sp->decode(ids32), b = L->via_vocab->decode(ids32);
    if (a != want || b != want) {
      ADD_FAILURE() << "text \"" << escape(s) << "\" ids " << ids_str(ids32) << "\n  DecodeIds \""
                    << escape(want) << "\"\n  ours \"" << escape(a) << "\" / \"" << escape(b)
                    << "\"";
      if (++failures == 10) return;
    }
  }
}

// Random id sequences rich in byte tokens (broken UTF-8 included), spaces and control tokens.
// <unk> is left out: our decode skips it, SentencePiece writes " \u2047 ".
TEST(Llama2Tokenizer, DecodeMatchesSentencePieceOnRandomIds) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  testing::Rng rng(7);
  const std::vector<int32_t> utf8_leads = {3 + 0xC3, 3 + 0xE4, 3 + 0xF0, 3 + 0xED, 3 + 0xF4};
  size_t failures = 0;
  for (int k = 0; k < 3000; ++k) {
    std::vector<int32_t> ids;
    for (size_t i = 1 + rng.below(12); i > 0; --i) {
      switch (rng.below(8)) {
        case 0:
        case 1:
          ids.push_back(int32_t(3 + rng.below(256)));
          break;  // any byte
        case 2:
          ids.push_back(int32_t(3 + 0x80 + rng.below(64)));
          break;  // trail byte
        case 3:
          ids.push_back(rng.pick(utf8_leads));
          break;  // lead byte
        case 4:
          ids.push_back(int32_t(1 + rng.below(2)));
          break;  // <s> </s>
        case 5:
          ids.push_back(29871);
          break;  // ▁
        default:
          ids.push_back(int32_t(259 + rng.below(32000 - 259)));
          break;  // pieces
      }
    }
    const std::string want = L->sp.DecodeIds(std::vector<int>(ids.begin(), ids.end()));
    const std::string got = L->via_vocab->decode(ids);
    if (got != want) {
      ADD_FAILURE() << "ids " << ids_str(ids) << "\n  DecodeIds \"" << escape(want)
                    << "\"\n  ours \"" << escape(got) << "\"";
      if (++failures == 10) return;
    }
  }
}

TEST(Llama2Tokenizer, DecodeSkipsUnknownAndRejectsBadIds) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  EXPECT_EQ(L->via_vocab->decode(std::vector<int32_t>{0, 15043}), "Hello");
  EXPECT_EQ(L->via_vocab->decode(std::vector<int32_t>{1, 15043, 2}), "Hello");
  EXPECT_THROW(L->via_vocab->decode(std::vector<int32_t>{15043, 32000}), std::out_of_range);
  EXPECT_THROW(L->via_sp->decode(std::vector<int32_t>{-5}), std::out_of_range);
}

TEST(Llama2Tokenizer, ParseSpecial) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  for (const Tokenizer* t : {L->via_sp.get(), L->via_vocab.get()}) {
    // Without parse_special, control text is ordinary characters.
    const auto plain = t->encode("</s>", false);
    EXPECT_EQ(plain, to32(L->sp.EncodeAsIds("</s>")));
    EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
    // With it: the token itself; every piece of text is encoded on its own, dummy prefix
    // included (TGI's tokenizer.json and Meta's chat format): "▁Hello", and " world" -> "▁",
    // "▁world".
    EXPECT_EQ(t->encode("<s>Hello", false, true), (std::vector<int32_t>{1, 15043}));
    EXPECT_EQ(t->encode("Hello<s> world", false, true),
              (std::vector<int32_t>{15043, 1, 29871, 3186}));
    EXPECT_EQ(t->encode("Hello</s>", true, true), (std::vector<int32_t>{1, 15043, 2}));
    EXPECT_EQ(t->encode("<s><unk></s>", false, true), (std::vector<int32_t>{1, 0, 2}));
    EXPECT_EQ(t->encode("<<s>>", false, true),
              (std::vector<int32_t>{529, 1, 1405}));  // "▁<", <s>, "▁>"
    // Meta's chat format: [BOS] + sp("[INST] hi [/INST]") ("▁[" = 518), as the rendered
    // Llama 2 template "<s>[INST] hi [/INST]" must tokenize.
    const std::string tail = "[INST] hi [/INST]";
    auto got = t->encode("a</s><s>" + tail, false, true);
    std::vector<int32_t> want = to32(L->sp.EncodeAsIds("a"));
    want.push_back(2);
    want.push_back(1);
    for (int32_t id : to32(L->sp.EncodeAsIds(tail))) want.push_back(id);
    EXPECT_EQ(got, want);
    EXPECT_EQ(got[3], 518);
    // Corpus strings without special text encode as with encode_plain.
    EXPECT_EQ(t->encode("Hello world", true, true), t->encode("Hello world", true, false));
  }
}

TEST(Llama2Tokenizer, LongInputIsFast) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  testing::Rng rng(3);
  std::string s;
  const size_t target = testing::sanitized() ? 50'000 : 400'000;
  while (s.size() < target) {
    s += "word";
    s += char('a' + rng.below(26));
    s += rng.below(5) ? " " : "\n";
    if (rng.below(50) == 0) s += "\xF0\x9F\x98\x80";
  }
  EXPECT_EQ(L->via_vocab->encode_plain(s), to32(L->sp.EncodeAsIds(s)));
  // One huge "word" (no spaces): the worst case for a naive quadratic merge loop.
  std::string word(target / 4, 'a');
  EXPECT_EQ(L->via_vocab->encode_plain(word), to32(L->sp.EncodeAsIds(word)));
}

TEST(MakeTokenizer, RejectsBadDescriptions) {
  TokenizerSpec empty;
  EXPECT_THROW(make_tokenizer(empty), ModelError);

  TokenizerSpec missing;
  missing.sp_model_path = "/nonexistent/tokenizer.model";
  try {
    make_tokenizer(missing);
    ADD_FAILURE() << "no exception";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.model"), std::string::npos);
  }

  auto base = [] {
    TokenizerSpec s;
    s.tokens = {"<unk>",
                "<s>",
                "</s>",
                "<0x41>",
                "\xE2\x96\x81"
                "a",
                "a"};
    s.scores = {0, 0, 0, 0, -1, -2};
    s.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl,
               TokenType::kByte,    TokenType::kNormal,  TokenType::kNormal};
    return s;
  };
  EXPECT_NO_THROW(make_tokenizer(base()));
  auto s = base();
  s.scores.pop_back();
  EXPECT_THROW(make_tokenizer(s), ModelError);
  s = base();
  s.types.push_back(TokenType::kNormal);
  EXPECT_THROW(make_tokenizer(s), ModelError);
  s = base();
  s.types[4] = static_cast<TokenType>(9);
  EXPECT_THROW(make_tokenizer(s), ModelError);
  s = base();
  s.tokens[3] = "<0xZZ>";
  EXPECT_THROW(make_tokenizer(s), ModelError);
  s = base();
  s.bos_id = 6;
  EXPECT_THROW(make_tokenizer(s), ModelError);
  s = base();
  s.unk_id = -1;
  EXPECT_THROW(make_tokenizer(s), ModelError);
  // Missing scores and types default (llama.cpp does the same).
  s = base();
  s.scores.clear();
  s.types.clear();
  EXPECT_NO_THROW(make_tokenizer(s));
}

}  // namespace
}  // namespace lmstream
