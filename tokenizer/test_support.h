// Test helpers for tokenizer/*_test.cc: the path of the shared Llama-2 tokenizer.model, a
// GGUF-style vocabulary read out of it, and a deterministic corpus of varied strings. Tests only.
#pragma once

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace lmstream::testing {

// $LMSTREAM_SOURCE_DIR/../shared/testdata/llama2-tokenizer.model (falls back to this source
// tree's location when the variable is unset).
inline std::string llama2_tokenizer_path() {
  const char* env = std::getenv("LMSTREAM_SOURCE_DIR");
  std::filesystem::path root = env && *env
                                   ? std::filesystem::path(env)
                                   : std::filesystem::path(__FILE__).parent_path().parent_path();
  return (root / ".." / "shared" / "testdata" / "llama2-tokenizer.model").lexically_normal();
}

// The vocabulary as a GGUF carries it (llama.cpp's converter: unknown, control, unused, byte,
// otherwise normal), no sp_model_path.
inline TokenizerSpec gguf_style_spec(const sentencepiece::SentencePieceProcessor& sp) {
  TokenizerSpec spec;
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    spec.tokens.push_back(sp.IdToPiece(i));
    spec.scores.push_back(sp.GetScore(i));
    spec.types.push_back(sp.IsUnknown(i)   ? TokenType::kUnknown
                         : sp.IsControl(i) ? TokenType::kControl
                         : sp.IsUnused(i)  ? TokenType::kUnused
                         : sp.IsByte(i)    ? TokenType::kByte
                                           : TokenType::kNormal);
  }
  spec.bos_id = sp.bos_id();
  spec.eos_id = sp.eos_id();
  spec.unk_id = sp.unk_id();
  return spec;
}

inline bool sanitized() {
  const char* v = std::getenv("LMSTREAM_SANITIZED");
  return v && std::string(v) == "1";
}

// Printable form of a test string for failure messages.
inline std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out.size() > 300 ? out.substr(0, 300) + "...(" + std::to_string(s.size()) + " bytes)"
                          : out;
}

// splitmix64: the same sequence on every platform (std distributions are not portable).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return size_t(next() % n); }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  uint64_t s_;
};

inline std::string utf8_of(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

// At least 2,000 strings: hand-picked cases, every single byte, then random mixtures.
inline std::vector<std::string> make_corpus(size_t n_random = 1800) {
  std::vector<std::string> c = {
      "",
      " ",
      "  ",
      "   ",
      "\n",
      "\n\n",
      "\t",
      " \t \n ",
      "Hello world",
      " Hello world",
      "Hello world ",
      "  Hello  world  ",
      "Hello\nworld\n",
      "Hello\tworld",
      "\r\n",
      "a",
      "I",
      "The quick brown fox jumps over the lazy dog.",
      "It's 3.14159, not 22/7!",
      "1,000,000",
      "2023-10-05T12:34:56Z",
      "0123456789",
      "x = a + b * (c - d) / e;",
      "</s>",
      "<s>",
      "<unk>",
      "<0x0A>",
      "<0xFF>",
      "<s>Hello</s>",
      "Hi </s> there <s>",
      "<<s>>",
      "</s></s>",
      "<s",
      "s>",
      "\xE2\x96\x81",
      "\xE2\x96\x81\xE2\x96\x81",
      "a\xE2\x96\x81"
      "b",
      "\xE2\x96\x81Hello",
      "[INST] What is 2+2? [/INST]",
      "<<SYS>>\nBe brief.\n<</SYS>>",
      "def f(x):\n    return x ** 2\n",
      "#include <stdio.h>\nint main() { printf(\"hi\\n\"); }",
      "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
      "SELECT * FROM t WHERE id = 42;",
      "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
      "<html><body>&amp;</body></html>",
      "https://example.com/path?q=1&r=2#frag",
      "user@example.org",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C",  // 你好，世界
      "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF",  // こんにちは
      "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94",  // 안녕하세요
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80",  // Привет мир
      "\xCE\x93\xCE\xB5\xCE\xB9\xCE\xB1 \xCF\x83\xCE\xBF\xCF\x85",  // Γεια σου
      "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7",
      "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D",
      "\xE0\xB8\xAA\xE0\xB8\xA7\xE0\xB8\xB1\xE0\xB8\xAA\xE0\xB8\x94\xE0\xB8\xB5",
      "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",
      "caf\xC3\xA9",
      "cafe\xCC\x81",
      "na\xC3\xAFve r\xC3\xA9sum\xC3\xA9",
      "\xC3\x85ngstr\xC3\xB6m",
      "Z\xCC\x80\xCC\x81\xCC\x82\xCC\x83\xCC\x84\xCC\x85",  // stacked combining marks
      "\xF0\x9F\x98\x80",
      "\xF0\x9F\x98\x80\xF0\x9F\x98\x81\xF0\x9F\x98\x82",
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7\xE2\x80\x8D"
      "\xF0\x9F\x91\xA6",                                          // family ZWJ sequence
      "\xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88",  // rainbow flag
      "\xF0\x9F\x87\xAF\xF0\x9F\x87\xB5",                          // flag JP
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",                          // thumbs up + skin tone
      "I \xE2\x9D\xA4\xEF\xB8\x8F NY",
      "\xE2\x82\xAC"
      "100 \xC2\xA3"
      "50 \xC2\xA5"
      "30",
      "\xF0\x9D\x94\xB8\xF0\x9D\x94\xB9",
      "\xF0\x90\x8D\x88",
      "\xF4\x8F\xBF\xBF",  // rare planes
      "\xEF\xBF\xBD",
      "\xEF\xBB\xBF"
      "BOM",
      "\xE2\x80\x8B"
      "zero"
      "\xE2\x80\x8B"
      "width",
      std::string("nul\0byte", 8),
      std::string(1, '\0'),
      "\x01\x02\x03",
      "\x7F",
      // malformed UTF-8: SentencePiece turns each bad byte into U+FFFD
      "\xFF",
      "\xC3",
      "abc\x80"
      "def",
      "\xE4\xB8",
      "\xE4\xB8 x",
      "\xED\xA0\x80",
      "\xF4\x90\x80\x80",
      "\xC0\xAF",
      "\xC1\xBF",
      "\xE0\x80\xAF",
      "\xF0\x80\x80\xAF",
      "\xF8\x88\x80\x80\x80",
      "\xFE\xFF",
      "ok\xF0\x9F\x98",
      "\xF0\x9F\x98\x80\x80",
      std::string(20, '\xFF'),
      std::string(1000, 'a'),
      std::string(5000, ' '),
      std::string(3000, '\n'),
      "Pneumonoultramicroscopicsilicovolcanoconiosis",
      "Rindfleischetikettierungs\xC3\xBC"
      "berwachungsaufgaben\xC3\xBC"
      "bertragungsgesetz",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "abababababababababababababababababab",
      "      leading",
      "trailing      ",
      "mixed English \xE4\xB8\xAD\xE6\x96\x87 "
      "\xD1\x80\xD1\x83\xD1\x81\xD1\x81\xD0\xBA\xD0\xB8\xD0\xB9"
      " \xF0\x9F\x98\x80 and 123",
  };
  std::string long_word;
  for (int i = 0; i < 400; ++i) long_word += "xyzzy"[i % 5];
  c.push_back(long_word);
  for (int b = 0; b < 256; ++b) c.push_back(std::string(1, char(b)));

  Rng rng(20240611);
  const std::vector<std::string> words = {"the",     "of",           "and",
                                          "to",      "in",           "is",
                                          "that",    "for",          "it",
                                          "as",      "was",          "with",
                                          "be",      "by",           "on",
                                          "not",     "he",           "this",
                                          "are",     "or",           "his",
                                          "from",    "at",           "which",
                                          "but",     "have",         "an",
                                          "had",     "they",         "you",
                                          "were",    "their",        "one",
                                          "all",     "we",           "can",
                                          "her",     "has",          "there",
                                          "been",    "if",           "more",
                                          "when",    "will",         "would",
                                          "who",     "so",           "no",
                                          "Hello",   "World",        "AI",
                                          "Llama",   "tokenizer",    "streaming",
                                          "server",  "unbelievable", "antidisestablishment",
                                          "JSON",    "HTTP",         "GPU",
                                          "CPU",     "don't",        "isn't",
                                          "O'Brien", "e.g.",         "i.e.",
                                          "Mr.",     "U.S.A."};
  const std::vector<std::string> punct = {".", ",", "!", "?",  ";", ":", "-",  "--", "(", ")", "[",
                                          "]", "{", "}", "\"", "'", "/", "\\", "*",  "&", "#", "@",
                                          "%", "$", "^", "~",  "`", "|", "<",  ">",  "=", "+", "_"};
  const std::vector<std::string> specialish = {"<s>",     "</s>",   "<unk>",        "<0x0A>",
                                               "<0xE4>",  "<pad>",  "\xE2\x96\x81", "[INST]",
                                               "[/INST]", "<<SYS>>"};
  const std::vector<std::string> spaces = {" ",    "  ",  "   ",  "\t",   "\n",
                                           "\n\n", " \n", "\r\n", "\t\t", "    "};
  // Code point ranges: accents, combining marks, Cyrillic, Greek, Arabic, Devanagari, Thai, CJK,
  // Hangul, kana, symbols, emoji, supplementary planes.
  const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0xC0, 0x17F},      {0x300, 0x36F},     {0x391, 0x3C9},     {0x410, 0x44F},
      {0x5D0, 0x5EA},     {0x620, 0x64A},     {0x905, 0x939},     {0xE01, 0xE3A},
      {0x3041, 0x3096},   {0x30A1, 0x30FA},   {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},
      {0x2000, 0x206F},   {0x2190, 0x22FF},   {0x2500, 0x25FF},   {0x1F300, 0x1F64F},
      {0x1F900, 0x1F9FF}, {0x1D400, 0x1D7FF}, {0x20000, 0x2A6DF}, {0xE000, 0xF8FF}};
  for (size_t k = 0; k < n_random; ++k) {
    std::string s;
    const size_t parts = 1 + rng.below(k % 100 == 0 ? 400 : k % 10 == 0 ? 60 : 12);
    for (size_t p = 0; p < parts; ++p) {
      switch (rng.below(10)) {
        case 0:
        case 1:
        case 2:
          if (!s.empty() && rng.below(4)) s += ' ';
          s += rng.pick(words);
          break;
        case 3:
          s += rng.pick(punct);
          break;
        case 4:
          s += rng.pick(spaces);
          break;
        case 5: {
          auto [lo, hi] = rng.pick(ranges);
          for (size_t i = 1 + rng.below(4); i > 0; --i)
            s += utf8_of(lo + uint32_t(rng.below(hi - lo + 1)));
          break;
        }
        case 6:
          s += std::to_string(rng.next() % 100000);
          break;
        case 7:
          s += rng.pick(specialish);
          break;
        case 8:  // emoji, sometimes joined or with a variation selector / skin tone
          s += utf8_of(0x1F600 + uint32_t(rng.below(80)));
          if (rng.below(3) == 0) s += "\xE2\x80\x8D" + utf8_of(0x1F466 + uint32_t(rng.below(4)));
          if (rng.below(4) == 0) s += "\xEF\xB8\x8F";
          if (rng.below(4) == 0) s += utf8_of(0x1F3FB + uint32_t(rng.below(5)));
          break;
        case 9:  // rarely a raw (possibly malformed) byte
          if (rng.below(4) == 0)
            s += char(0x80 + rng.below(128));
          else
            s += char('a' + rng.below(26));
          break;
      }
    }
    c.push_back(std::move(s));
  }
  return c;
}

// Everything the corpus tests share, built once: the processor, both tokenizers, the corpus.
struct Llama2 {
  std::string path;
  sentencepiece::SentencePieceProcessor sp;
  std::unique_ptr<Tokenizer> via_sp;     // SentencePieceTokenizer
  std::unique_ptr<Tokenizer> via_vocab;  // VocabTokenizer from the GGUF-style vocabulary
  std::vector<std::string> corpus;
};

// nullptr (after recording a failure that names the missing file) when the model is absent.
inline const Llama2* llama2() {
  static std::unique_ptr<Llama2> env = [] {
    auto e = std::make_unique<Llama2>();
    e->path = llama2_tokenizer_path();
    if (!std::filesystem::exists(e->path) || !e->sp.Load(e->path).ok())
      return std::unique_ptr<Llama2>();
    TokenizerSpec sp_spec;
    sp_spec.sp_model_path = e->path;
    e->via_sp = make_tokenizer(sp_spec);
    e->via_vocab = make_tokenizer(gguf_style_spec(e->sp));
    e->corpus = make_corpus();
    return e;
  }();
  if (!env)
    ADD_FAILURE() << "the Llama-2 tokenizer model is missing or unreadable at "
                  << llama2_tokenizer_path()
                  << " (set LMSTREAM_SOURCE_DIR to the repository root next to shared/)";
  return env.get();
}

}  // namespace lmstream::testing
