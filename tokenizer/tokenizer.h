// Llama SentencePiece tokenizer: through libsentencepiece when a tokenizer.model exists, from the
// GGUF-embedded vocabulary otherwise; both give the same ids. Plus the incremental detokenizer used
// for streaming. Knows nothing of models' weights or of HTTP.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"

namespace lmstream {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Exactly SentencePiece's EncodeAsIds: dummy-prefix space, byte fallback, no BOS, and no parsing
  // of special-token text ("</s>" in the text is encoded as ordinary characters).
  virtual std::vector<int32_t> encode_plain(std::string_view text) const = 0;

  // Encode with BOS prepended when add_bos. With parse_special, literal control-token text
  // ("<s>", "</s>", "<unk>") in the input becomes that token, as HF's tokenizer does for prompts
  // sent to TGI; each piece of text between them is encoded with encode_plain, dummy prefix
  // included, as TGI's tokenizer (tokenizer.json: added tokens split out first, then every piece
  // normalized with Prepend("▁")) and Meta's chat format ([BOS] + sp("[INST] ...")) both do.
  std::vector<int32_t> encode(std::string_view text, bool add_bos,
                              bool parse_special = false) const;

  // Raw bytes this token contributes to output text: U+2581 becomes ' ', <0xXX> becomes the byte,
  // control/unknown tokens give "" (their literal text is piece()).
  virtual const std::string& token_bytes(int32_t id) const = 0;
  // The vocabulary string of the token ("▁Hello", "<0x0A>", "</s>").
  virtual const std::string& piece(int32_t id) const = 0;
  virtual TokenType type(int32_t id) const = 0;
  virtual int32_t n_vocab() const = 0;

  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t unk() const { return unk_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool is_special(int32_t id) const {  // control or unknown: not part of skip_special text
    TokenType t = type(id);
    return t == TokenType::kControl || t == TokenType::kUnknown;
  }

  // SentencePiece DecodeIds semantics: concatenated token bytes, special tokens skipped, and one
  // leading space removed when add_space_prefix (the dummy prefix).
  std::string decode(std::span<const int32_t> ids) const;

 protected:
  int32_t bos_ = 1, eos_ = 2, unk_ = 0;
  bool add_space_prefix_ = true;
};

// Builds the tokenizer described by spec: libsentencepiece when spec.sp_model_path is set,
// the embedded-vocabulary implementation otherwise. Throws ModelError on a bad description.
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerSpec& spec);

// Incremental detokenizer for one generated sequence. push() returns the text that became final
// with this token: only complete UTF-8, SentencePiece's leading-space rule applied once at the
// start of the sequence (when strip_leading_space), no byte ever emitted twice. Concatenating all
// push() results and finish() equals tokenizer.decode(all ids) for the same ids.
class StreamDecoder {
 public:
  // strip_leading_space: the sequence starts a decode (SentencePiece drops its first space).
  // For generated continuations of a prompt, TGI/llama.cpp keep the space: pass false.
  StreamDecoder(const Tokenizer& tok, bool strip_leading_space, bool skip_special = true);
  std::string push(int32_t id);
  // Whatever is still held back (an incomplete UTF-8 tail is replaced by U+FFFD per byte).
  std::string finish();
  // Bytes held back waiting for the rest of a UTF-8 character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tok_;
  bool strip_leading_space_;
  bool skip_special_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace lmstream
