// Tokenizer backed by libsentencepiece and a tokenizer.model file: encode_plain is the
// processor's EncodeAsIds; the token tables are read out of the processor at construction.
#pragma once

#include <sentencepiece_processor.h>

#include "tokenizer/table_tokenizer.h"

namespace lmstream {

class SentencePieceTokenizer : public TableTokenizer {
 public:
  // Throws ModelError when the file cannot be loaded.
  explicit SentencePieceTokenizer(const TokenizerSpec& spec);
  std::vector<int32_t> encode_plain(std::string_view text) const override;

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace lmstream
