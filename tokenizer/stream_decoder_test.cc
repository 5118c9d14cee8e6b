// StreamDecoder: only whole UTF-8 characters leave push(), malformed byte runs become U+FFFD
// without stalling, the leading-space rule, and push()* + finish() == decode() on the corpus.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include "base/utf8.h"
#include "tokenizer/test_support.h"

namespace lmstream {
namespace {

using testing::escape;
using testing::llama2;

constexpr int32_t B(int byte) { return 3 + byte; }  // Llama-2 byte token id
const std::string kFFFD = "\xEF\xBF\xBD";

bool whole_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8::valid_char_len(std::string_view(s).substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

TEST(Utf8, ValidAndIncomplete) {
  EXPECT_EQ(utf8::valid_char_len("a"), 1u);
  EXPECT_EQ(utf8::valid_char_len("\xC3\xA9"), 2u);
  EXPECT_EQ(utf8::valid_char_len("\xE4\xB8\xAD"), 3u);
  EXPECT_EQ(utf8::valid_char_len("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(utf8::valid_char_len("\xEF\xBF\xBD"), 3u);
  for (const char* bad : {"\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                          "\xF5\x80\x80\x80", "\xFF", "\x80", "\xE4\xB8"})
    EXPECT_EQ(utf8::valid_char_len(bad), 0u) << escape(bad);
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xE4"));
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xF0\x9F\x98"));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xE0\x80"));  // can only be an overlong
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xED\xA0"));  // can only be a surrogate
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xF4\x90"));  // above U+10FFFF
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xFF"));
  EXPECT_FALSE(
      utf8::is_incomplete_prefix("\xE4"
                                 "a"));
}

TEST(StreamDecoder, HoldsBackPartialCharacters) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  StreamDecoder d(*L->via_vocab, true);
  EXPECT_EQ(d.push(15043), "Hello");  // leading space of the first piece dropped
  EXPECT_EQ(d.push(B(0xE4)), "");
  EXPECT_EQ(d.pending_bytes(), 1u);
  EXPECT_EQ(d.push(B(0xB8)), "");
  EXPECT_EQ(d.push(B(0xAD)), "\xE4\xB8\xAD");
  EXPECT_EQ(d.pending_bytes(), 0u);
  EXPECT_EQ(d.push(3186), " world");  // later spaces are kept
  EXPECT_EQ(d.finish(), "");
}

TEST(StreamDecoder, MalformedBytesDoNotBlock) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  StreamDecoder d(*L->via_vocab, true);
  EXPECT_EQ(d.push(B(0xFF)), kFFFD);  // can never start a character: out at once
  EXPECT_EQ(d.push(B(0xE4)), "");
  EXPECT_EQ(d.push(B('a')), kFFFD + "a");  // the lead byte lost its chance
  EXPECT_EQ(d.push(B(0xF0)), "");
  EXPECT_EQ(d.push(B(0x9F)), "");
  EXPECT_EQ(d.push(15043), kFFFD + kFFFD + " Hello");  // a piece ends the byte run
  EXPECT_EQ(d.push(B(0xC3)), "");
  EXPECT_EQ(d.finish(), kFFFD);
  EXPECT_EQ(d.pending_bytes(), 0u);
}

TEST(StreamDecoder, LeadingSpaceAndSpecialTokens) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  {
    StreamDecoder keep(*L->via_vocab, false);
    EXPECT_EQ(keep.push(15043), " Hello");
  }
  {
    StreamDecoder d(*L->via_vocab, true);
    EXPECT_EQ(d.push(1), "");
    EXPECT_EQ(d.push(29871), "");  // the dummy prefix alone
    EXPECT_EQ(d.push(15043), " Hello");
  }
  {
    StreamDecoder shown(*L->via_vocab, true, /*skip_special=*/false);
    EXPECT_EQ(shown.push(1), "<s>");
    EXPECT_EQ(shown.push(15043), " Hello");
    EXPECT_EQ(shown.push(2), "</s>");
  }
  StreamDecoder d(*L->via_vocab, true);
  EXPECT_THROW(d.push(32000), std::out_of_range);
}

// push()* + finish() == decode(), every push() whole UTF-8, never more than 3 bytes held.
void check_stream(const Tokenizer& tok, const std::vector<int32_t>& ids, const std::string& what,
                  size_t& failures) {
  StreamDecoder d(tok, true);
  std::string got;
  for (int32_t id : ids) {
    std::string piece = d.push(id);
    if (!whole_utf8(piece) || d.pending_bytes() > 3) {
      ADD_FAILURE() << what << ": push gave \"" << escape(piece) << "\", pending "
                    << d.pending_bytes();
      ++failures;
      return;
    }
    got += piece;
  }
  got += d.finish();
  const std::string want = tok.decode(ids);
  if (got != want) {
    ADD_FAILURE() << what << ": stream \"" << escape(got) << "\" decode \"" << escape(want) << "\"";
    ++failures;
  }
}

TEST(StreamDecoder, MatchesDecodeOnCorpus) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  size_t failures = 0;
  for (const auto& s : L->corpus) {
    check_stream(*L->via_vocab, L->via_vocab->encode_plain(s), "text \"" + escape(s) + "\"",
                 failures);
    if (failures >= 10) return;
  }
}

TEST(StreamDecoder, MatchesDecodeOnRandomIds) {
  auto* L = llama2();
  ASSERT_NE(L, nullptr);
  testing::Rng rng(11);
  size_t failures = 0;
  for (int k = 0; k < 3000 && failures < 10; ++k) {
    std::vector<int32_t> ids;
    for (size_t i = 1 + rng.below(16); i > 0; --i)
      ids.push_back(rng.below(3) ? int32_t(3 + rng.below(256)) : int32_t(rng.below(32000)));
    check_stream(*L->via_sp, ids, "random ids", failures);
  }
}

}  // namespace
}  // namespace lmstream
