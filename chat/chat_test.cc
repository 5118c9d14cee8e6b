// Tests for chat/chat: the Llama 2 chat prompt as Meta's chat_completion builds it (structure
// with a byte-level fake tokenizer; exact ids with the real tokenizer against libsentencepiece and
// against ids computed once with Python sentencepiece), the text rendering, and role errors; and
// model chat_templates rendered through chat/jinja, the HF Llama 2 one equal to the built-in.
#include "chat/chat.h"

#include "chat/jinja.h"
#include "model/testgen.h"

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace lmstream {
namespace {

// Each byte b becomes token 100 + b; BOS 1, EOS 2. Enough to see exactly which text was encoded.
class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode_plain(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (char c : text) ids.push_back(100 + static_cast<unsigned char>(c));
    return ids;
  }
  const std::string& token_bytes(int32_t) const override { return empty_; }
  const std::string& piece(int32_t) const override { return empty_; }
  TokenType type(int32_t) const override { return TokenType::kNormal; }
  int32_t n_vocab() const override { return 356; }

 private:
  std::string empty_;
};

// Inverse of ByteTokenizer, showing BOS/EOS as <s>/</s>.
std::string render(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (id == 1)
      s += "<s>";
    else if (id == 2)
      s += "</s>";
    else
      s += static_cast<char>(id - 100);
  }
  return s;
}

std::vector<ChatMessage> msgs(std::initializer_list<std::pair<const char*, const char*>> list) {
  std::vector<ChatMessage> out;
  for (auto& [role, content] : list) out.push_back({role, content});
  return out;
}

TEST(Llama2Chat, SingleTurnWithoutSystem) {
  ByteTokenizer tok;
  auto m = msgs({{"user", "  Hello there \n"}});
  EXPECT_EQ(render(llama2_chat_tokens(tok, m)), "<s>[INST] Hello there [/INST]");
  EXPECT_EQ(llama2_chat_text(m), "<s>[INST] Hello there [/INST]");
}

TEST(Llama2Chat, SingleTurnWithSystem) {
  ByteTokenizer tok;
  // strip() applies to the merged text: the system text keeps its spaces, the user text keeps
  // its leading spaces (they follow "\n\n") and loses its trailing ones.
  auto m = msgs({{"system", " Be brief. "}, {"user", "  Hi  "}});
  const std::string want = "<s>[INST] <<SYS>>\n Be brief. \n<</SYS>>\n\n  Hi [/INST]";
  EXPECT_EQ(render(llama2_chat_tokens(tok, m)), want);
  EXPECT_EQ(llama2_chat_text(m), want);
}

TEST(Llama2Chat, MultiTurnEncodesEachExchangeSeparately) {
  ByteTokenizer tok;
  auto m = msgs({{"system", "S"},
                 {"user", "u1"},
                 {"assistant", " a1 "},
                 {"user", "u2"},
                 {"assistant", "a2"},
                 {"user", "u3 "}});
  const std::string want =
      "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nu1 [/INST] a1 </s>"
      "<s>[INST] u2 [/INST] a2 </s>"
      "<s>[INST] u3 [/INST]";
  EXPECT_EQ(render(llama2_chat_tokens(tok, m)), want);
  EXPECT_EQ(llama2_chat_text(m), want);
}

TEST(Llama2Chat, StripsPythonUnicodeWhitespace) {
  ByteTokenizer tok;
  // U+3000, U+00A0, U+2029 and \x1f are whitespace to Python's str.strip(); U+200B is not.
  auto m = msgs(
      {{"user", "\u3000\x1f hi\u00a0\u2029"}, {"assistant", "\u200bok\u200b"}, {"user", "\t\r\n"}});
  EXPECT_EQ(render(llama2_chat_tokens(tok, m)),
            "<s>[INST] hi [/INST] \u200bok\u200b </s><s>[INST]  [/INST]");
}

TEST(Llama2Chat, InvalidUtf8IsNotStrippedOrFatal) {
  ByteTokenizer tok;
  auto m = msgs({{"user", " \xE3\x80 x \xFF"}});
  EXPECT_EQ(llama2_chat_text(m), "<s>[INST] \xE3\x80 x \xFF [/INST]");
  EXPECT_EQ(render(llama2_chat_tokens(tok, m)), llama2_chat_text(m));
}

TEST(Llama2Chat, RejectsBadRoleSequences) {
  ByteTokenizer tok;
  const std::vector<std::vector<ChatMessage>> bad = {
      {},
      msgs({{"system", "s"}}),
      msgs({{"assistant", "a"}}),
      msgs({{"user", "u"}, {"assistant", "a"}}),
      msgs({{"user", "u"}, {"user", "u"}}),
      msgs({{"user", "u"}, {"system", "s"}, {"user", "u"}}),
      msgs({{"system", "s"}, {"system", "s"}, {"user", "u"}}),
      msgs({{"user", "u"}, {"tool", "t"}, {"user", "u"}}),
      msgs({{"User", "u"}}),
  };
  for (const auto& m : bad) {
    EXPECT_THROW(llama2_chat_tokens(tok, m), std::invalid_argument) << m.size();
    EXPECT_THROW(llama2_chat_text(m), std::invalid_argument) << m.size();
  }
  try {
    llama2_chat_text(msgs({{"user", "u"}, {"user", "u"}}));
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected 'assistant'"), std::string::npos) << e.what();
  }
}

// ---- The real tokenizer ----

std::string tokenizer_model_path() {
  std::filesystem::path root;
  if (const char* dir = std::getenv("LMSTREAM_SOURCE_DIR")) {
    root = dir;
  } else {
    root = std::filesystem::path(__FILE__).parent_path().parent_path();
  }
  return (root / ".." / "shared" / "testdata" / "llama2-tokenizer.model").string();
}

const std::vector<ChatMessage> kConversation = {
    {"system", "You are a helpful assistant. Answer briefly."},
    {"user", "  Hello! Who are you?  "},
    {"assistant", " I am Llama, \u2713 caf\u00e9. "},
    {"user", "What is 2+2?\n"},
};

// Computed once with Python sentencepiece and Meta's chat_completion code, verbatim.
const std::vector<int32_t> kConversationIds = {
    1,     518,   25580, 29962, 3532,  14816, 29903, 6778,  13,    3492,  526,   263,   8444,
    20255, 29889, 673,   23359, 29889, 13,    29966, 829,   14816, 29903, 6778,  13,    13,
    29871, 15043, 29991, 11644, 526,   366,   29973, 518,   29914, 25580, 29962, 306,   626,
    365,   29880, 3304,  29892, 29871, 30706, 274,   28059, 29889, 29871, 2,     1,     518,
    25580, 29962, 1724,  338,   29871, 29906, 29974, 29906, 29973, 518,   29914, 25580, 29962};

class Llama2ChatReal : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = tokenizer_model_path();
    ASSERT_TRUE(std::filesystem::exists(path_)) << "missing test tokenizer " << path_;
    TokenizerSpec spec;
    spec.sp_model_path = path_;
    tok_ = make_tokenizer(spec);
    auto status = sp_.Load(path_);
    ASSERT_TRUE(status.ok()) << status.ToString();
  }
  std::vector<int32_t> sp_encode(const std::string& text) {
    std::vector<int> ids;
    EXPECT_TRUE(sp_.Encode(text, &ids).ok());
    return {ids.begin(), ids.end()};
  }
  std::string path_;
  std::unique_ptr<Tokenizer> tok_;
  sentencepiece::SentencePieceProcessor sp_;
};

TEST_F(Llama2ChatReal, MatchesIdsFromPythonReference) {
  EXPECT_EQ(llama2_chat_tokens(*tok_, kConversation), kConversationIds);
}

TEST_F(Llama2ChatReal, MatchesMetaFormulaThroughSentencePiece) {
  // Meta's formula spelled out against libsentencepiece for the same conversation.
  std::vector<int32_t> want;
  auto add = [&](const std::string& text, bool eos) {
    want.push_back(sp_.bos_id());
    for (int32_t id : sp_encode(text)) want.push_back(id);
    if (eos) want.push_back(sp_.eos_id());
  };
  add("[INST] <<SYS>>\nYou are a helpful assistant. Answer briefly.\n<</SYS>>\n\n  Hello! Who are "
      "you? [/INST] I am Llama, \u2713 caf\u00e9. ",
      true);
  add("[INST] What is 2+2? [/INST]", false);
  EXPECT_EQ(llama2_chat_tokens(*tok_, kConversation), want);

  const std::vector<ChatMessage> single = {{"user", "Tell me a joke about\tcats."}};
  EXPECT_EQ(llama2_chat_tokens(*tok_, single), [&] {
    std::vector<int32_t> ids = {sp_.bos_id()};
    for (int32_t id : sp_encode("[INST] Tell me a joke about\tcats. [/INST]")) ids.push_back(id);
    return ids;
  }());
}

TEST_F(Llama2ChatReal, TextFormOfTheSameConversation) {
  std::string text = llama2_chat_text(kConversation);
  EXPECT_EQ(
      text,
      "<s>[INST] <<SYS>>\nYou are a helpful assistant. Answer briefly.\n<</SYS>>\n\n  Hello! "
      "Who are you? [/INST] I am Llama, \u2713 caf\u00e9. </s><s>[INST] What is 2+2? [/INST]");
}

// meta-llama/Llama-2-7b-chat-hf tokenizer_config.json chat_template, verbatim.
const char* const kHfLlama2Template = hf_llama2_chat_template();

TEST(ChatTemplate, HfLlama2TemplateEqualsBuiltInFormat) {
  const std::vector<std::vector<ChatMessage>> convs = {
      msgs({{"user", "Hello"}}),
      msgs({{"system", "Be brief."}, {"user", "  Hi \n"}}),
      msgs({{"user", "a"}, {"assistant", " b "}, {"user", "c"}}),
      msgs({{"system", " sys "},
            {"user", "u1"},
            {"assistant", "a1"},
            {"user", "u2"},
            {"assistant", "a2"},
            {"user", "caf\u00e9 \u4f60\u597d \xF0\x9F\x98\x80 {{ x }} 'q' \"d\""}}),
      msgs({{"user", ""}, {"assistant", ""}, {"user", "\u00a0\u2003x\u3000"}}),
  };
  for (const auto& m : convs) {
    EXPECT_EQ(render_chat_template(kHfLlama2Template, m, "<s>", "</s>", true), llama2_chat_text(m));
  }
}

TEST(ChatTemplate, RoleErrorsComeFromRaiseException) {
  auto m = msgs({{"user", "a"}, {"user", "b"}});
  EXPECT_THROW(llama2_chat_text(m), std::invalid_argument);
  try {
    render_chat_template(kHfLlama2Template, m, "<s>", "</s>", true);
    FAIL() << "expected a JinjaError";
  } catch (const JinjaError& e) {
    EXPECT_EQ(e.message(), "Conversation roles must alternate user/assistant/user/assistant/...");
    EXPECT_EQ(e.line(), 1);
  }
}

TEST(ChatTemplate, PassesTheApplyChatTemplateContext) {
  const char* tpl =
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m['content'] }}{{ eos_token }}{% "
      "endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}";
  auto m = msgs({{"system", "s"}, {"user", "u"}});
  EXPECT_EQ(render_chat_template(tpl, m, "<B>", "<E>", true),
            "<B><system>s<E><user>u<E><assistant>");
  EXPECT_EQ(render_chat_template(tpl, m, "<B>", "<E>", false), "<B><system>s<E><user>u<E>");
}

}  // namespace
}  // namespace lmstream
