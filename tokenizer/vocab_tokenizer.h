// Tokenizer built from a GGUF-embedded vocabulary (tokens, scores, types): our own SentencePiece
// BPE, giving the same ids as libsentencepiece does with the tokenizer.model it came from.
#pragma once

#include "tokenizer/table_tokenizer.h"

namespace lmstream {

class VocabTokenizer : public TableTokenizer {
 public:
  explicit VocabTokenizer(const TokenizerSpec& spec);
  std::vector<int32_t> encode_plain(std::string_view text) const override {
    return encode_segment(text, add_space_prefix_);
  }
};

}  // namespace lmstream
