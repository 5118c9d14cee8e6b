// Tests for chat/formatter: which template a ChatFormatter picks (user's file, model's template,
// built-in Llama 2), the one-turn check at construction (a user's bad file is an error, a
// model's bad template falls back), and the BOS rule, with the real Llama 2 tokenizer.
// Not a Jinja test (jinja_test.cc) nor a Llama 2 format test (chat_test.cc).
#include "chat/formatter.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "chat/jinja.h"
#include "model/testgen.h"

namespace lmstream {
namespace {

constexpr const char* kChatml =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' "
    "}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

class ChatFormatterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::path root = std::getenv("LMSTREAM_SOURCE_DIR")
                                     ? std::filesystem::path(std::getenv("LMSTREAM_SOURCE_DIR"))
                                     : std::filesystem::path(__FILE__).parent_path().parent_path();
    spec_.sp_model_path = (root / ".." / "shared" / "testdata" / "llama2-tokenizer.model").string();
    ASSERT_TRUE(std::filesystem::exists(spec_.sp_model_path)) << spec_.sp_model_path;
    tok_ = make_tokenizer(spec_);
  }
  std::string write_template(const std::string& name, const std::string& text) {
    auto p = std::filesystem::temp_directory_path() /
             ("lms-fmt-" + std::to_string(::getpid()) + "-" + name);
    std::ofstream(p, std::ios::binary) << text;
    files_.push_back(p);
    return p.string();
  }
  void TearDown() override {
    for (auto& p : files_) std::filesystem::remove(p);
  }
  TokenizerSpec spec_;
  std::unique_ptr<Tokenizer> tok_;
  std::vector<std::filesystem::path> files_;
  const std::vector<ChatMessage> conv_{{"system", "Be brief."}, {"user", "Hi!"}};
};

TEST_F(ChatFormatterTest, NoTemplateIsTheBuiltInLlama2Format) {
  ChatFormatter f(spec_, *tok_);
  EXPECT_EQ(f.source(), ChatFormatter::Source::kBuiltinLlama2);
  EXPECT_EQ(f.fallback_reason(), "");
  EXPECT_EQ(f.render(conv_, true), llama2_chat_text(conv_));
  EXPECT_EQ(f.apply(conv_, true), llama2_chat_tokens(*tok_, conv_));
}

TEST_F(ChatFormatterTest, ModelTemplateWithoutBosGetsTheModelsBos) {
  spec_.chat_template = kChatml;
  ChatFormatter f(spec_, *tok_);
  EXPECT_EQ(f.source(), ChatFormatter::Source::kModelTemplate);
  const std::string text = f.render(conv_, true);
  EXPECT_EQ(text,
            "<|im_start|>system\nBe "
            "brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(f.apply(conv_, true), tok_->encode(text, true, true));
  EXPECT_EQ(f.apply(conv_, true, /*add_bos=*/false), tok_->encode(text, false, true));
  EXPECT_NE(f.render(conv_, false), text);  // add_generation_prompt reaches the template
  spec_.add_bos = false;
  EXPECT_EQ(ChatFormatter(spec_, *tok_).apply(conv_, true), tok_->encode(text, false, true));
}

TEST_F(ChatFormatterTest, HfLlama2TemplateWritesItsOwnBosOnce) {
  spec_.chat_template = hf_llama2_chat_template();
  ChatFormatter f(spec_, *tok_);
  EXPECT_EQ(f.source(), ChatFormatter::Source::kModelTemplate);
  const std::vector<int32_t> ids = f.apply(conv_, true);
  EXPECT_EQ(ids, llama2_chat_tokens(*tok_, conv_));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok_->bos()), 1);
}

TEST_F(ChatFormatterTest, ModelTemplateThatCannotRenderFallsBack) {
  spec_.chat_template = "{% call foo() %}x{% endcall %}";
  ChatFormatter f(spec_, *tok_);
  EXPECT_EQ(f.source(), ChatFormatter::Source::kBuiltinLlama2);
  EXPECT_NE(f.fallback_reason(), "");
  EXPECT_EQ(f.chat_template(), "");
  EXPECT_EQ(f.apply(conv_, true), llama2_chat_tokens(*tok_, conv_));
}

TEST_F(ChatFormatterTest, TemplateFileOverridesTheModelAndMustRender) {
  spec_.chat_template = hf_llama2_chat_template();
  ChatFormatter f(spec_, *tok_, write_template("chatml.jinja", kChatml));
  EXPECT_EQ(f.source(), ChatFormatter::Source::kTemplateFile);
  EXPECT_EQ(f.render(conv_, true).rfind("<|im_start|>system\n", 0), 0u);
  const std::string bad = write_template("bad.jinja", "ok\n{% for m in messages %}{{ m.content }");
  try {
    ChatFormatter g(spec_, *tok_, bad);
    FAIL() << "a template file that cannot render was accepted";
  } catch (const JinjaError& e) {
    EXPECT_EQ(e.line(), 2);
  }
  EXPECT_THROW(ChatFormatter(spec_, *tok_, bad + ".missing"), std::runtime_error);
}

TEST_F(ChatFormatterTest, RenderErrorsReachTheCaller) {
  ChatFormatter builtin(spec_, *tok_);
  const std::vector<ChatMessage> wrong{{"assistant", "x"}};
  EXPECT_THROW(builtin.apply(wrong, true), std::invalid_argument);
  spec_.chat_template = hf_llama2_chat_template();
  ChatFormatter hf(spec_, *tok_);
  EXPECT_THROW(hf.apply(wrong, true), JinjaError);
}

}  // namespace
}  // namespace lmstream
